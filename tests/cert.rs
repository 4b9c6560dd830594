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
