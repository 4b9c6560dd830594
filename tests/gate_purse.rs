//! Closed-loop transit purse, end to end in-process: the T-Union card simulator
//! (`test_cards::purse`), the gate's purse transaction (`kernels::purse::gate`) and the software
//! PSAM (`shanfu::gate::psam`) loaded from the TEST ONLY key file through its configuration.
#![cfg(feature = "simulators")]

use kernels::apdu::{CApdu, RApdu};
use kernels::purse::crypto;
use kernels::purse::gate::{Direction, Failure, FareQuery, GateOutcome, GateSetup, Passage, Reject};
use kernels::purse::{ins, PurchaseType, PurseDateTime, Station, TripState};
use shanfu::gate::psam::{Psam, PsamConfig, PurchaseSam};
use shanfu::gate::tap::{run_purse_tap, TornDebits};
use std::path::Path;
use test_cards::purse::{PurseCard, PurseProfile, TransitKeys};

const ENTRY_STATION: Station = Station { line: 1, station: 3 };
const EXIT_STATION: Station = Station { line: 2, station: 9 };
const ISSUER: [u8; 8] = [0x03, 0x11, 0x31, 0x00, 0x00, 0x00, 0x00, 0x01];

fn psam() -> Psam {
    let cfg = PsamConfig { key_file: "test-cards/keys/transit.toml".into(), terminal_id: "112233445566".into(), ttsn: 100 };
    Psam::load(&cfg, Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap()
}

fn gate(direction: Direction, station: Station) -> GateSetup {
    GateSetup {
        terminal_id: [0; 6], // the PSAM's is used
        station,
        direction,
        key_index: 0, // the PSAM's is used
        issuers: vec![ISSUER],
        transfer_window_minutes: 30,
        max_trip_minutes: 240,
        entry_fare: 0,
    }
}

fn at(h: u8, m: u8) -> PurseDateTime {
    PurseDateTime::new(2026, 12, 5, h, m, 0).unwrap()
}

fn new_card(balance: u32) -> PurseCard {
    PurseCard::new(PurseProfile::test_card(12345678, balance), &TransitKeys::builtin().unwrap())
}

/// 2 yuan plus 1 per line changed, 1 yuan off after a transfer.
fn fare(q: &FareQuery) -> u32 {
    let base = 200 + if q.entry.line == q.exit.line { 0 } else { 100 };
    if q.transfer {
        base - 100
    } else {
        base
    }
}

/// A tap where the card answers everything.
fn tap(card: &mut PurseCard, psam: &mut Psam, torn: &mut TornDebits, setup: GateSetup, now: PurseDateTime) -> GateOutcome {
    tap_until(card, psam, torn, setup, now, |_| false)
}

/// A tap where the card leaves the field just before (`lost(c)` true) a command reaches it.
fn tap_until(card: &mut PurseCard, psam: &mut Psam, torn: &mut TornDebits, setup: GateSetup, now: PurseDateTime, lost: impl Fn(&CApdu) -> bool) -> GateOutcome {
    let mut gone = false;
    let o = run_purse_tap(
        setup,
        now,
        torn,
        |c| {
            gone |= lost(c);
            (!gone).then(|| card.process(c))
        },
        psam,
        fare,
    )
    .unwrap();
    card.power_off();
    torn.settle(&o);
    o
}

/// The card debits itself, then leaves before its answer reaches the gate.
fn tap_answer_lost(card: &mut PurseCard, psam: &mut Psam, torn: &mut TornDebits, setup: GateSetup, now: PurseDateTime) -> GateOutcome {
    let o = run_purse_tap(
        setup,
        now,
        torn,
        |c| {
            let r: RApdu = card.process(c);
            (c.ins != ins::DEBIT).then_some(r)
        },
        psam,
        fare,
    )
    .unwrap();
    card.power_off();
    torn.settle(&o);
    o
}

#[test]
fn tap_in_then_tap_out_charges_the_fare_once() {
    let (mut card, mut psam, mut torn) = (new_card(1000), psam(), TornDebits::default());
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0));
    let GateOutcome::Open(entry) = o else { panic!("{o:?}") };
    assert_eq!((entry.passage, entry.amount, entry.balance_after), (Passage::Entry, 0, 1000));
    let trip = card.trip().unwrap().clone();
    assert_eq!((trip.state, trip.entry, trip.entry_device, trip.entry_time), (TripState::In, ENTRY_STATION, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66], at(8, 0)));
    assert_eq!(card.offline_atc(), 2, "the zero-amount entry is a purchase too");

    // Tapping in again at once is refused (entry/exit mismatch), and nothing changes.
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 1));
    assert_eq!(o, GateOutcome::Reject(Reject::AlreadyEntered { entry: ENTRY_STATION }));

    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 40));
    let GateOutcome::Open(exit) = o else { panic!("{o:?}") };
    assert_eq!((exit.passage, exit.amount, exit.balance_after), (Passage::Exit, 300, 700));
    assert_eq!(card.balance(), 700);
    let trip = card.trip().unwrap();
    assert_eq!((trip.state, trip.exit, trip.exit_time, trip.last_fare), (TripState::Out, EXIT_STATION, at(8, 40), 300));
    // The TAC is the card's, as the back office checks it with the TAC master.
    let keys = TransitKeys::builtin().unwrap();
    let tac = crypto::tac(&keys.card_tac_key(card.public_info()), 300, PurchaseType::Capp, psam.terminal_id(), exit.ttsn, at(8, 40));
    assert_eq!(exit.tac, tac);
    // Terminal transaction numbers 100 (entry), 101 (exit): the PSAM kept count.
    assert_eq!((entry.ttsn, exit.ttsn, psam.ttsn()), ([0, 0, 0, 100], [0, 0, 0, 101], 102));

    // Out again without an entry: refused.
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 41));
    assert_eq!(o, GateOutcome::Reject(Reject::NoEntryRecorded));
    assert_eq!(card.balance(), 700);
}

#[test]
fn transfer_within_the_window_is_cheaper() {
    let (mut card, mut psam, mut torn) = (new_card(1000), psam(), TornDebits::default());
    for (gate_setup, when) in
        [(gate(Direction::Entry, ENTRY_STATION), at(8, 0)), (gate(Direction::Exit, EXIT_STATION), at(8, 30)), (gate(Direction::Entry, EXIT_STATION), at(8, 50))]
    {
        assert!(matches!(tap(&mut card, &mut psam, &mut torn, gate_setup, when), GateOutcome::Open(_)));
    }
    assert!(card.trip().unwrap().transfer);
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, ENTRY_STATION), at(9, 20));
    let GateOutcome::Open(r) = o else { panic!("{o:?}") };
    assert_eq!(r.amount, 200, "3 yuan across lines, 1 off for the transfer");
    assert_eq!(card.balance(), 1000 - 300 - 200);
}

#[test]
fn insufficient_balance_keeps_the_gate_closed_and_the_card_unchanged() {
    let (mut card, mut psam, mut torn) = (new_card(250), psam(), TornDebits::default());
    assert!(matches!(tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0)), GateOutcome::Open(_)));
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 30));
    // The card refuses INITIALIZE for more than its balance (9401).
    assert_eq!(o, GateOutcome::Reject(Reject::InsufficientBalance { balance: None, amount: 300 }));
    assert_eq!((card.balance(), card.trip().unwrap().state), (250, TripState::In));
    // After a top-up the same exit goes through.
    card.top_up(100);
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 32));
    assert!(matches!(o, GateOutcome::Open(ref r) if r.amount == 300 && r.balance_after == 50), "{o:?}");
}

#[test]
fn torn_debit_that_reached_the_card_is_recovered_without_a_second_charge() {
    let (mut card, mut psam, mut torn) = (new_card(1000), psam(), TornDebits::default());
    assert!(matches!(tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0)), GateOutcome::Open(_)));
    let o = tap_answer_lost(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 30));
    assert!(matches!(o, GateOutcome::Torn(_)), "{o:?}");
    assert_eq!((card.balance(), torn.0.len()), (700, 1), "the card did debit; the gate does not know yet");

    // The passenger taps again: the gate proves the old debit and opens without charging.
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 31));
    let GateOutcome::Recovered(r) = o else { panic!("{o:?}") };
    assert_eq!((r.amount, r.balance_after, r.when), (300, 700, at(8, 30)));
    assert_eq!(r.tac, card.last_debit().unwrap().proof.tac);
    assert_eq!(card.balance(), 700, "charged once");
    assert!(torn.0.is_empty(), "settled");
    assert_eq!(card.trip().unwrap().state, TripState::Out);
}

#[test]
fn torn_debit_that_never_reached_the_card_is_done_once() {
    let (mut card, mut psam, mut torn) = (new_card(1000), psam(), TornDebits::default());
    assert!(matches!(tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0)), GateOutcome::Open(_)));
    let o = tap_until(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 30), |c| c.ins == ins::DEBIT);
    assert!(matches!(o, GateOutcome::Torn(_)), "{o:?}");
    assert_eq!((card.balance(), card.trip().unwrap().state), (1000, TripState::In), "the cached record went with the field");

    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 31));
    let GateOutcome::Open(r) = o else { panic!("{o:?}") };
    assert_eq!((r.amount, r.balance_after), (300, 700));
    assert_eq!(card.balance(), 700);
    assert!(torn.0.is_empty());
    // And the next tap of the card is an ordinary one.
    assert_eq!(tap(&mut card, &mut psam, &mut torn, gate(Direction::Exit, EXIT_STATION), at(8, 32)), GateOutcome::Reject(Reject::NoEntryRecorded));
}

#[test]
fn card_lost_before_the_debit_is_just_a_failed_tap() {
    let (mut card, mut psam, mut torn) = (new_card(1000), psam(), TornDebits::default());
    let o = tap_until(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0), |c| c.ins == ins::UPDATE_CAPP_DATA_CACHE);
    assert!(matches!(o, GateOutcome::Failed(Failure::CardLost(_))), "{o:?}");
    assert!(torn.0.is_empty());
    assert_eq!((card.balance(), card.trip()), (1000, None));
}

#[test]
fn a_psam_with_another_key_is_refused_by_the_card() {
    let (mut card, mut torn) = (new_card(1000), TornDebits::default());
    let keys = "[purchase]\nkey_index = 1\nkey_version = 1\nalgorithm = 0\nmaster_key = \"0123456789ABCDEFFEDCBA9876543210\"\n";
    let mut wrong = Psam::from_key_text(keys, Path::new("wrong.toml"), "112233445566", 0).unwrap();
    let o = tap_until(&mut card, &mut wrong, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0), |_| false);
    assert_eq!(o, GateOutcome::Failed(Failure::Mac1Refused));
    assert_eq!((card.balance(), card.offline_atc(), card.trip()), (1000, 1, None));
}

#[test]
fn other_cities_cards_need_the_white_list() {
    let (mut psam, mut torn) = (psam(), TornDebits::default());
    let mut profile = PurseProfile::test_card(42, 1000);
    profile.public.issuer_id = [0x03, 0x11, 0x21, 0x00, 0, 0, 0, 1];
    let mut card = PurseCard::new(profile, &TransitKeys::builtin().unwrap());
    let o = tap(&mut card, &mut psam, &mut torn, gate(Direction::Entry, ENTRY_STATION), at(8, 0));
    assert!(matches!(o, GateOutcome::Reject(Reject::NotWhitelisted { .. })), "{o:?}");
    let mut both = gate(Direction::Entry, ENTRY_STATION);
    both.issuers.push([0x03, 0x11, 0x21, 0x00, 0, 0, 0, 1]);
    assert!(matches!(tap(&mut card, &mut psam, &mut torn, both, at(8, 1)), GateOutcome::Open(_)));
}

/// The gate lane keeps a torn debit in its journal: the card torn away at DEBIT comes back to a
/// restarted gate, which proves the debit with the card and opens without charging again.
#[test]
fn a_torn_debit_survives_a_gate_restart_and_is_never_charged_twice() {
    use reader_drivers::virtual_reader::{Holder, VirtualReader};
    use shanfu::gate::config::{GateConfig, BUILTIN};
    use shanfu::gate::lane::Lane;
    use std::time::Duration;
    let data = std::env::temp_dir().join(format!("shanfu-gate-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let settings = shanfu::settings::Settings::load(None).unwrap();
    let wallet = test_cards::Wallet::load("tunion-phone").unwrap();
    let mut phone = VirtualReader::new("tunion-phone", wallet, Holder::default());
    let now = 1_796_450_000;
    {
        let mut lane = Lane::open(GateConfig::parse(BUILTIN, 2).unwrap(), settings.clone(), &data, Duration::from_secs(1), None).unwrap();
        // SELECT, READ BINARY, GET BALANCE, INITIALIZE, UPDATE CAPP DATA CACHE, DEBIT: the card
        // debits and is gone before its answer arrives.
        phone.set_tear_at(Some(6));
        let ev = lane.tap(&mut phone, now).unwrap().expect("a tap");
        assert_eq!((ev.decision, ev.reason.as_deref()), (shanfu::gate::lane::Gate::Reject, Some("READ_ERROR")), "{ev:?}");
    }
    assert_eq!(phone.wallet().purse().map(|p| p.balance()), Some(800), "the card did debit 2.00");
    phone.set_tear_at(None);
    let mut lane = Lane::open(GateConfig::parse(BUILTIN, 2).unwrap(), settings, &data, Duration::from_secs(1), None).unwrap();
    let ev = lane.tap(&mut phone, now + 10).unwrap().expect("a tap");
    assert_eq!((ev.decision, ev.recovered, ev.balance.as_deref()), (shanfu::gate::lane::Gate::Open, true, Some("8.00")), "{ev:?}");
    assert_eq!(phone.wallet().purse().map(|p| p.balance()), Some(800), "charged once");
    drop(lane);
    let _ = std::fs::remove_dir_all(&data);
}
