//! The cashier screen's state: which screen is up, what is typed, what runs on the worker, what
//! came back. Keys go through the key table ([`super::keys`]) to an [`Action`], handled here or
//! in the screen's module (`screens/`); worker events come through [`App::poll`].

use super::keys::{self, Action};
use super::worker::{self, Done, Event, Job, Undo};
use super::DemoPhone;
use super::SendReader;
use crate::journal::TxnRecord;
use crate::online::SettleReport;
use crate::terminal::service::{Pending, Terminal as Pos};
use crate::text::T;
use host_contract::Lang;
use ratatui::crossterm::event::KeyEvent;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The operation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    Sale { amount: u64, stage: Stage, wait_from: Instant, wait: Duration },
    Undo(Undo, u64),
    Settle,
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

/// A refund or void waiting for the cashier's "y".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub what: Undo,
    pub id: u64,
    pub question: String,
}

pub struct App {
    pub pos: Arc<Pos>,
    /// The language of every screen (`language` under `[terminal]`).
    pub lang: Lang,
    pub screen: Screen,
    /// The amount being typed, as typed.
    pub amount: String,
    pub busy: Option<Busy>,
    pub banner: Option<Banner>,
    /// When the outcome appeared and how long it must stay (Book A hold time).
    pub(super) shown: Option<(Instant, Duration)>,
    /// A one-line note: errors from keys, "receipt saved to ...".
    pub note: Option<String>,
    pub help: bool,
    pub confirm: Option<Confirm>,
    pub history: Vec<TxnRecord>,
    pub selected: usize,
    pub filter: String,
    pub filtering: bool,
    pub last_settle: Option<SettleReport>,
    pub pending: Pending,
    /// The demo's phone (keys t, f, 1-8).
    pub phone: Option<DemoPhone>,
    pub(super) reader: Option<SendReader>,
    pub(super) canceller: Option<reader_drivers::Canceller>,
    pub reader_name: String,
    rx: Option<Receiver<Event>>,
    /// Where receipts are exported.
    pub receipts: PathBuf,
    /// The clock of the status bar in the terminal's time zone (fixed in snapshot tests).
    pub clock: fn(&jiff::tz::TimeZone) -> String,
    pub quit: bool,
    /// Why the screen stopped on its own (a bug in an operation), shown after it closes.
    pub fatal: Option<String>,
    /// The PIN entry on screen, while the worker waits for it ([`super::pinpad`]).
    pub pin: Option<super::pinpad::PinScreen>,
    /// "PIN wanted" requests of the till's PIN pad, when it is this screen's.
    pin_rx: Option<Receiver<super::pinpad::PinRequest>>,
}

impl App {
    pub fn new(pos: Arc<Pos>, reader: SendReader, phone: Option<DemoPhone>, receipts: PathBuf) -> App {
        let reader_name = reader.name();
        let canceller = reader.canceller();
        let pending = pos.pending();
        let lang = pos.settings.lang;
        App {
            pos,
            lang,
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
            clock: crate::clock::local_clock,
            quit: false,
            fatal: None,
            pin: None,
            pin_rx: None,
        }
    }

    /// Makes this screen the till's PIN pad (online PIN, issue 12): the sale's worker asks it
    /// for the PIN and waits while the screen shows the PIN entry.
    pub fn use_screen_pin_pad(&mut self) {
        let pad = self.screen_pin_pad();
        self.pos.set_pin_pad(Box::new(pad));
    }

    /// A PIN pad whose requests this screen answers (replacing any earlier one's).
    pub fn screen_pin_pad(&mut self) -> super::pinpad::ScreenPinPad {
        let (pad, rx) = super::pinpad::channel();
        self.pin_rx = Some(rx);
        pad
    }

    /// PIN requests and the PIN entry's timeout; part of [`App::poll`].
    fn poll_pin(&mut self, now: Instant) {
        if let Some(p) = &mut self.pin {
            if p.on_tick(now) {
                self.pin = None;
            }
        }
        if self.pin.is_none() {
            if let Some(req) = self.pin_rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
                self.pin = Some(super::pinpad::PinScreen::new(req, now));
            }
        }
    }

    /// A text of the table in the terminal's language.
    pub fn t(&self, t: T) -> &'static str {
        t.s(self.lang)
    }

    /// A text with arguments in the terminal's language.
    pub fn tf(&self, t: T, args: &[&dyn std::fmt::Display]) -> String {
        t.fmt(self.lang, args)
    }

    pub(super) fn exp(&self) -> usize {
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

    /// Whether a sale waits for the card now (the only time a tap counts).
    pub fn waits_for_card(&self) -> bool {
        matches!(self.busy, Some(Busy::Sale { stage: Stage::Present | Stage::PresentAgain | Stage::SeePhone, .. }))
    }

    /// One key: looked up in the key table, then handled. A key not in the table does nothing.
    pub fn on_key(&mut self, k: KeyEvent) {
        // The PIN entry takes every key while it is up.
        if let Some(p) = &mut self.pin {
            if p.on_key(&k, Instant::now()) {
                self.pin = None;
            }
            return;
        }
        if let Some(a) = keys::lookup(self, &k) {
            self.act(a, &k);
        }
    }

    fn act(&mut self, a: Action, k: &KeyEvent) {
        let ch = match k.code {
            ratatui::crossterm::event::KeyCode::Char(c) => Some(c),
            _ => None,
        };
        if !matches!(a, Action::Interrupt | Action::CloseHelp | Action::Yes | Action::No | Action::Help) {
            self.note = None;
        }
        match a {
            Action::Interrupt => {
                self.cancel_wait();
                if self.busy.is_none() {
                    self.quit = true;
                }
            }
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::CloseHelp => self.help = false,
            Action::TypeAmount => self.type_amount(ch),
            Action::DeleteAmount => {
                self.amount.pop();
            }
            Action::ClearAmount => self.amount.clear(),
            Action::Charge => self.charge(),
            Action::OpenHistory => self.open_history(),
            Action::OpenSettlement => self.open_settlement(),
            Action::CancelWait => self.cancel_wait(),
            Action::PhoneTap => self.phone_tap(),
            Action::PhoneFingerprint => self.phone_fingerprint(),
            Action::PhonePickCard => self.phone_pick_card(ch),
            Action::NextSale => self.next_sale(),
            Action::NextSaleTyping => {
                if self.hold_over() {
                    self.new_sale();
                    self.type_amount(ch);
                }
            }
            Action::ShowReceipt => self.show_receipt(),
            Action::ExportReceipt => self.export_receipt(),
            Action::BackFromReceipt => self.screen = if self.banner.is_some() { Screen::Outcome } else { Screen::Sale },
            Action::BackToHistory => self.screen = Screen::History,
            Action::NewSale => self.new_sale(),
            Action::SelectUp => self.selected = self.selected.saturating_sub(1),
            Action::SelectDown => self.selected = (self.selected + 1).min(self.visible().len().saturating_sub(1)),
            Action::StartFilter => {
                self.filtering = true;
                self.filter.clear();
                self.selected = 0;
            }
            Action::FilterType => {
                self.filter.extend(ch);
                self.selected = 0;
            }
            Action::FilterDelete => {
                self.filter.pop();
                self.selected = 0;
            }
            Action::FilterDone => {
                self.filtering = false;
                self.selected = 0;
            }
            Action::FilterClear => {
                self.filter.clear();
                self.filtering = false;
                self.selected = 0;
            }
            Action::Details => {
                if !self.visible().is_empty() {
                    self.screen = Screen::Detail;
                }
            }
            Action::Refund => self.ask(Undo::Refund),
            Action::Void => self.ask(Undo::Void),
            Action::RunSettlement => self.spawn(Busy::Settle, Job::Settle),
            Action::Yes => {
                if let Some(c) = self.confirm.take() {
                    self.spawn(Busy::Undo(c.what, c.id), Job::Undo(c.what, c.id));
                }
            }
            Action::No => {
                self.confirm = None;
                self.note = Some(self.t(T::NothingDone).into());
            }
        }
    }

    pub(super) fn new_sale(&mut self) {
        self.screen = Screen::Sale;
        self.amount.clear();
        self.banner = None;
        self.shown = None;
    }

    /// Whether the outcome's hold time has passed (the next sale may start).
    pub(super) fn hold_over(&self) -> bool {
        self.shown.is_none_or(|(at, hold)| at.elapsed() >= hold)
    }

    /// The journal as the screens show it (PAN removed).
    pub(super) fn reload_history(&mut self) {
        self.history = self.pos.journal.all().map(|v| v.into_iter().map(|r| r.public()).collect()).unwrap_or_default();
    }

    /// Runs a host operation (refund, void, settlement) on the worker.
    pub(super) fn spawn(&mut self, busy: Busy, job: Job) {
        if self.rx.is_some() {
            return;
        }
        self.rx = Some(worker::start(self.pos.clone(), job));
        self.busy = Some(busy);
        self.screen = Screen::Busy;
    }

    /// Starts a sale on the worker with the reader.
    pub(super) fn spawn_sale(&mut self, amount: kernels::types::Amount, reader: SendReader) {
        self.rx = Some(worker::start(self.pos.clone(), Job::Sale(amount, reader)));
        self.busy = Some(Busy::Sale { amount: amount.0, stage: Stage::Present, wait_from: Instant::now(), wait: self.pos.policy.first_tap });
        self.screen = Screen::Busy;
    }

    /// Takes what the worker reported; call on every tick.
    pub fn poll(&mut self) {
        self.poll_pin(Instant::now());
        loop {
            let Some(rx) = &self.rx else { return };
            match rx.try_recv() {
                Ok(Event::Progress(p)) => self.on_progress(p),
                Ok(Event::Done(d)) => {
                    self.rx = None;
                    self.on_done(*d);
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.rx = None;
                    self.busy = None;
                    self.banner = Some(Banner {
                        kind: BannerKind::Declined,
                        title: self.t(T::Error).into(),
                        reason: self.t(T::WorkerStopped).into(),
                        details: vec![],
                        txn: None,
                    });
                    self.screen = Screen::Outcome;
                    return;
                }
            }
        }
    }

    fn on_done(&mut self, d: Done) {
        self.busy = None;
        self.pending = self.pos.pending();
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
                self.sale_banner(*r)
            }
            Done::Undo(what, orig, r) => self.undo_banner(what, orig, *r),
            Done::Settle(r) => {
                self.reload_history();
                self.pending = self.pos.pending();
                self.settle_banner(r)
            }
        };
        self.banner = Some(banner);
        self.screen = Screen::Outcome;
    }
}
