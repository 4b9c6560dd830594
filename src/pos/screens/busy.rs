//! An operation runs: the sale's stage and countdown (and the demo phone), or what the refund,
//! void or settlement is doing.

use super::phone_panel;
use crate::pos::app::{App, Busy, Stage};
use crate::pos::worker::Undo;
use crate::terminal::service::Progress;
use crate::text::T;
use kernels::outcome::MessageId;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use std::time::Instant;

impl App {
    pub(in crate::pos) fn cancel_wait(&mut self) {
        if self.waits_for_card() {
            match &self.canceller {
                Some(c) => c.cancel(),
                None => self.note = Some(self.t(T::CannotCancel).into()),
            }
        }
    }

    /// The demo phone touches the reader: it counts only while a sale waits for the card.
    pub(in crate::pos) fn phone_tap(&mut self) {
        let Some(phone) = &self.phone else { return };
        if self.waits_for_card() {
            phone.tap();
        } else {
            self.note = Some(self.t(T::NoSaleWaiting).into());
        }
    }

    pub(in crate::pos) fn phone_fingerprint(&mut self) {
        let Some(phone) = &self.phone else { return };
        if !phone.fingerprint() {
            self.note = Some(self.t(T::NoFingerprintSensor).into());
        }
    }

    pub(in crate::pos) fn phone_pick_card(&mut self, c: Option<char>) {
        let Some(phone) = &self.phone else { return };
        let Some(n) = c.and_then(|c| c.to_digit(10)).filter(|n| *n >= 1) else { return };
        if !phone.choose_card(n as usize - 1) {
            self.note = Some(self.tf(T::NoSuchCard, &[&n]));
        }
    }

    pub(in crate::pos) fn on_progress(&mut self, p: Progress) {
        let Some(Busy::Sale { stage, wait_from, wait, .. }) = &mut self.busy else { return };
        let policy = &self.pos.policy;
        match p {
            // The restart's "Present card again" (Book B §3.2.1.2) starts the wait for the next
            // tap like "Present card" does; after See Phone the phone's prompt stays on screen.
            Progress::PresentCard | Progress::Message(MessageId::PresentCardAgain) => {
                if *stage != Stage::Present && *stage != Stage::SeePhone && *stage != Stage::PresentAgain {
                    *stage = Stage::PresentAgain;
                }
                *wait_from = Instant::now();
                *wait = match stage {
                    Stage::SeePhone => policy.see_phone,
                    Stage::Present => policy.first_tap,
                    _ => policy.try_again,
                };
            }
            Progress::CardDetected => *stage = Stage::HoldStill,
            Progress::Message(MessageId::SeePhone) => *stage = Stage::SeePhone,
            Progress::Message(MessageId::CardReadOk | MessageId::RemoveCard) => *stage = Stage::CardRead,
            Progress::Message(_) => {}
            Progress::Authorizing => *stage = Stage::Authorizing,
            // The PIN pad screen takes over (src/pos/pinpad.rs) until the PIN is in.
            Progress::EnterPin => {}
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let [left, right] = Layout::horizontal([Constraint::Min(40), Constraint::Length(if app.phone.is_some() { 34 } else { 0 })]).areas(area);
    let mut lines = vec![Line::from("")];
    let bold = Style::new().add_modifier(Modifier::BOLD);
    match &app.busy {
        Some(Busy::Sale { amount, stage, .. }) => {
            lines.push(Line::from(Span::styled(app.pos.money(*amount), bold)));
            lines.push(Line::from(""));
            let (text, color) = match stage {
                Stage::Present => (T::PresentCard, Color::Cyan),
                Stage::PresentAgain => (T::PresentCardAgain, Color::Yellow),
                Stage::SeePhone => (T::SeePhone, Color::Yellow),
                Stage::HoldStill => (T::HoldStill, Color::Cyan),
                Stage::CardRead => (T::CardRead, Color::Green),
                Stage::Authorizing => (T::Authorizing, Color::Cyan),
            };
            lines.push(Line::from(Span::styled(format!("  {}  ", app.t(text)), Style::new().fg(Color::Black).bg(color).add_modifier(Modifier::BOLD))));
            if *stage == Stage::SeePhone {
                lines.push(Line::from(""));
                lines.push(Line::from(app.t(T::SeePhoneHelp)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(app.tf(T::ReaderName, &[&app.reader_name])));
            if let Some(s) = app.countdown() {
                lines.push(Line::from(app.tf(T::SecondsLeft, &[&s])));
            }
        }
        Some(Busy::Undo(what, id)) => {
            let t = if *what == Undo::Refund { T::Refunding } else { T::Voiding };
            lines.push(Line::from(Span::styled(app.tf(t, &[id]), bold)));
        }
        Some(Busy::Settle) => lines.push(Line::from(Span::styled(app.t(T::Settling), bold))),
        None => {}
    }
    f.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }).block(Block::bordered().title(app.t(T::PaymentTitle))), left);
    if app.phone.is_some() {
        f.render_widget(Paragraph::new(phone_panel(app)).block(Block::bordered().title(app.t(T::DemoPhoneTitle))), right);
    }
}
