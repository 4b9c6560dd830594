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
    /// The acquirer the uploads and the deny-list sync go to: ADDR, or `embedded` (the acquirer
    /// simulator in this process, over DATA/acquirer). Default: config/host.toml's address, if any.
    #[arg(long, conflicts_with = "no_host")]
    pub host: Option<String>,
    /// No acquirer: uploads stay queued in the gate journal, the deny list is the file's.
    #[arg(long)]
    pub no_host: bool,
    /// After the last tap, how long the uploader may still send what is queued, seconds.
    #[arg(long, default_value_t = 5)]
    pub drain_s: u64,
}

/// The uploader running beside the gate loop.
struct Background {
    rt: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    task: tokio::task::JoinHandle<std::sync::Arc<super::upload::Stats>>,
    stats: std::sync::Arc<super::upload::Stats>,
    timeout: Duration,
}

/// Starts the uploader (and the embedded acquirer when asked), after a first deny-list sync.
fn start_uploader(args: &GateArgs, lane: &mut Lane, settings: &crate::settings::Settings, data: &Path) -> Result<Option<Background>> {
    use crate::terminal::service::HostChoice;
    if args.no_host || (args.host.is_none() && settings.host.address.is_none()) {
        return Ok(None);
    }
    let choice = HostChoice::resolve(args.host.as_deref(), settings)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let addr = match choice {
        HostChoice::Addr(a) => a,
        #[cfg(feature = "simulators")]
        HostChoice::Embedded => {
            let db = data.join("acquirer");
            rt.block_on(crate::acquirer::embedded(&db)).with_context(|| format!("starting the embedded acquirer over {}", db.display()))?
        }
        #[cfg(not(feature = "simulators"))]
        HostChoice::Embedded => {
            let _ = data;
            bail!("this shanfu was built without the simulators: there is no embedded acquirer")
        }
    };
    let mut id = crate::terminal::service::identity(settings);
    id.terminal_id = lane.cfg.gate_id.clone();
    let timeout = Duration::from_millis(settings.host.timeout_ms);
    let (tx, rx) = std::sync::mpsc::channel();
    lane.listen(rx);
    let sync_every = Duration::from_secs(lane.cfg.deny_sync_s);
    let mut up = super::upload::Uploader::new(lane.journal(), addr, timeout, id, tx, &lane.deny, sync_every)?;
    up.configure_link(&settings.host, &data.join("keystore"));
    // The first sync before the first tap: a card denied at the acquirer is refused from it.
    if let Err(e) = rt.block_on(up.sync()) {
        tracing::warn!(error = %e, "deny-list sync at start failed: the gate goes on with the list it has");
    }
    lane.apply_updates();
    let stats = up.stats.clone();
    let (stop, stop_rx) = tokio::sync::watch::channel(None);
    let task = rt.spawn(up.run(stop_rx));
    Ok(Some(Background { rt, stop, task, stats, timeout }))
}

impl Background {
    /// Lets the uploader send what is queued for up to `drain`, then stops it.
    fn finish(self, drain: Duration) -> std::sync::Arc<super::upload::Stats> {
        let _ = self.stop.send(Some(tokio::time::Instant::now() + drain));
        let bound = drain + self.timeout + Duration::from_secs(1);
        let stats = self.stats.clone();
        let task = self.task;
        match self.rt.block_on(async { tokio::time::timeout(bound, task).await }) {
            Ok(Ok(s)) => s,
            _ => stats,
        }
    }
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
        format!("#{} {:5} {:6} {} [{}]", ev.seq, ev.light, ev.decision.name(), ev.display, who)
    })
}

/// Runs the gate. Exit 0 when the loop ended normally.
pub fn main(args: &GateArgs, config: Option<&Path>, data: &Path) -> Result<i32> {
    let settings = crate::settings::Settings::load(config)?;
    let cfg = GateConfig::load(config, u32::from(settings.ep.terminal.currency_exponent))?;
    let mut reader = open_reader(&args.reader)?;
    let dir = args.gate_data.clone().unwrap_or_else(|| data.join("gate-lane"));
    let mut lane = Lane::open(cfg, settings.clone(), &dir, Duration::from_secs(args.wait_s), config)
        .with_context(|| format!("opening the gate journal under {}", dir.display()))?;
    // The acquirer's list as last synced, then the file's when it is newer.
    if let Some(full) = super::upload::load_host_list(&lane.journal())? {
        lane.deny.apply_full(full.version, full.card_keys()?).context("the deny list kept in the gate journal")?;
    }
    if let Some(p) = &args.deny_list {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading the deny list {}", p.display()))?;
        let full: super::deny::FullList = serde_json::from_str(&text).with_context(|| format!("deny list {}", p.display()))?;
        let keys = full.card_keys().with_context(|| format!("deny list {}", p.display()))?;
        if full.version <= lane.deny.version() && lane.deny.version() > 0 {
            tracing::warn!(file = full.version, held = lane.deny.version(), "the deny-list file is not newer than the list synced: not applied");
        } else {
            lane.deny.apply_full(full.version, keys).with_context(|| format!("deny list {}", p.display()))?;
        }
    }
    let background = start_uploader(args, &mut lane, &settings, data)?;
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
        if ev.decision == super::lane::Gate::Open {
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
    let stats = background.map(|b| b.finish(Duration::from_secs(args.drain_s)));
    let (sent, approved, declined, refused) = stats.as_ref().map_or((0, 0, 0, 0), |s| {
        use std::sync::atomic::Ordering::Relaxed;
        (s.sent.load(Relaxed), s.approved.load(Relaxed), s.declined.load(Relaxed), s.failed.load(Relaxed))
    });
    let pending = lane.pending_uploads()?.len();
    if args.json {
        let summary = serde_json::json!({ "summary": { "taps": c.taps, "opens": c.opens, "rejects": c.rejects,
            "taps_per_minute": per_minute, "uploads_queued": pending, "aggregates_closed_at_end": flushed.len(),
            "uploads_sent": sent, "uploads_approved": approved, "uploads_declined": declined, "uploads_refused": refused, "uploads_pending": pending,
            "host": stats.is_some(), "deny_list_version": lane.deny.version() } });
        writeln!(out, "{summary}")?;
    } else {
        writeln!(
            out,
            "{} taps: {} opened, {} rejected ({per_minute:.0} taps/min); uploads: {sent} sent, {pending} pending, {declined} declined",
            c.taps, c.opens, c.rejects
        )?;
    }
    Ok(0)
}
