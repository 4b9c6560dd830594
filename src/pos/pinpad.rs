//! The PIN pad on the cashier screen (issue 12 §2): a [`PinPad`] the sale's worker thread calls
//! (it blocks) while the screen's thread shows the PIN entry. Worker → screen: a [`PinRequest`]
//! ("PIN wanted", with the prompt and where to answer); screen → worker: the [`PinEntry`].
//!
//! The screen shows the amount, the masked PAN and one • per digit — never a digit. Keys:
//! digits; Backspace corrects the last digit; Enter ends the entry (only with 4 to 12 digits,
//! ISO 9564-1); Esc (or Ctrl-C) cancels; `b` is PIN bypass, only when the prompt allows it. No key within
//! the prompt's timeout ends the entry as [`PinEntry::TimedOut`]. The digits live in a zeroized
//! buffer and go only into an [`EnteredPin`].

use crate::terminal::pin::{EnteredPin, PinEntry, PinPad, PinPrompt};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Most digits a PIN has (ISO 9564-1).
const MAX_DIGITS: usize = 12;
/// Fewest digits a PIN has (ISO 9564-1).
const MIN_DIGITS: usize = 4;
/// How much longer than the prompt's timeout the worker waits for the screen before giving up
/// on its own (the screen ends the entry at the timeout itself).
const GRACE: Duration = Duration::from_secs(2);

/// "PIN wanted": what the worker sends the screen.
pub struct PinRequest {
    pub prompt: PinPrompt,
    reply: Sender<PinEntry>,
}

/// The worker's side: sends a [`PinRequest`] and waits for the answer.
pub struct ScreenPinPad {
    tx: Sender<PinRequest>,
}

/// A PIN pad for the worker and the receiver the screen polls ([`crate::pos::App::set_pin_pad`]).
pub fn channel() -> (ScreenPinPad, Receiver<PinRequest>) {
    let (tx, rx) = mpsc::channel();
    (ScreenPinPad { tx }, rx)
}

impl PinPad for ScreenPinPad {
    fn enter(&mut self, prompt: &PinPrompt) -> PinEntry {
        let (reply, answer) = mpsc::channel();
        if self.tx.send(PinRequest { prompt: prompt.clone(), reply }).is_err() {
            // No screen any more: nobody can enter a PIN.
            return PinEntry::Cancelled;
        }
        match answer.recv_timeout(prompt.timeout + GRACE) {
            Ok(entry) => entry,
            Err(mpsc::RecvTimeoutError::Timeout) => PinEntry::TimedOut,
            Err(mpsc::RecvTimeoutError::Disconnected) => PinEntry::Cancelled,
        }
    }
}

/// The PIN entry on screen.
pub struct PinScreen {
    pub prompt: PinPrompt,
    digits: Zeroizing<String>,
    deadline: Instant,
    reply: Sender<PinEntry>,
}

impl PinScreen {
    pub fn new(req: PinRequest, now: Instant) -> PinScreen {
        PinScreen { deadline: now + req.prompt.timeout, prompt: req.prompt, digits: Zeroizing::new(String::with_capacity(MAX_DIGITS)), reply: req.reply }
    }

    /// How many digits are typed (the screen shows this many •).
    pub fn typed(&self) -> usize {
        self.digits.len()
    }

    /// One key; `Some` when the entry is over. Every key restarts the timeout.
    fn key(&mut self, k: &KeyEvent, now: Instant) -> Option<PinEntry> {
        self.deadline = now + self.prompt.timeout;
        if k.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) {
            // Ctrl-C cancels the entry; no other chord types anything.
            return (k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c')).then_some(PinEntry::Cancelled);
        }
        match k.code {
            KeyCode::Char(c) if c.is_ascii_digit() => {
                if self.digits.len() < MAX_DIGITS {
                    self.digits.push(c);
                }
                None
            }
            KeyCode::Backspace => {
                self.digits.pop();
                None
            }
            KeyCode::Enter if (MIN_DIGITS..=MAX_DIGITS).contains(&self.digits.len()) => EnteredPin::new(&self.digits).ok().map(PinEntry::Entered),
            KeyCode::Esc => Some(PinEntry::Cancelled),
            KeyCode::Char('b') if self.prompt.bypass_allowed => Some(PinEntry::Bypassed),
            _ => None,
        }
    }

    /// Handles a key: `true` when the entry ended (the answer is sent to the worker).
    pub fn on_key(&mut self, k: &KeyEvent, now: Instant) -> bool {
        match self.key(k, now) {
            Some(entry) => {
                let _ = self.reply.send(entry);
                true
            }
            None => false,
        }
    }

    /// `true` (and TimedOut sent to the worker) once the timeout has passed without a key.
    pub fn on_tick(&mut self, now: Instant) -> bool {
        if now >= self.deadline {
            let _ = self.reply.send(PinEntry::TimedOut);
            return true;
        }
        false
    }
}

/// Draws the PIN entry: amount, masked PAN, one • per digit, the keys.
pub fn draw(f: &mut ratatui::Frame, app: &super::App, pin: &PinScreen) {
    use crate::text::T;
    use ratatui::layout::Alignment;
    use ratatui::style::{Modifier, Style};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, Clear, Paragraph};
    let r = super::screens::centered(f.area(), 56, 10);
    f.render_widget(Clear, r);
    let dots = if pin.typed() == 0 { "_".to_string() } else { "•".repeat(pin.typed()) };
    let bypass = if pin.prompt.bypass_allowed { app.t(T::PinBypassKey) } else { "" };
    let text = vec![
        Line::from(Span::styled(pin.prompt.amount.clone(), Style::new().add_modifier(Modifier::BOLD))),
        Line::from(format!("{} {}", app.t(T::PinCard), pin.prompt.pan_masked)),
        Line::from(""),
        Line::from(Span::styled(dots, Style::new().add_modifier(Modifier::BOLD))),
        Line::from(app.t(T::PinLength)),
        Line::from(""),
        Line::from(app.t(T::PinKeys)),
        Line::from(bypass),
    ];
    f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(Block::bordered().title(app.t(T::PinTitle))), r);
}
