//! The cashier's screen (`shanfu pos`, `shanfu demo`): ratatui on top of [`crate::terminal::Terminal`].
//! No EMV here — the screen asks the till for sales, refunds, voids and settlement, and shows
//! what comes back. Card operations run on a worker thread so the screen stays live (countdown,
//! clock, the demo phone's keys).
//!
//! `App` holds all state and takes keys and worker events; `view` draws it. Both are plain
//! functions of the state, so tests drive them on ratatui's TestBackend with a real till.

pub mod view;

use crate::journal::{Disposition, TxnKind, TxnRecord, TxnState};
use host_contract::Lang;

/// The language of the cashier screens (a config setting in a later step).
pub const LANG: Lang = Lang::En;
use crate::online::SettleReport;
use crate::terminal::service::{Pending, Progress, SaleRequest, SaleResult, Terminal as Pos};
use kernels::outcome::MessageId;
use kernels::types::Amount;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reader_drivers::virtual_reader::PhoneInHand;
use reader_drivers::Reader;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A reader the worker thread can own.
pub type SendReader = Box<dyn Reader + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Amount entry.
    Sale,
    /// A sale, refund, void or settlement is running.
    Busy,
    /// The result of the last operation.
    Outcome,
    Receipt,
    History,
    Detail,
    Settlement,
}

/// What the cashier sees as the result of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub kind: BannerKind,
    pub title: String,
    /// The reason a cashier can act on.
    pub reason: String,
    pub details: Vec<String>,
    /// Journal id of the transaction (receipt).
    pub txn: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerKind {
    Approved,
    Declined,
    SeePhone,
    TryAgain,
    Info,
}

/// Money going back to the customer: asked before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    Refund,
    Void,
}

/// The operation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    Sale { amount: u64, stage: Stage, wait_from: Instant, wait: Duration },
    Other(String),
}

/// Where a sale is, for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Present,
    PresentAgain,
    SeePhone,
    HoldStill,
    CardRead,
    Authorizing,
}

enum Done {
    Sale(Box<anyhow::Result<SaleResult>>, SendReader),
    Refund(u64, anyhow::Result<TxnRecord>),
    Void(u64, anyhow::Result<TxnRecord>),
    Settle(anyhow::Result<SettleReport>),
    /// The operation panicked (a bug): the screen gives the terminal back and stops.
    Panicked(String, Option<SendReader>),
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

enum WorkerEvent {
    Progress(Progress),
    Done(Box<Done>),
}

pub struct App {
    pub pos: Arc<Pos>,
    pub screen: Screen,
    /// The amount being typed, as typed.
    pub amount: String,
    pub busy: Option<Busy>,
    pub banner: Option<Banner>,
    /// When the outcome appeared and how long it must stay (Book A hold time).
    shown: Option<(Instant, Duration)>,
    /// A one-line note: errors from keys, "receipt saved to ...".
    pub note: Option<String>,
    pub help: bool,
    /// A refund or void waiting for the cashier's "y": (action, journal id, question).
    pub confirm: Option<(Undo, u64, String)>,
    pub history: Vec<TxnRecord>,
    pub selected: usize,
    pub filter: String,
    pub filtering: bool,
    pub last_settle: Option<SettleReport>,
    pub pending: Pending,
    /// The demo's phone (keys t, f, 1-8).
    pub phone: Option<PhoneInHand>,
    reader: Option<SendReader>,
    canceller: Option<reader_drivers::Canceller>,
    pub reader_name: String,
    rx: Option<Receiver<WorkerEvent>>,
    /// Where receipts are exported.
    pub receipts: PathBuf,
    /// The clock line of the status bar (fixed in snapshot tests).
    pub clock: fn() -> String,
    pub quit: bool,
    /// Why the screen stopped on its own (a bug in an operation), shown after it closes.
    pub fatal: Option<String>,
}

fn wall_clock() -> String {
    let t = crate::clock::format_utc(crate::clock::unix_now());
    format!("{} UTC", &t[11..])
}

/// Amount entry: digits, one decimal point, at most the currency's decimals; 10 digits at most.
fn accept_amount_char(amount: &str, c: char, exp: usize) -> bool {
    match c {
        '0'..='9' => {
            if let Some(dot) = amount.find('.') {
                amount.len() - dot - 1 < exp
            } else {
                amount.len() < 10 && !(amount == "0" && c == '0')
            }
        }
        '.' => exp > 0 && !amount.contains('.'),
        _ => false,
    }
}

impl App {
    pub fn new(pos: Arc<Pos>, reader: SendReader, phone: Option<PhoneInHand>, receipts: PathBuf) -> App {
        let reader_name = reader.name();
        let canceller = reader.canceller();
        let pending = pos.pending();
        App {
            pos,
            screen: Screen::Sale,
            amount: String::new(),
            busy: None,
            banner: None,
            shown: None,
            note: None,
            help: false,
            confirm: None,
            history: Vec::new(),
            selected: 0,
            filter: String::new(),
            filtering: false,
            last_settle: None,
            pending,
            phone,
            reader: Some(reader),
            canceller,
            reader_name,
            rx: None,
            receipts,
            clock: wall_clock,
            quit: false,
            fatal: None,
        }
    }

    fn exp(&self) -> usize {
        usize::from(self.pos.settings.ep.terminal.currency_exponent)
    }

    /// Seconds left to present the card, for the countdown.
    pub fn countdown(&self) -> Option<u64> {
        match &self.busy {
            Some(Busy::Sale { stage: Stage::Present | Stage::PresentAgain | Stage::SeePhone, wait_from, wait, .. }) => {
                Some(wait.saturating_sub(wait_from.elapsed()).as_secs())
            }
            _ => None,
        }
    }

    /// Whether the outcome's hold time has passed (the next sale may start).
    fn hold_over(&self) -> bool {
        self.shown.is_none_or(|(at, hold)| at.elapsed() >= hold)
    }

    pub fn on_key(&mut self, k: KeyEvent) {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.cancel_wait();
            if self.busy.is_none() {
                self.quit = true;
            }
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        if let Some((what, id, _)) = self.confirm.take() {
            if matches!(k.code, KeyCode::Char('y' | 'Y')) {
                match what {
                    Undo::Refund => self.spawn(&format!("Refunding transaction {id}…"), move |pos| Done::Refund(id, pos.refund(id))),
                    Undo::Void => self.spawn(&format!("Voiding transaction {id}…"), move |pos| Done::Void(id, pos.void(id))),
                }
            } else {
                self.note = Some("nothing done".into());
            }
            return;
        }
        if matches!(k.code, KeyCode::F(1)) || (k.code == KeyCode::Char('?') && !self.filtering) {
            self.help = true;
            return;
        }
        self.note = None;
        match self.screen {
            Screen::Sale => self.key_sale(k),
            Screen::Busy => self.key_busy(k),
            Screen::Outcome => self.key_outcome(k),
            Screen::Receipt => self.key_receipt(k),
            Screen::History => self.key_history(k),
            Screen::Detail => self.key_detail(k),
            Screen::Settlement => self.key_settlement(k),
        }
    }

    fn key_sale(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char(c) if (c.is_ascii_digit() || c == '.') && accept_amount_char(&self.amount, c, self.exp()) => {
                self.amount.push(c);
            }
            KeyCode::Backspace => {
                self.amount.pop();
            }
            KeyCode::Esc => self.amount.clear(),
            KeyCode::Enter => match self.pos.parse_amount(&self.amount) {
                Ok(a) => self.start_sale(a),
                Err(e) => self.note = Some(format!("{e:#}")),
            },
            KeyCode::Char('h') => self.open_history(),
            KeyCode::Char('s') => self.open_settlement(),
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('t') => self.phone_key('t'),
            _ => {}
        }
    }

    fn phone_key(&mut self, c: char) {
        let Some(phone) = &self.phone else { return };
        match c {
            't' => phone.tap(),
            'f' if !phone.fingerprint() => {
                self.note = Some("a plastic card has no fingerprint sensor".into());
            }
            '1'..='8' => {
                let i = c as usize - '1' as usize;
                if !phone.choose_card(i) {
                    self.note = Some(format!("the wallet has no card {}", i + 1));
                }
            }
            _ => {}
        }
    }

    fn key_busy(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => self.cancel_wait(),
            KeyCode::Char(c @ ('t' | 'f' | '1'..='8')) => self.phone_key(c),
            _ => {}
        }
    }

    fn key_outcome(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char('r') if self.banner.as_ref().and_then(|b| b.txn).is_some() => {
                self.screen = Screen::Receipt;
            }
            KeyCode::Char('h') => self.open_history(),
            KeyCode::Enter | KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char(' ') => {
                if self.hold_over() {
                    self.new_sale();
                } else {
                    self.note = Some("showing the outcome to the customer…".into());
                }
            }
            KeyCode::Char(c) if c.is_ascii_digit() && self.hold_over() => {
                // Typing the next amount starts the next sale.
                self.new_sale();
                self.key_sale(k);
            }
            _ => {}
        }
    }

    fn new_sale(&mut self) {
        self.screen = Screen::Sale;
        self.amount.clear();
        self.banner = None;
        self.shown = None;
    }

    fn receipt_txn(&self) -> Option<TxnRecord> {
        let id = match self.screen {
            Screen::Detail => self.current().map(|r| r.id),
            _ => self.banner.as_ref().and_then(|b| b.txn),
        }?;
        self.pos.journal.get(id).ok()
    }

    /// The receipt text of the transaction on screen.
    pub fn receipt_text(&self) -> Option<String> {
        self.receipt_txn().map(|r| self.pos.receipt(&r))
    }

    fn export_receipt(&mut self) {
        let Some(r) = self.receipt_txn() else { return };
        let text = self.pos.receipt(&r);
        let path = self.receipts.join(format!("receipt-{}.txt", r.id));
        let res = std::fs::create_dir_all(&self.receipts).and_then(|_| std::fs::write(&path, text));
        self.note = Some(match res {
            Ok(()) => format!("receipt saved to {}", path.display()),
            Err(e) => format!("could not save the receipt to {}: {e}", path.display()),
        });
    }

    fn key_receipt(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char('e') => self.export_receipt(),
            KeyCode::Esc | KeyCode::Enter => self.screen = if self.banner.is_some() { Screen::Outcome } else { Screen::Sale },
            KeyCode::Char('n') => self.new_sale(),
            _ => {}
        }
    }

    /// Journal rows matching the filter, newest first.
    pub fn visible(&self) -> Vec<&TxnRecord> {
        let f = self.filter.to_lowercase();
        self.history
            .iter()
            .rev()
            .filter(|r| {
                f.is_empty() || {
                    let hay = format!(
                        "{} {} {} {} {:?} {:?} {}",
                        r.id,
                        Amount(r.amount).display(self.exp() as u32),
                        r.outcome_name(),
                        r.pan_masked.as_deref().unwrap_or(""),
                        r.kind,
                        r.state,
                        r.label.as_deref().unwrap_or("")
                    )
                    .to_lowercase();
                    hay.contains(&f)
                }
            })
            .collect()
    }

    fn current(&self) -> Option<&TxnRecord> {
        self.visible().get(self.selected).copied()
    }

    /// The journal as the screens show it (PAN removed).
    fn reload_history(&mut self) {
        self.history = self.pos.journal.all().map(|v| v.into_iter().map(|r| r.public()).collect()).unwrap_or_default();
    }

    pub fn open_history(&mut self) {
        self.reload_history();
        self.selected = 0;
        self.screen = Screen::History;
    }

    fn key_history(&mut self, k: KeyEvent) {
        if self.filtering {
            match k.code {
                KeyCode::Char(c) => self.filter.push(c),
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Enter => self.filtering = false,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filtering = false;
                }
                _ => {}
            }
            self.selected = 0;
            return;
        }
        let n = self.visible().len();
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            KeyCode::Char('/') => {
                self.filtering = true;
                self.filter.clear();
            }
            KeyCode::Enter if n > 0 => self.screen = Screen::Detail,
            KeyCode::Char('r') => self.refund_selected(),
            KeyCode::Char('v') => self.void_selected(),
            KeyCode::Char('s') => self.open_settlement(),
            KeyCode::Esc | KeyCode::Char('n') => self.new_sale(),
            KeyCode::Char('q') => self.quit = true,
            _ => {}
        }
    }

    fn key_detail(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Char('r') => self.refund_selected(),
            KeyCode::Char('v') => self.void_selected(),
            KeyCode::Char('e') => self.export_receipt(),
            KeyCode::Esc => self.screen = Screen::History,
            _ => {}
        }
    }

    pub fn open_settlement(&mut self) {
        self.reload_history();
        self.pending = self.pos.pending();
        self.screen = Screen::Settlement;
    }

    fn key_settlement(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Enter => self.spawn("Settling…", |pos| Done::Settle(pos.settle())),
            KeyCode::Char('h') => self.open_history(),
            KeyCode::Esc | KeyCode::Char('n') => self.new_sale(),
            KeyCode::Char('q') => self.quit = true,
            _ => {}
        }
    }

    /// The batch the next settlement reconciles, as the 0500 counts it (`online::counts`):
    /// (approved sales count, amount), (refunds count, amount), voids still waiting for their
    /// reversal's answer.
    pub fn totals(&self) -> ((u64, u64), (u64, u64), u64) {
        let mut sales = (0, 0);
        let mut refunds = (0, 0);
        let mut voids_pending = 0;
        for r in &self.history {
            if crate::terminal::receipt::Slip::of(r) == (crate::terminal::receipt::Slip::Void { confirmed: false }) {
                voids_pending += 1;
            }
            // Settlement uploads pending advices first: those offline approvals count too.
            let advised_first = r.state == TxnState::AdvicePending && r.disposition == Some(Disposition::ApprovedOffline);
            if !crate::online::counts(r) && !advised_first {
                continue;
            }
            let t = if r.kind == TxnKind::Refund { &mut refunds } else { &mut sales };
            t.0 += 1;
            t.1 += r.amount;
        }
        (sales, refunds, voids_pending)
    }

    fn ask(&mut self, what: Undo) {
        let Some(r) = self.current() else { return };
        let verb = if what == Undo::Refund { "Refund" } else { "Void" };
        let q = format!("{verb} {} of transaction {} ({})?", self.pos.money(r.amount), r.id, r.pan_masked.as_deref().unwrap_or("no card"));
        self.confirm = Some((what, r.id, q));
    }

    fn refund_selected(&mut self) {
        self.ask(Undo::Refund);
    }

    fn void_selected(&mut self) {
        self.ask(Undo::Void);
    }

    /// Runs a host operation on the worker thread.
    fn spawn(&mut self, what: &str, job: impl FnOnce(&Pos) -> Done + Send + 'static) {
        if self.rx.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let pos = self.pos.clone();
        std::thread::spawn(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&pos))).unwrap_or_else(|p| Done::Panicked(panic_text(p.as_ref()), None));
            let _ = tx.send(WorkerEvent::Done(Box::new(done)));
        });
        self.rx = Some(rx);
        self.busy = Some(Busy::Other(what.to_string()));
        self.screen = Screen::Busy;
    }

    fn start_sale(&mut self, amount: Amount) {
        let Some(mut reader) = self.reader.take() else {
            self.note = Some("the reader is busy".into());
            return;
        };
        // An Esc meant for the previous sale must not cancel this one (reset here, before the
        // worker starts, so an Esc right after Enter still counts).
        if let Some(c) = &self.canceller {
            c.reset();
        }
        let (tx, rx) = mpsc::channel();
        let pos = self.pos.clone();
        std::thread::spawn(move || {
            let progress_tx = tx.clone();
            let mut progress = move |p: Progress| {
                let _ = progress_tx.send(WorkerEvent::Progress(p));
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pos.sale(&SaleRequest { amount, ..Default::default() }, reader.as_mut(), &mut progress)
            }));
            let done = match r {
                Ok(r) => Done::Sale(Box::new(r), reader),
                Err(p) => Done::Panicked(panic_text(p.as_ref()), Some(reader)),
            };
            let _ = tx.send(WorkerEvent::Done(Box::new(done)));
        });
        self.rx = Some(rx);
        self.busy = Some(Busy::Sale { amount: amount.0, stage: Stage::Present, wait_from: Instant::now(), wait: self.pos.policy.first_tap });
        self.screen = Screen::Busy;
    }

    fn cancel_wait(&mut self) {
        if let Some(Busy::Sale { stage: Stage::Present | Stage::PresentAgain | Stage::SeePhone, .. }) = &self.busy {
            match &self.canceller {
                Some(c) => c.cancel(),
                None => self.note = Some("this reader stops waiting at its timeout".into()),
            }
        }
    }

    /// Takes what the worker reported; call on every tick.
    pub fn poll(&mut self) {
        loop {
            let Some(rx) = &self.rx else { return };
            match rx.try_recv() {
                Ok(WorkerEvent::Progress(p)) => self.on_progress(p),
                Ok(WorkerEvent::Done(d)) => {
                    self.rx = None;
                    self.on_done(*d);
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.rx = None;
                    self.busy = None;
                    self.banner = Some(Banner {
                        kind: BannerKind::Declined,
                        title: "ERROR".into(),
                        reason: "the terminal's worker stopped unexpectedly; check the journal".into(),
                        details: vec![],
                        txn: None,
                    });
                    self.screen = Screen::Outcome;
                    return;
                }
            }
        }
    }

    fn on_progress(&mut self, p: Progress) {
        let Some(Busy::Sale { stage, wait_from, wait, .. }) = &mut self.busy else { return };
        let policy = &self.pos.policy;
        match p {
            Progress::PresentCard => {
                if *stage != Stage::Present && *stage != Stage::SeePhone && *stage != Stage::PresentAgain {
                    *stage = Stage::PresentAgain;
                }
                *wait_from = Instant::now();
                *wait = if *stage == Stage::SeePhone {
                    policy.see_phone
                } else if *stage == Stage::Present {
                    policy.first_tap
                } else {
                    policy.try_again
                };
            }
            Progress::CardDetected => *stage = Stage::HoldStill,
            Progress::Message(MessageId::SeePhone) => *stage = Stage::SeePhone,
            Progress::Message(MessageId::CardReadOk | MessageId::RemoveCard) => *stage = Stage::CardRead,
            Progress::Message(MessageId::PresentCardAgain) => *stage = Stage::PresentAgain,
            Progress::Message(_) => {}
            Progress::Authorizing => *stage = Stage::Authorizing,
        }
    }

    fn on_done(&mut self, d: Done) {
        self.busy = None;
        self.pending = self.pos.pending();
        let pos = self.pos.clone();
        let money = |m: u64| pos.money(m);
        let banner = match d {
            Done::Panicked(msg, reader) => {
                if reader.is_some() {
                    self.reader = reader;
                }
                self.fatal = Some(msg);
                self.quit = true;
                return;
            }
            Done::Sale(r, reader) => {
                self.reader = Some(reader);
                match *r {
                    Ok(SaleResult { report: rep, hold, .. }) => {
                        self.shown = Some((Instant::now(), hold));
                        let minor = Amount::parse(&rep.amount, self.exp() as u32).map(|a| a.0).unwrap_or(0);
                        use crate::terminal::disposition::NotCompleted as N;
                        let d = rep.disposition;
                        let kind = match d {
                            d if d.is_approved() => BannerKind::Approved,
                            Disposition::NotCompleted { reason: N::Cancelled } => BannerKind::Info,
                            Disposition::NotCompleted { reason: N::SeePhone } => BannerKind::SeePhone,
                            Disposition::NotCompleted { reason: N::TryAgain } => BannerKind::TryAgain,
                            _ => BannerKind::Declined,
                        };
                        let title = d.title(LANG);
                        let reason = match d {
                            d if d.is_approved() => match rep.cvm.as_str() {
                                "CDCVM" => "Verified by device".to_string(),
                                "SIGNATURE" => "Please sign the receipt".to_string(),
                                _ => d.cashier_text(LANG).to_string(),
                            },
                            Disposition::NotCompleted { reason: N::SeePhone } => "Unlock your phone and confirm with fingerprint, then tap again".into(),
                            d => d.cashier_text(LANG).to_string(),
                        };
                        let mut details = vec![format!("{}  {}", money(minor), rep.label.clone().unwrap_or_default())];
                        if let Some(p) = &rep.pan_masked {
                            details.push(format!("Card {p}  {}  {}", rep.kernel.clone().unwrap_or_default(), rep.aid.clone().unwrap_or_default()));
                        }
                        if let Some(ac) = &rep.auth_code {
                            details.push(format!("Auth code {ac}  RRN {}  STAN {}", rep.rrn.clone().unwrap_or_default(), rep.stan.clone().unwrap_or_default()));
                        }
                        // Air time when the reader can tell (virtual readers), else the tap's wall time.
                        details.push(if rep.card_in_field_ms > 0.0 {
                            format!("{} tap(s), card in field {:.0} ms", rep.taps, rep.card_in_field_ms)
                        } else {
                            format!("{} tap(s), card read in {:.1} ms", rep.taps, rep.tap_ms)
                        });
                        Banner { kind, title: title.into(), reason, details, txn: rep.journal_id }
                    }
                    Err(e) => Banner { kind: BannerKind::Declined, title: "ERROR".into(), reason: format!("{e:#}"), details: vec![], txn: None },
                }
            }
            Done::Refund(orig, r) => self.record_banner("Refund", orig, r),
            Done::Void(orig, r) => self.record_banner("Void", orig, r),
            Done::Settle(r) => {
                self.reload_history();
                self.pending = self.pos.pending();
                match r {
                    Ok(rep) => {
                        let kind = if rep.reconciled { BannerKind::Approved } else { BannerKind::Declined };
                        self.last_settle = Some(rep.clone());
                        Banner {
                            kind,
                            title: if rep.reconciled { "RECONCILED" } else { "NOT RECONCILED" }.into(),
                            reason: format!(
                                "{} sales {}, {} refunds {}; reversals sent {}, advices sent {}",
                                rep.totals.debits,
                                money(rep.totals.debits_amount),
                                rep.totals.credits,
                                money(rep.totals.credits_amount),
                                rep.reversals_sent,
                                rep.advices_sent
                            ),
                            details: vec![],
                            txn: None,
                        }
                    }
                    Err(e) => Banner { kind: BannerKind::Declined, title: "SETTLEMENT FAILED".into(), reason: format!("{e:#}"), details: vec![], txn: None },
                }
            }
        };
        self.banner = Some(banner);
        self.screen = Screen::Outcome;
    }

    fn record_banner(&self, what: &str, orig: u64, r: anyhow::Result<TxnRecord>) -> Banner {
        match r {
            Ok(rec) => {
                let ok = match what {
                    "Void" => rec.state == TxnState::Reversed,
                    _ => rec.disposition.is_some_and(Disposition::is_approved),
                };
                let reason = if ok {
                    format!("{what} of transaction {orig}: {}", self.pos.money(rec.amount))
                } else if what == "Void" {
                    format!("Void of transaction {orig} not confirmed yet: the reversal is queued and retried")
                } else {
                    rec.disposition.map(|d| d.cashier_text(LANG)).unwrap_or("Not answered yet — it is retried").to_string()
                };
                Banner {
                    kind: if ok { BannerKind::Approved } else { BannerKind::Declined },
                    title: if ok {
                        if what == "Void" {
                            "VOIDED"
                        } else {
                            "APPROVED"
                        }
                    } else {
                        "DECLINED"
                    }
                    .into(),
                    reason,
                    details: vec![format!("{} {}", rec.label.clone().unwrap_or_default(), rec.pan_masked.clone().unwrap_or_default())],
                    txn: Some(rec.id),
                }
            }
            Err(e) => {
                Banner { kind: BannerKind::Info, title: format!("{} NOT DONE", what.to_uppercase()), reason: format!("{e:#}"), details: vec![], txn: None }
            }
        }
    }
}

/// Runs the cashier screen on the real terminal until the cashier quits. ratatui's `init`
/// installs a panic hook that restores the terminal; `restore` runs on every exit path.
pub fn run(app: &mut App) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    let mut term = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may be on already: give the terminal back before reporting.
            ratatui::restore();
            return Err(e.into());
        }
    };
    let res = (|| -> anyhow::Result<()> {
        while !app.quit {
            app.poll();
            if app.quit {
                // A worker panicked: its hook gave the terminal back already; draw nothing more.
                break;
            }
            term.draw(|f| view::draw(f, app))?;
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => app.on_key(k),
                    _ => {}
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    res?;
    match &app.fatal {
        Some(why) => anyhow::bail!("internal error in the cashier screen: {why}; every transaction is in the journal — restart shanfu"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
