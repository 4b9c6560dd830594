//! The cashier screen driven for real: `shanfu demo` (embedded acquirer on loopback TCP, the
//! phone wallet in hand) runs in a detached tmux session; the test types keys with
//! `send-keys` and reads the screen with `capture-pane`, like a cashier would use it. The journal
//! is checked afterwards with `shanfu journal export`.

mod common;

use common::tmux::{Tmux, SALE_EN, SALE_ZH};
use serde_json::Value;

#[test]
fn cashier_sells_see_phone_refund_and_suspended_token_in_the_real_binary() {
    let t = Tmux::start_english("flow", 100, 30, &["demo"]);
    t.wait_for(&[SALE_EN, "host online", "TRAINING — NOT A PAYMENT"]);

    // 1. 12.34, Enter, tap → APPROVED.
    t.type_text("12.34");
    t.wait_for(&["¥ 12.34"]);
    t.keys(&["Enter"]);
    t.wait_for(&["Present card or phone", "s left"]);
    t.keys(&["t"]);
    let s = t.wait_for(&["APPROVED", "623588******0017"]);
    assert!(s.contains("¥12.34"), "{s}");

    // Receipt of it, exported to a file.
    t.keys(&["r"]);
    t.wait_for(&["Receipt", "Merchant ID", "AMOUNT       CNY ¥12.34"]);
    t.keys(&["e"]);
    t.wait_for(&["receipt saved to"]);
    t.keys(&["Escape"]);
    t.next_sale();

    // 2. Above the CVM limit: SEE PHONE, fingerprint, tap again → APPROVED, verified by device.
    t.type_text("400");
    t.keys(&["Enter"]);
    t.wait_for(&["Present card or phone"]);
    t.keys(&["t"]);
    t.wait_for(&["SEE PHONE", "Unlock your phone and confirm with fingerprint"]);
    t.keys(&["f"]);
    t.wait_for(&["verified ✓"]);
    t.keys(&["t"]);
    t.wait_for(&["APPROVED", "Verified by device"]);
    t.next_sale();

    // 3. Refund of the first sale from the history.
    t.keys(&["h"]);
    t.wait_for(&["History", "12.34", "400.00"]);
    t.keys(&["/"]);
    t.type_text("12.34");
    t.keys(&["Enter", "r"]);
    t.wait_for(&["Refund ¥12.34 of transaction 1", "y = yes"]);
    t.keys(&["y"]);
    t.wait_for(&["APPROVED", "Refund of transaction 1"]);
    t.next_sale();

    // 4. The phone is lost: its token is suspended at the acquirer → DECLINED with the reason.
    let out = t.shanfu_training(&["acquirer", "token", "suspend", "6235880000000017"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    t.type_text("50");
    t.keys(&["Enter"]);
    t.wait_for(&["Present card or phone"]);
    t.keys(&["t"]);
    t.wait_for(&["DECLINED", "Token suspended"]);

    // 5. Quit; the terminal is given back and the journal holds all four.
    t.next_sale();
    t.quit();
    // The demo is training mode: its journal lives apart, under DATA/training.
    let out = t.shanfu_training(&["journal", "export", "--format", "json"]);
    assert!(t.dir.join("journal").read_dir().is_err(), "training wrote into the real journal");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let rows = j.as_array().unwrap();
    let find =
        |kind: &str, amount: u64| rows.iter().find(|r| r["slip"] == kind && r["amount"] == amount).unwrap_or_else(|| panic!("no {kind} {amount} in {j}"));
    assert_eq!(find("SALE", 1234)["outcome"], "APPROVED");
    assert_eq!(find("SALE", 40000)["outcome"], "APPROVED");
    assert_eq!(find("SALE", 40000)["cvm"], "CDCVM");
    let refund = find("REFUND", 1234);
    assert_eq!(refund["outcome"], "APPROVED");
    assert_eq!(refund["original"], find("SALE", 1234)["id"]);
    let declined = find("SALE", 5000);
    assert_eq!(declined["response_code"], "62", "{declined}");
    let receipt = std::fs::read_to_string(t.dir.join("training").join("receipts").join("receipt-1.txt")).expect("receipt exported");
    assert!(receipt.contains("TRAINING — NOT A PAYMENT"), "{receipt}");
    assert!(receipt.contains("623588******0017") && !receipt.contains("6235880000000017"), "{receipt}");
}

#[test]
fn cashier_screen_survives_resize_and_works_at_80x24() {
    let t = Tmux::start_english("resize", 80, 24, &["demo"]);
    t.wait_for(&[SALE_EN]);
    t.keys(&["?"]);
    t.wait_for(&["Keys — any key closes", "t tap phone, f fingerprint"]);
    t.keys(&["Escape"]);
    let out = t.tmux(&["resize-window", "-t", "pos", "-x", "120", "-y", "40"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t.type_text("7");
    t.wait_for(&["¥ 7", SALE_EN]);
    let out = t.tmux(&["resize-window", "-t", "pos", "-x", "80", "-y", "24"]);
    assert!(out.status.success());
    t.keys(&["Enter"]);
    t.wait_for(&["Present card or phone"]);
    t.keys(&["Escape"]);
    // Cancelled wait: the sale ends without a charge.
    t.wait_for(&["CANCELLED", "nothing was charged"]);
    t.next_sale();
    t.quit();
}

/// The shipped configuration is a CNY terminal: with no `language` set, the screens and the
/// receipt are in Simplified Chinese, with the local time of Asia/Shanghai.
#[test]
fn cashier_sells_in_chinese_by_default() {
    let t = Tmux::start("zh", 100, 30, &["demo"]);
    t.wait_for(&[SALE_ZH, "主机 在线", "培训模式 — 非真实交易"]);
    t.type_text("12.34");
    t.wait_for(&["¥ 12.34"]);
    t.keys(&["Enter"]);
    t.wait_for(&["请挥卡或手机", "Esc 取消"]);
    t.keys(&["t"]);
    t.wait_for(&["交易成功", "发卡行批准", "623588******0017"]);
    t.keys(&["r"]);
    t.wait_for(&["签购单", "商户编号", "日期时间", "CST", "CNY ¥12.34"]);
    t.keys(&["e"]);
    t.wait_for(&["签购单已保存到"]);
    t.keys(&["Escape"]);
    t.next_sale();
    t.keys(&["h"]);
    t.wait_for(&["交易记录", "12.34", "已完成"]);
    t.keys(&["Escape"]);
    t.wait_for(&[SALE_ZH]);
    t.quit();
    let receipt = std::fs::read_to_string(t.dir.join("training").join("receipts").join("receipt-1.txt")).expect("receipt exported");
    assert!(receipt.contains("金额") && receipt.contains("培训模式 — 非真实交易"), "{receipt}");
}
