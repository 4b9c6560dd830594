//! Application cryptogram verification and ARPC, exactly as `test-cards/keys/issuers.toml`
//! documents: AC over 9F02 ‖ 9F03 ‖ 9F1A ‖ 95 ‖ 5F2A ‖ 9A ‖ 9C ‖ 9F37 ‖ 82 ‖ 9F36 (from DE 55)
//! then the whole IAD (`emv-csk`) or the CVR = IAD bytes 4-7 (`visa-cvn10`); ARPC method 1 with
//! the common session key (`emv-csk`) or the card master key (`visa-cvn10`).

use kernels::cryptogram::{self, CryptogramMethod};
use kernels::tag;
use kernels::tlv::{self, Tag};
use kernels::types::CryptogramType;
use test_cards::issuers::Issuer;

/// A cryptogram that verified: what the ARPC needs.
#[derive(Clone)]
pub(crate) struct Verified {
    /// The application cryptogram (9F26) as received.
    pub ac: [u8; 8],
    /// ARPC key: session key (EMV CSK) or card master key (Visa CVN 10).
    arpc_key: [u8; 16],
    /// The cryptogram type the card signed: from the CVR in the IAD, which the AC covers (9F27
    /// is not in the AC input, so anyone on the way can change or remove it). Always `Some`: an
    /// IAD that does not say, or a 9F27 that contradicts it, fails verification.
    pub cid_type: Option<CryptogramType>,
}

/// Why a cryptogram did not verify (for logs; never contains key or card data).
pub(crate) type Failure = &'static str;

fn fixed<const N: usize>(icc: &tlv::Index<'_>, t: Tag) -> Option<[u8; N]> {
    icc.get(t).and_then(|v| <[u8; N]>::try_from(v).ok())
}

/// Equal without an early exit on the first differing byte.
fn same(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies the AC of `icc` (DE 55, indexed) for the card `pan_digits` / `psn` (5F34 BCD byte).
pub(crate) fn verify(issuer: &Issuer, pan_digits: &str, psn: u8, icc: &tlv::Index<'_>) -> Result<Verified, Failure> {
    let ac: [u8; 8] = fixed(icc, tag::APPLICATION_CRYPTOGRAM).ok_or("9F26 missing or not 8 bytes")?;
    let atc: [u8; 2] = fixed(icc, tag::ATC).ok_or("9F36 missing or not 2 bytes")?;
    let iad = icc.get(tag::ISSUER_APP_DATA).ok_or("9F10 missing")?;
    let trailer = match issuer.method {
        CryptogramMethod::EmvCsk => iad,
        CryptogramMethod::VisaCvn10 => iad.get(3..7).ok_or("9F10 too short for a CVR")?,
    };
    let data = cryptogram::ac_input(|t| icc.get(t).map(<[u8]>::to_vec), trailer);
    let mk = cryptogram::icc_master_key_option_a(&issuer.imk_ac, pan_digits, psn);
    // The AC key is the ARPC key too (session key for EMV CSK, the MK for Visa CVN 10).
    let arpc_key = cryptogram::ac_key(issuer.method, &mk, atc);
    if !same(&cryptogram::ac_with_key(issuer.method, &arpc_key, &data), &ac) {
        return Err("cryptogram mismatch");
    }
    // The type the card signed, read only from bytes the AC covers: the whole IAD for EMV CSK
    // (its format byte included), the CVR (IAD bytes 3-6, cryptogram type in b6-b5 of IAD
    // byte 4) for Visa CVN 10 — whose format byte IAD[0] is not covered, so it does not choose
    // where the type is read. Unreadable: not verified (never 9F27 instead).
    let signed = match issuer.method {
        CryptogramMethod::EmvCsk => kernels::iad::cryptogram_type(kernels::iad::IadScheme::UnionPay, iad),
        CryptogramMethod::VisaCvn10 => trailer.get(1).map(|b| CryptogramType::from_cid(((b >> 4) & 0x03) << 6)),
    };
    let Some(signed) = signed else { return Err("the IAD does not say which cryptogram the card made") };
    if fixed::<1>(icc, tag::CID).is_some_and(|c| CryptogramType::from_cid(c[0]) != signed) || icc.get(tag::CID).is_some_and(|c| c.len() != 1) {
        return Err("9F27 contradicts the cryptogram type in the IAD");
    }
    Ok(Verified { ac, arpc_key, cid_type: Some(signed) })
}

impl Verified {
    /// Field 55 of the answer: `91` = ARPC ‖ ARC, ARC = the two ASCII characters of DE 39.
    pub fn issuer_authentication_data(&self, response_code: host_contract::ResponseCode) -> Vec<u8> {
        let rc = response_code.code().as_bytes();
        let arc = [rc[0], rc[1]];
        let arpc = cryptogram::arpc_method1(&self.arpc_key, &self.ac, arc);
        let mut value = arpc.to_vec();
        value.extend_from_slice(&arc);
        tlv::encode(tag::ISSUER_AUTH_DATA, &value)
    }
}
