//! The result of the last operation: a big title in the outcome's colour, the reason a cashier
//! can act on, the details. The sale's outcome stays for its hold time (Book A §7.1).

use super::centered;
use crate::journal::{Disposition, TxnRecord, TxnState};
use crate::online::SettleReport;
use crate::pos::app::{App, Banner, BannerKind, Screen};
use crate::pos::worker::Undo;
use crate::terminal::disposition::NotCompleted as N;
use crate::terminal::service::SaleResult;
use crate::text::T;
use kernels::outcome::Cvm;
use kernels::types::Amount;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use std::time::Instant;

impl App {
    /// Enter on the outcome: the next sale, once the outcome's hold time has passed.
    pub(in crate::pos) fn next_sale(&mut self) {
        if self.hold_over() {
            self.new_sale();
        } else {
            self.note = Some(self.t(T::ShowingOutcome).into());
        }
    }

    pub(in crate::pos) fn show_receipt(&mut self) {
        if self.banner.as_ref().and_then(|b| b.txn).is_some() {
            self.screen = Screen::Receipt;
        }
    }

    pub(in crate::pos) fn sale_banner(&mut self, r: anyhow::Result<SaleResult>) -> Banner {
        let lang = self.lang;
        let SaleResult { report: rep, hold, .. } = match r {
            Ok(r) => r,
            Err(e) => return Banner { kind: BannerKind::Declined, title: self.t(T::Error).into(), reason: format!("{e:#}"), details: vec![], txn: None },
        };
        self.shown = Some((Instant::now(), hold));
        let minor = Amount::parse(&rep.amount, self.exp() as u32).map(|a| a.0).unwrap_or(0);
        let d = rep.disposition;
        let kind = match d {
            d if d.is_approved() => BannerKind::Approved,
            Disposition::NotCompleted { reason: N::Cancelled } => BannerKind::Info,
            Disposition::NotCompleted { reason: N::SeePhone } => BannerKind::SeePhone,
            Disposition::NotCompleted { reason: N::TryAgain } => BannerKind::TryAgain,
            _ => BannerKind::Declined,
        };
        let reason = match d {
            d if d.is_approved() => match rep.cvm {
                Cvm::Cdcvm => self.t(T::VerifiedByDevice).to_string(),
                Cvm::Signature => self.t(T::PleaseSign).to_string(),
                Cvm::NoCvm | Cvm::OnlinePin | Cvm::NotApplicable => d.cashier_text(lang).to_string(),
            },
            Disposition::NotCompleted { reason: N::SeePhone } => self.t(T::SeePhoneHelp).into(),
            d => d.cashier_text(lang).to_string(),
        };
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut details = vec![format!("{}  {}", self.pos.money(minor), o(&rep.label))];
        if let Some(p) = &rep.pan_masked {
            details.push(self.tf(T::CardLine, &[p, &o(&rep.kernel), &o(&rep.aid)]));
        }
        if let Some(ac) = &rep.auth_code {
            details.push(self.tf(T::AuthLine, &[ac, &o(&rep.rrn), &o(&rep.stan)]));
        }
        // Air time when the reader can tell (virtual readers), else the tap's wall time.
        details.push(if rep.card_in_field_ms > 0.0 {
            self.tf(T::TapsInField, &[&rep.taps, &format!("{:.0}", rep.card_in_field_ms)])
        } else {
            self.tf(T::TapsReadIn, &[&rep.taps, &format!("{:.1}", rep.tap_ms)])
        });
        Banner { kind, title: d.title(lang).into(), reason, details, txn: rep.journal_id }
    }

    pub(in crate::pos) fn undo_banner(&self, what: Undo, orig: u64, r: anyhow::Result<TxnRecord>) -> Banner {
        let lang = self.lang;
        let rec = match r {
            Ok(rec) => rec,
            Err(e) => {
                let title = if what == Undo::Void { T::VoidNotDone } else { T::RefundNotDone };
                return Banner { kind: BannerKind::Info, title: self.t(title).into(), reason: format!("{e:#}"), details: vec![], txn: None };
            }
        };
        let ok = match what {
            Undo::Void => rec.state == TxnState::Reversed,
            Undo::Refund => rec.disposition.is_some_and(Disposition::is_approved),
        };
        let money = self.pos.money(rec.amount);
        let (title, reason) = match (what, ok) {
            (Undo::Void, true) => (self.t(T::Voided).to_string(), self.tf(T::VoidDone, &[&orig, &money])),
            (Undo::Void, false) => (self.t(T::VoidPending).to_string(), self.tf(T::VoidQueued, &[&orig])),
            (Undo::Refund, true) => (Disposition::ApprovedOnline.title(lang).to_string(), self.tf(T::RefundDone, &[&orig, &money])),
            (Undo::Refund, false) => (
                rec.disposition.unwrap_or(Disposition::DeclinedByCard).title(lang).to_string(),
                rec.disposition.map(|d| d.cashier_text(lang)).unwrap_or(self.t(T::NotAnsweredYet)).to_string(),
            ),
        };
        Banner {
            kind: if ok { BannerKind::Approved } else { BannerKind::Declined },
            title,
            reason,
            details: vec![format!("{} {}", rec.label.clone().unwrap_or_default(), rec.pan_masked.clone().unwrap_or_default())],
            txn: Some(rec.id),
        }
    }

    pub(in crate::pos) fn settle_banner(&mut self, r: anyhow::Result<SettleReport>) -> Banner {
        match r {
            Ok(rep) => {
                let kind = if rep.reconciled { BannerKind::Approved } else { BannerKind::Declined };
                let t = &rep.totals;
                let reason = self.tf(
                    T::SettleSummary,
                    &[&t.debits, &self.pos.money(t.debits_amount), &t.credits, &self.pos.money(t.credits_amount), &rep.reversals_sent, &rep.advices_sent],
                );
                let title = self.t(if rep.reconciled { T::Reconciled } else { T::NotReconciled }).into();
                self.last_settle = Some(rep);
                Banner { kind, title, reason, details: vec![], txn: None }
            }
            Err(e) => Banner { kind: BannerKind::Declined, title: self.t(T::SettlementFailed).into(), reason: format!("{e:#}"), details: vec![], txn: None },
        }
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
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
