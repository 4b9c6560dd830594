//! Kernel C-7: UnionPay QuickPass qPBOC/qUICS (Book C-7). The steps are the [`qvsdc`] family's;
//! C-7 states the same rules as C-3 for them (mandatory data: C-7 Annex A; the TTQ/CTQ CVM
//! table; fDDA as qPBOC), so its policy only says where it reads what C-3 reads.

use super::qvsdc::{self, Policy};
use super::Registration;
use crate::config::KernelId;
use crate::types::CryptogramType;

/// The C-7 policy of the qVSDC steps.
#[derive(Debug, Clone, Copy)]
pub struct C7;

/// The registry line of kernel C-7.
pub const REGISTRATION: Registration = qvsdc::registration::<C7>();

impl Policy for C7 {
    const ID: KernelId = KernelId::C7;

    // No look at the FCI before activation: Book B §3.3.3.6 is about Visa AIDs on Kernel 3.

    /// C-7 cards send 9F27; for one that does not, the cryptogram type is read from the UnionPay
    /// IAD (`07 ‖ DKI ‖ CVN ‖ 03 ‖ CVR`, CVR byte 2 b6-b5; layout unverified), as C-3 §5.4.3.1
    /// does from the Visa IAD.
    fn cryptogram_type_without_cid(iad: Option<&[u8]>) -> CryptogramType {
        crate::iad::cryptogram_type_or_aac(crate::iad::IadScheme::UnionPay, iad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry_point::Candidate;
    use crate::tag;
    use crate::tlv::Builder;

    #[test]
    fn any_fci_is_accepted_even_a_visa_aid_without_ttq() {
        let a5 = Builder::new().put(tag::PDOL, &[0x9F, 0x02, 6]).wrap(tag::FCI_PROPRIETARY);
        let fci = Builder::new().put(tag::DF_NAME, &[0xA0, 0, 0, 0, 0x03, 0x10, 0x10]).raw(&a5).wrap(tag::FCI_TEMPLATE);
        for aid in [&[0xA0, 0, 0, 0, 0x03, 0x10, 0x10][..], &[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01]] {
            let c = Candidate { adf_name: aid.to_vec(), combination: 0, kernel: KernelId::C7, priority: None, extended_selection: None, label: None, order: 0 };
            assert!(C7::accepts_fci(&c, &fci));
            assert!(C7::accepts_fci(&c, &[]));
        }
    }

    #[test]
    fn cryptogram_type_without_cid_reads_the_iad_cvr() {
        assert_eq!(C7::cryptogram_type_without_cid(Some(&[0x07, 0x01, 0x01, 0x03, 0x20, 0, 0, 0])), CryptogramType::Arqc);
        assert_eq!(C7::cryptogram_type_without_cid(Some(&[0x07, 0x01, 0x01, 0x03, 0x10, 0, 0, 1])), CryptogramType::Tc);
        // A Visa-shaped IAD (length 06) is not a UnionPay one: not read.
        assert_eq!(C7::cryptogram_type_without_cid(Some(&[0x06, 0x01, 0x0A, 0x03, 0x20, 0, 0])), CryptogramType::Aac);
        assert_eq!(C7::cryptogram_type_without_cid(None), CryptogramType::Aac);
    }
}
