//! fDDA, fast Dynamic Data Authentication (EMV Book 2 §5.3, §6.3, §6.4, §6.5; Book C-3 and C-7
//! fDDA). Byte layouts: `/work/shared/emv/REFERENCE.md` §3.
//!
//! The chain of trust is walked in three steps, each a public building block:
//! 1. [`recover_issuer_key`]: the CA public key opens the Issuer Public Key Certificate (90,
//!    format 02) and gives the issuer public key;
//! 2. [`recover_icc_key`]: the issuer key opens the ICC Public Key Certificate (9F46, format 04),
//!    whose hash also covers the static data to be authenticated, and gives the ICC public key;
//! 3. [`verify_sdad`]: the ICC key opens the Signed Dynamic Application Data (9F4B, format 05),
//!    whose hash covers the terminal dynamic data, and gives the ICC Dynamic Number (9F4C).
//!
//! "Opening" is the RSA public operation `X = S^e mod n` (`rsa` crate big integers); every
//! recovered block is `6A ‖ format ‖ … ‖ SHA-1 (20) ‖ BC`. Every check that fails has its own
//! [`OdaError`] so the terminal log says which one. The certification revocation list (Book 2
//! §6.3 step 10: RID ‖ CA index ‖ issuer certificate serial number) is an input: the serials the
//! terminal's list holds for the CA key in use ([`FddaInput::revoked_issuer_serials`]).

use crate::capk::{is_past, CaPublicKey};
use crate::types::{digits, EmvDate};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha1::{Digest, Sha1};
use std::fmt;

const HEADER: u8 = 0x6A;
const TRAILER: u8 = 0xBC;
const FORMAT_ISSUER_CERT: u8 = 0x02;
const FORMAT_ICC_CERT: u8 = 0x04;
const FORMAT_SDAD: u8 = 0x05;
/// Hash Algorithm Indicator 01 = SHA-1 (Book 2 Annex B2).
const HASH_SHA1: u8 = 0x01;
/// Public Key Algorithm Indicator 01 = RSA (Book 2 Annex B2).
const PK_RSA: u8 = 0x01;
const HASH_LEN: usize = 20;

/// Which public key a remainder belongs to (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLevel {
    Issuer,
    Icc,
}

impl fmt::Display for KeyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyLevel::Issuer => "issuer public key remainder (92)",
            KeyLevel::Icc => "ICC public key remainder (9F48)",
        })
    }
}

/// Why fDDA failed. One variant per check; messages never contain the PAN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OdaError {
    #[error("issuer public key certificate (90) is {got} bytes, CA public key modulus is {expected}")]
    IssuerCertLength { expected: usize, got: usize },
    #[error("issuer public key certificate (90) malformed: {0}")]
    IssuerCertFormat(&'static str),
    #[error("issuer public key certificate (90) hash does not match")]
    IssuerCertHash,
    #[error("issuer identifier {issuer_id} in certificate does not match the PAN's leading digits")]
    IssuerIdMismatch { issuer_id: String },
    #[error("issuer public key certificate (90) expired at end of MMYY {expiry} (transaction date {txn_date:06})")]
    IssuerCertExpired { expiry: String, txn_date: u32 },
    #[error("issuer public key certificate (90) serial {serial} is revoked (certification revocation list)")]
    IssuerCertRevoked { serial: String },
    #[error("unsupported {what} algorithm indicator {value:02X} in {object}")]
    UnsupportedAlgorithm { object: &'static str, what: &'static str, value: u8 },
    #[error("{key} missing: the public key needs {needed} more bytes than the certificate holds")]
    MissingRemainder { key: KeyLevel, needed: usize },
    #[error("{key} is {got} bytes, expected {expected}")]
    RemainderLength { key: KeyLevel, expected: usize, got: usize },
    #[error("ICC public key certificate (9F46) is {got} bytes, issuer public key modulus is {expected}")]
    IccCertLength { expected: usize, got: usize },
    #[error("ICC public key certificate (9F46) malformed: {0}")]
    IccCertFormat(&'static str),
    #[error("ICC public key certificate (9F46) hash does not match (certificate, remainder, exponent or static data altered)")]
    IccCertHash,
    #[error("PAN in ICC public key certificate does not match the application PAN (5A)")]
    IccPanMismatch,
    #[error("ICC public key certificate (9F46) expired at end of MMYY {expiry} (transaction date {txn_date:06})")]
    IccCertExpired { expiry: String, txn_date: u32 },
    #[error("signed dynamic application data (9F4B) is {got} bytes, ICC public key modulus is {expected}")]
    SdadLength { expected: usize, got: usize },
    #[error("signed dynamic application data (9F4B) malformed: {0}")]
    SdadFormat(&'static str),
    #[error("signed dynamic application data (9F4B) hash does not match (card or terminal dynamic data altered)")]
    SdadHash,
    #[error("RSA public key operation failed: {0}")]
    Rsa(String),
}

/// An RSA public key recovered from a certificate (or a CA key), big-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

impl PublicKey {
    /// The RSA public operation on a block as long as the modulus: `signed^e mod n`, returned
    /// left-padded to the modulus length. Errors if the key is not a valid RSA public key or
    /// the block is not smaller than the modulus.
    pub fn recover(&self, signed: &[u8]) -> Result<Vec<u8>, OdaError> {
        let key = RsaPublicKey::new(BigUint::from_bytes_be(&self.modulus), BigUint::from_bytes_be(&self.exponent)).map_err(|e| OdaError::Rsa(e.to_string()))?;
        let s = BigUint::from_bytes_be(signed);
        if &s >= key.n() {
            return Err(OdaError::Rsa("signed block is not smaller than the modulus".into()));
        }
        let bytes = pow_mod(&s, key.e(), key.n()).to_bytes_be();
        let mut out = vec![0u8; self.modulus.len().saturating_sub(bytes.len())];
        out.extend_from_slice(&bytes);
        Ok(out)
    }
}

/// `base^e mod n`. EMV public exponents are 3 or 2^16 + 1: for those, square-and-multiply with
/// plain reductions (two products for e = 3) costs a fraction of a Montgomery exponentiation,
/// whose set-up alone is a full-size division; larger exponents take the general path.
fn pow_mod(base: &BigUint, e: &BigUint, n: &BigUint) -> BigUint {
    let eb = e.to_bytes_be();
    if eb.len() > 4 {
        return base.modpow(e, n);
    }
    let small = eb.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b));
    let mut acc = BigUint::from(1u32) % n;
    for i in (0..u32::BITS - small.leading_zeros()).rev() {
        acc = (&acc * &acc) % n;
        if small >> i & 1 == 1 {
            acc = (&acc * base) % n;
        }
    }
    acc
}

impl From<&CaPublicKey> for PublicKey {
    fn from(k: &CaPublicKey) -> Self {
        PublicKey { modulus: k.modulus.clone(), exponent: k.exponent.clone() }
    }
}

/// Everything fDDA needs, as read from the card and built by the kernel.
#[derive(Clone, Copy)]
pub struct FddaInput<'a> {
    pub capk: &'a CaPublicKey,
    /// Value of 5A (cn, F-padded).
    pub pan: &'a [u8],
    /// 90
    pub issuer_cert: &'a [u8],
    /// 92
    pub issuer_remainder: Option<&'a [u8]>,
    /// 9F32
    pub issuer_exponent: &'a [u8],
    /// 9F46
    pub icc_cert: &'a [u8],
    /// 9F48
    pub icc_remainder: Option<&'a [u8]>,
    /// 9F47
    pub icc_exponent: &'a [u8],
    /// Static data to be authenticated (records flagged in the AFL, + AIP if 9F4A lists 82).
    pub static_data: &'a [u8],
    /// 9F4B
    pub sdad: &'a [u8],
    /// fDDA version 01: 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69; version 00: 9F37.
    pub terminal_dynamic_data: &'a [u8],
    /// 9A
    pub txn_date: EmvDate,
    /// Serial numbers of revoked issuer certificates listed for this CA key (RID + index).
    pub revoked_issuer_serials: &'a [[u8; 3]],
}

/// A successful fDDA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FddaOk {
    /// ICC Dynamic Number, 9F4C (2 to 8 bytes).
    pub icc_dynamic_number: Vec<u8>,
}

/// The whole chain: CA key → issuer key → ICC key → SDAD.
pub fn verify_fdda(input: &FddaInput) -> Result<FddaOk, OdaError> {
    let (issuer, serial) = open_issuer_cert(input.capk, input.issuer_cert, input.issuer_remainder, input.issuer_exponent, input.pan, input.txn_date)?;
    // Book 2 §6.3 step 10: RID ‖ CA index ‖ certificate serial number not on the revocation list.
    if input.revoked_issuer_serials.contains(&serial) {
        return Err(OdaError::IssuerCertRevoked { serial: hex::encode_upper(serial) });
    }
    let icc = recover_icc_key(&issuer, input.icc_cert, input.icc_remainder, input.icc_exponent, input.pan, input.static_data, input.txn_date)?;
    verify_sdad(&icc, input.sdad, input.terminal_dynamic_data)
}

/// Book 2 §6.3: retrieval of the issuer public key from 90 / 92 / 9F32 with the CA key (the
/// revocation list, step 10, is [`verify_fdda`]'s).
pub fn recover_issuer_key(
    capk: &CaPublicKey,
    cert: &[u8],
    remainder: Option<&[u8]>,
    exponent: &[u8],
    pan: &[u8],
    txn_date: EmvDate,
) -> Result<PublicKey, OdaError> {
    open_issuer_cert(capk, cert, remainder, exponent, pan, txn_date).map(|(k, _)| k)
}

/// [`recover_issuer_key`] that also gives the certificate serial number (3 bytes).
fn open_issuer_cert(
    capk: &CaPublicKey,
    cert: &[u8],
    remainder: Option<&[u8]>,
    exponent: &[u8],
    pan: &[u8],
    txn_date: EmvDate,
) -> Result<(PublicKey, [u8; 3]), OdaError> {
    let n = capk.modulus.len();
    // Step 1; 36 = header, format, id (4), date (2), serial (3), 2 algos, 2 lengths, hash, trailer.
    if cert.len() != n || n < 36 {
        return Err(OdaError::IssuerCertLength { expected: n, got: cert.len() });
    }
    let x = PublicKey::from(capk).recover(cert)?;
    // Steps 2-4.
    check_frame(&x, FORMAT_ISSUER_CERT).map_err(OdaError::IssuerCertFormat)?;
    let (issuer_id, expiry, hash_algo, pk_algo) = (&x[2..6], &x[6..8], x[11], x[12]);
    let (pk_len, exp_len) = (usize::from(x[13]), usize::from(x[14]));
    let key_field = &x[15..n - HASH_LEN - 1];
    // Steps 5-7.
    if hash_algo != HASH_SHA1 {
        return Err(OdaError::UnsupportedAlgorithm { object: "issuer certificate", what: "hash", value: hash_algo });
    }
    let hash = Sha1::new().chain_update(&x[1..n - HASH_LEN - 1]).chain_update(remainder.unwrap_or_default()).chain_update(exponent).finalize();
    if hash.as_slice() != &x[n - HASH_LEN - 1..n - 1] {
        return Err(OdaError::IssuerCertHash);
    }
    // Step 8.
    if !issuer_id_matches(issuer_id, pan) {
        return Err(OdaError::IssuerIdMismatch { issuer_id: hex::encode_upper(issuer_id) });
    }
    // Step 9.
    let last_day = EmvDate::from_mmyy_end(expiry).ok_or(OdaError::IssuerCertFormat("certificate expiration date is not a valid MMYY"))?;
    if is_past(last_day, txn_date) {
        return Err(OdaError::IssuerCertExpired { expiry: hex::encode_upper(expiry), txn_date: txn_date.0 });
    }
    // Step 11.
    if pk_algo != PK_RSA {
        return Err(OdaError::UnsupportedAlgorithm { object: "issuer certificate", what: "public key", value: pk_algo });
    }
    if exp_len != exponent.len() {
        return Err(OdaError::IssuerCertFormat("issuer public key exponent length differs from 9F32"));
    }
    if pk_len == 0 {
        return Err(OdaError::IssuerCertFormat("issuer public key length is zero"));
    }
    // Step 12.
    let modulus = assemble_modulus(KeyLevel::Issuer, key_field, pk_len, remainder)?;
    let serial = [x[8], x[9], x[10]];
    Ok((PublicKey { modulus, exponent: exponent.to_vec() }, serial))
}

/// Book 2 §6.4: retrieval of the ICC public key from 9F46 / 9F48 / 9F47 with the issuer key.
/// `static_data` is the static data to be authenticated (records + AIP when 9F4A says so).
pub fn recover_icc_key(
    issuer: &PublicKey,
    cert: &[u8],
    remainder: Option<&[u8]>,
    exponent: &[u8],
    pan: &[u8],
    static_data: &[u8],
    txn_date: EmvDate,
) -> Result<PublicKey, OdaError> {
    let n = issuer.modulus.len();
    // 42 = header, format, PAN (10), date (2), serial (3), 2 algos, 2 lengths, hash, trailer.
    if cert.len() != n || n < 42 {
        return Err(OdaError::IccCertLength { expected: n, got: cert.len() });
    }
    let x = issuer.recover(cert)?;
    check_frame(&x, FORMAT_ICC_CERT).map_err(OdaError::IccCertFormat)?;
    let (cert_pan, expiry, hash_algo, pk_algo) = (&x[2..12], &x[12..14], x[17], x[18]);
    let (pk_len, exp_len) = (usize::from(x[19]), usize::from(x[20]));
    let key_field = &x[21..n - HASH_LEN - 1];
    if hash_algo != HASH_SHA1 {
        return Err(OdaError::UnsupportedAlgorithm { object: "ICC certificate", what: "hash", value: hash_algo });
    }
    let hash = Sha1::new()
        .chain_update(&x[1..n - HASH_LEN - 1])
        .chain_update(remainder.unwrap_or_default())
        .chain_update(exponent)
        .chain_update(static_data)
        .finalize();
    if hash.as_slice() != &x[n - HASH_LEN - 1..n - 1] {
        return Err(OdaError::IccCertHash);
    }
    if !pan_matches(cert_pan, pan) {
        return Err(OdaError::IccPanMismatch);
    }
    let last_day = EmvDate::from_mmyy_end(expiry).ok_or(OdaError::IccCertFormat("certificate expiration date is not a valid MMYY"))?;
    if is_past(last_day, txn_date) {
        return Err(OdaError::IccCertExpired { expiry: hex::encode_upper(expiry), txn_date: txn_date.0 });
    }
    if pk_algo != PK_RSA {
        return Err(OdaError::UnsupportedAlgorithm { object: "ICC certificate", what: "public key", value: pk_algo });
    }
    if exp_len != exponent.len() {
        return Err(OdaError::IccCertFormat("ICC public key exponent length differs from 9F47"));
    }
    if pk_len == 0 {
        return Err(OdaError::IccCertFormat("ICC public key length is zero"));
    }
    let modulus = assemble_modulus(KeyLevel::Icc, key_field, pk_len, remainder)?;
    Ok(PublicKey { modulus, exponent: exponent.to_vec() })
}

/// Book 2 §6.5.2 with fDDA's terminal dynamic data (version 01: 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69; 00: 9F37): checks 9F4B
/// and returns the ICC Dynamic Number.
pub fn verify_sdad(icc: &PublicKey, sdad: &[u8], terminal_dynamic_data: &[u8]) -> Result<FddaOk, OdaError> {
    let n = icc.modulus.len();
    // 25 = header, format, hash algo, L_DD, hash, trailer; ICC dynamic data needs at least 3.
    if sdad.len() != n || n < 28 {
        return Err(OdaError::SdadLength { expected: n, got: sdad.len() });
    }
    let x = icc.recover(sdad)?;
    check_frame(&x, FORMAT_SDAD).map_err(OdaError::SdadFormat)?;
    if x[2] != HASH_SHA1 {
        return Err(OdaError::UnsupportedAlgorithm { object: "SDAD", what: "hash", value: x[2] });
    }
    let hash = Sha1::new().chain_update(&x[1..n - HASH_LEN - 1]).chain_update(terminal_dynamic_data).finalize();
    if hash.as_slice() != &x[n - HASH_LEN - 1..n - 1] {
        return Err(OdaError::SdadHash);
    }
    let l_dd = usize::from(x[3]);
    if l_dd > n - 25 {
        return Err(OdaError::SdadFormat("ICC dynamic data length runs into the hash"));
    }
    let dynamic_data = &x[4..4 + l_dd];
    let (&idn_len, rest) = dynamic_data.split_first().ok_or(OdaError::SdadFormat("ICC dynamic data is empty"))?;
    let idn_len = usize::from(idn_len);
    if !(2..=8).contains(&idn_len) || idn_len > rest.len() {
        return Err(OdaError::SdadFormat("ICC dynamic number length is not 2 to 8 or exceeds the ICC dynamic data"));
    }
    Ok(FddaOk { icc_dynamic_number: rest[..idn_len].to_vec() })
}

/// Trailer, header and format of a recovered block (Book 2 steps 2-4), in that order.
fn check_frame(x: &[u8], format: u8) -> Result<(), &'static str> {
    if x.last() != Some(&TRAILER) {
        return Err("recovered data trailer is not BC");
    }
    if x.first() != Some(&HEADER) {
        return Err("recovered data header is not 6A");
    }
    if x.get(1) != Some(&format) {
        return Err(match format {
            FORMAT_ISSUER_CERT => "certificate format is not 02",
            FORMAT_ICC_CERT => "certificate format is not 04",
            _ => "signed data format is not 05",
        });
    }
    Ok(())
}

/// The leftmost `pk_len` bytes of the key field, completed by the remainder when the key is
/// longer than the field (Book 2 §6.3 step 12, §6.4 step 11). A remainder is refused when the
/// key fits in the certificate, and must have exactly the missing length otherwise.
fn assemble_modulus(key: KeyLevel, field: &[u8], pk_len: usize, remainder: Option<&[u8]>) -> Result<Vec<u8>, OdaError> {
    let remainder = remainder.unwrap_or_default();
    if pk_len <= field.len() {
        if !remainder.is_empty() {
            return Err(OdaError::RemainderLength { key, expected: 0, got: remainder.len() });
        }
        return Ok(field[..pk_len].to_vec());
    }
    let needed = pk_len - field.len();
    if remainder.is_empty() {
        return Err(OdaError::MissingRemainder { key, needed });
    }
    if remainder.len() != needed {
        return Err(OdaError::RemainderLength { key, expected: needed, got: remainder.len() });
    }
    let mut m = field.to_vec();
    m.extend_from_slice(remainder);
    Ok(m)
}

/// The nibbles of a cn field after its digits are all `F` padding.
fn only_f_padding_after(field: &[u8], n_digits: usize) -> bool {
    field.iter().flat_map(|b| [b >> 4, b & 0x0F]).skip(n_digits).all(|n| n == 0x0F)
}

/// Issuer Identifier (cn 4: leftmost 3 to 8 PAN digits, F-padded) against the PAN (Book 2
/// §6.3 step 8).
fn issuer_id_matches(issuer_id: &[u8], pan: &[u8]) -> bool {
    let id = digits(issuer_id);
    let pan = digits(pan);
    (3..=8).contains(&id.len()) && !id.contains('=') && !pan.contains('=') && only_f_padding_after(issuer_id, id.len()) && pan.starts_with(&id)
}

/// Application PAN in the ICC certificate (cn 10, F-padded) against 5A (Book 2 §6.4 step 8).
fn pan_matches(cert_pan: &[u8], pan: &[u8]) -> bool {
    let c = digits(cert_pan);
    !c.is_empty() && !c.contains('=') && only_f_padding_after(cert_pan, c.len()) && c == digits(pan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The small-exponent path gives what the general exponentiation gives.
    #[test]
    fn pow_mod_matches_modpow() {
        use proptest::prelude::*;
        proptest!(|(n in proptest::collection::vec(any::<u8>(), 1..40), b in proptest::collection::vec(any::<u8>(), 0..40), e in prop_oneof![Just(3u32), Just(65537u32), 0u32..70000, any::<u32>()])| {
            let n = BigUint::from_bytes_be(&n) | BigUint::from(1u32);
            let b = BigUint::from_bytes_be(&b);
            let e = BigUint::from(e);
            prop_assert_eq!(pow_mod(&b, &e, &n), b.modpow(&e, &n));
        });
    }
    use crate::capk::{tests::config_entries, CapkStore, KeyMode};

    // Vectors made once with the test-cards signer (test-cards/src/pki.rs,
    // `cargo test -p test-cards --lib print_kernels_oda_vectors -- --ignored --nocapture`) and
    // checked with an independent Python script (plain pow() + hashlib, written from the Book 2
    // layouts): CA = ca-unionpay-e1 (A000000333/E1, config/capk.toml), issuer-unionpay (1152 bits,
    // issuer id 623588FF, expiry 12/30, serial 000001), icc-unionpay-1 (1024 bits, PAN
    // 6235880000000012, expiry 12/28, serial 000002), IDN 1A2B3C4D5E6F7081.
    const ISSUER_CERT: &str = "90FFA17F0F37CB57BA46FA2136B666693ED418C0C36AB254077CBD0EACD12DF5F4F46AF30C8257B17086B0C77E1A97B5F735C8F8BF30E1E026C4FE7190504411B291630CBA631E4EFD3184DCE292D97B6F78949720F215ABB629EC7BF41E94AE2F637BF7E1C9F0A4F7BA7492E697558DDCFD7B0D20CB87F63342F419EF521E6900A47A3EF244A3974DA00B9354471114C788D0CAEFD9169D8289CB1E318F63BF22F5326E6D53D2A979DA6A2DE799D482";
    const ISSUER_REM: &str = "9A14FB47";
    const ICC_CERT: &str = "52128A4A02EA944A61C4322D1B740B36E14B4507B8A47E3EB612D0A5D9B07CD39B739607ECAF4E34163C5496F6E29A21F8DE5DA445C3D4A07180108B75A8ADEB99AABCAED6A5D9AB1358E282D3428594C6E695F0F47AFB89C0C1A52D5172412E7348430668E24C44086323FCBA0C9C0102A8D000C78EA1A06D38589A679B4F34867987FDE3F0D178E76EC99829811F2D";
    const ICC_REM: &str = "213E275E63CC378E652F3C5A19023C3E1E3B70A64C5FD50226DB";
    const SDAD: &str = "B322670662D275A6F8FDBF734F521F51ABB39F8408EFA7847D8FA6BB33EB9EE1B87B5801590276EEBEAD3CC9E579C7FA5E3E144994250D8E9E73A977048CB0663B07BA6F0843975354EF5D489E38FD4603A118563CFBD5D15B833A8CF850C3571F81FE0695BD1F63EA4726BE86C072D02D6BAF7D39DF7F789FE85FF44918F353";
    const STATIC: &str = "5A0862358800000000125F2403301231";
    const TERMINAL: &str = "12345678000000000100015601AABBCCDD8000";
    const PAN: [u8; 8] = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12];
    const TODAY: EmvDate = EmvDate(251125);

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn capk() -> CaPublicKey {
        let store = CapkStore::load(&config_entries(), KeyMode::Test).unwrap();
        store.get(&[0xA0, 0, 0, 0x03, 0x33], 0xE1, TODAY).unwrap().clone()
    }

    /// Owned card objects; `input()` borrows them.
    struct Objects {
        capk: CaPublicKey,
        pan: Vec<u8>,
        issuer_cert: Vec<u8>,
        issuer_rem: Vec<u8>,
        icc_cert: Vec<u8>,
        icc_rem: Vec<u8>,
        static_data: Vec<u8>,
        sdad: Vec<u8>,
        terminal: Vec<u8>,
        txn_date: EmvDate,
        revoked: Vec<[u8; 3]>,
    }

    impl Objects {
        fn new() -> Objects {
            Objects {
                capk: capk(),
                pan: PAN.to_vec(),
                issuer_cert: h(ISSUER_CERT),
                issuer_rem: h(ISSUER_REM),
                icc_cert: h(ICC_CERT),
                icc_rem: h(ICC_REM),
                static_data: h(STATIC),
                sdad: h(SDAD),
                terminal: h(TERMINAL),
                txn_date: TODAY,
                revoked: vec![],
            }
        }
        fn input(&self) -> FddaInput<'_> {
            FddaInput {
                capk: &self.capk,
                pan: &self.pan,
                issuer_cert: &self.issuer_cert,
                issuer_remainder: Some(&self.issuer_rem),
                issuer_exponent: &[0x03],
                icc_cert: &self.icc_cert,
                icc_remainder: Some(&self.icc_rem),
                icc_exponent: &[0x03],
                static_data: &self.static_data,
                sdad: &self.sdad,
                terminal_dynamic_data: &self.terminal,
                txn_date: self.txn_date,
                revoked_issuer_serials: &self.revoked,
            }
        }
        fn verify(&self) -> Result<FddaOk, OdaError> {
            verify_fdda(&self.input())
        }
    }

    #[test]
    fn valid_chain_gives_the_icc_dynamic_number() {
        let ok = Objects::new().verify().unwrap();
        assert_eq!(ok.icc_dynamic_number, [0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81]);
    }

    #[test]
    fn revoked_issuer_serial_fails_book2_6_3_step_10() {
        let mut o = Objects::new();
        o.revoked = vec![[0, 0, 2], [0xA1, 0, 0]];
        assert!(o.verify().is_ok(), "other serials listed");
        o.revoked.push([0, 0, 1]);
        assert_eq!(o.verify(), Err(OdaError::IssuerCertRevoked { serial: "000001".into() }));
        assert_eq!(o.verify().unwrap_err().to_string(), "issuer public key certificate (90) serial 000001 is revoked (certification revocation list)");
    }

    #[test]
    fn building_blocks_recover_the_keys() {
        let o = Objects::new();
        let issuer = recover_issuer_key(&o.capk, &o.issuer_cert, Some(&o.issuer_rem), &[3], &PAN, TODAY).unwrap();
        assert_eq!((issuer.modulus.len(), issuer.exponent.as_slice()), (144, &[3u8][..]));
        assert_eq!(&issuer.modulus[140..], o.issuer_rem.as_slice());
        let icc = recover_icc_key(&issuer, &o.icc_cert, Some(&o.icc_rem), &[3], &PAN, &o.static_data, TODAY).unwrap();
        assert_eq!(icc.modulus.len(), 128);
        assert!(verify_sdad(&icc, &o.sdad, &o.terminal).is_ok());
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let mut o = Objects::new();
        o.issuer_cert.pop();
        assert_eq!(o.verify(), Err(OdaError::IssuerCertLength { expected: 176, got: 175 }));
        let mut o = Objects::new();
        o.icc_cert.push(0);
        assert_eq!(o.verify(), Err(OdaError::IccCertLength { expected: 144, got: 145 }));
        let mut o = Objects::new();
        o.sdad.truncate(100);
        assert_eq!(o.verify(), Err(OdaError::SdadLength { expected: 128, got: 100 }));
    }

    #[test]
    fn altered_certificates_do_not_open() {
        let mut o = Objects::new();
        o.issuer_cert[50] ^= 0x01;
        assert!(matches!(o.verify(), Err(OdaError::IssuerCertFormat(_))));
        let mut o = Objects::new();
        o.icc_cert[50] ^= 0x01;
        assert!(matches!(o.verify(), Err(OdaError::IccCertFormat(_))));
        let mut o = Objects::new();
        o.sdad[50] ^= 0x01;
        assert!(matches!(o.verify(), Err(OdaError::SdadFormat(_))));
    }

    #[test]
    fn hashes_cover_remainders_exponents_static_and_terminal_data() {
        let mut o = Objects::new();
        o.issuer_rem[0] ^= 0x01;
        assert_eq!(o.verify(), Err(OdaError::IssuerCertHash));
        let mut o = Objects::new();
        o.icc_rem[0] ^= 0x01;
        assert_eq!(o.verify(), Err(OdaError::IccCertHash));
        let mut o = Objects::new();
        o.static_data[3] ^= 0x01;
        assert_eq!(o.verify(), Err(OdaError::IccCertHash));
        let mut o = Objects::new();
        o.terminal[0] ^= 0x01; // another unpredictable number
        assert_eq!(o.verify(), Err(OdaError::SdadHash));
        let o = Objects::new();
        let mut input = o.input();
        input.issuer_remainder = None;
        assert_eq!(verify_fdda(&input), Err(OdaError::IssuerCertHash));
        let mut input = o.input();
        input.icc_exponent = &[0x01, 0x00, 0x01];
        assert_eq!(verify_fdda(&input), Err(OdaError::IccCertHash));
    }

    #[test]
    fn pan_must_match_both_certificates() {
        let mut o = Objects::new();
        o.pan = vec![0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x13];
        assert_eq!(o.verify(), Err(OdaError::IccPanMismatch));
        o.pan = vec![0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12, 0x3F];
        assert_eq!(o.verify(), Err(OdaError::IccPanMismatch));
        o.pan = vec![0x62, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12];
        assert_eq!(o.verify(), Err(OdaError::IssuerIdMismatch { issuer_id: "623588FF".into() }));
        // Same digits, padded differently in 5A: still the same PAN.
        o.pan = vec![0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12, 0xFF];
        assert!(o.verify().is_ok());
    }

    #[test]
    fn expiry_is_end_of_month() {
        let mut o = Objects::new();
        o.txn_date = EmvDate(281231);
        assert!(o.verify().is_ok());
        o.txn_date = EmvDate(290101);
        assert_eq!(o.verify(), Err(OdaError::IccCertExpired { expiry: "1228".into(), txn_date: 290101 }));
        o.txn_date = EmvDate(310101);
        assert_eq!(o.verify(), Err(OdaError::IssuerCertExpired { expiry: "1230".into(), txn_date: 310101 }));
    }

    #[test]
    fn rsa_errors_are_errors_not_panics() {
        let mut o = Objects::new();
        o.issuer_cert = vec![0xFF; 176];
        assert!(matches!(o.verify(), Err(OdaError::Rsa(_))));
        let mut o = Objects::new();
        o.capk.exponent = vec![0x02];
        assert!(matches!(o.verify(), Err(OdaError::Rsa(_))));
        let key = PublicKey { modulus: vec![], exponent: vec![3] };
        assert!(matches!(verify_sdad(&key, &[], &[]), Err(OdaError::SdadLength { .. })));
    }

    #[test]
    fn remainder_rules() {
        let field = [0xAA; 10];
        assert_eq!(assemble_modulus(KeyLevel::Issuer, &field, 8, None), Ok(vec![0xAA; 8]));
        assert_eq!(assemble_modulus(KeyLevel::Issuer, &field, 8, Some(&[])), Ok(vec![0xAA; 8]));
        assert_eq!(assemble_modulus(KeyLevel::Issuer, &field, 8, Some(&[1])), Err(OdaError::RemainderLength { key: KeyLevel::Issuer, expected: 0, got: 1 }));
        assert_eq!(assemble_modulus(KeyLevel::Icc, &field, 12, None), Err(OdaError::MissingRemainder { key: KeyLevel::Icc, needed: 2 }));
        assert_eq!(assemble_modulus(KeyLevel::Icc, &field, 12, Some(&[1, 2, 3])), Err(OdaError::RemainderLength { key: KeyLevel::Icc, expected: 2, got: 3 }));
        let m = assemble_modulus(KeyLevel::Icc, &field, 12, Some(&[1, 2])).unwrap();
        assert_eq!(&m[10..], &[1, 2]);
        assert_eq!(
            OdaError::MissingRemainder { key: KeyLevel::Issuer, needed: 4 }.to_string(),
            "issuer public key remainder (92) missing: the public key needs 4 more bytes than the certificate holds"
        );
    }

    #[test]
    fn issuer_identifier_padding() {
        let pan = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12];
        assert!(issuer_id_matches(&[0x62, 0x35, 0x88, 0xFF], &pan));
        assert!(issuer_id_matches(&[0x62, 0x3F, 0xFF, 0xFF], &pan));
        assert!(issuer_id_matches(&[0x62, 0x35, 0x88, 0x00], &pan));
        assert!(!issuer_id_matches(&[0x62, 0xFF, 0xFF, 0xFF], &pan)); // fewer than 3 digits
        assert!(!issuer_id_matches(&[0x62, 0x35, 0xF8, 0xFF], &pan)); // digit after padding
        assert!(!issuer_id_matches(&[0x62, 0x35, 0x89, 0xFF], &pan));
        assert!(!issuer_id_matches(&[0x62, 0x35, 0x88, 0xFF], &[0x62, 0x35]));
        assert!(pan_matches(&[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12, 0xFF, 0xFF], &pan));
        assert!(!pan_matches(&[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12, 0xF1, 0xFF], &pan));
        assert!(!pan_matches(&[0xFF; 10], &[0xFF; 8]));
    }
}
