//! PIN blocks, ISO 9564-1:2017 §9 (formats 0 and 4): how a cardholder's PIN travels enciphered
//! from the PIN pad to the host (ISO 8583 DE 52), bound to the card's PAN.
//!
//! - **Format 0** (ISO 9564-1 §9.3.1, also ANSI X9.8-1): a 64-bit block, the PIN field
//!   `0 | N | PIN | F…F` XOR the PAN field `0000 | 12 rightmost PAN digits without the check
//!   digit`, enciphered with a double-length TDES key (ECB, one block).
//! - **Format 4** (ISO 9564-1:2017 §9.3.5, for AES): a 128-bit PIN field
//!   `4 | N | PIN | A…A` (16 nibbles) then 8 random bytes, a 128-bit PAN field
//!   `M | PAN | 0…0` with `M` = PAN length − 12 (PANs under 12 digits are left-padded with zeros
//!   and `M` = 0); the block is `E(K, E(K, PIN field) XOR PAN field)` ("encipher-XOR-encipher"),
//!   recovered by `D(K, D(K, block) XOR PAN field)`.
//!
//! Recovery checks the control nibble, a PIN length of 4 to 12, decimal PIN digits and every fill
//! nibble (F for format 0, A for format 4), so a wrong key or a wrong PAN gives an error, not a
//! wrong PIN. Limits of that rule:
//! - format 4: a wrong key or PAN gives a pseudo-random PIN field, which passes every check with a
//!   probability below 1 in 10⁶ (at best one in 16 for the control nibble times 16⁻² for the two
//!   fill nibbles of a 12-digit PIN, times (10/16)¹² for the digits);
//! - format 0 with a wrong **key**: the same, below 1 in 10⁶;
//! - format 0 with a wrong **PAN**: the PAN field is only XORed in, so a PAN that differs only in
//!   digits lying under the PIN digits (never under fill nibbles) can turn into another valid-looking
//!   PIN. That is a weakness of format 0 itself (one reason format 4 replaces it); the host checks
//!   the PIN against the card anyway.

use crate::key::{AesKey, TdesKey};
use core::fmt;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Why a PIN, a PAN or a PIN block is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinBlockError {
    /// A PIN is 4 to 12 decimal digits (ISO 9564-1 §8.1).
    #[error("a PIN has 4 to 12 decimal digits")]
    BadPin,
    /// A PAN is 8 to 19 decimal digits (ISO/IEC 7812-1).
    #[error("a PAN has 8 to 19 decimal digits")]
    BadPan,
    /// The control nibble is not the format's (or the key or PAN is wrong).
    #[error("PIN block control field is {got:X}, expected {expected:X} (wrong key, PAN or format)")]
    Format {
        /// The format asked for.
        expected: u8,
        /// The nibble found.
        got: u8,
    },
    /// The PIN length nibble is outside 4..=12 (wrong key or PAN).
    #[error("PIN length {0} outside 4..=12 (wrong key or PAN)")]
    PinLength(u8),
    /// A PIN digit nibble is not 0–9 (wrong key or PAN).
    #[error("a PIN digit is not decimal (wrong key or PAN)")]
    PinDigit,
    /// A fill nibble is not the format's fill (wrong key or PAN).
    #[error("PIN block fill digits are wrong (wrong key or PAN)")]
    Fill,
}

/// A cardholder PIN: 4 to 12 decimal digits. Zeroized on drop; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Pin {
    digits: [u8; 12],
    len: u8,
}

impl Pin {
    /// A PIN from its ASCII digits (`"1234"`).
    pub fn new(ascii: &str) -> Result<Self, PinBlockError> {
        let b = ascii.as_bytes();
        if !(4..=12).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
            return Err(PinBlockError::BadPin);
        }
        let mut digits = [0u8; 12];
        for (d, c) in digits.iter_mut().zip(b) {
            *d = c - b'0';
        }
        Ok(Pin { digits, len: b.len() as u8 })
    }

    /// The PIN's digits as values 0–9 (for the PIN pad or the host's PIN check; never log them).
    pub fn expose_digits(&self) -> &[u8] {
        self.digits.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of digits (4..=12).
    #[allow(clippy::len_without_is_empty)] // a PIN is never empty
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

impl PartialEq for Pin {
    /// Constant-time comparison of the digits.
    fn eq(&self, other: &Pin) -> bool {
        self.len == other.len && bool::from(self.digits.ct_eq(&other.digits))
    }
}

impl Eq for Pin {}

impl Drop for Pin {
    fn drop(&mut self) {
        self.digits.zeroize();
        self.len.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Pin {}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// A primary account number: 8 to 19 decimal digits (ISO/IEC 7812-1), check digit included.
/// `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan {
    digits: [u8; 19],
    len: u8,
}

impl Pan {
    /// A PAN from its ASCII digits.
    pub fn new(ascii: &str) -> Result<Self, PinBlockError> {
        let b = ascii.as_bytes();
        if !(8..=19).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
            return Err(PinBlockError::BadPan);
        }
        let mut digits = [0u8; 19];
        for (d, c) in digits.iter_mut().zip(b) {
            *d = c - b'0';
        }
        Ok(Pan { digits, len: b.len() as u8 })
    }

    fn digits(&self) -> &[u8] {
        self.digits.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({} digits)", self.len)
    }
}

/// Writes nibble `value` at nibble position `pos` (0 = high nibble of byte 0).
fn put_nibble(buf: &mut [u8], pos: usize, value: u8) {
    if let Some(b) = buf.get_mut(pos / 2) {
        if pos % 2 == 0 {
            *b = (*b & 0x0F) | (value << 4);
        } else {
            *b = (*b & 0xF0) | (value & 0x0F);
        }
    }
}

fn nibble(buf: &[u8], pos: usize) -> u8 {
    match buf.get(pos / 2) {
        Some(b) if pos % 2 == 0 => b >> 4,
        Some(b) => b & 0x0F,
        None => 0,
    }
}

/// The PIN field common to formats 0 and 4: control nibble, length, digits, then `fill` up to
/// nibble 15 (the first 8 bytes of `buf`).
fn pin_field(buf: &mut [u8], control: u8, pin: &Pin, fill: u8) {
    put_nibble(buf, 0, control);
    put_nibble(buf, 1, pin.len);
    for pos in 2..16 {
        let d = pin.expose_digits().get(pos - 2).copied().unwrap_or(fill);
        put_nibble(buf, pos, d);
    }
}

/// Parses the first 16 nibbles of a PIN field (`control`, length 4–12, digits, `fill`).
fn parse_pin_field(buf: &[u8], control: u8, fill: u8) -> Result<Pin, PinBlockError> {
    let got = nibble(buf, 0);
    if got != control {
        return Err(PinBlockError::Format { expected: control, got });
    }
    let len = nibble(buf, 1);
    if !(4..=12).contains(&len) {
        return Err(PinBlockError::PinLength(len));
    }
    let len_us = usize::from(len);
    let mut pin = Pin { digits: [0; 12], len };
    for i in 0..len_us {
        let d = nibble(buf, 2 + i);
        if d > 9 {
            return Err(PinBlockError::PinDigit);
        }
        if let Some(slot) = pin.digits.get_mut(i) {
            *slot = d;
        }
    }
    if (2 + len_us..16).any(|pos| nibble(buf, pos) != fill) {
        return Err(PinBlockError::Fill);
    }
    Ok(pin)
}

/// Format 0 PAN field: `0000` then the 12 rightmost PAN digits excluding the check digit
/// (left-padded with zeros when the PAN has fewer than 13 digits).
pub fn format0_pan_field(pan: &Pan) -> [u8; 8] {
    let digits = pan.digits();
    let body = digits.get(..digits.len().saturating_sub(1)).unwrap_or(&[]);
    let take = &body[body.len().saturating_sub(12)..];
    let mut field = [0u8; 8];
    let start = 16 - take.len();
    for (i, d) in take.iter().enumerate() {
        put_nibble(&mut field, start + i, *d);
    }
    field
}

/// Format 0 clear PIN block: PIN field XOR PAN field (ISO 9564-1 §9.3.1).
pub fn format0_clear(pin: &Pin, pan: &Pan) -> [u8; 8] {
    let mut block = [0u8; 8];
    pin_field(&mut block, 0, pin, 0xF);
    for (b, p) in block.iter_mut().zip(format0_pan_field(pan)) {
        *b ^= p;
    }
    block
}

/// Format 0 PIN block enciphered under a double-length TDES PIN key (the DE 52 value).
pub fn encrypt_format0(key: &TdesKey, pin: &Pin, pan: &Pan) -> [u8; 8] {
    use des::cipher::BlockEncrypt;
    let mut clear = Zeroizing::new(format0_clear(pin, pan));
    let mut block = (*clear).into();
    key.cipher().encrypt_block(&mut block);
    clear.zeroize();
    block.into()
}

/// Recovers the PIN from an enciphered format 0 block; every check in the module doc applies.
pub fn decrypt_format0(key: &TdesKey, block: &[u8; 8], pan: &Pan) -> Result<Pin, PinBlockError> {
    use des::cipher::BlockDecrypt;
    let mut ga = (*block).into();
    key.cipher().decrypt_block(&mut ga);
    let mut field = Zeroizing::new([0u8; 8]);
    for ((f, c), p) in field.iter_mut().zip(ga.iter()).zip(format0_pan_field(pan)) {
        *f = c ^ p;
    }
    ga.zeroize();
    parse_pin_field(&field[..], 0, 0xF)
}

/// Format 4 PAN field: `M` (PAN length − 12, or 0), the PAN (left-padded with zeros to 12
/// digits), then `0` nibbles to 128 bits.
pub fn format4_pan_field(pan: &Pan) -> [u8; 16] {
    let digits = pan.digits();
    let mut field = [0u8; 16];
    let m = digits.len().saturating_sub(12) as u8;
    put_nibble(&mut field, 0, m);
    let pad = 12usize.saturating_sub(digits.len());
    for (i, d) in digits.iter().enumerate() {
        put_nibble(&mut field, 1 + pad + i, *d);
    }
    field
}

/// Format 4 plain PIN field: `4 | N | PIN | A…A` then the caller's 8 random bytes.
pub fn format4_pin_field(pin: &Pin, random_fill: [u8; 8]) -> [u8; 16] {
    let mut field = [0u8; 16];
    pin_field(&mut field, 4, pin, 0xA);
    field[8..].copy_from_slice(&random_fill);
    field
}

/// Format 4 enciphered under an AES-128 PIN key with the caller's 8 random fill bytes
/// (`E(K, E(K, PIN field) XOR PAN field)`). Use [`encrypt_format4`] unless the fill bytes
/// come from elsewhere (a PIN pad's own generator, a test vector).
pub fn encrypt_format4_with_fill(key: &AesKey, pin: &Pin, pan: &Pan, random_fill: [u8; 8]) -> [u8; 16] {
    use aes::cipher::BlockEncrypt;
    let cipher = key.cipher();
    let mut block = format4_pin_field(pin, random_fill).into();
    cipher.encrypt_block(&mut block);
    for (b, p) in block.iter_mut().zip(format4_pan_field(pan)) {
        *b ^= p;
    }
    cipher.encrypt_block(&mut block);
    block.into()
}

/// Format 4 enciphered under an AES-128 PIN key, fill bytes drawn from `rng`.
pub fn encrypt_format4(key: &AesKey, pin: &Pin, pan: &Pan, rng: &mut impl CryptoRngCore) -> [u8; 16] {
    let mut fill = [0u8; 8];
    rng.fill_bytes(&mut fill);
    let block = encrypt_format4_with_fill(key, pin, pan, fill);
    fill.zeroize();
    block
}

/// Recovers the PIN from an enciphered format 4 block; every check in the module doc applies
/// (the 8 random bytes are not checked: they are random).
pub fn decrypt_format4(key: &AesKey, block: &[u8; 16], pan: &Pan) -> Result<Pin, PinBlockError> {
    use aes::cipher::BlockDecrypt;
    let cipher = key.cipher();
    let mut ga = (*block).into();
    cipher.decrypt_block(&mut ga);
    for (b, p) in ga.iter_mut().zip(format4_pan_field(pan)) {
        *b ^= p;
    }
    cipher.decrypt_block(&mut ga);
    let field: Zeroizing<[u8; 16]> = Zeroizing::new(ga.into());
    parse_pin_field(&field[..], 4, 0xA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex_bytes;
    use crate::test_util::TestRng;

    fn sample_tdes() -> TdesKey {
        // TEST ONLY: the sample double-length key 0123456789ABCDEF FEDCBA9876543210.
        TdesKey::new(hex_bytes("0123456789ABCDEFFEDCBA9876543210")).unwrap()
    }

    fn sample_aes() -> AesKey {
        // TEST ONLY: the NIST SP 800-38A/B AES-128 example key.
        AesKey::new(hex_bytes("2B7E151628AED2A6ABF7158809CF4F3C"))
    }

    /// The worked example of ISO 9564 format 0 published in the Wikipedia article "ISO 9564"
    /// (PIN 1234, PAN 43219876543210987 → 0412AC89ABCDEF67).
    #[test]
    fn format0_clear_block_known_answer() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        assert_eq!(format0_pan_field(&pan), hex_bytes::<8>("0000987654321098"));
        assert_eq!(format0_clear(&pin, &pan), hex_bytes::<8>("0412AC89ABCDEF67"));
    }

    /// The same block enciphered under the sample TDES key; expected value computed independently
    /// with `openssl enc -des-ede -nopad` (not from a published document).
    #[test]
    fn format0_encrypted_known_answer_and_round_trip() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        let block = encrypt_format0(&sample_tdes(), &pin, &pan);
        assert_eq!(block, hex_bytes::<8>("C967C8198151A458"));
        assert_eq!(decrypt_format0(&sample_tdes(), &block, &pan), Ok(pin));
    }

    #[test]
    fn format0_short_pan_is_left_padded() {
        let pan = Pan::new("12345678").unwrap(); // 7 digits without the check digit
        assert_eq!(format0_pan_field(&pan), hex_bytes::<8>("0000000001234567"));
    }

    /// ANSI X9.24-3:2017 supplement test vectors (AES-128 BDK, "Calculation of AES PIN Block
    /// Format 4"): PIN 1234 → PIN field 441234AAAAAAAAAA…, PAN 4111111111111111 → PAN field
    /// 44111111111111111000…00 (values as quoted by the openemv/emv-utils test suite).
    #[test]
    fn format4_fields_known_answer() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let f = format4_pin_field(&pin, [0x11; 8]);
        assert_eq!(f[..8], hex_bytes::<8>("441234AAAAAAAAAA"));
        assert_eq!(f[8..], [0x11; 8]);
        assert_eq!(format4_pan_field(&pan), hex_bytes::<16>("44111111111111111000000000000000"));
        // Odd digit count and a PAN of exactly 12 digits / under 12 digits.
        let f = format4_pin_field(&Pin::new("12345").unwrap(), [0; 8]);
        assert_eq!(f[..8], hex_bytes::<8>("4512345AAAAAAAAA"));
        assert_eq!(format4_pan_field(&Pan::new("411111111111").unwrap()), hex_bytes::<16>("04111111111110000000000000000000"));
        assert_eq!(format4_pan_field(&Pan::new("123456789").unwrap()), hex_bytes::<16>("00001234567890000000000000000000"));
    }

    /// Encipher-XOR-encipher under the NIST example key with fill 0011223344556677; expected
    /// value computed independently with `openssl enc -aes-128-ecb -nopad` twice and an XOR.
    #[test]
    fn format4_encrypted_known_answer_and_round_trip() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let fill = hex_bytes::<8>("0011223344556677");
        let block = encrypt_format4_with_fill(&sample_aes(), &pin, &pan, fill);
        assert_eq!(block, hex_bytes::<16>("59A943F4341F2013184BF78F3B52C035"));
        assert_eq!(decrypt_format4(&sample_aes(), &block, &pan), Ok(pin));
    }

    #[test]
    fn format4_random_fill_differs_per_block_and_round_trips() {
        let mut rng = TestRng::new(1);
        let pin = Pin::new("987654321012").unwrap();
        let pan = Pan::new("6212345678901234567").unwrap();
        let a = encrypt_format4(&sample_aes(), &pin, &pan, &mut rng);
        let b = encrypt_format4(&sample_aes(), &pin, &pan, &mut rng);
        assert_ne!(a, b);
        assert_eq!(decrypt_format4(&sample_aes(), &a, &pan), Ok(pin.clone()));
        assert_eq!(decrypt_format4(&sample_aes(), &b, &pan), Ok(pin));
    }

    #[test]
    fn format4_wrong_key_or_pan_is_an_error() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let block = encrypt_format4_with_fill(&sample_aes(), &pin, &pan, [7; 8]);
        let other_key = AesKey::new([0x5A; 16]);
        assert!(decrypt_format4(&other_key, &block, &pan).is_err());
        let other_pan = Pan::new("4111111111111129").unwrap();
        assert!(decrypt_format4(&sample_aes(), &block, &other_pan).is_err());
        // A format 0 block is not taken for format 4 and vice versa.
        let mut pf = [0u8; 16];
        pf[..8].copy_from_slice(&format0_clear(&pin, &pan));
        assert_eq!(parse_pin_field(&pf, 4, 0xA).err(), Some(PinBlockError::Format { expected: 4, got: 0 }));
    }

    #[test]
    fn format0_wrong_key_is_an_error() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        let block = encrypt_format0(&sample_tdes(), &pin, &pan);
        let other = TdesKey::new(hex_bytes("FEDCBA98765432100123456789ABCDEF")).unwrap();
        assert!(decrypt_format0(&other, &block, &pan).is_err());
    }

    /// A PAN differing under the fill nibbles is caught; one differing only under the PIN digits
    /// is not (the documented format 0 weakness) — this test pins that behaviour down.
    #[test]
    fn format0_wrong_pan_is_caught_under_the_fill() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        let block = encrypt_format0(&sample_tdes(), &pin, &pan);
        let other = Pan::new("43219876543219997").unwrap();
        assert_eq!(decrypt_format0(&sample_tdes(), &block, &other), Err(PinBlockError::Fill));
        // PAN field nibbles 4 and 5 lie under PIN digits 3 and 4 of a 4-digit PIN.
        let under_pin = Pan::new("43219976543210987").unwrap();
        let wrong = decrypt_format0(&sample_tdes(), &block, &under_pin).unwrap();
        assert_ne!(wrong, pin);
    }

    #[test]
    fn bad_pins_and_pans_are_refused() {
        for p in ["", "123", "1234567890123", "12a4", "１２３４"] {
            assert_eq!(Pin::new(p).err(), Some(PinBlockError::BadPin), "{p:?}");
        }
        for p in ["1234567", "12345678901234567890", "4111-1111-1111"] {
            assert_eq!(Pan::new(p).err(), Some(PinBlockError::BadPan), "{p:?}");
        }
    }

    #[test]
    fn parse_checks_length_digits_and_fill() {
        let mut f = hex_bytes::<8>("041234FFFFFFFFFF");
        assert!(parse_pin_field(&f, 0, 0xF).is_ok());
        f = hex_bytes("031234FFFFFFFFFF");
        assert_eq!(parse_pin_field(&f, 0, 0xF).err(), Some(PinBlockError::PinLength(3)));
        f = hex_bytes("0D1234FFFFFFFFFF");
        assert_eq!(parse_pin_field(&f, 0, 0xF).err(), Some(PinBlockError::PinLength(13)));
        f = hex_bytes("04123AFFFFFFFFFF");
        assert_eq!(parse_pin_field(&f, 0, 0xF).err(), Some(PinBlockError::PinDigit));
        f = hex_bytes("041234FFFFFFFFFE");
        assert_eq!(parse_pin_field(&f, 0, 0xF).err(), Some(PinBlockError::Fill));
        assert_eq!(parse_pin_field(&[], 0, 0xF).err(), Some(PinBlockError::PinLength(0)));
    }

    #[test]
    fn pin_debug_hides_the_digits() {
        let pin = Pin::new("1234").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(…)");
        assert_eq!(format!("{:?}", Pan::new("4111111111111111").unwrap()), "Pan(16 digits)");
    }
}
