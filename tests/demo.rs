//! `shanfu demo` without a terminal (as README's first command runs in scripts and CI): the
//! scripted sales go through the whole terminal — kernels, journal, embedded acquirer over
//! loopback TCP — and end reconciled.

use std::process::{Command, Stdio};

fn demo(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu")).args(args).stdin(Stdio::null()).output().expect("run shanfu demo");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code().unwrap_or(-1))
}

fn row<'a>(out: &'a str, sale: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(sale)).unwrap_or_else(|| panic!("no {sale:?} line in\n{out}"))
}

#[test]
fn headless_demo_runs_every_kind_of_sale_and_reconciles() {
    let (out, err, rc) = demo(&["demo", "--headless"]);
    assert_eq!(rc, 0, "{out}\n{err}");
    assert!(row(&out, "metro fare, offline").contains("APPROVED"), "{out}");
    assert!(row(&out, "coffee, phone, online").contains("auth code"), "{out}");
    assert!(row(&out, "groceries, locked phone").contains("SEE_PHONE"), "{out}");
    let fp = row(&out, "groceries, fingerprint + tap again");
    assert!(fp.contains("APPROVED") && fp.contains("CDCVM"), "{fp}");
    assert!(row(&out, "visa phone").contains("C-3"), "{out}");
    assert!(row(&out, "TV, more than").contains("Insufficient funds"), "{out}");
    assert!(row(&out, "lost phone (token suspended)").contains("Token suspended"), "{out}");
    assert!(row(&out, "phone found (token resumed)").contains("APPROVED"), "{out}");
    assert!(row(&out, "void of the coffee").contains("REVERSED"), "{out}");
    assert!(out.contains("settlement: RECONCILED"), "{out}");
    // Clear tokens never reach the screen.
    assert!(!out.contains("6235880000000017"), "{out}");
}

#[test]
fn demo_without_a_terminal_falls_back_to_the_script() {
    let (out, err, rc) = demo(&["demo"]);
    assert_eq!(rc, 0, "{out}\n{err}");
    assert!(err.contains("no terminal"), "{err}");
    assert!(out.contains("settlement: RECONCILED"), "{out}");
}
