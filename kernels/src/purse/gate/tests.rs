//! Every (state, event) pair of [`PurseTxn`], then the decisions one by one. The card is played by
//! hand-made responses here; the full card simulator and the PSAM meet in the workspace tests.

use super::*;
use crate::purse::InitResponse;

const TID: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const ISSUER: [u8; 8] = [0x03, 0x11, 0x31, 0x00, 0x00, 0x00, 0x00, 0x01];
const HERE: Station = Station { line: 2, station: 9 };
const THERE: Station = Station { line: 1, station: 3 };

fn now() -> PurseDateTime {
    PurseDateTime::new(2026, 12, 5, 8, 30, 0).unwrap()
}

fn at(h: u8, m: u8) -> PurseDateTime {
    PurseDateTime::new(2026, 12, 5, h, m, 0).unwrap()
}

fn setup(direction: Direction) -> GateSetup {
    GateSetup {
        terminal_id: TID,
        station: HERE,
        direction,
        key_index: 1,
        issuers: vec![ISSUER],
        transfer_window_minutes: 30,
        max_trip_minutes: 240,
        entry_fare: 0,
    }
}

fn card() -> PublicInfo {
    PublicInfo {
        issuer_id: ISSUER,
        app_type: 2,
        app_version: 1,
        app_serial: [0x31, 0x00, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78],
        start: PurseDate([0x20, 0x24, 0x01, 0x01]),
        expiry: PurseDate([0x20, 0x34, 0x12, 0x31]),
        issuer_data: [0, 0],
    }
}

fn ok(data: Vec<u8>) -> Event {
    Event::Card(RApdu::new(data, 0x9000))
}

fn sw_ev(sw: u16) -> Event {
    Event::Card(RApdu::sw(sw))
}

fn fci() -> Event {
    ok(crate::tlv::Builder::new().put(crate::tag::DF_NAME, &super::super::AID).wrap(crate::tag::FCI_TEMPLATE))
}

fn ef15(c: &PublicInfo) -> Event {
    ok(c.to_bytes())
}

fn entered_at(station: Station, when: PurseDateTime) -> TripRecord {
    TripRecord { state: TripState::In, entry: station, entry_device: [9; 6], entry_time: when, ..TripRecord::blank() }
}

fn exited_at(when: PurseDateTime) -> TripRecord {
    TripRecord { state: TripState::Out, entry: THERE, entry_time: at(7, 0), exit: HERE, exit_time: when, last_fare: 300, ..TripRecord::blank() }
}

fn init(balance: u32, atc: u16) -> InitResponse {
    InitResponse { balance, offline_atc: atc, overdraft_limit: 0, key_version: 1, algorithm: 0, random: [0xA1, 0xB2, 0xC3, 0xD4] }
}

fn init_ev(balance: u32, atc: u16) -> Event {
    ok(init(balance, atc).to_bytes())
}

const MAC1: Mac1Answer = Mac1Answer { ttsn: [0, 0, 0, 42], mac1: [1, 2, 3, 4] };
const PROOF: DebitProof = DebitProof { tac: [0xAA, 0xBB, 0xCC, 0xDD], mac2: [5, 6, 7, 8] };

fn run(t: &mut PurseTxn, evs: Vec<Event>) -> Action {
    let mut last = None;
    for e in evs {
        last = Some(t.step(e).unwrap());
    }
    last.unwrap()
}

fn outcome(a: Action) -> GateOutcome {
    match a {
        Action::Done(o) => o,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// A torn debit of `card()` at ATC 7 for an exit of 300 fen.
fn torn() -> TornDebit {
    let request = Mac1Request {
        serial: card().serial(),
        issuer_id: ISSUER,
        random: [9, 9, 9, 9],
        offline_atc: 7,
        amount: 300,
        kind: PurchaseType::Capp,
        when: at(8, 0),
        key_version: 1,
        algorithm: 0,
    };
    let record = TripRecord { state: TripState::Out, exit: HERE, exit_time: at(8, 0), last_fare: 300, ..entered_at(THERE, at(7, 40)) };
    TornDebit { session: Session { request, ttsn: [0, 0, 0, 41] }, plan: Plan { passage: Passage::Exit, amount: 300, record, missed_exit: false } }
}

/// A transaction brought to `state` along the usual path (exit gate; the torn path for Proving
/// and CheckingProof).
fn in_state(state: State) -> PurseTxn {
    let torn_path = matches!(state, State::Proving | State::CheckingProof);
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), if torn_path { vec![torn()] } else { vec![] });
    let mut path = vec![fci(), ef15(&card())];
    if torn_path {
        path.push(init_ev(700, 8));
        path.push(ok(PROOF.to_bytes()));
    } else {
        path.extend([ok(entered_at(THERE, at(8, 0)).to_bytes()), Event::Fare(300), init_ev(1000, 7), Event::Mac1(MAC1), ok(vec![]), ok(PROOF.to_bytes())]);
        path.push(Event::Mac2Verified(true));
    }
    let steps = match state {
        State::Selecting => 0,
        State::ReadingPublic => 1,
        State::ReadingTrip => 2,
        State::Quoting => 3,
        State::Initializing if torn_path => 2,
        State::Initializing => 4,
        State::AwaitingMac1 => 5,
        State::Updating => 6,
        State::Debiting => 7,
        State::CheckingMac2 => 8,
        State::Proving => 3,
        State::CheckingProof => 4,
        State::Done => 9,
    };
    for e in path.into_iter().take(steps) {
        t.step(e).unwrap();
    }
    assert_eq!(t.state(), state);
    t
}

/// The "usual" card answer in each state (what moves it along the path of `in_state`).
fn card_answer(state: State) -> Event {
    match state {
        State::Selecting => fci(),
        State::ReadingPublic => ef15(&card()),
        State::ReadingTrip => ok(entered_at(THERE, at(8, 0)).to_bytes()),
        State::Initializing => init_ev(1000, 7),
        State::Proving | State::Debiting => ok(PROOF.to_bytes()),
        _ => ok(vec![]),
    }
}

#[derive(Debug, PartialEq)]
enum Expect {
    To(State),
    Open,
    Recovered,
    Torn,
    CardLost,
    Psam,
    Unexpected,
}

#[test]
fn every_state_event_pair() {
    use EventKind as K;
    use Expect::*;
    use State as S;
    let all = [
        S::Selecting,
        S::ReadingPublic,
        S::ReadingTrip,
        S::Quoting,
        S::Initializing,
        S::Proving,
        S::AwaitingMac1,
        S::Updating,
        S::Debiting,
        S::CheckingMac2,
        S::CheckingProof,
        S::Done,
    ];
    let kinds = [K::Card, K::CardLost, K::Mac1, K::Mac2Verified, K::PsamFailed, K::Fare];
    let expect = |s: S, k: K| -> Expect {
        match (s, k) {
            (S::Done, _) => Unexpected,
            (S::Selecting, K::Card) => To(S::ReadingPublic),
            (S::ReadingPublic, K::Card) => To(S::ReadingTrip),
            (S::ReadingTrip, K::Card) => To(S::Quoting),
            (S::Quoting, K::Fare) => To(S::Initializing),
            (S::Initializing, K::Card) => To(S::AwaitingMac1),
            (S::Proving, K::Card) => To(S::CheckingProof),
            (S::AwaitingMac1, K::Mac1) => To(S::Updating),
            (S::Updating, K::Card) => To(S::Debiting),
            (S::Debiting, K::Card) => To(S::CheckingMac2),
            (S::Debiting, K::CardLost) => Torn,
            (S::CheckingMac2 | S::CheckingProof, K::CardLost) => Unexpected,
            (_, K::CardLost) => CardLost,
            (S::CheckingMac2, K::Mac2Verified) => Open,
            (S::CheckingProof, K::Mac2Verified) => Recovered,
            (S::AwaitingMac1 | S::CheckingMac2 | S::CheckingProof, K::PsamFailed) => Psam,
            _ => Unexpected,
        }
    };
    let mut pairs = 0;
    for s in all {
        for k in kinds {
            let mut t = in_state(s);
            let ev = match k {
                K::Card => card_answer(s),
                K::CardLost => Event::CardLost,
                K::Mac1 => Event::Mac1(MAC1),
                K::Mac2Verified => Event::Mac2Verified(true),
                K::PsamFailed => Event::PsamFailed("no PSAM".into()),
                K::Fare => Event::Fare(300),
            };
            assert_eq!(ev.kind(), k);
            let got = match t.step(ev) {
                Err(e) => {
                    assert_eq!(e, super::Unexpected { state: s, event: k });
                    assert_eq!(t.state(), s, "an unexpected event leaves the state as it was");
                    Unexpected
                }
                Ok(Action::Done(o)) => {
                    assert_eq!(t.state(), S::Done);
                    match o {
                        GateOutcome::Open(_) => Open,
                        GateOutcome::Recovered(_) => Recovered,
                        GateOutcome::Torn(_) => Torn,
                        GateOutcome::Failed(Failure::CardLost(at)) if at == s => CardLost,
                        GateOutcome::Failed(Failure::Psam(_)) => Psam,
                        other => panic!("{s:?} + {k:?}: {other:?}"),
                    }
                }
                Ok(_) => To(t.state()),
            };
            assert_eq!(got, expect(s, k), "{s:?} + {k:?}");
            pairs += 1;
        }
    }
    assert_eq!(pairs, 72);
}

#[test]
fn exit_debits_the_fare_and_closes_the_journey() {
    let (mut t, first) = PurseTxn::start(setup(Direction::Exit), now(), vec![]);
    assert_eq!(first, Action::Transmit(crate::purse::select()));
    assert_eq!(run(&mut t, vec![fci()]), Action::Transmit(crate::purse::read_public_info()));
    assert_eq!(run(&mut t, vec![ef15(&card())]), Action::Transmit(crate::purse::read_trip_record()));
    let q = match t.step(ok(entered_at(THERE, at(8, 0)).to_bytes())).unwrap() {
        Action::QuoteFare(q) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(q, FareQuery { entry: THERE, exit: HERE, entry_time: at(8, 0), minutes: 30, transfer: false });
    assert_eq!(t.step(Event::Fare(300)).unwrap(), Action::Transmit(crate::purse::initialize(PurchaseType::Capp, 1, 300, TID)));
    let req = match t.step(init_ev(1000, 7)).unwrap() {
        Action::ComputeMac1(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (req.amount, req.offline_atc, req.random, req.serial, req.when, req.kind),
        (300, 7, [0xA1, 0xB2, 0xC3, 0xD4], card().serial(), now(), PurchaseType::Capp)
    );
    let upd = match t.step(Event::Mac1(MAC1)).unwrap() {
        Action::Transmit(c) => c,
        other => panic!("{other:?}"),
    };
    let written = TripRecord::parse(&upd.data).unwrap();
    assert_eq!((written.state, written.entry, written.exit, written.exit_time, written.last_fare), (TripState::Out, THERE, HERE, now(), 300));
    assert_eq!(t.step(ok(vec![])).unwrap(), Action::Transmit(crate::purse::debit([0, 0, 0, 42], now(), [1, 2, 3, 4])));
    let check = match t.step(ok(PROOF.to_bytes())).unwrap() {
        Action::VerifyMac2(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(check, Mac2Check { session: Session { request: req, ttsn: [0, 0, 0, 42] }, mac2: [5, 6, 7, 8] });
    match outcome(t.step(Event::Mac2Verified(true)).unwrap()) {
        GateOutcome::Open(r) => {
            assert_eq!((r.passage, r.amount, r.balance_after, r.offline_atc, r.tac, r.ttsn), (Passage::Exit, 300, 700, 7, PROOF.tac, [0, 0, 0, 42]));
            assert_eq!(r.record, written);
        }
        other => panic!("{other:?}"),
    }
}

fn entry_record(trip: TripRecord, s: GateSetup) -> Result<Plan, GateOutcome> {
    let (mut t, _) = PurseTxn::start(s, now(), vec![]);
    match run(&mut t, vec![fci(), ef15(&card()), ok(trip.to_bytes())]) {
        Action::Transmit(c) if c.ins == crate::purse::ins::INITIALIZE => {
            assert_eq!(u32::from_be_bytes(c.data[1..5].try_into().unwrap()), t.setup.entry_fare);
            match t.step(init_ev(1000, 1)).unwrap() {
                Action::ComputeMac1(_) => {}
                other => return Err(outcome(other)),
            }
            match t.step(Event::Mac1(MAC1)).unwrap() {
                Action::Transmit(u) => {
                    let record = TripRecord::parse(&u.data).unwrap();
                    let Phase::Updating(d) = &t.phase else { panic!() };
                    assert_eq!(d.plan.record, record);
                    Ok(d.plan.clone())
                }
                other => panic!("{other:?}"),
            }
        }
        other => Err(outcome(other)),
    }
}

#[test]
fn entry_writes_an_open_journey() {
    let p = entry_record(TripRecord::blank(), setup(Direction::Entry)).unwrap();
    assert_eq!((p.passage, p.amount, p.missed_exit), (Passage::Entry, 0, false));
    assert_eq!((p.record.state, p.record.entry, p.record.entry_device, p.record.entry_time, p.record.transfer), (TripState::In, HERE, TID, now(), false));
    // A bus-like gate charges its flat fare at entry.
    let p = entry_record(TripRecord::blank(), GateSetup { entry_fare: 200, ..setup(Direction::Entry) }).unwrap();
    assert_eq!((p.amount, p.record.last_fare), (200, 200));
}

#[test]
fn transfer_window() {
    // Exit at 08:10, entry at 08:30: 20 minutes, inside a 30-minute window.
    assert!(entry_record(exited_at(at(8, 10)), setup(Direction::Entry)).unwrap().record.transfer);
    // Exactly at the edge.
    assert!(entry_record(exited_at(at(8, 0)), setup(Direction::Entry)).unwrap().record.transfer);
    // 31 minutes: not a transfer.
    assert!(!entry_record(exited_at(at(7, 59)), setup(Direction::Entry)).unwrap().record.transfer);
    // An exit "in the future" (clock skew) is not a transfer either.
    assert!(!entry_record(exited_at(at(9, 0)), setup(Direction::Entry)).unwrap().record.transfer);
    // The exit fare query carries the flag.
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), vec![]);
    let trip = TripRecord { transfer: true, ..entered_at(THERE, at(8, 0)) };
    match run(&mut t, vec![fci(), ef15(&card()), ok(trip.to_bytes())]) {
        Action::QuoteFare(q) => assert!(q.transfer),
        other => panic!("{other:?}"),
    }
}

#[test]
fn entry_over_an_open_journey() {
    // Entered 2 hours ago somewhere, never exited: within max_trip_minutes → mismatch.
    assert_eq!(entry_record(entered_at(THERE, at(6, 30)), setup(Direction::Entry)), Err(GateOutcome::Reject(Reject::AlreadyEntered { entry: THERE })));
    // Older than max_trip_minutes (240): allowed, flagged; no transfer.
    let p = entry_record(entered_at(THERE, at(4, 29)), setup(Direction::Entry)).unwrap();
    assert!(p.missed_exit);
    assert!(!p.record.transfer);
}

#[test]
fn exit_without_entry_is_rejected() {
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), vec![]);
    assert_eq!(outcome(run(&mut t, vec![fci(), ef15(&card()), sw_ev(0x6A83)])), GateOutcome::Reject(Reject::NoEntryRecorded));
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), vec![]);
    assert_eq!(outcome(run(&mut t, vec![fci(), ef15(&card()), ok(exited_at(at(8, 0)).to_bytes())])), GateOutcome::Reject(Reject::NoEntryRecorded));
}

fn after_ef15(c: PublicInfo, s: GateSetup) -> Action {
    let (mut t, _) = PurseTxn::start(s, now(), vec![]);
    run(&mut t, vec![fci(), ef15(&c)])
}

#[test]
fn issuer_white_list_and_validity() {
    let other = PublicInfo { issuer_id: [0x04; 8], ..card() };
    assert_eq!(outcome(after_ef15(other, setup(Direction::Entry))), GateOutcome::Reject(Reject::NotWhitelisted { issuer_id: [0x04; 8] }));
    let expired = PublicInfo { expiry: PurseDate([0x20, 0x26, 0x12, 0x04]), ..card() };
    assert_eq!(outcome(after_ef15(expired, setup(Direction::Entry))), GateOutcome::Reject(Reject::Expired { expiry: PurseDate([0x20, 0x26, 0x12, 0x04]) }));
    // The expiry day itself is still valid, and so is the start day.
    let last_day = PublicInfo { expiry: PurseDate([0x20, 0x26, 0x12, 0x05]), start: PurseDate([0x20, 0x26, 0x12, 0x05]), ..card() };
    assert!(matches!(after_ef15(last_day, setup(Direction::Entry)), Action::Transmit(_)));
    let future = PublicInfo { start: PurseDate([0x20, 0x26, 0x12, 0x06]), ..card() };
    assert_eq!(outcome(after_ef15(future, setup(Direction::Entry))), GateOutcome::Reject(Reject::NotYetValid { start: PurseDate([0x20, 0x26, 0x12, 0x06]) }));
    // An empty white-list takes nobody.
    assert!(matches!(
        outcome(after_ef15(card(), GateSetup { issuers: vec![], ..setup(Direction::Entry) })),
        GateOutcome::Reject(Reject::NotWhitelisted { .. })
    ));
}

#[test]
fn blocked_or_missing_application() {
    let (mut t, _) = PurseTxn::start(setup(Direction::Entry), now(), vec![]);
    assert_eq!(outcome(t.step(sw_ev(0x6283)).unwrap()), GateOutcome::Reject(Reject::Blocked));
    let (mut t, _) = PurseTxn::start(setup(Direction::Entry), now(), vec![]);
    assert!(matches!(outcome(t.step(sw_ev(0x6A82)).unwrap()), GateOutcome::Failed(Failure::Card(PurseError::Status { sw: 0x6A82, .. }))));
}

fn at_initialize(fare: u32) -> PurseTxn {
    let t = in_state(State::Quoting);
    let mut t = t;
    t.step(Event::Fare(fare)).unwrap();
    t
}

#[test]
fn insufficient_balance() {
    let mut t = at_initialize(300);
    assert_eq!(outcome(t.step(init_ev(299, 7)).unwrap()), GateOutcome::Reject(Reject::InsufficientBalance { balance: Some(299), amount: 300 }));
    let mut t = at_initialize(300);
    assert!(matches!(t.step(init_ev(300, 7)).unwrap(), Action::ComputeMac1(_)), "exactly enough is enough");
    let mut t = at_initialize(300);
    assert_eq!(outcome(t.step(sw_ev(0x9401)).unwrap()), GateOutcome::Reject(Reject::InsufficientBalance { balance: None, amount: 300 }));
}

#[test]
fn card_refusals_and_bad_macs() {
    let mut t = in_state(State::Debiting);
    assert_eq!(outcome(t.step(sw_ev(0x9302)).unwrap()), GateOutcome::Failed(Failure::Mac1Refused));
    let mut t = in_state(State::CheckingMac2);
    match outcome(t.step(Event::Mac2Verified(false)).unwrap()) {
        GateOutcome::Failed(Failure::Mac2Invalid(r)) => assert_eq!((r.tac, r.amount, r.offline_atc), (PROOF.tac, 300, 7)),
        other => panic!("{other:?}"),
    }
    let mut t = in_state(State::Updating);
    assert!(matches!(outcome(t.step(sw_ev(0x6581)).unwrap()), GateOutcome::Failed(Failure::Card(_))));
    let mut t = at_initialize(300);
    let mut odd = init(1000, 7);
    odd.algorithm = 0x04;
    assert_eq!(outcome(t.step(ok(odd.to_bytes())).unwrap()), GateOutcome::Failed(Failure::UnsupportedAlgorithm(4)));
}

#[test]
fn hostile_card_data_fails_cleanly() {
    for (state, junk) in [
        (State::Selecting, vec![0x6F, 0x80]),
        (State::ReadingPublic, vec![0; 29]),
        (State::ReadingTrip, vec![0x01, 0x05]),
        (State::Initializing, vec![0; 16]),
        (State::Debiting, vec![0; 7]),
        (State::Proving, vec![0; 9]),
    ] {
        let mut t = in_state(state);
        assert!(matches!(outcome(t.step(ok(junk)).unwrap()), GateOutcome::Failed(Failure::Card(_))), "{state:?}");
    }
}

#[test]
fn card_lost_at_debit_is_a_torn_debit() {
    let mut t = in_state(State::Debiting);
    match outcome(t.step(Event::CardLost).unwrap()) {
        GateOutcome::Torn(torn) => {
            assert_eq!((torn.session.request.offline_atc, torn.session.request.amount, torn.session.ttsn), (7, 300, [0, 0, 0, 42]));
            assert_eq!(torn.plan.passage, Passage::Exit);
        }
        other => panic!("{other:?}"),
    }
}

fn with_torn(torns: Vec<TornDebit>) -> PurseTxn {
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), torns);
    match run(&mut t, vec![fci(), ef15(&card())]) {
        Action::Transmit(c) => assert_eq!(c, crate::purse::initialize(PurchaseType::Capp, 1, 300, TID), "the torn purchase's amount"),
        other => panic!("{other:?}"),
    }
    t
}

#[test]
fn torn_debit_that_happened_is_recovered_not_charged_again() {
    let mut t = with_torn(vec![torn()]);
    assert_eq!(t.step(init_ev(700, 8)).unwrap(), Action::Transmit(crate::purse::get_transaction_prove(PurchaseType::Capp, 7)));
    assert_eq!(t.step(ok(PROOF.to_bytes())).unwrap(), Action::VerifyMac2(Mac2Check { session: torn().session, mac2: PROOF.mac2 }));
    match outcome(t.step(Event::Mac2Verified(true)).unwrap()) {
        GateOutcome::Recovered(r) => {
            assert_eq!((r.amount, r.balance_after, r.offline_atc, r.tac, r.when), (300, 700, 7, PROOF.tac, at(8, 0)));
            assert_eq!(r.record, torn().plan.record);
        }
        other => panic!("{other:?}"),
    }
    // A proof that does not verify opens nothing.
    let mut t = in_state(State::CheckingProof);
    assert_eq!(outcome(t.step(Event::Mac2Verified(false)).unwrap()), GateOutcome::Failed(Failure::ProofInvalid));
}

#[test]
fn torn_debit_that_did_not_happen_is_done_again() {
    let mut t = with_torn(vec![torn()]);
    let req = match t.step(init_ev(1000, 7)).unwrap() {
        Action::ComputeMac1(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((req.amount, req.offline_atc, req.when), (300, 7, now()));
    match t.step(Event::Mac1(MAC1)).unwrap() {
        Action::Transmit(c) => assert_eq!(TripRecord::parse(&c.data).unwrap(), torn().plan.record),
        other => panic!("{other:?}"),
    }
    // ... and its balance is checked like any purchase.
    let mut t = with_torn(vec![torn()]);
    assert!(matches!(outcome(t.step(init_ev(100, 7)).unwrap()), GateOutcome::Reject(Reject::InsufficientBalance { .. })));
}

#[test]
fn torn_debit_that_cannot_be_settled() {
    // The card has no proof for the old ATC.
    let mut t = with_torn(vec![torn()]);
    t.step(init_ev(700, 9)).unwrap();
    assert_eq!(outcome(t.step(sw_ev(0x9406)).unwrap()), GateOutcome::Failed(Failure::TornUnresolved { torn_atc: 7, card_atc: 9, proof: false }));
    // The card's ATC went backwards: not the card we think.
    let mut t = with_torn(vec![torn()]);
    assert_eq!(outcome(t.step(init_ev(700, 6)).unwrap()), GateOutcome::Failed(Failure::TornUnresolved { torn_atc: 7, card_atc: 6, proof: false }));
}

#[test]
fn torn_debits_of_other_cards_are_left_alone() {
    let mut other = torn();
    other.session.request.serial = CardSerial([7; 8]);
    let (mut t, _) = PurseTxn::start(setup(Direction::Exit), now(), vec![other]);
    assert_eq!(run(&mut t, vec![fci(), ef15(&card())]), Action::Transmit(crate::purse::read_trip_record()));
}

/// A plausible answer to each purse command (what `in_state` feeds), for the property test.
fn plausible(c: &CApdu) -> RApdu {
    use crate::purse::ins as i;
    let ok = |d: Vec<u8>| RApdu::new(d, 0x9000);
    match c.ins {
        crate::apdu::ins::SELECT => match fci() {
            Event::Card(r) => r,
            _ => unreachable!(),
        },
        i::READ_BINARY => ok(card().to_bytes()),
        i::READ_RECORD => ok(entered_at(THERE, at(8, 0)).to_bytes()),
        i::INITIALIZE => ok(init(1000, 7).to_bytes()),
        i::DEBIT | i::GET_TRANSACTION_PROVE => ok(PROOF.to_bytes()),
        _ => ok(vec![]),
    }
}

proptest::proptest! {
    /// Driven by a loop that answers what is asked, the transaction always ends — whatever the
    /// card says (plausible answers mixed with junk, lost cards), whatever the PSAM and the fare
    /// rule say — without a panic and without an `Unexpected`.
    #[test]
    fn any_card_any_psam_always_ends(
        answers in proptest::collection::vec(proptest::option::of((proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..40), proptest::arbitrary::any::<u16>())), 0..12),
        lose_at in proptest::option::of(0usize..12),
        fare in proptest::arbitrary::any::<u32>(),
        psam_ok in proptest::arbitrary::any::<bool>(),
        exit in proptest::arbitrary::any::<bool>(),
        with_torn in proptest::arbitrary::any::<bool>(),
    ) {
        let dir = if exit { Direction::Exit } else { Direction::Entry };
        let (mut t, mut a) = PurseTxn::start(setup(dir), now(), if with_torn { vec![torn()] } else { vec![] });
        let mut sent = 0usize;
        for _ in 0..32 {
            let ev = match &a {
                Action::Done(_) => break,
                Action::Transmit(c) => {
                    let i = sent;
                    sent += 1;
                    if lose_at == Some(i) {
                        Event::CardLost
                    } else {
                        match answers.get(i) {
                            Some(Some((d, sw))) => Event::Card(RApdu::new(d.clone(), *sw)),
                            _ => Event::Card(plausible(c)),
                        }
                    }
                }
                Action::ComputeMac1(_) => if psam_ok { Event::Mac1(MAC1) } else { Event::PsamFailed("x".into()) },
                Action::VerifyMac2(_) => Event::Mac2Verified(psam_ok),
                Action::QuoteFare(_) => Event::Fare(fare),
            };
            a = t.step(ev).unwrap();
        }
        proptest::prop_assert!(matches!(a, Action::Done(_)));
        proptest::prop_assert_eq!(t.state(), State::Done);
        if let Action::Done(GateOutcome::Open(_) | GateOutcome::Recovered(_)) = &a {
            // An open gate always rests on a MAC2 the PSAM verified.
            proptest::prop_assert!(psam_ok);
        }
    }
}
