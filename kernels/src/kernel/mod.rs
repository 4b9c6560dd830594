//! Kernels behind one trait, registered by kernel id.
//!
//! Entry Point (Book B §3.4) looks the selected combination's kernel up in [`REGISTRY`], lets it
//! look at the final SELECT answer ([`Registration::accepts_fci`]), activates it
//! ([`Registration::activate`]) and from then on only talks to the [`Kernel`] trait.
//!
//! - [`qvsdc`]: the "card decides in GPO" steps shared by C-3 and C-7 (REFERENCE.md §2.1,
//!   §2.13), written once over a small [`qvsdc::Policy`] of per-kernel hooks;
//! - [`c3`]: Visa qVSDC (Book C-3); [`c7`]: UnionPay QuickPass qPBOC/qUICS (Book C-7).
//!
//! A new kernel is a new module (its own [`Kernel`], or a [`qvsdc::Policy`] if it is of the
//! qVSDC family) plus one line in [`REGISTRY`]; the configuration accepts exactly the kernel
//! ids registered here.

pub mod c3;
pub mod c7;
pub mod qvsdc;

use crate::apdu::{CApdu, RApdu};
use crate::capk::CapkStore;
use crate::config::{Combination, KernelId, TerminalData};
use crate::dol::DataStore;
use crate::entry_point::{Candidate, Indicators, Transaction};
use crate::outcome::{OdaResult, Outcome};
use crate::types::{CryptogramType, Tvr};

pub use qvsdc::DATA_RECORD_TAGS;

/// What the kernel asks of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelStep {
    Transmit(CApdu),
    /// All card data read: signal "card read, remove card"; then call [`Kernel::complete`].
    CardReadComplete,
    Outcome(Outcome),
}

/// What the kernel learned, for reports, receipts and the journal (PAN in clear: mask it
/// before showing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub kernel: Option<KernelId>,
    pub aid: Option<Vec<u8>>,
    pub label: Option<String>,
    pub pan: Option<String>,
    pub pan_sequence: Option<u8>,
    pub par: Option<String>,
    pub expiry: Option<String>,
    pub oda: Option<OdaResult>,
    pub oda_error: Option<String>,
    pub tvr: Tvr,
    pub cryptogram_type: Option<CryptogramType>,
    pub cryptogram: Option<Vec<u8>>,
    pub atc: Option<u16>,
    /// 9F5D available offline spending amount, minor units.
    pub offline_balance: Option<u64>,
}

/// One kernel activation as Entry Point sees it (sans-IO: C-APDUs out, R-APDUs in).
///
/// `Send + Sync` so that an [`crate::entry_point::EntryPoint`] holding one stays `Send + Sync`.
pub trait Kernel: Send + Sync {
    /// The kernel this activation runs.
    fn id(&self) -> KernelId;
    /// Feed a card answer.
    fn on_response(&mut self, r: RApdu) -> KernelStep;
    /// Processing once the card may have left, after [`KernelStep::CardReadComplete`].
    fn complete(&mut self, capks: &CapkStore) -> Outcome;
    /// What the kernel learned so far.
    fn summary(&self) -> &Summary;
    /// The kernel's data store (terminal and card data).
    fn store(&self) -> &DataStore;
}

/// Everything Book B §3.4 hands a kernel at activation.
#[derive(Debug, Clone, Copy)]
pub struct Activation<'a> {
    pub candidate: &'a Candidate,
    pub combination: &'a Combination,
    /// The combination's Pre-Processing Indicators (Book B §3.1.1), Copy of TTQ included.
    pub indicators: Indicators,
    pub terminal: &'a TerminalData,
    pub txn: &'a Transaction,
    /// The final SELECT answer (FCI), without the status word.
    pub fci: &'a [u8],
}

/// A kernel as the registry knows it.
#[derive(Clone, Copy)]
pub struct Registration {
    pub id: KernelId,
    /// Looks at the final SELECT answer before activation; `false` = this kernel cannot run
    /// this application: Entry Point removes the combination and goes back to Start C.
    pub accepts_fci: fn(&Candidate, &[u8]) -> bool,
    /// Book B §3.4 kernel activation: the kernel and its first step.
    pub activate: fn(&Activation<'_>) -> (Box<dyn Kernel>, KernelStep),
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The kernels this crate implements, one line each.
pub const REGISTRY: &[Registration] = &[c3::REGISTRATION, c7::REGISTRATION];

/// The registry entry of kernel `id`, if it is implemented.
pub fn registration(id: KernelId) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.id == id)
}

/// Activates kernel `id` (Book B §3.4); `None` if no such kernel is registered.
pub fn activate(id: KernelId, a: &Activation<'_>) -> Option<(Box<dyn Kernel>, KernelStep)> {
    registration(id).map(|r| (r.activate)(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CombinationToml;
    use crate::types::{Amount, EmvDate, Ttq};

    #[test]
    fn registry_has_one_entry_per_kernel_id() {
        for (i, r) in REGISTRY.iter().enumerate() {
            assert!(REGISTRY[..i].iter().all(|o| o.id != r.id), "{:?} registered twice", r.id);
            assert_eq!(KernelId::from_u8(r.id.id()), Some(r.id));
        }
    }

    #[test]
    fn every_kernel_id_the_config_accepts_is_registered() {
        let toml = |k: u8| CombinationToml {
            aid: "A000000333010101".into(),
            kernel: k,
            label: String::new(),
            txn_limit: None,
            floor_limit: None,
            terminal_floor_limit: None,
            cvm_limit: None,
            status_check: false,
            zero_amount_allowed: true,
            extended_selection: false,
            ttq: None,
        };
        let mut accepted = vec![];
        for k in 0..=u8::MAX {
            match toml(k).build(2) {
                Ok(c) => {
                    assert!(registration(c.kernel).is_some(), "config accepts kernel {k} but the registry has no entry for it");
                    accepted.push(c.kernel);
                }
                Err(e) => assert!(e.problem.contains("is not implemented (3 and 7 are)"), "{e}"),
            }
        }
        // ...and every registered kernel can be configured.
        assert_eq!(accepted, REGISTRY.iter().map(|r| r.id).collect::<Vec<_>>());
    }

    /// The registry hands out each kernel's own rules: the same Visa AID and the same FCI
    /// (PDOL without 9F66) are refused by C-3 (Book B 3.3.3.6) and accepted by C-7.
    #[test]
    fn registry_entries_carry_their_kernels_rules() {
        use crate::tag;
        use crate::tlv::Builder;
        let visa = [0xA0, 0, 0, 0, 0x03, 0x10, 0x10];
        let a5 = Builder::new().put(tag::PDOL, &[0x9F, 0x02, 6]).wrap(tag::FCI_PROPRIETARY);
        let fci = Builder::new().put(tag::DF_NAME, &visa).raw(&a5).wrap(tag::FCI_TEMPLATE);
        let accepts = |id| {
            let c = Candidate { adf_name: visa.to_vec(), combination: 0, kernel: id, priority: None, extended_selection: None, label: None, order: 0 };
            (registration(id).unwrap().accepts_fci)(&c, &fci)
        };
        assert!(!accepts(KernelId::C3));
        assert!(accepts(KernelId::C7));
    }

    fn activation_for(id: KernelId, aid: &[u8], run: impl FnOnce(&Activation<'_>)) {
        let cand = Candidate { adf_name: aid.to_vec(), combination: 0, kernel: id, priority: None, extended_selection: None, label: None, order: 0 };
        let combo = Combination {
            aid: aid.to_vec(),
            kernel: id,
            label: String::new(),
            txn_limit: None,
            floor_limit: None,
            terminal_floor_limit: None,
            cvm_limit: None,
            status_check: false,
            zero_amount_allowed: true,
            extended_selection: false,
            ttq: Some(Ttq([0x26, 0, 0x40, 0x80])),
        };
        let term = TerminalData {
            country: [0x01, 0x56],
            currency: [0x01, 0x56],
            currency_exponent: 2,
            terminal_type: 0x22,
            capabilities: [0xE0, 0xE1, 0xC8],
            additional_capabilities: [0x60, 0, 0xF0, 0xA0, 0x01],
            terminal_id: "SHF00001".into(),
            merchant_name_location: "TEST".into(),
            online_capable: true,
        };
        let txn = Transaction { amount: Amount(100), amount_other: None, txn_type: 0, date: EmvDate(261125), time: [0; 3], unpredictable_number: [0; 4] };
        run(&Activation { candidate: &cand, combination: &combo, indicators: Indicators::default(), terminal: &term, txn: &txn, fci: &[] });
    }

    #[test]
    fn activate_runs_the_registered_kernel() {
        for r in REGISTRY {
            activation_for(r.id, &[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01], |a| {
                let (k, step) = activate(r.id, a).unwrap();
                assert_eq!(k.id(), r.id);
                assert_eq!(k.summary().kernel, Some(r.id));
                assert!(matches!(step, KernelStep::Transmit(c) if c.ins == 0xA8), "first step is GPO");
            });
        }
        activation_for(KernelId::C2, &[0xA0, 0, 0, 0, 0x04, 0x10, 0x10], |a| assert!(activate(KernelId::C2, a).is_none()));
    }
}
