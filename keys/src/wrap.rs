//! Working keys under the terminal master key (TMK), delivered by the acquirer at sign-on.
//!
//! A terminal holds three working keys, each for one job (ANSI X9.24-1 key separation): the PIN
//! key (PIN blocks, DE 52), the MAC key (DE 64 / DE 128) and the data key (field encryption).
//! The acquirer sends each one enciphered under the TMK together with its key check value; the
//! terminal deciphers it and refuses it unless its own KCV of the result matches.
//!
//! - **AES** (preferred): the AES Key Wrap of RFC 3394 (= NIST SP 800-38F KW) under an AES-128 TMK,
//!   through the RustCrypto `aes-kw` crate: 16 key bytes become 24, and the unwrap checks RFC 3394's
//!   integrity value before the KCV is even looked at. KCV per [`crate::kcv::aes_kcv`].
//! - **TDES** (legacy hosts): each 8-byte half enciphered with TDES in ECB mode under a
//!   double-length TMK (the classic "key under TMK" of DES-era POS hosts); there is no integrity
//!   value, so the KCV ([`crate::kcv::tdes_kcv`]) is the only check that the key arrived intact.
//!
//! Limit: neither scheme binds the key's usage into the cryptogram (a TR-31 / ANSI X9.143 key
//! block would). The usage byte travels beside the wrapped key, and [`unwrap_aes`] /
//! [`unwrap_tdes`] refuse a key whose usage is not the one asked for, but a host that can forge
//! the usage byte could swap keys; moving to key blocks is left for later.
//!
//! Wire form (see docs/keys.md): `usage(1) ‖ wrapped key ‖ KCV(3)` — 28 bytes for AES, 20 for TDES.

use crate::kcv::Kcv;
use crate::key::{AesKey, KeyError, TdesKey};
use zeroize::Zeroizing;

/// What a working key is for (the first byte of its wire form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// PIN encryption key (PIN blocks, DE 52): `01`.
    Pin,
    /// MAC key (DE 64 / DE 128): `02`.
    Mac,
    /// Data encryption key: `03`.
    Data,
}

impl KeyUsage {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            KeyUsage::Pin => 0x01,
            KeyUsage::Mac => 0x02,
            KeyUsage::Data => 0x03,
        }
    }

    /// The usage of a wire byte.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0x01 => Some(KeyUsage::Pin),
            0x02 => Some(KeyUsage::Mac),
            0x03 => Some(KeyUsage::Data),
            _ => None,
        }
    }
}

/// Why a wrapped key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// The wire form is not the expected length.
    #[error("a wrapped key is {expected} bytes, got {got}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Unknown usage byte.
    #[error("unknown key usage {0:#04x}")]
    UnknownUsage(u8),
    /// The key is not for the job it was asked for.
    #[error("key usage is {got:?}, expected {expected:?}")]
    Usage {
        /// The usage asked for.
        expected: KeyUsage,
        /// The usage on the wire.
        got: KeyUsage,
    },
    /// RFC 3394 integrity check failed: wrong TMK or a damaged wrapped key.
    #[error("key unwrap integrity check failed (wrong TMK or damaged key)")]
    Integrity,
    /// The deciphered key's KCV is not the KCV sent with it: wrong TMK or a damaged key.
    #[error("key check value does not match (wrong TMK or damaged key)")]
    KcvMismatch,
    /// The deciphered bytes are not a usable key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// An AES-128 working key wrapped under an AES-128 TMK (RFC 3394), with its usage and KCV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedAesKey {
    /// What the key is for.
    pub usage: KeyUsage,
    /// The RFC 3394 output (8-byte integrity block + 16 key bytes, enciphered).
    pub wrapped: [u8; 24],
    /// KCV of the clear key.
    pub kcv: Kcv,
}

impl WrappedAesKey {
    /// Wire length: usage, wrapped key, KCV.
    pub const WIRE_LEN: usize = 1 + 24 + Kcv::LEN;

    /// `usage ‖ wrapped ‖ kcv`.
    pub fn to_bytes(&self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        out[0] = self.usage.code();
        out[1..25].copy_from_slice(&self.wrapped);
        out[25..].copy_from_slice(self.kcv.as_bytes());
        out
    }

    /// Parses the wire form (any length other than [`Self::WIRE_LEN`] is refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WrapError> {
        let (&code, rest) = split_exact(bytes, Self::WIRE_LEN)?;
        let usage = KeyUsage::from_code(code).ok_or(WrapError::UnknownUsage(code))?;
        let (wrapped, kcv) = rest.split_at(24);
        Ok(WrappedAesKey {
            usage,
            wrapped: wrapped.try_into().map_err(|_| WrapError::Length { expected: Self::WIRE_LEN, got: bytes.len() })?,
            kcv: Kcv::from_slice(kcv).ok_or(WrapError::Length { expected: Self::WIRE_LEN, got: bytes.len() })?,
        })
    }
}

/// A double-length TDES working key enciphered (ECB) under a TDES TMK, with its usage and KCV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedTdesKey {
    /// What the key is for.
    pub usage: KeyUsage,
    /// `TDES(TMK, K1) ‖ TDES(TMK, K2)`.
    pub wrapped: [u8; 16],
    /// KCV of the clear key.
    pub kcv: Kcv,
}

impl WrappedTdesKey {
    /// Wire length: usage, wrapped key, KCV.
    pub const WIRE_LEN: usize = 1 + 16 + Kcv::LEN;

    /// `usage ‖ wrapped ‖ kcv`.
    pub fn to_bytes(&self) -> [u8; Self::WIRE_LEN] {
        let mut out = [0u8; Self::WIRE_LEN];
        out[0] = self.usage.code();
        out[1..17].copy_from_slice(&self.wrapped);
        out[17..].copy_from_slice(self.kcv.as_bytes());
        out
    }

    /// Parses the wire form (any length other than [`Self::WIRE_LEN`] is refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WrapError> {
        let (&code, rest) = split_exact(bytes, Self::WIRE_LEN)?;
        let usage = KeyUsage::from_code(code).ok_or(WrapError::UnknownUsage(code))?;
        let (wrapped, kcv) = rest.split_at(16);
        Ok(WrappedTdesKey {
            usage,
            wrapped: wrapped.try_into().map_err(|_| WrapError::Length { expected: Self::WIRE_LEN, got: bytes.len() })?,
            kcv: Kcv::from_slice(kcv).ok_or(WrapError::Length { expected: Self::WIRE_LEN, got: bytes.len() })?,
        })
    }
}

fn split_exact(bytes: &[u8], len: usize) -> Result<(&u8, &[u8]), WrapError> {
    if bytes.len() != len {
        return Err(WrapError::Length { expected: len, got: bytes.len() });
    }
    bytes.split_first().ok_or(WrapError::Length { expected: len, got: 0 })
}

/// Wraps an AES-128 working key under the TMK (RFC 3394) with its KCV (acquirer side).
pub fn wrap_aes(tmk: &AesKey, usage: KeyUsage, key: &AesKey) -> Result<WrappedAesKey, WrapError> {
    let kek = aes_kw::KekAes128::from(*tmk.expose_secret());
    let mut wrapped = [0u8; 24];
    // Cannot fail: 16 bytes in (a multiple of 8, at least 16), 24 out.
    kek.wrap(key.expose_secret(), &mut wrapped).map_err(|_| WrapError::Integrity)?;
    Ok(WrappedAesKey { usage, wrapped, kcv: key.kcv() })
}

/// Unwraps an AES-128 working key (terminal side): refuses another usage than `expected`, a
/// failed RFC 3394 integrity check and a KCV that does not match.
pub fn unwrap_aes(tmk: &AesKey, wrapped: &WrappedAesKey, expected: KeyUsage) -> Result<AesKey, WrapError> {
    if wrapped.usage != expected {
        return Err(WrapError::Usage { expected, got: wrapped.usage });
    }
    let kek = aes_kw::KekAes128::from(*tmk.expose_secret());
    let mut clear = Zeroizing::new([0u8; 16]);
    kek.unwrap(&wrapped.wrapped, &mut clear[..]).map_err(|_| WrapError::Integrity)?;
    let key = AesKey::new(*clear);
    if !key.kcv().ct_eq(&wrapped.kcv) {
        return Err(WrapError::KcvMismatch);
    }
    Ok(key)
}

/// Wraps a double-length TDES working key under the AES TMK (RFC 3394 over its 16 bytes), with
/// the key's TDES KCV: an AES hierarchy delivering the TDES PIN key that ISO 9564 format 0 PIN
/// blocks in the 8-byte DE 52 of ISO 8583:1987 need (docs/keys.md).
pub fn wrap_tdes_under_aes(tmk: &AesKey, usage: KeyUsage, key: &TdesKey) -> Result<WrappedAesKey, WrapError> {
    let kek = aes_kw::KekAes128::from(*tmk.expose_secret());
    let mut wrapped = [0u8; 24];
    kek.wrap(key.expose_secret(), &mut wrapped).map_err(|_| WrapError::Integrity)?;
    Ok(WrappedAesKey { usage, wrapped, kcv: key.kcv() })
}

/// Unwraps a TDES working key sent by [`wrap_tdes_under_aes`]: refuses another usage, a failed
/// RFC 3394 integrity check, a key with equal halves and a TDES KCV that does not match.
pub fn unwrap_tdes_under_aes(tmk: &AesKey, wrapped: &WrappedAesKey, expected: KeyUsage) -> Result<TdesKey, WrapError> {
    if wrapped.usage != expected {
        return Err(WrapError::Usage { expected, got: wrapped.usage });
    }
    let kek = aes_kw::KekAes128::from(*tmk.expose_secret());
    let mut clear = Zeroizing::new([0u8; 16]);
    kek.unwrap(&wrapped.wrapped, &mut clear[..]).map_err(|_| WrapError::Integrity)?;
    let key = TdesKey::new(*clear)?;
    if !key.kcv().ct_eq(&wrapped.kcv) {
        return Err(WrapError::KcvMismatch);
    }
    Ok(key)
}

/// Enciphers a TDES working key under a TDES TMK (ECB, two blocks) with its KCV (legacy hosts).
pub fn wrap_tdes(tmk: &TdesKey, usage: KeyUsage, key: &TdesKey) -> WrappedTdesKey {
    use des::cipher::BlockEncrypt;
    let cipher = tmk.cipher();
    let mut wrapped = [0u8; 16];
    for (out, half) in wrapped.chunks_exact_mut(8).zip(key.expose_secret().chunks_exact(8)) {
        let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(half);
        cipher.encrypt_block(&mut block);
        out.copy_from_slice(&block);
    }
    WrappedTdesKey { usage, wrapped, kcv: key.kcv() }
}

/// Deciphers a TDES working key (terminal side): refuses another usage than `expected`, a key with
/// equal halves and a KCV that does not match.
pub fn unwrap_tdes(tmk: &TdesKey, wrapped: &WrappedTdesKey, expected: KeyUsage) -> Result<TdesKey, WrapError> {
    use des::cipher::BlockDecrypt;
    if wrapped.usage != expected {
        return Err(WrapError::Usage { expected, got: wrapped.usage });
    }
    let cipher = tmk.cipher();
    let mut clear = Zeroizing::new([0u8; 16]);
    for (out, half) in clear.chunks_exact_mut(8).zip(wrapped.wrapped.chunks_exact(8)) {
        let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(half);
        cipher.decrypt_block(&mut block);
        out.copy_from_slice(&block);
        zeroize::Zeroize::zeroize(block.as_mut_slice());
    }
    let key = TdesKey::new(*clear)?;
    if !key.kcv().ct_eq(&wrapped.kcv) {
        return Err(WrapError::KcvMismatch);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{hex_bytes, TestRng};

    /// RFC 3394 §4.1 "Wrap 128 bits of Key Data with a 128-bit KEK". TEST ONLY keys.
    #[test]
    fn aes_wrap_rfc3394_known_answer_and_round_trip() {
        let tmk = AesKey::new(hex_bytes("000102030405060708090A0B0C0D0E0F"));
        let key = AesKey::new(hex_bytes("00112233445566778899AABBCCDDEEFF"));
        let w = wrap_aes(&tmk, KeyUsage::Pin, &key).unwrap();
        assert_eq!(w.wrapped, hex_bytes::<24>("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
        assert_eq!(w.kcv, key.kcv());
        let back = unwrap_aes(&tmk, &w, KeyUsage::Pin).unwrap();
        assert_eq!(back.expose_secret(), key.expose_secret());
        let wire = w.to_bytes();
        assert_eq!(wire[0], 0x01);
        assert_eq!(WrappedAesKey::from_bytes(&wire), Ok(w));
    }

    #[test]
    fn aes_unwrap_refuses_wrong_tmk_damage_kcv_and_usage() {
        let mut rng = TestRng::new(3);
        let tmk = AesKey::generate(&mut rng);
        let key = AesKey::generate(&mut rng);
        let w = wrap_aes(&tmk, KeyUsage::Mac, &key).unwrap();
        assert_eq!(unwrap_aes(&AesKey::generate(&mut rng), &w, KeyUsage::Mac).err(), Some(WrapError::Integrity));
        let mut damaged = w.clone();
        damaged.wrapped[10] ^= 0x80;
        assert_eq!(unwrap_aes(&tmk, &damaged, KeyUsage::Mac).err(), Some(WrapError::Integrity));
        let mut bad_kcv = w.clone();
        bad_kcv.kcv = Kcv::from_bytes([0, 0, 0]);
        assert_eq!(unwrap_aes(&tmk, &bad_kcv, KeyUsage::Mac).err(), Some(WrapError::KcvMismatch));
        assert_eq!(unwrap_aes(&tmk, &w, KeyUsage::Pin).err(), Some(WrapError::Usage { expected: KeyUsage::Pin, got: KeyUsage::Mac }));
    }

    /// RFC 3394 §4.1's KEK and key bytes, the key read as double-length TDES: the wrapped bytes
    /// are the RFC's (the algorithm does not care what the 16 bytes are), the KCV is the TDES one.
    #[test]
    fn tdes_key_under_aes_tmk_known_answer_and_refusals() {
        let tmk = AesKey::new(hex_bytes("000102030405060708090A0B0C0D0E0F"));
        let key = TdesKey::new(hex_bytes("00112233445566778899AABBCCDDEEFF")).unwrap();
        let w = wrap_tdes_under_aes(&tmk, KeyUsage::Pin, &key).unwrap();
        assert_eq!(w.wrapped, hex_bytes::<24>("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
        assert_eq!(w.kcv, key.kcv());
        assert_eq!(unwrap_tdes_under_aes(&tmk, &w, KeyUsage::Pin).unwrap().expose_secret(), key.expose_secret());
        // An AES reading of the same wrap fails its KCV: the check value says which algorithm.
        assert_eq!(unwrap_aes(&tmk, &w, KeyUsage::Pin).err(), Some(WrapError::KcvMismatch));
        assert_eq!(unwrap_tdes_under_aes(&tmk, &w, KeyUsage::Mac).err(), Some(WrapError::Usage { expected: KeyUsage::Mac, got: KeyUsage::Pin }));
        let mut damaged = w.clone();
        damaged.wrapped[3] ^= 1;
        assert_eq!(unwrap_tdes_under_aes(&tmk, &damaged, KeyUsage::Pin).err(), Some(WrapError::Integrity));
    }

    /// TDES ECB under the sample key; expected value and KCV computed independently with
    /// `openssl enc -des-ede -nopad` (no published vector). TEST ONLY keys.
    #[test]
    fn tdes_wrap_known_answer_and_round_trip() {
        let tmk = TdesKey::new(hex_bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let key = TdesKey::new(hex_bytes("89ABCDEF0123456776543210FEDCBA98")).unwrap();
        let w = wrap_tdes(&tmk, KeyUsage::Data, &key);
        assert_eq!(w.wrapped, hex_bytes::<16>("4230EF1CB268495597F4494DD23D8A72"));
        assert_eq!(w.kcv.to_string(), "EB7A8D");
        let back = unwrap_tdes(&tmk, &w, KeyUsage::Data).unwrap();
        assert_eq!(back.expose_secret(), key.expose_secret());
        assert_eq!(WrappedTdesKey::from_bytes(&w.to_bytes()), Ok(w));
    }

    #[test]
    fn tdes_unwrap_refuses_wrong_tmk_and_damage() {
        let mut rng = TestRng::new(4);
        let tmk = TdesKey::generate(&mut rng).unwrap();
        let key = TdesKey::generate(&mut rng).unwrap();
        let w = wrap_tdes(&tmk, KeyUsage::Pin, &key);
        let other = TdesKey::generate(&mut rng).unwrap();
        assert_eq!(unwrap_tdes(&other, &w, KeyUsage::Pin).err(), Some(WrapError::KcvMismatch));
        let mut damaged = w.clone();
        damaged.wrapped[15] ^= 1;
        assert_eq!(unwrap_tdes(&tmk, &damaged, KeyUsage::Pin).err(), Some(WrapError::KcvMismatch));
        assert!(matches!(unwrap_tdes(&tmk, &w, KeyUsage::Mac), Err(WrapError::Usage { .. })));
    }

    #[test]
    fn wire_forms_refuse_bad_lengths_and_usages() {
        assert_eq!(WrappedAesKey::from_bytes(&[1; 27]).err(), Some(WrapError::Length { expected: 28, got: 27 }));
        assert_eq!(WrappedAesKey::from_bytes(&[]).err(), Some(WrapError::Length { expected: 28, got: 0 }));
        assert_eq!(WrappedTdesKey::from_bytes(&[1; 21]).err(), Some(WrapError::Length { expected: 20, got: 21 }));
        let mut b = [0u8; 28];
        b[0] = 0x09;
        assert_eq!(WrappedAesKey::from_bytes(&b).err(), Some(WrapError::UnknownUsage(0x09)));
        for code in 0..=255u8 {
            if let Some(u) = KeyUsage::from_code(code) {
                assert_eq!(u.code(), code);
            }
        }
    }
}
