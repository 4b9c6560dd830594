//! Message authentication codes for the host link (ISO 8583 DE 64 / DE 128).
//!
//! - **ANSI X9.19 retail MAC** (= ISO/IEC 9797-1 MAC algorithm 3 with DES): single-DES CBC under
//!   K1 with a zero IV, the final block then decrypted under K2 and encrypted under K1. Padding:
//!   ISO/IEC 9797-1 **method 1** (zero bytes up to a multiple of 8, none if already aligned), the
//!   padding X9.19 itself specifies and the one legacy hosts use. Method 1 cannot tell trailing
//!   zero bytes apart; ISO 8583 messages are length-framed and the parser refuses trailing bytes,
//!   so that ambiguity cannot be used on this link. The CBC and final steps are the workspace's one
//!   implementation, [`kernels::cryptogram::mac_iso9797_alg3`].
//! - **AES-CMAC** (NIST SP 800-38B, RFC 4493) under an AES-128 key, through the RustCrypto `cmac`
//!   crate; 16 bytes, sent truncated to its leftmost 8 bytes where the field is 8 bytes (DE 64),
//!   as SP 800-38B §5.5 allows (64 bits is its floor for general use).
//!
//! Which one the host link uses: **AES-CMAC**. It is a proven PRF-based MAC with a 128-bit block
//! and key, needs no padding rule, and matches format 4 PIN blocks and AES key wrapping, so one
//! AES-128 key hierarchy serves the whole link. X9.19 is kept for legacy hosts — Chinese POS
//! acquirers (POSP) still run DES/TDES key hierarchies with a retail MAC — where the host cannot
//! do AES; its 64-bit block and single-DES chaining make it the weaker choice.
//!
//! Verification recomputes the MAC and compares it in constant time (`subtle`), accepting a
//! received MAC of the leftmost 4 to 8 bytes (X9.19; ANSI X9.19 allows 32-bit MACs) or 8 to 16
//! bytes (AES-CMAC); anything shorter or longer is refused before any comparison.

use crate::key::{AesKey, TdesKey};
use kernels::cryptogram::{mac_iso9797_alg3, MacPadding};
use subtle::ConstantTimeEq;

/// Why a MAC does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// The received MAC's length is not one this algorithm accepts.
    #[error("a MAC of {0} bytes is not accepted")]
    Length(usize),
    /// The MAC is wrong: wrong key, or the message was changed.
    #[error("MAC does not verify")]
    Mismatch,
}

/// ANSI X9.19 retail MAC, full 8 bytes, padding method 1 (see the module doc).
pub fn x919_mac(key: &TdesKey, data: &[u8]) -> [u8; 8] {
    mac_iso9797_alg3(key.expose_secret(), data, MacPadding::Zero)
}

/// Verifies an X9.19 MAC of 4 to 8 bytes (the leftmost bytes of the full MAC), constant time.
pub fn verify_x919(key: &TdesKey, data: &[u8], mac: &[u8]) -> Result<(), MacError> {
    if !(4..=8).contains(&mac.len()) {
        return Err(MacError::Length(mac.len()));
    }
    ct_prefix_eq(&x919_mac(key, data), mac)
}

/// AES-CMAC (NIST SP 800-38B), full 16 bytes.
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; 16] {
    use cmac::Mac;
    let mut mac = <cmac::Cmac<aes::Aes128> as Mac>::new(key.expose_secret().into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Verifies an AES-CMAC of 8 to 16 bytes (the leftmost bytes of the full MAC), constant time.
pub fn verify_aes_cmac(key: &AesKey, data: &[u8], mac: &[u8]) -> Result<(), MacError> {
    if !(8..=16).contains(&mac.len()) {
        return Err(MacError::Length(mac.len()));
    }
    ct_prefix_eq(&aes_cmac(key, data), mac)
}

fn ct_prefix_eq(full: &[u8], received: &[u8]) -> Result<(), MacError> {
    let mine = full.get(..received.len()).ok_or(MacError::Length(received.len()))?;
    if bool::from(mine.ct_eq(received)) {
        Ok(())
    } else {
        Err(MacError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex_bytes;

    fn sample_tdes() -> TdesKey {
        // TEST ONLY: the sample double-length key 0123456789ABCDEF FEDCBA9876543210.
        TdesKey::new(hex_bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap()
    }

    fn nist_aes() -> AesKey {
        // TEST ONLY: the AES-128 key of NIST SP 800-38B appendix D.1 / RFC 4493 §4.
        AesKey::new(hex_bytes("2B7E151628AED2A6ABF7158809CF4F3C"))
    }

    /// The classic X9.9 / X9.19 example: ASCII "Now is the time for all " under K1 =
    /// 0123456789ABCDEF gives the X9.9 CBC-MAC 70A30640CC76DD8B and, with K2 =
    /// FEDCBA9876543210, the X9.19 MAC A1C72E74EA3FA9B6 — values of the example as commonly
    /// published (quoted from memory), both recomputed here with `openssl enc -des-cbc` and
    /// `-des-ecb`, so the expected value does not come from this code.
    #[test]
    fn x919_known_answer() {
        let mac = x919_mac(&sample_tdes(), b"Now is the time for all ");
        assert_eq!(mac, hex_bytes::<8>("A1C72E74EA3FA9B6"));
    }

    /// NIST SP 800-38B appendix D.1 (= RFC 4493 §4) AES-128 examples 1–4.
    #[test]
    fn aes_cmac_known_answers() {
        let m = hex_bytes::<64>(concat!(
            "6BC1BEE22E409F96E93D7E117393172A",
            "AE2D8A571E03AC9C9EB76FAC45AF8E51",
            "30C81C46A35CE411E5FBC1191A0A52EF",
            "F69F2445DF4F9B17AD2B417BE66C3710"
        ));
        let k = nist_aes();
        assert_eq!(aes_cmac(&k, &[]), hex_bytes::<16>("BB1D6929E95937287FA37D129B756746"));
        assert_eq!(aes_cmac(&k, &m[..16]), hex_bytes::<16>("070A16B46B4D4144F79BDD9DD04A287C"));
        assert_eq!(aes_cmac(&k, &m[..40]), hex_bytes::<16>("DFA66747DE9AE63030CA32611497C827"));
        assert_eq!(aes_cmac(&k, &m), hex_bytes::<16>("51F0BEBF7E3B9D92FC49741779363CFE"));
    }

    #[test]
    fn x919_verification_accepts_truncation_refuses_tampering() {
        let k = sample_tdes();
        let data = b"0200 message body";
        let mac = x919_mac(&k, data);
        assert_eq!(verify_x919(&k, data, &mac), Ok(()));
        assert_eq!(verify_x919(&k, data, &mac[..4]), Ok(()));
        assert_eq!(verify_x919(&k, data, &mac[..3]), Err(MacError::Length(3)));
        assert_eq!(verify_x919(&k, data, &[mac.as_slice(), &[0]].concat()), Err(MacError::Length(9)));
        assert_eq!(verify_x919(&k, b"0200 message bodY", &mac), Err(MacError::Mismatch));
        let mut bad = mac;
        bad[7] ^= 1;
        assert_eq!(verify_x919(&k, data, &bad), Err(MacError::Mismatch));
        let other = TdesKey::new(hex_bytes("FEDCBA98765432100123456789ABCDEF")).unwrap();
        assert_eq!(verify_x919(&other, data, &mac), Err(MacError::Mismatch));
    }

    #[test]
    fn aes_cmac_verification_accepts_truncation_refuses_tampering() {
        let k = nist_aes();
        let data = b"0200 message body";
        let mac = aes_cmac(&k, data);
        assert_eq!(verify_aes_cmac(&k, data, &mac), Ok(()));
        assert_eq!(verify_aes_cmac(&k, data, &mac[..8]), Ok(()));
        assert_eq!(verify_aes_cmac(&k, data, &mac[..7]), Err(MacError::Length(7)));
        assert_eq!(verify_aes_cmac(&k, data, &[]), Err(MacError::Length(0)));
        assert_eq!(verify_aes_cmac(&k, b"0200 message bodY", &mac), Err(MacError::Mismatch));
        assert_eq!(verify_aes_cmac(&AesKey::new([1; 16]), data, &mac), Err(MacError::Mismatch));
    }
}
