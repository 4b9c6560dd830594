//! One process at a time holds the journal (sled). While a terminal runs, another shell gets a
//! clear answer: `journal list|show|export` from the running terminal over DATA/shanfu.sock,
//! and `pay` / `settle` one error naming the process that holds it.
//!
//! The holder here is a real `shanfu pay` waiting for its host's answer: a loopback listener
//! that accepts and never answers, so the terminal stays in the sale until the test lets go.

use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

/// A host that accepts connections and never answers (bounded: it stops by itself).
struct SilentHost {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentHost {
    fn start() -> SilentHost {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok((c, _)) = l.accept() {
                    held.push(c);
                    a.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Dropping the listener and the connections: the terminal's wait ends (closed).
        });
        SilentHost { port, stop, accepted, thread: Some(thread) }
    }
}

impl Drop for SilentHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("shanfu-inuse-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { dir }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data").arg(&self.dir).args(args).stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run shanfu")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the child by its pid if the test ends early.
struct Holder(Option<Child>);

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn while_a_terminal_holds_the_journal_history_is_read_through_it_and_pay_names_the_holder() {
    let env = Env::new("hold");
    // One completed sale first.
    let out = env.run(&["pay", "10.00", "--reader", "virtual:unionpay-phone", "--host", "embedded", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout} {stderr}");

    // A second sale that waits for its host's answer, holding the journal.
    let host = SilentHost::start();
    let addr = format!("127.0.0.1:{}", host.port);
    let child = env
        .cmd(&["pay", "11.00", "--reader", "virtual:unionpay-phone", "--host", &addr, "--timeout-ms", "40000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut holder = Holder(Some(child));
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.accepted.load(Ordering::SeqCst) == 0 || !env.dir.join("shanfu.sock").exists() {
        if let Some(c) = holder.0.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("the holding pay ended early: {st}");
            }
        }
        assert!(Instant::now() < deadline, "the holding pay never reached its host");
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.join("shanfu.sock")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "socket permissions");
    }

    // History, from the running terminal.
    let out = env.run(&["journal", "list"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "journal list: {stdout} {stderr}");
    assert!(stdout.lines().next().unwrap_or("").contains("outcome"), "header: {stdout}");
    assert!(stdout.lines().any(|l| l.contains("10.00") && l.contains("APPROVED") && l.contains("623588******0017")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("11.00") && l.contains("IN_PROGRESS")), "{stdout}");
    let out = env.run(&["journal", "export", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    let out = env.run(&["journal", "export", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3, "{:?}", text(&out));
    let out = env.run(&["journal", "show", "1"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let one: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((one["id"].as_u64(), one["outcome"].as_str()), (Some(1), Some("APPROVED")), "{one}");
    let out = env.run(&["journal", "show", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no transaction 99"), "{:?}", text(&out));

    // A second sale and a settlement: one clear error each, naming the holder, exit 2.
    let out = env.run(&["pay", "1.00", "--reader", "virtual:unionpay-phone", "--host", "embedded"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout} {stderr}");
    assert!(stderr.contains(&format!("in use by pid {pid} (")) && stderr.contains("pay 11.00"), "{stderr}");
    assert_eq!(stderr.matches("in use by").count(), 1, "said more than once: {stderr}");
    assert!(!stderr.contains("WouldBlock") && !stderr.contains("could not acquire lock"), "raw sled error: {stderr}");
    let out = env.run(&["pay", "1.00", "--reader", "virtual:unionpay-phone", "--host", "embedded", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(v["error"].as_str().unwrap_or("").contains(&format!("in use by pid {pid}")), "{v}");
    assert!(!stderr.contains("in use by"), "printed twice (JSON and stderr): {stderr}");
    let out = env.run(&["settle", "--host", "embedded"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("in use by pid {pid}")) && stderr.contains("settle from the cashier screen"), "{stderr}");

    // The host lets go: the sale ends, the terminal closes its socket and frees the journal.
    drop(host);
    let deadline = Instant::now() + Duration::from_secs(30);
    let child = holder.0.as_mut().unwrap();
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the holding pay did not end after its host closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.0.take().unwrap().wait().unwrap();
    assert!(!env.dir.join("shanfu.sock").exists(), "socket file left behind");
    assert!(!env.dir.join("journal").join("holder").exists(), "holder file left behind");
    let out = env.run(&["journal", "list"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}
