//! `shanfu gate` with its back office, through the real binary over loopback TCP (the embedded
//! acquirer, or none): deferred taps authorized after the gate opened, a declined one putting
//! the card on the deny list, the acquirer's deny list synced, a host outage and the queue
//! draining once when the host is back.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    common::gate::scratch("gate-upload", name)
}

fn gate(data: &Path, holders: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    common::gate::run(data, holders, extra)
}

fn decisions(lines: &[Value]) -> Vec<String> {
    lines.iter().map(|l| format!("{} {}", l["decision"].as_str().unwrap(), l["reason"].as_str().unwrap_or(""))).map(|s| s.trim().to_string()).collect()
}

/// `shanfu acquirer …` over the acquirer database of `data` (the embedded acquirer's).
fn acquirer(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu")).args(["--data", data.to_str().unwrap(), "acquirer"]).args(args).output().expect("run shanfu acquirer");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The balance (minor units) of the account a PAN spends from, at the acquirer.
fn balance(data: &Path, pan: &str) -> i64 {
    let answer = shanfu::acquirer::admin_command(&data.join("acquirer"), &format!("account balance {pan}")).unwrap();
    answer.strip_prefix("ok ").and_then(|b| b.parse().ok()).unwrap_or_else(|| panic!("balance of {pan}: {answer}"))
}

fn n(summary: &Value, key: &str) -> u64 {
    summary[key].as_u64().unwrap_or_else(|| panic!("{key} in {summary}"))
}

const PHONE: &str = "6235880000000017";
const VISA_PHONE: &str = "4895000000000013";
const TRANSIT: &str = "6225000000000027";
const NOFUNDS: &str = "6235880000000090";

#[test]
fn deferred_taps_are_authorized_after_the_gate_opened_and_aggregates_advised() {
    let data = scratch("deferred");
    let before = [balance(&data, PHONE), balance(&data, VISA_PHONE), balance(&data, TRANSIT)];
    let (lines, summary) = gate(&data, "unionpay-phone,visa-phone,unionpay-transit", &["--host", "embedded"]);
    assert_eq!(decisions(&lines), ["OPEN", "OPEN", "OPEN"]);
    assert_eq!((lines[0]["settlement"].as_str(), lines[2]["settlement"].as_str()), (Some("DEFERRED"), Some("OFFLINE")));
    // Two deferred 0200s and the transit card's aggregate (closed at the end) as a 0220.
    assert_eq!((n(&summary, "uploads_sent"), n(&summary, "uploads_approved"), n(&summary, "uploads_pending")), (3, 3, 0), "{summary}");
    let after = [balance(&data, PHONE), balance(&data, VISA_PHONE), balance(&data, TRANSIT)];
    assert_eq!(after, [before[0] - 200, before[1] - 200, before[2] - 200]);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_declined_deferred_authorization_denies_the_card_at_its_next_tap() {
    let data = scratch("declined");
    // The account behind the token holds 1.00: the 2.00 fare is declined (51) after the gate opened.
    let (lines, summary) = gate(&data, "unionpay-phone-nofunds", &["--host", "embedded"]);
    assert_eq!(decisions(&lines), ["OPEN"]);
    assert_eq!((n(&summary, "uploads_sent"), n(&summary, "uploads_declined")), (1, 1), "{summary}");
    assert_eq!(balance(&data, NOFUNDS), 100, "nothing posted");
    // The gate's own deny list (kept in its journal): refused even with no host.
    let (lines, _) = gate(&data, "unionpay-phone-nofunds,unionpay-phone", &["--no-host"]);
    assert_eq!(decisions(&lines), ["REJECT DENIED", "OPEN"]);
    // The acquirer put it on its list too.
    assert!(acquirer(&data, &["deny", "status", NOFUNDS]).starts_with("ok denied declined"));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_card_denied_at_the_acquirer_is_refused_after_the_sync() {
    let data = scratch("sync");
    let (lines, summary) = gate(&data, "unionpay-phone", &["--host", "embedded"]);
    assert_eq!(decisions(&lines), ["OPEN"], "not denied before");
    assert_eq!(n(&summary, "deny_list_version"), 0);
    assert_eq!(acquirer(&data, &["deny", "add", PHONE]), "ok version 1");
    let (lines, summary) = gate(&data, "unionpay-phone", &["--host", "embedded"]);
    assert_eq!(decisions(&lines), ["REJECT DENIED"], "refused after the sync at start");
    assert_eq!(n(&summary, "deny_list_version"), 1);
    // The synced list is kept: refused with the host gone too.
    let (lines, _) = gate(&data, "unionpay-phone", &["--no-host"]);
    assert_eq!(decisions(&lines), ["REJECT DENIED"]);
    // Taken off at the acquirer: the delta 1 → 2 lets it in again.
    assert_eq!(acquirer(&data, &["deny", "remove", PHONE]), "ok version 2");
    let (lines, summary) = gate(&data, "unionpay-phone", &["--host", "embedded"]);
    assert_eq!(decisions(&lines), ["OPEN"]);
    assert_eq!(n(&summary, "deny_list_version"), 2);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_host_outage_keeps_the_gate_open_and_the_queue_drains_once_when_it_is_back() {
    let data = scratch("outage");
    let before = [balance(&data, PHONE), balance(&data, TRANSIT)];
    // Nothing listens on port 1 of the loopback: every connection is refused.
    let (lines, summary) = gate(&data, "unionpay-phone,unionpay-transit", &["--host", "127.0.0.1:1", "--drain-s", "1"]);
    assert_eq!(decisions(&lines), ["OPEN", "OPEN"], "good cards go through with the host down");
    assert_eq!((n(&summary, "uploads_sent"), n(&summary, "uploads_pending")), (0, 2), "{summary}");
    assert_eq!([balance(&data, PHONE), balance(&data, TRANSIT)], before);
    // The host is back: the queue drains.
    let (_, summary) = gate(&data, "unionpay-phone", &["--host", "embedded", "--taps", "0"]);
    assert_eq!((n(&summary, "uploads_sent"), n(&summary, "uploads_approved"), n(&summary, "uploads_pending")), (2, 2, 0), "{summary}");
    assert_eq!([balance(&data, PHONE), balance(&data, TRANSIT)], [before[0] - 200, before[1] - 200]);
    // Once: nothing is left to send, nothing posted again.
    let (_, summary) = gate(&data, "unionpay-phone", &["--host", "embedded", "--taps", "0"]);
    assert_eq!((n(&summary, "uploads_sent"), n(&summary, "uploads_pending")), (0, 0));
    assert_eq!([balance(&data, PHONE), balance(&data, TRANSIT)], [before[0] - 200, before[1] - 200]);
    let _ = std::fs::remove_dir_all(&data);
}

/// A running `shanfu acquirer` on a free loopback port, stopped (by its pid) when dropped.
struct Acquirer {
    child: std::process::Child,
    addr: String,
    db: PathBuf,
}

impl Acquirer {
    fn start(data: &Path) -> Acquirer {
        use std::io::BufRead;
        let db = data.join("acquirer");
        let mut child = Command::new(env!("CARGO_BIN_EXE_shanfu"))
            .args(["acquirer", "--listen", "127.0.0.1:0", "--db", db.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start shanfu acquirer");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let addr = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("acquirer said {first:?}")).to_string();
        Acquirer { child, addr, db }
    }
}

impl Drop for Acquirer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_lost_answer_is_asked_again_and_posted_once() {
    let data = scratch("lost");
    let acq = Acquirer::start(&data);
    let before = balance(&data, PHONE);
    // The acquirer processes the next 0200 (and posts it), then closes the connection instead
    // of answering: the gate sends the same request again and gets the recorded answer.
    assert_eq!(shanfu::acquirer::admin_command(&acq.db, "faults close").unwrap(), "ok");
    let (lines, summary) = gate(&data, "unionpay-phone", &["--host", &acq.addr, "--drain-s", "10"]);
    assert_eq!(decisions(&lines), ["OPEN"]);
    assert_eq!((n(&summary, "uploads_approved"), n(&summary, "uploads_pending")), (1, 0), "{summary}");
    assert_eq!(n(&summary, "uploads_sent"), 1, "the first try got no answer: one answered send");
    assert_eq!(balance(&data, PHONE), before - 200, "posted once");
    drop(acq);
    let _ = std::fs::remove_dir_all(&data);
}

/// The uploader in process against the embedded acquirer: the periodic sync picks up a change
/// made after the start, and a gate whose list is ahead of the acquirer's (the acquirer was
/// reset) takes the acquirer's full list.
#[test]
fn the_uploader_syncs_every_n_seconds_and_recovers_from_a_list_ahead_of_the_acquirer() {
    use shanfu::gate::deny::{CardKey, DenyList};
    use shanfu::gate::upload::{DenyUpdate, Uploader};
    use std::time::Duration;
    let data = scratch("periodic");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db_dir = data.join("acquirer");
    let addr = rt.block_on(shanfu::acquirer::embedded(&db_dir)).unwrap();
    let key = shanfu::gate::config::GateConfig::parse(shanfu::gate::config::BUILTIN, 2).unwrap().deny_key.0;
    let settings = shanfu::settings::Settings::load(None).unwrap();
    let mut id = shanfu::terminal::service::identity(&settings);
    id.terminal_id = "G0101E01".into();
    let journal = sled::Config::new().temporary(true).open().unwrap();
    // The gate believes it holds version 5; the acquirer has never changed its list.
    let mut ahead = DenyList::new();
    ahead.apply_full(5, [CardKey([9; 32])]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut up = Uploader::new(journal, addr, Duration::from_secs(2), id, tx, &ahead, Duration::from_millis(200)).unwrap();
    up.configure_link(&shanfu::settings::Settings::load(None).unwrap().host, &db_dir.join("gate-keystore"));
    assert_eq!(shanfu::acquirer::admin_command(&db_dir, &format!("deny add {PHONE}")).unwrap(), "ok version 1");
    assert!(rt.block_on(up.sync()).unwrap());
    let DenyUpdate::Host { version, keys } = rx.recv_timeout(Duration::from_secs(5)).unwrap() else { panic!("not a list") };
    assert_eq!((version, keys), (1, vec![CardKey::of_pan(&key, PHONE)]), "the acquirer's list replaces the one ahead of it");
    // Running: a change at the acquirer reaches the gate within a few sync periods.
    let (stop, stop_rx) = tokio::sync::watch::channel(None);
    let task = rt.spawn(up.run(stop_rx));
    assert_eq!(shanfu::acquirer::admin_command(&db_dir, &format!("deny add {VISA_PHONE}")).unwrap(), "ok version 2");
    let DenyUpdate::Host { version, keys } = rx.recv_timeout(Duration::from_secs(5)).expect("synced by the timer") else { panic!("not a list") };
    assert_eq!(version, 2);
    assert!(keys.contains(&CardKey::of_pan(&key, VISA_PHONE)) && keys.contains(&CardKey::of_pan(&key, PHONE)));
    stop.send(Some(tokio::time::Instant::now())).unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await }).unwrap().unwrap();
    drop(rt);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_gate_whose_journal_was_reset_does_not_reuse_a_stan() {
    let data = scratch("reset");
    let before = balance(&data, PHONE);
    let lane = |n: &str| data.join(n).to_str().unwrap().to_string();
    let (_, first) = gate(&data, "unionpay-phone", &["--host", "embedded", "--gate-data", &lane("lane-1")]);
    assert_eq!(n(&first, "uploads_approved"), 1, "{first}");
    // A new gate journal: its STAN counter starts again, the sign-on moves it past the acquirer's.
    let (_, second) = gate(&data, "unionpay-phone", &["--host", "embedded", "--gate-data", &lane("lane-2")]);
    assert_eq!((n(&second, "uploads_approved"), n(&second, "uploads_pending")), (1, 0), "not refused as a duplicate: {second}");
    assert_eq!(balance(&data, PHONE), before - 400);
    let _ = std::fs::remove_dir_all(&data);
}
