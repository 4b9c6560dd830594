//! `shanfu gate`: the gate loop — taps back to back at one reader, a JSON line (or a display
//! line) per tap, an optional command run per opening (how a turnstile controller is driven),
//! counters at the end.

use super::config::GateConfig;
use super::lane::{Lane, TapEvent};
use anyhow::{bail, Context, Result};
use reader_drivers::Reader;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of `shanfu gate`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// `pcsc[:NAME]`, `nfc[:CONNSTRING]`, or `virtual:P1,P2,…` — holders tapping in turn
    /// (`PROFILE[+fingerprint][+remove=N]`; a profile named twice is the same phone).
    #[arg(long, default_value = "virtual:unionpay-phone")]
    pub reader: String,
    /// Stop after N taps (tests); default: run until no holder is left (virtual) or forever.
    #[arg(long)]
    pub taps: Option<u64>,
    /// Run this shell command at every opening (env SHANFU_GATE_SEQ, SHANFU_GATE_FARE); the
    /// gate does not wait for it.
    #[arg(long)]
    pub open_cmd: Option<String>,
    /// A JSON line per tap on stdout, and a summary line at the end.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each tap at a real reader, seconds.
    #[arg(long, default_value_t = 3600)]
    pub wait_s: u64,
    /// Load the acquirer's full deny list from this JSON file (`{"version": N, "keys": [hex…]}`)
    /// before the first tap.
    #[arg(long)]
    pub deny_list: Option<PathBuf>,
    /// Gate data directory (journal of taps and uploads); default: DATA/gate-lane.
    #[arg(long)]
    pub gate_data: Option<PathBuf>,
}

fn open_reader(spec: &str) -> Result<Box<dyn Reader + Send>> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        #[cfg(feature = "simulators")]
        "virtual" => {
            let list = if arg.is_empty() { "unionpay-phone" } else { arg };
            Ok(Box::new(reader_drivers::virtual_queue::VirtualQueue::parse(list)?))
        }
        #[cfg(not(feature = "simulators"))]
        "virtual" => {
            let _ = arg;
            bail!("this shanfu was built without the simulators: no virtual reader")
        }
        "pcsc" | "nfc" => Ok(reader_drivers::open(spec)?),
        _ => bail!("unknown reader {spec:?}: use virtual:P1,P2,…, pcsc[:NAME] or nfc[:CONNSTRING]"),
    }
}

fn line(ev: &TapEvent, json: bool) -> Result<String> {
    Ok(if json {
        serde_json::to_string(ev)?
    } else {
        let who = ev.pan_masked.as_deref().unwrap_or("-");
        format!("#{} {:5} {:6} {} [{}]", ev.seq, ev.light, ev.decision, ev.display, who)
    })
}

/// Runs the gate. Exit 0 when the loop ended normally.
pub fn main(args: &GateArgs, config: Option<&Path>, data: &Path) -> Result<i32> {
    let settings = crate::settings::Settings::load(config)?;
    let cfg = GateConfig::load(config, u32::from(settings.ep.terminal.currency_exponent))?;
    let mut reader = open_reader(&args.reader)?;
    let dir = args.gate_data.clone().unwrap_or_else(|| data.join("gate-lane"));
    let mut lane = Lane::open(cfg, settings, &dir, Duration::from_secs(args.wait_s), config)
        .with_context(|| format!("opening the gate journal under {}", dir.display()))?;
    if let Some(p) = &args.deny_list {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading the deny list {}", p.display()))?;
        let full: super::deny::FullList = serde_json::from_str(&text).with_context(|| format!("deny list {}", p.display()))?;
        lane.deny.apply_full(full.version, full.card_keys()?).with_context(|| format!("deny list {}", p.display()))?;
    }
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut children = Vec::new();
    while args.taps.is_none_or(|n| lane.counters.taps < n) {
        let now = crate::clock::unix_now();
        lane.close_due(now, false)?;
        let Some(ev) = lane.tap(reader.as_mut(), now)? else {
            if args.reader.starts_with("virtual") {
                break;
            }
            continue;
        };
        if ev.decision == "OPEN" {
            if let Some(cmd) = &args.open_cmd {
                match std::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .env("SHANFU_GATE_SEQ", ev.seq.to_string())
                    .env("SHANFU_GATE_FARE", ev.fare.clone().unwrap_or_default())
                    .stdin(std::process::Stdio::null())
                    .spawn()
                {
                    Ok(c) => children.push(c),
                    Err(e) => tracing::error!(error = %e, "--open-cmd could not start"),
                }
            }
        }
        writeln!(out, "{}", line(&ev, args.json)?)?;
        out.flush()?;
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }
    let flushed = lane.close_due(crate::clock::unix_now(), true)?;
    for mut c in children {
        let _ = c.wait();
    }
    let c = lane.counters;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let per_minute = if minutes > 0.0 { c.taps as f64 / minutes } else { 0.0 };
    let pending = lane.pending_uploads()?.len();
    if args.json {
        let summary = serde_json::json!({ "summary": { "taps": c.taps, "opens": c.opens, "rejects": c.rejects,
            "taps_per_minute": per_minute, "uploads_queued": pending, "aggregates_closed_at_end": flushed.len() } });
        writeln!(out, "{summary}")?;
    } else {
        writeln!(out, "{} taps: {} opened, {} rejected ({per_minute:.0} taps/min); {pending} uploads queued", c.taps, c.opens, c.rejects)?;
    }
    Ok(0)
}
