//! The journal, newest first: filter, select, details, refund or void (asked first).

use crate::journal::{TxnRecord, TxnState};
use crate::pos::app::{App, Confirm, Screen};
use crate::pos::worker::Undo;
use crate::terminal::receipt::{refunded_by, Slip};
use crate::text::{width, T};
use host_contract::Lang;
use kernels::types::Amount;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Row, Table, TableState};
use ratatui::Frame;

/// A transaction state in words.
pub fn state_text(s: TxnState, lang: Lang) -> &'static str {
    match s {
        TxnState::Started => T::StateStarted,
        TxnState::CardRead => T::StateCardRead,
        TxnState::Sent => T::StateSent,
        TxnState::Answered => T::StateAnswered,
        TxnState::Completed => T::StateCompleted,
        TxnState::ReversalPending => T::StateReversalPending,
        TxnState::Reversed => T::StateReversed,
        TxnState::AdvicePending => T::StateAdvicePending,
        TxnState::Advised => T::StateAdvised,
        TxnState::Settled => T::StateSettled,
    }
    .s(lang)
}

/// How a row ended, as the history shows it: a voided sale is voided, a refunded one refunded
/// (with the refund's id), else the disposition's title.
pub fn outcome_text(all: &[TxnRecord], r: &TxnRecord, lang: Lang) -> String {
    match Slip::of(r) {
        Slip::Void { confirmed: true } => T::Voided.s(lang).into(),
        Slip::Void { confirmed: false } => T::VoidPending.s(lang).into(),
        Slip::Sale => match refunded_by(all, r.id) {
            Some(refund) => T::Refunded.fmt(lang, &[&refund]),
            None => r.disposition.map(|d| d.title(lang)).unwrap_or(T::InProgress.s(lang)).into(),
        },
        Slip::Refund => r.disposition.map(|d| d.title(lang)).unwrap_or(T::InProgress.s(lang)).into(),
    }
}

impl App {
    /// Journal rows matching the filter, newest first.
    pub fn visible(&self) -> Vec<&TxnRecord> {
        let f = self.filter.to_lowercase();
        self.history
            .iter()
            .rev()
            .filter(|r| {
                f.is_empty() || {
                    let hay = format!(
                        "{} {} {} {} {} {:?} {:?} {} {}",
                        r.id,
                        Amount(r.amount).display(self.exp() as u32),
                        r.outcome_name(),
                        outcome_text(&self.history, r, self.lang),
                        r.pan_masked.as_deref().unwrap_or(""),
                        r.kind,
                        r.state,
                        state_text(r.state, self.lang),
                        r.label.as_deref().unwrap_or("")
                    )
                    .to_lowercase();
                    hay.contains(&f)
                }
            })
            .collect()
    }

    pub(in crate::pos) fn current(&self) -> Option<&TxnRecord> {
        self.visible().get(self.selected).copied()
    }

    pub fn open_history(&mut self) {
        self.reload_history();
        self.selected = 0;
        self.screen = Screen::History;
    }

    /// r / v: the question first; "y" runs it.
    pub(in crate::pos) fn ask(&mut self, what: Undo) {
        let Some(r) = self.current() else { return };
        let t = if what == Undo::Refund { T::ConfirmRefund } else { T::ConfirmVoid };
        let card = r.pan_masked.clone().unwrap_or_else(|| self.t(T::NoCard).into());
        let question = self.tf(t, &[&self.pos.money(r.amount), &r.id, &card]);
        self.confirm = Some(Confirm { what, id: r.id, question });
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let exp = u32::from(app.pos.settings.ep.terminal.currency_exponent);
    let tz = &app.pos.settings.time_zone;
    let lang = app.lang;
    let visible = app.visible();
    let cells: Vec<[String; 7]> = visible
        .iter()
        .map(|r| {
            let when = r.history.first().map(|(s, _)| crate::clock::format_local(tz, *s)[5..16].to_string()).unwrap_or_default();
            [
                r.id.to_string(),
                when,
                Slip::of(r).title(lang).to_string(),
                Amount(r.amount).display(exp),
                outcome_text(&app.history, r, lang),
                r.pan_masked.clone().unwrap_or_default(),
                state_text(r.state, lang).to_string(),
            ]
        })
        .collect();
    let header = [T::ColId, T::ColTime, T::ColKind, T::ColAmount, T::ColOutcome, T::ColCard, T::ColState].map(|t| app.t(t).to_string());
    // Every column as wide as its widest cell (a 12-digit amount is never cut).
    let w = |i: usize, min: usize| cells.iter().map(|c| width(&c[i])).chain([width(&header[i]), min]).max().unwrap_or(min) as u16;
    let widths = [
        Constraint::Length(w(0, 4)),
        Constraint::Length(w(1, 11)),
        Constraint::Length(w(2, 8)),
        Constraint::Length(w(3, 8)),
        Constraint::Length(w(4, 15)),
        Constraint::Length(w(5, 16)),
        Constraint::Min(w(6, 8)),
    ];
    let rows: Vec<Row> = cells.into_iter().map(Row::new).collect();
    let title = if app.filter.is_empty() && !app.filtering {
        app.t(T::HistoryTitle).to_string()
    } else {
        app.tf(T::HistoryFiltered, &[&format!("{}{}", app.filter, if app.filtering { "▏" } else { "" })])
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().bg(Color::DarkGray))
        .highlight_symbol("▶");
    let mut st = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut st);
}
