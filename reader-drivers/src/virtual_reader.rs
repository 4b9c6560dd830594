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
    script: Script,
    /// Every field-off (RF reset) the terminal asked for, with its hold time.
    field_offs: Vec<Duration>,
}

/// What the holder does beyond [`Holder`] (set with the `with_*` builders).
#[derive(Debug, Clone, Default)]
struct Script {
    /// A second card held next to the paying one on the first tap: `Some(n)` — it leaves after
    /// `n` polls that saw both; `None` — it never leaves.
    second_card: Option<Option<usize>>,
    /// Collisions reported so far.
    collisions: usize,
    /// The holder presents the card again whenever the terminal asks (after a Try Again).
    tap_again: bool,
    /// The card answers the Nth exchange of the first tap, and the holder is gone before the
    /// answer reaches the reader (a torn transaction: the card did the command).
    tear_at: Option<usize>,
}

impl VirtualReader {
    pub fn new(profile: &str, wallet: Wallet, holder: Holder) -> Self {
        VirtualReader {
            profile: profile.into(),
            wallet,
            holder,
            in_field: false,
            taps: 0,
            exchanges: 0,
            air: Duration::ZERO,
            script: Script::default(),
            field_offs: vec![],
        }
    }

    /// A second card is in the field with the first on the first tap (ISO/IEC 14443-3
    /// collision): it leaves after `leaves_after` polls, or never (`None`: the virtual holder
    /// never resolves it and the next poll finds no single card).
    pub fn with_second_card(mut self, leaves_after: Option<usize>) -> Self {
        self.script.second_card = Some(leaves_after);
        self
    }

    /// A torn transaction: on the first tap the card runs exchange `n` (1-based) and leaves
    /// before its answer reaches the reader.
    pub fn set_tear_at(&mut self, n: Option<usize>) {
        self.script.tear_at = n;
    }

    /// The holder taps again whenever the terminal asks for the card again (Try Again).
    pub fn with_tap_again(mut self, again: bool) -> Self {
        self.script.tap_again = again;
        self
    }

    /// The field-offs the terminal asked for, in order, with their hold times.
    pub fn field_offs(&self) -> &[Duration] {
        &self.field_offs
    }
    pub fn wallet(&self) -> &Wallet {
        &self.wallet
    }
    pub fn wallet_mut(&mut self) -> &mut Wallet {
        &mut self.wallet
    }
    /// Another holder (what they do at the next transaction), the same card.
    pub fn set_holder(&mut self, holder: Holder) {
        self.holder = holder;
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

    /// The holder taps once for every transaction (and again when the phone asks).
    fn begin_transaction(&mut self) {
        if self.in_field {
            self.wallet.power_off();
        }
        self.in_field = false;
        self.taps = 0;
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if self.in_field {
            return Ok(());
        }
        if self.taps == 0 {
            if let Some(leaves_after) = self.script.second_card {
                match leaves_after {
                    Some(n) if self.script.collisions >= n => self.script.second_card = None,
                    // Nobody takes the second card away: after the first report the terminal
                    // is left without a single card (the virtual holder's answer is immediate).
                    None if self.script.collisions > 0 => return Err(ReaderError::NoCard(timeout)),
                    _ => {
                        self.script.collisions += 1;
                        return Err(ReaderError::Collision);
                    }
                }
            }
        }
        let tap = if self.taps == 0 {
            true
        } else if self.wallet.prompt_shown && self.holder.fingerprint_on_prompt {
            self.wallet.give_fingerprint()
        } else {
            self.script.tap_again
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
        if self.taps == 1 && self.script.tear_at == Some(self.exchanges) {
            self.in_field = false;
            self.wallet.power_off();
            return Err(ReaderError::CardRemoved);
        }
        Ok(r)
    }

    fn wait_for_removal(&mut self, _timeout: Duration) -> Result<(), ReaderError> {
        self.in_field = false;
        self.wallet.power_off();
        Ok(())
    }

    /// The field goes off: the card is powered down and a following poll is a new tap.
    fn field_off(&mut self, off: Duration) {
        self.in_field = false;
        self.wallet.power_off();
        self.field_offs.push(off);
    }

    fn air_time(&self) -> Option<Duration> {
        Some(self.air)
    }
}

/// A virtual phone in the hand of a person at the keyboard (the interactive demo): the reader
/// waits until they tap, and the same hand gives the fingerprint or picks another card. Clone it
/// freely: every clone is the same phone.
#[derive(Clone)]
pub struct PhoneInHand {
    inner: std::sync::Arc<(std::sync::Mutex<Hand>, std::sync::Condvar)>,
    profile: String,
}

struct Hand {
    wallet: Wallet,
    /// A tap asked for and not yet seen by the reader.
    tap_pending: bool,
    in_field: bool,
    /// The terminal should stop waiting for a tap (cashier cancelled).
    cancel: bool,
    air: Duration,
}

pub use crate::PhoneView;

impl PhoneInHand {
    pub fn new(profile: &str, wallet: Wallet) -> Self {
        let hand = Hand { wallet, tap_pending: false, in_field: false, cancel: false, air: Duration::ZERO };
        PhoneInHand { inner: std::sync::Arc::new((std::sync::Mutex::new(hand), std::sync::Condvar::new())), profile: profile.into() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Hand) -> T) -> T {
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        let t = f(&mut g);
        cv.notify_all();
        t
    }

    /// Put the phone on the reader (seen by the next or the current wait for a card).
    pub fn tap(&self) {
        self.with(|h| h.tap_pending = true);
    }

    /// Touch the fingerprint sensor. False for a plastic card.
    pub fn fingerprint(&self) -> bool {
        self.with(|h| h.wallet.give_fingerprint())
    }

    /// Pay with card `index` of the wallet.
    pub fn choose_card(&self, index: usize) -> bool {
        self.with(|h| h.wallet.choose_card(index))
    }

    /// Stops a wait for a card (the cashier cancelled the sale).
    pub fn cancel_wait(&self) {
        self.with(|h| {
            h.cancel = true;
            h.tap_pending = false;
        });
    }

    pub fn view(&self) -> PhoneView {
        self.with(|h| {
            let cards: Vec<String> = h.wallet.cards.iter().map(|c| format!("{} {}", kernels::types::mask_pan(&c.profile.pan), c.profile.label)).collect();
            let chosen = h.wallet.cards.iter().position(|c| c.priority == Some(1)).unwrap_or(0);
            PhoneView { in_field: h.in_field, asks_fingerprint: h.wallet.prompt_shown, fingerprint_given: h.wallet.fingerprint_given(), cards, chosen }
        })
    }

    /// The reader this phone is tapped on.
    pub fn reader(&self) -> HandReader {
        HandReader { phone: self.clone() }
    }
}

/// The reader side of a [`PhoneInHand`].
pub struct HandReader {
    phone: PhoneInHand,
}

impl Reader for HandReader {
    fn canceller(&self) -> Option<crate::Canceller> {
        let (p, q) = (self.phone.clone(), self.phone.clone());
        // A new sale: forget a cancel, and a tap made before the terminal asked for the card.
        Some(crate::Canceller::new(
            move || p.cancel_wait(),
            move || {
                q.with(|h| {
                    h.cancel = false;
                    h.tap_pending = false;
                })
            },
        ))
    }

    fn name(&self) -> String {
        format!("virtual:{}", self.phone.profile)
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        let (m, cv) = &*self.phone.inner;
        let deadline = std::time::Instant::now() + timeout;
        let mut h = m.lock().unwrap_or_else(|e| e.into_inner());
        // A cancel pressed just before the wait began counts; the till resets it per sale.
        loop {
            if h.cancel {
                h.cancel = false;
                return Err(ReaderError::Cancelled);
            }
            if h.tap_pending {
                h.tap_pending = false;
                h.in_field = true;
                h.air = Duration::ZERO;
                cv.notify_all();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(ReaderError::NoCard(timeout));
            }
            h = cv.wait_timeout(h, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        self.phone.with(|h| {
            if !h.in_field {
                return Err(ReaderError::CardRemoved);
            }
            let r = h.wallet.transmit(capdu);
            h.air += air::exchange(capdu.len(), r.len());
            Ok(r)
        })
    }

    /// The hand takes the phone away as soon as the terminal is done with it.
    fn wait_for_removal(&mut self, _timeout: Duration) -> Result<(), ReaderError> {
        self.phone.with(|h| {
            h.in_field = false;
            h.wallet.power_off();
        });
        Ok(())
    }

    fn air_time(&self) -> Option<Duration> {
        Some(self.phone.with(|h| h.air))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_holder_taps_again_for_every_transaction() {
        let mut r = VirtualReader::new("unionpay-phone", Wallet::load("unionpay-phone").unwrap(), Holder::default());
        for _ in 0..3 {
            r.begin_transaction();
            assert_eq!(r.wait_for_card(Duration::ZERO), Ok(()));
            r.wait_for_removal(Duration::ZERO).unwrap();
            // Within one transaction, no second tap unless the phone asked for one.
            assert_eq!(r.wait_for_card(Duration::ZERO), Err(ReaderError::NoCard(Duration::ZERO)));
        }
    }

    #[test]
    fn a_second_card_collides_until_it_leaves() {
        let w = || Wallet::load("unionpay-phone").unwrap();
        let mut r = VirtualReader::new("unionpay-phone", w(), Holder::default()).with_second_card(Some(2));
        r.begin_transaction();
        assert_eq!(r.wait_for_card(Duration::ZERO), Err(ReaderError::Collision));
        assert_eq!(r.wait_for_card(Duration::ZERO), Err(ReaderError::Collision));
        assert_eq!(r.wait_for_card(Duration::ZERO), Ok(()));
        let mut r = VirtualReader::new("unionpay-phone", w(), Holder::default()).with_second_card(None);
        assert_eq!(r.wait_for_card(Duration::ZERO), Err(ReaderError::Collision));
        assert_eq!(r.wait_for_card(Duration::ZERO), Err(ReaderError::NoCard(Duration::ZERO)));
    }

    #[test]
    fn a_holder_who_taps_again_comes_back_after_the_field_off() {
        let mut r = VirtualReader::new("unionpay-phone", Wallet::load("unionpay-phone").unwrap(), Holder::default()).with_tap_again(true);
        r.begin_transaction();
        assert_eq!(r.wait_for_card(Duration::ZERO), Ok(()));
        r.field_off(Duration::from_millis(100));
        assert_eq!(r.transmit_raw(&[0, 0xA4, 4, 0]), Err(ReaderError::CardRemoved));
        assert_eq!(r.field_offs(), &[Duration::from_millis(100)]);
        assert_eq!(r.wait_for_card(Duration::ZERO), Ok(()));
        assert_eq!(r.taps(), 2);
    }

    #[test]
    fn a_tap_before_the_sale_is_forgotten_when_the_sale_starts() {
        let phone = PhoneInHand::new("unionpay-phone", Wallet::load("unionpay-phone").unwrap());
        let mut r = phone.reader();
        phone.tap();
        r.canceller().unwrap().reset();
        assert_eq!(r.wait_for_card(Duration::from_millis(20)), Err(ReaderError::NoCard(Duration::from_millis(20))));
    }

    #[test]
    fn phone_in_hand_waits_for_the_tap_and_can_be_cancelled() {
        let phone = PhoneInHand::new("unionpay-phone", Wallet::load("unionpay-phone").unwrap());
        let mut r = phone.reader();
        assert_eq!(r.wait_for_card(Duration::from_millis(20)), Err(ReaderError::NoCard(Duration::from_millis(20))));
        let p2 = phone.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            p2.tap();
        });
        assert_eq!(r.wait_for_card(Duration::from_secs(5)), Ok(()));
        t.join().unwrap();
        assert!(phone.view().in_field);
        let sel =
            r.transceive(&[0x00, 0xA4, 0x04, 0x00, 0x0E, b'2', b'P', b'A', b'Y', b'.', b'S', b'Y', b'S', b'.', b'D', b'D', b'F', b'0', b'1', 0x00]).unwrap();
        assert_eq!(&sel[sel.len() - 2..], &[0x90, 0x00]);
        r.wait_for_removal(Duration::ZERO).unwrap();
        assert!(!phone.view().in_field);
        assert_eq!(r.transmit_raw(&[0, 0xA4, 4, 0]), Err(ReaderError::CardRemoved));
        let p3 = phone.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            p3.cancel_wait();
        });
        assert_eq!(r.wait_for_card(Duration::from_secs(5)), Err(ReaderError::Cancelled));
        t.join().unwrap();
    }
}
