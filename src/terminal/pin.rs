//! PIN entry (issue 12 §1): the cardholder's PIN for a card whose CVM is online PIN (EMV Book A
//! §6.2; C-7 / C-3: CTQ "online PIN required").
//!
//! A [`PinPad`] collects the digits (the cashier screen's PIN pad, or one line of stdin for
//! `shanfu pay --pin-stdin`) and hands back an [`EnteredPin`]: an opaque value that can only
//! become an ISO 9564 PIN block under the session PIN key. The digits are never shown,
//! logged, journaled or given out in clear; they are zeroized when the value is dropped.

use shanfu_keys::pin_block::{self, Pan, Pin};
use shanfu_keys::TdesKey;
use std::time::Duration;

/// What the PIN pad shows beside the entry field.
#[derive(Debug, Clone)]
pub struct PinPrompt {
    /// Amount as the cashier screen writes it (e.g. "¥500.00").
    pub amount: String,
    /// The card's PAN masked (first 6, last 4).
    pub pan_masked: String,
    /// Whether "PIN bypass" may be offered (config `[pin] bypass`).
    pub bypass_allowed: bool,
    /// Give up after this long without a key.
    pub timeout: Duration,
}

/// The PIN the cardholder entered: digits only the PIN block can read.
pub struct EnteredPin(Pin);

impl EnteredPin {
    /// 4 to 12 decimal digits (ISO 9564-1); anything else is refused without saying what it was.
    pub fn new(digits: &str) -> Result<EnteredPin, PinRefused> {
        Pin::new(digits).map(EnteredPin).map_err(|_| PinRefused)
    }

    /// ISO 9564-1 format 0 under the session PIN key (DE 52).
    pub fn format0_block(&self, key: &TdesKey, pan: &str) -> Result<[u8; 8], PinRefused> {
        let pan = Pan::new(pan).map_err(|_| PinRefused)?;
        Ok(pin_block::encrypt_format0(key, &self.0, &pan))
    }

    /// Number of digits (the PIN pad shows this many •).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a PIN has at least 4 digits.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

impl std::fmt::Debug for EnteredPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnteredPin({} digits)", self.0.len())
    }
}

/// A PIN that is not 4 to 12 digits, or a PAN a PIN block cannot be made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the PIN must be 4 to 12 digits")]
pub struct PinRefused;

/// How PIN entry ended.
#[derive(Debug)]
pub enum PinEntry {
    /// The cardholder entered a PIN and pressed Enter.
    Entered(EnteredPin),
    /// The cardholder chose "PIN bypass" (offered only when the configuration allows it).
    Bypassed,
    /// The cardholder or the cashier cancelled.
    Cancelled,
    /// No key within the prompt's timeout.
    TimedOut,
}

/// Something that can ask the cardholder for a PIN. Blocking: called on the transaction's thread.
pub trait PinPad: Send {
    fn enter(&mut self, prompt: &PinPrompt) -> PinEntry;
}

/// `shanfu pay --pin-stdin`: one line of standard input (a pipe or a test), digits only; an empty
/// line or end of input is a cancel. Never a PIN on the command line.
pub struct StdinPinPad;

impl PinPad for StdinPinPad {
    fn enter(&mut self, _prompt: &PinPrompt) -> PinEntry {
        let mut line = zeroize::Zeroizing::new(String::new());
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => PinEntry::Cancelled,
            Ok(_) => {
                let digits = line.trim();
                if digits.is_empty() {
                    return PinEntry::Cancelled;
                }
                match EnteredPin::new(digits) {
                    Ok(p) => PinEntry::Entered(p),
                    // Not a PIN: treated as not entered (the pad would not have accepted it).
                    Err(PinRefused) => PinEntry::Cancelled,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entered_pin_never_shows_its_digits() {
        let p = EnteredPin::new("123456").unwrap();
        assert_eq!(format!("{p:?}"), "EnteredPin(6 digits)");
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn a_pin_must_be_4_to_12_digits() {
        for bad in ["", "123", "1234567890123", "12a4", "12 34"] {
            assert_eq!(EnteredPin::new(bad).err(), Some(PinRefused), "{bad:?}");
        }
        assert!(EnteredPin::new("1234").is_ok() && EnteredPin::new("123456789012").is_ok());
    }

    #[test]
    fn the_block_is_iso9564_format0_under_the_key() {
        // The crate's known answer (docs/keys.md): PIN 1234, PAN 43219876543210987, TEST ONLY key.
        let key = TdesKey::new(hex_array("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let b = EnteredPin::new("1234").unwrap().format0_block(&key, "43219876543210987").unwrap();
        assert_eq!(hex::encode_upper(b), "C967C8198151A458");
        assert!(EnteredPin::new("1234").unwrap().format0_block(&key, "12ab").is_err());
    }

    fn hex_array(s: &str) -> [u8; 16] {
        hex::decode(s).unwrap().try_into().unwrap()
    }
}
