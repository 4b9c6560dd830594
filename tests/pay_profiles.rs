//! Every card profile through the real `shanfu pay` binary (virtual reader): the outcome the
//! kernel gives, with its reason, as the DESIGN.md §4 JSON object. `--no-host` stops at the
//! kernel's outcome (tests/online.rs covers the host).

use serde_json::Value;
use std::process::Command;

fn pay(args: &[&str]) -> (Value, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu")).arg("pay").args(args).args(["--json", "--no-host"]).output().expect("run shanfu");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.code().unwrap_or(-1))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

#[test]
fn transit_card_is_approved_offline_with_fdda() {
    let (v, code) = pay(&["10.00", "--reader", "virtual:unionpay-transit"]);
    assert_eq!((s(&v, "outcome"), s(&v, "oda"), s(&v, "cryptogram_type")), ("APPROVED", "fDDA_OK", "TC"), "{v}");
    assert_eq!(s(&v, "kernel"), "C-7");
    assert_eq!(s(&v, "available_offline_amount"), "490.00");
    assert_eq!(code, 0);
}

#[test]
fn transit_card_above_floor_limit_goes_online() {
    let (v, _) = pay(&["150.00", "--reader", "virtual:unionpay-transit"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cryptogram_type"), s(&v, "oda")), ("ONLINE_REQUEST", "ARQC", "NOT_PERFORMED"), "{v}");
}

#[test]
fn locked_phone_above_cvm_limit_gets_see_phone() {
    let (v, code) = pay(&["500.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!(s(&v, "outcome"), "SEE_PHONE", "{v}");
    assert_eq!(s(&v, "ui_message"), "See phone for instructions");
    assert_eq!(code, 1);
}

#[test]
fn fingerprint_then_second_tap_gives_online_request_with_arqc_and_cdcvm() {
    let (v, code) = pay(&["500.00", "--reader", "virtual:unionpay-phone", "--fingerprint"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cvm"), s(&v, "cryptogram_type")), ("ONLINE_REQUEST", "CDCVM", "ARQC"), "{v}");
    assert_eq!(v["taps"], 2);
    assert_eq!(s(&v, "cryptogram").len(), 16);
    assert_eq!(s(&v, "pan_masked"), "623588******0017");
    // The authorization data carries the ARQC but never the PAN or track 2.
    let icc = s(&v, "icc_data");
    assert!(icc.contains(s(&v, "cryptogram")));
    assert!(!icc.contains("6235880000000017"));
    assert_eq!(code, 0);
}

#[test]
fn small_phone_payment_needs_no_cvm() {
    let (v, _) = pay(&["20.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cvm"), v["taps"].as_u64()), ("ONLINE_REQUEST", "NO_CVM", Some(1)), "{v}");
}

#[test]
fn visa_phone_runs_kernel_c3() {
    let (v, _) = pay(&["5.00", "--reader", "virtual:visa-phone"]);
    assert_eq!((s(&v, "outcome"), s(&v, "kernel"), s(&v, "aid")), ("ONLINE_REQUEST", "C-3", "A0000000031010"), "{v}");
    let (v, _) = pay(&["500.00", "--reader", "virtual:visa-phone", "--fingerprint"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cvm")), ("ONLINE_REQUEST", "CDCVM"), "{v}");
}

#[test]
fn plastic_card_has_no_cdcvm_and_asks_online_pin_above_limit() {
    let (v, _) = pay(&["500.00", "--reader", "virtual:unionpay-plastic", "--fingerprint"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cvm")), ("ONLINE_REQUEST", "ONLINE_PIN"), "{v}");
    assert_eq!(v["taps"], 1);
}

#[test]
fn eight_card_wallet_selects_by_priority_not_order() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:unionpay-phone-8cards"]);
    assert_eq!((s(&v, "label"), s(&v, "aid")), ("UnionPay Credit 1", "A00000033301010201"), "{v}");
}

#[test]
fn bad_fdda_signature_is_declined_with_reason() {
    let (v, code) = pay(&["10.00", "--reader", "virtual:bad-fdda"]);
    assert_eq!((s(&v, "outcome"), s(&v, "oda")), ("DECLINED", "fDDA_FAILED"), "{v}");
    assert!(s(&v, "reason").contains("offline data authentication failed"), "{v}");
    assert_eq!(code, 1);
}

#[test]
fn revoked_and_unknown_ca_keys_fail_oda() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:revoked-ca"]);
    assert_eq!(s(&v, "outcome"), "DECLINED");
    assert!(s(&v, "reason").contains("revoked"), "{v}");
    let (v, _) = pay(&["10.00", "--reader", "virtual:unknown-ca"]);
    assert_eq!(s(&v, "outcome"), "DECLINED");
    assert!(s(&v, "reason").contains("no CA public key"), "{v}");
}

#[test]
fn expired_token_is_declined_offline() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:expired-token"]);
    assert_eq!(s(&v, "outcome"), "DECLINED", "{v}");
    assert!(s(&v, "reason").contains("expired"), "{v}");
    assert_eq!(s(&v, "tvr"), "0040000000");
}

#[test]
fn card_decline_aac() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:card-decline"]);
    assert_eq!((s(&v, "outcome"), s(&v, "cryptogram_type")), ("DECLINED", "AAC"), "{v}");
}

#[test]
fn no_supported_aid_ends_application() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:no-supported-aid"]);
    assert_eq!(s(&v, "outcome"), "END_APPLICATION", "{v}");
    assert_eq!(s(&v, "ui_message"), "Insert, swipe or try another card");
}

#[test]
fn amount_over_contactless_limit_is_try_another_interface_without_a_tap() {
    let (v, _) = pay(&["10000.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!((s(&v, "outcome"), v["taps"].as_u64()), ("TRY_ANOTHER_INTERFACE", Some(0)), "{v}");
}

#[test]
fn card_removed_mid_tap_is_try_again() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:unionpay-phone", "--remove-after", "3"]);
    assert_eq!(s(&v, "outcome"), "TRY_AGAIN", "{v}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    for args in [&["abc"][..], &["1.234"], &["1.00", "--reader", "virtual:nope"], &["1.00", "--reader", "pcsc:x"], &["1.00", "--date", "261399"]] {
        let (v, code) = pay(args);
        assert_eq!((s(&v, "outcome"), code), ("ERROR", 2), "{args:?}: {v}");
        assert!(!s(&v, "error").is_empty());
    }
}

#[test]
fn air_time_is_reported_from_bytes_exchanged() {
    let (v, _) = pay(&["10.00", "--reader", "virtual:unionpay-transit"]);
    let air = v["card_in_field_ms"].as_f64().unwrap();
    // 6 exchanges, ~900 bytes with fDDA certificates: tens of milliseconds at 106 kbit/s.
    assert!((40.0..200.0).contains(&air), "{air}");
}
