//! Application cryptograms (EMV Book 2 Annex A1): ICC master key derivation (Option A), the EMV
//! common session key, the ISO/IEC 9797-1 algorithm 3 MAC that makes the AC, and ARPC method 1.
//!
//! Pure functions over DES / 3DES (`des` crate). Used by the card simulator to produce ARQC/TC and
//! by the host simulator to check them; a terminal itself never holds these keys.

use crate::dol::{DataStore, Dol, DolEntry};
use crate::tag;
use crate::tlv::Tag;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use des::{Des, TdesEde2};

type Block = [u8; 8];

pub(crate) fn tdes_encrypt(key: &[u8; 16], block: Block) -> Block {
    let [b] = tdes_encrypt_blocks(key, [block]);
    b
}

/// Several blocks under one key: the key schedule (three DES ones) is computed once.
fn tdes_encrypt_blocks<const N: usize>(key: &[u8; 16], blocks: [Block; N]) -> [Block; N] {
    let cipher = TdesEde2::new(&GenericArray::from(*key));
    blocks.map(|block| {
        let mut b = GenericArray::from(block);
        cipher.encrypt_block(&mut b);
        b.into()
    })
}

/// A double-length key as two halves (`ZL ‖ ZR`).
fn join(halves: [Block; 2]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&halves[0]);
    k[8..].copy_from_slice(&halves[1]);
    k
}

/// Single-DES ciphers for the left and right halves of a double-length key.
fn des_halves(key: &[u8; 16]) -> (Des, Des) {
    let (mut l, mut r) = ([0u8; 8], [0u8; 8]);
    l.copy_from_slice(&key[..8]);
    r.copy_from_slice(&key[8..]);
    (Des::new(&GenericArray::from(l)), Des::new(&GenericArray::from(r)))
}

fn xor(a: Block, b: Block) -> Block {
    let mut out = a;
    out.iter_mut().zip(b).for_each(|(o, x)| *o ^= x);
    out
}

/// Sets every byte to odd parity (the least significant bit of each DES key byte is parity).
pub fn adjust_odd_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        if b.count_ones() % 2 == 0 {
            *b ^= 0x01;
        }
    }
}

/// ICC master key, Book 2 A1.4.1 Option A.
///
/// `Y` = the rightmost 16 digits of `pan_digits ‖ PSN`, left-padded with zeros, as 8 bytes BCD;
/// `ZL = 3DES(IMK)[Y]`, `ZR = 3DES(IMK)[Y ⊕ FF…FF]`, result `ZL ‖ ZR` with odd parity.
/// `pan_digits` are the PAN's decimal digits (e.g. [`crate::types::digits`] of 5A; any other
/// character is ignored). `psn` is the 5F34 byte as read from the card, two BCD digits
/// (`0x01` = "01"); pass `0x00` when the card has no 5F34.
pub fn icc_master_key_option_a(imk: &[u8; 16], pan_digits: &str, psn: u8) -> [u8; 16] {
    let mut nibbles: Vec<u8> = pan_digits.bytes().filter(u8::is_ascii_digit).map(|c| c - b'0').collect();
    nibbles.extend([psn >> 4, psn & 0x0F]);
    let mut y = [0u8; 8];
    // Fill from the right: the last nibble goes to the low half of y[7].
    for (i, n) in nibbles.iter().rev().take(16).enumerate() {
        let byte = 7 - i / 2;
        y[byte] |= if i % 2 == 0 { *n } else { n << 4 };
    }
    let mut mk = join(tdes_encrypt_blocks(imk, [y, xor(y, [0xFF; 8])]));
    adjust_odd_parity(&mut mk);
    mk
}

/// EMV common session key, Book 2 A1.3.1:
/// `3DES(MK)[ATC ‖ F0 ‖ 00×5] ‖ 3DES(MK)[ATC ‖ 0F ‖ 00×5]` (no parity adjustment: DES ignores it).
pub fn session_key_common(mk: &[u8; 16], atc: [u8; 2]) -> [u8; 16] {
    join(tdes_encrypt_blocks(mk, [[atc[0], atc[1], 0xF0, 0, 0, 0, 0, 0], [atc[0], atc[1], 0x0F, 0, 0, 0, 0, 0]]))
}

/// ISO/IEC 9797-1 padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacPadding {
    /// Method 2: `80` then `00`s up to a multiple of 8; always adds at least one byte, so data
    /// already a multiple of 8 gets a whole extra block (EMV).
    Method2,
    /// Method 1: `00`s up to a multiple of 8; nothing added to aligned data, empty data becomes
    /// one zero block (Visa CVN 10).
    Zero,
}

/// ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with a double-length key: single-DES CBC under the
/// left half with a zero IV; the last block is then decrypted with the right half and encrypted
/// with the left half. Full 8-byte result.
pub fn mac_iso9797_alg3(key: &[u8; 16], data: &[u8], padding: MacPadding) -> [u8; 8] {
    let mut padded = data.to_vec();
    match padding {
        MacPadding::Method2 => {
            padded.push(0x80);
            padded.resize(padded.len().div_ceil(8) * 8, 0);
        }
        MacPadding::Zero => padded.resize(padded.len().div_ceil(8).max(1) * 8, 0),
    }
    let (left, right) = des_halves(key);
    let mut state = GenericArray::from([0u8; 8]);
    for chunk in padded.chunks(8) {
        state.iter_mut().zip(chunk).for_each(|(s, d)| *s ^= d);
        left.encrypt_block(&mut state);
    }
    right.decrypt_block(&mut state);
    left.encrypt_block(&mut state);
    state.into()
}

/// The data the AC is computed over, Book 2 §8.1.1 recommended minimum set, in this order.
pub const AC_INPUT_TAGS: [Tag; 10] = [
    tag::AMOUNT_AUTHORISED,
    tag::AMOUNT_OTHER,
    tag::TERMINAL_COUNTRY,
    tag::TVR,
    tag::TXN_CURRENCY,
    tag::TXN_DATE,
    tag::TXN_TYPE,
    tag::UNPREDICTABLE_NUMBER,
    tag::AIP,
    tag::ATC,
];

/// Concatenates the values of [`AC_INPUT_TAGS`] at their dictionary lengths (33 bytes; an absent
/// value is that many zeros, a value of the wrong length is fitted like DOL data, Book 3 §5.4),
/// then `trailer`: the whole IAD (9F10) for "emv-csk", the CVR for Visa CVN 10.
pub fn ac_input(get: impl Fn(Tag) -> Option<Vec<u8>>, trailer: &[u8]) -> Vec<u8> {
    let mut store = DataStore::new();
    let mut dol = Dol::default();
    for t in AC_INPUT_TAGS {
        if let Some(v) = get(t) {
            store.set(t, v);
        }
        let len = tag::info(t).map_or(0, |i| i.len.1);
        dol.0.push(DolEntry { tag: t, len });
    }
    let mut out = dol.build(&store);
    out.extend_from_slice(trailer);
    out
}

/// How an issuer computes its application cryptograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptogramMethod {
    /// MK by Option A → common session key with the ATC → MAC algorithm 3, padding method 2.
    EmvCsk,
    /// Visa CVN 10: MK by Option A used directly as the MAC key, zero padding.
    VisaCvn10,
}

/// The 8-byte application cryptogram (ARQC / TC / AAC) over `data` (see [`ac_input`]).
pub fn generate_ac(method: CryptogramMethod, imk: &[u8; 16], pan_digits: &str, psn: u8, atc: [u8; 2], data: &[u8]) -> [u8; 8] {
    let mk = icc_master_key_option_a(imk, pan_digits, psn);
    ac_with_key(method, &ac_key(method, &mk, atc), data)
}

/// The key an AC is computed with: the common session key of the ATC (EMV CSK) or the MK itself
/// (Visa CVN 10) — also the ARPC key of [`arpc_method1`].
pub fn ac_key(method: CryptogramMethod, mk: &[u8; 16], atc: [u8; 2]) -> [u8; 16] {
    match method {
        CryptogramMethod::EmvCsk => session_key_common(mk, atc),
        CryptogramMethod::VisaCvn10 => *mk,
    }
}

/// The AC over `data` under `key` ([`ac_key`]): an issuer host that also needs the key for the
/// ARPC derives it once.
pub fn ac_with_key(method: CryptogramMethod, key: &[u8; 16], data: &[u8]) -> [u8; 8] {
    match method {
        CryptogramMethod::EmvCsk => mac_iso9797_alg3(key, data, MacPadding::Method2),
        CryptogramMethod::VisaCvn10 => mac_iso9797_alg3(key, data, MacPadding::Zero),
    }
}

/// ARPC method 1, Book 2 A1.2.1: `3DES(key)[ARQC ⊕ (ARC ‖ 00×6)]`; `key` is the session key for
/// EMV CSK, the MK for Visa CVN 10.
pub fn arpc_method1(key: &[u8; 16], arqc: &[u8; 8], arc: [u8; 2]) -> [u8; 8] {
    tdes_encrypt(key, xor(*arqc, [arc[0], arc[1], 0, 0, 0, 0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values below were computed once with an independent Python implementation
    // (pycryptodome 4.4 `DES`/`DES3` in ECB/CBC mode, Option A, session key, retail MAC and ARPC
    // written directly from Book 2 A1 / ISO 9797-1; MK parity cross-checked with
    // `DES3.adjust_key_parity`), then pasted here as hex.
    const IMK: [u8; 16] = hx16("0123456789ABCDEFFEDCBA9876543210");

    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not upper-case hex"),
        }
    }

    const fn hx16(s: &str) -> [u8; 16] {
        let b = s.as_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
            i += 1;
        }
        out
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn h8(s: &str) -> [u8; 8] {
        h(s).try_into().unwrap()
    }

    #[test]
    fn option_a_master_key() {
        // Y = 3588000000001201 (rightmost 16 of PAN ‖ PSN 01).
        let mk = icc_master_key_option_a(&IMK, "6235880000000012", 0x01);
        assert_eq!(mk, hx16("B3104FC75BF1DCAD6745619D61DA80C2"));
        // 19-digit PAN: Y = 8800000000012300.
        assert_eq!(icc_master_key_option_a(&IMK, "6235880000000000123", 0x00), hx16("9E689757F7BF737926A1A8DFB67CB30B"));
        // 11-digit PAN, PSN 12 (BCD 0x12): Y = 0001234567890112.
        assert_eq!(icc_master_key_option_a(&IMK, "12345678901", 0x12), hx16("1567D092DA296897626791ABE04638E6"));
        // Non-digits (e.g. a stray separator) are ignored.
        assert_eq!(icc_master_key_option_a(&IMK, "6235 8800 0000 0012", 0x01), mk);
    }

    #[test]
    fn odd_parity_adjustment() {
        let mk = icc_master_key_option_a(&IMK, "6235880000000012", 0x01);
        assert!(mk.iter().all(|b| b.count_ones() % 2 == 1));
        let mut k = [0x00, 0x01, 0x02, 0x03, 0xFE, 0xFF, 0x80, 0x7F];
        adjust_odd_parity(&mut k);
        assert_eq!(k, [0x01, 0x01, 0x02, 0x02, 0xFE, 0xFE, 0x80, 0x7F]);
    }

    #[test]
    fn common_session_key() {
        let mk = hx16("B3104FC75BF1DCAD6745619D61DA80C2");
        assert_eq!(session_key_common(&mk, [0x00, 0x01]), hx16("EDF3AFEA260FFF9848AF0AF8A2CE14DE"));
    }

    #[test]
    fn retail_mac_known_answers() {
        let d13: Vec<u8> = (0..13).collect();
        let d16: Vec<u8> = (0..16).collect();
        assert_eq!(mac_iso9797_alg3(&IMK, &[], MacPadding::Method2), h8("F1FBCF2A56D19BA7"));
        assert_eq!(mac_iso9797_alg3(&IMK, &[], MacPadding::Zero), h8("08D7B4FB629D0885"));
        assert_eq!(mac_iso9797_alg3(&IMK, &d13, MacPadding::Method2), h8("8F1A26ABCEA028F3"));
        assert_eq!(mac_iso9797_alg3(&IMK, &d13, MacPadding::Zero), h8("5DAF4543E2258585"));
        assert_eq!(mac_iso9797_alg3(&IMK, &d16, MacPadding::Method2), h8("99F6CC9FB8367150"));
        assert_eq!(mac_iso9797_alg3(&IMK, &d16, MacPadding::Zero), h8("43525CE6E442EB3B"));
    }

    #[test]
    fn padding_edge_cases() {
        let d16: Vec<u8> = (0..16).collect();
        // Method 2 on aligned data adds a whole block 80 00 .. 00.
        let mut explicit = d16.clone();
        explicit.extend([0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(mac_iso9797_alg3(&IMK, &d16, MacPadding::Method2), mac_iso9797_alg3(&IMK, &explicit, MacPadding::Zero));
        // Method 2 on 15 bytes adds just 80.
        let mut explicit = d16[..15].to_vec();
        explicit.push(0x80);
        assert_eq!(mac_iso9797_alg3(&IMK, &d16[..15], MacPadding::Method2), mac_iso9797_alg3(&IMK, &explicit, MacPadding::Zero));
        // Zero padding adds nothing to aligned data and cannot tell trailing zeros apart.
        let d13: Vec<u8> = (0..13).collect();
        let mut d13z = d13.clone();
        d13z.extend([0, 0, 0]);
        assert_eq!(mac_iso9797_alg3(&IMK, &d13, MacPadding::Zero), mac_iso9797_alg3(&IMK, &d13z, MacPadding::Zero));
        // Empty data with zero padding is one zero block.
        assert_eq!(mac_iso9797_alg3(&IMK, &[], MacPadding::Zero), mac_iso9797_alg3(&IMK, &[0; 8], MacPadding::Zero));
    }

    fn terminal_and_card_data(t: Tag) -> Option<Vec<u8>> {
        let v = match t {
            tag::AMOUNT_AUTHORISED => "000000001000",
            tag::TERMINAL_COUNTRY => "0156",
            tag::TVR => "0000008000",
            tag::TXN_CURRENCY => "0156",
            tag::TXN_DATE => "251125",
            tag::TXN_TYPE => "00",
            tag::UNPREDICTABLE_NUMBER => "12345678",
            tag::AIP => "3900",
            tag::ATC => "0001",
            _ => return None, // 9F03 absent: six zero bytes
        };
        Some(h(v))
    }

    const IAD: &str = "07010103A00000010A01000000000000";

    #[test]
    fn ac_input_order_and_absent_values() {
        let data = ac_input(terminal_and_card_data, &h(IAD));
        assert_eq!(hex::encode_upper(&data), "00000000100000000000000001560000008000015625112500123456783900000107010103A00000010A01000000000000");
        assert_eq!(ac_input(|_| None, &[]), vec![0u8; 33]);
        // A value of the wrong length is fitted like DOL data (n: left-padded).
        let short = ac_input(|t| (t == tag::AMOUNT_AUTHORISED).then(|| vec![0x10, 0x00]), &[]);
        assert_eq!(&short[..6], &[0, 0, 0, 0, 0x10, 0x00]);
    }

    #[test]
    fn generate_ac_known_answers() {
        let data = ac_input(terminal_and_card_data, &h(IAD));
        let arqc = generate_ac(CryptogramMethod::EmvCsk, &IMK, "6235880000000012", 0x01, [0x00, 0x01], &data);
        assert_eq!(arqc, h8("373B2F529FC68B28"));
        let cvn10 = ac_input(terminal_and_card_data, &h("03A00000"));
        let ac = generate_ac(CryptogramMethod::VisaCvn10, &IMK, "4895000000000001", 0x00, [0x00, 0x01], &cvn10);
        assert_eq!(ac, h8("B29EDF33BB3CB0DE"));
    }

    #[test]
    fn arpc_method_1_known_answer() {
        let sk = hx16("EDF3AFEA260FFF9848AF0AF8A2CE14DE");
        assert_eq!(arpc_method1(&sk, &h8("373B2F529FC68B28"), *b"00"), h8("8B46FD1A5BF742ED"));
    }
}
