//! The batch the next settlement reconciles; Enter uploads what is pending and reconciles.

use crate::journal::{Disposition, TxnKind, TxnState};
use crate::pos::app::{App, Screen};
use crate::terminal::receipt::Slip;
use crate::text::{pad, T};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

impl App {
    pub fn open_settlement(&mut self) {
        self.reload_history();
        self.pending = self.pos.pending();
        self.screen = Screen::Settlement;
    }

    /// The batch the next settlement reconciles, as the 0500 counts it (`online::counts`):
    /// (approved sales count, amount), (refunds count, amount), voids still waiting for their
    /// reversal's answer.
    pub fn totals(&self) -> ((u64, u64), (u64, u64), u64) {
        let mut sales = (0, 0);
        let mut refunds = (0, 0);
        let mut voids_pending = 0;
        for r in &self.history {
            if Slip::of(r) == (Slip::Void { confirmed: false }) {
                voids_pending += 1;
            }
            // Settlement uploads pending advices first: those offline approvals count too.
            let advised_first = r.state == TxnState::AdvicePending && r.disposition == Some(Disposition::ApprovedOffline);
            if !crate::online::counts(r) && !advised_first {
                continue;
            }
            let t = if r.kind == TxnKind::Refund { &mut refunds } else { &mut sales };
            t.0 += 1;
            t.1 += r.amount;
        }
        (sales, refunds, voids_pending)
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let ((sn, sa), (rn, ra), voided) = app.totals();
    let l = |t: T| pad(app.t(t), 16);
    let mut lines = vec![
        Line::from(Span::styled(app.t(T::ThisBatch), Style::new().add_modifier(Modifier::BOLD))),
        Line::from(""),
        Line::from(format!("{} {sn:>4}   {}", l(T::ApprovedSales), app.pos.money(sa))),
        Line::from(format!("{} {rn:>4}   {}", l(T::Refunds), app.pos.money(ra))),
        Line::from(format!("{} {voided:>4}", l(T::VoidsPending))),
        Line::from(format!("{} {:>4}   {}", l(T::Net), "", app.pos.money(sa.saturating_sub(ra)))),
        Line::from(""),
        Line::from(app.tf(T::PendingWork, &[&app.pending.reversals, &app.pending.advices])),
    ];
    if let Some(s) = &app.last_settle {
        lines.push(Line::from(app.tf(T::LastSettlement, &[&app.t(if s.reconciled { T::Reconciled } else { T::NotReconciled })])));
    }
    f.render_widget(Paragraph::new(lines).block(Block::bordered().title(app.t(T::SettlementTitle))), area);
}
