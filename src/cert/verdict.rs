//! The verdict of one case: every expected field next to what the run produced.

use super::case::{Expect, TVR_BITS};
use super::runner::{command_name, Actual};
use kernels::tlv::{self, Tag};
use serde::Serialize;

/// One field compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub field: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".into())
}

/// Compares `e` with `a`: one [`Check`] per field the case gives.
pub fn judge(e: &Expect, a: &Actual) -> Vec<Check> {
    let mut out = Vec::new();
    let mut eq = |field: &str, expected: String, actual: String| {
        let ok = expected == actual;
        out.push(Check { field: field.into(), expected, actual, ok });
    };
    if let Some(x) = &e.outcome {
        eq("outcome", x.clone(), a.outcome.clone());
    }
    if let Some(x) = &e.disposition {
        eq("disposition", x.clone(), a.disposition.clone());
    }
    if let Some(x) = &e.reason {
        eq("reason", x.clone(), opt(&a.reason));
    }
    if let Some(x) = &e.response_code {
        eq("response_code", x.clone(), opt(&a.response_code));
    }
    if let Some(x) = &e.cvm {
        eq("cvm", x.clone(), a.cvm.clone());
    }
    if let Some(x) = &e.oda {
        eq("oda", x.clone(), a.oda.clone());
    }
    if let Some(x) = e.online {
        eq("online", x.to_string(), a.online.to_string());
    }
    if let Some(x) = e.taps {
        eq("taps", x.to_string(), a.taps.to_string());
    }
    if let Some(x) = &e.kernel {
        eq("kernel", x.clone(), opt(&a.kernel));
    }
    if let Some(x) = &e.aid {
        eq("aid", x.to_uppercase(), opt(&a.aid));
    }
    if let Some(x) = &e.label {
        eq("label", x.clone(), opt(&a.label));
    }
    if let Some(x) = &e.cryptogram_type {
        eq("cryptogram_type", x.clone(), opt(&a.cryptogram_type));
    }
    if let Some(x) = &e.ui {
        eq("ui", x.join(" > "), a.ui.join(" > "));
    }
    if let Some(x) = &e.ui_message {
        eq("ui_message", x.clone(), opt(&a.ui_message));
    }
    if let Some(x) = &e.available_offline_amount {
        eq("available_offline_amount", x.clone(), opt(&a.available_offline_amount));
    }
    if let Some(x) = &e.tvr {
        eq("tvr", x.to_uppercase(), a.tvr.clone());
    }
    if let Some(x) = e.field_off {
        eq("field_off", x.to_string(), (!a.field_offs.is_empty()).to_string());
    }
    if let Some(x) = e.field_off_ms {
        let got = a.field_offs.first().map(|d| d.as_millis().to_string()).unwrap_or_else(|| "(no field off)".into());
        eq("field_off_ms", x.to_string(), got);
    }
    if let Some(x) = e.reversal {
        eq("reversal", x.to_string(), a.reversal.to_string());
    }
    if let Some(x) = &e.processing_code {
        eq("processing_code", x.clone(), opt(&a.processing_code));
    }
    if let Some(x) = &e.journal_state {
        eq("journal_state", x.clone(), opt(&a.journal_state));
    }
    let tvr = hex::decode(&a.tvr).unwrap_or_default();
    for (names, want) in [(&e.tvr_set, true), (&e.tvr_clear, false)] {
        for n in names {
            let is_set = TVR_BITS.iter().find(|b| b.0 == n).is_some_and(|&(_, byte, mask)| tvr.get(byte - 1).is_some_and(|v| v & mask != 0));
            let word = |b: bool| if b { "set" } else { "clear" }.to_string();
            eq(&format!("tvr.{n}"), word(want), word(is_set));
        }
    }
    for (t, v) in &e.tags {
        let tag = u32::from_str_radix(t, 16).map(Tag).ok();
        let got = tag.and_then(|t| tlv::find(&a.record, t).ok().flatten()).map(hex::encode_upper);
        eq(&format!("tags.{}", t.to_uppercase()), v.to_uppercase(), got.unwrap_or_else(|| "(absent from the data record)".into()));
    }
    for c in &e.capdu {
        let sent: Vec<String> = a.capdus.iter().filter(|x| command_name(x) == c.command).map(hex::encode_upper).collect();
        let field = format!("capdu.{}", c.command);
        let (expected, actual, ok) = if c.absent {
            ("not sent".to_string(), if sent.is_empty() { "not sent".into() } else { sent.join(", ") }, sent.is_empty())
        } else {
            match &c.contains {
                Some(h) => {
                    let h = h.to_uppercase();
                    let ok = sent.iter().any(|s| s.contains(&h));
                    (format!("contains {h}"), if sent.is_empty() { "not sent".into() } else { sent.join(", ") }, ok)
                }
                None => ("sent".into(), if sent.is_empty() { "not sent".into() } else { "sent".into() }, !sent.is_empty()),
            }
        };
        out.push(Check { field, expected, actual, ok });
    }
    if let Some(x) = &e.reason_contains {
        let ok = a.reason_text.contains(x.as_str());
        out.push(Check { field: "reason_contains".into(), expected: format!("…{x}…"), actual: a.reason_text.clone(), ok });
    }
    out
}

/// A readable expected-vs-actual table of the fields that differ.
pub fn diff(checks: &[Check]) -> String {
    let bad: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let w = bad.iter().map(|c| c.field.len()).max().unwrap_or(5).max(5);
    let mut s = String::new();
    for c in bad {
        s += &format!("    {:w$}  expected: {}\n    {:w$}  actual:   {}\n", c.field, c.expected, "", c.actual);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_listed_field_by_field() {
        let e = Expect { outcome: Some("APPROVED".into()), taps: Some(1), tvr_set: vec!["expired_application".into()], ..Default::default() };
        let a = Actual { outcome: "DECLINED".into(), taps: 1, tvr: "0040000000".into(), ..Default::default() };
        let c = judge(&e, &a);
        assert_eq!(c.iter().filter(|c| !c.ok).count(), 1, "{c:?}");
        let d = diff(&c);
        assert!(d.contains("outcome  expected: APPROVED") && d.contains("actual:   DECLINED"), "{d}");
    }
}
