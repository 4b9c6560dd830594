//! `shanfu cert`: certification runs over a suite of test-card cases (issue 10).
//!
//! - [`case`]: the suite as data (`test-cards/suite/*.toml`, docs/cert-suite.md) and its loader.
//! - [`runner`]: one case over the virtual reader — kernel only, or online to the embedded
//!   acquirer simulator.
//! - [`verdict`]: expected vs actual, field by field.
//! - [`junit`]: JUnit XML for CI.
//! - [`evidence`]: the per-case folder a lab files.

pub mod case;
pub mod evidence;
pub mod junit;
pub mod runner;
pub mod verdict;

use anyhow::{bail, Context, Result};
use runner::CaseRun;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use runner::ui_name;

/// Arguments of `shanfu cert`.
#[derive(Debug, clap::Args)]
pub struct CertArgs {
    /// Suite directory (*.toml case files).
    #[arg(long, default_value = "test-cards/suite")]
    pub suite: PathBuf,
    /// Reader: `virtual` (the card profile in an in-process reader). pcscd runs come later.
    #[arg(long, default_value = "virtual")]
    pub reader: String,
    /// Only the cases whose id matches this glob (`*` and `?`), e.g. `2EB.*`.
    #[arg(long = "case")]
    pub case: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write one evidence folder per case under this directory.
    #[arg(long)]
    pub evidence: Option<PathBuf>,
}

/// `*` any run of characters, `?` one character; the rest literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Per group: cases, passed, failed (errors count as failed).
pub fn summary_table(runs: &[CaseRun]) -> String {
    let mut groups: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in runs {
        let e = groups.entry(r.case.group.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(r.passed());
    }
    let w = groups.keys().map(|g| g.chars().count()).max().unwrap_or(5).max(5);
    let mut s = format!("{:w$}  {:>5}  {:>6}  {:>6}\n", "group", "cases", "passed", "failed");
    let (mut n, mut p) = (0, 0);
    for (g, (c, ok)) in &groups {
        s += &format!("{g:w$}  {c:>5}  {ok:>6}  {:>6}\n", c - ok);
        n += c;
        p += ok;
    }
    s += &format!("{:w$}  {n:>5}  {p:>6}  {:>6}\n", "total", n - p);
    s
}

fn json_of(runs: &[CaseRun], elapsed: std::time::Duration) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.case.id, "title": r.case.title, "group": r.case.group,
                "status": if r.error.is_some() { "error" } else if r.passed() { "passed" } else { "failed" },
                "error": r.error, "checks": r.checks, "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
            })
        })
        .collect();
    let passed = runs.iter().filter(|r| r.passed()).count();
    serde_json::json!({ "total": runs.len(), "passed": passed, "failed": runs.len() - passed, "elapsed_ms": elapsed.as_secs_f64() * 1000.0, "cases": cases })
}

/// `shanfu cert`: loads the suite, runs the cases, writes the reports. Exit code 0 when every
/// case passed, 1 when any failed; load errors are `Err` (exit 2).
pub fn main(args: &CertArgs, config: Option<&Path>) -> Result<i32> {
    if args.reader != "virtual" {
        bail!("--reader {:?}: only `virtual` runs the suite in this version (PC/SC with `shanfu phone` comes later)", args.reader);
    }
    let base = crate::settings::Settings::load(config)?;
    let exp = u32::from(base.ep.terminal.currency_exponent);
    let mut cases = case::load_dir(&args.suite, exp)?;
    if let Some(g) = &args.case {
        cases.retain(|c| glob_match(g, &c.id));
        if cases.is_empty() {
            bail!("--case {g:?} matches no case of {}", args.suite.display());
        }
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(cases.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            b.set_style(style);
        }
        b
    });
    let started = Instant::now();
    let mut runner = runner::Runner::new(base)?;
    let mut runs = Vec::with_capacity(cases.len());
    for c in &cases {
        if let Some(b) = &bar {
            b.set_message(c.id.clone());
        }
        let r = runner.run(c);
        if let Some(dir) = &args.evidence {
            evidence::write(dir, &r).with_context(|| format!("writing the evidence of {} under {}", c.id, dir.display()))?;
        }
        if let Some(b) = &bar {
            if !r.passed() {
                b.println(format!("FAIL {} {}", c.id, c.title));
            }
            b.inc(1);
        }
        runs.push(r);
    }
    drop(runner);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::write(&runs, elapsed)).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = runs.iter().filter(|r| !r.passed()).count();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&json_of(&runs, elapsed))? + "\n";
    } else {
        for r in runs.iter().filter(|r| !r.passed()) {
            out += &format!("FAIL {} {} ({})\n", r.case.id, r.case.title, r.case.file.display());
            match &r.error {
                Some(e) => out += &format!("    error: {e}\n"),
                None => out += &verdict::diff(&r.checks),
            }
            out += "    APDU trace (card data masked):\n";
            for l in evidence::trace_text(r).lines() {
                out += &format!("      {l}\n");
            }
            out += "\n";
        }
        out += &summary_table(&runs);
        out += &format!("{} cases in {:.2} s: {} passed, {failed} failed\n", runs.len(), elapsed.as_secs_f64(), runs.len() - failed);
    }
    {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(out.as_bytes()).and_then(|_| o.flush());
    }
    Ok(i32::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_ids() {
        assert!(glob_match("2EB.*", "2EB.010.00"));
        assert!(glob_match("*", "C7.ODA.03"));
        assert!(glob_match("C7.ODA.0?", "C7.ODA.03"));
        assert!(!glob_match("2EB.*", "2ED.016.00"));
        assert!(glob_match("*.01*", "C7.CVM.01"));
        assert!(!glob_match("C7", "C7.CVM.01"));
    }
}
