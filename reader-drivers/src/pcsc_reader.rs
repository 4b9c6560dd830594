//! PC/SC backend: any contactless reader pcsc-lite's `pcscd` knows (CCID readers, ACR122U in
//! PC/SC mode, the vpcd virtual reader), through the `pcsc` crate.
//!
//! Waiting for a card and for its removal uses `SCardGetStatusChange` (PC/SC part 5 §3.1.3): the
//! thread sleeps in pcscd until the reader's state changes or the timeout passes — no polling here.
//! A contactless reader reports a card "present" once it has activated it (ISO/IEC 14443-4) and
//! built its ATR (PC/SC part 3 §3.1.3.2.3), so "present" is the tap.

use crate::{ReaderError, ReaderInfo};
use pcsc::{Card, Context, Disposition, Error as PcscError, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The longest single `SCardGetStatusChange` call; the cancel flag is looked at in between.
const SLICE: Duration = Duration::from_millis(250);

/// Short APDUs (≤ 256 data bytes + SW1 SW2) are all EMV uses; this also fits extended ones.
const RESPONSE_BUFFER: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;

/// A PC/SC reader chosen by (a substring of) its name.
pub struct PcscReader {
    ctx: Context,
    reader: CString,
    card: Option<Card>,
    buf: Vec<u8>,
    /// Set by the canceller; also covers a cancel that comes before the wait has begun.
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A card was read and has not been seen leaving: it must go before a new tap counts (a
    /// phone left on the counter is not the next customer's payment).
    card_seen: bool,
}

/// The reader-level meaning of a PC/SC error.
fn map_error(e: PcscError, reader: &str) -> ReaderError {
    use PcscError as E;
    match e {
        E::RemovedCard | E::ResetCard | E::NoSmartcard | E::UnpoweredCard | E::UnresponsiveCard => ReaderError::CardRemoved,
        E::NoService | E::ServiceStopped => ReaderError::Unavailable("the PC/SC service (pcscd) is not running or has stopped".into()),
        E::ReaderUnavailable | E::UnknownReader | E::NoReadersAvailable => {
            ReaderError::Unavailable(format!("PC/SC reader {reader:?} was unplugged or is not available"))
        }
        E::NotTransacted | E::CommError => ReaderError::Transmission(format!("{e} (card left the field?)")),
        other => ReaderError::Transmission(format!("PC/SC: {other}")),
    }
}

fn establish() -> Result<Context, ReaderError> {
    Context::establish(Scope::User).map_err(|e| match e {
        PcscError::NoService | PcscError::ServiceStopped => {
            ReaderError::Unavailable("cannot reach the PC/SC service: is pcscd running? (start it with `pcscd`, see README)".into())
        }
        other => ReaderError::Unavailable(format!("PC/SC: {other}")),
    })
}

/// Whether pcscd is unreachable now (tells "the daemon died" from "the card failed").
pub(crate) fn service_gone() -> bool {
    matches!(Context::establish(Scope::User), Err(PcscError::NoService | PcscError::ServiceStopped))
}

fn reader_names(ctx: &Context) -> Result<Vec<CString>, ReaderError> {
    match ctx.list_readers_owned() {
        Ok(l) => Ok(l),
        Err(PcscError::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(map_error(e, "")),
    }
}

/// Every PC/SC reader with whether a card is in its field.
pub fn list() -> Result<Vec<ReaderInfo>, ReaderError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut states: Vec<ReaderState> = names.iter().map(|n| ReaderState::new(n.clone(), State::UNAWARE)).collect();
    ctx.get_status_change(Duration::ZERO, &mut states).map_err(|e| map_error(e, ""))?;
    Ok(states
        .iter()
        .map(|s| ReaderInfo {
            backend: "pcsc",
            name: s.name().to_string_lossy().into_owned(),
            card_present: s.event_state().contains(State::PRESENT),
            error: None,
        })
        .collect())
}

impl PcscReader {
    /// Opens the first reader whose name contains `pattern` (case-insensitive; empty: the first
    /// reader). No card needs to be present.
    pub fn open(pattern: &str) -> Result<Self, ReaderError> {
        let ctx = establish()?;
        let names = reader_names(&ctx)?;
        let want = pattern.to_lowercase();
        let reader = names.iter().find(|n| n.to_string_lossy().to_lowercase().contains(&want)).cloned().ok_or_else(|| {
            let have: Vec<String> = names.iter().map(|n| format!("{:?}", n.to_string_lossy())).collect();
            ReaderError::Unavailable(if have.is_empty() {
                "pcscd is running but has no readers (is the reader plugged in?)".to_string()
            } else {
                format!("no PC/SC reader name contains {pattern:?}; readers: {}", have.join(", "))
            })
        })?;
        tracing::debug!(reader = %reader.to_string_lossy(), "PC/SC reader opened");
        Ok(PcscReader { ctx, reader, card: None, buf: vec![0; RESPONSE_BUFFER], cancel: Default::default(), card_seen: false })
    }

    fn reader_name(&self) -> String {
        self.reader.to_string_lossy().into_owned()
    }

    /// Blocks in `SCardGetStatusChange` until `done(state)` holds or `timeout` passes (false).
    /// Waits in slices of at most [`SLICE`] and looks at the cancel flag before each: a cancel
    /// that lands between two calls (when `SCardCancel` has nothing to interrupt) still counts.
    fn wait_state(&self, timeout: Duration, done: impl Fn(State) -> bool) -> Result<bool, ReaderError> {
        let deadline = Instant::now() + timeout;
        let mut rs = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        loop {
            if self.cancel.swap(false, Ordering::SeqCst) {
                return Err(ReaderError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ctx.get_status_change(left.min(SLICE), &mut rs) {
                Ok(()) => {}
                Err(PcscError::Timeout) if left > SLICE => continue,
                Err(PcscError::Timeout) => return Ok(false),
                Err(PcscError::Cancelled) => {
                    self.cancel.store(false, Ordering::SeqCst);
                    return Err(ReaderError::Cancelled);
                }
                // No card is involved in a status wait: a broken link is pcscd going away.
                Err(PcscError::CommError | PcscError::InvalidHandle) if service_gone() => return Err(map_error(PcscError::ServiceStopped, "")),
                Err(e) => return Err(map_error(e, &self.reader_name())),
            }
            let st = rs[0].event_state();
            if st.intersects(State::UNKNOWN | State::UNAVAILABLE | State::IGNORE) {
                return Err(ReaderError::Unavailable(format!("PC/SC reader {:?} was unplugged or is not available", self.reader_name())));
            }
            if done(st) {
                return Ok(true);
            }
            if left.is_zero() {
                return Ok(false);
            }
            rs[0].sync_current_state();
        }
    }

    fn release_card(&mut self) {
        if let Some(card) = self.card.take() {
            // The card is probably gone already; a failed disconnect just drops the handle.
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}

impl crate::Reader for PcscReader {
    /// `SCardCancel` on a clone of the context ends a blocked `SCardGetStatusChange`.
    fn canceller(&self) -> Option<crate::Canceller> {
        let ctx = self.ctx.clone();
        Some(crate::Canceller::flag(self.cancel.clone(), move || {
            let _ = ctx.cancel();
        }))
    }

    fn name(&self) -> String {
        format!("pcsc:{}", self.reader_name())
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        self.release_card();
        let deadline = Instant::now() + timeout;
        if self.card_seen {
            if !self.wait_state(timeout, |s| s.contains(State::EMPTY))? {
                return Err(ReaderError::NoCard(timeout));
            }
            self.card_seen = false;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let present = |s: State| s.contains(State::PRESENT) && !s.contains(State::MUTE);
            if !self.wait_state(left, present)? {
                return Err(ReaderError::NoCard(timeout));
            }
            match self.ctx.connect(&self.reader, ShareMode::Shared, Protocols::ANY) {
                Ok(card) => {
                    self.card = Some(card);
                    self.card_seen = true;
                    return Ok(());
                }
                // Gone again before we could connect (a brush past the reader): keep waiting.
                Err(PcscError::NoSmartcard | PcscError::RemovedCard | PcscError::UnresponsiveCard) => {
                    if Instant::now() >= deadline {
                        return Err(ReaderError::NoCard(timeout));
                    }
                    // Wait for the next change rather than retrying at once.
                    if let Err(ReaderError::Cancelled) = self.wait_state(Duration::from_millis(200), |s| !s.contains(State::PRESENT)) {
                        return Err(ReaderError::Cancelled);
                    }
                }
                Err(e) => return Err(map_error(e, &self.reader_name())),
            }
        }
    }

    /// Power the card down (PC/SC has no RF switch; an unpowered contactless card is a field
    /// reset for the reader) and forget it: it may be taken as a new tap.
    fn field_off(&mut self, off: Duration) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::UnpowerCard);
        }
        self.card_seen = false;
        std::thread::sleep(off.min(Duration::from_secs(2)));
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let name = self.reader_name();
        let card = self.card.as_ref().ok_or(ReaderError::CardRemoved)?;
        match card.transmit(capdu, &mut self.buf) {
            // No status word at all: the card went mute mid-exchange (vpcd reports its card
            // leaving this way before pcscd's presence poll notices).
            Ok([]) => {
                self.card = None;
                self.card_seen = false;
                Err(ReaderError::CardRemoved)
            }
            Ok(r) => Ok(r.to_vec()),
            Err(PcscError::CommError | PcscError::NotTransacted) if service_gone() => {
                self.card = None;
                Err(map_error(PcscError::ServiceStopped, ""))
            }
            Err(e) => {
                let err = map_error(e, &name);
                if err == ReaderError::CardRemoved {
                    // It left: whatever comes next is a new tap.
                    self.card = None;
                    self.card_seen = false;
                }
                Err(err)
            }
        }
    }

    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        self.release_card();
        if self.wait_state(timeout, |s| s.contains(State::EMPTY))? {
            self.card_seen = false;
            Ok(())
        } else {
            Err(ReaderError::NotRemoved(timeout))
        }
    }
}
