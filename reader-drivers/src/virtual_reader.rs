//! The virtual reader: an in-process phone wallet (or plastic card) in an imaginary field, with a
//! scripted holder who can give the fingerprint when the phone asks and tap again.

use crate::{air, Reader, ReaderError};
use std::time::Duration;
use test_cards::Wallet;

/// What the simulated holder does.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    /// When the phone shows "confirm with fingerprint" (See Phone), touch the sensor and tap again.
    pub fingerprint_on_prompt: bool,
    /// Pull the card away after this many exchanges of the first tap (to test removal).
    pub remove_after: Option<usize>,
}

/// A reader with a virtual card.
pub struct VirtualReader {
    profile: String,
    wallet: Wallet,
    holder: Holder,
    in_field: bool,
    taps: u32,
    exchanges: usize,
    air: Duration,
}

impl VirtualReader {
    pub fn new(profile: &str, wallet: Wallet, holder: Holder) -> Self {
        VirtualReader { profile: profile.into(), wallet, holder, in_field: false, taps: 0, exchanges: 0, air: Duration::ZERO }
    }
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }
    pub fn wallet_mut(&mut self) -> &mut Wallet {
        &mut self.wallet
    }
    /// Taps so far.
    pub fn taps(&self) -> u32 {
        self.taps
    }
}

impl Reader for VirtualReader {
    fn name(&self) -> String {
        format!("virtual:{}", self.profile)
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if self.in_field {
            return Ok(());
        }
        let tap = if self.taps == 0 {
            true
        } else if self.wallet.prompt_shown && self.holder.fingerprint_on_prompt {
            self.wallet.give_fingerprint()
        } else {
            false
        };
        if !tap {
            // Nobody will come back: the virtual holder's answer is immediate.
            return Err(ReaderError::NoCard(timeout));
        }
        self.taps += 1;
        self.in_field = true;
        self.exchanges = 0;
        self.air = Duration::ZERO;
        Ok(())
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        if !self.in_field {
            return Err(ReaderError::CardRemoved);
        }
        if self.taps == 1 && self.holder.remove_after.is_some_and(|n| self.exchanges >= n) {
            self.in_field = false;
            self.wallet.power_off();
            return Err(ReaderError::CardRemoved);
        }
        self.exchanges += 1;
        let r = self.wallet.transmit(capdu);
        self.air += air::exchange(capdu.len(), r.len());
        Ok(r)
    }

    fn wait_for_removal(&mut self, _timeout: Duration) -> Result<(), ReaderError> {
        self.in_field = false;
        self.wallet.power_off();
        Ok(())
    }

    fn air_time(&self) -> Option<Duration> {
        Some(self.air)
    }
}
