//! Online PIN verification at the issuer (issue 12 §1): the IBM 3624 PIN offset method, and a
//! counter of wrong PINs per account (docs/host.md "PIN verification").
//!
//! IBM 3624 (as described in ISO 9564-1 annex "PIN verification" / IBM CCA documentation;
//! the exact clause is unverified):
//! 1. validation data: 16 hex digits, here the 12 rightmost PAN digits excluding the check
//!    digit, padded on the right with `F` (this project's choice, docs/host.md);
//! 2. the validation data enciphered with the PIN verification key (double-length TDES, ECB);
//! 3. the 16 hex digits of the result decimalized with the table `0123456789012345`;
//! 4. the natural PIN = the leftmost N decimalized digits, N = the length of the offset;
//! 5. the holder's PIN = natural PIN + offset, digit by digit modulo 10 (no carry).
//!
//! The holder's PIN is never stored: the account record keeps only its offset
//! (`pin_offset`, 4 to 12 digits); a PIN of another length is simply wrong.
//!
//! Tries: tree `pin_tries`, keyed like `accounts` (the account the PAN spends from), value the
//! number of wrong PINs in a row (u32 big-endian; absent = 0). The [`MAX_PIN_TRIES`]th wrong PIN
//! in a row answers [`PinVerdict::TriesExceeded`], and so does every PIN after it — the right
//! one too — until the admin line `account pin-reset PAN`. A right PIN resets the counter.
//! PINs, natural PINs and offsets are never logged.

use des::cipher::{BlockEncrypt, KeyInit};
use shanfu_keys::pin_block::Pin;

use crate::masked as mask_pan;
use crate::{Acquirer, AcquirerError};

/// The PIN verification key: **TEST ONLY**, a simulator constant (the ASCII text
/// `shanfu test PVK!`), never a production key. Double-length TDES (K1 ‖ K2).
pub(crate) const TEST_ONLY_PVK: [u8; 16] = *b"shanfu test PVK!";

/// IBM 3624 decimalization table: hex digit `i` becomes `DECIMALIZATION[i]`.
const DECIMALIZATION: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5];

/// Wrong PINs in a row after which the account answers "tries exceeded".
pub(crate) const MAX_PIN_TRIES: u32 = 3;

/// The sled tree of the wrong-PIN counters.
const PIN_TRIES_TREE: &str = "pin_tries";

/// What the issuer makes of a PIN (the caller maps it to a response code: wrong → 55, tries
/// exceeded → 75, ISO 8583 DE 39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinVerdict {
    /// The holder's PIN; the counter is back to 0.
    Verified,
    /// Not the holder's PIN; one more wrong PIN in a row counted.
    Wrong,
    /// [`MAX_PIN_TRIES`] wrong PINs in a row (this one may have been the last of them): refused
    /// until `account pin-reset`, whatever the PIN.
    TriesExceeded,
    /// The PAN's account is unknown or holds no PIN offset: nothing to verify against.
    NoPinData,
}

/// Why a PIN offset is refused (seed check).
pub(crate) fn check_offset(offset: &str) -> Result<(), String> {
    if (4..=12).contains(&offset.len()) && offset.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("pin_offset: 4 to 12 decimal digits".into())
    }
}

/// IBM 3624 validation data: the 12 rightmost PAN digits without the check digit, right-padded
/// with `F` to 16 hex digits (8 bytes). `None` for a PAN that is not 12 to 19 digits.
fn validation_data(pan: &str) -> Option<[u8; 8]> {
    if !crate::seed::valid_pan(pan) {
        return None;
    }
    let body = pan.as_bytes().get(..pan.len() - 1)?;
    let take = body.get(body.len().saturating_sub(12)..)?;
    let mut nibbles = [0xFu8; 16];
    for (n, d) in nibbles.iter_mut().zip(take) {
        *n = d - b'0';
    }
    let mut out = [0u8; 8];
    for (o, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *o = (pair[0] << 4) | pair[1];
    }
    Some(out)
}

/// The 16 decimalized digits of the enciphered validation data (the natural PIN is a prefix).
fn decimalized(pvk: &[u8; 16], pan: &str) -> Option<[u8; 16]> {
    let mut block = validation_data(pan)?.into();
    des::TdesEde2::new(pvk.into()).encrypt_block(&mut block);
    let mut digits = [0u8; 16];
    for (i, b) in block.iter().enumerate() {
        digits[2 * i] = DECIMALIZATION[usize::from(b >> 4)];
        digits[2 * i + 1] = DECIMALIZATION[usize::from(b & 0x0F)];
    }
    Some(digits)
}

/// Whether `pin` is the holder's PIN of `pan` with this offset (IBM 3624). Compares every digit
/// (no early exit). A PIN whose length is not the offset's is wrong.
fn pin_matches(pvk: &[u8; 16], pan: &str, offset: &str, pin: &Pin) -> bool {
    let Some(natural) = decimalized(pvk, pan) else { return false };
    let given = pin.expose_digits();
    if check_offset(offset).is_err() || given.len() != offset.len() {
        return false;
    }
    let diff = natural.iter().zip(offset.bytes()).zip(given).fold(0u8, |acc, ((n, o), g)| acc | (((n + (o - b'0')) % 10) ^ g));
    diff == 0
}

/// The offset that makes `pin` the holder's PIN of `pan` (IBM 3624: PIN − natural PIN, digit
/// by digit modulo 10). For issuing test cards (the seed's offsets come from it); never logged.
#[cfg(test)]
pub(crate) fn offset_for(pvk: &[u8; 16], pan: &str, pin: &Pin) -> Option<String> {
    let natural = decimalized(pvk, pan)?;
    Some(pin.expose_digits().iter().zip(natural).map(|(g, n)| char::from(b'0' + (g + 10 - n) % 10)).collect())
}

fn read_count(v: Option<&[u8]>) -> u32 {
    v.and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_be_bytes)
}

impl Acquirer {
    /// The account a PAN spends from (the funding account of a token) and its PIN offset.
    fn pin_account(&self, pan: &str) -> Result<Option<(String, Option<String>)>, AcquirerError> {
        let account = match self.token(pan)? {
            Some(t) => t.funding_pan,
            None => pan.to_string(),
        };
        Ok(self.account(&account)?.map(|a| (account, a.pin_offset)))
    }

    fn pin_tries(&self) -> Result<sled::Tree, AcquirerError> {
        Ok(self.db.open_tree(PIN_TRIES_TREE)?)
    }

    /// Verifies an online PIN (recovered from DE 52) for the card `pan` (DE 2): IBM 3624 against
    /// the offset of the account the PAN spends from, with the wrong-PIN counter (module doc).
    /// The counter change is flushed before returning. Takes no lock of the acquirer's: the
    /// counter is updated atomically in its tree.
    pub(crate) fn verify_pin(&self, pan: &str, pin: &Pin) -> Result<PinVerdict, AcquirerError> {
        let Some((account, Some(offset))) = self.pin_account(pan)? else {
            return Ok(PinVerdict::NoPinData);
        };
        let tries = self.pin_tries()?;
        if read_count(tries.get(self.at_rest.index(&account))?.as_deref()) >= MAX_PIN_TRIES {
            return Ok(PinVerdict::TriesExceeded);
        }
        let right = pin_matches(&TEST_ONLY_PVK, &account, &offset, pin);
        let before = read_count(
            tries
                .fetch_and_update(self.at_rest.index(&account), |old| {
                    let n = read_count(old);
                    if n >= MAX_PIN_TRIES {
                        old.map(<[u8]>::to_vec)
                    } else if right {
                        None
                    } else {
                        Some((n + 1).to_be_bytes().to_vec())
                    }
                })?
                .as_deref(),
        );
        self.flush()?;
        let verdict = match (before >= MAX_PIN_TRIES, right) {
            (true, _) => PinVerdict::TriesExceeded,
            (false, true) => PinVerdict::Verified,
            (false, false) if before + 1 >= MAX_PIN_TRIES => PinVerdict::TriesExceeded,
            (false, false) => PinVerdict::Wrong,
        };
        if verdict != PinVerdict::Verified {
            tracing::info!(account = %mask_pan(&account), ?verdict, "online PIN not verified");
        }
        Ok(verdict)
    }

    /// Admin `account pin-reset PAN`: the wrong-PIN counter of the account back to 0.
    pub(crate) fn pin_reset(&self, pan: &str) -> Result<(), AcquirerError> {
        let Some((account, _)) = self.pin_account(pan)? else {
            return Err(AcquirerError::Token(format!("unknown card or token {}", mask_pan(pan))));
        };
        self.pin_tries()?.remove(self.at_rest.index(&account))?;
        tracing::info!(account = %mask_pan(&account), "PIN tries reset");
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Faults, Seed};

    const PLASTIC: &str = "6225000000000019";

    fn pin(s: &str) -> Pin {
        Pin::new(s).unwrap()
    }

    struct Db(std::path::PathBuf);
    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(test: &str) -> (Db, Acquirer) {
        let p = std::env::temp_dir().join(format!("shanfu-acquirer-pin-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let a = Acquirer::open(&p, &Seed::builtin().unwrap(), Faults::default()).unwrap();
        (Db(p), a)
    }

    #[test]
    fn validation_data_is_the_12_digits_before_the_check_digit_padded_with_f() {
        assert_eq!(validation_data(PLASTIC), Some([0x50, 0x00, 0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF]));
        assert_eq!(validation_data("4111111111111111"), Some([0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0xFF, 0xFF]));
        // 12-digit PAN: 11 digits, one more F.
        assert_eq!(validation_data("123456789012"), Some([0x12, 0x34, 0x56, 0x78, 0x90, 0x1F, 0xFF, 0xFF]));
        assert_eq!(validation_data("12345678901"), None);
        assert_eq!(validation_data("12345678901x"), None);
    }

    /// Known answer computed independently with python3 and the `cryptography` package
    /// (two-key TripleDES, ECB) and the decimalization by hand: validation data
    /// 500000000001FFFF under the TEST ONLY PVK enciphers to 34A40DC75947FD60, decimalized
    /// 3404032759475360; 4111111111111111 → 1BBE3F5068F974ED → 1114355068597443.
    #[test]
    fn ibm3624_natural_pin_known_answer() {
        assert_eq!(decimalized(&TEST_ONLY_PVK, PLASTIC), Some([3, 4, 0, 4, 0, 3, 2, 7, 5, 9, 4, 7, 5, 3, 6, 0]));
        assert_eq!(decimalized(&TEST_ONLY_PVK, "4111111111111111"), Some([1, 1, 1, 4, 3, 5, 5, 0, 6, 8, 5, 9, 7, 4, 4, 3]));
        // The same cross-check gave offset 012021 for PIN 123456 on 4111111111111111.
        assert_eq!(offset_for(&TEST_ONLY_PVK, "4111111111111111", &pin("123456")).as_deref(), Some("012021"));
    }

    /// The seed's offset of the plastic card makes its holder PIN the profile's `holder_pin`:
    /// natural PIN + offset = holder PIN.
    #[test]
    fn the_plastic_cards_seed_offset_gives_its_holder_pin() {
        let seed = Seed::builtin().unwrap();
        let offset = seed.accounts.iter().find(|a| a.pan == PLASTIC).and_then(|a| a.pin_offset.clone()).unwrap();
        let profile = test_cards::profile::Profile::load("unionpay-plastic").unwrap();
        let holder = profile.cards[0].holder_pin.as_ref().unwrap();
        assert_eq!(offset_for(&TEST_ONLY_PVK, PLASTIC, &pin(holder.digits())).as_deref(), Some(offset.as_str()));
        assert!(pin_matches(&TEST_ONLY_PVK, PLASTIC, &offset, &pin(holder.digits())));
        assert!(!pin_matches(&TEST_ONLY_PVK, PLASTIC, &offset, &pin("123457")));
        // Only the offset's length: the natural PIN's prefix with a shorter PIN is not enough.
        assert!(!pin_matches(&TEST_ONLY_PVK, PLASTIC, &offset, &pin("1234")));
    }

    #[test]
    fn offsets_round_trip_for_every_length() {
        for p in ["0000", "9999", "12345", "987654321098", "55555555"] {
            let off = offset_for(&TEST_ONLY_PVK, "6225000000000027", &pin(p)).unwrap();
            assert_eq!(off.len(), p.len());
            assert!(pin_matches(&TEST_ONLY_PVK, "6225000000000027", &off, &pin(p)), "{}", p.len());
            assert!(!pin_matches(&TEST_ONLY_PVK, "6225000000000035", &off, &pin(p)), "another PAN, {} digits", p.len());
        }
        assert!(check_offset("123").is_err() && check_offset("1234567890123").is_err() && check_offset("12a4").is_err());
    }

    #[test]
    fn right_pin_verifies_and_resets_the_counter() {
        let (_d, a) = open("right");
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::Verified);
        assert_eq!(a.verify_pin(PLASTIC, &pin("111111")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("222222")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::Verified);
        // Reset: two more wrong ones are still only "wrong".
        assert_eq!(a.verify_pin(PLASTIC, &pin("111111")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("1234")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::Verified);
    }

    #[test]
    fn three_wrong_pins_block_until_admin_reset_and_it_persists() {
        let (d, a) = open("tries");
        assert_eq!(a.verify_pin(PLASTIC, &pin("000000")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("000001")).unwrap(), PinVerdict::Wrong);
        assert_eq!(a.verify_pin(PLASTIC, &pin("000002")).unwrap(), PinVerdict::TriesExceeded);
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::TriesExceeded);
        // Another card's counter is its own.
        assert_eq!(a.verify_pin("6225000000000027", &pin("123456")).unwrap(), PinVerdict::NoPinData);
        drop(a);
        let a = Acquirer::open(&d.0, &Seed::builtin().unwrap(), Faults::default()).unwrap();
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::TriesExceeded, "the counter survives a restart");
        assert_eq!(a.admin_line(&format!("account pin-reset {PLASTIC}")), "ok");
        assert_eq!(a.verify_pin(PLASTIC, &pin("123456")).unwrap(), PinVerdict::Verified);
        assert!(a.admin_line("account pin-reset 6225000000000993").starts_with("error: unknown card"));
        assert!(a.admin_line("account pin-reset 12ab").starts_with("error:"));
    }

    #[test]
    fn no_pin_data_for_unknown_accounts_and_accounts_without_offset() {
        let (_d, a) = open("nodata");
        assert_eq!(a.verify_pin("6225000000000993", &pin("123456")).unwrap(), PinVerdict::NoPinData);
        assert_eq!(a.verify_pin("6225000000000027", &pin("123456")).unwrap(), PinVerdict::NoPinData);
        // A token spends from a funding account without an offset.
        assert_eq!(a.verify_pin("6235880000000017", &pin("123456")).unwrap(), PinVerdict::NoPinData);
        // Nothing was counted for them.
        assert!(a.pin_tries().unwrap().is_empty());
    }

    #[test]
    fn a_seed_offset_is_4_to_12_digits() {
        let seed = |offset: &str| {
            Seed::parse(&format!(
                "[[account]]\npan = \"{PLASTIC}\"\nbalance = 1\ncurrency = \"156\"\nexpiry = \"2912\"\nstatus = \"active\"\npin_offset = \"{offset}\"\n"
            ))
        };
        assert!(seed("1234").is_ok() && seed("123456789012").is_ok());
        for bad in ["123", "1234567890123", "12a4", ""] {
            assert!(matches!(seed(bad), Err(AcquirerError::Seed(_))), "{}", bad.len());
        }
    }
}
