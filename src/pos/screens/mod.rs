//! One module per screen: how it is drawn, and the handlers of its keys' actions.

pub mod busy;
pub mod help;
pub mod history;
pub mod outcome;
pub mod receipt;
pub mod sale;
pub mod settlement;

use super::app::App;
use crate::text::T;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// The demo phone's panel beside the sale and payment screens.
pub(super) fn phone_panel(app: &App) -> Vec<Line<'static>> {
    let Some(p) = &app.phone else { return vec![] };
    let v = p.view();
    let mut lines = vec![Line::from(Span::styled(app.t(T::PhoneWallet), Style::new().add_modifier(Modifier::BOLD)))];
    for (i, c) in v.cards.iter().enumerate().take(8) {
        let mark = if i == v.chosen { "▶" } else { " " };
        lines.push(Line::from(format!("{mark} {} {c}", i + 1)));
    }
    let screen = if v.asks_fingerprint {
        T::PhoneAsksFingerprint
    } else if v.fingerprint_given {
        T::PhoneVerified
    } else {
        T::PhoneLocked
    };
    lines.push(Line::from(app.t(screen)));
    lines
}
