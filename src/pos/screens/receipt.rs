//! The receipt of the outcome's transaction, and the detail of a history row (the same text,
//! with the transaction's state: voided, refunded); both can be exported to a file.

use crate::journal::TxnRecord;
use crate::pos::app::{App, Screen};
use crate::text::T;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

impl App {
    fn receipt_txn(&self) -> Option<TxnRecord> {
        let id = match self.screen {
            Screen::Detail => self.current().map(|r| r.id),
            _ => self.banner.as_ref().and_then(|b| b.txn),
        }?;
        self.pos.journal.get(id).ok()
    }

    /// The receipt text of the transaction on screen.
    pub fn receipt_text(&self) -> Option<String> {
        self.receipt_txn().map(|r| self.pos.receipt(&r))
    }

    pub(in crate::pos) fn export_receipt(&mut self) {
        let Some(r) = self.receipt_txn() else { return };
        let text = self.pos.receipt(&r);
        let path = self.receipts.join(format!("receipt-{}.txt", r.id));
        let res = std::fs::create_dir_all(&self.receipts).and_then(|_| std::fs::write(&path, text));
        let shown = path.display().to_string();
        self.note = Some(match res {
            Ok(()) => self.tf(T::ReceiptSaved, &[&shown]),
            Err(e) => self.tf(T::ReceiptNotSaved, &[&shown, &e]),
        });
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let text = app.receipt_text().unwrap_or_else(|| app.t(T::NoTransaction).into());
    let title = app.t(if app.screen == Screen::Detail { T::DetailTitle } else { T::ReceiptTitle });
    let w = 60.min(area.width);
    let r = Rect { x: area.x + (area.width - w) / 2, width: w, ..area };
    f.render_widget(Paragraph::new(text).block(Block::bordered().title(title)), r);
}
