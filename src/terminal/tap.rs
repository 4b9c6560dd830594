//! The Terminal owns one transaction from "present card" to the outcome: it drives the Entry
//! Point state machine with a [`Reader`], handles restarts (Try Again, the wallet's two-tap "See
//! phone" flow), measures the tap and records the exchanges.

use kernels::apdu::RApdu;
use kernels::entry_point::{Action, EntryPoint, Event};
use kernels::outcome::{MessageId, Outcome, Status, UiRequest, UiStatus};
use reader_drivers::{Reader, ReaderError};
use std::time::{Duration, Instant};

/// How long the terminal waits for taps.
#[derive(Debug, Clone)]
pub struct TapPolicy {
    pub first_tap: Duration,
    /// A wallet's See Phone may take the holder up to ~2 minutes (DIGEST.md).
    pub see_phone: Duration,
    pub try_again: Duration,
    pub max_taps: u32,
}

impl Default for TapPolicy {
    fn default() -> Self {
        TapPolicy { first_tap: Duration::from_secs(30), see_phone: Duration::from_secs(120), try_again: Duration::from_secs(30), max_taps: 3 }
    }
}

/// Something the cashier / cardholder display should show now.
#[derive(Debug, Clone)]
pub enum Display {
    Ui(UiRequest),
    /// Present the card (again) — reader polling.
    PresentCard,
    /// A card is in the field and being read: "Hold still".
    CardDetected,
}

/// One recorded exchange (for replay scripts).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub tap: u32,
    pub c: Vec<u8>,
    pub r: Vec<u8>,
}

/// What one transaction at the reader produced.
#[derive(Debug)]
pub struct TapResult {
    pub outcome: Outcome,
    pub taps: u32,
    /// Air time of the last tap at 106 kbit/s, from the bytes exchanged.
    pub card_in_field: Duration,
    /// Wall time the card spent in the field on the last tap (to "card read" or outcome).
    pub tap_wall: Duration,
    pub total: Duration,
    pub exchanges: Vec<Recorded>,
    /// Unpredictable numbers used, one per tap.
    pub unpredictable_numbers: Vec<[u8; 4]>,
    /// A reader failure that ended the transaction (outcome is then Try Again / End Application).
    pub reader_error: Option<ReaderError>,
    /// Pre-processing allowed no combination (Book B §3.1.1): no card was asked for.
    pub refused_before_tap: bool,
    /// The transaction's inputs as the kernel used them (date, time, first unpredictable number).
    pub transaction: kernels::entry_point::Transaction,
}

/// Drives one transaction. `un` gives the Unpredictable Number of each restart.
pub fn run(ep: &mut EntryPoint, reader: &mut dyn Reader, policy: &TapPolicy, mut un: impl FnMut() -> [u8; 4], mut display: impl FnMut(Display)) -> TapResult {
    let started = Instant::now();
    let mut exchanges = Vec::new();
    let mut uns = vec![ep.transaction().unpredictable_number];
    let mut reader_error = None;
    let mut action = ep.start();
    let mut tap_started = Instant::now();
    let mut tap_wall = Duration::ZERO;
    let refused_before_tap = matches!(action, Action::Done(_));
    // This transaction's taps start here (a simulated holder taps again for it).
    reader.begin_transaction();
    if !refused_before_tap {
        display(Display::PresentCard);
        match poll(reader, policy.first_tap, &mut display) {
            Ok(()) => {
                tap_started = Instant::now();
                display(Display::CardDetected);
            }
            Err(e) => {
                return TapResult {
                    outcome: Outcome::end_application(e.to_string()),
                    taps: 0,
                    card_in_field: Duration::ZERO,
                    tap_wall,
                    total: started.elapsed(),
                    exchanges,
                    unpredictable_numbers: uns,
                    reader_error: Some(e),
                    refused_before_tap,
                    transaction: ep.transaction().clone(),
                }
            }
        }
    }
    let mut card_in_field = Duration::ZERO;
    loop {
        action = match action {
            Action::Transmit(c) => {
                let bytes = c.to_bytes();
                tracing::debug!(command = c.name(), capdu = %crate::redact::apdu_command(&bytes), "C-APDU");
                match reader.transceive(&bytes) {
                    Ok(r) => {
                        tracing::debug!(rapdu = %crate::redact::apdu_response(&r), "R-APDU");
                        exchanges.push(Recorded { tap: ep.taps, c: bytes, r: r.clone() });
                        match RApdu::parse(&r) {
                            Some(r) => ep.handle(Event::Response(r)),
                            None => ep.handle(Event::CommError),
                        }
                    }
                    Err(ReaderError::CardRemoved) => {
                        tracing::info!("card removed before the kernel finished");
                        ep.handle(Event::CardRemoved)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reader error during the tap");
                        reader_error = Some(e);
                        ep.handle(Event::CommError)
                    }
                }
            }
            Action::CardReadComplete(ui) => {
                // Book A §9 / C-3: "card read OK, remove card" — the card may go now.
                tap_wall = tap_started.elapsed();
                card_in_field = reader.air_time().unwrap_or_default();
                display(Display::Ui(ui));
                ep.resume()
            }
            Action::Done(o) => {
                if tap_wall.is_zero() {
                    tap_wall = tap_started.elapsed();
                    card_in_field = reader.air_time().unwrap_or_default();
                }
                if let Some(ui) = &o.ui_on_outcome {
                    display(Display::Ui(ui.clone()));
                }
                // Book B §3.5.1.3: Try Again → Start B with a new tap.
                let mut o = o;
                if o.status == Status::TryAgain && ep.taps < policy.max_taps {
                    let wait = if o.is_see_phone() { policy.see_phone } else { policy.try_again };
                    let removal = reader.wait_for_removal(Duration::from_secs(5));
                    // Book B §3.5.1.2: a Field Off Request switches the field off for its hold
                    // time before the restart; without one, a card still in the field (the
                    // holder confirmed on the phone there) needs the field off too, to be a new
                    // tap.
                    match (o.field_off_ms, &removal) {
                        (Some(ms), _) => {
                            tracing::debug!(ms, "field off before restart");
                            reader.field_off(Duration::from_millis(u64::from(ms)));
                        }
                        (None, Err(ReaderError::NotRemoved(_))) => reader.field_off(Duration::ZERO),
                        _ => {}
                    }
                    let tap = match removal {
                        Err(e @ (ReaderError::Cancelled | ReaderError::Unavailable(_))) => Err(e),
                        _ => {
                            // Book B §3.2.1.2: the retained UI Request on Restart ("Present card
                            // again") is what the holder sees; "Present card" only without one.
                            match &ep.restart_ui {
                                Some(ui) => display(Display::Ui(ui.clone())),
                                None => display(Display::PresentCard),
                            }
                            poll(reader, wait, &mut display)
                        }
                    };
                    match tap {
                        Ok(()) => {
                            tap_started = Instant::now();
                            display(Display::CardDetected);
                            tap_wall = Duration::ZERO;
                            let n = un();
                            uns.push(n);
                            action = ep.restart_b(n);
                            continue;
                        }
                        // The cashier gave up, or the reader went away: the sale ends here.
                        Err(e @ (ReaderError::Cancelled | ReaderError::Unavailable(_))) => {
                            o = Outcome::end_application(e.to_string());
                            reader_error = Some(e);
                        }
                        Err(e) => tracing::info!(error = %e, "no new tap after Try Again"),
                    }
                }
                return TapResult {
                    outcome: o,
                    taps: ep.taps,
                    card_in_field,
                    tap_wall,
                    total: started.elapsed(),
                    exchanges,
                    unpredictable_numbers: uns,
                    reader_error,
                    refused_before_tap,
                    transaction: ep.transaction().clone(),
                };
            }
        };
    }
}

/// Polls for one card until `timeout` (Book B §3.2.1.3-3.2.1.5): while two cards answer, "Present
/// one card only" (status Processing Error) once, and again with Ready to Read when one is left;
/// no APDU is sent meanwhile.
pub fn poll(reader: &mut dyn Reader, timeout: Duration, display: &mut impl FnMut(Display)) -> Result<(), ReaderError> {
    let deadline = Instant::now() + timeout;
    let mut collided = false;
    loop {
        match reader.wait_for_card(deadline.saturating_duration_since(Instant::now())) {
            Err(ReaderError::Collision) => {
                if !collided {
                    tracing::info!("more than one card in the field");
                    display(Display::Ui(UiRequest::new(MessageId::PresentOneCardOnly, UiStatus::ProcessingError)));
                    collided = true;
                }
                if Instant::now() >= deadline {
                    return Err(ReaderError::NoCard(timeout));
                }
            }
            Ok(()) => {
                if collided {
                    display(Display::Ui(UiRequest::new(MessageId::PresentOneCardOnly, UiStatus::ReadyToRead)));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that answers the polls from a script.
    struct Polls(Vec<Result<(), ReaderError>>);
    impl Reader for Polls {
        fn name(&self) -> String {
            "polls".into()
        }
        fn wait_for_card(&mut self, t: Duration) -> Result<(), ReaderError> {
            if self.0.is_empty() {
                return Err(ReaderError::NoCard(t));
            }
            self.0.remove(0)
        }
        fn transmit_raw(&mut self, _: &[u8]) -> Result<Vec<u8>, ReaderError> {
            Err(ReaderError::CardRemoved)
        }
        fn wait_for_removal(&mut self, _: Duration) -> Result<(), ReaderError> {
            Ok(())
        }
    }

    fn shown(polls: Vec<Result<(), ReaderError>>) -> (Result<(), ReaderError>, Vec<(MessageId, UiStatus)>) {
        let mut seen = vec![];
        let r = poll(&mut Polls(polls), Duration::from_secs(5), &mut |d| {
            if let Display::Ui(u) = d {
                seen.push((u.message, u.status));
            }
        });
        (r, seen)
    }

    #[test]
    fn a_collision_asks_for_one_card_once_and_again_when_it_is_resolved() {
        let c = || Err(ReaderError::Collision);
        let (r, seen) = shown(vec![c(), c(), c(), Ok(())]);
        assert_eq!(r, Ok(()));
        assert_eq!(seen, vec![(MessageId::PresentOneCardOnly, UiStatus::ProcessingError), (MessageId::PresentOneCardOnly, UiStatus::ReadyToRead)]);
        let (r, seen) = shown(vec![Ok(())]);
        assert_eq!((r, seen.len()), (Ok(()), 0));
        let (r, seen) = shown(vec![c()]);
        assert!(matches!(r, Err(ReaderError::NoCard(_))) && seen.len() == 1, "{r:?} {seen:?}");
        let (r, _) = shown(vec![c(), Err(ReaderError::Cancelled)]);
        assert_eq!(r, Err(ReaderError::Cancelled));
    }
}
