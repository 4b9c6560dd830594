//! `shanfu bench`: the performance figures of DESIGN.md §6, measured on this machine and
//! printed as a Markdown report (bench/REPORT.md keeps the last one). Not a test: nothing here
//! passes or fails on speed.

use crate::report::PayReport;
use crate::settings::Settings;
use crate::terminal::service::{self, SaleRequest};
use crate::{clock, host, journal, terminal};
use anyhow::{Context, Result};
use iso8583::{ascii87, field, Message, Mti};
use kernels::apdu::RApdu;
use kernels::capk::CapkStore;
use kernels::config::EntryPointConfig;
use kernels::entry_point::{Action, EntryPoint, Event, Transaction};
use kernels::types::Amount;
use reader_drivers::virtual_reader::{Holder, VirtualReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One recorded tap: the card answers, pre-decoded, and the air time of its bytes.
pub struct Tap {
    answers: Vec<RApdu>,
    pub air: Duration,
    txn: Transaction,
}

/// Records one tap of `profile` on the virtual reader (the holder confirms on the phone).
pub fn record_tap(settings: &Settings, profile: &str, amount: &str) -> Result<(Tap, PayReport, Option<Vec<u8>>)> {
    let wallet = test_cards::Wallet::load(profile)?;
    let mut reader = VirtualReader::new(profile, wallet, Holder { fingerprint_on_prompt: true, remove_after: None });
    let t = bench_tap(settings, &mut reader, amount, &terminal::TapPolicy::default())?;
    let answers = t.result.exchanges.iter().filter_map(|x| RApdu::parse(&x.r)).collect();
    Ok((Tap { answers, air: t.result.card_in_field, txn: t.result.transaction.clone() }, t.report, t.result.outcome.data_record.clone()))
}

/// One purchase of `amount` on `reader` through the terminal's own tap flow
/// ([`service::tap`]), with fixed unpredictable numbers (benchmarks compare like with like).
fn bench_tap(settings: &Settings, reader: &mut dyn reader_drivers::Reader, amount: &str, policy: &terminal::TapPolicy) -> Result<service::Tapped> {
    let exp = u32::from(settings.ep.terminal.currency_exponent);
    let req = SaleRequest { amount: Amount::parse(amount, exp)?, unpredictable_number: Some([0x12, 0x34, 0x56, 0x78]), ..Default::default() };
    Ok(service::tap(settings, &req, reader, policy, &mut |_| {}))
}

/// One pass of the Entry Point and kernel over a recorded tap, from PPSE to the outcome: the
/// kernel CPU a tap costs, without reader or card. Returns the number of card answers used.
pub fn replay_kernel(cfg: &Arc<EntryPointConfig>, capks: &Arc<CapkStore>, tap: &Tap) -> usize {
    let mut ep = EntryPoint::new(cfg.clone(), capks.clone(), tap.txn.clone());
    let mut a = ep.start();
    let mut answers = tap.answers.iter();
    let mut used = 0;
    loop {
        a = match a {
            Action::Transmit(_) => match answers.next() {
                Some(r) => {
                    used += 1;
                    ep.handle(Event::Response(r.clone()))
                }
                None => break,
            },
            Action::CardReadComplete(_) => ep.resume(),
            Action::Done(_) => break,
        };
    }
    used
}

/// Kernel CPU per tap with the card's answers pre-computed (no reader, no card simulator).
fn kernel_cpu(settings: &Settings, tap: &Tap, n: usize) -> Vec<Duration> {
    let cfg = Arc::new(settings.ep.clone());
    let capks = Arc::new(settings.capks.clone());
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        std::hint::black_box(replay_kernel(&cfg, &capks, tap));
        times.push(t0.elapsed());
    }
    times.sort();
    times
}

/// A typical 0200 (phone tap, field 55 from `record`) for codec benchmarks.
pub fn sample_0200(record: &[u8]) -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(field::PAN, "6235880000000017")
        .set_str(field::PROCESSING_CODE, "000000")
        .set_str(field::AMOUNT, "000000001200")
        .set_str(field::TRANSMISSION_DATE_TIME, "1125103000")
        .set_str(field::STAN, "000001")
        .set_str(field::LOCAL_TIME, "103000")
        .set_str(field::LOCAL_DATE, "1125")
        .set_str(field::EXPIRY_DATE, "2912")
        .set_str(field::POS_ENTRY_MODE, "071")
        .set_str(field::CARD_SEQUENCE_NUMBER, "000")
        .set_str(field::POS_CONDITION_CODE, "00")
        .set_str(field::TRACK2, "6235880000000017=29122010000000000")
        .set_str(field::TERMINAL_ID, "SHF00001")
        .set_str(field::MERCHANT_ID, "898310048160001")
        .set_str(field::CURRENCY_CODE, "156")
        .set(field::ICC_DATA, crate::report::icc_data(record));
    m
}

/// Where the reader-stack section measures: a vpcd reader behind pcscd and the address its card
/// connects to.
pub struct ReaderBench {
    pub pcsc_reader: String,
    pub vpcd: std::net::SocketAddr,
}

/// Runs every benchmark and returns the Markdown report.
pub fn run(settings: &Settings, data: &std::path::Path, terminals: usize, per_terminal: usize, readers: Option<&ReaderBench>) -> Result<String> {
    let mut out = String::new();
    let now = clock::now();
    out += &format!(
        "# shanfu benchmark report\n\nMeasured by `shanfu bench` on {} cores (UTC date 20{:06}).\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        now.0 .0
    );

    // 1. Kernel CPU per tap vs air time.
    out += "## Kernel CPU per tap vs air time at 106 kbit/s\n\nCard answers pre-computed; the Entry Point and kernel run from PPSE to the outcome.\n\n| profile | outcome | exchanges | kernel CPU p50 | p99 | air time of the same APDUs |\n|---|---|---|---|---|---|\n";
    let mut online_record = None;
    for (profile, amount) in [("unionpay-transit", "10.00"), ("unionpay-phone", "50.00"), ("visa-phone", "50.00")] {
        let (tap, rep, rec) = record_tap(settings, profile, amount)?;
        if profile == "unionpay-phone" {
            online_record = rec;
        }
        let t = kernel_cpu(settings, &tap, 300);
        out += &format!(
            "| {profile} | {} ({}) | {} | {:.0} µs | {:.0} µs | {:.1} ms |\n",
            rep.outcome,
            rep.oda,
            tap.answers.len(),
            us(pct(&t, 0.5)),
            us(pct(&t, 0.99)),
            tap.air.as_secs_f64() * 1e3
        );
    }

    // 2. ISO 8583 pack + unpack.
    let record = online_record.context("no online tap recorded")?;
    let msg = sample_0200(&record);
    let n = 20_000;
    let t0 = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        let b = ascii87().pack(&msg)?;
        bytes = b.len();
        std::hint::black_box(ascii87().unpack(&b)?);
    }
    let per = t0.elapsed() / n as u32;
    out += &format!("\n## ISO 8583 (ascii87)\n\n0200 with field 55 ({bytes} bytes): pack + unpack {:.2} µs per message ({n} iterations).\n", us(per));

    // 3. Journal durable writes.
    let jdir = data.join("bench-journal");
    let _ = std::fs::remove_dir_all(&jdir);
    {
        let j = journal::Journal::open(&jdir)?;
        // Whole online lifecycles: begin, card read, sent, answered, completed = 5 writes each.
        use journal::TxnEvent as E;
        let n = 300;
        let t0 = Instant::now();
        for _ in 0..n / 5 {
            let mut r = j.begin(journal::TxnKind::Purchase, 100, "0156")?;
            for e in [E::CardRead, E::Sent, E::Answered, E::Closed] {
                j.advance(&mut r, e, |_| {})?;
            }
        }
        let el = t0.elapsed();
        out += &format!(
            "\n## Journal (sled, flushed per write)\n\n{n} durable state changes: {:.0} writes/s ({:.2} ms each).\n",
            n as f64 / el.as_secs_f64(),
            el.as_secs_f64() * 1e3 / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&jdir);

    // 4. Acquirer throughput: `terminals` concurrent connections on loopback, 0100 authorizations
    // (full ARQC verification and ARPC, no balance posting so the run can repeat) — with the
    // keyed link (MAC both ways, issue 12) and without (`--mac off`, `mac = false`).
    out += "\n## Acquirer over loopback TCP\n\n";
    // A cryptogram authorizes one request at the acquirer (issue 13): every request of the load
    // carries a cryptogram of its own, from taps of one phone (its ATC counting up), made before
    // the clock starts; DE 4 is the amount the cryptogram covers.
    let load = load_requests(settings, &msg, terminals * per_terminal)?;
    for keyed in [true, false] {
        let AcquirerLoad { mut lat, wall, fsyncs, durable } = acquirer_load(settings, data, &load, terminals, per_terminal, keyed)?;
        lat.sort();
        let rate = lat.len() as f64 / wall.as_secs_f64();
        let p99 = us(pct(&lat, 0.99)) / 1e3;
        out += &format!(
            "{} — {terminals} concurrent terminals × {per_terminal} authorizations (0100: ARQC verified, ARPC computed, the spent cryptogram and the record durable before the answer): {rate:.0} authorizations/s; latency p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms; {fsyncs} fsyncs for {durable} durable answers ({:.1} per fsync, group commit). Goal ≥ 20000/s with p99 < 5 ms: {}.\n\n",
            if keyed { "MAC on (AES-CMAC both ways, keys from provisioning + sign-on)" } else { "MAC off" },
            us(pct(&lat, 0.5)) / 1e3,
            us(pct(&lat, 1.0)) / 1e3,
            durable as f64 / fsyncs.max(1) as f64,
            if rate >= 20_000.0 && p99 < 5.0 { "met" } else { "not met" }
        );
    }
    out += &link_crypto_cost(&msg)?;
    out += &crate::gate::bench::section(settings, data, 500)?;
    if let Some(rb) = readers {
        out += &reader_stack(settings, rb)?;
    }
    Ok(out)
}

/// `n` 0100s like `template`, each with the data record of a tap of its own (50.00 on the
/// unionpay-phone wallet, ATC counting up) and DE 4 = that amount.
fn load_requests(settings: &Settings, template: &Message, n: usize) -> Result<Vec<Message>> {
    let wallet = test_cards::Wallet::load("unionpay-phone")?;
    let mut reader = VirtualReader::new("unionpay-phone", wallet, Holder { fingerprint_on_prompt: true, remove_after: None });
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = bench_tap(settings, &mut reader, "50.00", &terminal::TapPolicy::default())?;
        let record = t.result.outcome.data_record.clone().with_context(|| format!("tap {} of the load gave no data record ({})", i + 1, t.report.outcome))?;
        let mut m = template.clone();
        m.mti = Mti::AUTHORIZATION_REQUEST;
        m.set_str(field::AMOUNT, "000000005000").set(field::ICC_DATA, crate::report::icc_data(&record));
        out.push(m);
    }
    Ok(out)
}

/// What [`acquirer_load`] measured.
struct AcquirerLoad {
    /// Per authorization, from sending the request to the checked answer.
    lat: Vec<Duration>,
    wall: Duration,
    /// The acquirer's fsyncs during the load and the requests they made durable.
    fsyncs: u64,
    durable: u64,
}

/// `terminals` connections × `per_terminal` 0100s (`load`, `per_terminal` per connection)
/// against an embedded acquirer: latencies, wall time, group-commit counts.
fn acquirer_load(settings: &Settings, data: &Path, load: &[Message], terminals: usize, per_terminal: usize, keyed: bool) -> Result<AcquirerLoad> {
    let adir = data.join("bench-acquirer");
    let keystore = data.join("bench-keystore");
    let _ = std::fs::remove_dir_all(&adir);
    let _ = std::fs::remove_dir_all(&keystore);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut host = settings.host.clone();
    host.mac = keyed;
    let mode = if keyed { crate::acquirer::MacMode::Required } else { crate::acquirer::MacMode::Off };
    let r = rt.block_on(async {
        let (addr, acq) = crate::acquirer::embedded_state(&adir, mode).await?;
        let mut links = Vec::new();
        // Provisioning and sign-on happen before the clock starts: the load is authorizations.
        for t in 0..terminals {
            let tid = format!("BENCH{t:03}");
            let mut link = host::HostLink::new(addr, Duration::from_secs(10), &tid, Box::new(|| 999_999), Box::new(crate::online::transmission_date_time))
                .configured(&host, &keystore);
            link.ready().await?;
            links.push((tid, link));
        }
        let mut tasks = Vec::new();
        let before = acq.durability_counts();
        let t0 = Instant::now();
        for (t, (tid, mut link)) in links.into_iter().enumerate() {
            let mine: Vec<Message> = load.iter().skip(t * per_terminal).take(per_terminal).cloned().collect();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_terminal);
                for (i, mut m) in mine.into_iter().enumerate() {
                    m.set_str(field::TERMINAL_ID, &tid);
                    m.set_str(field::STAN, &format!("{:06}", i + 1));
                    let t = Instant::now();
                    let r = link.exchange(&m).await?;
                    lat.push(t.elapsed());
                    if !r.response_code.is_approved() {
                        anyhow::bail!("bench authorization answered {}", r.response_code);
                    }
                }
                Ok::<_, anyhow::Error>(lat)
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let wall = t0.elapsed();
        let after = acq.durability_counts();
        Ok::<_, anyhow::Error>(AcquirerLoad { lat, wall, fsyncs: after.0 - before.0, durable: after.1 - before.1 })
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&adir);
    let _ = std::fs::remove_dir_all(&keystore);
    r
}

/// What the keyed link adds to one authorization: the PIN block, the MAC of the request and the
/// verification of the answer's MAC (each side does one MAC and one verification).
fn link_crypto_cost(msg: &Message) -> Result<String> {
    use host_contract::link;
    let key = shanfu_keys::AesKey::new([0x5A; 16]);
    let pin_key = shanfu_keys::TdesKey::new(*b"0123456789abcdef").map_err(|e| anyhow::anyhow!("{e}"))?;
    let pin = crate::terminal::pin::EnteredPin::new("123456").map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = 20_000u32;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(pin.format0_block(&pin_key, "6225000000000019").map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let pin_cost = t0.elapsed() / n;
    let t0 = Instant::now();
    let mut body = Vec::new();
    for _ in 0..n {
        body = link::pack_with_mac(ascii87(), msg, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let seal = t0.elapsed() / n;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(link::unpack_verified(ascii87(), &body, &key).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let open = t0.elapsed() / n;
    Ok(format!(
        "Keyed link cost per authorization ({n} iterations, one core): ISO 9564 format 0 PIN block {:.2} µs; pack + AES-CMAC {:.2} µs; unpack + MAC verification {:.2} µs (each side seals one message and opens one).\n",
        us(pin_cost),
        us(seal),
        us(open)
    ))
}

/// One whole tap over a real reader stack: Entry Point and kernel from "card detected" to
/// "card read" (no host), with the reader already holding the card.
fn tap_over(settings: &Settings, reader: &mut dyn reader_drivers::Reader, amount: &str) -> Result<(Duration, usize, String)> {
    let policy = terminal::TapPolicy { first_tap: Duration::from_secs(5), max_taps: 1, ..Default::default() };
    let r = bench_tap(settings, reader, amount, &policy)?.result;
    if r.taps == 0 || r.reader_error.is_some() {
        anyhow::bail!("no tap on {}: {}", reader.name(), r.reader_error.map(|e| e.to_string()).unwrap_or_else(|| r.outcome.reason.clone()));
    }
    Ok((r.tap_wall, r.exchanges.len(), serde_json::to_string(&r.outcome.status)?.trim_matches('"').to_string()))
}

/// The reader stacks the terminal really uses: pcsc-lite (pcscd) and libnfc's pcsc driver, with
/// the phone wallet in the vpcd virtual reader (in this process, on vpcd's TCP socket).
fn reader_stack(settings: &Settings, rb: &ReaderBench) -> Result<String> {
    let mut out = String::from("\n## Reader stacks: PC/SC (pcscd + vpcd) and libnfc (pcsc driver)\n\n");
    let spec = format!("pcsc:{}", rb.pcsc_reader);
    let mut reader = match reader_drivers::open(&spec) {
        Ok(r) => r,
        Err(e) => {
            out += &format!("Skipped: {e}.\n");
            return Ok(out);
        }
    };
    let mut results = Vec::new();
    for profile in ["unionpay-transit", "unionpay-phone"] {
        let wallet = test_cards::Wallet::load(profile)?;
        let opts = test_cards::vpcd::PhoneOptions::default();
        let phone = test_cards::vpcd::spawn(rb.vpcd, wallet, opts, test_cards::vpcd::AWAY, true)?;
        reader.wait_for_card(Duration::from_secs(10)).with_context(|| format!("phone in {spec}"))?;

        // Per-APDU round trip: SELECT PPSE, card answering from the phone process's socket.
        let ppse = kernels::apdu::CApdu::select(kernels::apdu::PPSE_NAME).to_bytes();
        let mut rtt = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            reader.transceive(&ppse)?;
            rtt.push(t.elapsed());
        }
        rtt.sort();
        // Whole taps over pcsc-lite.
        let amount = if profile == "unionpay-transit" { "4.00" } else { "50.00" };
        // Whole taps over pcsc-lite: each one a new tap (the reader wants the last card gone).
        let retap = |r: &mut dyn reader_drivers::Reader| -> Result<()> {
            phone.send(test_cards::vpcd::Control::Remove);
            r.wait_for_removal(Duration::from_secs(5))?;
            phone.send(test_cards::vpcd::Control::Tap);
            Ok(())
        };
        let mut taps = Vec::new();
        let mut info = (0, String::new());
        for _ in 0..10 {
            retap(reader.as_mut())?;
            let (t, n, st) = tap_over(settings, reader.as_mut(), amount)?;
            taps.push(t);
            info = (n, st);
        }
        taps.sort();
        // The same over libnfc (its pcsc driver opens the card through pcscd).
        let mut nfc_taps = Vec::new();
        match reader_drivers::open(&format!("nfc:{}", rb.pcsc_reader)) {
            Ok(mut nfc) => {
                for _ in 0..5 {
                    retap(nfc.as_mut())?;
                    nfc_taps.push(tap_over(settings, nfc.as_mut(), amount)?.0);
                }
            }
            Err(e) => tracing::warn!(error = %e, "libnfc not measured"),
        }
        nfc_taps.sort();
        // Tap detection: the phone leaves and comes back; time until the reader reports it.
        let mut detect = Vec::new();
        for _ in 0..5 {
            phone.send(test_cards::vpcd::Control::Remove);
            reader.wait_for_removal(Duration::from_secs(5))?;
            let t = Instant::now();
            phone.send(test_cards::vpcd::Control::Tap);
            reader.wait_for_card(Duration::from_secs(5))?;
            detect.push(t.elapsed());
        }
        detect.sort();
        phone.send(test_cards::vpcd::Control::Quit);
        let _ = phone.wait_for(Duration::from_secs(3), |e| *e == test_cards::vpcd::PhoneEvent::Stopped);
        reader.wait_for_removal(Duration::from_secs(5))?;
        results.push((profile, rtt, taps, nfc_taps, info, detect));
    }
    out += &format!(
        "Reader `{}` (pcscd polls vpcd for presence every 400 ms). Card: the phone wallet on vpcd's socket with TCP_NODELAY and quick ACKs.\n\n",
        reader.name()
    );
    out += "| profile | outcome | APDUs | SELECT PPSE round trip p50 / p99 (500) | whole tap over pcsc-lite p50 / max (10) | whole tap over libnfc p50 (5) | tap detected after (p50 of 5) |\n|---|---|---|---|---|---|---|\n";
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (profile, rtt, taps, nfc, (n, st), detect) in &results {
        out += &format!(
            "| {profile} | {st} | {n} | {:.3} / {:.3} ms | {:.2} / {:.2} ms | {} | {:.0} ms |\n",
            ms(pct(rtt, 0.5)),
            ms(pct(rtt, 0.99)),
            ms(pct(taps, 0.5)),
            ms(pct(taps, 1.0)),
            if nfc.is_empty() { "not measured".to_string() } else { format!("{:.2} ms", ms(pct(nfc, 0.5))) },
            ms(pct(detect, 0.5)),
        );
    }
    out += "\nFor comparison, the same APDUs take the air time in the first table at 106 kbit/s on a real reader: the PC/SC stack adds well under a millisecond per APDU; a real tap is dominated by the air interface and, for the first tap, by the reader's polling.\n";
    Ok(out)
}

/// One `shanfu cert` pass for the report: reader, cases run, skipped, passed, wall time, p50 of
/// a case.
struct CertPass {
    reader: String,
    run: usize,
    skipped: usize,
    passed: usize,
    wall: Duration,
    p50: Duration,
}

fn cert_pass(settings: &Settings, cases: &[crate::cert::case::Case], reader: &str, vpcd: std::net::SocketAddr) -> Result<CertPass> {
    let mut runner = crate::cert::runner_for(settings.clone(), reader, vpcd)?;
    let started = Instant::now();
    let runs: Vec<_> = cases.iter().map(|c| runner.run(c)).collect();
    let wall = started.elapsed();
    drop(runner);
    let mut times: Vec<Duration> = runs.iter().filter(|r| r.skipped.is_none()).map(|r| r.elapsed).collect();
    times.sort();
    Ok(CertPass {
        reader: reader.to_string(),
        run: times.len(),
        skipped: runs.len() - times.len(),
        passed: runs.iter().filter(|r| r.passed()).count(),
        wall,
        p50: pct(&times, 0.5),
    })
}

/// `shanfu bench --cert[=GLOBS]`: the certification suite's cases per second over the virtual
/// reader and, with `--pcsc NAME`, over pcscd through pcsc-lite and libnfc with the phone
/// process (src/cert/phone.rs) playing the cards.
pub fn cert_section(settings: &Settings, suite: &std::path::Path, globs: &str, readers: Option<&ReaderBench>) -> Result<String> {
    let exp = u32::from(settings.ep.terminal.currency_exponent);
    let filter = (globs != "*").then_some(globs);
    let cases = crate::cert::load_cases(suite, filter, exp)?;
    let vpcd = readers.map(|r| r.vpcd).unwrap_or_else(|| ([127, 0, 0, 1], 35963).into());
    let mut passes = vec![cert_pass(settings, &cases, "virtual", vpcd)?];
    if let Some(rb) = readers {
        for backend in ["pcsc", "nfc"] {
            passes.push(cert_pass(settings, &cases, &format!("{backend}:{}", rb.pcsc_reader), vpcd)?);
        }
    }
    let mut out = String::from("\n## Certification suite: cases per second\n\n");
    out += &format!("`shanfu cert` over {} cases of {} (`--case {globs}`), one pass per reader.\n\n", cases.len(), suite.display());
    out += "| reader | cases run | skipped | passed | seconds | cases/s | one case p50 |\n|---|---|---|---|---|---|---|\n";
    for p in &passes {
        let rate = if p.wall.is_zero() { 0.0 } else { p.run as f64 / p.wall.as_secs_f64() };
        out += &format!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} ms |\n",
            p.reader,
            p.run,
            p.skipped,
            p.passed,
            p.wall.as_secs_f64(),
            rate,
            p.p50.as_secs_f64() * 1000.0
        );
    }
    if readers.is_some() {
        out += "\nOver pcscd a case is a real tap and a real removal: the runner tells the phone process to tap, \
pcscd notices the card only at its next presence poll of vpcd (every 400 ms), and after the outcome the \
phone leaves and pcscd must see the slot empty (another poll) before the next case may tap — a new card is \
taken only after an empty slot. A card pulled away mid-exchange stays away 0.5 s more, and the fingerprint \
flow's tap again comes 0.9 s after the phone asked. The APDUs themselves take well under a millisecond \
each (the reader-stack table); the virtual reader has none of these waits, so a case there is kernel, \
card simulator and (online cases) the embedded acquirer only.\n";
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acquirer load of the report is real authorizations the acquirer approves — a
    /// cryptogram per request, DE 4 its amount — over the keyed link and without keys; a load the
    /// acquirer refused (a rule it gained) fails here, not in the middle of a bench run.
    #[test]
    fn the_acquirer_load_is_approved_with_and_without_the_mac() {
        let settings = Settings::load(None).unwrap();
        let data = std::env::temp_dir().join(format!("shanfu-bench-load-{}", std::process::id()));
        let (_, _, record) = record_tap(&settings, "unionpay-phone", "50.00").unwrap();
        let load = load_requests(&settings, &sample_0200(&record.unwrap()), 6).unwrap();
        let arqcs: std::collections::HashSet<_> = load.iter().map(|m| m.get(field::ICC_DATA).unwrap().to_vec()).collect();
        assert_eq!(arqcs.len(), 6, "a cryptogram of its own per request");
        for keyed in [true, false] {
            let l = acquirer_load(&settings, &data, &load, 2, 3, keyed).unwrap();
            assert_eq!(l.lat.len(), 6);
            assert!(l.durable >= 6 && l.fsyncs >= 1 && l.fsyncs <= l.durable, "every answer made durable: {} fsyncs for {}", l.fsyncs, l.durable);
        }
        let _ = std::fs::remove_dir_all(&data);
    }
}
