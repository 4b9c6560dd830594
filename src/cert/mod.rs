//! `shanfu cert`: certification runs over a suite of test-card cases (issue 10).
//!
//! - [`case`]: the suite as data (`test-cards/suite/*.toml`, docs/cert-suite.md) and its loader.
//! - [`runner`]: one case over the virtual reader — kernel only, or online to the embedded
//!   acquirer simulator.
//! - [`verdict`]: expected vs actual, field by field.
//! - [`junit`]: JUnit XML for CI.
//! - [`evidence`]: the per-case folder a lab files.
//! - [`phone`]: the suite over pcscd / libnfc with the card played by `shanfu phone --in-hand`.
//! - [`serve`]: the JSON-lines automation server (`--serve ADDR`).

pub mod case;
pub mod evidence;
pub mod junit;
pub mod phone;
pub mod runner;
pub mod serve;
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
    /// Reader: `virtual` (the card profile in an in-process reader), `pcsc:NAME` or `nfc:NAME`
    /// (pcscd / libnfc, the card played by a `shanfu phone --in-hand` process on vpcd).
    #[arg(long, default_value = "virtual")]
    pub reader: String,
    /// Where vpcd waits for the card of the `--reader` (pcsc:/nfc: only).
    #[arg(long, default_value = test_cards::vpcd::DEFAULT_ADDR)]
    pub vpcd: std::net::SocketAddr,
    /// Only the cases whose id matches one of these comma-separated globs (`*` and `?`),
    /// e.g. `2EB.*,C7.ODA.0?`.
    #[arg(long = "case")]
    pub case: Option<String>,
    /// Serve the JSON-lines automation protocol on this address (docs/cert-suite.md) instead of
    /// running the suite once.
    #[arg(long)]
    pub serve: Option<std::net::SocketAddr>,
    /// `--serve`: seconds without a request before a connection is closed.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout: u64,
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

/// `--case`: comma-separated globs; a case is kept when any of them matches its id.
pub fn case_filter(patterns: &str, id: &str) -> bool {
    patterns.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| glob_match(p, id))
}

/// Per group: cases, passed, failed (errors count as failed), skipped.
pub fn summary_table(runs: &[CaseRun]) -> String {
    let mut groups: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for r in runs {
        let e = groups.entry(r.case.group.as_str()).or_default();
        e[0] += 1;
        e[1] += usize::from(r.passed());
        e[2] += usize::from(r.failed());
        e[3] += usize::from(r.skipped.is_some());
    }
    let w = groups.keys().map(|g| g.chars().count()).max().unwrap_or(5).max(5);
    let mut s = format!("{:w$}  {:>5}  {:>6}  {:>6}  {:>7}\n", "group", "cases", "passed", "failed", "skipped");
    let mut t = [0; 4];
    for (g, [c, ok, bad, skip]) in &groups {
        s += &format!("{g:w$}  {c:>5}  {ok:>6}  {bad:>6}  {skip:>7}\n");
        for (a, b) in t.iter_mut().zip([c, ok, bad, skip]) {
            *a += b;
        }
    }
    s += &format!("{:w$}  {:>5}  {:>6}  {:>6}  {:>7}\n", "total", t[0], t[1], t[2], t[3]);
    s
}

/// Cases run per second (skipped cases are not run).
pub fn rate(runs: &[CaseRun], elapsed: std::time::Duration) -> f64 {
    let run = runs.iter().filter(|r| r.skipped.is_none()).count();
    if elapsed.is_zero() {
        0.0
    } else {
        run as f64 / elapsed.as_secs_f64()
    }
}

/// The status word of a case in JSON and the automation server.
pub fn status(r: &CaseRun) -> &'static str {
    if r.skipped.is_some() {
        "skipped"
    } else if r.error.is_some() {
        "error"
    } else if r.passed() {
        "passed"
    } else {
        "failed"
    }
}

fn json_of(runs: &[CaseRun], elapsed: std::time::Duration) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.case.id, "title": r.case.title, "group": r.case.group,
                "status": status(r), "skip_reason": r.skipped,
                "error": r.error, "checks": r.checks, "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
            })
        })
        .collect();
    let passed = runs.iter().filter(|r| r.passed()).count();
    let failed = runs.iter().filter(|r| r.failed()).count();
    let skipped = runs.iter().filter(|r| r.skipped.is_some()).count();
    serde_json::json!({ "total": runs.len(), "passed": passed, "failed": failed, "skipped": skipped, "elapsed_ms": elapsed.as_secs_f64() * 1000.0, "cases_per_s": rate(runs, elapsed), "cases": cases })
}

/// The suite's cases, those matching `--case` only (comma-separated globs).
pub fn load_cases(suite: &Path, filter: Option<&str>, exp: u32) -> Result<Vec<case::Case>> {
    let mut cases = case::load_dir(suite, exp)?;
    if let Some(g) = filter {
        cases.retain(|c| case_filter(g, &c.id));
        if cases.is_empty() {
            bail!("--case {g:?} matches no case of {}", suite.display());
        }
    }
    Ok(cases)
}

/// The runner of `--reader`: `virtual`, or `pcsc:…` / `nfc:…` with the phone process on vpcd.
pub fn runner_for(base: crate::settings::Settings, reader: &str, vpcd: std::net::SocketAddr) -> Result<runner::Runner> {
    let r = runner::Runner::new(base)?;
    match reader.split_once(':').map(|(k, _)| k).unwrap_or(reader) {
        "virtual" if reader == "virtual" => Ok(r),
        "pcsc" | "nfc" => Ok(r.with_source(Box::new(phone::PhoneSource::start(reader, vpcd)?))),
        _ => bail!("--reader {reader:?}: give `virtual`, `pcsc:NAME` or `nfc:NAME`"),
    }
}

/// The closing line of a run: counts, time and rate.
pub fn summary_line(runs: &[CaseRun], elapsed: std::time::Duration) -> String {
    let count = |f: fn(&CaseRun) -> bool| runs.iter().filter(|r| f(r)).count();
    format!(
        "{} cases in {:.2} s ({:.1} cases/s): {} passed, {} failed, {} skipped\n",
        runs.len(),
        elapsed.as_secs_f64(),
        rate(runs, elapsed),
        count(CaseRun::passed),
        count(CaseRun::failed),
        count(|r| r.skipped.is_some())
    )
}

/// `shanfu cert`: loads the suite, runs the cases, writes the reports. Exit code 0 when no case
/// failed (skipped cases do not fail), 1 when any did; load errors are `Err` (exit 2).
pub fn main(args: &CertArgs, config: Option<&Path>) -> Result<i32> {
    let base = crate::settings::Settings::load(config)?;
    if let Some(addr) = args.serve {
        return serve::main(args, base, addr);
    }
    let exp = u32::from(base.ep.terminal.currency_exponent);
    let cases = load_cases(&args.suite, args.case.as_deref(), exp)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(cases.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            b.set_style(style);
        }
        b
    });
    let mut runner = runner_for(base, &args.reader, args.vpcd)?;
    let started = Instant::now();
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
            if r.failed() {
                b.println(format!("FAIL {} {}", c.id, c.title));
            }
            b.inc(1);
        }
        runs.push(r);
    }
    let elapsed = started.elapsed();
    drop(runner);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::write(&runs, elapsed)).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = runs.iter().filter(|r| r.failed()).count();
    let mut out = String::new();
    if args.json {
        out = serde_json::to_string_pretty(&json_of(&runs, elapsed))? + "\n";
    } else {
        for r in runs.iter().filter(|r| r.failed()) {
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
        for r in runs.iter().filter(|r| r.skipped.is_some()) {
            out += &format!("SKIP {} {}: {}\n", r.case.id, r.case.title, r.skipped.as_deref().unwrap_or(""));
        }
        out += &summary_table(&runs);
        out += &summary_line(&runs, elapsed);
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

    #[test]
    fn case_lists_are_comma_separated_globs() {
        assert!(case_filter("2EB.*,C7.ODA.0?", "C7.ODA.03"));
        assert!(case_filter("2EB.*, C7.ODA.0?", "2EB.010.00"));
        assert!(!case_filter("2EB.*,C7.ODA.0?", "C7.CVM.01"));
        assert!(!case_filter(",", "C7.CVM.01"));
    }
}
