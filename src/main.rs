//! `shanfu`: the terminal binary — the command line over the `shanfu` library (reader, Entry
//! Point / kernels, till, host, journal, screens). Errors become messages and exit codes here.

#[cfg(feature = "simulators")]
use reader_drivers::virtual_reader::{Holder, VirtualReader};
use shanfu::terminal::service::{self, HostChoice, Progress, SaleRequest, Terminal};
#[cfg(feature = "simulators")]
use shanfu::{acquirer, bench};
use shanfu::{decode, journal, pos, report, settings, terminal};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use kernels::types::{Amount, EmvDate, Ttq};
use reader_drivers::replay::{Exchange, ReplayReader, Script, ScriptTerminal};
use report::PayReport;
use settings::Settings;
use std::path::PathBuf;
use std::sync::Arc;
use terminal::TapPolicy;

/// Writes a line to stdout; a reader that went away (`| head`, `| true`) ends the output
/// quietly instead of a panic.
macro_rules! outln {
    ($($t:tt)*) => { emit(format!($($t)*), true) };
}

/// Like `outln!` without the newline.
macro_rules! out {
    ($($t:tt)*) => { emit(format!($($t)*), false) };
}

fn emit(s: String, newline: bool) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let r = o.write_all(s.as_bytes()).and_then(|_| if newline { o.write_all(b"\n") } else { Ok(()) }).and_then(|_| o.flush());
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

#[derive(Parser)]
#[command(name = "shanfu", version, about = "EMV contactless terminal (UnionPay QuickPass C-7, Visa C-3) with a phone-wallet simulator")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// Configuration directory (terminal.toml, kernels.toml, capk.toml); default: built-in config/.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (journal); default: XDG data dir.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// More log output (-v debug, -vv trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// One purchase, headless: prints the outcome (JSON with --json). Exit 0 approved / authorization
    /// data ready, 1 not approved, 2 error.
    Pay(PayArgs),
    /// Run the terminal against a recorded card session (DESIGN.md §5.3).
    Replay {
        script: PathBuf,
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "simulators")]
    /// The embedded default: cashier screen, virtual phone wallet in your hand (keys t, f, 1-8),
    /// embedded acquirer on 127.0.0.1. No hardware, no setup.
    Demo {
        /// Run scripted sales (approved, see phone, declined, reversal) and print their outcomes.
        #[arg(long)]
        headless: bool,
        /// The wallet in the demo phone.
        #[arg(long, default_value = "unionpay-phone")]
        profile: String,
    },
    /// The cashier screen at a checkout (ratatui): sales, outcome, receipts, refunds and voids,
    /// history, settlement.
    Pos {
        /// Reader: pcsc[:NAME], nfc[:CONNSTRING], or virtual[:PROFILE] (an automatic virtual holder).
        #[arg(long, default_value = "pcsc")]
        reader: String,
        /// Acquirer host ADDR, or `embedded` (simulator). Default: config/host.toml.
        #[arg(long)]
        host: Option<String>,
    },
    /// Host link keys (docs/host.md "Keys and MAC"): `provision` a new terminal master key with
    /// the acquirer (P-256 against the pinned acquirer key), `rotate` the working keys (a new
    /// sign-on). Prints key check values, never keys.
    Keys {
        #[arg(value_parser = ["provision", "rotate"])]
        action: String,
        /// Acquirer host ADDR, or `embedded` (simulator). Default: config/host.toml.
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Upload pending reversals and advices, then reconcile totals with the acquirer (0500).
    Settle {
        /// Acquirer host ADDR, or `embedded` (simulator). Default: config/host.toml.
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        timeout_ms: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// The stored transactions (PAN masked).
    Journal {
        #[command(subcommand)]
        cmd: Option<JournalCmd>,
    },
    #[cfg(feature = "simulators")]
    /// The acquirer simulator (ISO 8583 server with token vault), or its token commands.
    Acquirer(AcquirerArgs),
    #[cfg(feature = "simulators")]
    /// Measure: kernel CPU per tap vs air time, ISO 8583 pack/unpack, journal writes, acquirer
    /// authorizations per second with concurrent terminals (p50/p99). Prints a Markdown report.
    Bench {
        #[arg(long, default_value_t = 64)]
        terminals: usize,
        /// Authorizations per terminal (each run is 64 × 200 = 12 800: long enough for a
        /// steady rate).
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Also write the report to this file (e.g. bench/REPORT.md).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Also measure the real reader stacks on this PC/SC reader (a vpcd reader; pcscd running),
        /// with the phone wallet plugged into vpcd at --vpcd.
        #[arg(long)]
        pcsc: Option<String>,
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: std::net::SocketAddr,
        /// Also run the cert suite (the cases matching these comma-separated globs; all without a
        /// value) and report cases/s over the virtual reader and, with --pcsc, over pcscd.
        #[arg(long, num_args = 0..=1, default_missing_value = "*")]
        cert: Option<String>,
        #[arg(long, default_value = "test-cards/suite")]
        suite: PathBuf,
    },
    #[cfg(feature = "simulators")]
    /// The virtual phone wallet as its own process, plugged into the vpcd virtual reader so any
    /// PC/SC or libnfc application sees it. Control lines on stdin: tap, remove, fingerprint,
    /// card N, status, quit.
    Phone {
        #[arg(long, default_value = "unionpay-phone")]
        profile: String,
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: std::net::SocketAddr,
        /// ok: the holder confirms with the fingerprint when the phone asks, and taps again.
        #[arg(long, default_value = "none", value_parser = ["ok", "none"])]
        fingerprint: String,
        /// Pull the phone away after N APDUs of the first tap.
        #[arg(long)]
        remove_after: Option<usize>,
        /// Off the reader until told: stdin lines `load PROFILE`, `holder fingerprint=ok|none
        /// remove-after=N|none`, `tap`, `remove`, … switch the card per case (`shanfu cert
        /// --reader pcsc:…` drives it; docs/cert-suite.md).
        #[arg(long, conflicts_with_all = ["fingerprint", "remove_after"])]
        in_hand: bool,
    },
    /// Transit gate: taps back to back, open or reject with the reason, a JSON line per tap
    /// (config/gate.toml: fares, policy, deny list; docs/gate.md).
    Gate(shanfu::gate::cli::GateArgs),
    /// Every reader of every backend, with its state.
    Readers {
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "simulators")]
    /// Certification run: the test-card suite (test-cards/suite, docs/cert-suite.md) over the
    /// virtual reader; summary per group, JUnit XML, evidence folders. Exit 1 if any case fails.
    Cert(shanfu::cert::CertArgs),
    /// Decode hex: BER-TLV with tag names, C-APDU, R-APDU with status word meaning.
    Decode {
        hex: String,
        /// Show PAN and track 2 in clear.
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Subcommand)]
enum JournalCmd {
    /// One line per transaction.
    List,
    /// One transaction in full (PAN masked).
    Show { id: u64 },
    /// All transactions as CSV or JSON.
    Export {
        #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
        format: String,
    },
}

#[cfg(feature = "simulators")]
#[derive(Args)]
struct AcquirerArgs {
    #[command(subcommand)]
    cmd: Option<AcquirerCmd>,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8583")]
    listen: std::net::SocketAddr,
    /// Database directory (default: DATA/acquirer).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Delay every answer by this many milliseconds (fault injection; faults never hit 0800 sign-on / echo).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Never answer every Nth request.
    #[arg(long)]
    drop_every: Option<u64>,
    /// Close the connection instead of answering every Nth request.
    #[arg(long)]
    close_every: Option<u64>,
    /// Answer every Nth request with garbage.
    #[arg(long)]
    garble_every: Option<u64>,
    /// `off`: serve messages without a MAC on connections that did not sign on with keys
    /// (third-party test tools such as pyiso8583 hosts); default `on`: every message MAC'd.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    mac: String,
    /// The provisioning signing key: a file with the P-256 private key in hex (default: the
    /// simulator's TEST ONLY key, whose public half config/host.toml pins).
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Connections held open at most (lowered to what the descriptor limit allows); at the cap
    /// a new connection takes the place of the idlest one with no request in hand.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
}

#[cfg(feature = "simulators")]
#[derive(Subcommand)]
enum AcquirerCmd {
    /// Token lifecycle: suspend (lost phone), resume, delete.
    Token {
        #[arg(value_parser = ["suspend", "resume", "delete"])]
        action: String,
        token: String,
    },
    /// Transit deny list: add or remove a card (its PAN or token), or show its status; the gates
    /// get the change at their next sync (docs/gate.md).
    Deny {
        #[arg(value_parser = ["add", "remove", "status"])]
        action: String,
        pan: String,
    },
    /// Account of a card (its PAN or token): balance, block, unblock, or pin-reset (the wrong-PIN
    /// counter back to 0 after "PIN tries exceeded", docs/host.md "PIN verification").
    Account {
        #[arg(value_parser = ["balance", "block", "unblock", "pin-reset"])]
        action: String,
        pan: String,
    },
}

#[derive(Args)]
struct PayArgs {
    /// Amount in major units, e.g. 12.34: the total the card is asked for (with cashback, the
    /// purchase and the cashback together).
    amount: String,
    /// Transaction type (9C): purchase 00, refund 20, cash 01, cashback 09 (purchase with
    /// cashback: give --amount-other).
    #[arg(long = "type", value_enum, default_value = "purchase")]
    txn_type: shanfu::terminal::txn_type::TxnType,
    /// The cashback part of the amount (Amount, Other 9F03), for --type cashback.
    #[arg(long)]
    amount_other: Option<String>,
    /// When the card asks for online PIN, read the PIN from one line of standard input (a pipe;
    /// never on the command line). Without it such a card is declined "no PIN pad".
    #[arg(long)]
    pin_stdin: bool,
    /// Reader: virtual[:PROFILE], pcsc[:NAME], nfc[:CONNSTRING].
    #[arg(long, default_value = "virtual:unionpay-phone")]
    reader: String,
    /// The holder confirms on the phone with a fingerprint when it asks (two-tap See Phone flow).
    #[arg(long)]
    fingerprint: bool,
    #[arg(long)]
    json: bool,
    /// Transaction date YYMMDD instead of today (deterministic runs).
    #[arg(long)]
    date: Option<String>,
    /// Unpredictable number (8 hex digits) instead of a random one (deterministic runs).
    #[arg(long)]
    unpredictable_number: Option<String>,
    /// Write the card session as a replay script (PAN and track data masked unless --reveal).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Record card data in clear (test cards only: a faithful replay needs it).
    #[arg(long, requires = "record")]
    reveal: bool,
    /// Acquirer host ADDR (ISO 8583 over TCP), or `embedded` for the acquirer simulator.
    /// Default: config/host.toml; none configured → error.
    #[arg(long)]
    host: Option<String>,
    /// Stop at the kernel's outcome (ONLINE_REQUEST is not sent anywhere).
    #[arg(long, conflicts_with = "host")]
    no_host: bool,
    /// Host answer timeout (default: config/host.toml).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// How long to wait for a tap (and for the tap again after Try Again / See Phone).
    #[arg(long)]
    tap_timeout_ms: Option<u64>,
    /// Virtual holder pulls the card away after N exchanges (removal test).
    #[arg(long, hide = true)]
    remove_after: Option<usize>,
}

/// Logs go to stderr — or, while the cashier screen owns the terminal, to `file`.
fn init_logging(g: &Global, file: Option<PathBuf>, quiet_by_default: bool) {
    use tracing_subscriber::EnvFilter;
    let level = if g.quiet || (quiet_by_default && g.verbose == 0) {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("SHANFU_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let file = file.and_then(|p| {
        p.parent().map(std::fs::create_dir_all);
        std::fs::OpenOptions::new().create(true).append(true).open(&p).ok()
    });
    let json = g.log_format == "json";
    match file {
        Some(f) => {
            let b = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(f));
            if json {
                b.json().init()
            } else {
                b.init()
            }
        }
        None => {
            // Colours only for a person at a terminal: logs piped to a file or a collector stay plain.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let b = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
            if json {
                b.json().init()
            } else {
                b.init()
            }
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let screen = std::io::IsTerminal::is_terminal(&std::io::stdout()) && cli.cmd.is_screen();
    // A cert run stages failures on purpose (host timeouts, torn taps): the terminal's warnings
    // are the cases' expected behaviour, judged by their verdicts; -v shows them.
    #[cfg(feature = "simulators")]
    let quiet_by_default = matches!(cli.cmd, Cmd::Cert(_));
    #[cfg(not(feature = "simulators"))]
    let quiet_by_default = false;
    init_logging(&cli.global, screen.then(|| data_dir(&cli.global).join("shanfu.log")), quiet_by_default);
    let json = match &cli.cmd {
        Cmd::Pay(p) => p.json,
        Cmd::Replay { json, .. } => *json,
        _ => false,
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Once: as JSON on stdout for --json callers, else on stderr.
            if json {
                outln!("{}", serde_json::json!({ "outcome": "ERROR", "error": format!("{e:#}") }));
            } else {
                eprintln!("shanfu: error: {e:#}");
            }
            2
        }
    };
    std::process::exit(code);
}

impl Cmd {
    /// Whether the command takes over the terminal with the cashier screen.
    fn is_screen(&self) -> bool {
        match self {
            Cmd::Pos { .. } => true,
            #[cfg(feature = "simulators")]
            Cmd::Demo { headless: false, .. } => true,
            _ => false,
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Pay(a) => pay(&cli.global, a),
        Cmd::Replay { script, json } => replay(&cli.global, &script, json),
        #[cfg(feature = "simulators")]
        Cmd::Cert(a) => shanfu::cert::main(&a, cli.global.config.as_deref()),
        #[cfg(feature = "simulators")]
        Cmd::Demo { headless, .. } if headless || !std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            if !headless {
                eprintln!("shanfu demo: no terminal here, running the scripted sales (--headless)");
            }
            demo(&cli.global)
        }
        #[cfg(feature = "simulators")]
        Cmd::Demo { profile, .. } => {
            let wallet = test_cards::Wallet::load(&profile)?;
            let phone = reader_drivers::virtual_reader::PhoneInHand::new(&profile, wallet);
            let reader = Box::new(phone.reader());
            cashier(&cli.global, reader, Some(phone), None, true)
        }
        Cmd::Pos { reader, host } => {
            let r = open_reader(&reader, true, None)?;
            cashier(&cli.global, r, None, host, false)
        }
        Cmd::Settle { host, timeout_ms, json } => settle(&cli.global, host, timeout_ms, json),
        Cmd::Keys { action, host, json } => keys_cmd(&cli.global, &action, host, json),
        Cmd::Journal { cmd } => journal_cmd(&cli.global, cmd.unwrap_or(JournalCmd::List)),
        #[cfg(feature = "simulators")]
        Cmd::Acquirer(a) => acquirer_cmd(&cli.global, a),
        #[cfg(feature = "simulators")]
        Cmd::Bench { terminals, requests, output, pcsc, vpcd, cert, suite } => {
            let settings = Settings::load(cli.global.config.as_deref())?;
            let dir = data_dir(&cli.global);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let readers = pcsc.map(|pcsc_reader| bench::ReaderBench { pcsc_reader, vpcd });
            let mut report = bench::run(&settings, &dir, terminals, requests, readers.as_ref())?;
            if let Some(globs) = cert {
                report += &bench::cert_section(&settings, &suite, &globs, readers.as_ref())?;
            }
            out!("{report}");
            if let Some(p) = output {
                std::fs::write(&p, &report).with_context(|| format!("writing {}", p.display()))?;
            }
            Ok(0)
        }
        #[cfg(feature = "simulators")]
        Cmd::Phone { in_hand: true, vpcd, .. } => {
            shanfu::cert::phone::run_in_hand(vpcd)?;
            Ok(0)
        }
        #[cfg(feature = "simulators")]
        Cmd::Phone { profile, vpcd, fingerprint, remove_after, in_hand: false } => {
            let wallet = test_cards::Wallet::load(&profile)?;
            let opts = test_cards::vpcd::PhoneOptions { fingerprint_on_prompt: fingerprint == "ok", remove_after };
            test_cards::vpcd::run_stdin(vpcd, wallet, opts)?;
            Ok(0)
        }
        Cmd::Gate(a) => shanfu::gate::cli::main(&a, cli.global.config.as_deref(), &data_dir(&cli.global)),
        Cmd::Readers { json } => {
            let list = reader_drivers::list_readers();
            if json {
                outln!("{}", serde_json::to_string(&list)?);
            } else {
                // Every backend has at least one line: its readers, or why it has none.
                for r in &list {
                    let state = match &r.error {
                        Some(e) => format!("unavailable: {e}"),
                        None if r.card_present => "card present".to_string(),
                        None => "no card".to_string(),
                    };
                    outln!("{:<6} {:<40} {state}", r.backend, if r.name.is_empty() { "-" } else { &r.name });
                }
            }
            Ok(0)
        }
        Cmd::Decode { hex, reveal } => {
            outln!("{}", decode::decode(&hex, reveal).map_err(|e| anyhow!(e))?);
            Ok(0)
        }
    }
}

fn parse_hex<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    hex::decode(s).ok().and_then(|b| <[u8; N]>::try_from(b).ok()).ok_or_else(|| anyhow!("{what} {s:?} is not {N} bytes of hex"))
}

fn parse_date(s: &str) -> Result<EmvDate> {
    EmvDate::from_bcd(&parse_hex::<3>("date", s)?).ok_or_else(|| anyhow!("date {s:?} is not a valid YYMMDD"))
}

/// A reader by name. `fingerprint` / `remove_after` steer the virtual holder only.
fn open_reader(spec: &str, fingerprint: bool, remove_after: Option<usize>) -> Result<pos::SendReader> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        #[cfg(feature = "simulators")]
        "virtual" => {
            let profile = if arg.is_empty() { "unionpay-phone" } else { arg };
            let wallet = test_cards::Wallet::load(profile).with_context(|| format!("virtual reader {spec}"))?;
            Ok(Box::new(VirtualReader::new(profile, wallet, Holder { fingerprint_on_prompt: fingerprint, remove_after })))
        }
        #[cfg(not(feature = "simulators"))]
        "virtual" => {
            let _ = (arg, fingerprint, remove_after);
            bail!("this shanfu was built without the simulators: no virtual reader")
        }
        "pcsc" | "nfc" => Ok(reader_drivers::open(spec)?),
        _ => bail!("unknown reader {spec:?}: use virtual[:PROFILE], pcsc[:NAME] or nfc[:CONNSTRING]"),
    }
}

fn print_report(r: &PayReport, json: bool, symbol: &str) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(r)?);
    } else {
        out!("{}", r.text(symbol));
    }
    Ok(())
}

fn show(p: Progress) {
    match p {
        Progress::Message(m) => tracing::info!(message = m.text(), "display"),
        Progress::PresentCard => tracing::info!("display: present card"),
        Progress::CardDetected => tracing::debug!("display: card detected"),
        Progress::Authorizing => tracing::info!("display: authorizing"),
        Progress::EnterPin => tracing::info!("display: enter PIN"),
    }
}

fn data_dir(g: &Global) -> PathBuf {
    if let Some(d) = &g.data {
        return d.clone();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("shanfu")
}

#[cfg(feature = "simulators")]
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn pay(g: &Global, a: PayArgs) -> Result<i32> {
    let settings = Settings::load(g.config.as_deref())?;
    let exp = settings.ep.terminal.currency_exponent;
    let amount = Amount::parse(&a.amount, u32::from(exp)).with_context(|| format!("amount {:?}", a.amount))?;
    let amount_other = a.amount_other.as_deref().map(|o| Amount::parse(o, u32::from(exp)).with_context(|| format!("--amount-other {o:?}"))).transpose()?;
    a.txn_type.check_amounts(amount, amount_other).map_err(|e| anyhow::anyhow!("--type {}: {e}", a.txn_type.name()))?;
    let req = SaleRequest {
        amount,
        date: a.date.as_deref().map(parse_date).transpose()?,
        time: None,
        unpredictable_number: a.unpredictable_number.as_deref().map(|s| parse_hex::<4>("unpredictable number", s)).transpose()?,
        restart_numbers: vec![],
        txn_type: a.txn_type,
        amount_other,
    };
    let mut policy = TapPolicy::default();
    if let Some(ms) = a.tap_timeout_ms {
        let d = std::time::Duration::from_millis(ms);
        (policy.first_tap, policy.try_again, policy.see_phone) = (d, d, d);
    }
    // Where online requests go is settled before a card is asked for.
    let host = if a.no_host { None } else { Some(HostChoice::resolve(a.host.as_deref(), &settings)?) };
    let mut reader = open_reader(&a.reader, a.fingerprint, a.remove_after)?;
    let (report, tap) = match host {
        None => {
            let t = service::tap(&settings, &req, reader.as_mut(), &policy, &mut show);
            (t.report, t.result)
        }
        Some(host) => {
            let mut term = Terminal::open(settings.clone(), &data_dir(g), host)?;
            if a.pin_stdin {
                term.set_pin_pad(Box::new(shanfu::terminal::pin::StdinPinPad));
            }
            term.policy = policy;
            if let Some(ms) = a.timeout_ms {
                term.timeout = std::time::Duration::from_millis(ms);
            }
            let r = term.sale(&req, reader.as_mut(), &mut show)?;
            (r.report, r.tap)
        }
    };
    if let Some(path) = &a.record {
        write_script(path, &a, &settings, &tap)?;
    }
    print_report(&report, a.json, &settings.currency_symbol)?;
    Ok(report.exit_code())
}

fn write_script(path: &PathBuf, a: &PayArgs, settings: &Settings, result: &terminal::TapResult) -> Result<()> {
    let exp = u32::from(settings.ep.terminal.currency_exponent);
    let t = &result.transaction;
    let mask = |b: &[u8]| if a.reveal { b.to_vec() } else { shanfu::redact::mask_card_data(b) };
    let script = Script {
        name: format!("pay {} on {}", a.amount, a.reader),
        masked: !a.reveal,
        terminal: ScriptTerminal {
            amount: Some(t.amount.display(exp)),
            currency: Some(hex::encode(settings.ep.terminal.currency)),
            country: Some(hex::encode(settings.ep.terminal.country)),
            date: Some(hex::encode(t.date.to_bcd())),
            time: Some(hex::encode(t.time)),
            unpredictable_number: Some(hex::encode_upper(t.unpredictable_number)),
            unpredictable_numbers: result.unpredictable_numbers.iter().skip(1).map(hex::encode_upper).collect(),
            ttq: None,
        },
        exchanges: result.exchanges.iter().map(|x| Exchange { c: hex::encode_upper(&x.c), r: hex::encode_upper(mask(&x.r)), tap: Some(x.tap) }).collect(),
    };
    std::fs::write(path, serde_json::to_string_pretty(&script)?).with_context(|| format!("writing {}", path.display()))
}

fn keys_cmd(g: &Global, action: &str, host: Option<String>, json: bool) -> Result<i32> {
    let settings = Settings::load(g.config.as_deref())?;
    let host = HostChoice::resolve(host.as_deref(), &settings)?;
    let term = Terminal::open(settings, &data_dir(g), host)?;
    let r = term.keys(action == "provision")?;
    if json {
        outln!("{}", serde_json::to_string(&r)?);
    } else {
        if let Some(t) = &r.tmk_kcv {
            outln!("terminal master key provisioned: KCV {t}");
        }
        outln!("signed on: working keys PIN KCV {}, MAC KCV {}, data KCV {}", r.pin_key_kcv, r.mac_key_kcv, r.data_key_kcv);
    }
    Ok(0)
}

fn settle(g: &Global, host: Option<String>, timeout_ms: Option<u64>, json: bool) -> Result<i32> {
    let settings = Settings::load(g.config.as_deref())?;
    let host = HostChoice::resolve(host.as_deref(), &settings)?;
    let mut term = Terminal::open(settings, &data_dir(g), host).map_err(|e| {
        // A running terminal (pos, demo) holds the journal: settlement is its cashier's to do.
        if matches!(e.downcast_ref::<journal::JournalError>(), Some(journal::JournalError::InUse { .. })) {
            anyhow!("{e:#}: settle from the cashier screen of that terminal (or once it has stopped)")
        } else {
            e
        }
    })?;
    if let Some(ms) = timeout_ms {
        term.timeout = std::time::Duration::from_millis(ms);
    }
    let rep = term.settle()?;
    let settings = &term.settings;
    if json {
        outln!("{}", serde_json::to_string(&rep)?);
    } else {
        outln!(
            "settlement: {} — reversals sent {} (pending {}), advices sent {} (pending {}), purchases {} for {}{}, refunds {}",
            if rep.reconciled { "RECONCILED" } else { "NOT RECONCILED" },
            rep.reversals_sent,
            rep.reversals_pending,
            rep.advices_sent,
            rep.advices_pending,
            rep.totals.debits,
            settings.currency_symbol,
            Amount(rep.totals.debits_amount).display(u32::from(settings.ep.terminal.currency_exponent)),
            rep.totals.credits,
        );
    }
    Ok(if rep.reconciled { 0 } else { 1 })
}

/// `shanfu journal ...`: from the journal itself, or — while a running terminal holds it — from
/// that terminal over its local socket (the same text either way).
fn journal_cmd(g: &Global, cmd: JournalCmd) -> Result<i32> {
    use terminal::local::{journal_text, Query};
    let settings = Settings::load(g.config.as_deref())?;
    let exp = u32::from(settings.ep.terminal.currency_exponent);
    let q = match cmd {
        JournalCmd::List => Query::List,
        JournalCmd::Show { id } => Query::Show(id),
        JournalCmd::Export { format } => Query::Export(format),
    };
    out!("{}", journal_text(&data_dir(g), exp, &q)?);
    Ok(0)
}

#[cfg(feature = "simulators")]
fn acquirer_cmd(g: &Global, a: AcquirerArgs) -> Result<i32> {
    let db = a.db.clone().unwrap_or_else(|| data_dir(g).join("acquirer"));
    let line = match &a.cmd {
        Some(AcquirerCmd::Token { action, token }) => Some(format!("token {action} {token}")),
        Some(AcquirerCmd::Deny { action, pan }) => Some(format!("deny {action} {pan}")),
        Some(AcquirerCmd::Account { action, pan }) => Some(format!("account {action} {pan}")),
        None => None,
    };
    if let Some(line) = line {
        let answer = acquirer::admin_command(&db, &line)?;
        outln!("{}", answer.trim());
        return Ok(if answer.starts_with("ok") { 0 } else { 1 });
    }
    let faults = acquirer::Faults { delay_ms: a.delay_ms, drop_every: a.drop_every, close_every: a.close_every, garble_every: a.garble_every };
    let rt = runtime()?;
    let mac = if a.mac == "off" { acquirer::MacMode::Off } else { acquirer::MacMode::Required };
    let limits = acquirer::Limits {
        max_connections: a.max_connections.max(1),
        idle_timeout: std::time::Duration::from_secs(a.idle_timeout),
        ..acquirer::Limits::default()
    };
    rt.block_on(acquirer::run_server(a.listen, &db, faults, mac, a.signing_key.as_deref(), limits))?;
    Ok(0)
}

fn replay(g: &Global, path: &PathBuf, json: bool) -> Result<i32> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let script: Script = serde_json::from_str(&text).with_context(|| format!("{}: not a replay script", path.display()))?;
    let mut settings = Settings::load(g.config.as_deref())?;
    let t = script.terminal.clone();
    if let Some(c) = &t.currency {
        settings.ep.terminal.currency = parse_hex("currency", c)?;
    }
    if let Some(c) = &t.country {
        settings.ep.terminal.country = parse_hex("country", c)?;
    }
    if let Some(ttq) = &t.ttq {
        settings.override_ttq(Ttq(parse_hex("ttq", ttq)?));
    }
    let exp = settings.ep.terminal.currency_exponent;
    let req = SaleRequest {
        amount: Amount::parse(t.amount.as_deref().unwrap_or("0"), u32::from(exp))?,
        date: t.date.as_deref().map(parse_date).transpose()?,
        time: t.time.as_deref().map(|s| parse_hex::<3>("time", s)).transpose()?,
        unpredictable_number: Some(t.unpredictable_number.as_deref().map(|s| parse_hex::<4>("unpredictable_number", s)).transpose()?.unwrap_or([0; 4])),
        restart_numbers: t.unpredictable_numbers.iter().map(|s| parse_hex::<4>("unpredictable_numbers", s)).collect::<Result<Vec<_>>>()?,
        ..Default::default()
    };
    if script.masked {
        tracing::warn!("this recording was made without --reveal: its card data is masked, so signatures over it will not verify");
    }
    let mut reader = ReplayReader::new(script);
    let mut report = service::tap(&settings, &req, &mut reader, &TapPolicy::default(), &mut show).report;
    report.replay_differences = reader.differences.clone();
    if reader.unused() > 0 {
        tracing::warn!(unused = reader.unused(), "the recorded session has exchanges the terminal did not make");
    }
    print_report(&report, json, &settings.currency_symbol)?;
    Ok(report.exit_code())
}

#[cfg(feature = "simulators")]
/// The scripted sales of `demo --headless`: (what, amount, profile, fingerprint when asked).
/// The headless demo's sales: what, amount, wallet, whether the holder confirms on the phone.
const DEMO_SALES: &[(&str, &str, &str, bool)] = &[
    ("metro fare, offline (fDDA)", "4.00", "unionpay-transit", false),
    ("coffee, phone, online", "28.00", "unionpay-phone", false),
    ("groceries, locked phone", "520.00", "unionpay-phone", false),
    ("groceries, fingerprint + tap again", "520.00", "unionpay-phone", true),
    ("visa phone", "66.00", "visa-phone", false),
    ("8-card wallet, default card", "12.00", "unionpay-phone-8cards", false),
    ("TV, more than the account holds", "9999.00", "unionpay-phone", true),
    ("card declined", "15.00", "card-decline", false),
    ("bad fDDA", "8.00", "bad-fdda", false),
];

/// The cashier screen on this terminal.
/// `training`: the demo — its own data directory (DATA/training), the acquirer simulator, and
/// "TRAINING — NOT A PAYMENT" on every screen and receipt.
fn cashier(g: &Global, reader: pos::SendReader, phone: Option<pos::DemoPhone>, host: Option<String>, training: bool) -> Result<i32> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        bail!("the cashier screen needs a terminal (use `shanfu demo --headless` or `shanfu pay` in scripts)");
    }
    let settings = Settings::load(g.config.as_deref())?;
    let (data, host) =
        if training { (data_dir(g).join("training"), HostChoice::Embedded) } else { (data_dir(g), HostChoice::resolve(host.as_deref(), &settings)?) };
    let mut till = Terminal::open(settings, &data, host)?;
    till.training = training;
    let till = Arc::new(till);
    let mut app = pos::App::new(till, reader, phone, data.join("receipts"));
    // Online PIN: the till asks the PIN on this screen (issue 12).
    app.use_screen_pin_pad();
    pos::run(&mut app)?;
    Ok(0)
}

#[cfg(feature = "simulators")]
/// `shanfu demo --headless`: scripted sales on the virtual phone wallet through the whole
/// terminal (Entry Point, kernels, journal, embedded acquirer over loopback TCP), then a lost
/// phone, a void and the settlement. Its own data directory, removed afterwards.
fn demo(g: &Global) -> Result<i32> {
    let settings = Settings::load(g.config.as_deref())?;
    let data = std::env::temp_dir().join(format!("shanfu-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let res = demo_in(settings, &data);
    let _ = std::fs::remove_dir_all(&data);
    res
}

#[cfg(feature = "simulators")]
fn demo_in(settings: Settings, data: &std::path::Path) -> Result<i32> {
    outln!("*** {} ***", shanfu::terminal::receipt::TRAINING);
    outln!(
        "shanfu demo — merchant {} ({}), terminal {}: virtual reader, virtual phone wallet, embedded acquirer\n",
        settings.ep.terminal.merchant_name_location,
        settings.merchant_id,
        settings.ep.terminal.terminal_id
    );
    let mut till = Terminal::open(settings, data, HostChoice::Embedded)?;
    till.training = true;
    outln!("{:<36} {:>9}  {:<15} {:<5} {:<4} {:>4}  why", "sale", "amount", "outcome", "cvm", "kern", "taps");
    let line = |what: &str, r: &PayReport| {
        let why = r.disposition.cashier_text(host_contract::Lang::En).to_string();
        outln!(
            "{:<36} {:>9}  {:<15} {:<5} {:<4} {:>4}  {}",
            what,
            format!("{}{}", till.settings.currency_symbol, r.amount),
            r.outcome,
            if matches!(r.cvm, kernels::outcome::Cvm::NoCvm | kernels::outcome::Cvm::NotApplicable) { "-" } else { r.cvm.name() },
            r.kernel.as_deref().unwrap_or("-"),
            r.taps,
            if r.disposition.is_approved() { r.auth_code.as_deref().map(|a| format!("auth code {a}")).unwrap_or_else(|| r.reason.clone()) } else { why }
        );
    };
    let mut coffee = None;
    let sale_on = |what: &str, amount: &str, profile: &str, fp: bool| -> Result<PayReport> {
        let wallet = test_cards::Wallet::load(profile)?;
        let mut reader = VirtualReader::new(profile, wallet, Holder { fingerprint_on_prompt: fp, remove_after: None });
        let req = SaleRequest { amount: till.parse_amount(amount)?, ..Default::default() };
        let r = till.sale(&req, &mut reader, &mut |_| {})?.report;
        line(what, &r);
        Ok(r)
    };
    for (what, amount, profile, fp) in DEMO_SALES {
        let r = sale_on(what, amount, profile, *fp)?;
        if what.starts_with("coffee") {
            coffee = r.journal_id;
        }
    }
    // Lost phone: the holder reports it, the token is suspended; a tap is declined; found again.
    let db = data.join("acquirer");
    acquirer::admin_command(&db, "token suspend 6235880000000017")?;
    sale_on("lost phone (token suspended)", "28.00", "unionpay-phone", false)?;
    acquirer::admin_command(&db, "token resume 6235880000000017")?;
    sale_on("phone found (token resumed)", "28.00", "unionpay-phone", false)?;
    if let Some(id) = coffee {
        let v = till.void(id)?;
        outln!(
            "{:<36} {:>9}  {:<15} reversal (0400) {}",
            format!("void of the coffee (#{id})"),
            till.money(v.amount),
            format!("{:?}", v.state).to_uppercase(),
            v.reason.unwrap_or_default()
        );
    }
    let s = till.settle()?;
    outln!(
        "\nsettlement: {} — {} sales {}, {} refunds {}; advices sent {}, reversals sent {}",
        if s.reconciled { "RECONCILED" } else { "NOT RECONCILED" },
        s.totals.debits,
        till.money(s.totals.debits_amount),
        s.totals.credits,
        till.money(s.totals.credits_amount),
        s.advices_sent,
        s.reversals_sent
    );
    Ok(if s.reconciled { 0 } else { 1 })
}
