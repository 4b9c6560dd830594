//! Readers move bytes. The [`Reader`] trait is what the terminal drives: wait for a card, exchange
//! APDUs, wait for the card to leave. Transport details that every reader shares — GET RESPONSE
//! on `61xx`, Le retry on `6Cxx` (ISO/IEC 7816-4 §5.3.3, EMV Book 1 §9.3) — are handled once, in
//! [`Reader::transceive`].
//!
//! Backends: [`virtual_reader`] (an in-process phone wallet), [`replay`] (a recorded session).
//! [`pcsc_reader`] (pcsc-lite) and [`nfc_reader`] (libnfc) drive real readers behind the same
//! trait; [`open`] picks one from a `pcsc:NAME` / `nfc:CONNSTRING` spec.

pub mod air;
#[cfg(feature = "libnfc")]
pub mod nfc_reader;
#[cfg(feature = "pcsc")]
pub mod pcsc_reader;
pub mod replay;
/// Holders tapping one after another (the transit gate's virtual reader).
#[cfg(feature = "virtual")]
pub mod virtual_queue;
/// The in-process phone wallet (simulator): only with the `virtual` feature, so a product
/// build of the terminal links no card simulator.
#[cfg(feature = "virtual")]
pub mod virtual_reader;

/// What the demo shows about the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneView {
    pub in_field: bool,
    /// "Confirm with your fingerprint" is on the phone's screen.
    pub asks_fingerprint: bool,
    pub fingerprint_given: bool,
    /// Card labels with their masked PAN, and which one pays (priority 1, or the first).
    pub cards: Vec<String>,
    pub chosen: usize,
}

use std::time::Duration;

/// What can go wrong at the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    #[error("no card presented within {0:?}")]
    NoCard(Duration),
    #[error("card removed from the field")]
    CardRemoved,
    #[error("card did not answer: {0}")]
    Transmission(String),
    #[error("reader not available: {0}")]
    Unavailable(String),
    #[error("card not removed within {0:?}")]
    NotRemoved(Duration),
    #[error("cancelled by the cashier")]
    Cancelled,
    /// More than one card answered the poll (ISO/IEC 14443-3 anticollision found two targets):
    /// the terminal asks for one card only (Book B §3.2.1.4) and polls again. libnfc (hardware
    /// drivers) and the virtual reader report it; PC/SC cannot (the IFD handler activates one
    /// card and says nothing about a second), nor libnfc's pcsc driver.
    #[error("more than one card in the field")]
    Collision,
}

/// One reader as `shanfu readers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    /// `pcsc` or `nfc`.
    pub backend: &'static str,
    /// The name to pass after `pcsc:` / `nfc:` (a PC/SC reader name, a libnfc connstring).
    pub name: String,
    /// Whether a card is in the field now.
    pub card_present: bool,
    /// Why a backend could not be listed (pcscd down, ...), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every reader of every backend. A backend with no reader to offer — not reachable (pcscd
/// down), nothing plugged in, or not compiled in — appears as one entry with an empty name and
/// its `error`, so the caller can tell "no readers" from "pcscd down" and no backend is silently
/// left out.
pub fn list_readers() -> Vec<ReaderInfo> {
    let mut out = Vec::new();
    #[cfg(feature = "pcsc")]
    let pcsc = pcsc_reader::list().and_then(|l| {
        if l.is_empty() {
            Err(ReaderError::Unavailable("pcscd is running but has no readers (is the reader plugged in?)".into()))
        } else {
            Ok(l)
        }
    });
    #[cfg(not(feature = "pcsc"))]
    let pcsc: Result<Vec<ReaderInfo>, ReaderError> = Err(not_built("pcsc"));
    #[cfg(feature = "libnfc")]
    let nfc = nfc_reader::list().and_then(|l| {
        if l.is_empty() {
            Err(ReaderError::Unavailable("libnfc found no device (for PC/SC readers: is pcscd running?)".into()))
        } else {
            Ok(l)
        }
    });
    #[cfg(not(feature = "libnfc"))]
    let nfc: Result<Vec<ReaderInfo>, ReaderError> = Err(not_built("libnfc"));
    for (backend, r) in [("pcsc", pcsc), ("nfc", nfc)] {
        match r {
            Ok(l) => out.extend(l),
            Err(ReaderError::Unavailable(why)) => out.push(ReaderInfo { backend, name: String::new(), card_present: false, error: Some(why) }),
            Err(e) => out.push(ReaderInfo { backend, name: String::new(), card_present: false, error: Some(e.to_string()) }),
        }
    }
    out
}

#[cfg(not(all(feature = "pcsc", feature = "libnfc")))]
fn not_built(feature: &str) -> ReaderError {
    ReaderError::Unavailable(format!("shanfu was built without this backend (cargo feature {feature})"))
}

/// Opens a hardware reader from its spec: `pcsc[:NAME-SUBSTRING]` or `nfc[:CONNSTRING]`.
pub fn open(spec: &str) -> Result<Box<dyn Reader + Send>, ReaderError> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        #[cfg(feature = "pcsc")]
        "pcsc" => Ok(Box::new(pcsc_reader::PcscReader::open(arg)?)),
        #[cfg(feature = "libnfc")]
        "nfc" => Ok(Box::new(nfc_reader::NfcReader::open(arg)?)),
        #[cfg(not(feature = "pcsc"))]
        "pcsc" => {
            let _ = arg;
            Err(not_built("pcsc"))
        }
        #[cfg(not(feature = "libnfc"))]
        "nfc" => {
            let _ = arg;
            Err(not_built("libnfc"))
        }
        _ => Err(ReaderError::Unavailable(format!("unknown reader backend {kind:?}"))),
    }
}

/// Stops a reader's wait for a card from another thread (the cashier pressed Esc): the wait
/// in progress — or the next one, if none is — ends with [`ReaderError::Cancelled`]. The till
/// calls [`Canceller::reset`] when a sale starts, so a late Esc never cancels the next sale (and
/// a reader that can tell forgets a tap made before the sale asked for the card).
#[derive(Clone)]
pub struct Canceller {
    cancel: std::sync::Arc<dyn Fn() + Send + Sync>,
    reset: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl Canceller {
    pub fn new(cancel: impl Fn() + Send + Sync + 'static, reset: impl Fn() + Send + Sync + 'static) -> Self {
        Canceller { cancel: std::sync::Arc::new(cancel), reset: std::sync::Arc::new(reset) }
    }
    /// A canceller over a shared flag, with `wake` to interrupt a blocking wait.
    pub fn flag(flag: std::sync::Arc<std::sync::atomic::AtomicBool>, wake: impl Fn() + Send + Sync + 'static) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let f2 = flag.clone();
        Canceller::new(
            move || {
                flag.store(true, SeqCst);
                wake();
            },
            move || f2.store(false, SeqCst),
        )
    }
    pub fn cancel(&self) {
        (self.cancel)()
    }
    pub fn reset(&self) {
        (self.reset)()
    }
}

/// A contactless reader (PCD) with at most one card in its field.
pub trait Reader {
    /// A handle that interrupts [`Reader::wait_for_card`], when the backend can.
    fn canceller(&self) -> Option<Canceller> {
        None
    }

    /// Name for logs and `shanfu readers`.
    fn name(&self) -> String;
    /// A new transaction begins (before its first wait for a card): a reader that simulates the
    /// holder starts over, so the holder taps again for this sale.
    fn begin_transaction(&mut self) {}
    /// Polls until a card is activated (ISO 14443-4), or the timeout passes.
    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError>;
    /// One raw exchange: C-APDU bytes in, R-APDU bytes (data ‖ SW1 SW2) out.
    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError>;
    /// Waits until the card has left the field.
    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError>;
    /// Switches the field off for `off` (ISO/IEC 14443 RF reset) so that a card still in it is
    /// activated again as a new tap. Readers without field control forget the card instead.
    fn field_off(&mut self, _off: Duration) {}
    /// Air time of the exchanges since the last `wait_for_card`, if the backend can tell.
    fn air_time(&self) -> Option<Duration> {
        None
    }

    /// An APDU exchange with `61xx` (GET RESPONSE) and `6Cxx` (resend with Le = xx) resolved.
    fn transceive(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let mut r = self.transmit_raw(capdu)?;
        if r.len() < 2 {
            return Err(ReaderError::Transmission(format!("response of {} bytes has no status word", r.len())));
        }
        // 6Cxx: wrong Le — resend the same command with Le = xx, once.
        if r[r.len() - 2] == 0x6C && capdu.len() >= 4 {
            let mut again = capdu.to_vec();
            let le = r[r.len() - 1];
            // Case 1 (header only) and case 3 (header, Lc, data) gain an Le; cases 2 and 4
            // have their Le replaced.
            let case_3 = again.len() > 5 && again.len() == 5 + usize::from(again[4]);
            if again.len() == 4 || case_3 {
                again.push(le);
            } else if let Some(last) = again.last_mut() {
                *last = le;
            }
            r = self.transmit_raw(&again)?;
        }
        // 61xx: more data — GET RESPONSE until the card has given all of it.
        let mut data = Vec::new();
        for _ in 0..32 {
            let n = r.len();
            if n < 2 {
                return Err(ReaderError::Transmission("response without status word".into()));
            }
            if r[n - 2] != 0x61 {
                data.extend_from_slice(&r);
                return Ok(data);
            }
            data.extend_from_slice(&r[..n - 2]);
            r = self.transmit_raw(&[0x00, 0xC0, 0x00, 0x00, r[n - 1]])?;
        }
        Err(ReaderError::Transmission("card kept answering 61xx".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader answering from a script, to test the transport rules.
    struct Scripted(Vec<(Vec<u8>, Vec<u8>)>, Vec<Vec<u8>>);
    impl Reader for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        fn wait_for_card(&mut self, _: Duration) -> Result<(), ReaderError> {
            Ok(())
        }
        fn transmit_raw(&mut self, c: &[u8]) -> Result<Vec<u8>, ReaderError> {
            self.1.push(c.to_vec());
            if self.0.is_empty() {
                return Err(ReaderError::CardRemoved);
            }
            let (want, r) = self.0.remove(0);
            assert_eq!(want, c);
            Ok(r)
        }
        fn wait_for_removal(&mut self, _: Duration) -> Result<(), ReaderError> {
            Ok(())
        }
    }

    #[test]
    fn get_response_collects_chained_data() {
        let mut r = Scripted(
            vec![(vec![0x80, 0xA8, 0, 0, 2, 0x83, 0, 0], vec![0x77, 0x61, 0x03]), (vec![0, 0xC0, 0, 0, 3], vec![0x01, 0x02, 0x03, 0x90, 0x00])],
            vec![],
        );
        assert_eq!(r.transceive(&[0x80, 0xA8, 0, 0, 2, 0x83, 0, 0]).unwrap(), vec![0x77, 1, 2, 3, 0x90, 0]);
    }

    #[test]
    fn wrong_le_is_retried_with_card_length() {
        let mut r = Scripted(vec![(vec![0, 0xB2, 1, 0x0C, 0], vec![0x6C, 0x10]), (vec![0, 0xB2, 1, 0x0C, 0x10], vec![0x70, 0, 0x90, 0])], vec![]);
        assert_eq!(r.transceive(&[0, 0xB2, 1, 0x0C, 0]).unwrap(), vec![0x70, 0, 0x90, 0]);
    }

    #[test]
    fn short_response_is_an_error_not_a_panic() {
        let mut r = Scripted(vec![(vec![0, 0xA4, 4, 0], vec![0x90])], vec![]);
        assert!(matches!(r.transceive(&[0, 0xA4, 4, 0]), Err(ReaderError::Transmission(_))));
    }
}
