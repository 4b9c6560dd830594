//! `shanfu decode` through the binary: card data in real-looking READ RECORD responses is
//! masked unless `--reveal`, by the one rule of `src/redact.rs`.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

/// A Visa mag-stripe-mode record: CTQ, track 1 (56), track 2 data (9F6B), cardholder name.
const VISA_MSD_RECORD: &str = "70719F6C020001563D42343839353030303030303030303031335E5649534120544553542F43415244484F4C4445525E323931323230313130303030303030303030303030309F6B134895000000000013D29122011000000000000F5F20145649534120544553542F43415244484F4C4445529000";
/// A UnionPay record: track 2 equivalent (57), PAN, name, expiry, PSN.
const UNIONPAY_RECORD: &str = "703557136235880000000017D29122010000000000000F5A0862358800000000175F20095A48414E472F5745495F24032912315F3401019000";
/// Record 1 as the virtual UnionPay phone answers READ RECORD (`pay --record --reveal`).
const PHONE_RECORD_1: &str = "70295A0862358800000000175F24032912315F280201569F0702FF009F080200309F4A01825F25032401019000";

fn decode(hex: &str, reveal: bool) -> String {
    let mut c = Command::new(BIN);
    c.args(["decode", hex]).stdin(Stdio::null());
    if reveal {
        c.arg("--reveal");
    }
    let out = c.output().expect("run shanfu decode");
    assert!(out.status.success(), "decode {hex}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The longest run of decimal digits in `s` (a PAN is 13-19 of them).
fn longest_digit_run(s: &str) -> usize {
    s.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0)
}

#[test]
fn record_responses_show_no_card_data_without_reveal() {
    for (record, pan, masked) in [
        (VISA_MSD_RECORD, "4895000000000013", "489500******0013"),
        (UNIONPAY_RECORD, "6235880000000017", "623588******0017"),
        (PHONE_RECORD_1, "6235880000000017", "623588******0017"),
    ] {
        let s = decode(record, false);
        assert!(s.starts_with("R-APDU  SW 9000"), "{s}");
        assert!(s.contains("70 (READ RECORD Response Message Template)"), "{s}");
        assert!(!s.contains(pan), "clear PAN:\n{s}");
        assert!(longest_digit_run(&s) < 12, "a long digit run (PAN?) in:\n{s}");
        assert!(s.contains(masked), "{s}");
        // Nothing of the tracks beyond the masked PAN: no expiry / service code, no names (as
        // text or as hex of the ASCII).
        for secret in ["2912201", "D2912", "CARDHOLDER", "ZHANG", "5A48414E47", "43415244484F4C444552", "3438393530"] {
            assert!(!s.contains(secret), "{secret} shown without --reveal:\n{s}");
        }
    }
    let visa = decode(VISA_MSD_RECORD, false);
    assert!(visa.contains("56 (Track 1 Data) [61] B489500******0013^<withheld> (--reveal to show)"), "{visa}");
    assert!(visa.contains("9F6B (Track 2 Data) [19] 489500******0013=<withheld> (--reveal to show)"), "{visa}");
    assert!(visa.contains("5F20 (Cardholder Name) [20] <withheld> (--reveal to show)"), "{visa}");
    assert!(visa.contains("9F6C (Card Transaction Qualifiers (CTQ)) [2] 0001"), "{visa}");
    let up = decode(UNIONPAY_RECORD, false);
    assert!(up.contains("57 (Track 2 Equivalent Data) [19] 623588******0017=<withheld> (--reveal to show)"), "{up}");
    assert!(up.contains("5F24 (Application Expiration Date) [3] 291231"), "not sensitive, shown: {up}");
}

#[test]
fn reveal_shows_the_card_data() {
    let s = decode(VISA_MSD_RECORD, true);
    assert!(s.contains("4895000000000013D29122011000000000000F"), "{s}");
    assert!(s.contains("\"B4895000000000013^VISA TEST/CARDHOLDER^2912201100000000000000\""), "{s}");
    assert!(s.contains("\"VISA TEST/CARDHOLDER\""), "{s}");
    let s = decode(UNIONPAY_RECORD, true);
    assert!(s.contains("5A (Application Primary Account Number (PAN)) [8] 6235880000000017"), "{s}");
}
