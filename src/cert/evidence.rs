//! The evidence folder of one case, for a lab to file: the case as written, the APDU trace with
//! timestamps (R-APDUs with card data masked), the data record as TLV (PAN masked), the report
//! JSON and the verdict.

use super::runner::{command_name, CaseRun};
use super::verdict;
use crate::{decode, redact};
use std::path::{Path, PathBuf};

/// The folder name of a case id (ids are checked at load: no slashes).
pub fn folder(root: &Path, id: &str) -> PathBuf {
    root.join(id.replace(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)), "_"))
}

/// The APDU trace: one line per C-APDU and per R-APDU, time since the case started.
pub fn trace_text(run: &CaseRun) -> String {
    let mut s = String::new();
    for t in &run.trace {
        let ms = t.at.as_secs_f64() * 1000.0;
        // A reader event without an APDU (the field switched off before a restart).
        if t.c.is_empty() {
            s += &format!("+{ms:9.3} ms  tap {}  -- {}\n", t.tap, t.r.as_ref().err().map(String::as_str).unwrap_or("reader event"));
            continue;
        }
        s += &format!("+{ms:9.3} ms  tap {}  C> {}  {}\n", t.tap, hex::encode_upper(&t.c), command_name(&t.c));
        match &t.r {
            Ok(r) => s += &format!("{:13}  tap {}  R< {}\n", "", t.tap, hex::encode_upper(redact::mask_card_data(r))),
            Err(e) => s += &format!("{:13}  tap {}  R! {e}\n", "", t.tap),
        }
    }
    if s.is_empty() {
        s = "(no APDU exchanged: no card was asked for, or none answered)\n".into();
    }
    s
}

/// The data record as decoded TLV (PAN masked).
pub fn record_text(run: &CaseRun) -> String {
    let record = run.actual.as_ref().map(|a| a.record.clone()).unwrap_or_default();
    if record.is_empty() {
        "(no data record: the kernel did not complete)\n".to_string()
    } else {
        decode::decode(&hex::encode(&record), false).unwrap_or_else(|e| format!("undecodable data record ({e}): {} bytes\n", record.len()))
    }
}

/// The verdict as text.
pub fn verdict_text(run: &CaseRun) -> String {
    let c = &run.case;
    let word = if run.skipped.is_some() {
        "SKIP"
    } else if run.passed() {
        "PASS"
    } else {
        "FAIL"
    };
    let mut s = format!("{word} {}\n{}\ngroup: {}\nfile: {}\n\n", c.id, c.title, c.group, c.file.display());
    if let Some(why) = &run.skipped {
        s += &format!("skipped: {why}\n");
    }
    if let Some(e) = &run.error {
        s += &format!("error: {e}\n");
    }
    let w = run.checks.iter().map(|c| c.field.len()).max().unwrap_or(5);
    for k in &run.checks {
        s += &format!("{} {:w$}  expected: {}\n     {:w$}  actual:   {}\n", if k.ok { "ok  " } else { "FAIL" }, k.field, k.expected, "", k.actual);
    }
    if run.failed() && run.error.is_none() {
        s += &format!("\ndiffering fields:\n{}", verdict::diff(&run.checks));
    }
    s
}

/// Writes the folder; returns its path.
pub fn write(root: &Path, run: &CaseRun) -> std::io::Result<PathBuf> {
    let dir = folder(root, &run.case.id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("case.toml"), &run.case.source)?;
    std::fs::write(dir.join("trace.txt"), trace_text(run))?;
    std::fs::write(dir.join("record.txt"), record_text(run))?;
    let report = run.report.as_ref().map(|r| serde_json::to_string_pretty(r).unwrap_or_default()).unwrap_or_else(|| "null".into());
    std::fs::write(dir.join("report.json"), report + "\n")?;
    std::fs::write(dir.join("verdict.txt"), verdict_text(run))?;
    if let Some(log) = &run.phone_log {
        // The phone process's own lines: APDU headers and status words, no card data.
        std::fs::write(dir.join("phone.txt"), log)?;
    }
    Ok(dir)
}
