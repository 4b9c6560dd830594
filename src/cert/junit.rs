//! JUnit XML for CI (the schema CI servers read: testsuites > testsuite per group > testcase,
//! `failure` for a mismatch, `error` for a case that could not run).

use super::runner::CaseRun;
use super::verdict;
use std::collections::BTreeMap;

/// Text content: `&`, `<`, `>` escaped; characters XML 1.0 cannot hold become U+FFFD.
pub fn escape_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\t' | '\n' | '\r' => o.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// Attribute values (double-quoted): also quotes, and whitespace kept as character references.
pub fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;").replace('\'', "&apos;").replace('\n', "&#10;").replace('\r', "&#13;").replace('\t', "&#9;")
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The whole report.
pub fn write(runs: &[CaseRun], total: std::time::Duration) -> String {
    let mut groups: BTreeMap<&str, Vec<&CaseRun>> = BTreeMap::new();
    for r in runs {
        groups.entry(r.case.group.as_str()).or_default().push(r);
    }
    let count = |v: &[&CaseRun]| {
        let errors = v.iter().filter(|r| r.skipped.is_none() && r.error.is_some()).count();
        let failures = v.iter().filter(|r| r.error.is_none() && r.failed()).count();
        let skipped = v.iter().filter(|r| r.skipped.is_some()).count();
        (v.len(), failures, errors, skipped)
    };
    let all: Vec<&CaseRun> = runs.iter().collect();
    let (n, f, e, s) = count(&all);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += &format!("<testsuites name=\"shanfu cert\" tests=\"{n}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{}\">\n", secs(total));
    for (g, v) in groups {
        let (n, f, e, s) = count(&v);
        let t: std::time::Duration = v.iter().map(|r| r.elapsed).sum();
        x += &format!("  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"{}\">\n", escape_attr(g), secs(t));
        for r in v {
            let c = &r.case;
            x += &format!(
                "    <testcase classname=\"shanfu.cert.{}\" name=\"{}\" time=\"{}\"",
                escape_attr(&c.group),
                escape_attr(&format!("{} {}", c.id, c.title)),
                secs(r.elapsed)
            );
            if let Some(why) = &r.skipped {
                x += &format!(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape_attr(why));
            } else if let Some(err) = &r.error {
                x += &format!(">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>\n", escape_attr(err), escape_text(err));
            } else if !r.passed() {
                let fields: Vec<&str> = r.failures().map(|c| c.field.as_str()).collect();
                let msg = format!("{} differ: {}", fields.len(), fields.join(", "));
                x += &format!(
                    ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>\n",
                    escape_attr(&msg),
                    escape_text(&verdict::diff(&r.checks))
                );
            } else {
                x += "/>\n";
            }
        }
        x += "  </testsuite>\n";
    }
    x += "</testsuites>\n";
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_quotes_and_control_characters_are_escaped() {
        assert_eq!(escape_text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(escape_attr("say \"hi\" & 'bye'\n"), "say &quot;hi&quot; &amp; &apos;bye&apos;&#10;");
        assert_eq!(escape_text("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape_text("收银 ¥1.00\tok"), "收银 ¥1.00\tok");
        assert!(!escape_attr("]]><x a=\"1\"/>").contains(['<', '>', '"']));
    }

    #[test]
    fn a_skipped_case_is_reported_as_skipped_not_failed() {
        let text =
            "[[case]]\nid = \"X.1\"\ntitle = \"t\"\ngroup = \"g\"\nprofile = \"unionpay-phone\"\namount = \"1.00\"\nexpect = { outcome = \"APPROVED\" }\n";
        let case = crate::cert::case::parse_file(std::path::Path::new("t.toml"), text, 2).unwrap().remove(0);
        let why = "holder.second_card is played only by the virtual reader's scripted holder";
        let (actual, error, report, phone_log) = (None, None, None, None);
        let elapsed = std::time::Duration::ZERO;
        let run = CaseRun { case, actual, checks: vec![], error, trace: vec![], report, elapsed, skipped: Some(why.into()), phone_log };
        assert!(!run.passed() && !run.failed());
        assert_eq!(crate::cert::status(&run), "skipped");
        let runs = [run];
        let x = write(&runs, elapsed);
        assert!(x.contains("tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\""), "{x}");
        assert!(x.contains("<skipped message=\"holder.second_card is played only by the virtual reader&apos;s scripted holder\"/>"), "{x}");
        let t = crate::cert::summary_table(&runs);
        assert!(t.lines().last().is_some_and(|l| l.split_whitespace().collect::<Vec<_>>() == ["total", "1", "0", "0", "1"]), "{t}");
        assert!(crate::cert::summary_line(&runs, elapsed).ends_with("0 passed, 0 failed, 1 skipped\n"));
    }
}
