//! The terminal's money rules through the binary (issue 9 regressions): no approval without the
//! PIN the card asks for, zero amounts and the contactless limit as configured (Book B §3.1.1),
//! output that survives a closed pipe.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("shanfu-money-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env { dir }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data").arg(self.dir.join("data")).stdin(Stdio::null());
        c
    }
    fn pay(&self, args: &[&str]) -> (Value, i32) {
        let mut a = vec!["pay"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--json", "--host", "embedded"]);
        let out = self.cmd(&a).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
        (v, out.status.code().unwrap_or(-1))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_card_asking_for_online_pin_is_not_approved_without_a_pin_pad() {
    let env = Env::new("pin");
    let (v, code) = env.pay(&["350.00", "--reader", "virtual:unionpay-plastic"]);
    assert_eq!((v["outcome"].as_str(), code), (Some("DECLINED"), 1), "{v}");
    assert_eq!(v["cvm"], "ONLINE_PIN", "{v}");
    assert_eq!(v["disposition"]["kind"], "DECLINED_BY_TERMINAL", "{v}");
    assert_eq!(v["disposition"]["reason"], "ONLINE_PIN_UNAVAILABLE", "{v}");
    assert_eq!(v["online"], false, "nothing was sent: {v}");
    assert!(v["stan"].is_null(), "{v}");
    // Below the CVM limit the same card needs no PIN and goes online.
    let (v, code) = env.pay(&["50.00", "--reader", "virtual:unionpay-plastic"]);
    assert_eq!((v["outcome"].as_str(), v["online"].as_bool(), code), (Some("APPROVED"), Some(true), 0), "{v}");
}

#[test]
fn zero_amount_follows_the_configured_option() {
    let env = Env::new("zero");
    let (v, code) = env.pay(&["0", "--reader", "virtual:unionpay-phone"]);
    assert_eq!((v["outcome"].as_str(), code), (Some("TRY_ANOTHER_INTERFACE"), 1), "{v}");
    assert_eq!(v["disposition"]["reason"], "ZERO_AMOUNT_NOT_ALLOWED", "{v}");
    assert_eq!(v["taps"], 0, "no card is asked for: {v}");
    // A terminal configured to allow zero amounts sends it online (Book B §3.1.1.11).
    let cfg = env.dir.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    let kernels = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/kernels.toml")).unwrap();
    std::fs::write(cfg.join("kernels.toml"), kernels.replace("zero_amount_allowed = false", "zero_amount_allowed = true")).unwrap();
    let (v, _) = env.pay(&["0", "--reader", "virtual:unionpay-phone", "--config", cfg.to_str().unwrap()]);
    assert_eq!((v["online"].as_bool(), v["taps"].as_u64()), (Some(true), Some(1)), "{v}");
}

#[test]
fn the_contactless_limit_is_exclusive() {
    let env = Env::new("limit");
    let (v, code) = env.pay(&["10000.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!((v["outcome"].as_str(), code), (Some("TRY_ANOTHER_INTERFACE"), 1), "{v}");
    assert_eq!(v["disposition"]["reason"], "OVER_CONTACTLESS_LIMIT", "{v}");
    let (v, _) = env.pay(&["9999.99", "--reader", "virtual:unionpay-phone", "--fingerprint"]);
    assert_ne!(v["disposition"]["reason"], "OVER_CONTACTLESS_LIMIT", "{v}");
    assert!(v["taps"].as_u64().unwrap_or(0) >= 1, "{v}");
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let env = Env::new("pipe");
    let (v, _) = env.pay(&["12.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!(v["outcome"], "APPROVED", "{v}");
    for args in [&["journal", "list"][..], &["demo", "--headless"][..]] {
        let mut child = env.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader goes away, like `| true`
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn without_a_configured_host_pay_says_so_and_exits_2() {
    let env = Env::new("nohost");
    let out = env.cmd(&["pay", "12.00", "--reader", "virtual:unionpay-phone", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["outcome"], "ERROR");
    assert!(v["error"].as_str().unwrap_or("").contains("no acquirer host configured"), "{v}");
    // Nothing was journaled: no card was asked for.
    assert!(!env.dir.join("data").join("journal").exists());
    // A configuration directory that does not exist is an error, not the built-in config.
    let out = env.cmd(&["pay", "12.00", "--config", "/nonexistent/shanfu-config", "--host", "embedded"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration directory"));
}

#[test]
fn an_unreachable_host_is_not_completed_and_says_so_not_try_another_card() {
    let env = Env::new("unreachable");
    // A port nothing listens on: the sign-on cannot happen, nothing is sent or charged.
    let out = env.cmd(&["pay", "12.00", "--reader", "virtual:unionpay-phone", "--host", "127.0.0.1:9", "--timeout-ms", "500", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!((v["disposition"]["kind"].as_str(), v["disposition"]["reason"].as_str()), (Some("NOT_COMPLETED"), Some("HOST_UNREACHABLE")), "{v}");
    let ui = v["ui_message"].as_str().unwrap_or("");
    assert!(ui.contains("not charged") && !ui.contains("another card"), "{v}");
    // The journal says when, what kind and how it ended, in columns people read.
    let list = env.cmd(&["journal", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let header = list.lines().next().unwrap_or("");
    for col in ["date", "kind", "amount", "outcome"] {
        assert!(header.contains(col), "{col} missing: {list}");
    }
    assert!(list.contains("SALE") && list.contains("12.00") && !list.contains("6235880000000017"), "{list}");
}

#[test]
fn a_recording_masks_card_data_unless_revealed() {
    let env = Env::new("record");
    let masked = env.dir.join("masked.json");
    let clear = env.dir.join("clear.json");
    for (path, reveal) in [(&masked, false), (&clear, true)] {
        let mut args = vec!["pay", "20.00", "--reader", "virtual:unionpay-phone", "--no-host", "--json", "--record", path.to_str().unwrap()];
        if reveal {
            args.push("--reveal");
        }
        assert!(env.cmd(&args).output().unwrap().status.success());
    }
    let m = std::fs::read_to_string(&masked).unwrap();
    let c = std::fs::read_to_string(&clear).unwrap();
    assert!(c.contains("6235880000000017"), "the revealed recording keeps the PAN");
    assert!(!m.contains("6235880000000017") && m.contains("623588FFFFFF0017"), "{m}");
    assert!(m.contains("\"masked\": true"), "{m}");
}

/// Issue 13: a refund with the card gives back a sale — the terminal names this card's sale in
/// DE 37 and the acquirer credits no more than is left of it; with no such sale: declined 25.
#[test]
fn a_refund_with_the_card_gives_back_its_sale_and_no_more() {
    let env = Env::new("refund");
    let phone = ["--reader", "virtual:unionpay-phone"];
    let refund = |amount: &str| env.pay(&[&[amount, "--type", "refund"][..], &phone[..]].concat());
    let (v, code) = refund("20.00");
    assert_eq!((v["outcome"].as_str(), v["response_code"].as_str(), code), (Some("ONLINE_DECLINED"), Some("25"), 1), "no sale to give back: {v}");
    let (v, _) = env.pay(&[&["50.00"][..], &phone[..]].concat());
    assert_eq!(v["outcome"], "APPROVED", "{v}");
    let (v, code) = refund("20.00");
    assert_eq!((v["outcome"].as_str(), code), (Some("APPROVED"), 0), "{v}");
    // 30.00 left: 40.00 finds no sale with that much, 30.00 does.
    let (v, _) = refund("40.00");
    assert_eq!((v["outcome"].as_str(), v["response_code"].as_str()), (Some("ONLINE_DECLINED"), Some("25")), "{v}");
    let (v, _) = refund("30.00");
    assert_eq!(v["outcome"], "APPROVED", "{v}");
    let (v, _) = refund("0.01");
    assert_eq!(v["response_code"], "25", "nothing left: {v}");
}
