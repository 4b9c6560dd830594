//! Secret key types: a double-length TDES key and an AES-128 key. Both zeroize on drop and
//! show only their key check value in `Debug`, so a key never reaches a log by accident.

use crate::kcv::{aes_kcv, tdes_kcv, Kcv};
use core::fmt;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why bytes are not a usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not the length its algorithm needs.
    #[error("a key must be {expected} bytes, got {got}")]
    Length {
        /// Bytes the algorithm needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// ANSI X9.52 keying option 2 with K1 = K2 is single DES: refused (X9.24-1 requires the
    /// halves of a double-length key to differ; parity bits are ignored in the comparison).
    #[error("the two halves of a double-length TDES key are equal (single DES)")]
    EqualHalves,
    /// The random source kept giving keys with equal halves (a broken source).
    #[error("the random source gave a degenerate key")]
    BadRandom,
}

/// A double-length TDES key `K1 ‖ K2` (ANSI X9.52 keying option 2, EDE), as used for PIN block
/// format 0, the X9.19 retail MAC and legacy key wrapping.
#[derive(Clone)]
pub struct TdesKey([u8; 16]);

impl TdesKey {
    /// Key length in bytes.
    pub const LEN: usize = 16;

    /// A key from its 16 bytes; refuses equal halves ([`KeyError::EqualHalves`]).
    pub fn new(bytes: [u8; 16]) -> Result<Self, KeyError> {
        let key = TdesKey(bytes);
        let equal = key.0[..8].iter().zip(&key.0[8..]).all(|(a, b)| a & 0xFE == b & 0xFE);
        if equal {
            return Err(KeyError::EqualHalves);
        }
        Ok(key)
    }

    /// A key from a slice of exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| KeyError::Length { expected: Self::LEN, got: bytes.len() })?;
        let key = Self::new(arr);
        let mut arr = arr;
        arr.zeroize();
        key
    }

    /// A fresh random key with odd parity in every byte (the DES convention).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Result<Self, KeyError> {
        for _ in 0..4 {
            let mut bytes = [0u8; 16];
            rng.fill_bytes(&mut bytes);
            kernels::cryptogram::adjust_odd_parity(&mut bytes);
            let key = Self::new(bytes);
            bytes.zeroize();
            if let Ok(key) = key {
                return Ok(key);
            }
        }
        Err(KeyError::BadRandom)
    }

    /// The key bytes, for storing the key (never for logging).
    pub fn expose_secret(&self) -> &[u8; 16] {
        &self.0
    }

    /// Key check value ([`crate::kcv::tdes_kcv`]).
    pub fn kcv(&self) -> Kcv {
        tdes_kcv(self)
    }

    pub(crate) fn cipher(&self) -> des::TdesEde2 {
        use des::cipher::KeyInit;
        des::TdesEde2::new((&self.0).into())
    }
}

impl Drop for TdesKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for TdesKey {}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdesKey").field("kcv", &self.kcv()).finish()
    }
}

/// An AES-128 key (PIN block format 4, AES-CMAC, RFC 3394 key wrap, the provisioned TMK).
#[derive(Clone)]
pub struct AesKey([u8; 16]);

impl AesKey {
    /// Key length in bytes.
    pub const LEN: usize = 16;

    /// A key from its 16 bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        AesKey(bytes)
    }

    /// A key from a slice of exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| KeyError::Length { expected: Self::LEN, got: bytes.len() })?;
        let key = Self::new(arr);
        let mut arr = arr;
        arr.zeroize();
        Ok(key)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = AesKey([0u8; 16]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// The key bytes, for storing the key (never for logging).
    pub fn expose_secret(&self) -> &[u8; 16] {
        &self.0
    }

    /// Key check value ([`crate::kcv::aes_kcv`]).
    pub fn kcv(&self) -> Kcv {
        aes_kcv(self)
    }

    pub(crate) fn cipher(&self) -> aes::Aes128 {
        use aes::cipher::KeyInit;
        aes::Aes128::new((&self.0).into())
    }
}

impl Drop for AesKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for AesKey {}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesKey").field("kcv", &self.kcv()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex_bytes;

    #[test]
    fn tdes_key_with_equal_halves_is_refused_even_if_parity_differs() {
        let mut k = [0x11u8; 16];
        assert_eq!(TdesKey::new(k).err(), Some(KeyError::EqualHalves));
        k[15] = 0x10; // same DES key, other parity bit
        assert_eq!(TdesKey::new(k).err(), Some(KeyError::EqualHalves));
        k[15] = 0x13;
        assert!(TdesKey::new(k).is_ok());
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert_eq!(TdesKey::from_slice(&[1; 8]).err(), Some(KeyError::Length { expected: 16, got: 8 }));
        assert_eq!(AesKey::from_slice(&[1; 24]).err(), Some(KeyError::Length { expected: 16, got: 24 }));
    }

    #[test]
    fn debug_shows_the_kcv_never_the_key() {
        // TEST ONLY key (the well-known X9.24 sample key).
        let k = TdesKey::new(hex_bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let s = format!("{k:?}");
        assert_eq!(s, "TdesKey { kcv: 08D7B4 }");
        let a = AesKey::new(hex_bytes("2B7E151628AED2A6ABF7158809CF4F3C"));
        let s = format!("{a:?}");
        assert!(s.starts_with("AesKey { kcv: "), "{s}");
        assert!(!s.to_uppercase().contains("2B7E15"), "{s}");
    }

    #[test]
    fn generated_tdes_keys_have_odd_parity_and_distinct_halves() {
        let mut rng = crate::test_util::TestRng::new(7);
        let k = TdesKey::generate(&mut rng).unwrap();
        assert!(k.expose_secret().iter().all(|b| b.count_ones() % 2 == 1));
        assert_ne!(k.expose_secret()[..8], k.expose_secret()[8..]);
    }

    /// A source that always gives the same bytes can only make K1 = K2: refused, no endless loop.
    #[test]
    fn a_constant_random_source_is_refused() {
        struct Stuck;
        impl rand_core::RngCore for Stuck {
            fn next_u32(&mut self) -> u32 {
                0
            }
            fn next_u64(&mut self) -> u64 {
                0
            }
            fn fill_bytes(&mut self, d: &mut [u8]) {
                d.fill(0x42)
            }
            fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
                d.fill(0x42);
                Ok(())
            }
        }
        impl rand_core::CryptoRng for Stuck {}
        assert_eq!(TdesKey::generate(&mut Stuck).err(), Some(KeyError::BadRandom));
    }
}
