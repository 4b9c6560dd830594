//! Running `shanfu gate` over virtual holders, for the gate tests.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh scratch directory for one test.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shanfu-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the gate over the holders (`virtual:` list); the tap lines and the summary. No clear
/// PAN of the test cards may appear on stdout.
pub fn run(data: &Path, holders: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_shanfu"))
        .args(["--data", data.to_str().unwrap(), "gate", "--json", "--reader", &format!("virtual:{holders}")])
        .args(extra)
        .output()
        .expect("run shanfu gate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gate failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for pan in ["6235880000000017", "6225000000000027", "6235880000000108", "6225000000000035"] {
        assert!(!stdout.contains(pan), "no clear PAN on stdout");
    }
    let mut lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let summary = lines.pop().expect("summary line");
    (lines, summary["summary"].clone())
}
