//! Drawing the cashier screen: a title line, the current screen, a status bar (reader, host,
//! pending store-and-forward, clock) and the keys of the screen. Works from 80×24 up.

use super::{App, BannerKind, Busy, Screen, Stage};
use kernels::types::Amount;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    let [title, body, status, keys] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(8), Constraint::Length(1), Constraint::Length(1)]).areas(f.area());
    let t = &app.pos.settings.ep.terminal;
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" shanfu 闪付 ", Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD)),
            Span::raw(format!(" {}  ·  terminal {} ", t.merchant_name_location, t.terminal_id)),
        ])),
        title,
    );
    match app.screen {
        Screen::Sale => sale(f, body, app),
        Screen::Busy => busy(f, body, app),
        Screen::Outcome => outcome(f, body, app),
        Screen::Receipt | Screen::Detail => receipt(f, body, app),
        Screen::History => history(f, body, app),
        Screen::Settlement => settlement(f, body, app),
    }
    status_bar(f, status, app);
    let hint = match app.screen {
        Screen::Sale => "0-9 . amount · Enter charge · Bksp · Esc clear · h history · s settle · ? help · q quit",
        Screen::Busy if app.phone.is_some() => "t tap phone · f fingerprint · 1-8 pick card · Esc cancel · ? help",
        Screen::Busy => "Esc cancel · ? help",
        Screen::Outcome => "Enter / digits next sale · r receipt · h history · ? help",
        Screen::Receipt => "e export to file · Esc back · n new sale",
        Screen::History if app.filtering => "type to filter · Enter done · Esc clear filter",
        Screen::History => "↑↓ select · Enter details · / filter · r refund · v void · s settle · Esc sale",
        Screen::Detail => "r refund · v void · e export receipt · Esc back",
        Screen::Settlement => "Enter run settlement · h history · Esc sale",
    };
    let line = match &app.note {
        Some(n) => Line::from(Span::styled(format!(" {n}"), Style::new().fg(Color::Yellow))),
        None => Line::from(Span::styled(format!(" {hint}"), Style::new().fg(Color::DarkGray))),
    };
    f.render_widget(Paragraph::new(line), keys);
    if let Some((_, _, q)) = &app.confirm {
        let r = centered(f.area(), (q.chars().count() as u16 + 4).max(40), 5);
        f.render_widget(Clear, r);
        let text =
            vec![Line::from(Span::styled(q.clone(), Style::new().add_modifier(Modifier::BOLD))), Line::from(""), Line::from("y = yes · any other key = no")];
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(Block::bordered().title(" Confirm ")), r);
    }
    if app.help {
        help(f, f.area());
    }
}

fn status_bar(f: &mut Frame, area: Rect, app: &App) {
    let reader_state = match (&app.phone, &app.busy) {
        (Some(p), _) if p.view().in_field => "phone in field",
        (_, Some(Busy::Sale { stage: Stage::Present | Stage::PresentAgain | Stage::SeePhone, .. })) => "waiting for card",
        (_, Some(Busy::Sale { .. })) => "reading",
        _ => "ready",
    };
    let host = if app.pos.host_online() { Span::styled("online", Style::new().fg(Color::Green)) } else { Span::styled("OFFLINE", Style::new().fg(Color::Red)) };
    let pending = app.pending.reversals + app.pending.advices;
    let mut spans = vec![];
    if app.pos.training {
        spans.push(Span::styled(
            format!(" {} ", crate::terminal::receipt::TRAINING),
            Style::new().fg(Color::Black).bg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    spans.extend([Span::raw(format!(" {} ({reader_state}) │ host ", app.reader_name)), host, Span::raw(format!(" │ S&F {pending} │ {}", (app.clock)()))]);
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line).style(Style::new().bg(Color::Rgb(30, 30, 40))), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn phone_panel(app: &App) -> Vec<Line<'static>> {
    let Some(p) = &app.phone else { return vec![] };
    let v = p.view();
    let mut lines = vec![Line::from(Span::styled("Phone wallet (demo)", Style::new().add_modifier(Modifier::BOLD)))];
    for (i, c) in v.cards.iter().enumerate().take(8) {
        let mark = if i == v.chosen { "▶" } else { " " };
        lines.push(Line::from(format!("{mark} {} {c}", i + 1)));
    }
    let screen = if v.asks_fingerprint {
        "screen: confirm with fingerprint"
    } else if v.fingerprint_given {
        "screen: verified ✓ — tap to pay"
    } else {
        "screen: locked"
    };
    lines.push(Line::from(screen.to_string()));
    lines
}

fn sale(f: &mut Frame, area: Rect, app: &App) {
    let [left, right] = Layout::horizontal([Constraint::Min(40), Constraint::Length(if app.phone.is_some() { 34 } else { 0 })]).areas(area);
    let sym = &app.pos.settings.currency_symbol;
    let amount = if app.amount.is_empty() { "0".to_string() } else { app.amount.clone() };
    let text = vec![
        Line::from(""),
        Line::from(Span::styled("SALE — enter the amount", Style::new().add_modifier(Modifier::BOLD))),
        Line::from(""),
        Line::from(Span::styled(format!("  {sym} {amount}▏"), Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))),
        Line::from(""),
    ];
    let mut text = text;
    // The first combination's limits (all of config/kernels.toml share them by default).
    if let Some(c) = app.pos.settings.ep.combinations.first() {
        let lim = |a: Option<Amount>| a.map(|a| app.pos.money(a.0)).unwrap_or_else(|| "none".into());
        // Book B §3.1.1.5 / §3.1.1.8: not allowed at or above the transaction limit; CVM from the CVM limit.
        text.push(Line::from(format!("Contactless below {}", lim(c.txn_limit))));
        text.push(Line::from(format!("CVM from {} (verify on phone)", lim(c.cvm_limit))));
    }
    f.render_widget(Paragraph::new(text).alignment(Alignment::Center).block(Block::bordered().title(" Sale ")), left);
    if app.phone.is_some() {
        f.render_widget(Paragraph::new(phone_panel(app)).block(Block::bordered().title(" Demo phone ")), right);
    }
}

fn busy(f: &mut Frame, area: Rect, app: &App) {
    let [left, right] = Layout::horizontal([Constraint::Min(40), Constraint::Length(if app.phone.is_some() { 34 } else { 0 })]).areas(area);
    let mut lines = vec![Line::from("")];
    match &app.busy {
        Some(Busy::Sale { amount, stage, .. }) => {
            lines.push(Line::from(Span::styled(app.pos.money(*amount), Style::new().add_modifier(Modifier::BOLD))));
            lines.push(Line::from(""));
            let (text, color) = match stage {
                Stage::Present => ("Present card or phone", Color::Cyan),
                Stage::PresentAgain => ("Present card again", Color::Yellow),
                Stage::SeePhone => ("SEE PHONE", Color::Yellow),
                Stage::HoldStill => ("Hold still…", Color::Cyan),
                Stage::CardRead => ("Card read — you may remove it", Color::Green),
                Stage::Authorizing => ("Authorizing…", Color::Cyan),
            };
            lines.push(Line::from(Span::styled(format!("  {text}  "), Style::new().fg(Color::Black).bg(color).add_modifier(Modifier::BOLD))));
            if *stage == Stage::SeePhone {
                lines.push(Line::from(""));
                lines.push(Line::from("Unlock your phone and confirm with fingerprint, then tap again"));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(format!("reader {}", app.reader_name)));
            if let Some(s) = app.countdown() {
                lines.push(Line::from(format!("{s} s left · Esc to cancel")));
            }
        }
        Some(Busy::Other(what)) => lines.push(Line::from(Span::styled(what.clone(), Style::new().add_modifier(Modifier::BOLD)))),
        None => {}
    }
    f.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }).block(Block::bordered().title(" Payment ")), left);
    if app.phone.is_some() {
        f.render_widget(Paragraph::new(phone_panel(app)).block(Block::bordered().title(" Demo phone ")), right);
    }
}

fn outcome(f: &mut Frame, area: Rect, app: &App) {
    let Some(b) = &app.banner else { return };
    let color = match b.kind {
        BannerKind::Approved => Color::Green,
        BannerKind::Declined => Color::Red,
        BannerKind::SeePhone | BannerKind::TryAgain => Color::Yellow,
        BannerKind::Info => Color::Blue,
    };
    let [top, rest] = Layout::vertical([Constraint::Length(5), Constraint::Min(3)]).areas(area);
    let big = Paragraph::new(vec![Line::from(""), Line::from(Span::styled(b.title.clone(), Style::new().add_modifier(Modifier::BOLD))), Line::from("")])
        .alignment(Alignment::Center)
        .style(Style::new().fg(Color::Black).bg(color))
        .block(Block::new().borders(Borders::NONE));
    f.render_widget(big, centered(top, top.width.saturating_sub(4), 3));
    let mut lines = vec![Line::from(Span::styled(b.reason.clone(), Style::new().fg(color).add_modifier(Modifier::BOLD))), Line::from("")];
    lines.extend(b.details.iter().map(|d| Line::from(d.clone())));
    f.render_widget(Paragraph::new(lines).alignment(Alignment::Center).wrap(Wrap { trim: true }).block(Block::bordered()), rest);
}

fn receipt(f: &mut Frame, area: Rect, app: &App) {
    let text = app.receipt_text().unwrap_or_else(|| "no transaction".into());
    let title = if app.screen == Screen::Detail { " Transaction " } else { " Receipt " };
    let w = 60.min(area.width);
    let r = Rect { x: area.x + (area.width - w) / 2, width: w, ..area };
    f.render_widget(Paragraph::new(text).block(Block::bordered().title(title)), r);
}

fn history(f: &mut Frame, area: Rect, app: &App) {
    let exp = u32::from(app.pos.settings.ep.terminal.currency_exponent);
    let rows: Vec<Row> = app
        .visible()
        .iter()
        .map(|r| {
            let when = r.history.first().map(|(s, _)| crate::clock::format_utc(*s)[5..16].to_string()).unwrap_or_default();
            Row::new(vec![
                r.id.to_string(),
                when,
                crate::terminal::receipt::Slip::of(r).title(super::LANG).to_string(),
                Amount(r.amount).display(exp),
                r.disposition.map(|d| d.title(super::LANG)).unwrap_or("…").to_string(),
                r.pan_masked.clone().unwrap_or_default(),
                format!("{:?}", r.state),
            ])
        })
        .collect();
    let header = Row::new(vec!["id", "time", "kind", "amount", "outcome", "card", "state"]).style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(4),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(15),
        Constraint::Length(16),
        Constraint::Min(8),
    ];
    let title = if app.filter.is_empty() && !app.filtering {
        " History ".to_string()
    } else {
        format!(" History — filter: {}{} ", app.filter, if app.filtering { "▏" } else { "" })
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().bg(Color::DarkGray))
        .highlight_symbol("▶");
    let mut st = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, area, &mut st);
}

fn settlement(f: &mut Frame, area: Rect, app: &App) {
    let ((sn, sa), (rn, ra), voided) = app.totals();
    let mut lines = vec![
        Line::from(Span::styled("This batch (what the next settlement reconciles)", Style::new().add_modifier(Modifier::BOLD))),
        Line::from(""),
        Line::from(format!("Approved sales   {sn:>4}   {}", app.pos.money(sa))),
        Line::from(format!("Refunds          {rn:>4}   {}", app.pos.money(ra))),
        Line::from(format!("Voids pending    {voided:>4}")),
        Line::from(format!("Net              {:>4}   {}", "", app.pos.money(sa.saturating_sub(ra)))),
        Line::from(""),
        Line::from(format!("Pending reversals {}   pending advices {}", app.pending.reversals, app.pending.advices)),
    ];
    if let Some(s) = &app.last_settle {
        lines.push(Line::from(format!("Last settlement: {}", if s.reconciled { "reconciled" } else { "NOT reconciled" })));
    }
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Settlement ")), area);
}

fn help(f: &mut Frame, area: Rect) {
    let keys = [
        ("Sale", "0-9 . amount, Backspace, Esc clear, Enter charge"),
        ("", "h history, s settlement, q quit"),
        ("Payment", "Esc cancel the wait for the card"),
        ("Demo phone", "t tap, f fingerprint, 1-8 pick a card"),
        ("Outcome", "Enter or digits: next sale, r receipt"),
        ("Receipt", "e export to a text file, Esc back"),
        ("History", "↑↓ select, Enter details, / filter"),
        ("", "r refund, v void the selected sale (y to confirm)"),
        ("Settlement", "Enter upload reversals/advices, reconcile"),
        ("Anywhere", "? or F1 this help, Ctrl-C quit"),
    ];
    let lines: Vec<Line> =
        keys.iter().map(|(a, b)| Line::from(vec![Span::styled(format!("{a:<11}"), Style::new().add_modifier(Modifier::BOLD)), Span::raw(*b)])).collect();
    let r = centered(area, 64, keys.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Keys — any key closes ")), r);
}
