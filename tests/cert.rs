//! `shanfu cert` through the real binary: the shipped suite passes with JUnit and evidence, and
//! a deliberately wrong expectation fails with a readable expected-vs-actual diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shanfu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shanfu")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run shanfu")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shanfu-cert-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-cards/suite")
}

/// `tests="N" failures="F" errors="E"` of the <testsuites> element.
fn junit_counts(xml: &str) -> (usize, usize, usize) {
    let head = xml.lines().find(|l| l.starts_with("<testsuites")).expect("testsuites element");
    let attr = |name: &str| -> usize {
        let k = format!("{name}=\"");
        let rest = &head[head.find(&k).unwrap_or_else(|| panic!("{name} in {head}")) + k.len()..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    (attr("tests"), attr("failures"), attr("errors"))
}

#[test]
fn the_shipped_suite_passes_with_junit_and_evidence() {
    let dir = scratch("suite");
    let (junit, evidence) = (dir.join("report.xml"), dir.join("evidence"));
    let suite = suite_dir();
    let out = shanfu(&["cert", "--suite", suite.to_str().unwrap(), "--junit", junit.to_str().unwrap(), "--evidence", evidence.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Every [[case]] of the suite ran, and there are at least 150 (issue 10).
    let cases: usize = std::fs::read_dir(&suite)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().filter(|l| l.trim() == "[[case]]").count())
        .sum();
    assert!(cases >= 150, "{cases} cases");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(junit_counts(&xml), (cases, 0, 0), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), cases);
    assert!(stdout.contains("total") && stdout.contains(&format!("{cases} cases in")), "{stdout}");
    // The See Phone restart: two taps in the trace, the record with the PAN masked, a pass.
    let case = evidence.join("C7.OUT.05");
    let trace = std::fs::read_to_string(case.join("trace.txt")).unwrap();
    assert!(trace.contains("tap 1  C> 00A404000E325041592E5359532E444446303100") && trace.contains("tap 2  C> 80A80000"), "{trace}");
    assert!(trace.lines().next().unwrap().starts_with('+') && trace.contains(" ms "), "{trace}");
    let record = std::fs::read_to_string(case.join("record.txt")).unwrap();
    assert!(record.contains("623588******0017") && record.contains("9F26 (Application Cryptogram)"), "{record}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(case.join("report.json")).unwrap()).unwrap();
    assert_eq!((report["outcome"].as_str(), report["cvm"].as_str(), report["taps"].as_u64()), (Some("APPROVED"), Some("CDCVM"), Some(2)), "{report}");
    assert!(std::fs::read_to_string(case.join("verdict.txt")).unwrap().starts_with("PASS C7.OUT.05"));
    assert!(std::fs::read_to_string(case.join("case.toml")).unwrap().contains("unionpay-phone"));
    for f in ["trace.txt", "record.txt", "report.json", "verdict.txt"] {
        let text = std::fs::read_to_string(case.join(f)).unwrap();
        assert!(!text.contains("6235880000000017"), "{f} shows the PAN in clear");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const WRONG: &str = r#"
group = "wrong"

[[case]]
id = "X.GOOD"
title = "A small tap on the phone"
profile = "unionpay-phone"
amount = "20.00"
expect = { outcome = "ONLINE_REQUEST", cvm = "NO_CVM" }

[[case]]
id = "X.WRONG"
title = "Expects an approval where the locked phone says See Phone"
profile = "unionpay-phone"
amount = "350.00"
[case.expect]
outcome = "APPROVED"
cvm = "NO_CVM"
taps = 1
"#;

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff_and_exit_1() {
    let dir = scratch("wrong");
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(suite.join("wrong.toml"), WRONG).unwrap();
    let (junit, evidence) = (dir.join("report.xml"), dir.join("evidence"));
    let out = shanfu(&["cert", "--suite", suite.to_str().unwrap(), "--junit", junit.to_str().unwrap(), "--evidence", evidence.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL X.WRONG Expects an approval"), "{stdout}");
    assert!(stdout.contains("outcome  expected: APPROVED") && stdout.contains("actual:   SEE_PHONE"), "{stdout}");
    assert!(!stdout.contains("FAIL X.GOOD"), "{stdout}");
    assert!(stdout.contains("APDU trace") && stdout.contains("SELECT_PPSE"), "{stdout}");
    assert!(stdout.contains("2 cases in") && stdout.contains("1 passed, 1 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(junit_counts(&xml), (2, 1, 0), "{xml}");
    assert!(xml.contains("<failure message=\"1 differ: outcome\" type=\"mismatch\">"), "{xml}");
    let verdict = std::fs::read_to_string(evidence.join("X.WRONG/verdict.txt")).unwrap();
    assert!(verdict.starts_with("FAIL X.WRONG") && verdict.contains("differing fields"), "{verdict}");

    // --case and --json: only the failing case, as JSON.
    let out = shanfu(&["cert", "--suite", suite.to_str().unwrap(), "--case", "X.W*", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["total"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)), "{v}");
    let bad: Vec<&serde_json::Value> = v["cases"][0]["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
    assert_eq!((bad.len(), bad[0]["field"].as_str(), bad[0]["actual"].as_str()), (1, Some("outcome"), Some("SEE_PHONE")), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_suite_that_cannot_load_names_the_file_and_case_and_exits_2() {
    let dir = scratch("load");
    std::fs::write(dir.join("bad.toml"), WRONG.replace("taps = 1", "tapz = 1")).unwrap();
    let out = shanfu(&["cert", "--suite", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml: case X.WRONG: ") && stderr.contains("tapz"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn case_takes_comma_separated_globs() {
    let suite = suite_dir();
    let out = shanfu(&["cert", "--suite", suite.to_str().unwrap(), "--case", "C7.ODA.01, 2EB.010.00,C7.CVM.0?", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["cases"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&"C7.ODA.01") && ids.contains(&"2EB.010.00") && ids.contains(&"C7.CVM.01"), "{ids:?}");
    assert!(ids.iter().all(|i| *i == "C7.ODA.01" || *i == "2EB.010.00" || i.starts_with("C7.CVM.0")), "{ids:?}");
    assert_eq!(v["skipped"], 0);
    assert!(v["cases_per_s"].as_f64().unwrap() > 0.0, "{v}");
}

/// `shanfu cert --serve 127.0.0.1:0` started by the test, stopped by `shutdown` (or by pid).
struct Served {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Served {
    fn start(idle_secs: &str) -> Served {
        use std::io::BufRead;
        let suite = suite_dir();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shanfu"))
            .args(["cert", "--suite", suite.to_str().unwrap(), "--serve", "127.0.0.1:0", "--idle-timeout", idle_secs])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start shanfu cert --serve");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let addr = first.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("first line {first:?}")).parse().unwrap();
        Served { child, addr }
    }

    fn connect(&self) -> Client {
        let s = std::net::TcpStream::connect_timeout(&self.addr, std::time::Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        Client { r: std::io::BufReader::new(s.try_clone().unwrap()), w: s }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Client {
    fn raw(&mut self, line: &str) -> Option<serde_json::Value> {
        use std::io::{BufRead, Write};
        self.w.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut answer = String::new();
        match self.r.read_line(&mut answer) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))),
        }
    }
    fn ask(&mut self, req: serde_json::Value) -> serde_json::Value {
        self.raw(&req.to_string()).expect("an answer")
    }
    fn closed(&mut self) -> bool {
        use std::io::Read;
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0))
    }
}

#[test]
fn the_automation_server_lists_runs_initiates_and_archives_over_tcp() {
    use serde_json::json;
    let srv = Served::start("300");
    let mut c = srv.connect();
    let v = c.ask(json!({ "cmd": "list_cases" }));
    let cases = v["cases"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert!(cases.len() >= 150 && cases.iter().any(|c| c["id"] == "2EB.010.00"), "{}", cases.len());
    let v = c.ask(json!({ "cmd": "list_profiles" }));
    assert!(v["profiles"].as_array().unwrap().iter().any(|p| p == "visa-phone"), "{v}");

    // A case by id: judged as in the suite.
    let v = c.ask(json!({ "cmd": "run_case", "id": "2EB.010.00" }));
    assert_eq!((v["ok"].clone(), v["status"].clone(), v["outcome"].clone()), (json!(true), json!("passed"), json!("TRY_ANOTHER_INTERFACE")), "{v}");
    let v = c.ask(json!({ "cmd": "run_case", "id": "NO.SUCH" }));
    assert_eq!(v["ok"], false, "{v}");

    // A purchase on the selected profile, then its evidence.
    let v = c.ask(json!({ "cmd": "select_profile", "profile": "no-such-card" }));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(c.ask(json!({ "cmd": "select_profile", "profile": "visa-phone" }))["ok"], true);
    let v = c.ask(json!({ "cmd": "initiate", "amount": "12.00" }));
    assert_eq!((v["ok"].clone(), v["kernel"].clone(), v["outcome"].clone()), (json!(true), json!("C-3"), json!("ONLINE_REQUEST")), "{v}");
    let v = c.ask(json!({ "cmd": "initiate", "amount": "1.2.3" }));
    assert_eq!(v["ok"], false, "{v}");
    let v = c.ask(json!({ "cmd": "get_archive" }));
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["trace"].as_str().unwrap().contains("SELECT_PPSE") && v["verdict"].as_str().unwrap().starts_with("PASS"), "{v}");
    assert!(v["case"].as_str().unwrap().contains("visa-phone"), "{v}");

    // Bad input gets an answer, not a crash; the connection goes on.
    for bad in ["{nope", "[1,2]", "{\"cmd\": 3}", "{\"cmd\": \"dance\"}", "\u{7f}\u{0}"] {
        let v = c.raw(bad).expect("an answer");
        assert_eq!(v["ok"], false, "{bad}: {v}");
    }
    assert_eq!(c.ask(json!({ "cmd": "list_profiles" }))["ok"], true);
    // quit closes this connection only.
    assert_eq!(c.ask(json!({ "cmd": "quit" }))["bye"], true);
    assert!(c.closed());

    // Too long a line: an error answer and the connection is closed.
    let mut c = srv.connect();
    let v = c.raw(&format!("{{\"cmd\":\"list_cases\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024))).expect("an answer");
    assert!(v["error"].as_str().unwrap_or("").contains("longer than"), "{v}");
    assert!(c.closed());

    // shutdown stops the server process.
    let mut c = srv.connect();
    assert_eq!(c.ask(json!({ "cmd": "shutdown" }))["ok"], true);
    let mut srv = srv;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "server still running after shutdown");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
}

#[test]
fn the_automation_server_closes_an_idle_connection_and_takes_the_next() {
    let srv = Served::start("1");
    let mut c = srv.connect();
    let started = std::time::Instant::now();
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut c.r, &mut answer).unwrap();
    assert!(answer.contains("idle for 1 s"), "{answer:?}");
    assert!(c.closed());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let mut c = srv.connect();
    assert_eq!(c.ask(serde_json::json!({ "cmd": "shutdown" }))["ok"], true);
}

/// `shanfu phone --in-hand` as the cert runner drives it, against a fake vpcd on 127.0.0.1:
/// every control line answered, the loaded card on the reader only after `tap`, gone on `remove`.
#[test]
fn phone_in_hand_switches_cards_on_stdin_and_taps_a_fake_vpcd() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    fn frame(b: &[u8]) -> Vec<u8> {
        let mut f = (b.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(b);
        f
    }
    fn read_frame(s: &mut std::net::TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut b = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut b).unwrap();
        b
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let mut p = shanfu::cert::phone::PhoneProcess::start(Path::new(env!("CARGO_BIN_EXE_shanfu")), l.local_addr().unwrap()).unwrap();
    let e = p.request("tap").unwrap_err().to_string();
    assert!(e.contains("no profile loaded"), "{e}");
    assert!(p.request("load no-such-card").is_err());
    assert!(p.request("holder fingerprint=maybe").is_err());
    p.request("load visa-phone").unwrap();
    p.request("holder fingerprint=ok remove-after=none").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(l.accept().is_err(), "on the reader before the tap");
    p.request("tap").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the phone never tapped: {e}"),
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&frame(&[0x04])).unwrap();
    assert_eq!(read_frame(&mut s)[0], 0x3B, "an ATR");
    s.write_all(&frame(&hex::decode("00A404000E325041592E5359532E444446303100").unwrap())).unwrap();
    let r = read_frame(&mut s);
    assert_eq!((r[0], &r[r.len() - 2..]), (0x6F, &[0x90, 0x00][..]), "PPSE FCI");
    assert!(hex::encode_upper(&r).contains("A0000000031010"), "the loaded Visa card answers");
    p.request("remove").unwrap();
    let mut b = [0u8; 4];
    assert_eq!(s.read(&mut b).unwrap_or(0), 0, "the phone left the reader");
    // The phone process writes its log lines as it goes: gather them for a while (a loaded
    // machine may deliver the APDU line after the answer).
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(log.contains("connected tap=1") && log.contains("apdu 00A40400 9000")) && Instant::now() < deadline {
        for line in p.take_log() {
            log += &line;
            log.push('\n');
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(log.contains("connected tap=1") && log.contains("apdu 00A40400 9000"), "{log}");
}
