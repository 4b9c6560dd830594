//! Kernel C-3: Visa qVSDC (Book C-3). The steps are the [`qvsdc`] family's; the rules that are
//! Visa's own are here.

use super::qvsdc::{self, Policy};
use super::Registration;
use crate::config::KernelId;
use crate::dol::Dol;
use crate::entry_point::Candidate;
use crate::tag;
use crate::tlv;
use crate::types::CryptogramType;

/// The C-3 policy of the qVSDC steps.
#[derive(Debug, Clone, Copy)]
pub struct C3;

/// The registry line of kernel C-3.
pub const REGISTRATION: Registration = qvsdc::registration::<C3>();

/// Visa's RID.
const VISA_RID: [u8; 5] = [0xA0, 0, 0, 0, 0x03];

impl Policy for C3 {
    const ID: KernelId = KernelId::C3;

    /// Book B §3.3.3.6: a Visa AID on Kernel 3 whose PDOL lacks 9F66 is not qVSDC; we have no
    /// Kernel 1, so the combination is removed and selection goes on (Start C).
    fn accepts_fci(cand: &Candidate, fci: &[u8]) -> bool {
        if !cand.adf_name.starts_with(&VISA_RID) {
            return true;
        }
        let pdol = tlv::find(fci, tag::PDOL).ok().flatten();
        pdol.and_then(|p| Dol::parse(p).ok()).is_some_and(|d| d.contains(tag::TTQ))
    }

    /// C-3 §5.4.3.1: when the card omits the CID (9F27), as Visa cards do, the cryptogram type is
    /// read from the IAD by its Visa format (0/1/3: CVR byte 2; format 2 "1F…": CVR byte 1).
    fn cryptogram_type_without_cid(iad: Option<&[u8]>) -> CryptogramType {
        crate::iad::cryptogram_type_or_aac(crate::iad::IadScheme::Visa, iad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlv::Builder;

    fn fci(pdol: &[u8]) -> Vec<u8> {
        let a5 = Builder::new().put(tag::PDOL, pdol).wrap(tag::FCI_PROPRIETARY);
        Builder::new().put(tag::DF_NAME, &[0xA0, 0, 0, 0, 0x03, 0x10, 0x10]).raw(&a5).wrap(tag::FCI_TEMPLATE)
    }

    fn cand(aid: &[u8]) -> Candidate {
        Candidate { adf_name: aid.to_vec(), combination: 0, kernel: KernelId::C3, priority: None, extended_selection: None, label: None, order: 0 }
    }

    #[test]
    fn visa_aid_needs_ttq_in_pdol_book_b_3_3_3_6() {
        let visa = cand(&[0xA0, 0, 0, 0, 0x03, 0x10, 0x10]);
        assert!(C3::accepts_fci(&visa, &fci(&[0x9F, 0x66, 4, 0x9F, 0x02, 6])));
        assert!(!C3::accepts_fci(&visa, &fci(&[0x9F, 0x02, 6])));
        assert!(!C3::accepts_fci(&visa, &[]), "no PDOL at all");
        // Another RID configured on kernel 3 is not subject to the rule.
        assert!(C3::accepts_fci(&cand(&[0xA0, 0, 0, 0x03, 0x33, 0x01, 0x01, 0x01]), &fci(&[0x9F, 0x02, 6])));
    }

    #[test]
    fn cryptogram_type_from_visa_iad_c3_5_4_3_1() {
        assert_eq!(C3::cryptogram_type_without_cid(Some(&[0x06, 0x01, 0x0A, 0x03, 0x20, 0, 0])), CryptogramType::Arqc);
        assert_eq!(C3::cryptogram_type_without_cid(Some(&[0x06, 0x01, 0x0A, 0x03, 0x10, 0, 0])), CryptogramType::Tc);
        assert_eq!(C3::cryptogram_type_without_cid(Some(&[0x06, 0x01, 0x0A, 0x03, 0x00, 0, 0])), CryptogramType::Aac);
        assert_eq!(C3::cryptogram_type_without_cid(Some(&[0x06, 0x01])), CryptogramType::Aac);
        assert_eq!(C3::cryptogram_type_without_cid(None), CryptogramType::Aac);
        let mut f2 = vec![0x1F, 0x22, 0x01, 0x10];
        f2.resize(32, 0);
        assert_eq!(C3::cryptogram_type_without_cid(Some(&f2)), CryptogramType::Tc);
    }
}
