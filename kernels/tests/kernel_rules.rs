//! Kernel and Entry Point rules, one test per outcome-deciding rule, driven through the public
//! sans-IO API with hand-built card answers (no crypto needed: fDDA itself is covered in
//! test-cards and the workspace tests).

use kernels::apdu::{CApdu, RApdu};
use kernels::capk::{CapkStore, KeyMode};
use kernels::config::{Combination, EntryPointConfig, KernelId, TerminalData};
use kernels::entry_point::{Action, EntryPoint, Event, Transaction};
use kernels::outcome::{Cvm, Outcome, Status};
use kernels::tag;
use kernels::tlv::{Builder, Tag};
use kernels::types::{Amount, EmvDate, Ttq};
use std::sync::Arc;

const UP_AID: &[u8] = &[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01];
const VISA_AID: &[u8] = &[0xA0, 0, 0, 0, 0x03, 0x10, 0x10];
const PDOL: &[u8] = &[0x9F, 0x66, 4, 0x9F, 0x02, 6, 0x5F, 0x2A, 2, 0x9F, 0x37, 4];
const PAN: &[u8] = &[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17];
const T2: &[u8] = &[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17, 0xD2, 0x91, 0x22, 0x01, 0x00, 0x0F];

fn config(ttq: [u8; 4]) -> EntryPointConfig {
    let combo = |aid: &[u8], kernel| Combination {
        aid: aid.to_vec(),
        kernel,
        label: String::new(),
        txn_limit: Some(Amount(1_000_000)),
        floor_limit: Some(Amount(10_000)),
        terminal_floor_limit: None,
        cvm_limit: Some(Amount(30_000)),
        status_check: false,
        zero_amount_allowed: true,
        extended_selection: false,
        ttq: Some(Ttq(ttq)),
    };
    EntryPointConfig {
        terminal: TerminalData {
            country: [0x01, 0x56],
            currency: [0x01, 0x56],
            currency_exponent: 2,
            terminal_type: 0x22,
            capabilities: [0xE0, 0xE1, 0xC8],
            additional_capabilities: [0x60, 0, 0xF0, 0xA0, 0x01],
            terminal_id: "SHF00001".into(),
            merchant_name_location: "TEST".into(),
            online_capable: ttq[0] & 0x08 == 0,
        },
        combinations: vec![combo(UP_AID, KernelId::C7), combo(VISA_AID, KernelId::C3)],
    }
}

/// A card that answers from fixed data.
struct Card {
    aid: Vec<u8>,
    pdol: Vec<u8>,
    gpo: RApdu,
    records: Vec<RApdu>,
    seen_gpo: Option<CApdu>,
}

impl Card {
    fn new(aid: &[u8], gpo: RApdu) -> Card {
        Card { aid: aid.to_vec(), pdol: PDOL.to_vec(), gpo, records: vec![], seen_gpo: None }
    }
    fn answer(&mut self, c: &CApdu) -> RApdu {
        match c.ins {
            0xA4 if c.data == b"2PAY.SYS.DDF01" => {
                let e = Builder::new().put(tag::AID_CARD, &self.aid).put(tag::PRIORITY, &[1]).wrap(tag::DIRECTORY_ENTRY);
                let a5 = Builder::new().raw(&Builder::new().raw(&e).wrap(tag::FCI_ISSUER_DISCRETIONARY)).wrap(tag::FCI_PROPRIETARY);
                RApdu::new(Builder::new().put(tag::DF_NAME, b"2PAY.SYS.DDF01").raw(&a5).wrap(tag::FCI_TEMPLATE), 0x9000)
            }
            0xA4 => {
                let a5 = Builder::new().put(tag::PDOL, &self.pdol).wrap(tag::FCI_PROPRIETARY);
                RApdu::new(Builder::new().put(tag::DF_NAME, &self.aid).raw(&a5).wrap(tag::FCI_TEMPLATE), 0x9000)
            }
            0xA8 => {
                self.seen_gpo = Some(c.clone());
                self.gpo.clone()
            }
            0xB2 => {
                if self.records.is_empty() {
                    RApdu::sw(0x6A83)
                } else {
                    self.records.remove(0)
                }
            }
            _ => RApdu::sw(0x6D00),
        }
    }
}

fn run(card: &mut Card, amount: u64, ttq: [u8; 4], date: u32) -> Outcome {
    let txn =
        Transaction { amount: Amount(amount), amount_other: None, txn_type: 0, date: EmvDate(date), time: [0x12, 0, 0], unpredictable_number: [1, 2, 3, 4] };
    let capks = Arc::new(CapkStore::load(&[], KeyMode::Test).unwrap());
    let mut ep = EntryPoint::new(Arc::new(config(ttq)), capks, txn);
    let mut a = ep.start();
    for _ in 0..50 {
        a = match a {
            Action::Transmit(c) => ep.handle(Event::Response(card.answer(&c))),
            Action::CardReadComplete(_) => ep.resume(),
            Action::Done(o) => return o,
        };
    }
    panic!("no outcome after 50 steps");
}

const TTQ: [u8; 4] = [0x26, 0x00, 0x40, 0x80];

/// A format-2 GPO answer with the mandatory objects and `extra`.
fn gpo(cid: Option<u8>, ctq: Option<[u8; 2]>, extra: &[(Tag, &[u8])]) -> RApdu {
    let mut b = Builder::new()
        .put(tag::AIP, &[0x20, 0x00])
        .put(tag::ATC, &[0, 1])
        .put(tag::APPLICATION_CRYPTOGRAM, &[0xAC; 8])
        .put(tag::ISSUER_APP_DATA, &[0x06, 0x01, 0x0A, 0x03, 0x20, 0, 0])
        .put(tag::TRACK2_EQUIVALENT, T2);
    if let Some(c) = cid {
        b = b.put(tag::CID, &[c]);
    }
    if let Some(c) = ctq {
        b = b.put(tag::CTQ, &c);
    }
    for (t, v) in extra {
        b = b.put(*t, v);
    }
    RApdu::new(b.wrap(tag::RESPONSE_FORMAT_2), 0x9000)
}

fn record(items: &[(Tag, &[u8])]) -> RApdu {
    let mut b = Builder::new();
    for (t, v) in items {
        b = b.put(*t, v);
    }
    RApdu::new(b.wrap(tag::RECORD_TEMPLATE), 0x9000)
}

const TODAY: u32 = 261125;

#[test]
fn aac_is_declined_c3_5_4_3_2() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x00), None, &[])), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    assert!(o.reason.contains("AAC"));
}

#[test]
fn arqc_is_online_request_with_data_record_c3_5_4_3_2() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), None, &[])), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::OnlineRequest);
    let rec = o.data_record.unwrap();
    assert_eq!(kernels::tlv::find(&rec, tag::APPLICATION_CRYPTOGRAM).unwrap(), Some(&[0xAC; 8][..]));
    assert_eq!(kernels::tlv::find(&rec, tag::AMOUNT_AUTHORISED).unwrap(), Some(&[0, 0, 0, 0, 0x10, 0][..]));
}

#[test]
fn cid_from_iad_cvr_when_9f27_absent_c3_5_4_3_1() {
    // IAD byte 5 = 0x20: CVR byte 2 b6-b5 = 10 → ARQC.
    let o = run(&mut Card::new(VISA_AID, gpo(None, None, &[])), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::OnlineRequest);
}

#[test]
fn pdol_data_carries_copy_of_ttq_with_limit_bits_book_b_3_1_1() {
    let mut card = Card::new(UP_AID, gpo(Some(0x80), None, &[]));
    run(&mut card, 40_000, TTQ, TODAY); // above floor (100.00) and CVM limit (300.00)
    let g = card.seen_gpo.unwrap();
    // 83 L ‖ TTQ(4) ‖ amount(6) ‖ currency(2) ‖ UN(4)
    assert_eq!(&g.data[2..6], &[0x26, 0xC0, 0x40, 0x80]);
    assert_eq!(&g.data[6..12], &[0, 0, 0, 0x04, 0, 0]);
    assert_eq!(&g.data[14..18], &[1, 2, 3, 4]);
}

#[test]
fn tc_when_online_cryptogram_required_goes_online() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x40), None, &[])), 20_000, TTQ, TODAY);
    assert_eq!(o.status, Status::OnlineRequest);
}

fn tc_card(expiry: &[u8], extra_ctq: [u8; 2], effective: Option<&[u8]>) -> Card {
    let mut c = Card::new(UP_AID, gpo(Some(0x40), Some(extra_ctq), &[(tag::AFL, &[0x08, 1, 1, 0])]));
    let mut items: Vec<(Tag, &[u8])> = vec![(tag::PAN, PAN), (tag::EXPIRY_DATE, expiry)];
    if let Some(e) = effective {
        items.push((tag::EFFECTIVE_DATE, e));
    }
    c.records = vec![record(&items)];
    c
}

#[test]
fn expired_offline_is_declined_c3_5_5_1_1() {
    let o = run(&mut tc_card(&[0x25, 0x10, 0x31], [0, 0], None), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    assert!(o.reason.contains("expired"));
}

#[test]
fn expired_goes_online_when_ctq_allows_c3_5_5_1_1() {
    let o = run(&mut tc_card(&[0x25, 0x10, 0x31], [0x08, 0], None), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::OnlineRequest);
}

#[test]
fn not_yet_effective_offline_is_declined_book3_10_5_2() {
    let o = run(&mut tc_card(&[0x29, 0x12, 0x31], [0, 0], Some(&[0x27, 0x01, 0x01])), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    assert!(o.reason.contains("not yet effective"));
}

#[test]
fn oda_failure_declines_or_goes_online_per_ctq_c3_5_6_1_2() {
    // No 8F / certificates: fDDA cannot succeed.
    let o = run(&mut tc_card(&[0x29, 0x12, 0x31], [0, 0], None), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    assert!(o.reason.contains("offline data authentication failed"), "{}", o.reason);
    let o = run(&mut tc_card(&[0x29, 0x12, 0x31], [0x20, 0], None), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::OnlineRequest);
    // Switch interface only if the reader supports contact chip (TTQ byte 1 b5).
    let o = run(&mut tc_card(&[0x29, 0x12, 0x31], [0x10, 0], None), 1000, [0x36, 0, 0x40, 0x80], TODAY);
    assert_eq!(o.status, Status::TryAnotherInterface);
    let o = run(&mut tc_card(&[0x29, 0x12, 0x31], [0x10, 0], None), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
}

#[test]
fn tc_without_dda_support_is_declined_c3_5_6_1_1() {
    let mut c = tc_card(&[0x29, 0x12, 0x31], [0, 0], None);
    c.gpo = RApdu::new(
        Builder::new()
            .put(tag::AIP, &[0x00, 0x00])
            .put(tag::ATC, &[0, 1])
            .put(tag::APPLICATION_CRYPTOGRAM, &[0xAC; 8])
            .put(tag::ISSUER_APP_DATA, &[0x06, 0x01, 0x0A, 0x03, 0x10, 0, 0])
            .put(tag::TRACK2_EQUIVALENT, T2)
            .put(tag::CID, &[0x40])
            .wrap(tag::RESPONSE_FORMAT_2),
        0x9000,
    );
    let o = run(&mut c, 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
}

#[test]
fn online_pin_when_card_requires_and_reader_supports_c3_5_7_1_2() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0x80, 0]), &[])), 40_000, TTQ, TODAY);
    assert_eq!((o.status, o.cvm), (Status::OnlineRequest, Cvm::OnlinePin));
}

#[test]
fn cdcvm_confirmed_by_9f69_copy_of_ctq_c3_5_7_1_2() {
    let cad = [0x01, 9, 9, 9, 9, 0x00, 0x80];
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0, 0x80]), &[(tag::CARD_AUTH_RELATED_DATA, &cad)])), 40_000, TTQ, TODAY);
    assert_eq!(o.cvm, Cvm::Cdcvm);
    let bad = [0x01, 9, 9, 9, 9, 0x00, 0x00];
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0, 0x80]), &[(tag::CARD_AUTH_RELATED_DATA, &bad)])), 40_000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    // Without 9F69 an ARQC is enough.
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0, 0x80]), &[])), 40_000, TTQ, TODAY);
    assert_eq!(o.cvm, Cvm::Cdcvm);
}

#[test]
fn signature_when_card_asks_and_reader_supports_c3_5_7_1_2() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0x40, 0]), &[])), 40_000, TTQ, TODAY);
    assert_eq!(o.cvm, Cvm::Signature);
}

#[test]
fn cvm_required_but_none_agreed_is_declined_c3_5_7_1_3() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0, 0]), &[])), 40_000, TTQ, TODAY);
    assert_eq!(o.status, Status::Declined);
    // Below the CVM limit the same card needs no CVM.
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), Some([0, 0]), &[])), 1_000, TTQ, TODAY);
    assert_eq!((o.status, o.cvm), (Status::OnlineRequest, Cvm::NoCvm));
}

#[test]
fn no_ctq_and_cvm_required_gives_signature_c3_5_7_1_1() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), None, &[])), 40_000, TTQ, TODAY);
    assert_eq!(o.cvm, Cvm::Signature);
}

#[test]
fn gpo_status_words_c3_5_2_2_2() {
    let o = run(&mut Card::new(UP_AID, RApdu::sw(0x6986)), 40_000, TTQ, TODAY);
    assert!(o.is_see_phone());
    assert_eq!(o.start, Some(kernels::outcome::Start::B));
    let o = run(&mut Card::new(UP_AID, RApdu::sw(0x6984)), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::TryAnotherInterface);
    // 6985: Select Next; with one candidate the list is then empty → End Application.
    let o = run(&mut Card::new(UP_AID, RApdu::sw(0x6985)), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
    let o = run(&mut Card::new(UP_AID, RApdu::sw(0x6A82)), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
}

#[test]
fn missing_mandatory_data_ends_application_c3_5_4_2_1() {
    let r = RApdu::new(Builder::new().put(tag::AIP, &[0x20, 0]).put(tag::CID, &[0x80]).wrap(tag::RESPONSE_FORMAT_2), 0x9000);
    let o = run(&mut Card::new(UP_AID, r), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
    assert!(o.reason.contains("missing"));
}

#[test]
fn duplicate_card_data_ends_application_c3_5_4_2_2() {
    let mut c = Card::new(UP_AID, gpo(Some(0x80), None, &[(tag::AFL, &[0x08, 1, 1, 0])]));
    c.records = vec![record(&[(tag::ATC, &[0, 2])])];
    let o = run(&mut c, 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
    assert!(o.reason.contains("more than once"));
}

#[test]
fn pan_mismatch_between_57_and_5a_ends_application() {
    let mut c = Card::new(UP_AID, gpo(Some(0x80), None, &[(tag::AFL, &[0x08, 1, 1, 0])]));
    c.records = vec![record(&[(tag::PAN, &[0x62, 0x35, 0x88, 0, 0, 0, 0, 0x25])])];
    assert_eq!(run(&mut c, 1000, TTQ, TODAY).status, Status::EndApplication);
}

#[test]
fn bad_afl_and_bad_records_end_application() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), None, &[(tag::AFL, &[0x08, 1, 1])])), 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
    let mut c = Card::new(UP_AID, gpo(Some(0x80), None, &[(tag::AFL, &[0x08, 1, 1, 1])]));
    c.records = vec![RApdu::new(vec![0x71, 0x00], 0x9000)];
    assert_eq!(run(&mut c, 1000, TTQ, TODAY).status, Status::EndApplication);
    let mut c = Card::new(UP_AID, gpo(Some(0x80), None, &[(tag::AFL, &[0x08, 1, 1, 1])]));
    c.records = vec![RApdu::sw(0x6A83)];
    assert_eq!(run(&mut c, 1000, TTQ, TODAY).status, Status::EndApplication);
}

#[test]
fn gpo_format_1_is_parsed() {
    let r = RApdu::new(vec![0x80, 0x06, 0x20, 0x00, 0x08, 1, 1, 0], 0x9000);
    let mut c = Card::new(UP_AID, r);
    c.records = vec![record(&[
        (tag::APPLICATION_CRYPTOGRAM, &[1; 8]),
        (tag::ATC, &[0, 1]),
        (tag::ISSUER_APP_DATA, &[0x07, 1, 1, 3, 0x80, 0, 0, 1]),
        (tag::TRACK2_EQUIVALENT, T2),
        (tag::CID, &[0x80]),
    ])];
    assert_eq!(run(&mut c, 1000, TTQ, TODAY).status, Status::OnlineRequest);
}

#[test]
fn offline_only_reader_cannot_send_arqc_online() {
    let o = run(&mut Card::new(UP_AID, gpo(Some(0x80), None, &[])), 1000, [0x2E, 0, 0x40, 0x80], TODAY);
    assert_eq!(o.status, Status::Declined);
}

#[test]
fn visa_without_ttq_in_pdol_is_not_qvsdc_book_b_3_3_3_6() {
    let mut c = Card::new(VISA_AID, gpo(Some(0x80), None, &[]));
    c.pdol = vec![0x9F, 0x02, 6];
    let o = run(&mut c, 1000, TTQ, TODAY);
    assert_eq!(o.status, Status::EndApplication);
    assert!(c.seen_gpo.is_none());
}

/// Each kernel's own module runs for its AID: the same PDOL without 9F66 is refused by C-3's
/// rule (Book B 3.3.3.6, no GPO) on the Visa AID and runs to an outcome under C-7 on the
/// UnionPay AID.
#[test]
fn each_kernel_runs_its_own_module_c3_visa_c7_unionpay() {
    let mut visa = Card::new(VISA_AID, gpo(Some(0x80), None, &[]));
    visa.pdol = vec![0x9F, 0x02, 6];
    assert_eq!(run(&mut visa, 1000, TTQ, TODAY).status, Status::EndApplication);
    assert!(visa.seen_gpo.is_none(), "C-3 refused the application before GPO");

    let mut up = Card::new(UP_AID, gpo(Some(0x80), None, &[]));
    up.pdol = vec![0x9F, 0x02, 6];
    assert_eq!(run(&mut up, 1000, TTQ, TODAY).status, Status::OnlineRequest);
    assert_eq!(up.seen_gpo.unwrap().data, [0x83, 6, 0, 0, 0, 0, 0x10, 0], "C-7 sent GPO with the PDOL data");
}

/// The summary names the kernel that ran, by AID.
#[test]
fn summary_names_the_kernel_of_the_aid() {
    for (aid, kernel) in [(UP_AID, KernelId::C7), (VISA_AID, KernelId::C3)] {
        let mut card = Card::new(aid, gpo(Some(0x80), None, &[]));
        let txn = Transaction { amount: Amount(1000), amount_other: None, txn_type: 0, date: EmvDate(TODAY), time: [0; 3], unpredictable_number: [0; 4] };
        let mut ep = EntryPoint::new(Arc::new(config(TTQ)), Arc::new(CapkStore::load(&[], KeyMode::Test).unwrap()), txn);
        let mut a = ep.start();
        while let Action::Transmit(c) = a {
            a = ep.handle(Event::Response(card.answer(&c)));
        }
        assert!(matches!(a, Action::CardReadComplete(_)), "{a:?}");
        assert!(matches!(ep.resume(), Action::Done(o) if o.status == Status::OnlineRequest));
        assert_eq!(ep.summary().kernel, Some(kernel));
    }
}

#[test]
fn removal_before_kernel_done_is_try_again() {
    let txn = Transaction { amount: Amount(100), amount_other: None, txn_type: 0, date: EmvDate(TODAY), time: [0; 3], unpredictable_number: [0; 4] };
    let mut ep = EntryPoint::new(Arc::new(config(TTQ)), Arc::new(CapkStore::load(&[], KeyMode::Test).unwrap()), txn);
    assert!(matches!(ep.start(), Action::Transmit(_)));
    match ep.handle(Event::CardRemoved) {
        Action::Done(o) => assert_eq!((o.status, o.start), (Status::TryAgain, Some(kernels::outcome::Start::B))),
        a => panic!("{a:?}"),
    }
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A hostile card: every answer is arbitrary bytes. The Entry Point must end with an
        /// outcome (never panic, never loop) within a bounded number of steps.
        #[test]
        fn arbitrary_card_answers_end_in_an_outcome(answers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..12)) {
            let txn = Transaction { amount: Amount(1000), amount_other: None, txn_type: 0, date: EmvDate(TODAY), time: [0; 3], unpredictable_number: [0; 4] };
            let mut ep = EntryPoint::new(Arc::new(config(TTQ)), Arc::new(CapkStore::load(&[], KeyMode::Test).unwrap()), txn);
            let mut a = ep.start();
            let mut answers = answers.into_iter();
            let mut done = false;
            for _ in 0..40 {
                a = match a {
                    Action::Transmit(_) => match answers.next().and_then(|b| RApdu::parse(&b)) {
                        Some(r) => ep.handle(Event::Response(r)),
                        None => ep.handle(Event::CommError),
                    },
                    Action::CardReadComplete(_) => ep.resume(),
                    Action::Done(_) => { done = true; break; }
                };
            }
            prop_assert!(done);
        }
    }
}
