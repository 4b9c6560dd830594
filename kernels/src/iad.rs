//! The cryptogram type carried in the Issuer Application Data (9F10) when the card sends no
//! Cryptogram Information Data (9F27): C-3 §5.4.3.1 ("if the CID is not present, the reader
//! takes the cryptogram type from the IAD"), C-7 likewise. The IAD layout is the payment system's,
//! so it is read by its format, never at a fixed offset whatever the format.
//!
//! In every layout below the Card Verification Results (CVR) byte that carries the cryptogram
//! type codes it in bits b6-b5 ("AC type returned in the first GENERATE AC", which GPO is for
//! qVSDC / qPBOC): `00` AAC, `01` TC, `10` ARQC, `11` RFU (EMV Book 3 Annex C7.3 common core CVR;
//! REFERENCE §2.6). The Visa IAD formats follow the layouts printed by public EMV tools
//! (REFERENCE §2.6): **unverified** against the Visa specifications. The UnionPay layout (PBOC /
//! JR/T 0025.5 IAD: length 07, DKI, CVN, CVR with its length byte 03) is **unverified** as well.

use crate::types::CryptogramType;

/// How an IAD is laid out, as far as the cryptogram type is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IadFormat {
    /// Visa formats 0, 1 and 3: `len(06…) ‖ DKI ‖ CVN ‖ CVR (03 ‖ 3 bytes) ‖ …`; the AC type is
    /// in CVR byte 2 (IAD byte 5).
    VisaLengthPrefixedCvr,
    /// Visa format 2: `1F ‖ CVN ‖ DKI ‖ CVR (5 bytes, no length) ‖ IDD option ‖ IDD` (32 bytes);
    /// the AC type is in CVR byte 1 (IAD byte 4).
    Visa2,
    /// UnionPay (C-7): `07 ‖ DKI ‖ CVN ‖ CVR (03 ‖ 3 bytes) ‖ algorithm id …`; the AC type is in
    /// CVR byte 2 (IAD byte 5).
    UnionPay,
}

/// The payment system whose IAD a kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IadScheme {
    Visa,
    UnionPay,
}

/// Recognises the format of an IAD, or `None` when it is none this reader knows (too short,
/// inconsistent lengths).
pub fn format(scheme: IadScheme, iad: &[u8]) -> Option<IadFormat> {
    let (&len, _) = iad.split_first()?;
    match scheme {
        // Format 2: byte 1 = 1F (31 bytes of Visa discretionary data follow).
        IadScheme::Visa if len == 0x1F => (iad.len() >= 8).then_some(IadFormat::Visa2),
        // Formats 0/1/3: byte 1 = length of the Visa discretionary data (06 or more) and the
        // CVR starts with its own length byte 03.
        IadScheme::Visa => (len >= 0x06 && iad.len() >= 5 && iad.get(3) == Some(&0x03)).then_some(IadFormat::VisaLengthPrefixedCvr),
        IadScheme::UnionPay => (len >= 0x07 && iad.len() >= 5 && iad.get(3) == Some(&0x03)).then_some(IadFormat::UnionPay),
    }
}

/// The cryptogram type in the IAD of `scheme`, read where its format puts it; `None` when the
/// format is not recognised.
pub fn cryptogram_type(scheme: IadScheme, iad: &[u8]) -> Option<CryptogramType> {
    let cvr_byte = match format(scheme, iad)? {
        IadFormat::Visa2 => iad.get(3)?,
        IadFormat::VisaLengthPrefixedCvr | IadFormat::UnionPay => iad.get(4)?,
    };
    // b6-b5 moved to the CID's b8-b7.
    Some(CryptogramType::from_cid(((cvr_byte >> 4) & 0x03) << 6))
}

/// What a kernel concludes without 9F27: the IAD's cryptogram type, or AAC when there is no IAD
/// or its format is not recognised (the card's decision cannot be read: decline).
pub fn cryptogram_type_or_aac(scheme: IadScheme, iad: Option<&[u8]>) -> CryptogramType {
    iad.and_then(|i| cryptogram_type(scheme, i)).unwrap_or(CryptogramType::Aac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CryptogramType::*;

    fn visa_short(cvr2: u8) -> Vec<u8> {
        vec![0x06, 0x01, 0x0A, 0x03, cvr2, 0x00, 0x00]
    }

    fn visa2(cvr1: u8) -> Vec<u8> {
        let mut v = vec![0x1F, 0x22, 0x01, cvr1, 0x00, 0x00, 0x00, 0x00, 0x00];
        v.resize(32, 0x00);
        v
    }

    fn unionpay(cvr2: u8) -> Vec<u8> {
        vec![0x07, 0x01, 0x01, 0x03, cvr2, 0x00, 0x00, 0x01]
    }

    #[test]
    fn visa_formats_0_1_3_read_cvr_byte_2() {
        assert_eq!(format(IadScheme::Visa, &visa_short(0)), Some(IadFormat::VisaLengthPrefixedCvr));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa_short(0x00)), Some(Aac));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa_short(0x10)), Some(Tc));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa_short(0x20)), Some(Arqc));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa_short(0x30)), Some(Rfu));
        // Bits outside b6-b5 (2nd GENERATE AC type in b8-b7, PIN bits) do not count.
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa_short(0x9F)), Some(Tc));
        // The digest's trace: 06 01 11 03 90 00 00 → TC.
        assert_eq!(cryptogram_type(IadScheme::Visa, &[0x06, 0x01, 0x11, 0x03, 0x90, 0x00, 0x00]), Some(Tc));
    }

    #[test]
    fn visa_format_2_reads_cvr_byte_1() {
        assert_eq!(format(IadScheme::Visa, &visa2(0)), Some(IadFormat::Visa2));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa2(0x10)), Some(Tc));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa2(0x20)), Some(Arqc));
        assert_eq!(cryptogram_type(IadScheme::Visa, &visa2(0x00)), Some(Aac));
        // A TC in format 2 is not read at IAD byte 5 (a fixed offset would say AAC here).
        let mut v = visa2(0x10);
        v[4] = 0x00;
        assert_eq!(cryptogram_type(IadScheme::Visa, &v), Some(Tc));
        // Too short for its CVR.
        assert_eq!(format(IadScheme::Visa, &[0x1F, 0x22, 0x01, 0x10]), None);
    }

    #[test]
    fn unionpay_reads_cvr_byte_2() {
        assert_eq!(format(IadScheme::UnionPay, &unionpay(0)), Some(IadFormat::UnionPay));
        assert_eq!(cryptogram_type(IadScheme::UnionPay, &unionpay(0x10)), Some(Tc));
        assert_eq!(cryptogram_type(IadScheme::UnionPay, &unionpay(0x20)), Some(Arqc));
        assert_eq!(cryptogram_type(IadScheme::UnionPay, &unionpay(0x00)), Some(Aac));
        // The second GENERATE AC bits (b8-b7) are not the GPO's cryptogram.
        assert_eq!(cryptogram_type(IadScheme::UnionPay, &unionpay(0x40)), Some(Aac));
    }

    #[test]
    fn unknown_layouts_are_not_guessed() {
        assert_eq!(format(IadScheme::Visa, &[]), None);
        assert_eq!(format(IadScheme::Visa, &[0x06, 0x01, 0x0A]), None, "no CVR");
        assert_eq!(format(IadScheme::Visa, &[0x06, 0x01, 0x0A, 0x04, 0x10, 0, 0]), None, "CVR length byte is not 03");
        assert_eq!(format(IadScheme::Visa, &[0x05, 0x01, 0x0A, 0x03, 0x10, 0]), None, "length below 06");
        assert_eq!(format(IadScheme::UnionPay, &[0x06, 0x01, 0x01, 0x03, 0x10, 0, 0]), None, "length below 07");
        assert_eq!(format(IadScheme::UnionPay, &[0x07, 0x01, 0x01, 0x02, 0x10, 0, 0, 1]), None, "CVR length byte is not 03");
        assert_eq!(format(IadScheme::UnionPay, &[0x07, 0x01, 0x01, 0x03]), None, "no CVR byte");
        assert_eq!(cryptogram_type(IadScheme::UnionPay, &[0x1F, 0x22]), None);
        assert_eq!(cryptogram_type_or_aac(IadScheme::Visa, None), Aac);
        assert_eq!(cryptogram_type_or_aac(IadScheme::Visa, Some(&[0x01])), Aac);
        assert_eq!(cryptogram_type_or_aac(IadScheme::UnionPay, Some(&unionpay(0x20))), Arqc);
    }
}
