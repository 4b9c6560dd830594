//! The Terminal owns one transaction from "present card" to the outcome: it drives the Entry
//! Point state machine with a [`Reader`], handles restarts (Try Again, the wallet's two-tap "See
//! phone" flow), measures the tap and records the exchanges.

use kernels::apdu::RApdu;
use kernels::entry_point::{Action, EntryPoint, Event};
use kernels::outcome::{Outcome, Status, UiRequest};
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
        match reader.wait_for_card(policy.first_tap) {
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
                    // Book A: the field goes off before the restart, so a phone that stayed in
                    // the field (the holder confirmed on it there) is a new tap too.
                    if let Err(ReaderError::NotRemoved(_)) = removal {
                        let ms = o.field_off_ms.unwrap_or(0);
                        tracing::debug!(ms, "card still in the field: field off before restart");
                        reader.field_off(Duration::from_millis(u64::from(ms)));
                    }
                    if let Some(ui) = &ep.restart_ui {
                        display(Display::Ui(ui.clone()));
                    }
                    let tap = match removal {
                        Err(e @ (ReaderError::Cancelled | ReaderError::Unavailable(_))) => Err(e),
                        _ => {
                            display(Display::PresentCard);
                            reader.wait_for_card(wait)
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
