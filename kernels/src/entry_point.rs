//! EMV Contactless Entry Point (Book B v2.x): pre-processing (§3.1), protocol activation (§3.2,
//! done by the reader), combination selection (§3.3), kernel activation (§3.4) and outcome
//! processing (§3.5), as a sans-IO state machine.
//!
//! ```text
//! let mut ep = EntryPoint::new(cfg, capks, txn);
//! let mut action = ep.start();            // Start A
//! loop { match action {
//!     Action::Transmit(c)      => action = ep.handle(Event::Response(card.exchange(c))),
//!     Action::CardReadComplete => { /* card may go */ action = ep.resume() }
//!     Action::Done(outcome)    => break,   // Try Again: new tap, then ep.restart_b()
//! } }
//! ```

use crate::apdu::{CApdu, RApdu, PPSE_NAME};
use crate::capk::CapkStore;
use crate::config::{default_kernel_for_rid, Combination, EntryPointConfig, KernelId};
use crate::kernel::{self, Activation, Kernel, KernelStep, Summary};
use crate::outcome::{MessageId, Outcome, Start, Status, UiRequest, UiStatus};
use crate::tag;
use crate::tlv::{self, Tag};
use crate::types::{Amount, EmvDate, Ttq};
use std::sync::Arc;

/// Per-transaction inputs. Time and randomness come from outside (sans-IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub amount: Amount,
    pub amount_other: Option<Amount>,
    /// 9C: 00 purchase, 01 cash, 09 purchase with cashback, 20 refund.
    pub txn_type: u8,
    pub date: EmvDate,
    /// 9F21 HHMMSS BCD.
    pub time: [u8; 3],
    /// 9F37, fresh per transaction (and per restart) from the caller's RNG.
    pub unpredictable_number: [u8; 4],
}

/// Pre-Processing Indicators of one combination (Book B §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Indicators {
    pub status_check_requested: bool,
    pub not_allowed: bool,
    pub zero_amount: bool,
    pub cvm_limit_exceeded: bool,
    pub floor_limit_exceeded: bool,
    /// Copy of TTQ.
    pub ttq: Option<Ttq>,
}

/// Book B §3.1.1.1-3.1.1.12 for one combination.
pub fn preprocess(c: &Combination, amount: Amount, exponent: u8) -> Indicators {
    // 3.1.1.1 indicators reset; 3.1.1.2 Copy of TTQ with byte 2 b8 and b7 cleared.
    let mut ind = Indicators {
        ttq: c.ttq.map(|mut t| {
            t.set_online_cryptogram_required(false);
            t.set_cvm_required(false);
            t
        }),
        ..Indicators::default()
    };
    // 3.1.1.3: status check on a single unit of currency.
    if c.status_check && amount.0 == 10u64.pow(u32::from(exponent)) {
        ind.status_check_requested = true;
    }
    // 3.1.1.4: zero amount.
    if amount.0 == 0 {
        if c.zero_amount_allowed {
            ind.zero_amount = true;
        } else {
            ind.not_allowed = true;
        }
    }
    // 3.1.1.5: at or above the transaction limit.
    if c.txn_limit.is_some_and(|l| amount >= l) {
        ind.not_allowed = true;
    }
    // 3.1.1.6 / 3.1.1.7: above the reader floor limit, or the terminal floor limit when absent.
    match (c.floor_limit, c.terminal_floor_limit) {
        (Some(l), _) | (None, Some(l)) if amount > l => ind.floor_limit_exceeded = true,
        _ => {}
    }
    // 3.1.1.8: at or above the CVM required limit.
    if c.cvm_limit.is_some_and(|l| amount >= l) {
        ind.cvm_limit_exceeded = true;
    }
    if let Some(t) = ind.ttq.as_mut() {
        // 3.1.1.9 and 3.1.1.10
        if ind.floor_limit_exceeded || ind.status_check_requested {
            t.set_online_cryptogram_required(true);
        }
        // 3.1.1.11: zero amount on an online-capable reader asks for a cryptogram; offline-only
        // readers cannot do it contactless.
        if ind.zero_amount {
            if t.offline_only() {
                ind.not_allowed = true;
            } else {
                t.set_online_cryptogram_required(true);
            }
        }
        // 3.1.1.12
        if ind.cvm_limit_exceeded {
            t.set_cvm_required(true);
        }
    }
    ind
}

/// One entry of the Candidate List (Book B §3.3.2.5 E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub adf_name: Vec<u8>,
    pub combination: usize,
    pub kernel: KernelId,
    pub priority: Option<u8>,
    pub extended_selection: Option<Vec<u8>>,
    pub label: Option<String>,
    /// Position in the PPSE (Book B §3.3.3.2 tie-break).
    pub order: usize,
}

/// A PPSE directory entry as the card gave it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryEntry {
    pub adf_name: Option<Vec<u8>>,
    pub label: Option<String>,
    pub priority: Option<u8>,
    pub kernel_id: Option<Vec<u8>>,
    pub extended_selection: Option<Vec<u8>>,
}

/// Parses the SELECT PPSE answer: `6F [84] [A5 [BF0C [61 …]*]]` (Book B §3.3.2). Malformed TLV
/// around the directory is an error; a directory entry whose own content does not parse (a
/// length running past the entry) is skipped and the others kept (Book B §3.3.2.5: each entry
/// is judged on its own, bullet A drops the ones without a usable ADF name); an entry with odd
/// content is returned as is and judged by the caller.
pub fn parse_ppse(fci: &[u8]) -> Result<Vec<DirectoryEntry>, tlv::TlvError> {
    let mut out = Vec::new();
    let Some(fci_t) = tlv::parse_all(fci)?.into_iter().find(|t| t.tag == tag::FCI_TEMPLATE) else {
        return Ok(out);
    };
    let Some(a5) = tlv::parse_all(fci_t.value)?.into_iter().find(|t| t.tag == tag::FCI_PROPRIETARY) else {
        return Ok(out);
    };
    let Some(bf0c) = tlv::parse_all(a5.value)?.into_iter().find(|t| t.tag == tag::FCI_ISSUER_DISCRETIONARY) else {
        return Ok(out);
    };
    for e in tlv::parse_all(bf0c.value)? {
        if e.tag != tag::DIRECTORY_ENTRY {
            continue;
        }
        let mut d = DirectoryEntry::default();
        let Ok(fields) = tlv::parse_all(e.value) else { continue };
        for f in fields {
            match f.tag {
                t if t == tag::AID_CARD => d.adf_name = Some(f.value.to_vec()),
                t if t == tag::APPLICATION_LABEL => d.label = Some(String::from_utf8_lossy(f.value).into_owned()),
                t if t == tag::PRIORITY => d.priority = f.value.first().copied(),
                t if t == tag::KERNEL_IDENTIFIER => d.kernel_id = Some(f.value.to_vec()),
                t if t == tag::EXTENDED_SELECTION => d.extended_selection = Some(f.value.to_vec()),
                _ => {}
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// Book B §3.3.2.5 C: the Requested Kernel ID of a directory entry. `Ok(None)` = use the AID's
/// default; `Err(())` = skip the entry.
fn requested_kernel(entry: &DirectoryEntry) -> Result<Option<u8>, ()> {
    match entry.kernel_id.as_deref() {
        None | Some([]) => Ok(None),
        Some(k) if k[0] & 0xC0 < 0x80 => Ok(Some(k[0])),
        // b8b7 = 10 or 11: an international or domestic extended kernel id, at least 3 bytes.
        Some(k) if k.len() < 3 => Err(()),
        // Extended kernel ids name kernels we do not implement: treat as unsupported.
        Some(_) => Err(()),
    }
}

/// Book B §3.3.2.5: the candidate list from the PPSE entries and the allowed combinations.
pub fn build_candidates(entries: &[DirectoryEntry], combos: &[Combination], ind: &[Indicators]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (ci, c) in combos.iter().enumerate() {
        if ind.get(ci).is_none_or(|i| i.not_allowed) {
            continue;
        }
        // A kernel this reader does not implement (not in the registry; configuration
        // refuses it) supports no application.
        if kernel::registration(c.kernel).is_none() {
            continue;
        }
        for (order, e) in entries.iter().enumerate() {
            // A: ADF name present and 5-16 bytes (Book 1 §12.2.1).
            let Some(adf) = e.adf_name.as_ref().filter(|a| (5..=16).contains(&a.len())) else { continue };
            // B: full or partial (prefix) match with the combination's AID.
            if !adf.starts_with(&c.aid) {
                continue;
            }
            // C and D: requested kernel id equals the combination's (0 = any).
            let requested = match requested_kernel(e) {
                Ok(Some(k)) => k,
                Ok(None) => default_kernel_for_rid(adf).unwrap_or(0),
                Err(()) => continue,
            };
            if requested != 0 && requested != c.kernel.id() {
                continue;
            }
            // E
            out.push(Candidate {
                adf_name: adf.clone(),
                combination: ci,
                kernel: c.kernel,
                priority: e.priority.map(|p| p & 0x0F).filter(|p| *p != 0),
                extended_selection: e.extended_selection.clone(),
                label: e.label.clone(),
                order,
            });
        }
    }
    out
}

/// Book B §3.3.3.2: the highest priority (1 = highest; 0 or absent = lowest), ties to the first
/// in PPSE order.
pub fn select_candidate(c: &[Candidate]) -> Option<usize> {
    (0..c.len()).min_by_key(|&i| (c[i].priority.unwrap_or(16), c[i].order, c[i].combination))
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this C-APDU to the card and feed back the answer.
    Transmit(CApdu),
    /// Card read complete (UI 0x17): the card may be removed; call [`EntryPoint::resume`].
    CardReadComplete(UiRequest),
    /// Final outcome for this tap.
    Done(Outcome),
}

/// What happened at the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Response(RApdu),
    /// Book D transmission, protocol or time-out error.
    CommError,
    /// The card left the field before the kernel finished with it.
    CardRemoved,
}

enum State {
    Idle,
    AwaitPpse,
    AwaitFinalSelect(Candidate),
    InKernel(Box<dyn Kernel>),
    ReadComplete(Box<dyn Kernel>),
    Finished,
}

/// The Entry Point of one transaction (across restarts).
pub struct EntryPoint {
    cfg: Arc<EntryPointConfig>,
    capks: Arc<CapkStore>,
    txn: Transaction,
    indicators: Vec<Indicators>,
    candidates: Vec<Candidate>,
    state: State,
    /// Book B §3.2.1.2: UI to show when restarting, retained from the last outcome.
    pub restart_ui: Option<UiRequest>,
    summary: Summary,
    /// Number of Entry Point (re)starts at B, i.e. taps.
    pub taps: u32,
}

impl EntryPoint {
    pub fn new(cfg: Arc<EntryPointConfig>, capks: Arc<CapkStore>, txn: Transaction) -> Self {
        EntryPoint { cfg, capks, txn, indicators: vec![], candidates: vec![], state: State::Idle, restart_ui: None, summary: Summary::default(), taps: 0 }
    }

    pub fn transaction(&self) -> &Transaction {
        &self.txn
    }

    /// What the kernel learned so far (AID, kernel, PAN, ODA, TVR...).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Start A: pre-processing, then protocol activation (the caller already has a card, or polls
    /// for one before feeding the first answer). Returns Done without touching the card when no
    /// combination allows the amount (Book B §3.1.1.13).
    pub fn start(&mut self) -> Action {
        let exp = self.cfg.terminal.currency_exponent;
        self.indicators = self.cfg.combinations.iter().map(|c| preprocess(c, self.txn.amount, exp)).collect();
        if self.indicators.iter().all(|i| i.not_allowed) {
            // 3.1.1.13
            self.state = State::Finished;
            let mut o = Outcome::new(Status::TryAnotherInterface, "amount not allowed contactless (transaction limit or zero amount)")
                .ui(UiRequest::new(MessageId::InsertOrSwipe, UiStatus::ProcessingError));
            o.alternate_interface = None;
            return Action::Done(o);
        }
        self.start_b()
    }

    /// Start B after a Try Again outcome: a new tap, a fresh unpredictable number.
    pub fn restart_b(&mut self, unpredictable_number: [u8; 4]) -> Action {
        self.txn.unpredictable_number = unpredictable_number;
        self.start_b()
    }

    fn start_b(&mut self) -> Action {
        // 3.2.1.1: candidate list cleared at Start B.
        self.candidates.clear();
        self.taps += 1;
        self.summary = Summary::default();
        self.state = State::AwaitPpse;
        Action::Transmit(CApdu::select(PPSE_NAME))
    }

    /// Feed what the reader saw.
    pub fn handle(&mut self, ev: Event) -> Action {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let r = match ev {
            Event::Response(r) => r,
            // 3.3.3.7: communication errors before the kernel → Start B. In the kernel, removal
            // or an error is a Try Again as well (Book C-3 §5.1: transmission error → Try Again).
            Event::CommError | Event::CardRemoved => {
                return match state {
                    State::ReadComplete(k) => {
                        // The card may leave now: nothing is lost.
                        self.state = State::ReadComplete(k);
                        self.resume()
                    }
                    _ => self.finish(Outcome::try_again("card left the field or did not answer")),
                };
            }
        };
        match state {
            State::AwaitPpse => self.on_ppse(r),
            State::AwaitFinalSelect(c) => self.on_final_select(c, r),
            State::InKernel(mut k) => {
                let step = k.on_response(r);
                self.after_kernel_step(k, step)
            }
            State::Idle | State::ReadComplete(_) | State::Finished => self.finish(Outcome::end_application("unexpected card response")),
        }
    }

    /// Continue after [`Action::CardReadComplete`]: offline processing without the card.
    pub fn resume(&mut self) -> Action {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ReadComplete(mut k) => {
                let o = k.complete(&self.capks);
                self.summary = k.summary().clone();
                self.finish(o)
            }
            _ => self.finish(Outcome::end_application("resume without a card read")),
        }
    }

    fn on_ppse(&mut self, r: RApdu) -> Action {
        // 3.3.2.3 / 3.3.2.4: no PPSE or no directory entry → no candidates.
        let entries = if r.is_ok() { parse_ppse(&r.data).unwrap_or_default() } else { vec![] };
        self.candidates = build_candidates(&entries, &self.cfg.combinations, &self.indicators);
        self.final_selection()
    }

    /// 3.3.2.6 / 3.3.2.7 / 3.3.3: pick and SELECT the best candidate, or End Application.
    fn final_selection(&mut self) -> Action {
        let Some(i) = select_candidate(&self.candidates) else {
            return self.finish(Outcome::end_application("no supported application on the card"));
        };
        let c = self.candidates[i].clone();
        let mut name = c.adf_name.clone();
        // 3.3.3.3: extended selection appended when both sides support it.
        if let Some(ext) = &c.extended_selection {
            if self.cfg.combinations[c.combination].extended_selection {
                name.extend_from_slice(ext);
            }
        }
        self.state = State::AwaitFinalSelect(c);
        Action::Transmit(CApdu::select(&name))
    }

    fn drop_candidate(&mut self, c: &Candidate) {
        self.candidates.retain(|x| !(x.adf_name == c.adf_name && x.combination == c.combination));
    }

    fn on_final_select(&mut self, c: Candidate, r: RApdu) -> Action {
        // 3.3.3.5: SELECT failed → remove and back to Start C.
        if !r.is_ok() {
            self.drop_candidate(&c);
            return self.final_selection();
        }
        // The kernel's own look at the FCI (C-3: Book B 3.3.3.6, a Visa AID whose PDOL lacks
        // 9F66 is not qVSDC): a kernel that cannot run this application → remove, Start C.
        let Some(reg) = kernel::registration(c.kernel).filter(|reg| (reg.accepts_fci)(&c, &r.data)) else {
            self.drop_candidate(&c);
            return self.final_selection();
        };
        // 3.4: kernel activation with the indicators and the FCI.
        let a = Activation {
            candidate: &c,
            combination: &self.cfg.combinations[c.combination],
            indicators: self.indicators[c.combination],
            terminal: &self.cfg.terminal,
            txn: &self.txn,
            fci: &r.data,
        };
        let (k, step) = (reg.activate)(&a);
        self.after_kernel_step(k, step)
    }

    fn after_kernel_step(&mut self, k: Box<dyn Kernel>, step: KernelStep) -> Action {
        self.summary = k.summary().clone();
        match step {
            KernelStep::Transmit(c) => {
                self.state = State::InKernel(k);
                Action::Transmit(c)
            }
            KernelStep::CardReadComplete => {
                self.state = State::ReadComplete(k);
                Action::CardReadComplete(UiRequest::new(MessageId::CardReadOk, UiStatus::CardReadSuccessfully))
            }
            KernelStep::Outcome(o) if o.status == Status::SelectNext => {
                // 3.5.1.4: Select Next → drop the combination, Start C.
                let sel = self.candidates.iter().find(|c| Some(&c.adf_name) == self.summary.aid.as_ref()).cloned();
                if let Some(c) = sel {
                    self.drop_candidate(&c);
                }
                self.final_selection()
            }
            KernelStep::Outcome(o) => self.finish(o),
        }
    }

    /// 3.5: outcome processing. A restart keeps its UI for the next protocol activation.
    fn finish(&mut self, o: Outcome) -> Action {
        self.state = State::Finished;
        self.restart_ui = match o.start {
            Some(Start::B) => o.ui_on_restart.clone(),
            _ => None,
        };
        Action::Done(o)
    }
}

/// A tag list for reports: the data record's tags by name.
pub fn describe_record(record: &[u8]) -> Vec<(Tag, String)> {
    let mut out = vec![];
    let _ = tlv::walk_primitives(record, &mut |t| out.push((t.tag, tag::name(t.tag).to_string())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo(kernel: KernelId, aid: &[u8]) -> Combination {
        Combination {
            aid: aid.to_vec(),
            kernel,
            label: String::new(),
            txn_limit: Some(Amount(1_000_000)),
            floor_limit: Some(Amount(10_000)),
            terminal_floor_limit: None,
            cvm_limit: Some(Amount(30_000)),
            status_check: true,
            zero_amount_allowed: true,
            extended_selection: false,
            ttq: Some(Ttq([0x26, 0xC0, 0x40, 0x80])),
        }
    }
    const UP: &[u8] = &[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01];
    const VISA: &[u8] = &[0xA0, 0, 0, 0, 0x03, 0x10, 0x10];

    #[test]
    fn preprocessing_clears_configured_ttq_bits_below_limits() {
        let i = preprocess(&combo(KernelId::C7, UP), Amount(500), 2);
        assert_eq!(i.ttq.unwrap().0, [0x26, 0x00, 0x40, 0x80]);
        assert!(!i.not_allowed && !i.floor_limit_exceeded && !i.cvm_limit_exceeded);
    }

    #[test]
    fn floor_limit_is_strictly_greater_3_1_1_6() {
        assert!(!preprocess(&combo(KernelId::C7, UP), Amount(10_000), 2).floor_limit_exceeded);
        let i = preprocess(&combo(KernelId::C7, UP), Amount(10_001), 2);
        assert!(i.floor_limit_exceeded && i.ttq.unwrap().online_cryptogram_required());
    }

    #[test]
    fn terminal_floor_limit_applies_when_reader_limit_absent_3_1_1_7() {
        let mut c = combo(KernelId::C7, UP);
        c.floor_limit = None;
        c.terminal_floor_limit = Some(Amount(100));
        assert!(preprocess(&c, Amount(101), 2).floor_limit_exceeded);
    }

    #[test]
    fn cvm_limit_is_at_or_above_3_1_1_8() {
        let i = preprocess(&combo(KernelId::C7, UP), Amount(30_000), 2);
        assert!(i.cvm_limit_exceeded && i.ttq.unwrap().cvm_required());
        assert!(!preprocess(&combo(KernelId::C7, UP), Amount(29_999), 2).cvm_limit_exceeded);
    }

    #[test]
    fn transaction_limit_at_or_above_not_allowed_3_1_1_5() {
        assert!(preprocess(&combo(KernelId::C7, UP), Amount(1_000_000), 2).not_allowed);
        assert!(!preprocess(&combo(KernelId::C7, UP), Amount(999_999), 2).not_allowed);
    }

    #[test]
    fn status_check_on_one_unit_asks_online_3_1_1_3() {
        let i = preprocess(&combo(KernelId::C7, UP), Amount(100), 2);
        assert!(i.status_check_requested && i.ttq.unwrap().online_cryptogram_required());
    }

    #[test]
    fn zero_amount_rules_3_1_1_4_and_11() {
        let mut c = combo(KernelId::C7, UP);
        let i = preprocess(&c, Amount(0), 2);
        assert!(i.zero_amount && i.ttq.unwrap().online_cryptogram_required());
        c.zero_amount_allowed = false;
        assert!(preprocess(&c, Amount(0), 2).not_allowed);
        c.zero_amount_allowed = true;
        c.ttq = Some(Ttq([0x2E, 0, 0x40, 0])); // offline-only reader
        assert!(preprocess(&c, Amount(0), 2).not_allowed);
    }

    fn entry(aid: &[u8], prio: Option<u8>, kid: Option<&[u8]>) -> DirectoryEntry {
        DirectoryEntry { adf_name: Some(aid.to_vec()), priority: prio, kernel_id: kid.map(|k| k.to_vec()), ..Default::default() }
    }

    #[test]
    fn candidates_match_prefix_and_kernel_3_3_2_5() {
        let combos = vec![combo(KernelId::C7, &UP[..7]), combo(KernelId::C3, VISA)];
        let ind = vec![Indicators::default(); 2];
        let e = vec![
            entry(UP, Some(1), None),                           // partial match, default kernel 7
            entry(VISA, Some(2), Some(&[0x07])),                // asks kernel 7 but configured 3: skipped
            entry(&[0xA0, 0, 0, 0, 4, 0x10, 0x10], None, None), // not configured
            entry(&[0xA0, 0, 0], None, None),                   // malformed ADF name
            entry(VISA, None, Some(&[0x83, 0x01])),             // extended kernel id too short: skipped
        ];
        let c = build_candidates(&e, &combos, &ind);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].kernel, c[0].order), (KernelId::C7, 0));
    }

    #[test]
    fn not_allowed_combination_adds_no_candidate() {
        let combos = vec![combo(KernelId::C7, UP)];
        let ind = vec![Indicators { not_allowed: true, ..Default::default() }];
        assert!(build_candidates(&[entry(UP, None, None)], &combos, &ind).is_empty());
    }

    #[test]
    fn priority_one_wins_zero_is_lowest_ties_by_order_3_3_3_2() {
        let mk = |p: Option<u8>, order| Candidate {
            adf_name: UP.to_vec(),
            combination: 0,
            kernel: KernelId::C7,
            priority: p,
            extended_selection: None,
            label: None,
            order,
        };
        assert_eq!(select_candidate(&[mk(None, 0), mk(Some(2), 1), mk(Some(1), 2)]), Some(2));
        assert_eq!(select_candidate(&[mk(None, 0), mk(None, 1)]), Some(0));
        assert_eq!(select_candidate(&[mk(Some(3), 0), mk(Some(3), 1)]), Some(0));
        assert_eq!(select_candidate(&[]), None);
    }

    #[test]
    fn ppse_parse_reads_entries_and_rejects_bad_tlv() {
        let fci = hex::decode("6F2D840E325041592E5359532E4444463031A51BBF0C1861164F07A0000000031010500B56495341204352454449549000").unwrap();
        let fci = &fci[..fci.len() - 2];
        let e = parse_ppse(fci).unwrap();
        assert_eq!(e[0].adf_name.as_deref(), Some(VISA));
        assert_eq!(e[0].label.as_deref(), Some("VISA CREDIT"));
        assert!(parse_ppse(&[0x6F, 0x05, 0xA5, 0x09]).is_err());
    }
}

#[cfg(test)]
mod ppse_entry_tests {
    use super::*;
    use crate::tlv::Builder;

    fn ppse(entries: &[Vec<u8>]) -> Vec<u8> {
        let dir = entries.iter().fold(Builder::new(), |b, e| b.raw(e));
        let a5 = Builder::new().raw(&dir.wrap(tag::FCI_ISSUER_DISCRETIONARY)).wrap(tag::FCI_PROPRIETARY);
        Builder::new().put(tag::DF_NAME, crate::apdu::PPSE_NAME).raw(&a5).wrap(tag::FCI_TEMPLATE)
    }

    #[test]
    fn an_entry_whose_content_does_not_parse_is_skipped_book_b_3_3_2_5() {
        let good = Builder::new().put(tag::AID_CARD, &[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01]).wrap(tag::DIRECTORY_ENTRY);
        // 61 05 ‖ 4F 08 A0 00 00: the ADF name's length runs past the entry.
        let overrun = vec![0x61, 0x05, 0x4F, 0x08, 0xA0, 0x00, 0x00];
        let e = parse_ppse(&ppse(&[overrun.clone(), good.clone()])).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].adf_name.as_deref(), Some(&[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01][..]));
        // Entries without 4F or with a 3-byte 4F parse, and are dropped later by bullet A.
        let no_adf = Builder::new().put(tag::APPLICATION_LABEL, b"X").wrap(tag::DIRECTORY_ENTRY);
        let short_adf = Builder::new().put(tag::AID_CARD, &[0xA0, 0, 0]).wrap(tag::DIRECTORY_ENTRY);
        let e = parse_ppse(&ppse(&[no_adf, short_adf, good, overrun])).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].adf_name.as_deref(), e[1].adf_name.as_ref().map(Vec::len)), (None, Some(3)));
    }
}
