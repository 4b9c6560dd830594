//! The one key table of the cashier screens. Every key the screens handle is a row here:
//! (context, key, action, label, hint). [`App::on_key`](super::App::on_key) looks keys up in it
//! (a key that is not in the table does nothing), the hint line at the bottom shows the rows of
//! the current screen, and the help screen lists them all.

use super::app::{App, Screen};
use crate::text::T;
use host_contract::Lang;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a key binding applies: a screen, or a state on top of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ctx {
    /// Before anything else (Ctrl-C).
    Always,
    Sale,
    /// A sale, refund, void or settlement is running.
    Busy,
    /// The demo phone's keys while a sale waits for the card (demo only).
    Phone,
    Outcome,
    Receipt,
    History,
    /// Typing a history filter.
    Filter,
    Detail,
    Settlement,
    /// A refund or void waits for "y".
    Confirm,
    /// The help screen is open.
    Help,
    /// On every screen (after the screen's own keys).
    Anywhere,
}

impl Ctx {
    /// The heading of the context on the help screen.
    pub fn title(self) -> Option<T> {
        Some(match self {
            Ctx::Sale => T::CtxSale,
            Ctx::Busy => T::CtxPayment,
            Ctx::Phone => T::CtxPhone,
            Ctx::Outcome => T::CtxOutcome,
            Ctx::Receipt => T::CtxReceipt,
            Ctx::History => T::CtxHistory,
            Ctx::Filter => T::CtxFilter,
            Ctx::Detail => T::CtxDetail,
            Ctx::Settlement => T::CtxSettlement,
            Ctx::Confirm => T::CtxConfirm,
            Ctx::Anywhere | Ctx::Always => T::CtxAnywhere,
            Ctx::Help => return None,
        })
    }
}

/// A key, or a class of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// 0-9.
    Digit,
    /// 0-9 and the decimal point.
    AmountChar,
    /// Any printable character.
    Text,
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    F(u8),
    Ctrl(char),
    /// Any key at all.
    Any,
}

impl Key {
    pub fn matches(self, k: &KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Ctrl(c) => ctrl && k.code == KeyCode::Char(c),
            Key::Any => true,
            _ if ctrl => false,
            Key::Char(c) => k.code == KeyCode::Char(c),
            Key::Digit => matches!(k.code, KeyCode::Char(c) if c.is_ascii_digit()),
            Key::AmountChar => matches!(k.code, KeyCode::Char(c) if c.is_ascii_digit() || c == '.'),
            Key::Text => matches!(k.code, KeyCode::Char(_)),
            Key::Enter => k.code == KeyCode::Enter,
            Key::Esc => k.code == KeyCode::Esc,
            Key::Backspace => k.code == KeyCode::Backspace,
            Key::Up => k.code == KeyCode::Up,
            Key::Down => k.code == KeyCode::Down,
            Key::F(n) => k.code == KeyCode::F(n),
        }
    }
}

/// What a key does. The handlers are in `app.rs` (dispatch) and the screen modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ctrl-C: cancel a wait for the card, else quit.
    Interrupt,
    Quit,
    Help,
    CloseHelp,
    // Sale
    TypeAmount,
    DeleteAmount,
    ClearAmount,
    Charge,
    OpenHistory,
    OpenSettlement,
    // Busy
    CancelWait,
    PhoneTap,
    PhoneFingerprint,
    PhonePickCard,
    // Outcome
    NextSale,
    /// A digit on the outcome: the next sale starts with it.
    NextSaleTyping,
    ShowReceipt,
    // Receipt, detail
    ExportReceipt,
    BackFromReceipt,
    BackToHistory,
    NewSale,
    // History
    SelectUp,
    SelectDown,
    StartFilter,
    FilterType,
    FilterDelete,
    FilterDone,
    FilterClear,
    Details,
    Refund,
    Void,
    // Settlement
    RunSettlement,
    // Confirm
    Yes,
    No,
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub ctx: Ctx,
    pub key: Key,
    pub action: Action,
    /// How the key is written in the hint line and on the help screen ("": the hint says it).
    pub label: &'static str,
    /// What it does, for the hint line and the help screen; `None`: another row of the same
    /// action carries the hint (Up and k).
    pub hint: Option<T>,
    /// Whether the hint line at the bottom shows it (the help screen shows every hint).
    pub on_line: bool,
}

const fn b(ctx: Ctx, key: Key, action: Action, label: &'static str, hint: Option<T>) -> Binding {
    Binding { ctx, key, action, label, hint, on_line: true }
}

/// A row whose hint only the help screen shows (the hint line has no room for it).
const fn help_only(ctx: Ctx, key: Key, action: Action, label: &'static str, hint: T) -> Binding {
    Binding { ctx, key, action, label, hint: Some(hint), on_line: false }
}

use Action as A;
use Ctx as C;
use Key as K;

/// The key table. Within a context the first matching row wins.
pub static KEYS: &[Binding] = &[
    b(C::Always, K::Ctrl('c'), A::Interrupt, "Ctrl-C", Some(T::KeyInterrupt)),
    b(C::Help, K::Any, A::CloseHelp, "", Some(T::KeyClose)),
    b(C::Confirm, K::Char('y'), A::Yes, "y", Some(T::KeyYes)),
    b(C::Confirm, K::Char('Y'), A::Yes, "Y", None),
    b(C::Confirm, K::Any, A::No, "", Some(T::KeyNo)),
    b(C::Sale, K::AmountChar, A::TypeAmount, "0-9 .", Some(T::KeyAmount)),
    b(C::Sale, K::Enter, A::Charge, "Enter", Some(T::KeyCharge)),
    help_only(C::Sale, K::Backspace, A::DeleteAmount, "Bksp", T::KeyDelete),
    b(C::Sale, K::Esc, A::ClearAmount, "Esc", Some(T::KeyClear)),
    b(C::Sale, K::Char('h'), A::OpenHistory, "h", Some(T::KeyHistory)),
    b(C::Sale, K::Char('s'), A::OpenSettlement, "s", Some(T::KeySettle)),
    help_only(C::Sale, K::Char('q'), A::Quit, "q", T::KeyQuit),
    b(C::Phone, K::Char('t'), A::PhoneTap, "t", Some(T::KeyTap)),
    b(C::Phone, K::Char('f'), A::PhoneFingerprint, "f", Some(T::KeyFingerprint)),
    b(C::Phone, K::Digit, A::PhonePickCard, "1-8", Some(T::KeyPickCard)),
    b(C::Busy, K::Esc, A::CancelWait, "Esc", Some(T::KeyCancel)),
    b(C::Outcome, K::Enter, A::NextSale, "Enter / 0-9", Some(T::KeyNextSale)),
    b(C::Outcome, K::Esc, A::NextSale, "Esc", None),
    b(C::Outcome, K::Char('n'), A::NextSale, "n", None),
    b(C::Outcome, K::Char(' '), A::NextSale, "Space", None),
    b(C::Outcome, K::Digit, A::NextSaleTyping, "0-9", None),
    b(C::Outcome, K::Char('r'), A::ShowReceipt, "r", Some(T::KeyReceipt)),
    b(C::Outcome, K::Char('h'), A::OpenHistory, "h", Some(T::KeyHistory)),
    b(C::Receipt, K::Char('e'), A::ExportReceipt, "e", Some(T::KeyExport)),
    b(C::Receipt, K::Esc, A::BackFromReceipt, "Esc", Some(T::KeyBack)),
    b(C::Receipt, K::Enter, A::BackFromReceipt, "Enter", None),
    b(C::Receipt, K::Char('n'), A::NewSale, "n", Some(T::KeyNewSale)),
    b(C::Filter, K::Enter, A::FilterDone, "Enter", Some(T::KeyDone)),
    b(C::Filter, K::Esc, A::FilterClear, "Esc", Some(T::KeyClearFilter)),
    help_only(C::Filter, K::Backspace, A::FilterDelete, "Bksp", T::KeyDelete),
    b(C::Filter, K::Text, A::FilterType, "abc", Some(T::KeyTypeFilter)),
    b(C::History, K::Up, A::SelectUp, "↑↓", Some(T::KeySelect)),
    b(C::History, K::Char('k'), A::SelectUp, "k", None),
    b(C::History, K::Down, A::SelectDown, "↓", None),
    b(C::History, K::Char('j'), A::SelectDown, "j", None),
    b(C::History, K::Enter, A::Details, "Enter", Some(T::KeyDetails)),
    b(C::History, K::Char('/'), A::StartFilter, "/", Some(T::KeyFilter)),
    b(C::History, K::Char('r'), A::Refund, "r", Some(T::KeyRefund)),
    b(C::History, K::Char('v'), A::Void, "v", Some(T::KeyVoid)),
    b(C::History, K::Char('s'), A::OpenSettlement, "s", Some(T::KeySettle)),
    b(C::History, K::Esc, A::NewSale, "Esc", Some(T::KeyToSale)),
    b(C::History, K::Char('n'), A::NewSale, "n", None),
    help_only(C::History, K::Char('q'), A::Quit, "q", T::KeyQuit),
    b(C::Detail, K::Char('r'), A::Refund, "r", Some(T::KeyRefund)),
    b(C::Detail, K::Char('v'), A::Void, "v", Some(T::KeyVoid)),
    b(C::Detail, K::Char('e'), A::ExportReceipt, "e", Some(T::KeyExport)),
    b(C::Detail, K::Esc, A::BackToHistory, "Esc", Some(T::KeyBack)),
    b(C::Settlement, K::Enter, A::RunSettlement, "Enter", Some(T::KeyRunSettlement)),
    b(C::Settlement, K::Char('h'), A::OpenHistory, "h", Some(T::KeyHistory)),
    b(C::Settlement, K::Esc, A::NewSale, "Esc", Some(T::KeyToSale)),
    b(C::Settlement, K::Char('n'), A::NewSale, "n", None),
    help_only(C::Settlement, K::Char('q'), A::Quit, "q", T::KeyQuit),
    b(C::Anywhere, K::Char('?'), A::Help, "?", Some(T::KeyHelp)),
    b(C::Anywhere, K::F(1), A::Help, "F1", None),
];

/// The contexts in force now, in the order keys are looked up.
pub fn contexts(app: &App) -> Vec<Ctx> {
    if app.help {
        return vec![Ctx::Always, Ctx::Help];
    }
    if app.confirm.is_some() {
        return vec![Ctx::Always, Ctx::Confirm];
    }
    let screen = match app.screen {
        Screen::Sale => Ctx::Sale,
        Screen::Busy => Ctx::Busy,
        Screen::Outcome => Ctx::Outcome,
        Screen::Receipt => Ctx::Receipt,
        Screen::History if app.filtering => return vec![Ctx::Always, Ctx::Filter],
        Screen::History => Ctx::History,
        Screen::Detail => Ctx::Detail,
        Screen::Settlement => Ctx::Settlement,
    };
    let mut v = vec![Ctx::Always];
    if app.screen == Screen::Busy && app.phone.is_some() {
        v.push(Ctx::Phone);
    }
    v.extend([screen, Ctx::Anywhere]);
    v
}

/// The action of `k` now, if the table has one.
pub fn lookup(app: &App, k: &KeyEvent) -> Option<Action> {
    contexts(app).into_iter().find_map(|c| KEYS.iter().find(|b| b.ctx == c && b.key.matches(k)).map(|b| b.action))
}

/// "Enter charge", or the hint alone for a row without a label.
fn entry(b: &Binding, lang: Lang) -> Option<String> {
    let h = b.hint?.s(lang);
    Some(if b.label.is_empty() { h.to_string() } else { format!("{} {h}", b.label) })
}

/// The hint line of the current screen: the rows with a hint, minus Ctrl-C.
pub fn hint_line(app: &App, lang: Lang) -> String {
    contexts(app)
        .into_iter()
        .filter(|c| *c != Ctx::Always)
        .flat_map(|c| KEYS.iter().filter(move |b| b.ctx == c && b.on_line))
        .filter_map(|b| entry(b, lang))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The help screen: per context, its keys and what they do.
pub fn help_lines(lang: Lang) -> Vec<(String, Vec<String>)> {
    // Ctrl-C (Always) is listed with the keys of every screen.
    let order: [&[Ctx]; 11] = [
        &[Ctx::Sale],
        &[Ctx::Busy],
        &[Ctx::Phone],
        &[Ctx::Outcome],
        &[Ctx::Receipt],
        &[Ctx::History],
        &[Ctx::Filter],
        &[Ctx::Detail],
        &[Ctx::Settlement],
        &[Ctx::Confirm],
        &[Ctx::Anywhere, Ctx::Always],
    ];
    order
        .iter()
        .filter_map(|cs| {
            let keys: Vec<String> = cs.iter().flat_map(|c| KEYS.iter().filter(move |b| b.ctx == *c)).filter_map(|b| entry(b, lang)).collect();
            let title = cs[0].title()?;
            (!keys.is_empty()).then(|| (title.s(lang).to_string(), keys))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_hint_somewhere_and_contexts_do_not_shadow_their_own_rows() {
        use std::collections::HashSet;
        // ↑↓ on the Up row stands for both directions, "Enter / 0-9" for both ways to the next sale.
        let name = |a: Action| format!("{a:?}").replace("SelectDown", "SelectUp").replace("NextSaleTyping", "NextSale");
        let hinted: HashSet<_> = KEYS.iter().filter(|b| b.hint.is_some()).map(|b| (b.ctx, name(b.action))).collect();
        for b in KEYS {
            assert!(hinted.contains(&(b.ctx, name(b.action))), "{:?} in {:?} has no hint on any row", b.action, b.ctx);
        }
        // A catch-all row must be the last of its context, or the rows after it never match.
        for (i, b) in KEYS.iter().enumerate() {
            if matches!(b.key, Key::Any | Key::Text) {
                assert!(KEYS[i + 1..].iter().all(|later| later.ctx != b.ctx || !matches!(later.key, Key::Char(_))), "{b:?}");
            }
        }
    }
}
