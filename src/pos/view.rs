//! Drawing the cashier screen: a title line, the current screen (`screens/`), a status bar
//! (reader, host, pending store-and-forward, local clock) and the keys of the screen from the
//! key table. Works from 80×24 up.

use super::app::{App, Busy, Screen, Stage};
use super::keys;
use super::screens::{self, centered};
use crate::text::{width, T};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    let [title, body, status, keys_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(8), Constraint::Length(1), Constraint::Length(1)]).areas(f.area());
    let t = &app.pos.settings.ep.terminal;
    let mut title_spans = vec![
        Span::styled(" shanfu 闪付 ", Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD)),
        Span::raw(format!(" {}  ·  {} {} ", t.merchant_name_location, app.t(T::TerminalLabel), t.terminal_id)),
    ];
    // A host configured `mac = false` (issue 12 §5): its answers could come from anyone.
    if !app.pos.settings.host.mac {
        title_spans
            .push(Span::styled(format!(" {} ", app.t(T::LinkUnauthenticated)), Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)));
    }
    f.render_widget(Paragraph::new(Line::from(title_spans)), title);
    match app.screen {
        Screen::Sale => screens::sale::draw(f, body, app),
        Screen::Busy => screens::busy::draw(f, body, app),
        Screen::Outcome => screens::outcome::draw(f, body, app),
        Screen::Receipt | Screen::Detail => screens::receipt::draw(f, body, app),
        Screen::History => screens::history::draw(f, body, app),
        Screen::Settlement => screens::settlement::draw(f, body, app),
    }
    status_bar(f, status, app);
    let line = match &app.note {
        Some(n) => Line::from(Span::styled(format!(" {n}"), Style::new().fg(Color::Yellow))),
        None => Line::from(Span::styled(format!(" {}", keys::hint_line(app, app.lang)), Style::new().fg(Color::DarkGray))),
    };
    f.render_widget(Paragraph::new(line), keys_area);
    if let Some(c) = &app.confirm {
        let r = centered(f.area(), (width(&c.question) as u16 + 4).max(40), 5);
        f.render_widget(Clear, r);
        let text =
            vec![Line::from(Span::styled(c.question.clone(), Style::new().add_modifier(Modifier::BOLD))), Line::from(""), Line::from(app.t(T::ConfirmKeys))];
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(Block::bordered().title(app.t(T::ConfirmTitle))), r);
    }
    if let Some(p) = &app.pin {
        super::pinpad::draw(f, app, p);
    }
    if app.help {
        screens::help::draw(f, f.area(), app);
    }
}

fn status_bar(f: &mut Frame, area: Rect, app: &App) {
    let reader_state = match (&app.phone, &app.busy) {
        (Some(p), _) if p.view().in_field => T::PhoneInField,
        (_, Some(Busy::Sale { stage: Stage::Present | Stage::PresentAgain | Stage::SeePhone, .. })) => T::WaitingForCard,
        (_, Some(Busy::Sale { .. })) => T::Reading,
        _ => T::Ready,
    };
    let host = if app.pos.host_online() {
        Span::styled(app.t(T::Online), Style::new().fg(Color::Green))
    } else {
        Span::styled(app.t(T::Offline), Style::new().fg(Color::Red))
    };
    let pending = app.pending.reversals + app.pending.advices;
    let mut spans = vec![];
    if app.pos.training {
        spans.push(Span::styled(format!(" {} ", app.t(T::Training)), Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD)));
    }
    spans.extend([
        Span::raw(format!(" {} ({}) │ {} ", app.reader_name, app.t(reader_state), app.t(T::Host))),
        host,
        Span::raw(format!(" │ {} │ {}", app.tf(T::StoreAndForward, &[&pending]), (app.clock)(&app.pos.settings.time_zone))),
    ]);
    f.render_widget(Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Rgb(30, 30, 40))), area);
}
