//! The help screen: every row of the key table, by screen (`keys::help_lines`).

use super::centered;
use crate::pos::app::App;
use crate::pos::keys;
use crate::text::{pad, width, T};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let rows = keys::help_lines(app.lang);
    let head = rows.iter().map(|(h, _)| width(h)).max().unwrap_or(0) + 1;
    let r = centered(area, area.width.saturating_sub(2), area.height);
    let room = usize::from(r.width.saturating_sub(2)).saturating_sub(head).max(10);
    let mut lines = vec![];
    for (h, keys) in rows {
        // The context's keys, wrapped under its heading.
        let mut wrapped: Vec<String> = vec![String::new()];
        for k in keys {
            let cur = wrapped.last_mut().expect("one line at least");
            if cur.is_empty() {
                *cur = k;
            } else if width(cur) + 2 + width(&k) <= room {
                *cur = format!("{cur}, {k}");
            } else {
                cur.push(',');
                wrapped.push(k);
            }
        }
        for (i, w) in wrapped.into_iter().enumerate() {
            let left = if i == 0 { pad(&h, head) } else { " ".repeat(head) };
            lines.push(Line::from(vec![Span::styled(left, Style::new().add_modifier(Modifier::BOLD)), Span::raw(w)]));
        }
    }
    let r = centered(area, r.width, (lines.len() as u16 + 2).min(area.height));
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(app.t(T::HelpTitle))), r);
}
