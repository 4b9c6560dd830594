//! Key check values, ANSI X9.24-1:2017: a short public value computed from a key, exchanged with
//! (or displayed beside) the key so both sides can tell they hold the same key without showing it.
//!
//! - TDES: the leftmost 3 bytes of the TDES encryption of a block of eight `00` bytes (the
//!   classic KCV, X9.24-1 and every HSM).
//! - AES: the leftmost 3 bytes of the AES-CMAC (NIST SP 800-38B) of one block of sixteen `00`
//!   bytes under the key — the method X9.24-1:2017 gives for AES keys. *Unverified*: we have not
//!   read the 2017 text itself; some HSMs instead encrypt a block of `00` (or `01`) bytes.
//!   Both sides of the shanfu host link use this crate, so they agree whatever the standard says.

use crate::key::{AesKey, TdesKey};
use core::fmt;
use subtle::ConstantTimeEq;

/// A 3-byte key check value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kcv([u8; 3]);

impl Kcv {
    /// Length in bytes.
    pub const LEN: usize = 3;

    /// A KCV received from the other side.
    pub fn from_bytes(bytes: [u8; 3]) -> Self {
        Kcv(bytes)
    }

    /// A KCV from a slice of exactly 3 bytes (`None` otherwise).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Kcv)
    }

    /// The 3 bytes.
    pub fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }

    /// Comparison in constant time (a KCV is public, but a mismatch should not leak where).
    pub fn ct_eq(&self, other: &Kcv) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X}{:02X}", self.0[0], self.0[1], self.0[2])
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// TDES KCV: `TDES(K, 00×8)`, first 3 bytes.
pub fn tdes_kcv(key: &TdesKey) -> Kcv {
    use des::cipher::BlockEncrypt;
    let mut block = [0u8; 8].into();
    key.cipher().encrypt_block(&mut block);
    Kcv([block[0], block[1], block[2]])
}

/// AES KCV: `AES-CMAC(K, 00×16)`, first 3 bytes (X9.24-1:2017, unverified — see the module doc).
pub fn aes_kcv(key: &AesKey) -> Kcv {
    let mac = crate::mac::aes_cmac(key, &[0u8; 16]);
    Kcv([mac[0], mac[1], mac[2]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex_bytes;

    /// TEST ONLY key `0123456789ABCDEF FEDCBA9876543210`, the sample double-length key of the
    /// payment literature, whose KCV `08D7B4` is the one commonly quoted with it (quoted from
    /// memory, not from a document at hand); independently, `openssl enc -des-ede -nopad` gives
    /// TDES(K, 0) = 08D7B4FB629D0885.
    #[test]
    fn tdes_kcv_of_the_sample_key() {
        let k = TdesKey::new(hex_bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        assert_eq!(tdes_kcv(&k).to_string(), "08D7B4");
    }

    /// TEST ONLY key: the NIST SP 800-38B / RFC 4493 AES-128 example key. The expected value was
    /// computed independently with OpenSSL's CMAC (`openssl mac -cipher AES-128-CBC`) over 16 zero
    /// bytes — not a value published in X9.24-1.
    #[test]
    fn aes_kcv_is_the_cmac_of_a_zero_block() {
        let k = AesKey::new(hex_bytes("2B7E151628AED2A6ABF7158809CF4F3C"));
        assert_eq!(aes_kcv(&k).to_string(), AES_KCV_2B7E);
    }

    const AES_KCV_2B7E: &str = "7AD386";

    #[test]
    fn kcv_slices_and_equality() {
        assert_eq!(Kcv::from_slice(&[1, 2]), None);
        let a = Kcv::from_slice(&[1, 2, 3]).unwrap();
        assert!(a.ct_eq(&Kcv::from_bytes([1, 2, 3])));
        assert!(!a.ct_eq(&Kcv::from_bytes([1, 2, 4])));
    }
}
