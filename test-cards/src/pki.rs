//! The signing side of the test PKI (TEST ONLY — the private keys in `keys/` are public).
//!
//! A project test CA certifies issuer keys (90/92/9F32, format 02), an issuer certifies ICC keys
//! (9F46/9F48/9F47, format 04), and the card signs its dynamic data for fDDA (9F4B, format 05).
//! Layouts: EMV Book 2 §5.3, §6.3-6.5 and `/work/shared/emv/REFERENCE.md` §3; the terminal side is
//! [`kernels::oda`]. The RSA private operation is the raw `m^d mod n` on a formatted block (the
//! EMV "signature with message recovery"), checked by re-applying the public exponent.

use kernels::capk::{CaPublicKey, KeyMode};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey};
use serde::Deserialize;
use sha1::{Digest, Sha1};

/// Why a key could not be loaded or a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("key file: {0}")]
    File(String),
    #[error("key {name}: field `{field}` is not valid hex")]
    Hex { name: String, field: &'static str },
    #[error("key {name}: {reason}")]
    BadKey { name: String, reason: String },
    #[error("no test key named {0:?}")]
    UnknownKey(String),
    #[error("block to sign is {got} bytes, modulus is {expected}")]
    BlockLength { expected: usize, got: usize },
    #[error("block to sign is not smaller than the modulus")]
    BlockTooLarge,
    #[error("{what} is {got} bytes; {limit}")]
    DataLength { what: &'static str, got: usize, limit: String },
    #[error("RSA private operation check failed")]
    Rsa,
}

/// One `[[key]]` table of `keys/*.toml`, all numbers big-endian hex.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RsaKeyFile {
    pub name: String,
    pub modulus: String,
    pub public_exponent: String,
    pub private_exponent: String,
    pub prime1: String,
    pub prime2: String,
}

#[derive(Deserialize)]
struct KeyFileSet {
    key: Vec<RsaKeyFile>,
}

/// The committed test key files (TEST ONLY).
const KEY_FILES: [(&str, &str); 3] = [
    ("keys/ca.toml", include_str!("../keys/ca.toml")),
    ("keys/issuers-rsa.toml", include_str!("../keys/issuers-rsa.toml")),
    ("keys/icc.toml", include_str!("../keys/icc.toml")),
];

/// The project test CAs: key name, RID, CA public key index (8F). Their public keys are in
/// `config/capk.toml`; E2 is listed there as revoked.
pub const TEST_CAS: [(&str, [u8; 5], u8); 3] = [
    ("ca-unionpay-e1", [0xA0, 0x00, 0x00, 0x03, 0x33], 0xE1),
    ("ca-visa-e1", [0xA0, 0x00, 0x00, 0x00, 0x03], 0xE1),
    ("ca-unionpay-e2", [0xA0, 0x00, 0x00, 0x03, 0x33], 0xE2),
];

/// A test RSA key pair.
#[derive(Debug, Clone)]
pub struct RsaKeyPair {
    name: String,
    key: RsaPrivateKey,
}

impl RsaKeyPair {
    /// Builds and validates (n = p·q, e·d ≡ 1) a key pair from its file entry.
    pub fn from_file(f: &RsaKeyFile) -> Result<RsaKeyPair, PkiError> {
        let num =
            |field: &'static str, s: &str| hex::decode(s.trim()).map(|b| BigUint::from_bytes_be(&b)).map_err(|_| PkiError::Hex { name: f.name.clone(), field });
        let n = num("modulus", &f.modulus)?;
        let e = num("public_exponent", &f.public_exponent)?;
        let d = num("private_exponent", &f.private_exponent)?;
        let p = num("prime1", &f.prime1)?;
        let q = num("prime2", &f.prime2)?;
        let key = RsaPrivateKey::from_components(n, e, d, vec![p, q]).map_err(|e| PkiError::BadKey { name: f.name.clone(), reason: e.to_string() })?;
        Ok(RsaKeyPair { name: f.name.clone(), key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Modulus, big-endian, without leading zero bytes.
    pub fn modulus(&self) -> Vec<u8> {
        self.key.n().to_bytes_be()
    }

    /// Public exponent, big-endian (`03` for all project keys).
    pub fn exponent(&self) -> Vec<u8> {
        self.key.e().to_bytes_be()
    }

    /// The public half as a terminal CA key (for tests that bypass `config/capk.toml`).
    pub fn ca_public_key(&self, rid: [u8; 5], index: u8) -> CaPublicKey {
        CaPublicKey { rid, index, modulus: self.modulus(), exponent: self.exponent(), expiry: None, revoked: false, mode: KeyMode::Test }
    }

    /// Raw RSA private operation `block^d mod n` on a block exactly as long as the modulus and
    /// smaller than it, checked by `result^e mod n == block`.
    pub fn sign_raw(&self, block: &[u8]) -> Result<Vec<u8>, PkiError> {
        let len = self.modulus().len();
        if block.len() != len {
            return Err(PkiError::BlockLength { expected: len, got: block.len() });
        }
        let m = BigUint::from_bytes_be(block);
        if &m >= self.key.n() {
            return Err(PkiError::BlockTooLarge);
        }
        let s = m.modpow(self.key.d(), self.key.n());
        if s.modpow(self.key.e(), self.key.n()) != m {
            return Err(PkiError::Rsa);
        }
        let bytes = s.to_bytes_be();
        let mut out = vec![0u8; len - bytes.len()];
        out.extend_from_slice(&bytes);
        Ok(out)
    }
}

fn parse_set(path: &str, text: &str) -> Result<Vec<RsaKeyFile>, PkiError> {
    toml::from_str::<KeyFileSet>(text).map(|s| s.key).map_err(|e| PkiError::File(format!("{path}: {e}")))
}

/// Every committed test key (CA, issuer, ICC), in file order.
pub fn builtin_keys() -> Result<Vec<RsaKeyPair>, PkiError> {
    let mut out = Vec::new();
    for (path, text) in KEY_FILES {
        for f in parse_set(path, text)? {
            out.push(RsaKeyPair::from_file(&f)?);
        }
    }
    Ok(out)
}

/// One committed test key by name, e.g. `key("issuer-unionpay")`.
pub fn key(name: &str) -> Result<RsaKeyPair, PkiError> {
    for (path, text) in KEY_FILES {
        if let Some(f) = parse_set(path, text)?.into_iter().find(|f| f.name == name) {
            return RsaKeyPair::from_file(&f);
        }
    }
    Err(PkiError::UnknownKey(name.to_string()))
}

/// Exponent length as one byte.
fn len_byte(what: &'static str, v: &[u8]) -> Result<u8, PkiError> {
    u8::try_from(v.len()).map_err(|_| PkiError::DataLength { what, got: v.len(), limit: "at most 255".into() })
}

/// Builds `6A ‖ head ‖ key field (+ BB) ‖ SHA-1 ‖ BC` of the signer's modulus length, the key field
/// holding the leftmost bytes of `subject_modulus`; returns (signature, remainder).
fn certificate(signer: &RsaKeyPair, head: &[u8], subject: &RsaKeyPair, hash_tail: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), PkiError> {
    let n = signer.modulus().len();
    let field_len =
        n.checked_sub(1 + head.len() + 21).ok_or(PkiError::DataLength { what: "signer modulus", got: n, limit: "too short for a certificate".into() })?;
    let modulus = subject.modulus();
    let (in_cert, remainder) = modulus.split_at(modulus.len().min(field_len));
    let mut x = Vec::with_capacity(n);
    x.push(0x6A);
    x.extend_from_slice(head);
    x.extend_from_slice(in_cert);
    x.resize(1 + head.len() + field_len, 0xBB);
    let remainder = (!remainder.is_empty()).then(|| remainder.to_vec());
    let hash = Sha1::new()
        .chain_update(&x[1..])
        .chain_update(remainder.as_deref().unwrap_or_default())
        .chain_update(subject.exponent())
        .chain_update(hash_tail)
        .finalize();
    x.extend_from_slice(&hash);
    x.push(0xBC);
    Ok((signer.sign_raw(&x)?, remainder))
}

/// Issuer Public Key Certificate (90), format 02, and the Issuer Public Key Remainder (92) when
/// the issuer modulus is longer than N_CA − 36. The exponent for 9F32 is `issuer.exponent()`.
/// `issuer_id`: leftmost 3-8 PAN digits, F-padded (e.g. `62 35 88 FF`).
pub fn issuer_certificate(
    ca: &RsaKeyPair,
    issuer: &RsaKeyPair,
    issuer_id: [u8; 4],
    expiry_mmyy: [u8; 2],
    serial: [u8; 3],
) -> Result<(Vec<u8>, Option<Vec<u8>>), PkiError> {
    let mut head = vec![0x02];
    head.extend_from_slice(&issuer_id);
    head.extend_from_slice(&expiry_mmyy);
    head.extend_from_slice(&serial);
    head.extend_from_slice(&[0x01, 0x01, len_byte("issuer modulus", &issuer.modulus())?, len_byte("issuer exponent", &issuer.exponent())?]);
    certificate(ca, &head, issuer, &[])
}

/// ICC Public Key Certificate (9F46), format 04, and the ICC Public Key Remainder (9F48) when
/// the ICC modulus is longer than N_I − 42. `pan` is the 5A value (F-padded to 10 bytes in the
/// certificate); the hash also covers `static_data` (the static data to be authenticated).
pub fn icc_certificate(
    issuer: &RsaKeyPair,
    icc: &RsaKeyPair,
    pan: &[u8],
    expiry_mmyy: [u8; 2],
    serial: [u8; 3],
    static_data: &[u8],
) -> Result<(Vec<u8>, Option<Vec<u8>>), PkiError> {
    if pan.is_empty() || pan.len() > 10 {
        return Err(PkiError::DataLength { what: "PAN (5A)", got: pan.len(), limit: "1 to 10 bytes".into() });
    }
    let mut head = vec![0x04];
    head.extend_from_slice(pan);
    head.resize(1 + 10, 0xFF);
    head.extend_from_slice(&expiry_mmyy);
    head.extend_from_slice(&serial);
    head.extend_from_slice(&[0x01, 0x01, len_byte("ICC modulus", &icc.modulus())?, len_byte("ICC exponent", &icc.exponent())?]);
    certificate(issuer, &head, icc, static_data)
}

/// Signed Dynamic Application Data (9F4B), format 05, for fDDA: ICC dynamic data =
/// `len(IDN) ‖ IDN`, BB padding, SHA-1 over format..padding ‖ `terminal_dynamic_data`
/// (fDDA version 01: 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69; version 00: 9F37).
pub fn sign_dynamic_data(icc: &RsaKeyPair, icc_dynamic_number: &[u8], terminal_dynamic_data: &[u8]) -> Result<Vec<u8>, PkiError> {
    if !(2..=8).contains(&icc_dynamic_number.len()) {
        return Err(PkiError::DataLength { what: "ICC dynamic number", got: icc_dynamic_number.len(), limit: "2 to 8 bytes".into() });
    }
    let n = icc.modulus().len();
    let l_dd = 1 + icc_dynamic_number.len();
    if n < 25 + l_dd {
        return Err(PkiError::DataLength { what: "ICC modulus", got: n, limit: "too short for the SDAD".into() });
    }
    let mut x = vec![0x6A, 0x05, 0x01, l_dd as u8, icc_dynamic_number.len() as u8];
    x.extend_from_slice(icc_dynamic_number);
    x.resize(n - 21, 0xBB);
    let hash = Sha1::new().chain_update(&x[1..]).chain_update(terminal_dynamic_data).finalize();
    x.extend_from_slice(&hash);
    x.push(0xBC);
    icc.sign_raw(&x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::capk::{CapkEntry, CapkError, CapkFile, CapkStore};
    use kernels::oda::{self, FddaInput, FddaOk, OdaError};
    use kernels::types::EmvDate;

    const PAN: [u8; 8] = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12];
    const UP_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x33];
    const TODAY: EmvDate = EmvDate(251125);
    const IDN: [u8; 8] = [0x1A, 0x2B, 0x3C, 0x4D, 0x5E, 0x6F, 0x70, 0x81];
    /// 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69.
    const TERMINAL_DATA: [u8; 19] = [0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x56, 0x01, 0xAA, 0xBB, 0xCC, 0xDD, 0x80, 0x00];
    /// Records 70 ... content + AIP, as the kernel would build it.
    const STATIC_DATA: [u8; 16] = [0x5A, 0x08, 0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x12, 0x5F, 0x24, 0x03, 0x30, 0x12, 0x31];

    fn store() -> CapkStore {
        let file: CapkFile = toml::from_str(include_str!("../../config/capk.toml")).unwrap();
        CapkStore::load(&file.capk, KeyMode::Test).unwrap()
    }

    /// A signed card: every object fDDA reads.
    struct Card {
        issuer_cert: Vec<u8>,
        issuer_rem: Option<Vec<u8>>,
        issuer_exp: Vec<u8>,
        icc_cert: Vec<u8>,
        icc_rem: Option<Vec<u8>>,
        icc_exp: Vec<u8>,
        sdad: Vec<u8>,
    }

    impl Card {
        fn input<'a>(&'a self, capk: &'a CaPublicKey, pan: &'a [u8]) -> FddaInput<'a> {
            FddaInput {
                capk,
                pan,
                issuer_cert: &self.issuer_cert,
                issuer_remainder: self.issuer_rem.as_deref(),
                issuer_exponent: &self.issuer_exp,
                icc_cert: &self.icc_cert,
                icc_remainder: self.icc_rem.as_deref(),
                icc_exponent: &self.icc_exp,
                static_data: &STATIC_DATA,
                sdad: &self.sdad,
                terminal_dynamic_data: &TERMINAL_DATA,
                txn_date: TODAY,
                revoked_issuer_serials: &[],
            }
        }
    }

    fn card(ca: &str, issuer_expiry: [u8; 2], icc_expiry: [u8; 2]) -> Card {
        let (ca, issuer, icc) = (key(ca).unwrap(), key("issuer-unionpay").unwrap(), key("icc-unionpay-1").unwrap());
        let (issuer_cert, issuer_rem) = issuer_certificate(&ca, &issuer, [0x62, 0x35, 0x88, 0xFF], issuer_expiry, [0, 0, 1]).unwrap();
        let (icc_cert, icc_rem) = icc_certificate(&issuer, &icc, &PAN, icc_expiry, [0, 0, 2], &STATIC_DATA).unwrap();
        let sdad = sign_dynamic_data(&icc, &IDN, &TERMINAL_DATA).unwrap();
        Card { issuer_cert, issuer_rem, issuer_exp: issuer.exponent(), icc_cert, icc_rem, icc_exp: icc.exponent(), sdad }
    }

    #[test]
    fn builtin_keys_load_and_are_the_documented_sizes() {
        let keys = builtin_keys().unwrap();
        assert_eq!(keys.len(), 16);
        for k in &keys {
            let bits = match k.name() {
                n if n.starts_with("ca-") => 1408,
                n if n.starts_with("issuer-") => 1152,
                _ => 1024,
            };
            assert_eq!((k.modulus().len() * 8, k.exponent()), (bits, vec![3]), "{}", k.name());
        }
        assert_eq!(key("nope").unwrap_err(), PkiError::UnknownKey("nope".into()));
    }

    #[test]
    fn config_capk_holds_the_project_ca_public_keys() {
        let s = store();
        for (name, rid, index) in TEST_CAS {
            let k = key(name).unwrap();
            let entry = s.iter().find(|c| c.rid == rid && c.index == index).unwrap();
            assert_eq!((&entry.modulus, &entry.exponent), (&k.modulus(), &k.exponent()), "{name}");
        }
        assert!(matches!(s.get(&UP_RID, 0xE2, TODAY), Err(CapkError::Revoked { .. })));
    }

    #[test]
    fn sign_raw_refuses_bad_blocks() {
        let k = key("icc-unionpay-1").unwrap();
        assert!(matches!(k.sign_raw(&[0x6A; 10]), Err(PkiError::BlockLength { expected: 128, got: 10 })));
        assert_eq!(k.sign_raw(&[0xFF; 128]), Err(PkiError::BlockTooLarge));
    }

    #[test]
    fn bad_key_file_is_an_error() {
        let mut f = RsaKeyFile {
            name: "x".into(),
            modulus: "0G".into(),
            public_exponent: "03".into(),
            private_exponent: "01".into(),
            prime1: "03".into(),
            prime2: "05".into(),
        };
        assert!(matches!(RsaKeyPair::from_file(&f), Err(PkiError::Hex { field: "modulus", .. })));
        f.modulus = "0F".into();
        assert!(matches!(RsaKeyPair::from_file(&f), Err(PkiError::BadKey { .. })));
    }

    #[test]
    fn full_chain_verifies() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x29]);
        // 1152-bit issuer key under a 1408-bit CA, 1024-bit ICC key under the issuer: both remainders.
        assert_eq!(c.issuer_rem.as_ref().map(Vec::len), Some(4));
        assert_eq!(c.icc_rem.as_ref().map(Vec::len), Some(26));
        assert_eq!(oda::verify_fdda(&c.input(capk, &PAN)), Ok(FddaOk { icc_dynamic_number: IDN.to_vec() }));
    }

    #[test]
    fn visa_chain_verifies() {
        let ca = key("ca-visa-e1").unwrap();
        let issuer = key("issuer-visa").unwrap();
        let icc = key("icc-visa-1").unwrap();
        let pan = [0x48, 0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2F];
        let (ic, ir) = issuer_certificate(&ca, &issuer, [0x48, 0x95, 0x00, 0xFF], [0x12, 0x30], [0, 0, 9]).unwrap();
        let (cc, cr) = icc_certificate(&issuer, &icc, &pan, [0x12, 0x30], [0, 0, 10], &[0x82, 0x39, 0x00]).unwrap();
        let idn = [0x00, 0x15];
        let sdad = sign_dynamic_data(&icc, &idn, &TERMINAL_DATA).unwrap();
        let s = store();
        let input = FddaInput {
            capk: s.get(&[0xA0, 0, 0, 0, 0x03], 0xE1, TODAY).unwrap(),
            pan: &pan,
            issuer_cert: &ic,
            issuer_remainder: ir.as_deref(),
            issuer_exponent: &issuer.exponent(),
            icc_cert: &cc,
            icc_remainder: cr.as_deref(),
            icc_exponent: &icc.exponent(),
            static_data: &[0x82, 0x39, 0x00],
            sdad: &sdad,
            terminal_dynamic_data: &TERMINAL_DATA,
            txn_date: TODAY,
            revoked_issuer_serials: &[],
        };
        assert_eq!(oda::verify_fdda(&input).unwrap().icc_dynamic_number, idn);
    }

    #[test]
    fn tampered_sdad_fails_its_hash_or_format() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x29]);
        let mut input = c.input(capk, &PAN);
        // Altered terminal data: the SDAD still opens, its hash does not match.
        let other_un = [&[0x12, 0x34, 0x56, 0x79][..], &TERMINAL_DATA[4..]].concat();
        input.terminal_dynamic_data = &other_un;
        assert_eq!(oda::verify_fdda(&input), Err(OdaError::SdadHash));
        // Altered SDAD byte: the recovered block is noise, trailer/header check fails first.
        let mut bad = c.sdad.clone();
        bad[40] ^= 0x01;
        let mut input = c.input(capk, &PAN);
        input.sdad = &bad;
        assert!(matches!(oda::verify_fdda(&input), Err(OdaError::SdadFormat(_) | OdaError::Rsa(_))));
    }

    #[test]
    fn altered_sdad_content_fails_hash() {
        // An SDAD whose dynamic number changed after hashing: re-sign a modified block.
        let icc = key("icc-unionpay-1").unwrap();
        let good = sign_dynamic_data(&icc, &IDN, &TERMINAL_DATA).unwrap();
        let pk = oda::PublicKey { modulus: icc.modulus(), exponent: icc.exponent() };
        let mut x = pk.recover(&good).unwrap();
        x[5] ^= 0xFF;
        let forged = icc.sign_raw(&x).unwrap();
        assert_eq!(oda::verify_sdad(&pk, &forged, &TERMINAL_DATA), Err(OdaError::SdadHash));
    }

    #[test]
    fn wrong_pan_is_detected() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x29]);
        let other = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x13];
        assert_eq!(oda::verify_fdda(&c.input(capk, &other)), Err(OdaError::IccPanMismatch));
        let other_bin = [0x62, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12];
        assert!(matches!(oda::verify_fdda(&c.input(capk, &other_bin)), Err(OdaError::IssuerIdMismatch { .. })));
    }

    #[test]
    fn certificate_from_another_ca_does_not_open() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-visa-e1", [0x12, 0x30], [0x12, 0x29]);
        let err = oda::verify_fdda(&c.input(capk, &PAN)).unwrap_err();
        assert!(matches!(err, OdaError::IssuerCertFormat(_) | OdaError::IssuerCertHash | OdaError::Rsa(_)), "{err}");
    }

    #[test]
    fn expired_certificates_are_refused() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x10, 0x25], [0x12, 0x29]);
        assert_eq!(oda::verify_fdda(&c.input(capk, &PAN)), Err(OdaError::IssuerCertExpired { expiry: "1025".into(), txn_date: 251125 }));
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x11, 0x25]);
        let mut input = c.input(capk, &PAN);
        assert_eq!(oda::verify_fdda(&input).map(|o| o.icc_dynamic_number.len()), Ok(8)); // valid through 30 Nov 25
        input.txn_date = EmvDate(251201);
        assert_eq!(oda::verify_fdda(&input), Err(OdaError::IccCertExpired { expiry: "1125".into(), txn_date: 251201 }));
    }

    #[test]
    fn static_data_and_remainders_are_covered() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x29]);
        let mut input = c.input(capk, &PAN);
        let changed = [&STATIC_DATA[..15], &[0x30]].concat();
        input.static_data = &changed;
        assert_eq!(oda::verify_fdda(&input), Err(OdaError::IccCertHash));
        let mut input = c.input(capk, &PAN);
        input.issuer_remainder = None;
        assert_eq!(oda::verify_fdda(&input), Err(OdaError::IssuerCertHash));
        let rem = [1u8, 2, 3];
        input.issuer_remainder = Some(&rem);
        assert_eq!(oda::verify_fdda(&input), Err(OdaError::IssuerCertHash));
    }

    /// Opens a signed block, lets `edit` change it, recomputes the hash over
    /// `x[1..n-21] ‖ tail` and signs it again: a correctly signed block with chosen content.
    fn forge(signer: &RsaKeyPair, signed: &[u8], tail: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let pk = oda::PublicKey { modulus: signer.modulus(), exponent: signer.exponent() };
        let mut x = pk.recover(signed).unwrap();
        edit(&mut x);
        let n = x.len();
        let hash = Sha1::new().chain_update(&x[1..n - 21]).chain_update(tail).finalize();
        x[n - 21..n - 1].copy_from_slice(&hash);
        signer.sign_raw(&x).unwrap()
    }

    #[test]
    fn signed_but_invalid_fields_are_refused() {
        let s = store();
        let capk = s.get(&UP_RID, 0xE1, TODAY).unwrap();
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x29]);
        let ca = key("ca-unionpay-e1").unwrap();
        let tail = [c.issuer_rem.clone().unwrap(), c.issuer_exp.clone()].concat();
        let check = |edit: fn(&mut Vec<u8>)| {
            let forged = forge(&ca, &c.issuer_cert, &tail, edit);
            let mut input = c.input(capk, &PAN);
            input.issuer_cert = &forged;
            oda::verify_fdda(&input)
        };
        assert_eq!(check(|_| {}).map(|o| o.icc_dynamic_number), Ok(IDN.to_vec()));
        assert_eq!(check(|x| x[11] = 0x02), Err(OdaError::UnsupportedAlgorithm { object: "issuer certificate", what: "hash", value: 2 }));
        assert_eq!(check(|x| x[12] = 0x02), Err(OdaError::UnsupportedAlgorithm { object: "issuer certificate", what: "public key", value: 2 }));
        assert!(matches!(check(|x| x[1] = 0x03), Err(OdaError::IssuerCertFormat(_))));
        assert!(matches!(check(|x| x[14] = 0x03), Err(OdaError::IssuerCertFormat(_))));
        assert!(matches!(check(|x| x[6] = 0x13), Err(OdaError::IssuerCertFormat(_)))); // month 13
        assert_eq!(check(|x| x[13] = 150), Err(OdaError::RemainderLength { key: oda::KeyLevel::Issuer, expected: 10, got: 4 }));

        let icc = key("icc-unionpay-1").unwrap();
        let check_sdad = |edit: fn(&mut Vec<u8>)| {
            let forged = forge(&icc, &c.sdad, &TERMINAL_DATA, edit);
            let mut input = c.input(capk, &PAN);
            input.sdad = &forged;
            oda::verify_fdda(&input)
        };
        assert!(matches!(check_sdad(|x| x[4] = 9), Err(OdaError::SdadFormat(_)))); // IDN length 9
        assert!(matches!(check_sdad(|x| x[3] = 120), Err(OdaError::SdadFormat(_)))); // L_DD into hash
        assert!(matches!(check_sdad(|x| x[1] = 0x95), Err(OdaError::SdadFormat(_))));
        assert_eq!(check_sdad(|x| x[4] = 2).map(|o| o.icc_dynamic_number), Ok(IDN[..2].to_vec()));
    }

    #[test]
    fn capk_entry_shape_matches_the_config_file() {
        let file: CapkFile = toml::from_str(include_str!("../../config/capk.toml")).unwrap();
        let e2: &CapkEntry = file.capk.iter().find(|e| e.index == "E2").unwrap();
        assert_eq!((e2.revoked, e2.mode.as_deref(), e2.expiry.as_deref()), (Some(true), Some("test"), Some("301231")));
    }

    /// Prints the vectors pasted into kernels/src/oda.rs tests (deterministic: raw RSA, no
    /// randomness). Run: `cargo test -p test-cards --lib print_kernels_oda_vectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_kernels_oda_vectors() {
        let c = card("ca-unionpay-e1", [0x12, 0x30], [0x12, 0x28]);
        let h = |v: &[u8]| hex::encode_upper(v);
        println!("ISSUER_CERT {}", h(&c.issuer_cert));
        println!("ISSUER_REM {}", h(c.issuer_rem.as_deref().unwrap_or_default()));
        println!("ICC_CERT {}", h(&c.icc_cert));
        println!("ICC_REM {}", h(c.icc_rem.as_deref().unwrap_or_default()));
        println!("SDAD {}", h(&c.sdad));
        println!("STATIC {}", h(&STATIC_DATA));
        println!("TERMINAL {}", h(&TERMINAL_DATA));
    }
}
