//! libnfc backend (the `nfc1` crate, libnfc built from source): PN53x / PN532 / ACR122 readers
//! through libnfc's own drivers (cargo features `nfc-*`), and any PC/SC contactless reader through
//! libnfc's `pcsc` driver.
//!
//! libnfc has no "card arrived" event: like `nfc-poll`, the terminal selects a passive target
//! (ISO/IEC 14443-A, then -B, 106 kbit/s) at a fixed period until one answers, and watches for
//! removal with `nfc_initiator_target_is_present` at the same period. With the `pcsc` driver a
//! device can only be opened while a card is in the field (libnfc connects to the card when it
//! opens the device), so the device is opened per tap and closed when the card leaves.

use crate::{ReaderError, ReaderInfo};
use nfc1::{BaudRate, Context, Device, Modulation, ModulationType, Property, Timeout};
use std::time::{Duration, Instant};

/// Polling period for arrival and removal (ISO/IEC 14443-3 polling is ~every 5–100 ms on real
/// PCDs; 50 ms keeps the tap latency low without loading the reader).
const POLL: Duration = Duration::from_millis(50);
/// Largest response a short APDU can carry (256 data bytes + SW1 SW2), with room to spare.
const RX_MAX: usize = 1024;
const MAX_DEVICES: usize = 16;

/// The modulations polled for a tap, in order (EMV contactless: Type A and Type B).
const MODULATIONS: [Modulation; 2] = [
    Modulation { modulation_type: ModulationType::Iso14443a, baud_rate: BaudRate::Baud106 },
    Modulation { modulation_type: ModulationType::Iso14443b, baud_rate: BaudRate::Baud106 },
];

/// A libnfc device chosen by (a substring of) its connstring, e.g. `pcsc:Virtual PCD 00 00`,
/// `pn53x_usb:`, `pn532_uart:/dev/ttyUSB0`.
pub struct NfcReader {
    ctx: Context,
    connstring: String,
    device: Option<Device>,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A card was read and has not been seen leaving: it must go before a new tap counts.
    card_seen: bool,
}

fn nfc_err(what: &str, e: nfc1::Error) -> ReaderError {
    ReaderError::Unavailable(format!("libnfc {what}: {e:?}"))
}

fn connstrings(ctx: &mut Context) -> Result<Vec<String>, ReaderError> {
    ctx.list_devices(MAX_DEVICES).map_err(|e| nfc_err("device scan", e))
}

/// "No such device", naming what was asked for and what libnfc does see.
fn not_found(pattern: &str, found: &[String], open_error: Option<nfc1::Error>) -> ReaderError {
    let why = open_error.map(|e| format!(" (libnfc cannot open it: {e:?})")).unwrap_or_default();
    let seen =
        if found.is_empty() { "libnfc found no device (for PC/SC readers: is pcscd running?)".to_string() } else { format!("devices: {}", found.join(", ")) };
    ReaderError::Unavailable(format!("no libnfc device {pattern:?}{why}; {seen}"))
}

/// Every device libnfc finds. Whether a card is present is only known for devices libnfc could
/// open (with the `pcsc` driver: exactly when a card is in the field).
pub fn list() -> Result<Vec<ReaderInfo>, ReaderError> {
    let mut ctx = Context::new().map_err(|e| nfc_err("init", e))?;
    let mut out = Vec::new();
    for cs in connstrings(&mut ctx)? {
        let card_present = match ctx.open_with_connstring(&cs) {
            Ok(mut d) => d.initiator_init().is_ok() && d.initiator_target_is_present_any().is_ok(),
            Err(_) => false,
        };
        out.push(ReaderInfo { backend: "nfc", name: cs, card_present, error: None });
    }
    Ok(out)
}

impl NfcReader {
    /// Chooses the first device whose connstring contains `pattern` (case-insensitive; empty: the
    /// first device). A connstring libnfc does not list (a serial port, say) is used as given.
    pub fn open(pattern: &str) -> Result<Self, ReaderError> {
        let mut ctx = Context::new().map_err(|e| nfc_err("init", e))?;
        let found = connstrings(&mut ctx)?;
        let want = pattern.to_lowercase();
        let connstring = match found.iter().find(|c| c.to_lowercase().contains(&want)) {
            Some(c) => c.clone(),
            // A full connstring libnfc did not list (a serial port is not scanned): it must name
            // a device that opens now. Never wait for a card on a device that is not there.
            None if pattern.contains(':') => match ctx.open_with_connstring(pattern) {
                Ok(_) => pattern.to_string(),
                Err(e) => return Err(not_found(pattern, &found, Some(e))),
            },
            None => return Err(not_found(pattern, &found, None)),
        };
        tracing::debug!(%connstring, "libnfc device chosen");
        Ok(NfcReader { ctx, connstring, device: None, cancel: Default::default(), card_seen: false })
    }

    /// One polling attempt: open the device if needed and select a target.
    fn try_select(&mut self) -> Result<bool, ReaderError> {
        if self.device.is_none() {
            match self.ctx.open_with_connstring(&self.connstring) {
                Ok(mut d) => {
                    if d.initiator_init().is_err() {
                        return Ok(false);
                    }
                    // initiator_init turns on infinite select: one select would then take
                    // the chip's whole timeout (~300 ms on PN53x) when no card is there.
                    let _ = d.set_property_bool(Property::InfiniteSelect, false);
                    self.device = Some(d);
                }
                Err(_) => return Ok(false),
            }
        }
        let Some(d) = self.device.as_mut() else { return Ok(false) };
        // Book B §3.2.1.4 / ISO/IEC 14443-3: two Type A targets answering the poll is a
        // collision. nfc1's list call does not return the count: slots it did not fill keep
        // an empty UID. Not through libnfc's pcsc driver: behind pcscd one card is activated
        // and a second is never reported.
        let listed = if self.connstring.starts_with("pcsc") { None } else { d.initiator_list_passive_targets(&MODULATIONS[0], 2).ok() };
        if let Some(found) = listed {
            let cards = found.iter().filter(|t| matches!(&t.target_info, nfc1::target_info::TargetInfo::Iso14443a(a) if a.uid_len > 0)).count();
            if cards > 1 {
                return Err(ReaderError::Collision);
            }
            // Listing halts the targets it found: a field reset wakes the card for the select
            // (unverified on every PN53x firmware).
            if cards == 1 {
                let _ = d.initiator_init();
                let _ = d.set_property_bool(Property::InfiniteSelect, false);
            }
        }
        for m in &MODULATIONS {
            if d.initiator_select_passive_target(m).is_ok() {
                return Ok(true);
            }
        }
        // The pcsc driver's device is bound to the card that was present when it opened.
        if self.connstring.starts_with("pcsc") {
            self.device = None;
        }
        Ok(false)
    }

    /// A clear error instead of "no card" when the reader went away during the wait.
    fn check_still_there(&mut self) -> Result<(), ReaderError> {
        if self.connstring.starts_with("pcsc") && crate::pcsc_reader::service_gone() {
            return Err(ReaderError::Unavailable("the PC/SC service (pcscd) is not running or has stopped".into()));
        }
        let listed = connstrings(&mut self.ctx)?;
        // Serial connstrings are not always listed (no intrusive scan): only judge listed ones.
        if !listed.is_empty() && !listed.iter().any(|c| c == &self.connstring) && !self.connstring.contains("uart") {
            return Err(ReaderError::Unavailable(format!("libnfc device {:?} was unplugged", self.connstring)));
        }
        Ok(())
    }

    fn is_present(&mut self) -> bool {
        match self.device.as_mut() {
            Some(d) => d.initiator_target_is_present_any().is_ok(),
            None => false,
        }
    }
}

impl crate::Reader for NfcReader {
    fn canceller(&self) -> Option<crate::Canceller> {
        Some(crate::Canceller::flag(self.cancel.clone(), || {}))
    }

    fn name(&self) -> String {
        format!("nfc:{}", self.connstring)
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        let deadline = Instant::now() + timeout;
        if self.card_seen {
            match self.wait_for_removal(timeout) {
                Ok(()) => {}
                Err(ReaderError::NotRemoved(_)) => return Err(ReaderError::NoCard(timeout)),
                Err(e) => return Err(e),
            }
        }
        let mut misses = 0u32;
        loop {
            if self.try_select()? {
                self.card_seen = true;
                return Ok(());
            }
            // Every second without a card: is the device (or pcscd behind it) still there?
            misses += 1;
            // Only with the device closed: a scan would disturb a USB device we hold open.
            if misses.is_multiple_of(20) && self.device.is_none() {
                self.check_still_there()?;
            }
            if self.cancel.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(ReaderError::NoCard(timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    fn field_off(&mut self, off: Duration) {
        // Closing the device drops the field (PN53x) or the card connection (pcsc driver).
        self.device = None;
        self.card_seen = false;
        std::thread::sleep(off.min(Duration::from_secs(2)));
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let d = self.device.as_mut().ok_or(ReaderError::CardRemoved)?;
        match d.initiator_transceive_bytes(capdu, RX_MAX, Timeout::Default) {
            Ok(r) if r.is_empty() => {
                self.device = None;
                self.card_seen = false;
                Err(ReaderError::CardRemoved)
            }
            Ok(r) => Ok(r),
            Err(e) => {
                // Tell a card that left from a reader that failed.
                let gone = d.initiator_target_is_present_any().is_err();
                if gone {
                    self.device = None;
                    self.card_seen = false;
                    Err(ReaderError::CardRemoved)
                } else {
                    Err(ReaderError::Transmission(format!("libnfc transceive: {e:?}")))
                }
            }
        }
    }

    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_present() {
                self.device = None;
                self.card_seen = false;
                return Ok(());
            }
            if self.cancel.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(ReaderError::NotRemoved(timeout));
            }
            std::thread::sleep(POLL);
        }
    }
}
