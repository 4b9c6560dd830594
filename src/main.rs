//! `shanfu`: the terminal binary — thin wiring of reader, Entry Point / kernels and output.

mod clock;
mod decode;
mod redact;
mod report;
mod settings;
mod terminal;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use kernels::entry_point::{EntryPoint, Transaction};
use kernels::types::{Amount, EmvDate, Ttq};
use reader_drivers::replay::{Exchange, ReplayReader, Script, ScriptTerminal};
use reader_drivers::virtual_reader::{Holder, VirtualReader};
use reader_drivers::Reader;
use report::PayReport;
use settings::Settings;
use std::path::PathBuf;
use std::sync::Arc;
use terminal::{Display, TapPolicy};

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
    /// The embedded default: virtual phone wallet, virtual reader, scripted sales.
    Demo {
        /// Run the scripted sales and print their outcomes (the cashier TUI comes with issue 5).
        #[arg(long)]
        headless: bool,
    },
    /// Decode hex: BER-TLV with tag names, C-APDU, R-APDU with status word meaning.
    Decode {
        hex: String,
        /// Show PAN and track 2 in clear.
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Args)]
struct PayArgs {
    /// Amount in major units, e.g. 12.34.
    amount: String,
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
    /// Write the card session as a replay script.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Virtual holder pulls the card away after N exchanges (removal test).
    #[arg(long, hide = true)]
    remove_after: Option<usize>,
}

fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let level = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("SHANFU_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if g.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let json = match &cli.cmd {
        Cmd::Pay(p) => p.json,
        Cmd::Replay { json, .. } => *json,
        _ => false,
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "outcome": "ERROR", "error": format!("{e:#}") }));
            }
            eprintln!("shanfu: error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Pay(a) => pay(&cli.global, a),
        Cmd::Replay { script, json } => replay(&cli.global, &script, json),
        Cmd::Demo { headless } => demo(&cli.global, headless),
        Cmd::Decode { hex, reveal } => {
            println!("{}", decode::decode(&hex, reveal).map_err(|e| anyhow!(e))?);
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

fn un() -> [u8; 4] {
    clock::unpredictable_number().unwrap_or_else(|e| {
        tracing::error!(error = %e, "no OS randomness; unpredictable number from the clock");
        (clock::unix_now() as u32).to_be_bytes()
    })
}

fn open_reader(spec: &str, holder: Holder) -> Result<Box<dyn Reader>> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "virtual" => {
            let profile = if arg.is_empty() { "unionpay-phone" } else { arg };
            let wallet = test_cards::Wallet::load(profile).with_context(|| format!("virtual reader {spec}"))?;
            Ok(Box::new(VirtualReader::new(profile, wallet, holder)))
        }
        "pcsc" | "nfc" => bail!("reader backend {kind:?} is not built yet (issue 4); use virtual:PROFILE"),
        _ => bail!("unknown reader {spec:?}: use virtual[:PROFILE], pcsc[:NAME] or nfc[:CONNSTRING]"),
    }
}

fn print_report(r: &PayReport, json: bool, symbol: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        print!("{}", r.text(symbol));
    }
    Ok(())
}

fn show(d: Display) {
    match d {
        Display::Ui(ui) => tracing::info!(message = ui.message.text(), status = ?ui.status, "display"),
        Display::PresentCard => tracing::info!("display: present card"),
    }
}

fn pay(g: &Global, a: PayArgs) -> Result<i32> {
    let settings = Settings::load(g.config.as_deref())?;
    let exp = settings.ep.terminal.currency_exponent;
    let amount = Amount::parse(&a.amount, u32::from(exp)).with_context(|| format!("amount {:?}", a.amount))?;
    let (today, time) = clock::now();
    let date = a.date.as_deref().map(parse_date).transpose()?.unwrap_or(today);
    let first_un = match &a.unpredictable_number {
        Some(s) => parse_hex::<4>("unpredictable number", s)?,
        None => un(),
    };
    let holder = Holder { fingerprint_on_prompt: a.fingerprint, remove_after: a.remove_after };
    let mut reader = open_reader(&a.reader, holder)?;
    let txn = Transaction { amount, amount_other: None, txn_type: 0x00, date, time, unpredictable_number: first_un };
    let currency = hex::encode(settings.ep.terminal.currency);
    let ep_cfg = Arc::new(settings.ep.clone());
    let mut ep = EntryPoint::new(ep_cfg, Arc::new(settings.capks.clone()), txn);
    // Deterministic runs derive the restart numbers from the first one.
    let fixed = a.unpredictable_number.is_some();
    let mut n = 0u32;
    let result = terminal::run(&mut ep, reader.as_mut(), &TapPolicy::default(), || {
        n += 1;
        if fixed { (u32::from_be_bytes(first_un) ^ n).to_be_bytes() } else { un() }
    }, show);
    if let Some(path) = &a.record {
        let script = Script {
            name: format!("pay {} on {}", a.amount, a.reader),
            terminal: ScriptTerminal {
                amount: Some(amount.display(u32::from(exp))),
                currency: Some(currency.clone()),
                country: Some(hex::encode(settings.ep.terminal.country)),
                date: Some(hex::encode(date.to_bcd())),
                time: Some(hex::encode(time)),
                unpredictable_number: Some(hex::encode_upper(first_un)),
                unpredictable_numbers: result.unpredictable_numbers.iter().skip(1).map(hex::encode_upper).collect(),
                ttq: None,
            },
            exchanges: result
                .exchanges
                .iter()
                .map(|x| Exchange { c: hex::encode_upper(&x.c), r: hex::encode_upper(&x.r), tap: Some(x.tap) })
                .collect(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&script)?).with_context(|| format!("writing {}", path.display()))?;
    }
    let report = PayReport::new(&ep, &result, exp, &currency);
    print_report(&report, a.json, &settings.currency_symbol)?;
    Ok(report.exit_code())
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
    let amount = Amount::parse(t.amount.as_deref().unwrap_or("0"), u32::from(exp))?;
    let (today, now) = clock::now();
    let date = t.date.as_deref().map(parse_date).transpose()?.unwrap_or(today);
    let time = t.time.as_deref().map(|s| parse_hex::<3>("time", s)).transpose()?.unwrap_or(now);
    let first_un = t.unpredictable_number.as_deref().map(|s| parse_hex::<4>("unpredictable_number", s)).transpose()?.unwrap_or([0; 4]);
    let mut more = t
        .unpredictable_numbers
        .iter()
        .map(|s| parse_hex::<4>("unpredictable_numbers", s))
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let txn = Transaction { amount, amount_other: None, txn_type: 0x00, date, time, unpredictable_number: first_un };
    let currency = hex::encode(settings.ep.terminal.currency);
    let mut ep = EntryPoint::new(Arc::new(settings.ep.clone()), Arc::new(settings.capks.clone()), txn);
    let mut reader = ReplayReader::new(script);
    let result = terminal::run(&mut ep, &mut reader, &TapPolicy::default(), || more.next().unwrap_or(first_un), show);
    let mut report = PayReport::new(&ep, &result, exp, &currency);
    report.replay_differences = reader.differences.clone();
    if reader.unused() > 0 {
        tracing::warn!(unused = reader.unused(), "the recorded session has exchanges the terminal did not make");
    }
    print_report(&report, json, &settings.currency_symbol)?;
    Ok(report.exit_code())
}

/// The scripted sales of `demo --headless`: (what, amount, profile, fingerprint when asked).
const DEMO_SALES: &[(&str, &str, &str, bool)] = &[
    ("metro fare, offline", "4.00", "unionpay-transit", false),
    ("coffee, phone", "28.00", "unionpay-phone", false),
    ("groceries, locked phone", "520.00", "unionpay-phone", false),
    ("groceries, fingerprint + tap again", "520.00", "unionpay-phone", true),
    ("visa phone", "66.00", "visa-phone", false),
    ("8-card wallet, default card", "12.00", "unionpay-phone-8cards", false),
    ("card declined", "15.00", "card-decline", false),
    ("bad fDDA", "8.00", "bad-fdda", false),
];

fn demo(g: &Global, headless: bool) -> Result<i32> {
    if !headless {
        eprintln!("shanfu demo: the cashier screen comes with issue 5; running the headless script");
    }
    let settings = Settings::load(g.config.as_deref())?;
    let exp = settings.ep.terminal.currency_exponent;
    let currency = hex::encode(settings.ep.terminal.currency);
    let (date, time) = clock::now();
    println!(
        "shanfu demo — merchant {} ({}), terminal {}, virtual reader + virtual phone wallet\n",
        settings.ep.terminal.merchant_name_location, settings.merchant_id, settings.ep.terminal.terminal_id
    );
    println!("{:<38} {:>9}  {:<16} {:<6} {:<7} {:<13} {:>5} {:>8}", "sale", "amount", "outcome", "cvm", "kernel", "oda", "taps", "air ms");
    for (what, amount, profile, fp) in DEMO_SALES {
        let wallet = test_cards::Wallet::load(profile)?;
        let mut reader = VirtualReader::new(profile, wallet, Holder { fingerprint_on_prompt: *fp, remove_after: None });
        let amount_v = Amount::parse(amount, u32::from(exp))?;
        let txn = Transaction { amount: amount_v, amount_other: None, txn_type: 0, date, time, unpredictable_number: un() };
        let mut ep = EntryPoint::new(Arc::new(settings.ep.clone()), Arc::new(settings.capks.clone()), txn);
        let r = terminal::run(&mut ep, &mut reader, &TapPolicy::default(), un, show);
        let rep = PayReport::new(&ep, &r, exp, &currency);
        println!(
            "{:<38} {:>9}  {:<16} {:<6} {:<7} {:<13} {:>5} {:>8.1}",
            what,
            format!("{}{}", settings.currency_symbol, rep.amount),
            rep.outcome,
            rep.cvm.replace("NO_CVM", "-"),
            rep.kernel.as_deref().unwrap_or("-"),
            rep.oda,
            rep.taps,
            rep.card_in_field_ms
        );
    }
    Ok(0)
}
