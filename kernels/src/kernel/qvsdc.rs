//! The qVSDC family: "the card decides in GPO" kernels (REFERENCE.md §2.1, §2.13). C-3 (Visa
//! qVSDC) and C-7 (UnionPay QuickPass qPBOC/qUICS) share these steps, written once here as one
//! sans-IO state machine [`Qvsdc`]; where the books differ it asks the kernel's [`Policy`]
//! (see [`super::c3`] and [`super::c7`]).
//!
//! Flow: GPO(PDOL) → READ RECORD(AFL) → *card read complete* → (card may leave) → mandatory
//! data → cryptogram type → processing restrictions → fDDA → CVM → Outcome.

use super::{Activation, Kernel, KernelStep, Registration, Summary};
use crate::apdu::{sw, CApdu, RApdu};
use crate::capk::CapkStore;
use crate::config::KernelId;
use crate::dol::{DataStore, Dol};
use crate::entry_point::{Candidate, Indicators};
use crate::oda::{self, FddaInput};
use crate::outcome::{AltInterface, Cvm, MessageId, OdaResult, Outcome, Status, UiRequest, UiStatus, ValueQualifier};
use crate::tag;
use crate::tlv::{self, Tag};
use crate::types::{digits, Afl, Aip, Amount, CryptogramType, Ctq, EmvDate};
use std::collections::VecDeque;
use std::marker::PhantomData;

/// Where the qVSDC-family books differ: one zero-sized type per kernel implements this, and
/// [`registration`] turns it into a registry line.
pub trait Policy: Send + Sync + 'static {
    /// The kernel id this policy is registered under.
    const ID: KernelId;

    /// Entry Point's look at the final SELECT answer before activation (Book B §3.3.3);
    /// `false` removes the combination (Start C). Default: any FCI will do.
    fn accepts_fci(cand: &Candidate, fci: &[u8]) -> bool {
        let _ = (cand, fci);
        true
    }

    /// The cryptogram type of a card that sent no CID (9F27), from its Issuer Application Data
    /// (9F10), whose format is the payment system's.
    fn cryptogram_type_without_cid(iad: Option<&[u8]>) -> CryptogramType;
}

/// The registry line of a qVSDC-family kernel.
pub const fn registration<P: Policy>() -> Registration {
    Registration { id: P::ID, accepts_fci: P::accepts_fci, activate: activate::<P> }
}

fn activate<P: Policy>(a: &Activation<'_>) -> (Box<dyn Kernel>, KernelStep) {
    let (k, step) = Qvsdc::<P>::activate(a);
    (Box::new(k), step)
}

enum KState {
    AwaitGpo,
    AwaitRecord { sfi: u8, oda: bool },
    ReadComplete,
    Done,
}

/// One activation of a qVSDC-family kernel with policy `P`.
pub struct Qvsdc<P: Policy> {
    store: DataStore,
    card_tags: Vec<Tag>,
    records: VecDeque<(u8, u8, bool)>,
    static_data: Vec<u8>,
    /// A record read for ODA was not coded as template 70 (Book 3 §10.3: ODA fails).
    static_data_error: bool,
    ind: Indicators,
    online_capable: bool,
    date: EmvDate,
    state: KState,
    summary: Summary,
    policy: PhantomData<P>,
}

/// Tags of the data record (Book A §6.2.5; C-3 / [MHN] `prepare_emv_outcome_data`), which
/// becomes ISO 8583 field 55 and the journal entry.
pub const DATA_RECORD_TAGS: &[Tag] = &[
    tag::AMOUNT_AUTHORISED,
    tag::AMOUNT_OTHER,
    tag::APPLICATION_CRYPTOGRAM,
    tag::CID,
    tag::AIP,
    tag::ATC,
    tag::PAN_SEQUENCE,
    tag::ISSUER_APP_DATA,
    tag::POS_ENTRY_MODE,
    tag::TERMINAL_COUNTRY,
    tag::TERMINAL_CAPABILITIES,
    tag::TERMINAL_TYPE,
    tag::TXN_CURRENCY,
    tag::TXN_DATE,
    tag::TXN_TYPE,
    tag::UNPREDICTABLE_NUMBER,
    tag::TVR,
    tag::TTQ,
    tag::CTQ,
    tag::DF_NAME,
    tag::APP_VERSION_TERMINAL,
    tag::FORM_FACTOR,
    tag::PAR,
    tag::CUSTOMER_EXCLUSIVE_DATA,
    tag::CARD_AUTH_RELATED_DATA,
    tag::AVAILABLE_OFFLINE_AMOUNT,
    tag::EXPIRY_DATE,
    tag::PAN,
    tag::TRACK2_EQUIVALENT,
];

impl<P: Policy> Kernel for Qvsdc<P> {
    fn id(&self) -> KernelId {
        P::ID
    }

    fn summary(&self) -> &Summary {
        &self.summary
    }

    fn store(&self) -> &DataStore {
        &self.store
    }

    fn on_response(&mut self, r: RApdu) -> KernelStep {
        match std::mem::replace(&mut self.state, KState::Done) {
            KState::AwaitGpo => self.on_gpo(r),
            KState::AwaitRecord { sfi, oda } => self.on_record(sfi, oda, r),
            KState::ReadComplete | KState::Done => KernelStep::Outcome(Outcome::end_application("unexpected card response")),
        }
    }

    /// Offline processing once the card may have left (C-3 §5.4-§5.8; C-7 likewise).
    fn complete(&mut self, capks: &CapkStore) -> Outcome {
        if !matches!(self.state, KState::ReadComplete) {
            return Outcome::end_application("kernel completed before the card was read");
        }
        self.state = KState::Done;
        let mut o = self.decide(capks);
        // The data record keeps the TVR the card saw in the PDOL (zeros), as [MHN] Kernel 3
        // does: the issuer recomputes the cryptogram over it. The kernel's findings are in
        // `Summary::tvr` for the journal and the receipt.
        if matches!(o.status, Status::Approved | Status::OnlineRequest | Status::Declined) {
            o.data_record = Some(self.data_record());
        }
        // C-3 §4.3.1.1 / C-7: the available offline spending amount goes to the display and the
        // discretionary data.
        if let Some(b) = self.summary.offline_balance {
            if let Some(ui) = o.ui_on_outcome.as_mut() {
                ui.value = Some((ValueQualifier::Balance, b));
            }
            o.discretionary_data = Some(tlv::encode(tag::AVAILABLE_OFFLINE_AMOUNT, &Amount(b).to_n12()));
        }
        o
    }
}

impl<P: Policy> Qvsdc<P> {
    /// Book B §3.4 kernel activation: terminal data, the Copy of TTQ (3.4.1.2) and the FCI
    /// (3.4.1.3) go into the data store; then GPO with the PDOL data (C-3 §5.2.1).
    pub fn activate(a: &Activation<'_>) -> (Self, KernelStep) {
        let Activation { candidate: cand, combination: combo, indicators: ind, terminal: term, txn, fci } = *a;
        let mut s = DataStore::new();
        s.set(tag::AMOUNT_AUTHORISED, txn.amount.to_n12().to_vec());
        s.set(tag::AMOUNT_OTHER, txn.amount_other.unwrap_or_default().to_n12().to_vec());
        s.set(tag::TERMINAL_COUNTRY, term.country.to_vec());
        s.set(tag::TXN_CURRENCY, term.currency.to_vec());
        s.set(tag::TXN_CURRENCY_EXPONENT, vec![term.currency_exponent]);
        s.set(tag::TXN_DATE, txn.date.to_bcd().to_vec());
        s.set(tag::TXN_TIME, txn.time.to_vec());
        s.set(tag::TXN_TYPE, vec![txn.txn_type]);
        s.set(tag::UNPREDICTABLE_NUMBER, txn.unpredictable_number.to_vec());
        s.set(tag::TERMINAL_TYPE, vec![term.terminal_type]);
        s.set(tag::TERMINAL_CAPABILITIES, term.capabilities.to_vec());
        s.set(tag::ADDITIONAL_TERMINAL_CAPABILITIES, term.additional_capabilities.to_vec());
        s.set(tag::TERMINAL_ID, term.terminal_id.as_bytes().to_vec());
        s.set(tag::MERCHANT_NAME_LOCATION, term.merchant_name_location.as_bytes().to_vec());
        s.set(tag::POS_ENTRY_MODE, vec![0x07]);
        s.set(tag::AID_TERMINAL, combo.aid.clone());
        s.set(tag::APP_VERSION_TERMINAL, vec![0x00, 0x01]);
        s.set(tag::TVR, vec![0; 5]);
        if let Some(t) = ind.ttq {
            s.set(tag::TTQ, t.0.to_vec());
        }
        let mut k = Qvsdc {
            store: s,
            card_tags: vec![],
            records: VecDeque::new(),
            static_data: vec![],
            static_data_error: false,
            ind,
            online_capable: term.online_capable && !ind.ttq.is_some_and(|t| t.offline_only()),
            date: txn.date,
            state: KState::AwaitGpo,
            summary: Summary { kernel: Some(P::ID), aid: Some(cand.adf_name.clone()), label: cand.label.clone(), ..Default::default() },
            policy: PhantomData,
        };
        // FCI objects (84, 50, 9F38, ...) are card data too.
        if let Err(e) = k.store.store_card_response(fci, &mut k.card_tags) {
            return (k.finish_error(format!("bad FCI from final SELECT: {e}")), KernelStep::Outcome(Outcome::end_application(format!("bad FCI: {e}"))));
        }
        let pdol = match k.store.get(tag::PDOL).map(Dol::parse).transpose() {
            Ok(p) => p.unwrap_or_default(),
            Err(e) => {
                let o = Outcome::end_application(format!("card PDOL malformed: {e}"));
                k.state = KState::Done;
                return (k, KernelStep::Outcome(o));
            }
        };
        let data = pdol.build(&k.store);
        (k, KernelStep::Transmit(CApdu::gpo(&data)))
    }

    fn finish_error(mut self, _why: String) -> Self {
        self.state = KState::Done;
        self
    }

    /// C-3 §5.2.2.2 (status words on GPO) and §5.3 (GPO response parsing).
    fn on_gpo(&mut self, r: RApdu) -> KernelStep {
        match r.sw {
            sw::OK => {}
            // 6986: the wallet needs the holder on the phone (CDCVM) — "See Phone", Try Again at B.
            sw::SEE_PHONE => return KernelStep::Outcome(Outcome::see_phone()),
            // 6984: Try Another Interface (contact chip).
            sw::CONDITIONS_USE_NOT_SATISFIED_INTERFACE => {
                let mut o = Outcome::new(Status::TryAnotherInterface, "card asks for another interface (GPO 6984)")
                    .ui(UiRequest::new(MessageId::InsertCard, UiStatus::ProcessingError));
                o.alternate_interface = Some(AltInterface::ContactChip);
                return KernelStep::Outcome(o);
            }
            // 6985: Select Next (Start C).
            sw::CONDITIONS_OF_USE_NOT_SATISFIED => {
                return KernelStep::Outcome(Outcome::new(Status::SelectNext, "card refused GPO (6985): select next application"))
            }
            other => return KernelStep::Outcome(Outcome::end_application(format!("GPO failed with status {other:04X} ({})", crate::apdu::sw_meaning(other)))),
        }
        let parsed = match tlv::parse_all(&r.data) {
            Ok(p) => p,
            Err(e) => return KernelStep::Outcome(Outcome::end_application(format!("GPO response malformed: {e}"))),
        };
        match parsed.as_slice() {
            // Format 1: AIP ‖ AFL.
            [t] if t.tag == tag::RESPONSE_FORMAT_1 => {
                if t.value.len() < 2 || (t.value.len() - 2) % 4 != 0 {
                    return KernelStep::Outcome(Outcome::end_application("GPO format 1 length is not AIP + n×4"));
                }
                self.card_tags.extend([tag::AIP, tag::AFL]);
                self.store.set(tag::AIP, t.value[..2].to_vec());
                self.store.set(tag::AFL, t.value[2..].to_vec());
            }
            [t] if t.tag == tag::RESPONSE_FORMAT_2 => {
                if let Err(e) = self.store.store_card_response(t.raw, &mut self.card_tags) {
                    return KernelStep::Outcome(Outcome::end_application(format!("GPO data error: {e}")));
                }
            }
            _ => return KernelStep::Outcome(Outcome::end_application("GPO response is neither format 1 nor format 2")),
        }
        // C-3 §4.1.1.1: 9F6E is kept with byte 4's low nibble cleared.
        if let Some(ff) = self.store.get(tag::FORM_FACTOR).map(mask_form_factor) {
            self.store.set(tag::FORM_FACTOR, ff);
        }
        let afl = match self.store.get(tag::AFL).map(Afl::parse).transpose() {
            Ok(a) => a.unwrap_or_default(),
            Err(e) => return KernelStep::Outcome(Outcome::end_application(format!("card AFL invalid: {e}"))),
        };
        self.records = afl.records().into();
        self.next_record()
    }

    fn next_record(&mut self) -> KernelStep {
        match self.records.pop_front() {
            Some((sfi, rec, oda)) => {
                self.state = KState::AwaitRecord { sfi, oda };
                KernelStep::Transmit(CApdu::read_record(sfi, rec))
            }
            None => {
                self.state = KState::ReadComplete;
                KernelStep::CardReadComplete
            }
        }
    }

    /// Book 3 §10.2 and §10.3: records must be template 70 and parse; those marked for ODA feed
    /// the static data (SFI 1-10: the template's value; SFI 11-30: the whole record).
    fn on_record(&mut self, sfi: u8, oda: bool, r: RApdu) -> KernelStep {
        if !r.is_ok() {
            return KernelStep::Outcome(Outcome::end_application(format!(
                "READ RECORD SFI {sfi} failed with {:04X} ({})",
                r.sw,
                crate::apdu::sw_meaning(r.sw)
            )));
        }
        let top = tlv::parse_all(&r.data);
        let Some(t70) = top.as_ref().ok().and_then(|top| top.iter().find(|t| t.tag == tag::RECORD_TEMPLATE)) else {
            // Book 3 §10.2 / C-3 and C-7 read-record rule: SFI 11-30 are the issuer's own
            // (proprietary) files, whose records need not be template 70: the transaction goes
            // on without their data. A record read for ODA that is not template 70 makes ODA
            // fail (Book 3 §10.3), whatever its SFI.
            if oda {
                self.static_data_error = true;
            }
            if is_proprietary_sfi(sfi) {
                return self.next_record();
            }
            return KernelStep::Outcome(Outcome::end_application(match top {
                Err(e) => format!("record SFI {sfi} malformed: {e}"),
                Ok(_) => format!("record SFI {sfi} is not a template 70"),
            }));
        };
        if oda {
            if sfi <= 10 {
                self.static_data.extend_from_slice(t70.value);
            } else {
                self.static_data.extend_from_slice(&r.data);
            }
        }
        if let Err(e) = self.store.store_card_response(t70.raw, &mut self.card_tags) {
            return KernelStep::Outcome(Outcome::end_application(format!("card data error: {e}")));
        }
        self.next_record()
    }

    fn data_record(&self) -> Vec<u8> {
        let mut b = tlv::Builder::new();
        for &t in DATA_RECORD_TAGS {
            b = b.put_opt(t, self.store.get(t));
        }
        b.build()
    }

    fn ttq(&self) -> crate::types::Ttq {
        self.ind.ttq.unwrap_or_default()
    }

    fn fill_summary(&mut self) {
        let s = &self.store;
        let pan = s.get(tag::PAN).map(digits).or_else(|| s.get(tag::TRACK2_EQUIVALENT).map(|t| digits(t).split('=').next().unwrap_or("").to_string()));
        self.summary.pan = pan;
        self.summary.pan_sequence = s.get(tag::PAN_SEQUENCE).and_then(|v| v.first().copied());
        self.summary.par = s.get(tag::PAR).map(|v| String::from_utf8_lossy(v).into_owned());
        self.summary.expiry = s.get(tag::EXPIRY_DATE).map(hex::encode);
        self.summary.cryptogram = s.get(tag::APPLICATION_CRYPTOGRAM).map(|v| v.to_vec());
        self.summary.atc = s.get(tag::ATC).and_then(|v| <[u8; 2]>::try_from(v).ok()).map(u16::from_be_bytes);
        // 9F5D, when the card sends it (both kernels).
        self.summary.offline_balance = s.get(tag::AVAILABLE_OFFLINE_AMOUNT).and_then(Amount::from_bcd).map(|a| a.0);
        if let Some(l) = s.get(tag::APPLICATION_LABEL) {
            self.summary.label = Some(String::from_utf8_lossy(l).into_owned());
        }
    }

    fn decide(&mut self, capks: &CapkStore) -> Outcome {
        self.fill_summary();
        // C-3 §5.4.2.1 mandatory card data (C-7 Annex A likewise): AC, AIP, ATC, IAD, track 2.
        for t in [tag::APPLICATION_CRYPTOGRAM, tag::AIP, tag::ATC, tag::ISSUER_APP_DATA, tag::TRACK2_EQUIVALENT] {
            if !self.store.has(t) {
                self.summary.tvr.set_icc_data_missing(true);
                return Outcome::end_application(format!("card data missing: {} ({t})", tag::name(t)));
            }
        }
        // C-3 Annex A.2: 57 and 5A, when both present, must carry the same PAN.
        if let (Some(p), Some(t2)) = (self.store.get(tag::PAN), self.store.get(tag::TRACK2_EQUIVALENT)) {
            let t2pan = digits(t2);
            if t2pan.split('=').next() != Some(digits(p).as_str()) {
                return Outcome::end_application("PAN in track 2 and 5A differ");
            }
        }
        let ctype = self.cryptogram_type();
        self.summary.cryptogram_type = Some(ctype);
        let ctq = self.store.get(tag::CTQ).and_then(Ctq::from_slice);
        let ttq = self.ttq();

        // Processing restrictions (C-3 §5.5.1.1; Book 3 §10.5.2-10.5.3). The TVR records them
        // on every path, an offline decline by the card (AAC) included; they decide only an
        // offline (TC) approval.
        let expired = expiry_passed(self.store.get(tag::EXPIRY_DATE), self.date);
        let not_effective = self.store.get(tag::EFFECTIVE_DATE).and_then(EmvDate::from_bcd).is_some_and(|e| self.date < e);
        self.summary.tvr.set_expired_application(expired);
        self.summary.tvr.set_not_yet_effective(not_effective);
        if self.ind.floor_limit_exceeded {
            self.summary.tvr.set_floor_limit_exceeded(true);
        }

        // C-3 §5.4.3.2: the card's decision first.
        let mut online = false;
        match ctype {
            CryptogramType::Aac => return self.declined("card declined the transaction offline (AAC)", false),
            CryptogramType::Arqc => online = true,
            CryptogramType::Tc => {
                if ttq.online_cryptogram_required() {
                    online = true;
                }
            }
            CryptogramType::Rfu => return self.declined("card returned an RFU cryptogram type", false),
        }

        if !online {
            // The processing restrictions of an offline approval need the date itself: a card
            // without 5F24 is declined offline with "ICC data missing", not taken as expired
            // (project rule; C-3 lists 5F24 for offline approvals, unverified).
            if !self.store.has(tag::EXPIRY_DATE) {
                self.summary.tvr.set_icc_data_missing(true);
                return self.declined("card data missing for an offline approval: Application Expiration Date (5F24)", true);
            }
            if expired {
                // C-3 §5.5.1.1: expired → online if the card allows (CTQ byte 1 b4), else decline.
                if ctq.is_some_and(|c| c.online_if_expired()) && self.online_capable {
                    online = true;
                } else {
                    return self.declined("card or token expired (5F24 before the transaction date)", true);
                }
            } else if not_effective {
                return self.declined("card not yet effective (5F25 after the transaction date)", true);
            }
        }

        // Offline data authentication: only on the offline path (C-3 §5.6.1.1).
        let mut oda = OdaResult::NotPerformed;
        if !online {
            let aip = self.store.get(tag::AIP).and_then(Aip::from_slice).unwrap_or_default();
            if !aip.dda_supported() {
                // C-3 §5.6.1.1: an offline approval needs fDDA; a card that cannot do it is
                // declined (or sent online if it asks for that when ODA fails).
                self.summary.tvr.set_oda_not_performed(true);
                if ctq.is_some_and(|c| c.online_if_oda_fails()) && self.online_capable {
                    online = true;
                } else {
                    return self.declined("offline approval requested by a card without fDDA", true);
                }
            } else {
                match self.run_fdda(capks) {
                    Ok(()) => oda = OdaResult::FddaOk,
                    Err(why) => {
                        self.summary.tvr.set_dda_failed(true);
                        self.summary.oda = Some(OdaResult::FddaFailed);
                        self.summary.oda_error = Some(why.clone());
                        // C-3 §5.6.1.2: ODA failed → online if the card asks and the reader can;
                        // switch interface if both support contact; else decline.
                        if ctq.is_some_and(|c| c.online_if_oda_fails()) && self.online_capable {
                            online = true;
                            oda = OdaResult::FddaFailed;
                        } else if ctq.is_some_and(|c| c.switch_interface_if_oda_fails()) && ttq.contact_chip_supported() {
                            let mut o = Outcome::new(Status::TryAnotherInterface, format!("fDDA failed: {why}; use the contact chip"))
                                .ui(UiRequest::new(MessageId::InsertCard, UiStatus::ProcessingError));
                            o.alternate_interface = Some(AltInterface::ContactChip);
                            return o;
                        } else {
                            return self.declined(&format!("offline data authentication failed: {why}"), true);
                        }
                    }
                }
            }
        } else {
            self.summary.tvr.set_oda_not_performed(true);
        }
        self.summary.oda = Some(oda);

        // CVM (C-3 §5.7.1).
        let cvm = match self.select_cvm(ctq, ctype) {
            Ok(c) => c,
            Err(why) => return self.declined(why, true),
        };
        if cvm == Cvm::OnlinePin {
            online = true;
        }
        if online && !self.online_capable {
            // C-3 §5.8: an offline-only reader cannot honour an online request.
            return self.declined("card asks to go online but the reader is offline-only", true);
        }

        let mut o = if online {
            let mut o = Outcome::new(Status::OnlineRequest, "card requests online authorisation (ARQC)")
                .ui(UiRequest::new(MessageId::Authorising, UiStatus::Processing));
            if ctype != CryptogramType::Arqc {
                o.reason = "online authorisation required by the terminal".into();
            }
            o
        } else {
            let msg = if cvm == Cvm::Signature { MessageId::ApprovedSign } else { MessageId::Approved };
            Outcome::new(Status::Approved, "approved offline (TC) with fDDA verified").ui(UiRequest::new(msg, UiStatus::CardReadSuccessfully).hold(1300))
        };
        o.cvm = cvm;
        o.receipt = cvm == Cvm::Signature;
        o
    }

    fn declined(&mut self, why: &str, card_data: bool) -> Outcome {
        let _ = card_data;
        let mut o = Outcome::new(Status::Declined, why).ui(UiRequest::new(MessageId::NotAuthorised, UiStatus::ProcessingError).hold(1300));
        o.cvm = Cvm::NoCvm;
        o
    }

    /// C-3 §5.4.3.1: CID from 9F27, or — when the card omits it — from the IAD, as the kernel's
    /// [`Policy::cryptogram_type_without_cid`] reads it.
    fn cryptogram_type(&self) -> CryptogramType {
        if let Some(&cid) = self.store.get(tag::CID).and_then(|v| v.first()) {
            return CryptogramType::from_cid(cid);
        }
        P::cryptogram_type_without_cid(self.store.get(tag::ISSUER_APP_DATA))
    }

    /// C-3 §5.7.1.1-5.7.1.3 (C-7 the same TTQ/CTQ table).
    fn select_cvm(&self, ctq: Option<Ctq>, ctype: CryptogramType) -> Result<Cvm, &'static str> {
        let ttq = self.ttq();
        let Some(ctq) = ctq else {
            // 5.7.1.1: CVM required and no CTQ: signature, else online PIN, else decline.
            if !ttq.cvm_required() {
                return Ok(Cvm::NoCvm);
            }
            if ttq.signature_supported() {
                return Ok(Cvm::Signature);
            }
            if ttq.online_pin_supported() {
                return Ok(Cvm::OnlinePin);
            }
            return Err("CVM required but the card states no method the reader supports");
        };
        // 5.7.1.2 a: online PIN required by the card and supported by the reader.
        if ctq.online_pin_required() && ttq.online_pin_supported() {
            return Ok(Cvm::OnlinePin);
        }
        // 5.7.1.2 b: Consumer Device CVM performed — proven by the CTQ copy in 9F69, or by an
        // ARQC when 9F69 is absent.
        if ctq.cdcvm_performed() {
            return match self.store.get(tag::CARD_AUTH_RELATED_DATA) {
                Some(c) if c.get(5..7) == Some(&ctq.0[..]) => Ok(Cvm::Cdcvm),
                Some(_) => Err("CDCVM claimed but the CTQ in 9F69 does not match"),
                None if ctype == CryptogramType::Arqc => Ok(Cvm::Cdcvm),
                None => Err("CDCVM claimed on an offline cryptogram without 9F69"),
            };
        }
        // 5.7.1.2 c: signature.
        if ctq.signature_required() && ttq.signature_supported() {
            return Ok(Cvm::Signature);
        }
        // 5.7.1.3: CVM required and none was agreed.
        if ttq.cvm_required() {
            return Err("CVM required but no method agreed between card and reader");
        }
        Ok(Cvm::NoCvm)
    }

    /// fDDA (Book 2 §6.5, C-3 Annex / qPBOC): CA key by RID + 8F, chain to the ICC key (issuer
    /// certificate serial checked against the revocation list), SDAD over the terminal dynamic
    /// data of the card's fDDA version ([`fdda_terminal_dynamic_data`]).
    fn run_fdda(&mut self, capks: &CapkStore) -> Result<(), String> {
        let s = &self.store;
        let need = |t: Tag| s.get(t).ok_or_else(|| format!("{} ({t}) missing", tag::name(t)));
        if self.static_data_error {
            return Err("a record for ODA is not coded as template 70".into());
        }
        let aid = self.summary.aid.clone().unwrap_or_default();
        let index = *need(tag::CA_PK_INDEX)?.first().ok_or("empty CA key index")?;
        let capk = capks.get(aid.get(..5).ok_or("AID shorter than a RID")?, index, self.date).map_err(|e| e.to_string())?;
        let mut static_data = self.static_data.clone();
        // Book 2 §5.4 / C-3: 9F4A may list only the AIP.
        if let Some(list) = s.get(tag::SDA_TAG_LIST) {
            if list != [0x82] {
                return Err("static data authentication tag list names other than 82".into());
            }
            static_data.extend_from_slice(need(tag::AIP)?);
        }
        // fDDA version 00 signs the unpredictable number only, version 01 also the amount, the
        // currency and 9F69.
        let dyn_data = fdda_terminal_dynamic_data(
            s.get(tag::CARD_AUTH_RELATED_DATA),
            need(tag::UNPREDICTABLE_NUMBER)?,
            need(tag::AMOUNT_AUTHORISED)?,
            need(tag::TXN_CURRENCY)?,
        )?;
        let input = FddaInput {
            capk,
            pan: need(tag::PAN)?,
            issuer_cert: need(tag::ISSUER_PK_CERT)?,
            issuer_remainder: s.get(tag::ISSUER_PK_REMAINDER),
            issuer_exponent: need(tag::ISSUER_PK_EXPONENT)?,
            icc_cert: need(tag::ICC_PK_CERT)?,
            icc_remainder: s.get(tag::ICC_PK_REMAINDER),
            icc_exponent: need(tag::ICC_PK_EXPONENT)?,
            static_data: &static_data,
            sdad: need(tag::SDAD)?,
            terminal_dynamic_data: &dyn_data,
            txn_date: self.date,
            revoked_issuer_serials: &capks.revoked_issuer_serials(&capk.rid, capk.index),
        };
        oda::verify_fdda(&input).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Book 3 §10.2: short file identifiers 11 to 30 are the issuer's proprietary files.
pub fn is_proprietary_sfi(sfi: u8) -> bool {
    (11..=30).contains(&sfi)
}

/// Book 3 §10.5.3 / C-3 §5.5.1.1: whether the application expired before `today`. Only a present
/// Application Expiration Date (5F24) can have passed: a card that sends none (online-only cards
/// may leave it to track 2) is not "expired" (the TVR bit stays clear). A 5F24 that is not a
/// valid YYMMDD counts as passed.
pub fn expiry_passed(expiry: Option<&[u8]>, today: EmvDate) -> bool {
    match expiry {
        None => false,
        Some(v) => EmvDate::from_bcd(v).is_none_or(|e| crate::capk::is_past(e, today)),
    }
}

/// C-3 §4.1.1.1 (REFERENCE §2.5): the Form Factor Indicator (9F6E) is kept, and goes into the
/// data record, with the low nibble of its byte 4 cleared. Shorter values are kept as sent.
pub fn mask_form_factor(v: &[u8]) -> Vec<u8> {
    let mut out = v.to_vec();
    if let Some(b) = out.get_mut(3) {
        *b &= 0xF0;
    }
    out
}

/// fDDA's terminal dynamic data by the fDDA version in the Card Authentication Related Data
/// (9F69 byte 1; REFERENCE §3.4-§3.5, C-3 / C-7 fDDA):
/// - version `01`: `9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69` (the whole 9F69 as read);
/// - version `00`, or no 9F69 at all: `9F37` only (Visa fDDA 00; unverified, the digest names
///   version 01 only);
/// - any other version: not supported, fDDA fails.
pub fn fdda_terminal_dynamic_data(cad: Option<&[u8]>, un: &[u8], amount: &[u8], currency: &[u8]) -> Result<Vec<u8>, String> {
    match cad.map(|c| (c.first().copied(), c)) {
        None | Some((Some(0x00), _)) => Ok(un.to_vec()),
        Some((Some(0x01), c)) => Ok([un, amount, currency, c].concat()),
        Some((Some(v), _)) => Err(format!("fDDA version {v:02X} in 9F69 is not supported (00 or 01)")),
        Some((None, _)) => Err("card authentication related data (9F69) is empty".into()),
    }
}

#[cfg(test)]
mod conformance_tests {
    use super::*;

    #[test]
    fn proprietary_sfis_are_11_to_30() {
        assert!(!is_proprietary_sfi(10));
        assert!(is_proprietary_sfi(11));
        assert!(is_proprietary_sfi(30));
        assert!(!is_proprietary_sfi(31));
    }

    #[test]
    fn expiry_only_when_present() {
        let today = EmvDate(261205);
        assert!(!expiry_passed(None, today));
        assert!(!expiry_passed(Some(&[0x29, 0x12, 0x31]), today));
        assert!(!expiry_passed(Some(&[0x26, 0x12, 0x05]), today), "valid through its last day");
        assert!(expiry_passed(Some(&[0x26, 0x12, 0x04]), today));
        assert!(expiry_passed(Some(&[0x99, 0x12, 0x31]), today), "1999");
        assert!(expiry_passed(Some(&[0x26, 0x13, 0x01]), today), "month 13 is not a date");
        assert!(expiry_passed(Some(&[0x26]), today), "too short");
    }

    #[test]
    fn form_factor_byte_4_low_nibble_cleared() {
        assert_eq!(mask_form_factor(&[0x20, 0x70, 0x00, 0x0F]), vec![0x20, 0x70, 0x00, 0x00]);
        assert_eq!(mask_form_factor(&[0x20, 0x70, 0x00, 0xA5, 0x11]), vec![0x20, 0x70, 0x00, 0xA0, 0x11]);
        assert_eq!(mask_form_factor(&[0x20, 0x70, 0x0F]), vec![0x20, 0x70, 0x0F]);
    }

    #[test]
    fn fdda_dynamic_data_by_version() {
        let (un, amt, cur) = ([1, 2, 3, 4], [0, 0, 0, 0, 0x20, 0], [0x01, 0x56]);
        let v1 = [0x01, 9, 9, 9, 9, 0x00, 0x00];
        assert_eq!(fdda_terminal_dynamic_data(Some(&v1), &un, &amt, &cur).unwrap(), [&un[..], &amt, &cur, &v1].concat());
        assert_eq!(fdda_terminal_dynamic_data(Some(&[0x00, 9, 9, 9, 9]), &un, &amt, &cur).unwrap(), un.to_vec());
        assert_eq!(fdda_terminal_dynamic_data(None, &un, &amt, &cur).unwrap(), un.to_vec());
        assert!(fdda_terminal_dynamic_data(Some(&[0x02, 9]), &un, &amt, &cur).unwrap_err().contains("version 02"));
        assert!(fdda_terminal_dynamic_data(Some(&[]), &un, &amt, &cur).unwrap_err().contains("empty"));
    }
}
