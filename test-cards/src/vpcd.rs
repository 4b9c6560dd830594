//! The phone wallet as a card in the `vpcd` virtual reader (vsmartcard), so that pcscd — and every
//! PC/SC or libnfc application on the machine — sees a real reader with a real card in it.
//!
//! The virtual card is a TCP client of vpcd (default `127.0.0.1:35963`, the reader
//! "Virtual PCD 00 00"). Every message, both ways, is a 2-byte big-endian length and that many
//! bytes. From vpcd a 1-byte message is a control (`00` power off, `01` power on, `02` reset,
//! `04` get ATR — only the last one is answered); anything longer is a C-APDU, answered with the
//! R-APDU. A tap is a connection; taking the phone away closes it.
//!
//! vpcd writes the length and the payload of a message separately: with Nagle's algorithm on one
//! side and delayed ACKs on the other that costs ~40 ms per APDU. The card socket therefore has
//! `TCP_NODELAY` set and `TCP_QUICKACK` re-armed before every read (Linux).
//!
//! TEST CARDS ONLY: the wallet carries the test PKI's keys.

use crate::Wallet;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where vpcd listens for the card of its first reader ("Virtual PCD 00 00").
pub const DEFAULT_ADDR: &str = "127.0.0.1:35963";

/// ATR of a contactless card as a PC/SC part 3 reader builds it.
pub const ATR: [u8; 20] = [0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x68];

/// How long the holder keeps the phone away before tapping again (fingerprint flow). pcscd polls
/// the vpcd reader for presence every 400 ms: a shorter absence may go unnoticed by PC/SC.
pub const AWAY: Duration = Duration::from_millis(900);

const CTRL_POWER_OFF: u8 = 0x00;
const CTRL_POWER_ON: u8 = 0x01;
const CTRL_RESET: u8 = 0x02;
const CTRL_GET_ATR: u8 = 0x04;

/// Read timeout of the card socket: how often controls are looked at while in the field.
const POLL: Duration = Duration::from_millis(50);
/// Pause between connection attempts while vpcd is not reachable.
const RETRY: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the simulated holder does on their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneOptions {
    /// When the phone answers GPO with 6986 ("see phone"), the holder touches the fingerprint
    /// sensor, takes the phone away and taps again ([`AWAY`] later).
    pub fingerprint_on_prompt: bool,
    /// Take the phone away after this many APDUs of the first tap: the next C-APDU is never
    /// answered (card removed mid-transaction). No tap again follows.
    pub remove_after: Option<usize>,
}

/// What the holder is told to do (from a test, or from stdin lines in [`run_stdin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Put the phone on the reader (connect to vpcd; retried while vpcd is not reachable).
    Tap,
    /// Take the phone away (close the connection).
    Remove,
    /// Touch the fingerprint sensor (consumer-device CVM).
    Fingerprint,
    /// Make card `i` of the wallet the one to pay with.
    Card(usize),
    /// `transit on|off`: the city transport card answers the gate (express transit) or not, so
    /// the same phone pays with its bank card.
    Transit(bool),
    /// Report the state as a [`PhoneEvent::Status`].
    Status,
    /// Stop the phone.
    Quit,
}

impl std::str::FromStr for Control {
    type Err = String;

    /// `tap`, `remove`, `fingerprint`, `card N`, `status`, `quit` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, String> {
        let line = s.trim().to_ascii_lowercase();
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(format!("too many words in {:?}", s.trim()));
        }
        match (cmd, arg) {
            ("tap", None) => Ok(Control::Tap),
            ("remove", None) => Ok(Control::Remove),
            ("fingerprint", None) => Ok(Control::Fingerprint),
            ("status", None) => Ok(Control::Status),
            ("quit" | "exit", None) => Ok(Control::Quit),
            ("card", Some(n)) => n.parse().map(Control::Card).map_err(|_| format!("card {n:?}: not a card number")),
            ("card", None) => Err("card: which one? (card N)".into()),
            ("transit", Some("on")) => Ok(Control::Transit(true)),
            ("transit", Some("off")) => Ok(Control::Transit(false)),
            ("transit", _) => Err("transit: on or off".into()),
            _ => Err(format!("unknown command {:?} (tap, remove, fingerprint, card N, transit on|off, status, quit)", s.trim())),
        }
    }
}

/// State of the phone, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneStatus {
    pub in_field: bool,
    pub taps: u32,
    /// APDUs answered by the wallet during the current (or last) tap.
    pub apdus: usize,
    pub fingerprint_given: bool,
    pub prompt_shown: bool,
}

/// What happened, for logs and status lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    /// Connected to vpcd: the phone is in the field (tap number, from 1).
    Connected {
        tap: u32,
    },
    /// The connection is closed: why.
    Disconnected {
        reason: String,
    },
    /// vpcd is not reachable (reported once per streak of failed attempts; retried).
    Unreachable {
        error: String,
    },
    PowerOn,
    PowerOff,
    Reset,
    /// One C-APDU answered by the wallet: CLA INS P1 P2 and the status word.
    Apdu {
        header: Vec<u8>,
        sw: u16,
    },
    /// The wallet answered GPO with 6986 and shows "confirm with your fingerprint".
    SeePhone,
    FingerprintGiven,
    /// `transit on|off` applied (`ok`: the wallet has a transport card).
    Transit {
        on: bool,
        ok: bool,
    },
    CardChosen {
        index: usize,
        ok: bool,
    },
    Status(PhoneStatus),
    /// A control line that could not be understood (stdin).
    Error(String),
    /// The phone stopped (after `quit`).
    Stopped,
}

impl fmt::Display for PhoneEvent {
    /// One status line: `connected 1`, `disconnected removed`, `apdu 80A80000 6986`, `see-phone`…
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneEvent::Connected { tap } => write!(f, "connected tap={tap}"),
            PhoneEvent::Disconnected { reason } => write!(f, "disconnected {reason}"),
            PhoneEvent::Unreachable { error } => write!(f, "unreachable {error} (retrying)"),
            PhoneEvent::PowerOn => write!(f, "power-on"),
            PhoneEvent::PowerOff => write!(f, "power-off"),
            PhoneEvent::Reset => write!(f, "reset"),
            PhoneEvent::Apdu { header, sw } => write!(f, "apdu {} {sw:04X}", hex::encode_upper(header)),
            PhoneEvent::SeePhone => write!(f, "see-phone"),
            PhoneEvent::FingerprintGiven => write!(f, "fingerprint"),
            PhoneEvent::Transit { on, ok: true } => write!(f, "transit {}", if *on { "on" } else { "off" }),
            PhoneEvent::Transit { ok: false, .. } => write!(f, "error this wallet has no transport card"),
            PhoneEvent::CardChosen { index, ok: true } => write!(f, "card {index}"),
            PhoneEvent::CardChosen { index, ok: false } => write!(f, "error no card {index} in this wallet"),
            PhoneEvent::Status(s) => {
                write!(f, "status in_field={} taps={} apdus={} fingerprint={} prompt={}", s.in_field, s.taps, s.apdus, s.fingerprint_given, s.prompt_shown)
            }
            PhoneEvent::Error(e) => write!(f, "error {e}"),
            PhoneEvent::Stopped => write!(f, "stopped"),
        }
    }
}

/// Errors of [`run_stdin`].
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    #[error("cannot start the phone: {0}")]
    Spawn(#[source] io::Error),
    #[error("the phone stopped unexpectedly")]
    Crashed,
}

/// A connection to vpcd: the phone in the field.
struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet a whole message.
    rx: Vec<u8>,
}

struct Phone {
    addr: SocketAddr,
    wallet: Wallet,
    opts: PhoneOptions,
    away: Duration,
    events: Sender<PhoneEvent>,
    conn: Option<Conn>,
    /// The holder holds the phone on the reader (connect, and reconnect if vpcd drops it).
    want_in_field: bool,
    retap_at: Option<Instant>,
    next_attempt: Instant,
    unreachable_reported: bool,
    taps: u32,
    apdus: usize,
    uid: [u8; 4],
}

impl Phone {
    fn emit(&self, e: PhoneEvent) {
        // Nobody listening is fine: the phone goes on.
        let _ = self.events.send(e);
    }

    fn status(&self) -> PhoneStatus {
        PhoneStatus {
            in_field: self.conn.is_some(),
            taps: self.taps,
            apdus: self.apdus,
            fingerprint_given: self.wallet.fingerprint_given(),
            prompt_shown: self.wallet.prompt_shown,
        }
    }

    /// Applies one control; `false` means quit.
    fn control(&mut self, c: Control) -> bool {
        match c {
            Control::Tap => {
                self.want_in_field = true;
                self.retap_at = None;
                self.next_attempt = Instant::now();
            }
            Control::Remove => {
                self.want_in_field = false;
                self.retap_at = None;
                self.disconnect("removed");
            }
            Control::Fingerprint => {
                if self.wallet.give_fingerprint() {
                    self.emit(PhoneEvent::FingerprintGiven);
                } else {
                    self.emit(PhoneEvent::Error("this card has no fingerprint sensor".into()));
                }
            }
            Control::Card(i) => {
                let ok = self.wallet.choose_card(i);
                self.emit(PhoneEvent::CardChosen { index: i, ok });
            }
            Control::Transit(on) => {
                let ok = self.wallet.set_transit(on);
                self.emit(PhoneEvent::Transit { on, ok });
            }
            Control::Status => self.emit(PhoneEvent::Status(self.status())),
            Control::Quit => return false,
        }
        true
    }

    fn disconnect(&mut self, reason: &str) {
        if let Some(c) = self.conn.take() {
            let _ = c.stream.shutdown(Shutdown::Both);
            self.wallet.power_off();
            self.emit(PhoneEvent::Disconnected { reason: reason.into() });
        }
    }

    fn connect(&mut self) {
        self.next_attempt = Instant::now() + RETRY;
        let stream = match TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                if !self.unreachable_reported {
                    self.unreachable_reported = true;
                    self.emit(PhoneEvent::Unreachable { error: format!("vpcd at {}: {e}", self.addr) });
                }
                return;
            }
        };
        // Latency: no Nagle on our answers; quick ACKs are re-armed before every read.
        let setup = stream.set_nodelay(true).and_then(|()| stream.set_read_timeout(Some(POLL))).and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
        if let Err(e) = setup {
            self.emit(PhoneEvent::Error(format!("socket options: {e}")));
        }
        self.unreachable_reported = false;
        self.taps += 1;
        self.apdus = 0;
        self.uid = random_uid();
        self.wallet.power_off();
        self.conn = Some(Conn { stream, rx: Vec::new() });
        self.emit(PhoneEvent::Connected { tap: self.taps });
    }

    fn send(&mut self, payload: &[u8]) {
        let Some(conn) = self.conn.as_mut() else { return };
        let Ok(len) = u16::try_from(payload.len()) else {
            self.emit(PhoneEvent::Error(format!("answer of {} bytes does not fit a vpcd message", payload.len())));
            return;
        };
        let mut frame = Vec::with_capacity(payload.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        if let Err(e) = conn.stream.write_all(&frame) {
            self.disconnect(&format!("write failed: {e}"));
        }
    }

    /// Reads what vpcd sent (waits up to [`POLL`]) and answers every whole message.
    fn pump(&mut self) {
        let mut buf = [0u8; 4096];
        let read = {
            let Some(conn) = self.conn.as_mut() else { return };
            quickack(&conn.stream);
            conn.stream.read(&mut buf)
        };
        match read {
            Ok(0) => {
                self.disconnect("vpcd closed the connection");
                return;
            }
            Ok(n) => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.rx.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => return,
            Err(e) => {
                self.disconnect(&format!("read failed: {e}"));
                return;
            }
        }
        while let Some(msg) = self.conn.as_mut().and_then(|c| next_message(&mut c.rx)) {
            self.message(&msg);
        }
    }

    fn message(&mut self, msg: &[u8]) {
        match msg {
            [] => {}
            [CTRL_POWER_OFF] => {
                self.wallet.power_off();
                self.emit(PhoneEvent::PowerOff);
            }
            [CTRL_POWER_ON] => {
                self.wallet.power_off();
                self.emit(PhoneEvent::PowerOn);
            }
            [CTRL_RESET] => {
                self.wallet.power_off();
                self.emit(PhoneEvent::Reset);
            }
            [CTRL_GET_ATR] => self.send(&ATR),
            [other] => self.emit(PhoneEvent::Error(format!("unknown vpcd control {other:02X}"))),
            [0xFF, ..] => {
                let r = self.reader_command(msg);
                self.send(&r);
            }
            _ => self.apdu(msg),
        }
    }

    /// PC/SC part 3 pseudo-APDUs (CLA FF) are the reader's business, not the card's: a
    /// contactless reader answers GET DATA UID itself. vpcd forwards them, so answer here.
    fn reader_command(&self, c: &[u8]) -> Vec<u8> {
        match c {
            [0xFF, 0xCA, 0x00, 0x00, ..] => {
                let mut r = self.uid.to_vec();
                r.extend_from_slice(&[0x90, 0x00]);
                r
            }
            [0xFF, 0xCA, ..] => vec![0x6A, 0x81],
            _ => vec![0x6D, 0x00],
        }
    }

    fn apdu(&mut self, c: &[u8]) {
        if self.taps == 1 && self.opts.remove_after.is_some_and(|n| self.apdus >= n) {
            // Pulled away while the reader waits for this answer.
            self.want_in_field = false;
            self.retap_at = None;
            let n = self.apdus;
            self.disconnect(&format!("removed after {n} APDUs"));
            return;
        }
        let r = self.wallet.transmit(c);
        self.apdus += 1;
        let sw = match r.as_slice() {
            [.., a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        self.send(&r);
        self.emit(PhoneEvent::Apdu { header: c.iter().take(4).copied().collect(), sw });
        if sw == 0x6986 && self.wallet.prompt_shown {
            self.emit(PhoneEvent::SeePhone);
            if self.opts.fingerprint_on_prompt {
                // The holder takes the phone away, confirms with the fingerprint, taps again.
                self.want_in_field = false;
                self.disconnect("removed to confirm on the phone");
                if self.wallet.give_fingerprint() {
                    self.emit(PhoneEvent::FingerprintGiven);
                }
                self.retap_at = Some(Instant::now() + self.away);
            }
        }
    }

    /// How long to wait for a control when nothing else is due.
    fn idle_wait(&self) -> Duration {
        let now = Instant::now();
        let mut wait = Duration::from_millis(500);
        if let Some(t) = self.retap_at {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if self.want_in_field {
            wait = wait.min(self.next_attempt.saturating_duration_since(now));
        }
        wait.max(Duration::from_millis(1))
    }
}

/// Takes one whole message off the front of `rx`, if there is one.
fn next_message(rx: &mut Vec<u8>) -> Option<Vec<u8>> {
    let [hi, lo, ..] = rx[..] else { return None };
    let n = usize::from(u16::from_be_bytes([hi, lo]));
    if rx.len() < 2 + n {
        return None;
    }
    let msg = rx[2..2 + n].to_vec();
    rx.drain(..2 + n);
    Some(msg)
}

/// A random UID as phones use (first byte 08h, ISO/IEC 14443-3: random ID).
fn random_uid() -> [u8; 4] {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos() ^ (d.as_secs() as u32)).unwrap_or(0x5A5A5A);
    let [_, a, b, c] = n.to_be_bytes();
    [0x08, a, b, c]
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(s: &TcpStream) {
    // Linux clears TCP_QUICKACK after some ACKs: set it again before every read.
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_: &TcpStream) {}

/// Runs the phone until [`Control::Quit`]: the holder starts with the phone on the reader
/// (connects to vpcd at `addr`, retrying while it is not reachable). Returns the wallet.
/// When `control` is closed (every sender dropped) the phone keeps running on its options alone
/// and never returns.
pub fn run(addr: SocketAddr, wallet: Wallet, opts: PhoneOptions, control: Receiver<Control>, events: Sender<PhoneEvent>) -> Wallet {
    run_with(addr, wallet, opts, AWAY, true, control, events)
}

/// [`run`] with the time away before the tap again, and whether the phone starts on the reader.
pub fn run_with(
    addr: SocketAddr,
    wallet: Wallet,
    opts: PhoneOptions,
    away: Duration,
    start_in_field: bool,
    control: Receiver<Control>,
    events: Sender<PhoneEvent>,
) -> Wallet {
    let mut p = Phone {
        addr,
        wallet,
        opts,
        away,
        events,
        conn: None,
        want_in_field: start_in_field,
        retap_at: None,
        next_attempt: Instant::now(),
        unreachable_reported: false,
        taps: 0,
        apdus: 0,
        uid: random_uid(),
    };
    let mut controls_open = true;
    loop {
        // Controls first: they are rare and must not wait behind the card's traffic.
        while controls_open {
            match control.try_recv() {
                Ok(c) => {
                    if !p.control(c) {
                        p.disconnect("quit");
                        p.emit(PhoneEvent::Stopped);
                        return p.wallet;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => controls_open = false,
            }
        }
        if p.retap_at.is_some_and(|t| Instant::now() >= t) {
            p.retap_at = None;
            p.want_in_field = true;
            p.next_attempt = Instant::now();
        }
        if p.want_in_field && p.conn.is_none() && Instant::now() >= p.next_attempt {
            p.connect();
        }
        if p.conn.is_some() {
            p.pump();
            continue;
        }
        let wait = p.idle_wait();
        if !controls_open {
            thread::sleep(wait);
            continue;
        }
        match control.recv_timeout(wait) {
            Ok(c) => {
                if !p.control(c) {
                    p.disconnect("quit");
                    p.emit(PhoneEvent::Stopped);
                    return p.wallet;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => controls_open = false,
        }
    }
}

/// A phone running in its own thread.
pub struct PhoneHandle {
    pub control: Sender<Control>,
    pub events: Receiver<PhoneEvent>,
    join: Option<JoinHandle<Wallet>>,
}

impl PhoneHandle {
    /// Sends a control (ignored if the phone has stopped).
    pub fn send(&self, c: Control) {
        let _ = self.control.send(c);
    }

    /// Waits for an event matching `want`, skipping others; `None` after `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut want: impl FnMut(&PhoneEvent) -> bool) -> Option<PhoneEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if want(&e) => return Some(e),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Drops the events received so far.
    pub fn drain(&self) -> Vec<PhoneEvent> {
        self.events.try_iter().collect()
    }

    /// Stops the phone and gives the wallet back.
    pub fn quit(mut self) -> Option<Wallet> {
        self.send(Control::Quit);
        self.join.take().and_then(|j| j.join().ok())
    }
}

impl Drop for PhoneHandle {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Quit);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts a phone in a thread (see [`run_with`]).
pub fn spawn(addr: SocketAddr, wallet: Wallet, opts: PhoneOptions, away: Duration, start_in_field: bool) -> io::Result<PhoneHandle> {
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let join = thread::Builder::new().name("vpcd-phone".into()).spawn(move || run_with(addr, wallet, opts, away, start_in_field, ctl_rx, ev_tx))?;
    Ok(PhoneHandle { control: ctl_tx, events: ev_rx, join: Some(join) })
}

/// `shanfu phone`: the phone on the reader from the start; control lines on stdin (`tap`,
/// `remove`, `fingerprint`, `card N`, `status`, `quit`); one status line per event on stdout
/// (`connected tap=1`, `apdu 00A40400 9000`, `see-phone`, `fingerprint`, `disconnected …`,
/// `stopped`). End of stdin only stops reading: the phone runs until `quit` or killed.
pub fn run_stdin(addr: SocketAddr, wallet: Wallet, opts: PhoneOptions) -> Result<(), VpcdError> {
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel::<PhoneEvent>();
    let input_events = ev_tx.clone();
    thread::Builder::new()
        .name("phone-stdin".into())
        .spawn(move || {
            let stdin = io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match line.parse::<Control>() {
                    Ok(c) => {
                        if ctl_tx.send(c).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = input_events.send(PhoneEvent::Error(e));
                    }
                }
            }
            // EOF: keep the phone running on its options (tests start it with stdin closed).
        })
        .map_err(VpcdError::Spawn)?;
    let phone = thread::Builder::new().name("vpcd-phone".into()).spawn(move || run(addr, wallet, opts, ctl_rx, ev_tx)).map_err(VpcdError::Spawn)?;
    let stdout = io::stdout();
    // Ends when the phone thread has stopped and the stdin thread has let go of its sender
    // (it blocks on stdin; after `quit` the process exits with it).
    for e in ev_rx.iter() {
        let mut out = stdout.lock();
        let _ = writeln!(out, "{e}");
        let _ = out.flush();
        if e == PhoneEvent::Stopped {
            break;
        }
    }
    phone.join().map(|_| ()).map_err(|_| VpcdError::Crashed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn controls_parse() {
        assert_eq!("tap".parse(), Ok(Control::Tap));
        assert_eq!(" Remove \n".parse(), Ok(Control::Remove));
        assert_eq!("card 2".parse(), Ok(Control::Card(2)));
        assert!("card x".parse::<Control>().is_err());
        assert!("card".parse::<Control>().is_err());
        assert!("dance".parse::<Control>().is_err());
        assert!("tap now".parse::<Control>().is_err());
    }

    #[test]
    fn framing_waits_for_whole_messages() {
        let mut rx = vec![0x00];
        assert_eq!(next_message(&mut rx), None);
        rx.extend_from_slice(&[0x03, 0xAA, 0xBB]);
        assert_eq!(next_message(&mut rx), None);
        rx.extend_from_slice(&[0xCC, 0x00, 0x01, 0x04]);
        assert_eq!(next_message(&mut rx), Some(vec![0xAA, 0xBB, 0xCC]));
        assert_eq!(next_message(&mut rx), Some(vec![0x04]));
        assert!(rx.is_empty());
    }

    fn frame(b: &[u8]) -> Vec<u8> {
        let mut f = (b.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(b);
        f
    }

    fn read_frame(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut b = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut b).unwrap();
        b
    }

    /// A fake vpcd: the phone connects, gives its ATR, answers SELECT PPSE, and is removed
    /// mid-transaction with `remove_after`.
    #[test]
    fn speaks_the_vpcd_protocol_to_a_fake_vpcd() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let wallet = Wallet::load("unionpay-phone").unwrap();
        let phone = spawn(addr, wallet, PhoneOptions { remove_after: Some(2), ..Default::default() }, AWAY, true).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&frame(&[CTRL_POWER_ON])).unwrap();
        s.write_all(&frame(&[CTRL_GET_ATR])).unwrap();
        assert_eq!(read_frame(&mut s), ATR);
        let uid = {
            s.write_all(&frame(&[0xFF, 0xCA, 0, 0, 0])).unwrap();
            read_frame(&mut s)
        };
        assert_eq!((uid.len(), uid[0], &uid[4..]), (6, 0x08, &[0x90, 0x00][..]));
        let ppse = hex::decode("00A404000E325041592E5359532E444446303100").unwrap();
        // Split a message across writes: the phone must reassemble it.
        let f = frame(&ppse);
        s.write_all(&f[..3]).unwrap();
        s.flush().unwrap();
        thread::sleep(Duration::from_millis(80));
        s.write_all(&f[3..]).unwrap();
        let r = read_frame(&mut s);
        assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
        assert_eq!(r[0], 0x6F);
        s.write_all(&frame(&ppse)).unwrap();
        let _ = read_frame(&mut s);
        // Third APDU: the holder pulls the phone away instead of answering.
        s.write_all(&frame(&ppse)).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(s.read(&mut b).unwrap(), 0, "connection closed");
        assert!(phone.wait_for(Duration::from_secs(5), |e| matches!(e, PhoneEvent::Disconnected { reason } if reason.contains("after 2"))).is_some());
        // No tap again after a removal.
        l.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(400));
        assert!(l.accept().is_err());
        assert!(phone.quit().is_some());
    }

    #[test]
    fn taps_on_control_and_comes_back_when_vpcd_drops_it() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let wallet = Wallet::load("unionpay-phone").unwrap();
        let opts = PhoneOptions { fingerprint_on_prompt: true, ..Default::default() };
        let phone = spawn(addr, wallet, opts, Duration::from_millis(50), false).unwrap();
        l.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(200));
        assert!(l.accept().is_err(), "not in the field before the tap");
        l.set_nonblocking(false).unwrap();
        phone.send(Control::Tap);
        let (s, _) = l.accept().unwrap();
        assert!(phone.wait_for(Duration::from_secs(5), |e| *e == PhoneEvent::Connected { tap: 1 }).is_some());
        drop(s);
        // vpcd going away is not the holder going away: the phone reconnects.
        let (_s, _) = l.accept().unwrap();
        assert!(phone.wait_for(Duration::from_secs(5), |e| *e == PhoneEvent::Connected { tap: 2 }).is_some());
        phone.send(Control::Status);
        let st = phone.wait_for(Duration::from_secs(5), |e| matches!(e, PhoneEvent::Status(_)));
        assert!(matches!(st, Some(PhoneEvent::Status(PhoneStatus { in_field: true, taps: 2, .. }))), "{st:?}");
        phone.send(Control::Card(7));
        assert_eq!(
            phone.wait_for(Duration::from_secs(5), |e| matches!(e, PhoneEvent::CardChosen { .. })),
            Some(PhoneEvent::CardChosen { index: 7, ok: false })
        );
        assert!(phone.quit().is_some());
    }
}
