//! The e-purse purchase cryptography (PBOC e-purse scheme, JR/T 0025; details as commonly
//! documented, **unverified** against the standard's text and against a real card):
//!
//! - key diversification: `L = 3DES(K)[f]`, `R = 3DES(K)[f ⊕ FF…FF]`, key `L ‖ R`, applied once per
//!   level — here issuer level first (an 8-byte issuer factor), then card level (the 8-byte card
//!   serial); transit.md's PSAM input "application serial (8) | issuer code (4) | FFFFFFFF" carries
//!   both factors, the order of the levels is our reading;
//! - purchase session key `SESPK = 3DES(DPK)[card random (4) ‖ offline ATC (2) ‖ terminal
//!   transaction number, rightmost 2 bytes]` (8 bytes, single-DES key);
//! - MAC: single-DES CBC, zero IV, data padded with `80` then `00`s to a multiple of 8 (always at
//!   least the `80`), the leftmost 4 bytes of the last block;
//! - MAC1 over amount (4) ‖ transaction type (1) ‖ terminal id (6) ‖ date (4) ‖ time (3);
//!   MAC2 over the amount (4);
//! - TAC with the card's TAC key folded to single DES (`left ⊕ right`) over amount (4) ‖ type (1) ‖
//!   terminal id (6) ‖ terminal transaction number (4) ‖ date (4) ‖ time (3).
//!
//! Pure functions; keys are inputs. The card simulator and the software PSAM both use them, so a
//! misreading of the standard would not show between them: the known answers below come from an
//! independent implementation of the same reading (see the tests), not from a real card.

use super::{PurchaseType, PurseDateTime};
use crate::cryptogram::tdes_encrypt;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;

/// A double-length 3DES key (master, diversified purchase key, TAC key).
pub type Key16 = [u8; 16];
/// A single-DES session key.
pub type Key8 = [u8; 8];

/// One level of PBOC key diversification with an 8-byte factor.
pub fn diversify(master: &Key16, factor: &[u8; 8]) -> Key16 {
    let mut inv = *factor;
    inv.iter_mut().for_each(|b| *b ^= 0xFF);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&tdes_encrypt(master, *factor));
    k[8..].copy_from_slice(&tdes_encrypt(master, inv));
    k
}

/// The card's purchase key (DPK) or TAC key from the issuer's master: issuer level, then card level.
pub fn card_key(master: &Key16, issuer_factor: &[u8; 8], serial: &super::CardSerial) -> Key16 {
    diversify(&diversify(master, issuer_factor), &serial.0)
}

/// The issuer-level factor: the first 4 bytes of the issuer id then `FFFFFFFF` (transit.md step 3:
/// "issuer code (4) | FFFFFFFF"; unverified).
pub fn issuer_factor(issuer_id: &[u8; 8]) -> [u8; 8] {
    [issuer_id[0], issuer_id[1], issuer_id[2], issuer_id[3], 0xFF, 0xFF, 0xFF, 0xFF]
}

/// The purchase session key (过程密钥).
pub fn session_key(dpk: &Key16, random: [u8; 4], offline_atc: u16, ttsn: [u8; 4]) -> Key8 {
    let [a0, a1] = offline_atc.to_be_bytes();
    tdes_encrypt(dpk, [random[0], random[1], random[2], random[3], a0, a1, ttsn[2], ttsn[3]])
}

/// The PBOC MAC with a single-DES key: CBC, zero IV, `80 00…` padding, leftmost 4 bytes.
pub fn mac(key: &Key8, data: &[u8]) -> [u8; 4] {
    let mut padded = data.to_vec();
    padded.push(0x80);
    padded.resize(padded.len().div_ceil(8) * 8, 0);
    let des = Des::new(&GenericArray::from(*key));
    let mut state = GenericArray::from([0u8; 8]);
    for chunk in padded.chunks(8) {
        state.iter_mut().zip(chunk).for_each(|(s, d)| *s ^= d);
        des.encrypt_block(&mut state);
    }
    [state[0], state[1], state[2], state[3]]
}

/// MAC1, computed by the PSAM and checked by the card in DEBIT.
pub fn mac1(sk: &Key8, amount: u32, kind: PurchaseType, terminal_id: [u8; 6], when: PurseDateTime) -> [u8; 4] {
    let mut d = amount.to_be_bytes().to_vec();
    d.push(kind.code());
    d.extend_from_slice(&terminal_id);
    d.extend_from_slice(&when.date());
    d.extend_from_slice(&when.time());
    mac(sk, &d)
}

/// MAC2, computed by the card after the debit and checked by the PSAM.
pub fn mac2(sk: &Key8, amount: u32) -> [u8; 4] {
    mac(sk, &amount.to_be_bytes())
}

/// The transaction authentication code the card signs the debit with (checked by the back office).
pub fn tac(tac_key: &Key16, amount: u32, kind: PurchaseType, terminal_id: [u8; 6], ttsn: [u8; 4], when: PurseDateTime) -> [u8; 4] {
    let mut k = [0u8; 8];
    k.iter_mut().zip(tac_key[..8].iter().zip(&tac_key[8..])).for_each(|(o, (l, r))| *o = l ^ r);
    let mut d = amount.to_be_bytes().to_vec();
    d.push(kind.code());
    d.extend_from_slice(&terminal_id);
    d.extend_from_slice(&ttsn);
    d.extend_from_slice(&when.date());
    d.extend_from_slice(&when.time());
    mac(&k, &d)
}

#[cfg(test)]
mod tests {
    use super::super::CardSerial;
    use super::*;

    // Known answers computed once with an independent Python implementation (the `cryptography`
    // package's TripleDES in ECB mode, single DES as 3DES with K1 = K2 = K3, the padding and CBC
    // chaining written by hand from the description in the module doc), then pasted as hex. They
    // pin this reading of the scheme; no public JR/T 0025 test vector was available to check it.
    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const MASTER: &str = "0123456789ABCDEFFEDCBA9876543210";

    #[test]
    fn single_des_anchor() {
        // FIPS 81 / the classic DES example: key 0123456789ABCDEF, "Now is t" → 3FA40E8A984D4815.
        // CBC of one block with a zero IV is plain ECB, so the first 4 bytes of the MAC of the
        // block minus its padding cannot be used; check the cipher directly instead.
        let des = Des::new(&GenericArray::from(h::<8>("0123456789ABCDEF")));
        let mut b = GenericArray::from(h::<8>("4E6F772069732074"));
        des.encrypt_block(&mut b);
        assert_eq!(b.as_slice(), h::<8>("3FA40E8A984D4815"));
    }

    #[test]
    fn diversification_known_answers() {
        let m: Key16 = h(MASTER);
        assert_eq!(diversify(&m, &h("0000000012345678")), h::<16>(KAT_DIV1));
        let f = issuer_factor(&h("0311310000000001"));
        assert_eq!(f, h::<8>("03113100FFFFFFFF"));
        assert_eq!(card_key(&m, &f, &CardSerial(h("0000000012345678"))), h::<16>(KAT_CARD_KEY));
    }

    #[test]
    fn session_key_and_macs_known_answers() {
        let dpk: Key16 = h(KAT_CARD_KEY);
        let sk = session_key(&dpk, h("11223344"), 5, h("00000107"));
        assert_eq!(sk, h::<8>(KAT_SK));
        let when = PurseDateTime::new(2026, 12, 5, 8, 30, 0).unwrap();
        let tid = h("112233445566");
        assert_eq!(mac1(&sk, 300, PurchaseType::Capp, tid, when), h::<4>(KAT_MAC1));
        assert_eq!(mac2(&sk, 300), h::<4>(KAT_MAC2));
        assert_eq!(tac(&dpk, 300, PurchaseType::Capp, tid, h("00000107"), when), h::<4>(KAT_TAC));
        // Every input counts.
        assert_ne!(mac1(&sk, 301, PurchaseType::Capp, tid, when), h::<4>(KAT_MAC1));
        assert_ne!(mac1(&sk, 300, PurchaseType::Purchase, tid, when), h::<4>(KAT_MAC1));
        assert_ne!(session_key(&dpk, h("11223344"), 6, h("00000107")), sk);
        assert_ne!(session_key(&dpk, h("11223344"), 5, h("00000108")), sk);
        // Only the rightmost two bytes of the terminal transaction number enter the session key.
        assert_eq!(session_key(&dpk, h("11223344"), 5, h("FFFF0107")), sk);
    }

    #[test]
    fn mac_padding() {
        let k: Key8 = h("0123456789ABCDEF");
        // 8 bytes of data get a whole padding block; 7 bytes get just the 80.
        let d8 = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let des = Des::new(&GenericArray::from(k));
        let mut one = GenericArray::from([1u8, 2, 3, 4, 5, 6, 7, 0x80]);
        des.encrypt_block(&mut one);
        assert_eq!(mac(&k, &d8[..7]), [one[0], one[1], one[2], one[3]]);
        assert_ne!(mac(&k, &d8), mac(&k, &d8[..7]));
        assert_eq!(mac(&k, &[]), h::<4>(KAT_MAC_EMPTY));
    }

    const KAT_DIV1: &str = "C094A324BB6DF15F85AB2357EFDC5DA1";
    const KAT_CARD_KEY: &str = "AE759A43C3B09C3AEC8B2BF313155DA4";
    const KAT_SK: &str = "30708135CD8D21FF";
    const KAT_MAC1: &str = "9C775E66";
    const KAT_MAC2: &str = "C5CDF0AF";
    const KAT_TAC: &str = "ADA7A627";
    const KAT_MAC_EMPTY: &str = "CAEE534C";
}
