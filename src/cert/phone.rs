//! `shanfu cert --reader pcsc:NAME | nfc:NAME`: the suite over a real reader stack (pcscd, or
//! libnfc's pcsc driver), the card of every case played by a `shanfu phone --in-hand` process
//! plugged into the vpcd virtual reader.
//!
//! Two halves:
//! - [`run_in_hand`]: the phone process. Control lines on stdin switch the card per case —
//!   `load PROFILE` (a built-in name or a profile file), `holder fingerprint=ok|none
//!   remove-after=N|none`, `tap`, `remove`, `fingerprint`, `card N`, `status`, `quit` — each
//!   answered `ok …` or `error …`; the phone's events follow as lines (`connected tap=1`,
//!   `apdu 80A80000 9000`, `see-phone`, `disconnected …`).
//! - [`PhoneSource`]: the cert runner's side. It starts that process, loads each case's profile
//!   (written with the case's overrides to a temporary file), opens the reader for the case and
//!   plays the case's holder around the terminal's reader calls; it stops the process by pid.
//!
//! The holder is the virtual reader's (reader_drivers::virtual_reader::Holder): one tap per
//! transaction; the card leaves when the terminal asks for removal; a tap again only after
//! giving the fingerprint the phone asked for. Cases using anything else are SKIPPED.

use super::case::Case;
use super::runner::CardSource;
use crate::terminal::TapPolicy;
use anyhow::{anyhow, bail, Context, Result};
use reader_drivers::{Reader, ReaderError};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use test_cards::vpcd::{self, Control, PhoneEvent, PhoneOptions};

/// The holder keys the phone process plays (`[case.holder]`).
const PLAYABLE_HOLDER: [&str; 2] = ["fingerprint", "remove_after"];
/// The case keys this runner knows how to play; a case with any other key is skipped.
const KNOWN_KEYS: [&str; 14] =
    ["id", "title", "group", "profile", "overrides", "settings", "host", "token", "type", "amount", "amount_other", "date", "holder", "expect"];
/// Waits of the terminal on this source: the phone taps at once when told, and taps again
/// (fingerprint flow) after [`vpcd::AWAY`] plus pcscd's presence poll (400 ms).
const FIRST_TAP: Duration = Duration::from_secs(10);
const TAP_AGAIN: Duration = Duration::from_secs(4);
/// How long pcscd may take to see the slot empty after the phone left.
const REMOVAL: Duration = Duration::from_secs(4);
/// The extra time away after a card left mid-exchange (pcscd's vpcd poll is 400 ms).
const VANISHED_GAP: Duration = Duration::from_millis(500);
/// How long the phone process may take to answer a control line.
const ANSWER: Duration = Duration::from_secs(10);

/// One control line of the in-hand phone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InHand {
    Load(String),
    Holder(PhoneOptions),
    Tap,
    /// A control for the phone in the field (remove, fingerprint, card N, status).
    Phone(Control),
    Quit,
}

fn parse_holder(words: &[&str]) -> Result<PhoneOptions, String> {
    let mut o = PhoneOptions::default();
    for w in words {
        match w.split_once('=') {
            Some(("fingerprint", "ok")) => o.fingerprint_on_prompt = true,
            Some(("fingerprint", "none")) => o.fingerprint_on_prompt = false,
            Some(("remove-after", "none")) => o.remove_after = None,
            Some(("remove-after", n)) => o.remove_after = Some(n.parse().map_err(|_| format!("remove-after={n}: not a number"))?),
            _ => return Err(format!("holder: {w:?} is not fingerprint=ok|none or remove-after=N|none")),
        }
    }
    Ok(o)
}

impl std::str::FromStr for InHand {
    type Err = String;
    fn from_str(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (cmd, rest) = line.split_once(char::is_whitespace).map(|(c, r)| (c, r.trim())).unwrap_or((line, ""));
        match cmd.to_ascii_lowercase().as_str() {
            "load" if !rest.is_empty() => Ok(InHand::Load(rest.to_string())),
            "load" => Err("load: which profile? (load NAME-OR-FILE)".into()),
            "holder" => parse_holder(&rest.split_whitespace().collect::<Vec<_>>()).map(InHand::Holder),
            "tap" if rest.is_empty() => Ok(InHand::Tap),
            "quit" | "exit" if rest.is_empty() => Ok(InHand::Quit),
            _ => line.parse::<Control>().map(InHand::Phone).map_err(|e| format!("{e}; or load PROFILE, holder ...")),
        }
    }
}

/// The phone currently in the hand: a thread running [`vpcd::run_with`].
struct Running {
    control: Sender<Control>,
    join: JoinHandle<test_cards::Wallet>,
}

impl Running {
    fn stop(self) {
        let _ = self.control.send(Control::Quit);
        let _ = self.join.join();
    }
}

/// `shanfu phone --in-hand`: no phone in the field until `tap`; every `tap` puts a fresh wallet
/// of the loaded profile on the reader with the holder options last given. Prints `ready` first.
pub fn run_in_hand(addr: SocketAddr) -> Result<()> {
    let (ev_tx, ev_rx) = mpsc::channel::<PhoneEvent>();
    let printer = std::thread::Builder::new().name("phone-events".into()).spawn(move || {
        for e in ev_rx.iter() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{e}").and_then(|()| out.flush());
        }
    })?;
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    say("ready");
    let mut profile: Option<(String, test_cards::Profile)> = None;
    let mut opts = PhoneOptions::default();
    let mut running: Option<Running> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match line.parse::<InHand>() {
            Err(e) => say(&format!("error {e}")),
            Ok(InHand::Load(p)) => match test_cards::Profile::load(&p) {
                Ok(pr) => {
                    say(&format!("ok load {}", pr.cards.len()));
                    profile = Some((p, pr));
                }
                Err(e) => say(&format!("error load: {e}")),
            },
            Ok(InHand::Holder(o)) => {
                say(&format!("ok holder fingerprint={} remove-after={:?}", o.fingerprint_on_prompt, o.remove_after));
                opts = o;
            }
            Ok(InHand::Tap) => {
                let Some((name, p)) = &profile else {
                    say("error tap: no profile loaded (load PROFILE first)");
                    continue;
                };
                if let Some(r) = running.take() {
                    r.stop();
                }
                match test_cards::Wallet::from_profile(name, p) {
                    Ok(wallet) => {
                        let (ctl_tx, ctl_rx) = mpsc::channel();
                        let (o, ev) = (opts.clone(), ev_tx.clone());
                        let join = std::thread::Builder::new()
                            .name("vpcd-phone".into())
                            .spawn(move || vpcd::run_with(addr, wallet, o, vpcd::AWAY, true, ctl_rx, ev))?;
                        running = Some(Running { control: ctl_tx, join });
                        say("ok tap");
                    }
                    Err(e) => say(&format!("error tap: {e}")),
                }
            }
            Ok(InHand::Phone(c)) => match &running {
                Some(r) => {
                    let _ = r.control.send(c.clone());
                    say(&format!("ok {}", line.trim()));
                }
                // Not in the hand: removing it is already done; the rest has no phone to act on.
                None if c == Control::Remove => say("ok remove"),
                None => say(&format!("error {}: no phone tapped yet", line.trim())),
            },
            Ok(InHand::Quit) => break,
        }
    }
    if let Some(r) = running.take() {
        r.stop();
    }
    drop(ev_tx);
    let _ = printer.join();
    say("stopped");
    Ok(())
}

/// The `shanfu phone --in-hand` child of a cert run. Dropping it stops it (quit, then kill by
/// pid if it does not go).
pub struct PhoneProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl PhoneProcess {
    /// Starts `exe phone --in-hand --vpcd ADDR` and waits for its `ready`.
    pub fn start(exe: &std::path::Path, vpcd: SocketAddr) -> Result<PhoneProcess> {
        let mut child = Command::new(exe)
            .args(["phone", "--in-hand", "--vpcd", &vpcd.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} phone --in-hand", exe.display()))?;
        let out = child.stdout.take().ok_or_else(|| anyhow!("the phone process has no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("phone-lines".into()).spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })?;
        let stdin = child.stdin.take();
        let mut p = PhoneProcess { child, stdin, lines: rx, log: Vec::new() };
        p.wait_line(|l| l == "ready", ANSWER).context("the phone process did not start")?;
        Ok(p)
    }

    /// Waits for a line for which `want` holds (every line is kept in the log).
    fn wait_line(&mut self, want: impl Fn(&str) -> bool, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push(l.clone());
                    if want(&l) {
                        return Ok(l);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("no answer from the phone process within {within:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the phone process stopped"),
            }
        }
    }

    /// Sends one control line and waits for its `ok`/`error` answer.
    pub fn request(&mut self, line: &str) -> Result<()> {
        self.log.push(format!("> {line}"));
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("the phone process's stdin is closed"))?;
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).context("writing to the phone process")?;
        let answer = self.wait_line(|l| l.starts_with("ok") || l.starts_with("error"), ANSWER)?;
        match answer.strip_prefix("error") {
            Some(e) => bail!("phone: `{line}`:{e}"),
            None => Ok(()),
        }
    }

    /// The lines said since the last call (events that came without a request included).
    pub fn take_log(&mut self) -> Vec<String> {
        self.log.extend(self.lines.try_iter());
        std::mem::take(&mut self.log)
    }

    /// The process id (the runner stops only this process).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PhoneProcess {
    fn drop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = writeln!(s, "quit");
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why the phone process cannot play `case`, if it cannot: a holder key or a case key this
/// runner does not know how to play through a reader.
pub fn skip_reason(case: &Case) -> Option<String> {
    let Ok(t) = toml::from_str::<toml::Table>(&case.source) else {
        return Some("the case as written could not be read back".into());
    };
    if let Some(k) = t.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Some(format!("`{k}` is played only by the virtual reader"));
    }
    let holder = t.get("holder").and_then(|h| h.as_table());
    if let Some(k) = holder.and_then(|h| h.keys().find(|k| !PLAYABLE_HOLDER.contains(&k.as_str()))) {
        return Some(format!("holder.{k} is played only by the virtual reader's scripted holder"));
    }
    None
}

/// The cert runner's card source over a real reader stack with the phone process.
pub struct PhoneSource {
    spec: String,
    phone: Rc<RefCell<PhoneProcess>>,
    dir: PathBuf,
    n: usize,
}

impl PhoneSource {
    /// Checks that the reader can be opened, then starts the phone process on vpcd at `vpcd`.
    pub fn start(spec: &str, vpcd: SocketAddr) -> Result<PhoneSource> {
        drop(reader_drivers::open(spec).with_context(|| format!("--reader {spec}"))?);
        let exe = std::env::current_exe().context("the path of shanfu itself (to start `shanfu phone`)")?;
        let phone = PhoneProcess::start(&exe, vpcd)?;
        let dir = std::env::temp_dir().join(format!("shanfu-cert-phone-{}-{}", std::process::id(), phone.id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(PhoneSource { spec: spec.to_string(), phone: Rc::new(RefCell::new(phone)), dir, n: 0 })
    }
}

impl Drop for PhoneSource {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl CardSource for PhoneSource {
    fn skip_reason(&self, case: &Case) -> Option<String> {
        skip_reason(case)
    }

    fn reader(&mut self, case: &Case, _profile: &test_cards::Profile) -> Result<Box<dyn Reader>> {
        let load = match &case.overrides {
            Some(o) => {
                let text = super::case::profile_text_with(&case.profile, o).map_err(|e| anyhow!(e))?;
                self.n += 1;
                let path = self.dir.join(format!("case-{}.toml", self.n));
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                path.display().to_string()
            }
            None => case.profile.clone(),
        };
        let fingerprint = case.holder.fingerprint;
        let remove_after = case.holder.remove_after.map(|n| n.to_string()).unwrap_or_else(|| "none".into());
        {
            let mut p = self.phone.borrow_mut();
            p.request(&format!("load {load}"))?;
            p.request(&format!("holder fingerprint={} remove-after={remove_after}", if fingerprint { "ok" } else { "none" }))?;
        }
        let inner = reader_drivers::open(&self.spec).with_context(|| format!("--reader {}", self.spec))?;
        Ok(Box::new(PhoneReader { inner, phone: self.phone.clone(), fingerprint, taps: 0, last_sw: None, removed: false, vanished: false }))
    }

    fn policy(&self) -> TapPolicy {
        TapPolicy { first_tap: FIRST_TAP, see_phone: TAP_AGAIN, try_again: TAP_AGAIN, ..TapPolicy::default() }
    }

    fn take_log(&mut self) -> Option<String> {
        let lines = self.phone.borrow_mut().take_log();
        Some(lines.iter().map(|l| format!("{l}\n")).collect())
    }
}

/// The case's reader, with the holder of the virtual reader played on the phone process.
struct PhoneReader {
    inner: Box<dyn Reader + Send>,
    phone: Rc<RefCell<PhoneProcess>>,
    fingerprint: bool,
    taps: u32,
    last_sw: Option<[u8; 2]>,
    removed: bool,
    /// The card left in the middle of an exchange (the holder's `remove_after`).
    vanished: bool,
}

impl PhoneReader {
    /// The phone asked for the fingerprint and the holder gives it: the phone leaves and comes
    /// back on its own ([`vpcd::AWAY`] later).
    fn taps_again_by_itself(&self) -> bool {
        self.fingerprint && self.last_sw == Some([0x69, 0x86])
    }

    fn remove(&mut self) {
        if !self.removed {
            self.removed = true;
            let _ = self.phone.borrow_mut().request("remove");
        }
    }
}

impl Reader for PhoneReader {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if self.taps == 0 {
            self.phone.borrow_mut().request("tap").map_err(|e| ReaderError::Unavailable(format!("{e:#}")))?;
        } else if !self.taps_again_by_itself() {
            // Nobody comes back: the same immediate answer as the virtual holder's.
            return Err(ReaderError::NoCard(timeout));
        }
        let r = self.inner.wait_for_card(timeout);
        if r.is_ok() {
            self.taps += 1;
        }
        r
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let r = self.inner.transmit_raw(capdu);
        match r.as_deref() {
            Ok([.., a, b]) => self.last_sw = Some([*a, *b]),
            Ok(_) => {}
            Err(_) => self.vanished = true,
        }
        r
    }

    /// The holder takes the card away when the terminal is done with it — unless it is away
    /// already to give the fingerprint.
    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if !self.taps_again_by_itself() {
            self.remove();
        }
        self.inner.wait_for_removal(timeout.max(REMOVAL))
    }

    fn field_off(&mut self, off: Duration) {
        self.inner.field_off(off)
    }

    fn air_time(&self) -> Option<Duration> {
        self.inner.air_time()
    }
}

impl Drop for PhoneReader {
    /// The next case must start with an empty slot: pcscd takes a card back only after it has
    /// seen the slot empty (it polls vpcd every 400 ms).
    fn drop(&mut self) {
        self.remove();
        let _ = self.inner.wait_for_removal(REMOVAL);
        if self.vanished {
            // Seen empty through the failed exchange, not through pcscd's own presence poll:
            // stay away one poll longer, or vpcd's next card is never powered up (measured).
            std::thread::sleep(VANISHED_GAP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_hand_lines_parse() {
        assert_eq!("load unionpay-phone".parse(), Ok(InHand::Load("unionpay-phone".into())));
        assert_eq!("load /tmp/a b.toml".parse(), Ok(InHand::Load("/tmp/a b.toml".into())));
        assert!("load".parse::<InHand>().is_err());
        assert_eq!("holder fingerprint=ok remove-after=3".parse(), Ok(InHand::Holder(PhoneOptions { fingerprint_on_prompt: true, remove_after: Some(3) })));
        assert_eq!("holder fingerprint=none remove-after=none".parse(), Ok(InHand::Holder(PhoneOptions::default())));
        assert!("holder fingerprint=maybe".parse::<InHand>().is_err());
        assert!("holder remove-after=x".parse::<InHand>().is_err());
        assert_eq!("tap".parse(), Ok(InHand::Tap));
        assert_eq!("remove".parse(), Ok(InHand::Phone(Control::Remove)));
        assert_eq!("card 2".parse(), Ok(InHand::Phone(Control::Card(2))));
        assert_eq!("quit".parse(), Ok(InHand::Quit));
        assert!("dance".parse::<InHand>().is_err());
    }

    fn case_with(extra: &str) -> Case {
        let text = format!(
            "[[case]]\nid = \"X.1\"\ntitle = \"t\"\ngroup = \"g\"\nprofile = \"unionpay-phone\"\namount = \"1.00\"\n{extra}expect = {{ outcome = \"ONLINE_REQUEST\" }}\n"
        );
        super::super::case::parse_file(std::path::Path::new("t.toml"), &text, 2).unwrap().remove(0)
    }

    #[test]
    fn cases_the_phone_cannot_play_are_skipped_with_the_reason() {
        assert_eq!(skip_reason(&case_with("")), None);
        assert_eq!(skip_reason(&case_with("holder = { fingerprint = true, remove_after = 2 }\n")), None);
        let mut c = case_with("");
        c.source = c.source.replace("[holder]", "") + "\n[holder]\nsecond_card = \"visa\"\n";
        assert_eq!(skip_reason(&c).as_deref(), Some("holder.second_card is played only by the virtual reader's scripted holder"));
        let mut c = case_with("");
        c.source = format!("host_script = 1\n{}", c.source);
        assert!(skip_reason(&c).is_some_and(|r| r.contains("host_script")));
    }
}
