//! Amount entry: the amount as typed, the contactless and CVM limits; Enter charges it.

use super::phone_panel;
use crate::pos::app::App;
use crate::text::T;
use kernels::types::Amount;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

/// Amount entry: digits, one decimal point, at most the currency's decimals; 10 digits at most.
pub fn accept_amount_char(amount: &str, c: char, exp: usize) -> bool {
    match c {
        '0'..='9' => {
            if let Some(dot) = amount.find('.') {
                amount.len() - dot - 1 < exp
            } else {
                amount.len() < 10 && !(amount == "0" && c == '0')
            }
        }
        '.' => exp > 0 && !amount.contains('.'),
        _ => false,
    }
}

impl App {
    pub(in crate::pos) fn type_amount(&mut self, c: Option<char>) {
        if let Some(c) = c.filter(|c| accept_amount_char(&self.amount, *c, self.exp())) {
            self.amount.push(c);
        }
    }

    /// Enter: the sale starts and the terminal asks for the card.
    pub(in crate::pos) fn charge(&mut self) {
        let amount = match self.pos.parse_amount(&self.amount) {
            Ok(a) => a,
            Err(e) => {
                self.note = Some(self.tf(T::BadAmount, &[&format!("{:?}", self.amount), &format!("{e:#}")]));
                return;
            }
        };
        let Some(reader) = self.reader.take() else {
            self.note = Some(self.t(T::ReaderBusy).into());
            return;
        };
        // A new wait for the card begins: an Esc meant for the previous sale must not cancel
        // this one, and a tap made before it was asked for does not count (reset here, before
        // the worker starts, so an Esc or a tap right after Enter still counts).
        if let Some(c) = &self.canceller {
            c.reset();
        }
        self.spawn_sale(amount, reader);
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let [left, right] = Layout::horizontal([Constraint::Min(40), Constraint::Length(if app.phone.is_some() { 34 } else { 0 })]).areas(area);
    let sym = &app.pos.settings.currency_symbol;
    let amount = if app.amount.is_empty() { "0".to_string() } else { app.amount.clone() };
    let mut text = vec![
        Line::from(""),
        Line::from(Span::styled(app.t(T::SalePrompt), Style::new().add_modifier(Modifier::BOLD))),
        Line::from(""),
        Line::from(Span::styled(format!("  {sym} {amount}▏"), Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))),
        Line::from(""),
    ];
    // The first combination's limits (all of config/kernels.toml share them by default).
    if let Some(c) = app.pos.settings.ep.combinations.first() {
        let lim = |a: Option<Amount>| a.map(|a| app.pos.money(a.0)).unwrap_or_else(|| app.t(T::NoLimit).into());
        // Book B §3.1.1.5 / §3.1.1.8: not allowed at or above the transaction limit; CVM from the CVM limit.
        text.push(Line::from(app.tf(T::ContactlessBelow, &[&lim(c.txn_limit)])));
        text.push(Line::from(app.tf(T::CvmFrom, &[&lim(c.cvm_limit)])));
    }
    f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(Block::bordered().title(app.t(T::SaleTitle))), left);
    if app.phone.is_some() {
        f.render_widget(Paragraph::new(phone_panel(app)).block(Block::bordered().title(app.t(T::DemoPhoneTitle))), right);
    }
}
