//! Record a session of our own card with `pay --record`, replay it with `shanfu replay`: same
//! outcome, same cryptogram; a tampered script is reported, not trusted.

use serde_json::Value;
use std::process::Command;

fn shanfu(args: &[&str]) -> (Value, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu")).args(args).output().expect("run shanfu");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code().unwrap_or(-1))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("shanfu-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn record_and_replay(args: &[&str], file: &str) -> (Value, Value) {
    let path = tmp(file);
    let p = path.to_str().unwrap();
    let mut a = vec!["pay"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--record", p, "--reveal", "--json", "--no-host"]);
    let (live, _) = shanfu(&a);
    let (replayed, _) = shanfu(&["replay", p, "--json"]);
    (live, replayed)
}

#[test]
fn offline_fdda_session_replays_to_the_same_outcome() {
    let (live, rep) = record_and_replay(&["10.00", "--reader", "virtual:unionpay-transit"], "transit.json");
    assert_eq!(live["outcome"], "APPROVED");
    for k in ["outcome", "oda", "cvm", "cryptogram", "kernel", "aid", "pan_masked"] {
        assert_eq!(live[k], rep[k], "{k}: {rep}");
    }
    assert!(rep.get("replay_differences").is_none(), "{rep}");
}

#[test]
fn two_tap_see_phone_session_replays() {
    let (live, rep) = record_and_replay(&["500.00", "--reader", "virtual:unionpay-phone", "--fingerprint"], "seephone.json");
    assert_eq!((live["outcome"].as_str(), live["taps"].as_u64()), (Some("ONLINE_REQUEST"), Some(2)));
    for k in ["outcome", "cvm", "cryptogram", "taps"] {
        assert_eq!(live[k], rep[k], "{k}: {rep}");
    }
}

#[test]
fn a_different_amount_is_reported_as_a_data_difference() {
    let path = tmp("diff.json");
    let p = path.to_str().unwrap();
    shanfu(&["pay", "20.00", "--reader", "virtual:unionpay-phone", "--record", p, "--reveal", "--json", "--no-host"]);
    let text = std::fs::read_to_string(&path).unwrap().replace("\"amount\": \"20.00\"", "\"amount\": \"21.00\"");
    std::fs::write(&path, text).unwrap();
    let (rep, _) = shanfu(&["replay", p, "--json"]);
    let diffs = rep["replay_differences"].as_array().expect("differences reported");
    assert!(diffs.iter().any(|d| d["expected"].as_str().unwrap_or("").starts_with("80A8")), "{rep}");
}

#[test]
fn a_diverging_script_ends_cleanly() {
    let path = tmp("diverge.json");
    std::fs::write(&path, r#"{"name":"x","terminal":{"amount":"1.00"},"exchanges":[{"c":"00B2010C00","r":"9000"}]}"#).unwrap();
    let (rep, code) = shanfu(&["replay", path.to_str().unwrap(), "--json"]);
    assert_eq!(rep["outcome"], "TRY_AGAIN", "{rep}");
    assert!(rep["reader_error"].as_str().unwrap_or("").contains("diverged"), "{rep}");
    assert_eq!(code, 1);
    std::fs::write(&path, "not json").unwrap();
    let (rep, code) = shanfu(&["replay", path.to_str().unwrap(), "--json"]);
    assert_eq!((rep["outcome"].as_str(), code), (Some("ERROR"), 2));
}
