//! The gate's purse transaction: one tap of a T-Union card at a closed-loop gate, as a sans-IO
//! state machine. It asks for card commands, PSAM work and a fare ([`Action`]) and is fed their
//! results ([`Event`]); it ends in a [`GateOutcome`]. No clock, no I/O: the date-time, the gate's
//! setup and the torn debits the gate remembers are inputs.
//!
//! The order of the steps is the composite purchase of transit.md (read EF 15, check the issuer
//! white-list, INITIALIZE FOR CAPP PURCHASE, MAC1 from the PSAM, UPDATE CAPP DATA CACHE, DEBIT FOR
//! CAPP PURCHASE, MAC2 checked by the PSAM), with this project's tap-in / tap-out rules on top:
//!
//! ```text
//! SELECT ─▶ READ EF15 ─┬─ torn debit known for this card ─▶ INITIALIZE ─┬─ ATC moved ─▶ PROVE ─▶ PSAM checks MAC2 ─▶ Recovered
//!                      │                                                └─ ATC same ─▶ redo the torn purchase (below)
//!                      └─ READ trip record ─▶ (exit: fare) ─▶ INITIALIZE ─▶ PSAM MAC1 ─▶ UPDATE CACHE ─▶ DEBIT ─▶ PSAM MAC2 ─▶ Open
//! ```
//!
//! Torn debit ("闪卡", transit.md step 5): the card leaving after DEBIT was sent leaves the gate
//! not knowing whether the card debited itself. The card steps its offline ATC only on a
//! successful debit, so on the next tap the gate compares the ATC the card now reports with the
//! one of the torn purchase: moved → ask GET TRANSACTION PROVE for the old ATC and, with a valid
//! MAC2, count the debit as done (no second charge); unchanged → the debit never happened, the
//! same purchase is done again. (The ATC rule is the common reading of the PBOC e-purse;
//! unverified against JR/T 0025's text.)

use super::{
    debit, get_transaction_prove, initialize, parse_debit, parse_initialize, parse_public_info, parse_select, parse_transaction_prove, parse_trip_record,
    parse_update, read_public_info, read_trip_record, select, sw, update_capp_data_cache, CardSerial, DebitProof, InitResponse, PublicInfo, PurchaseType,
    PurseDate, PurseDateTime, PurseError, Station, TripRecord, TripState,
};
use crate::apdu::{CApdu, RApdu};

/// Which way a gate lets people through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Entry,
    Exit,
}

/// What the gate is and what it accepts (from its configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateSetup {
    /// The PSAM's terminal number (6 bytes), sent in INITIALIZE and covered by MAC1 and TAC.
    pub terminal_id: [u8; 6],
    pub station: Station,
    pub direction: Direction,
    /// Purchase key index asked for in INITIALIZE.
    pub key_index: u8,
    /// Issuer ids (EF 15 bytes 1-8) whose cards this gate takes (transit.md step 1: "check the
    /// issuer against the white-list of other cities' cards").
    pub issuers: Vec<[u8; 8]>,
    /// An entry within this many minutes of the previous exit is a transfer (换乘).
    pub transfer_window_minutes: i64,
    /// An open journey older than this no longer blocks a new entry ("timeout override"); the
    /// entry is flagged `missed_exit` for the back office.
    pub max_trip_minutes: i64,
    /// Charged at entry (0 on distance-fare metros, the flat fare on buses).
    pub entry_fare: u32,
}

/// The way through a gate a tap pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Passage {
    Entry,
    Exit,
}

/// What a tap will do to the card: the amount and the trip record written with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub passage: Passage,
    pub amount: u32,
    pub record: TripRecord,
    /// Entry allowed over an open journey older than `max_trip_minutes`.
    pub missed_exit: bool,
}

/// Everything the PSAM needs to compute MAC1 (its INIT FOR SAM PURCHASE `80 70`, transit.md step
/// 3) and, with the terminal transaction number, to check MAC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mac1Request {
    pub serial: CardSerial,
    pub issuer_id: [u8; 8],
    pub random: [u8; 4],
    pub offline_atc: u16,
    pub amount: u32,
    pub kind: PurchaseType,
    pub when: PurseDateTime,
    pub key_version: u8,
    pub algorithm: u8,
}

/// The PSAM's answer: the terminal transaction number it used and MAC1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac1Answer {
    pub ttsn: [u8; 4],
    pub mac1: [u8; 4],
}

/// One purchase session: what MAC1 was made from and the terminal transaction number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub request: Mac1Request,
    pub ttsn: [u8; 4],
}

/// The PSAM is asked to check the card's MAC2 for a session (CREDIT SAM FOR PURCHASE `80 72`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac2Check {
    pub session: Session,
    pub mac2: [u8; 4],
}

/// A DEBIT the card may or may not have done: the gate keeps it until the card comes back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TornDebit {
    pub session: Session,
    pub plan: Plan,
}

/// What a gate hands to the back office for a tap that moved money (or wrote an entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub card: PublicInfo,
    pub passage: Passage,
    pub amount: u32,
    /// The card's balance after this debit, fen.
    pub balance_after: u32,
    /// The offline ATC the debit used.
    pub offline_atc: u16,
    pub ttsn: [u8; 4],
    pub tac: [u8; 4],
    /// Date-time of the debit (the one MAC1 and TAC cover).
    pub when: PurseDateTime,
    pub record: TripRecord,
    pub missed_exit: bool,
}

/// Why the gate stays closed while the card itself is fine: tell the passenger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    NotWhitelisted {
        issuer_id: [u8; 8],
    },
    Expired {
        expiry: PurseDate,
    },
    NotYetValid {
        start: PurseDate,
    },
    /// `balance` is `None` when the card refused INITIALIZE with `9401`.
    InsufficientBalance {
        balance: Option<u32>,
        amount: u32,
    },
    /// An exit gate, and the card holds no open journey.
    NoEntryRecorded,
    /// An entry gate, and the card holds an open journey (entry/exit mismatch).
    AlreadyEntered {
        entry: Station,
    },
    /// The purse application is blocked (`6283`).
    Blocked,
}

/// Why the tap failed without a decision about the passenger: tap again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("card left the field while {0:?}")]
    CardLost(State),
    #[error("card: {0}")]
    Card(PurseError),
    #[error("the card refused MAC1 (9302)")]
    Mac1Refused,
    /// The card answered DEBIT, so it may well have debited itself: the gate stays closed and
    /// hands the would-be receipt (with the card's TAC) to the back office to reconcile.
    #[error("MAC2 from the card does not verify")]
    Mac2Invalid(Box<Receipt>),
    #[error("the proof of the torn debit does not verify")]
    ProofInvalid,
    #[error("torn debit at ATC {torn_atc} cannot be settled (card ATC {card_atc}, proof {proof})")]
    TornUnresolved { torn_atc: u16, card_atc: u16, proof: bool },
    #[error("algorithm {0:02X} not supported")]
    UnsupportedAlgorithm(u8),
    #[error("PSAM: {0}")]
    Psam(String),
}

/// How a tap ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Debited (or entry written) and MAC2 verified: open the gate.
    Open(Receipt),
    /// The torn debit of an earlier tap is proven done: open, nothing charged now.
    Recovered(Receipt),
    /// Closed: the passenger must do something.
    Reject(Reject),
    /// The card left after DEBIT was sent: keep this for the card's next tap; closed.
    Torn(TornDebit),
    /// Closed: tap again.
    Failed(Failure),
}

/// The next thing the gate loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this C-APDU, answer with [`Event::Card`] or [`Event::CardLost`].
    Transmit(CApdu),
    /// Ask the PSAM for MAC1, answer with [`Event::Mac1`] or [`Event::PsamFailed`].
    ComputeMac1(Mac1Request),
    /// Ask the PSAM to check MAC2, answer with [`Event::Mac2Verified`] or [`Event::PsamFailed`].
    VerifyMac2(Mac2Check),
    /// Price a journey, answer with [`Event::Fare`].
    QuoteFare(FareQuery),
    /// The end.
    Done(GateOutcome),
}

/// A journey to price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FareQuery {
    pub entry: Station,
    pub exit: Station,
    pub entry_time: PurseDateTime,
    pub minutes: i64,
    /// The journey began as a transfer.
    pub transfer: bool,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Card(RApdu),
    /// The card left the field, or the reader lost it (no answer).
    CardLost,
    Mac1(Mac1Answer),
    Mac2Verified(bool),
    PsamFailed(String),
    /// The fare for [`Action::QuoteFare`], fen.
    Fare(u32),
}

/// The kind of an event, for errors and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Card,
    CardLost,
    Mac1,
    Mac2Verified,
    PsamFailed,
    Fare,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Card(_) => EventKind::Card,
            Event::CardLost => EventKind::CardLost,
            Event::Mac1(_) => EventKind::Mac1,
            Event::Mac2Verified(_) => EventKind::Mac2Verified,
            Event::PsamFailed(_) => EventKind::PsamFailed,
            Event::Fare(_) => EventKind::Fare,
        }
    }
}

/// Where the transaction is (what it waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Selecting,
    ReadingPublic,
    ReadingTrip,
    Quoting,
    Initializing,
    Proving,
    AwaitingMac1,
    Updating,
    Debiting,
    CheckingMac2,
    CheckingProof,
    Done,
}

/// An event the transaction cannot take in its state: a bug of the gate loop, not of the card.
/// The transaction is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} not expected while {state:?}")]
pub struct Unexpected {
    pub state: State,
    pub event: EventKind,
}

/// A purchase the card has opened (INITIALIZE answered), waiting for MAC1.
#[derive(Debug, Clone)]
struct Pending {
    card: PublicInfo,
    plan: Plan,
    init: InitResponse,
}

/// A purchase with its MAC1: UPDATE CAPP DATA CACHE, then DEBIT.
#[derive(Debug, Clone)]
struct Debit {
    card: PublicInfo,
    plan: Plan,
    init: InitResponse,
    session: Session,
    mac1: [u8; 4],
}

#[derive(Debug, Clone)]
enum Phase {
    Selecting,
    ReadingPublic,
    ReadingTrip { card: PublicInfo },
    Quoting { card: PublicInfo, trip: TripRecord },
    Initializing { card: PublicInfo, plan: Plan, torn: Option<TornDebit> },
    Proving { card: PublicInfo, torn: TornDebit, init: InitResponse },
    AwaitingMac1(Pending),
    Updating(Debit),
    Debiting(Debit),
    CheckingMac2 { debit: Debit, proof: DebitProof },
    CheckingProof { card: PublicInfo, torn: TornDebit, init: InitResponse, proof: DebitProof },
    Done,
}

/// One tap's purse transaction.
#[derive(Debug, Clone)]
pub struct PurseTxn {
    setup: GateSetup,
    now: PurseDateTime,
    torn: Vec<TornDebit>,
    phase: Phase,
}

fn done(o: GateOutcome) -> (Phase, Action) {
    (Phase::Done, Action::Done(o))
}

fn failed(f: Failure) -> (Phase, Action) {
    done(GateOutcome::Failed(f))
}

impl PurseTxn {
    /// Starts a tap at `now`; `torn` are the torn debits the gate remembers (any card).
    pub fn start(setup: GateSetup, now: PurseDateTime, torn: Vec<TornDebit>) -> (PurseTxn, Action) {
        (PurseTxn { setup, now, torn, phase: Phase::Selecting }, Action::Transmit(select()))
    }

    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Selecting => State::Selecting,
            Phase::ReadingPublic => State::ReadingPublic,
            Phase::ReadingTrip { .. } => State::ReadingTrip,
            Phase::Quoting { .. } => State::Quoting,
            Phase::Initializing { .. } => State::Initializing,
            Phase::Proving { .. } => State::Proving,
            Phase::AwaitingMac1(_) => State::AwaitingMac1,
            Phase::Updating(_) => State::Updating,
            Phase::Debiting(_) => State::Debiting,
            Phase::CheckingMac2 { .. } => State::CheckingMac2,
            Phase::CheckingProof { .. } => State::CheckingProof,
            Phase::Done => State::Done,
        }
    }

    /// Feeds one event; returns the next action. After `Action::Done` every event is `Unexpected`.
    pub fn step(&mut self, ev: Event) -> Result<Action, Unexpected> {
        let state = self.state();
        let unexpected = Unexpected { state, event: ev.kind() };
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let next = match (phase, ev) {
            (Phase::Debiting(d), Event::CardLost) => done(GateOutcome::Torn(TornDebit { session: d.session, plan: d.plan })),
            (
                Phase::Selecting
                | Phase::ReadingPublic
                | Phase::ReadingTrip { .. }
                | Phase::Quoting { .. }
                | Phase::Initializing { .. }
                | Phase::Proving { .. }
                | Phase::AwaitingMac1(_)
                | Phase::Updating(_),
                Event::CardLost,
            ) => failed(Failure::CardLost(state)),
            (Phase::Selecting, Event::Card(r)) => self.on_select(&r),
            (Phase::ReadingPublic, Event::Card(r)) => self.on_public_info(&r),
            (Phase::ReadingTrip { card }, Event::Card(r)) => self.on_trip(card, &r),
            (Phase::Quoting { card, trip }, Event::Fare(amount)) => self.exit_plan(card, trip, amount),
            (Phase::Initializing { card, plan, torn }, Event::Card(r)) => self.on_initialize(card, plan, torn, &r),
            (Phase::Proving { card, torn, init }, Event::Card(r)) => match parse_transaction_prove(&r) {
                Ok(Some(proof)) => {
                    let check = Mac2Check { session: torn.session, mac2: proof.mac2 };
                    (Phase::CheckingProof { card, torn, init, proof }, Action::VerifyMac2(check))
                }
                Ok(None) => failed(Failure::TornUnresolved { torn_atc: torn.session.request.offline_atc, card_atc: init.offline_atc, proof: false }),
                Err(e) => failed(Failure::Card(e)),
            },
            (Phase::AwaitingMac1(p), Event::Mac1(a)) => {
                let session = Session { request: self.mac1_request(&p.card, &p.plan, &p.init), ttsn: a.ttsn };
                let c = update_capp_data_cache(&p.plan.record);
                (Phase::Updating(Debit { card: p.card, plan: p.plan, init: p.init, session, mac1: a.mac1 }), Action::Transmit(c))
            }
            (Phase::Updating(d), Event::Card(r)) => match parse_update(&r) {
                Ok(()) => {
                    let c = debit(d.session.ttsn, self.now, d.mac1);
                    (Phase::Debiting(d), Action::Transmit(c))
                }
                Err(e) => failed(Failure::Card(e)),
            },
            (Phase::Debiting(d), Event::Card(r)) => match parse_debit(&r) {
                Ok(proof) => {
                    let check = Mac2Check { session: d.session, mac2: proof.mac2 };
                    (Phase::CheckingMac2 { debit: d, proof }, Action::VerifyMac2(check))
                }
                Err(PurseError::Status { sw: sw::MAC_ERROR, .. }) => failed(Failure::Mac1Refused),
                Err(e) => failed(Failure::Card(e)),
            },
            (Phase::CheckingMac2 { debit: d, proof }, Event::Mac2Verified(ok)) => {
                let receipt = Receipt {
                    balance_after: d.init.balance.saturating_sub(d.plan.amount),
                    offline_atc: d.init.offline_atc,
                    ttsn: d.session.ttsn,
                    tac: proof.tac,
                    when: self.now,
                    passage: d.plan.passage,
                    amount: d.plan.amount,
                    missed_exit: d.plan.missed_exit,
                    record: d.plan.record,
                    card: d.card,
                };
                if ok {
                    done(GateOutcome::Open(receipt))
                } else {
                    failed(Failure::Mac2Invalid(Box::new(receipt)))
                }
            }
            (Phase::CheckingProof { card, torn, init, proof }, Event::Mac2Verified(ok)) => {
                if ok {
                    let s = torn.session;
                    done(GateOutcome::Recovered(Receipt {
                        card,
                        passage: torn.plan.passage,
                        amount: torn.plan.amount,
                        balance_after: init.balance,
                        offline_atc: s.request.offline_atc,
                        ttsn: s.ttsn,
                        tac: proof.tac,
                        when: s.request.when,
                        record: torn.plan.record,
                        missed_exit: torn.plan.missed_exit,
                    }))
                } else {
                    failed(Failure::ProofInvalid)
                }
            }
            (Phase::AwaitingMac1(_) | Phase::CheckingMac2 { .. } | Phase::CheckingProof { .. }, Event::PsamFailed(why)) => failed(Failure::Psam(why)),
            (phase, _) => return self.restore(phase, unexpected),
        };
        self.phase = next.0;
        Ok(next.1)
    }

    fn restore(&mut self, phase: Phase, e: Unexpected) -> Result<Action, Unexpected> {
        self.phase = phase;
        Err(e)
    }

    fn on_select(&self, r: &RApdu) -> (Phase, Action) {
        match parse_select(r) {
            Ok(()) => (Phase::ReadingPublic, Action::Transmit(read_public_info())),
            Err(PurseError::Status { sw: sw::APPLICATION_BLOCKED, .. }) => done(GateOutcome::Reject(Reject::Blocked)),
            Err(e) => failed(Failure::Card(e)),
        }
    }

    /// Issuer white-list (transit.md step 1), then the validity dates of EF 15.
    fn on_public_info(&mut self, r: &RApdu) -> (Phase, Action) {
        let card = match parse_public_info(r) {
            Ok(c) => c,
            Err(e) => return failed(Failure::Card(e)),
        };
        if !self.setup.issuers.contains(&card.issuer_id) {
            return done(GateOutcome::Reject(Reject::NotWhitelisted { issuer_id: card.issuer_id }));
        }
        let today = self.now.purse_date();
        if today < card.start {
            return done(GateOutcome::Reject(Reject::NotYetValid { start: card.start }));
        }
        if today > card.expiry {
            return done(GateOutcome::Reject(Reject::Expired { expiry: card.expiry }));
        }
        let serial = card.serial();
        if let Some(pos) = self.torn.iter().position(|t| t.session.request.serial == serial) {
            let torn = self.torn.swap_remove(pos);
            let c = initialize(PurchaseType::Capp, self.setup.key_index, torn.plan.amount, self.setup.terminal_id);
            let plan = torn.plan.clone();
            return (Phase::Initializing { card, plan, torn: Some(torn) }, Action::Transmit(c));
        }
        (Phase::ReadingTrip { card }, Action::Transmit(read_trip_record()))
    }

    /// Entry or exit from the trip record and the gate's direction.
    fn on_trip(&self, card: PublicInfo, r: &RApdu) -> (Phase, Action) {
        let trip = match parse_trip_record(r) {
            Ok(t) => t,
            Err(e) => return failed(Failure::Card(e)),
        };
        let now = self.now;
        match (self.setup.direction, trip.state) {
            (Direction::Entry, TripState::In) if now.minutes_since(trip.entry_time) <= self.setup.max_trip_minutes => {
                done(GateOutcome::Reject(Reject::AlreadyEntered { entry: trip.entry }))
            }
            (Direction::Entry, state) => {
                let after_exit = (!trip.exit_time.is_none()).then(|| now.minutes_since(trip.exit_time));
                let transfer = state == TripState::Out && after_exit.is_some_and(|m| (0..=self.setup.transfer_window_minutes).contains(&m));
                let record = TripRecord {
                    state: TripState::In,
                    entry: self.setup.station,
                    entry_device: self.setup.terminal_id,
                    entry_time: now,
                    last_fare: self.setup.entry_fare,
                    transfer,
                    ..trip
                };
                let plan = Plan { passage: Passage::Entry, amount: self.setup.entry_fare, record, missed_exit: state == TripState::In };
                self.initialize(card, plan)
            }
            (Direction::Exit, TripState::Out) => done(GateOutcome::Reject(Reject::NoEntryRecorded)),
            (Direction::Exit, TripState::In) => {
                let q = FareQuery {
                    entry: trip.entry,
                    exit: self.setup.station,
                    entry_time: trip.entry_time,
                    minutes: now.minutes_since(trip.entry_time),
                    transfer: trip.transfer,
                };
                (Phase::Quoting { card, trip }, Action::QuoteFare(q))
            }
        }
    }

    fn exit_plan(&self, card: PublicInfo, trip: TripRecord, amount: u32) -> (Phase, Action) {
        let record = TripRecord { state: TripState::Out, exit: self.setup.station, exit_time: self.now, last_fare: amount, ..trip };
        self.initialize(card, Plan { passage: Passage::Exit, amount, record, missed_exit: false })
    }

    fn initialize(&self, card: PublicInfo, plan: Plan) -> (Phase, Action) {
        let c = initialize(PurchaseType::Capp, self.setup.key_index, plan.amount, self.setup.terminal_id);
        (Phase::Initializing { card, plan, torn: None }, Action::Transmit(c))
    }

    fn mac1_request(&self, card: &PublicInfo, plan: &Plan, init: &InitResponse) -> Mac1Request {
        Mac1Request {
            serial: card.serial(),
            issuer_id: card.issuer_id,
            random: init.random,
            offline_atc: init.offline_atc,
            amount: plan.amount,
            kind: PurchaseType::Capp,
            when: self.now,
            key_version: init.key_version,
            algorithm: init.algorithm,
        }
    }

    fn on_initialize(&self, card: PublicInfo, plan: Plan, torn: Option<TornDebit>, r: &RApdu) -> (Phase, Action) {
        let init = match parse_initialize(r) {
            Ok(i) => i,
            Err(PurseError::Status { sw: sw::INSUFFICIENT_BALANCE, .. }) => {
                return done(GateOutcome::Reject(Reject::InsufficientBalance { balance: None, amount: plan.amount }))
            }
            Err(e) => return failed(Failure::Card(e)),
        };
        if init.algorithm != 0x00 {
            return failed(Failure::UnsupportedAlgorithm(init.algorithm));
        }
        if let Some(torn) = torn {
            let torn_atc = torn.session.request.offline_atc;
            if init.offline_atc > torn_atc {
                let c = get_transaction_prove(PurchaseType::Capp, torn_atc);
                return (Phase::Proving { card, torn, init }, Action::Transmit(c));
            }
            if init.offline_atc < torn_atc {
                return failed(Failure::TornUnresolved { torn_atc, card_atc: init.offline_atc, proof: false });
            }
            // Same ATC: the torn debit did not happen; do the same purchase again.
        }
        // The gate debits only what the balance covers (the card's overdraft limit is not used).
        if init.balance < plan.amount {
            return done(GateOutcome::Reject(Reject::InsufficientBalance { balance: Some(init.balance), amount: plan.amount }));
        }
        let req = self.mac1_request(&card, &plan, &init);
        (Phase::AwaitingMac1(Pending { card, plan, init }), Action::ComputeMac1(req))
    }
}

#[cfg(test)]
mod tests;
