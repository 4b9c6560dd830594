//! Receipts and slips: views of a journal transaction for the people who read them.

use crate::clock;
use crate::journal::{Disposition, TxnKind, TxnRecord, TxnState};
use crate::settings::Settings;
use host_contract::Lang;
use kernels::types::Amount;

/// The line every training (demo) screen and receipt carries.
pub const TRAINING: &str = "TRAINING — NOT A PAYMENT";

/// What a journal transaction is to the people who read about it: a sale, a refund, or the
/// void of a sale (an approved sale whose reversal the cashier asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slip {
    Sale,
    Refund,
    /// The void of a sale; `confirmed` once the host acknowledged the reversal (0410).
    Void {
        confirmed: bool,
    },
}

impl Slip {
    pub fn of(r: &TxnRecord) -> Slip {
        match (r.kind, r.state) {
            (TxnKind::Refund, _) => Slip::Refund,
            // Only an approved sale is voided; a reversal after no answer is not a void.
            (TxnKind::Purchase, TxnState::ReversalPending | TxnState::Reversed) if r.disposition == Some(Disposition::ApprovedOnline) => {
                Slip::Void { confirmed: r.state == TxnState::Reversed }
            }
            (TxnKind::Purchase, _) => Slip::Sale,
        }
    }

    pub fn title(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Slip::Sale, Lang::En) => "SALE",
            (Slip::Sale, Lang::ZhCn) => "消费",
            (Slip::Refund, Lang::En) => "REFUND",
            (Slip::Refund, Lang::ZhCn) => "退货",
            (Slip::Void { .. }, Lang::En) => "VOID",
            (Slip::Void { .. }, Lang::ZhCn) => "撤销",
        }
    }
}

/// When the slip's event happened: the void's own time for a void, else the start.
fn slip_time(r: &TxnRecord, slip: Slip) -> u64 {
    match slip {
        Slip::Void { .. } => r.history.iter().find(|(_, s)| *s == TxnState::ReversalPending).or(r.history.last()).map(|(t, _)| *t).unwrap_or(0),
        _ => r.history.first().map(|(t, _)| *t).unwrap_or(0),
    }
}

/// The receipt text: merchant, terminal, date/time, masked PAN, card, AID, kernel, ATC,
/// cryptogram, STAN, RRN, authorization and response codes, CVM line, amount, and how it ended
/// in words (never an internal code).
pub fn receipt(settings: &Settings, r: &TxnRecord, training: bool) -> String {
    let lang = Lang::En;
    let t = &settings.ep.terminal;
    let exp = u32::from(t.currency_exponent);
    let slip = Slip::of(r);
    let when = clock::format_utc(slip_time(r, slip));
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let status = match (slip, r.disposition) {
        (Slip::Void { confirmed: true }, _) => "VOIDED — the sale is cancelled, nothing is charged".to_string(),
        (Slip::Void { confirmed: false }, _) => "VOID PENDING — the reversal is queued and retried".to_string(),
        (_, Some(d)) => format!("{} — {}", d.title(lang), d.cashier_text(lang)),
        (_, None) => "IN PROGRESS".to_string(),
    };
    let approved = r.disposition.is_some_and(Disposition::is_approved) && !matches!(slip, Slip::Void { .. });
    let cvm = match r.cvm.as_deref() {
        _ if !approved => None,
        Some("CDCVM") => Some("Verified by device".to_string()),
        Some("SIGNATURE") => Some("Signature: ______________________".to_string()),
        Some("ONLINE_PIN") => Some("PIN verified online".to_string()),
        _ => Some("No cardholder verification required".to_string()),
    };
    let currency = if t.currency == [0x01, 0x56] { "CNY ¥".to_string() } else { format!("{} {}", hex::encode(t.currency), settings.currency_symbol) };
    let mut s = String::new();
    if training {
        s += &format!("*** {TRAINING} ***\n");
    }
    s += &format!("{}\n", t.merchant_name_location);
    s += &format!("Merchant ID  {}\nTerminal ID  {}\n", settings.merchant_id, t.terminal_id);
    s += &format!("Date/time    {when} UTC\n");
    s += &format!("{}  #{}\n", slip.title(lang), r.id);
    s += &format!("Card         {} {}\n", o(&r.label), o(&r.pan_masked));
    s += &format!("AID          {}   Kernel {}\n", o(&r.aid), o(&r.kernel));
    if slip != Slip::Refund {
        s += &format!("ATC          {}   {} {}\n", r.atc.map(|a| a.to_string()).unwrap_or("-".into()), o(&r.cryptogram_type), o(&r.cryptogram));
    }
    s += &format!("STAN         {}   RRN {}\n", r.stan.map(|x| format!("{x:06}")).unwrap_or("-".into()), o(&r.rrn));
    s += &format!("Auth code    {}   Response {}\n", o(&r.auth_code), o(&r.response_code));
    if let Some(orig) = r.original {
        s += &format!("Original     #{orig}\n");
    }
    s += &format!("AMOUNT       {currency}{}\n", Amount(r.amount).display(exp));
    s += &format!("{status}\n");
    if let Some(cvm) = cvm {
        s += &format!("{cvm}\n");
    }
    if !approved {
        s += "NO CHARGE\n";
    }
    if training {
        s += &format!("*** {TRAINING} ***\n");
    }
    s
}
