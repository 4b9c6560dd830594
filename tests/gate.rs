//! `shanfu gate` through the real binary over the virtual reader: a stream of holders from
//! several wallets, every open / reject and its reason, the deny list (from the acquirer's file
//! and the gate's own entries, kept across a restart), anti-passback, aggregated uploads queued.

mod common;

use serde_json::Value;
use shanfu::gate::config::{GateConfig, BUILTIN};
use shanfu::gate::deny::CardKey;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    common::gate::scratch("gate-test", name)
}

fn gate(data: &Path, holders: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    common::gate::run(data, holders, extra)
}

fn decisions(lines: &[Value]) -> Vec<(String, String)> {
    lines.iter().map(|l| (l["decision"].as_str().unwrap().to_string(), l["reason"].as_str().unwrap_or("").to_string())).collect()
}

fn d(decision: &str, reason: &str) -> (String, String) {
    (decision.into(), reason.into())
}

#[test]
fn a_stream_of_holders_opens_and_rejects_with_reasons() {
    let data = scratch("stream");
    let holders = "unionpay-transit,unionpay-transit,unionpay-phone,visa-phone,bad-fdda,bad-fdda,expired-token,unionpay-plastic+remove=2";
    let (lines, summary) = gate(&data, holders, &[]);
    assert_eq!(
        decisions(&lines),
        vec![
            d("OPEN", ""),           // offline TC, fDDA verified
            d("REJECT", "PASSBACK"), // the same card again at once
            d("OPEN", ""),           // the phone asks to go online: deferred authorization
            d("OPEN", ""),           // Visa phone, deferred
            d("REJECT", "ODA_FAILED"),
            d("REJECT", "DENIED"),   // the failed fDDA put it on the gate's deny list
            d("REJECT", "DECLINED"), // expired token: the card declines
            d("REJECT", "READ_ERROR"),
        ]
    );
    assert_eq!((lines[0]["settlement"].as_str(), lines[0]["oda"].as_str(), lines[0]["fare"].as_str()), (Some("OFFLINE"), Some("fDDA_OK"), Some("2.00")));
    assert_eq!(lines[2]["settlement"], "DEFERRED");
    assert_eq!(lines[0]["light"], "GREEN");
    assert_eq!(lines[4]["light"], "RED");
    assert_eq!(lines[1]["card"], lines[0]["card"], "the same card has the same deny-list key");
    for l in &lines {
        let pan = l["pan_masked"].as_str().unwrap_or("");
        assert!(pan.is_empty() || pan.contains("******"), "PAN masked: {pan}");
    }
    assert_eq!((summary["taps"].as_u64(), summary["opens"].as_u64(), summary["rejects"].as_u64()), (Some(8), Some(3), Some(5)));
    // The three cards that rode each have an aggregate, closed and queued at the end.
    assert_eq!(summary["uploads_queued"].as_u64(), Some(3));

    // A restart keeps the gate's own deny entry: the bad card is refused before its fDDA.
    let (again, _) = gate(&data, "bad-fdda", &[]);
    assert_eq!(decisions(&again), vec![d("REJECT", "DENIED")]);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_acquirers_deny_list_refuses_a_token_by_its_pan_key() {
    let data = scratch("deny");
    let cfg = GateConfig::parse(BUILTIN, 2).unwrap();
    let phone = CardKey::of_pan(&cfg.deny_key.0, "6235880000000017");
    let list = data.join("deny.json");
    std::fs::write(&list, serde_json::json!({ "version": 7, "keys": [phone.to_hex()] }).to_string()).unwrap();
    let (lines, _) = gate(&data, "unionpay-phone,unionpay-transit", &["--deny-list", list.to_str().unwrap()]);
    assert_eq!(decisions(&lines), vec![d("REJECT", "DENIED"), d("OPEN", "")]);
    assert_eq!(lines[0]["display"], "此卡已列入黑名单 — 请咨询工作人员");

    // A list that is not 64 hex digits per key is an error, not an empty list.
    std::fs::write(&list, r#"{"version": 8, "keys": ["0102"]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu"))
        .args(["--data", data.to_str().unwrap(), "gate", "--json", "--reader", "virtual:unionpay-phone", "--deny-list", list.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn open_cmd_runs_once_per_opening() {
    let data = scratch("opencmd");
    let log = data.join("opened.log");
    let cmd = format!("echo \"$SHANFU_GATE_SEQ $SHANFU_GATE_FARE\" >> {}", log.display());
    let (lines, _) = gate(&data, "unionpay-transit,unionpay-transit,unionpay-phone", &["--open-cmd", &cmd]);
    let opened: Vec<&Value> = lines.iter().filter(|l| l["decision"] == "OPEN").collect();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut got: Vec<&str> = text.lines().collect();
    got.sort();
    let mut want: Vec<String> = opened.iter().map(|l| format!("{} {}", l["seq"], l["fare"].as_str().unwrap())).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(opened.len(), 2);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_city_transport_card_pays_from_its_purse_and_a_torn_debit_is_never_charged_twice() {
    let data = scratch("purse");
    // Balance 10.00, fare 2.00 at this entry gate. The second phone holds 1.00.
    let holders = "tunion-phone+tear=6,tunion-phone,tunion-phone,tunion-phone-low,unionpay-transit";
    let (lines, summary) = gate(&data, holders, &[]);
    assert_eq!(
        decisions(&lines),
        vec![
            d("REJECT", "READ_ERROR"),           // the phone left while the card answered DEBIT
            d("OPEN", ""),                       // next tap: the torn debit proven, nothing charged again
            d("REJECT", "ALREADY_ENTERED"),      // the card's trip record says it is inside
            d("REJECT", "INSUFFICIENT_BALANCE"), // 1.00 for a 2.00 fare
            d("OPEN", ""),                       // a bank card at the same gate, open loop
        ]
    );
    let open = &lines[1];
    assert_eq!((open["kernel"].as_str(), open["fare"].as_str(), open["balance"].as_str()), (Some("T-Union"), Some("2.00"), Some("8.00")));
    assert_eq!(open["recovered"], true, "{open}");
    assert_eq!(open["tac"].as_str().map(str::len), Some(8));
    assert!(open["display"].as_str().unwrap().contains("余额 ¥8.00"), "{open}");
    assert!(open["pan_masked"].as_str().unwrap().contains("****"));
    assert_eq!(lines[4]["kernel"], "C-7");
    assert_eq!((summary["opens"].as_u64(), summary["rejects"].as_u64()), (Some(2), Some(3)));

    // Without the tear the same phone pays at once: 10.00 → 8.00, not recovered.
    let plain_dir = scratch("purse-plain");
    let (plain, _) = gate(&plain_dir, "tunion-phone", &[]);
    assert_eq!((plain[0]["balance"].as_str(), plain[0].get("recovered")), (Some("8.00"), None));
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&plain_dir);
}
