//! The terminal's business operations, without any screen: a sale from "present card" to the
//! host's answer, refund and void of a journal transaction, settlement, receipts. `shanfu pay`
//! and the cashier TUI (`shanfu pos`, `shanfu demo`) both go through here.

use crate::journal::{Disposition, Journal, TxnEvent, TxnKind, TxnRecord, TxnState};
use crate::report::PayReport;
use crate::settings::Settings;
use crate::terminal::disposition::{self, TerminalReason};
use crate::terminal::{self, Display, TapPolicy};
use crate::{acquirer, clock, host, online};
use anyhow::{anyhow, bail, Context, Result};
use host_contract::Lang;
use kernels::entry_point::{EntryPoint, Transaction};
use kernels::outcome::Cvm;
use kernels::types::Amount;
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

/// Terminal and merchant identity for the host messages.
pub fn identity(settings: &Settings) -> online::Identity {
    online::Identity {
        terminal_id: settings.ep.terminal.terminal_id.clone(),
        merchant_id: settings.merchant_id.clone(),
        currency: hex::encode(settings.ep.terminal.currency)[1..].to_string(),
    }
}

/// After the tap: journal the card data, then go online, queue the advice, or close.
/// `host` is asked for the acquirer's address only when the card asks to go online.
#[allow(clippy::too_many_arguments)]
pub fn complete(
    settings: &Settings,
    j: &Journal,
    rec: &mut TxnRecord,
    ep: &EntryPoint,
    result: &terminal::TapResult,
    report: &mut PayReport,
    rt: &tokio::runtime::Handle,
    host: impl FnOnce() -> Result<SocketAddr>,
    timeout: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let s = ep.summary();
    let record = result.outcome.data_record.clone().unwrap_or_default();
    let find = |t| kernels::tlv::find(&record, t).ok().flatten().map(|v| v.to_vec());
    let track2 = find(kernels::tag::TRACK2_EQUIVALENT).map(|t| kernels::types::digits(&t));
    j.advance(rec, TxnEvent::CardRead, |r| {
        r.pan = s.pan.clone();
        r.pan_masked = report.pan_masked.clone();
        r.expiry_yymm = s.expiry.as_ref().map(|e| e.chars().take(4).collect());
        r.psn = s.pan_sequence;
        r.label = s.label.clone();
        r.aid = report.aid.clone();
        r.kernel = report.kernel.clone();
        r.cvm = Some(report.cvm.clone());
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
        // The card asks for online PIN and there is no PIN pad: the request must not go
        // without the PIN (Book A §6.2 CVM = Online PIN), so nothing is sent or charged.
        None if result.outcome.cvm == Cvm::OnlinePin => {
            let d = Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable };
            j.advance(rec, TxnEvent::Closed, |r| {
                r.disposition = Some(d);
                r.reason = Some("the card asks for online PIN; this terminal has no PIN entry: not sent, not approved".into());
            })?;
            report.set(d);
            report.reason = rec.reason.clone().unwrap_or_default();
        }
        None => {
            progress(Progress::Authorizing);
            let id = identity(settings);
            let addr = host()?;
            let outcome = rt.block_on(async {
                let mut link = host::HostLink::new(addr, timeout);
                // Earlier reversals first: the host must not see this one before them.
                let _ = online::drain(j, &mut link, &id).await;
                online::authorize(j, &mut link, &id, rec, track2).await
            });
            report.online = true;
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
#[derive(Debug, Clone)]
pub struct SaleResult {
    pub report: PayReport,
    /// How long the outcome must stay on screen (Book A §7.1 hold time), at least.
    pub hold: Duration,
}

/// Pending store-and-forward work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub reversals: usize,
    pub advices: usize,
}

/// A till: settings, the journal and the acquirer connection, for many sales in one process.
pub struct Pos {
    pub settings: Settings,
    pub journal: Journal,
    host: SocketAddr,
    rt: tokio::runtime::Runtime,
    pub timeout: Duration,
    pub policy: TapPolicy,
    /// Whether the last host contact got an answer.
    host_ok: AtomicBool,
}

impl Pos {
    /// Opens the journal under `data` (recovering interrupted transactions) and connects to
    /// `host`, or starts an embedded acquirer over `data/acquirer` on 127.0.0.1.
    pub fn open(settings: Settings, data: &Path, host: Option<SocketAddr>) -> Result<Pos> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let jdir = data.join("journal");
        let journal = Journal::open(&jdir).with_context(|| format!("opening the journal at {}", jdir.display()))?;
        let queued = journal.recover()?;
        if !queued.is_empty() {
            tracing::warn!(count = queued.len(), "recovery: transactions sent without an answer are queued for reversal");
        }
        let host = match host {
            Some(h) => h,
            None => {
                let db = data.join("acquirer");
                rt.block_on(acquirer::embedded(&db)).with_context(|| format!("starting the embedded acquirer over {}", db.display()))?
            }
        };
        Ok(Pos { settings, journal, host, rt, timeout: Duration::from_secs(5), policy: TapPolicy::default(), host_ok: AtomicBool::new(true) })
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

    /// One purchase: tap(s) through the Entry Point and kernel, then the host if the card asks.
    pub fn sale(&self, amount: Amount, reader: &mut dyn Reader, progress: &mut dyn FnMut(Progress)) -> Result<SaleResult> {
        let (date, time) = clock::now();
        let txn = Transaction { amount, amount_other: None, txn_type: 0x00, date, time, unpredictable_number: unpredictable_number() };
        let mut ep = EntryPoint::new(Arc::new(self.settings.ep.clone()), Arc::new(self.settings.capks.clone()), txn);
        let currency = self.currency();
        let mut rec = self.journal.begin(TxnKind::Purchase, amount.0, &currency)?;
        let result = terminal::run(&mut ep, reader, &self.policy, unpredictable_number, |d| progress(d.into()));
        // Done with the card: release it (a PC/SC handle, the demo phone leaves the field).
        let _ = reader.wait_for_removal(Duration::ZERO);
        let hold = result.outcome.ui_on_outcome.as_ref().map(|u| Duration::from_millis(u64::from(u.hold_time_ms))).unwrap_or_default();
        let mut report = PayReport::new(&ep, &result, self.settings.ep.terminal.currency_exponent, &currency);
        complete(&self.settings, &self.journal, &mut rec, &ep, &result, &mut report, self.rt.handle(), || Ok(self.host), self.timeout, progress)?;
        if report.online {
            self.host_ok.store(report.response_code.is_some(), Ordering::Relaxed);
        }
        Ok(SaleResult { report, hold })
    }

    /// Whether a journal transaction was already refunded or voided.
    fn undone(&self, id: u64) -> Result<Option<String>> {
        for r in self.journal.all()? {
            if r.original != Some(id) || r.kind != TxnKind::Refund {
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
        if o.pan.is_none() || o.icc_data.is_none() {
            bail!("transaction {original} has no card data to refund to");
        }
        let mut rec = self.journal.begin(TxnKind::Refund, o.amount, &o.currency)?;
        self.journal.advance(&mut rec, TxnEvent::CardRead, |r| {
            r.pan = o.pan.clone();
            r.pan_masked = o.pan_masked.clone();
            r.expiry_yymm = o.expiry_yymm.clone();
            r.psn = o.psn;
            r.label = o.label.clone();
            r.aid = o.aid.clone();
            r.kernel = o.kernel.clone();
            r.cvm = Some("NO_CVM".into());
            r.oda = o.oda.clone();
            r.cryptogram_type = o.cryptogram_type.clone();
            r.cryptogram = o.cryptogram.clone();
            r.atc = o.atc;
            r.icc_data = o.icc_data.clone();
            r.original = Some(original);
        })?;
        let id = identity(&self.settings);
        let res = self.rt.block_on(async {
            let mut link = host::HostLink::new(self.host, self.timeout);
            let _ = online::drain(&self.journal, &mut link, &id).await;
            online::authorize(&self.journal, &mut link, &id, &mut rec, None).await
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
        let res = self.rt.block_on(async {
            let mut link = host::HostLink::new(self.host, self.timeout);
            online::reverse(&self.journal, &mut link, &ident, &mut r).await
        });
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
        let rep = self.rt.block_on(async {
            let mut link = host::HostLink::new(self.host, self.timeout);
            online::settle(&self.journal, &mut link, &id).await
        });
        self.host_ok.store(rep.is_ok(), Ordering::Relaxed);
        Ok(rep?)
    }

    /// The customer receipt of a journal transaction (PAN masked).
    pub fn receipt(&self, r: &TxnRecord) -> String {
        receipt(&self.settings, r)
    }
}

/// What a journal transaction is to the people who read about it: a sale, a refund, or the
/// void of a sale (an approved sale whose reversal the cashier asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slip {
    Sale,
    Refund,
    /// The void of a sale; `confirmed` once the host acknowledged the reversal (0410).
    Void {
        confirmed: bool,
    },
}

impl Slip {
    pub fn of(r: &TxnRecord) -> Slip {
        match (r.kind, r.state) {
            (TxnKind::Refund, _) => Slip::Refund,
            // Only an approved sale is voided; a reversal after no answer is not a void.
            (TxnKind::Purchase, TxnState::ReversalPending | TxnState::Reversed) if r.disposition == Some(Disposition::ApprovedOnline) => {
                Slip::Void { confirmed: r.state == TxnState::Reversed }
            }
            (TxnKind::Purchase, _) => Slip::Sale,
        }
    }

    pub fn title(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Slip::Sale, Lang::En) => "SALE",
            (Slip::Sale, Lang::ZhCn) => "消费",
            (Slip::Refund, Lang::En) => "REFUND",
            (Slip::Refund, Lang::ZhCn) => "退货",
            (Slip::Void { .. }, Lang::En) => "VOID",
            (Slip::Void { .. }, Lang::ZhCn) => "撤销",
        }
    }
}

/// When the slip's event happened: the void's own time for a void, else the start.
fn slip_time(r: &TxnRecord, slip: Slip) -> u64 {
    match slip {
        Slip::Void { .. } => r.history.iter().find(|(_, s)| *s == TxnState::ReversalPending).or(r.history.last()).map(|(t, _)| *t).unwrap_or(0),
        _ => r.history.first().map(|(t, _)| *t).unwrap_or(0),
    }
}

/// The receipt text: merchant, terminal, date/time, masked PAN, card, AID, kernel, ATC,
/// cryptogram, STAN, RRN, authorization and response codes, CVM line, amount, and how it ended
/// in words (never an internal code).
pub fn receipt(settings: &Settings, r: &TxnRecord) -> String {
    let lang = Lang::En;
    let t = &settings.ep.terminal;
    let exp = u32::from(t.currency_exponent);
    let slip = Slip::of(r);
    let when = clock::format_utc(slip_time(r, slip));
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let status = match (slip, r.disposition) {
        (Slip::Void { confirmed: true }, _) => "VOIDED — the sale is cancelled, nothing is charged".to_string(),
        (Slip::Void { confirmed: false }, _) => "VOID PENDING — the reversal is queued and retried".to_string(),
        (_, Some(d)) => format!("{} — {}", d.title(lang), d.cashier_text(lang)),
        (_, None) => "IN PROGRESS".to_string(),
    };
    let approved = r.disposition.is_some_and(Disposition::is_approved) && !matches!(slip, Slip::Void { .. });
    let cvm = match r.cvm.as_deref() {
        _ if !approved => None,
        Some("CDCVM") => Some("Verified by device".to_string()),
        Some("SIGNATURE") => Some("Signature: ______________________".to_string()),
        Some("ONLINE_PIN") => Some("PIN verified online".to_string()),
        _ => Some("No cardholder verification required".to_string()),
    };
    let currency = if t.currency == [0x01, 0x56] { "CNY ¥".to_string() } else { format!("{} {}", hex::encode(t.currency), settings.currency_symbol) };
    let mut s = String::new();
    s += &format!("{}\n", t.merchant_name_location);
    s += &format!("Merchant ID  {}\nTerminal ID  {}\n", settings.merchant_id, t.terminal_id);
    s += &format!("Date/time    {when} UTC\n");
    s += &format!("{}  #{}\n", slip.title(lang), r.id);
    s += &format!("Card         {} {}\n", o(&r.label), o(&r.pan_masked));
    s += &format!("AID          {}   Kernel {}\n", o(&r.aid), o(&r.kernel));
    if slip != Slip::Refund {
        s += &format!("ATC          {}   {} {}\n", r.atc.map(|a| a.to_string()).unwrap_or("-".into()), o(&r.cryptogram_type), o(&r.cryptogram));
    }
    s += &format!("STAN         {}   RRN {}\n", r.stan.map(|x| format!("{x:06}")).unwrap_or("-".into()), o(&r.rrn));
    s += &format!("Auth code    {}   Response {}\n", o(&r.auth_code), o(&r.response_code));
    if let Some(orig) = r.original {
        s += &format!("Original     #{orig}\n");
    }
    s += &format!("AMOUNT       {currency}{}\n", Amount(r.amount).display(exp));
    s += &format!("{status}\n");
    if let Some(cvm) = cvm {
        s += &format!("{cvm}\n");
    }
    if !approved {
        s += "NO CHARGE\n";
    }
    s
}
