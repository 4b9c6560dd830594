//! The one Terminal service every front end calls (`pay`, `replay`, `pos`, `demo`, `bench`; later
//! `gate` and `cert`): a sale from "present card" to the host's checked answer, refund and void
//! of a journal transaction, settlement. Front ends only turn arguments into a [`SaleRequest`]
//! and a result into a view.
//!
//! Two levels of one flow: [`tap`] runs pre-processing, the reader and the kernel (no journal,
//! no host: `replay`, `pay --no-host`, benchmarks); [`Terminal::sale`] journals, taps with the
//! same [`tap`], then completes online or offline.

use crate::journal::{Disposition, Journal, TxnEvent, TxnKind, TxnRecord, TxnState};
use crate::report::PayReport;
use crate::settings::Settings;
use crate::terminal::disposition::{self, TerminalReason};
use crate::terminal::pin::{PinEntry, PinPad, PinPrompt};
use crate::terminal::receipt;
use crate::terminal::{self, Display, TapPolicy};
use crate::{clock, host, online};
use anyhow::{anyhow, bail, Context, Result};
use host_contract::Lang;
use kernels::entry_point::{EntryPoint, Transaction};
use kernels::outcome::Cvm;
use kernels::types::{Amount, EmvDate};
use reader_drivers::Reader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the cashier screen shows while a sale runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for the card or phone (again).
    PresentCard,
    /// A card is in the field: "Hold still".
    CardDetected,
    /// A message the kernel or Entry Point asks for (Book A §7.1), e.g. "Card read OK", "See phone".
    Message(kernels::outcome::MessageId),
    /// The card asks for online PIN: the PIN pad is up.
    EnterPin,
    /// The request is on its way to the host.
    Authorizing,
}

impl From<Display> for Progress {
    fn from(d: Display) -> Progress {
        match d {
            Display::PresentCard => Progress::PresentCard,
            Display::CardDetected => Progress::CardDetected,
            Display::Ui(ui) => Progress::Message(ui.message),
        }
    }
}

/// One sale as the front end asks for it. Everything that makes a run deterministic is an input.
#[derive(Debug, Clone, Default)]
pub struct SaleRequest {
    pub amount: Amount,
    /// Transaction date (9A) and time (9F21) instead of the clock (deterministic runs, replay).
    pub date: Option<EmvDate>,
    pub time: Option<[u8; 3]>,
    /// Unpredictable number of the first tap instead of a random one (deterministic runs).
    pub unpredictable_number: Option<[u8; 4]>,
    /// Unpredictable numbers of the restarts, in order (replay); after them, or when empty with a
    /// fixed first number, restart n uses first XOR n; else random.
    pub restart_numbers: Vec<[u8; 4]>,
    /// Purchase (default), refund, cash, or purchase with cashback.
    pub txn_type: crate::terminal::txn_type::TxnType,
    /// Amount, Other (9F03): the cashback part of `amount` (purchase with cashback only).
    pub amount_other: Option<Amount>,
}

/// What one tap (with its restarts) produced, before any journal or host.
pub struct Tapped {
    pub ep: EntryPoint,
    pub result: terminal::TapResult,
    pub report: PayReport,
}

/// Pre-processing, the reader and the kernel for one sale: the flow every front end shares.
pub fn tap(settings: &Settings, req: &SaleRequest, reader: &mut dyn Reader, policy: &TapPolicy, progress: &mut dyn FnMut(Progress)) -> Tapped {
    let (today, now) = clock::now_in(&settings.time_zone);
    let first = req.unpredictable_number.unwrap_or_else(unpredictable_number);
    let txn = Transaction {
        amount: req.amount,
        amount_other: req.amount_other,
        txn_type: req.txn_type.code_9c(),
        date: req.date.unwrap_or(today),
        time: req.time.unwrap_or(now),
        unpredictable_number: first,
    };
    let mut ep = EntryPoint::new(Arc::new(req.txn_type.ep_config(&settings.ep)), Arc::new(settings.capks.clone()), txn);
    let mut restarts = req.restart_numbers.clone().into_iter();
    let mut n = 0u32;
    let fixed = req.unpredictable_number.is_some();
    let result = terminal::run(
        &mut ep,
        reader,
        policy,
        || {
            n += 1;
            restarts.next().unwrap_or_else(|| if fixed { (u32::from_be_bytes(first) ^ n).to_be_bytes() } else { unpredictable_number() })
        },
        |d| progress(d.into()),
    );
    let currency = hex::encode(settings.ep.terminal.currency);
    let report = PayReport::new(&ep, &result, settings.ep.terminal.currency_exponent, &currency);
    Tapped { ep, result, report }
}

/// Terminal and merchant identity for the host messages.
pub fn identity(settings: &Settings) -> online::Identity {
    online::Identity {
        terminal_id: settings.ep.terminal.terminal_id.clone(),
        merchant_id: settings.merchant_id.clone(),
        currency: hex::encode(settings.ep.terminal.currency)[1..].to_string(),
        time_zone: settings.time_zone.clone(),
    }
}

/// The RRN of the sale a refund of `amount` with card `pan` gives back: the newest approved
/// online purchase (or purchase with cashback) of that card in this journal, not voided or
/// reversed, with at least `amount` left after the refunds already made against it.
fn refundable_sale(j: &Journal, pan: &str, amount: u64) -> Option<String> {
    let all = j.all().ok()?;
    let refunded = |rrn: &str| -> u64 {
        all.iter()
            .filter(|r| r.kind == TxnKind::Refund && r.reference_rrn.as_deref() == Some(rrn))
            .filter(|r| r.disposition.is_none_or(|d| d.is_approved()) && !matches!(r.state, TxnState::Reversed | TxnState::ReversalPending))
            .map(|r| r.amount)
            .sum()
    };
    all.iter()
        .rev()
        .filter(|r| matches!(r.kind, TxnKind::Purchase | TxnKind::Cashback) && r.pan.as_deref() == Some(pan))
        .filter(|r| r.disposition.is_some_and(Disposition::is_approved) && matches!(r.state, TxnState::Completed | TxnState::Settled))
        .filter_map(|r| r.rrn.as_deref().map(|rrn| (rrn, r.amount)))
        .find(|(rrn, sold)| sold.saturating_sub(refunded(rrn)) >= amount)
        .map(|(rrn, _)| rrn.to_string())
}

/// After the tap: journal the card data, then go online, queue the advice, or close.
#[allow(clippy::too_many_arguments)]
pub fn complete(
    settings: &Settings,
    j: &Journal,
    rec: &mut TxnRecord,
    ep: &EntryPoint,
    result: &terminal::TapResult,
    report: &mut PayReport,
    rt: &tokio::runtime::Handle,
    link: &mut host::HostLink,
    progress: &mut dyn FnMut(Progress),
    pin_pad: Option<&mut dyn PinPad>,
) -> Result<()> {
    let s = ep.summary();
    let record = result.outcome.data_record.clone().unwrap_or_default();
    let find = |t| kernels::tlv::find(&record, t).ok().flatten().map(|v| v.to_vec());
    let track2 = find(kernels::tag::TRACK2_EQUIVALENT).map(|t| kernels::types::digits(&t));
    // A refund with the card names the sale it gives back (DE 37), as the acquirer requires:
    // this card's newest approved sale here with enough left (none: the acquirer answers 25).
    let original_rrn = match (rec.kind, &rec.reference_rrn, &s.pan) {
        (TxnKind::Refund, None, Some(pan)) => refundable_sale(j, pan, rec.amount),
        _ => None,
    };
    j.advance(rec, TxnEvent::CardRead, |r| {
        if original_rrn.is_some() {
            r.reference_rrn = original_rrn.clone();
        }
        r.pan = s.pan.clone();
        r.pan_masked = report.pan_masked.clone();
        r.expiry_yymm = s.expiry.as_ref().map(|e| e.chars().take(4).collect());
        r.psn = s.pan_sequence;
        r.label = s.label.clone();
        r.aid = report.aid.clone();
        r.kernel = report.kernel.clone();
        r.cvm = Some(report.cvm);
        r.oda = Some(report.oda.clone());
        r.cryptogram_type = report.cryptogram_type.clone();
        r.cryptogram = report.cryptogram.clone();
        r.atc = s.atc;
        r.icc_data = report.icc_data.clone();
        r.reason = Some(report.reason.clone());
    })?;
    online::crash_point(TxnState::CardRead);
    report.journal_id = Some(rec.id);
    match disposition::after_tap(&result.outcome, result.reader_error.as_ref(), result.refused_before_tap.then(|| ep.transaction().amount)) {
        // The card asks for online PIN and there is no PIN pad, or no PIN key to carry the PIN
        // (a host configured `mac = false`): the request must not go without the PIN (Book A
        // §6.2 CVM = Online PIN), so nothing is sent or charged — and the cardholder is not
        // asked for a PIN that could go nowhere.
        None if result.outcome.cvm == Cvm::OnlinePin && (pin_pad.is_none() || !link.is_authenticated()) => {
            let d = Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable };
            let why = if pin_pad.is_none() {
                "the card asks for online PIN; this terminal has no PIN entry: not sent, not approved"
            } else {
                "the card asks for online PIN; the host link has no keys to carry it (mac = false): not sent, not approved"
            };
            j.advance(rec, TxnEvent::Closed, |r| {
                r.disposition = Some(d);
                r.reason = Some(why.into());
            })?;
            report.set(d);
            report.reason = rec.reason.clone().unwrap_or_default();
        }
        None => {
            // Online PIN (Book A §6.2; issue 12): the cardholder enters it now, before anything
            // is sent; it travels only as a PIN block under the session PIN key.
            let mut pin = None;
            if result.outcome.cvm == Cvm::OnlinePin {
                if let Some(pad) = pin_pad {
                    progress(Progress::EnterPin);
                    let prompt = PinPrompt {
                        amount: report.amount.clone(),
                        pan_masked: report.pan_masked.clone().unwrap_or_default(),
                        bypass_allowed: settings.pin_bypass,
                        timeout: Duration::from_secs(30),
                    };
                    match pad.enter(&prompt) {
                        PinEntry::Entered(p) => pin = Some(p),
                        PinEntry::Bypassed if settings.pin_bypass => {
                            tracing::info!("PIN bypassed by the cardholder: the issuer decides");
                        }
                        entry => {
                            let why = match entry {
                                PinEntry::TimedOut => "PIN entry timed out",
                                PinEntry::Cancelled => "PIN entry cancelled",
                                _ => "PIN bypass is not allowed",
                            };
                            let d = Disposition::DeclinedByTerminal { reason: TerminalReason::PinNotEntered };
                            j.advance(rec, TxnEvent::Closed, |r| {
                                r.disposition = Some(d);
                                r.reason = Some(format!("{why}: not sent, not approved"));
                            })?;
                            report.set(d);
                            report.reason = rec.reason.clone().unwrap_or_default();
                            return Ok(());
                        }
                    }
                }
            }
            progress(Progress::Authorizing);
            let id = identity(settings);
            let outcome = rt.block_on(async {
                // Earlier reversals first: the host must not see this one before them.
                let _ = online::drain(j, link, &id).await;
                online::authorize(j, link, &id, rec, track2, pin.as_ref()).await
            });
            report.online = true;
            if !link.is_authenticated() {
                report.link = Some("UNAUTHENTICATED".into());
            }
            report.stan = rec.stan.map(|s| format!("{s:06}"));
            report.reason = rec.reason.clone().unwrap_or_default();
            if let Some(d) = rec.disposition {
                report.set(d);
                report.ui_message = Some(d.cashier_text(Lang::En).to_string());
            }
            if let Ok(ans) = outcome {
                report.response_code = Some(ans.response_code.clone());
                report.auth_code = ans.auth_code;
                report.rrn = ans.rrn;
                report.arpc = Some(ans.arpc);
            }
        }
        Some(d) => {
            let event = if d == Disposition::ApprovedOffline { TxnEvent::OfflineApproved } else { TxnEvent::Closed };
            j.advance(rec, event, |r| r.disposition = Some(d))?;
        }
    }
    Ok(())
}

/// A fresh unpredictable number (the OS CSPRNG; the clock only if that fails, logged).
pub fn unpredictable_number() -> [u8; 4] {
    clock::unpredictable_number().unwrap_or_else(|e| {
        tracing::error!(error = %e, "no OS randomness; unpredictable number from the clock");
        (clock::unix_now() as u32).to_be_bytes()
    })
}

/// What a finished sale gives the cashier screen.
#[derive(Debug)]
pub struct SaleResult {
    pub report: PayReport,
    /// How long the outcome must stay on screen (Book A §7.1 hold time), at least.
    pub hold: Duration,
    /// The tap itself (exchanges, unpredictable numbers) for a recorder.
    pub tap: terminal::TapResult,
}

/// Pending store-and-forward work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub reversals: usize,
    pub advices: usize,
}

/// The terminal: settings, the journal and the acquirer connection, for many sales in one process.
pub struct Terminal {
    pub settings: Settings,
    pub journal: Journal,
    host: SocketAddr,
    rt: tokio::runtime::Runtime,
    pub timeout: Duration,
    pub policy: TapPolicy,
    /// Whether the last host contact got an answer.
    host_ok: AtomicBool,
    /// Training mode (`demo`): every screen and receipt says "TRAINING — NOT A PAYMENT".
    pub training: bool,
    link: std::sync::Mutex<Option<host::HostLink>>,
    /// Where the cardholder enters a PIN when the card asks for online PIN (none: such a card is
    /// declined "online PIN unavailable", nothing sent).
    pin_pad: std::sync::Mutex<Option<Box<dyn terminal::pin::PinPad>>>,
    /// DATA/keystore: the terminal master key of the keyed host link.
    keystore: std::path::PathBuf,
    /// DATA/shanfu.sock: `shanfu journal` from another shell while this terminal holds the journal.
    _local: Option<terminal::local::LocalServer>,
}

/// Check values of the keys `shanfu keys` established (never the keys).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeysReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmk_kcv: Option<String>,
    pub pin_key_kcv: String,
    pub mac_key_kcv: String,
    pub data_key_kcv: String,
}

/// Where the terminal sends its online requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostChoice {
    /// The acquirer at this address (config/host.toml or `--host ADDR`).
    Addr(SocketAddr),
    /// The acquirer simulator, started in this process over DATA/acquirer — only when asked
    /// (`demo`, `--host embedded`, tests).
    Embedded,
}

impl HostChoice {
    /// `--host` if given (`embedded` or an address), else the configured address; none is an
    /// error that says what to do.
    pub fn resolve(cli: Option<&str>, settings: &Settings) -> Result<HostChoice> {
        match cli.or(settings.host.address.as_deref()) {
            Some("embedded") => Ok(HostChoice::Embedded),
            Some(a) => a.parse().map(HostChoice::Addr).map_err(|_| anyhow!("host {a:?} is not an address like 127.0.0.1:8583 (or `embedded`)")),
            None => bail!(
                "no acquirer host configured: set `address` under [host] in config/host.toml, or pass --host ADDR \
                 (--host embedded starts the acquirer simulator, for tests and demos only)"
            ),
        }
    }
}

impl Terminal {
    /// Opens the journal under `data` (recovering interrupted transactions) and sets up the host:
    /// an address, or the acquirer simulator over `data/acquirer` on 127.0.0.1 when asked.
    pub fn open(settings: Settings, data: &Path, host: HostChoice) -> Result<Terminal> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let jdir = data.join("journal");
        let journal = Journal::open(&jdir).with_context(|| format!("opening the journal at {}", jdir.display()))?;
        let queued = journal.recover()?;
        if !queued.is_empty() {
            tracing::warn!(count = queued.len(), "recovery: transactions sent without an answer are queued for reversal");
        }
        let host = match host {
            HostChoice::Addr(h) => h,
            #[cfg(feature = "simulators")]
            HostChoice::Embedded => {
                let db = data.join("acquirer");
                rt.block_on(crate::acquirer::embedded(&db)).with_context(|| format!("starting the embedded acquirer over {}", db.display()))?
            }
            #[cfg(not(feature = "simulators"))]
            HostChoice::Embedded => bail!("this shanfu was built without the simulators: there is no embedded acquirer (configure the host)"),
        };
        let timeout = Duration::from_millis(settings.host.timeout_ms);
        let _local = terminal::local::LocalServer::start(data, journal.clone(), u32::from(settings.ep.terminal.currency_exponent));
        Ok(Terminal {
            settings,
            journal,
            host,
            rt,
            timeout,
            policy: TapPolicy::default(),
            host_ok: AtomicBool::new(true),
            training: false,
            link: std::sync::Mutex::new(None),
            pin_pad: std::sync::Mutex::new(None),
            keystore: data.join("keystore"),
            _local,
        })
    }

    /// Gives the terminal a PIN pad (the cashier screen's, or stdin for `pay --pin-stdin`).
    pub fn set_pin_pad(&self, pad: Box<dyn terminal::pin::PinPad>) {
        *self.pin_pad.lock().unwrap_or_else(|p| p.into_inner()) = Some(pad);
    }

    /// The one connection to the acquirer, kept between requests (created on first use, with the
    /// timeout in force then).
    fn link(&self) -> std::sync::MutexGuard<'_, Option<host::HostLink>> {
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_link(&self) -> host::HostLink {
        let j = self.journal.clone();
        host::HostLink::new(
            self.host,
            self.timeout,
            &self.settings.ep.terminal.terminal_id,
            Box::new(move || j.next_stan().unwrap_or(1)),
            Box::new(online::transmission_date_time),
        )
        .configured(&self.settings.host, &self.keystore)
    }

    pub fn host_online(&self) -> bool {
        self.host_ok.load(Ordering::Relaxed)
    }

    fn exp(&self) -> u32 {
        u32::from(self.settings.ep.terminal.currency_exponent)
    }

    pub fn currency(&self) -> String {
        hex::encode(self.settings.ep.terminal.currency)
    }

    /// Amount in minor units shown with the currency symbol: `¥12.34`.
    pub fn money(&self, minor: u64) -> String {
        format!("{}{}", self.settings.currency_symbol, Amount(minor).display(self.exp()))
    }

    pub fn parse_amount(&self, s: &str) -> Result<Amount> {
        // A zero amount is for the Entry Point to accept or refuse (Book B §3.1.1.4, config).
        Amount::parse(s, self.exp()).map_err(|e| anyhow!("amount {s:?}: {e}"))
    }

    /// One purchase: journaled before the card is asked for, tap(s) through the Entry Point and
    /// kernel ([`tap`]), then the host if the card asks, or the advice queue, or closed.
    pub fn sale(&self, req: &SaleRequest, reader: &mut dyn Reader, progress: &mut dyn FnMut(Progress)) -> Result<SaleResult> {
        let mut rec = self.journal.begin(req.txn_type.kind(), req.amount.0, &self.currency())?;
        let Tapped { ep, result, mut report } = tap(&self.settings, req, reader, &self.policy, progress);
        // Done with the card: release it (a PC/SC handle, the demo phone leaves the field).
        let _ = reader.wait_for_removal(Duration::ZERO);
        let hold = result.outcome.ui_on_outcome.as_ref().map(|u| Duration::from_millis(u64::from(u.hold_time_ms))).unwrap_or_default();
        let mut link = self.link();
        let link = link.get_or_insert_with(|| self.new_link());
        let mut pad = self.pin_pad.lock().unwrap_or_else(|p| p.into_inner());
        let pin_pad: Option<&mut dyn PinPad> = match pad.as_mut() {
            Some(p) => Some(p.as_mut()),
            None => None,
        };
        complete(&self.settings, &self.journal, &mut rec, &ep, &result, &mut report, self.rt.handle(), link, progress, pin_pad)?;
        drop(pad);
        if report.online {
            self.host_ok.store(report.response_code.is_some(), Ordering::Relaxed);
        }
        Ok(SaleResult { report, hold, tap: result })
    }

    /// Whether a journal transaction was already refunded or voided.
    fn undone(&self, id: u64) -> Result<Option<String>> {
        let rrn = self.journal.get(id).ok().and_then(|o| o.rrn);
        for r in self.journal.all()? {
            // A refund of it from the journal (`original`), or one with the card that named it
            // by its RRN (DE 37).
            let of_it = r.original == Some(id) || (rrn.is_some() && r.reference_rrn == rrn);
            if !of_it || r.kind != TxnKind::Refund {
                continue;
            }
            // A refund counts unless it was declined or reversed: one still in flight blocks too.
            let failed = r.disposition.is_some_and(|d| !d.is_approved()) || r.state == TxnState::Reversed;
            if !failed {
                return Ok(Some(format!("already refunded (or being refunded) by transaction {}", r.id)));
            }
        }
        Ok(None)
    }

    /// Refund of an approved purchase: a credit (0200, processing code 20) for its amount with
    /// the original's card data (card not presented again). Journaled like a sale.
    pub fn refund(&self, original: u64) -> Result<TxnRecord> {
        let o = self.journal.get(original)?;
        if o.kind != TxnKind::Purchase || !o.disposition.is_some_and(Disposition::is_approved) {
            bail!("transaction {original} is not an approved purchase: nothing to refund");
        }
        match o.state {
            TxnState::Completed | TxnState::AdvicePending | TxnState::Advised | TxnState::Settled => {}
            TxnState::ReversalPending | TxnState::Reversed => bail!("transaction {original} was voided or reversed: nothing to refund"),
            s => bail!("transaction {original} is still {s:?}: nothing to refund yet"),
        }
        if let Some(why) = self.undone(original)? {
            bail!("transaction {original} is {why}");
        }
        if o.pan.is_none() {
            bail!("transaction {original} has no card data to refund to");
        }
        // A refund without the card is a credit that names the sale it gives back (DE 37): it
        // carries no cryptogram of its own — the sale's ARQC is not sent again.
        let Some(rrn) = o.rrn.clone() else {
            bail!("transaction {original} was approved offline and has no acquirer reference (RRN): refund it at the acquirer");
        };
        let mut rec = self.journal.begin(TxnKind::Refund, o.amount, &o.currency)?;
        self.journal.advance(&mut rec, TxnEvent::CardRead, |r| {
            r.pan = o.pan.clone();
            r.pan_masked = o.pan_masked.clone();
            r.expiry_yymm = o.expiry_yymm.clone();
            r.psn = o.psn;
            r.label = o.label.clone();
            r.aid = o.aid.clone();
            r.kernel = o.kernel.clone();
            r.cvm = Some(Cvm::NoCvm);
            r.original = Some(original);
            r.reference_rrn = Some(rrn);
        })?;
        let id = identity(&self.settings);
        let mut link = self.link();
        let link = link.get_or_insert_with(|| self.new_link());
        let res = self.rt.block_on(async {
            let _ = online::drain(&self.journal, link, &id).await;
            online::authorize(&self.journal, link, &id, &mut rec, None, None).await
        });
        self.host_ok.store(res.is_ok(), Ordering::Relaxed);
        Ok(rec)
    }

    /// Void of an online-approved purchase not yet settled: its reversal (0400).
    pub fn void(&self, id: u64) -> Result<TxnRecord> {
        let mut r = self.journal.get(id)?;
        if r.kind != TxnKind::Purchase || r.disposition != Some(Disposition::ApprovedOnline) || r.stan.is_none() {
            bail!("transaction {id} is not an online-approved purchase: nothing to void");
        }
        if r.state != TxnState::Completed {
            bail!("transaction {id} is {:?}: only completed, unsettled sales can be voided", r.state);
        }
        if let Some(why) = self.undone(id)? {
            bail!("transaction {id} is {why}");
        }
        self.journal.advance(&mut r, TxnEvent::Voided, |r| {
            r.reason = Some("voided by the cashier".into());
        })?;
        let ident = identity(&self.settings);
        let mut link = self.link();
        let link = link.get_or_insert_with(|| self.new_link());
        let res = self.rt.block_on(online::reverse(&self.journal, link, &ident, &mut r));
        self.host_ok.store(res.is_ok(), Ordering::Relaxed);
        Ok(self.journal.get(id)?)
    }

    /// Reversals and advices waiting for the host.
    pub fn pending(&self) -> Pending {
        Pending {
            reversals: self.journal.in_state(TxnState::ReversalPending).map(|v| v.len()).unwrap_or(0),
            advices: self.journal.in_state(TxnState::AdvicePending).map(|v| v.len()).unwrap_or(0),
        }
    }

    /// Uploads what is pending and reconciles (0500).
    pub fn settle(&self) -> Result<online::SettleReport> {
        let id = identity(&self.settings);
        let mut link = self.link();
        let link = link.get_or_insert_with(|| self.new_link());
        let rep = self.rt.block_on(online::settle(&self.journal, link, &id));
        self.host_ok.store(rep.is_ok(), Ordering::Relaxed);
        Ok(rep?)
    }

    /// `shanfu keys provision|rotate` (issue 12): `provision` establishes a new terminal master
    /// key with the acquirer (P-256, docs/keys.md) and signs on with it; `rotate` signs on again
    /// on a new connection for fresh working keys. Returns the check values (never a key).
    pub fn keys(&self, provision: bool) -> Result<KeysReport> {
        let mut link = self.link();
        let link = link.get_or_insert_with(|| self.new_link());
        if !link.is_authenticated() {
            bail!("this host is configured `mac = false`: it has no keys to provision or rotate");
        }
        let tmk = if provision { Some(self.rt.block_on(link.provision())?) } else { None };
        link.disconnect();
        self.rt.block_on(online::ready(&self.journal, link))?;
        let (pin, mac, data) = link.session_kcvs().ok_or_else(|| anyhow!("signed on without working keys"))?;
        let kcv = |k: shanfu_keys::Kcv| hex::encode_upper(k.as_bytes());
        Ok(KeysReport { tmk_kcv: tmk.map(kcv), pin_key_kcv: kcv(pin), mac_key_kcv: kcv(mac), data_key_kcv: kcv(data) })
    }

    /// The approved refund of a sale, if any.
    pub fn refund_of(&self, id: u64) -> Option<u64> {
        receipt::refunded_by(&self.journal.all().ok()?, id)
    }

    /// The customer receipt of a journal transaction (PAN masked), in the terminal's language.
    pub fn receipt(&self, r: &TxnRecord) -> String {
        receipt::receipt(&self.settings, r, self.training, self.refund_of(r.id))
    }
}

#[cfg(all(test, feature = "simulators"))]
mod tests {
    use super::*;
    use reader_drivers::virtual_reader::{Holder, VirtualReader};

    fn till(name: &str) -> (Terminal, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("shanfu-service-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Terminal::open(Settings::load(None).unwrap(), &dir, HostChoice::Embedded).unwrap(), dir)
    }

    fn sell(t: &Terminal, amount: &str) -> SaleResult {
        let wallet = test_cards::Wallet::load("unionpay-phone").unwrap();
        let mut reader = VirtualReader::new("unionpay-phone", wallet, Holder { fingerprint_on_prompt: true, remove_after: None });
        t.sale(&SaleRequest { amount: t.parse_amount(amount).unwrap(), ..Default::default() }, &mut reader, &mut |_| {}).unwrap()
    }

    #[test]
    fn a_refund_names_its_sale_and_does_not_resend_the_sales_cryptogram() {
        let (t, dir) = till("refund");
        let sale = sell(&t, "25.00");
        assert_eq!(sale.report.disposition, Disposition::ApprovedOnline);
        let sale = t.journal.get(sale.report.journal_id.unwrap()).unwrap();
        let refund = t.refund(sale.id).unwrap();
        assert_eq!(refund.disposition, Some(Disposition::ApprovedOnline), "{refund:?}");
        assert_eq!((refund.kind, refund.original, refund.amount), (TxnKind::Refund, Some(sale.id), sale.amount));
        assert_eq!(refund.reference_rrn, sale.rrn, "DE 37 names the sale");
        assert!(refund.cryptogram.is_none() && refund.icc_data.is_none() && refund.atc.is_none(), "{refund:?}");
        assert!(t.refund(sale.id).is_err(), "a second refund of the same sale");
        drop(t);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
