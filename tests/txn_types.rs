//! `shanfu pay --type … --amount-other …` through the real binary (virtual reader, kernel only)
//! and `shanfu cert` refusing the new case keys when they are wrong (issue 10).

use serde_json::Value;
use std::process::{Command, Output};

fn shanfu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shanfu")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run shanfu")
}

fn pay(args: &[&str]) -> (Value, Output) {
    let mut all = vec!["pay"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--no-host", "--date", "261125"]);
    let out = shanfu(&all);
    let v = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null);
    (v, out)
}

/// A tag's value in the report's ICC data (DE 55 content), by a plain search of `tag ‖ len`.
fn icc_has(v: &Value, tlv: &str) -> bool {
    v["icc_data"].as_str().unwrap_or("").contains(tlv)
}

#[test]
fn cashback_sends_9c_09_and_the_cashback_in_9f03() {
    let (v, out) = pay(&["50.00", "--type", "cashback", "--amount-other", "10.00", "--reader", "virtual:unionpay-phone"]);
    assert_eq!(v["outcome"].as_str(), Some("ONLINE_REQUEST"), "{v} {}", String::from_utf8_lossy(&out.stderr));
    assert!(icc_has(&v, "9C0109"), "{v}");
    assert!(icc_has(&v, "9F0206000000005000"), "{v}");
}

#[test]
fn cash_on_an_offline_card_goes_online_and_purchase_does_not() {
    let (cash, _) = pay(&["20.00", "--type", "cash", "--reader", "virtual:unionpay-transit"]);
    assert_eq!((cash["outcome"].as_str(), cash["cryptogram_type"].as_str()), (Some("ONLINE_REQUEST"), Some("ARQC")), "{cash}");
    assert!(icc_has(&cash, "9C0101"), "{cash}");
    let (sale, _) = pay(&["20.00", "--reader", "virtual:unionpay-transit"]);
    assert_eq!(sale["outcome"].as_str(), Some("APPROVED"), "{sale}");
}

#[test]
fn wrong_amounts_for_the_type_are_refused_before_any_tap() {
    for (args, want) in [
        (vec!["20.00", "--type", "cashback"], "needs the cashback amount"),
        (vec!["20.00", "--type", "cashback", "--amount-other", "30.00"], "more than the total"),
        (vec!["20.00", "--amount-other", "5.00"], "cashback only"),
    ] {
        // With --json the error is the JSON object on stdout.
        let (v, out) = pay(&args);
        let err = v["error"].as_str().unwrap_or("");
        assert!(out.status.code() == Some(2) && v["outcome"] == "ERROR" && err.contains(want), "{args:?}: {v}");
    }
}

#[test]
fn cert_refuses_bad_new_keys_naming_the_file_and_the_case() {
    let dir = std::env::temp_dir().join(format!("shanfu-txn-types-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let case = |extra: &str| {
        format!("group = \"g\"\n[[case]]\nid = \"X.1\"\ntitle = \"t\"\nprofile = \"unionpay-phone\"\namount = \"20.00\"\n{extra}\nexpect = {{ outcome = \"ONLINE_REQUEST\" }}\n")
    };
    for (extra, want) in [
        ("type = \"cashback\"", "needs the cashback amount"),
        ("amount_other = \"1.00\"", "cashback only"),
        ("type = \"layaway\"", "layaway"),
        ("holder = { remove_second_after = 2 }", "needs holder.second_card"),
        ("holder = { second_card = \"no-such-card\" }", "no-such-card"),
        ("host_faults = { drop = true }", "host = \\\"embedded\\\""),
        ("host = \"embedded\"\nhost_faults = { response_code = \"123\" }", "not two letters"),
    ] {
        std::fs::write(dir.join("s.toml"), case(extra)).unwrap();
        let out = shanfu(&["cert", "--suite", dir.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains("s.toml: case X.1") && (err.contains(want) || err.contains(&want.replace("\\\"", "\""))), "{extra}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
