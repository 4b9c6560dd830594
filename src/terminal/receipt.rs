//! Receipts and slips: views of a journal transaction for the people who read them.

use crate::clock;
use crate::journal::{Disposition, TxnKind, TxnRecord, TxnState};
use crate::settings::Settings;
use crate::text::{pad, T};
use host_contract::Lang;
use kernels::outcome::Cvm;
use kernels::types::Amount;

/// The line every training (demo) screen and receipt carries (in English; the screens and
/// receipts show `text::T::Training` in their language).
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
            // Cash and cashback print as a sale slip (their type is not on the slip yet).
            (TxnKind::Purchase | TxnKind::Cash | TxnKind::Cashback, _) => Slip::Sale,
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

/// The approved refund of sale `id` among `all`, if any (a declined or reversed refund gives
/// nothing back): the history shows the sale as refunded, its detail names the refund.
pub fn refunded_by(all: &[TxnRecord], id: u64) -> Option<u64> {
    all.iter()
        .find(|r| r.original == Some(id) && r.kind == TxnKind::Refund && r.disposition.is_some_and(Disposition::is_approved) && r.state != TxnState::Reversed)
        .map(|r| r.id)
}

/// When the slip's event happened: the void's own time for a void, else the start.
fn slip_time(r: &TxnRecord, slip: Slip) -> u64 {
    match slip {
        Slip::Void { .. } => r.history.iter().find(|(_, s)| *s == TxnState::ReversalPending).or(r.history.last()).map(|(t, _)| *t).unwrap_or(0),
        _ => r.history.first().map(|(t, _)| *t).unwrap_or(0),
    }
}

/// The receipt text: merchant, terminal, date/time (local, with the zone), masked PAN, card,
/// AID, kernel, ATC, cryptogram, STAN, RRN, authorization and response codes, CVM line, amount,
/// and how it ended in words (never an internal code), in the terminal's language
/// (`settings.lang`). `refunded_by`: the approved refund of this sale, if any.
pub fn receipt(settings: &Settings, r: &TxnRecord, training: bool, refunded_by: Option<u64>) -> String {
    let lang = settings.lang;
    let t = &settings.ep.terminal;
    let exp = u32::from(t.currency_exponent);
    let slip = Slip::of(r);
    let when = clock::format_local_zone(&settings.time_zone, slip_time(r, slip));
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let l = |x: T| pad(x.s(lang), 13);
    let status = match (slip, r.disposition) {
        (Slip::Void { confirmed: true }, _) => T::RVoided.s(lang).to_string(),
        (Slip::Void { confirmed: false }, _) => T::RVoidPending.s(lang).to_string(),
        (_, Some(d)) => format!("{} — {}", d.title(lang), d.cashier_text(lang)),
        (_, None) => T::RInProgress.s(lang).to_string(),
    };
    let approved = r.disposition.is_some_and(Disposition::is_approved) && !matches!(slip, Slip::Void { .. });
    let cvm = match r.cvm {
        _ if !approved => None,
        Some(Cvm::Cdcvm) => Some(T::VerifiedByDevice),
        Some(Cvm::Signature) => Some(T::RSignature),
        // "PIN verified" only when the PIN went to the issuer and the issuer approved.
        Some(Cvm::OnlinePin) if r.pin_sent => Some(T::RPinOnline),
        Some(Cvm::OnlinePin) => Some(T::RPinBypassed),
        Some(Cvm::NoCvm | Cvm::NotApplicable) | None => Some(T::RNoCvm),
    };
    let currency = if t.currency == [0x01, 0x56] { "CNY ¥".to_string() } else { format!("{} {}", hex::encode(t.currency), settings.currency_symbol) };
    let training_line = format!("*** {} ***\n", T::Training.s(lang));
    let mut s = String::new();
    if training {
        s += &training_line;
    }
    s += &format!("{}\n", t.merchant_name_location);
    s += &format!("{}{}\n{}{}\n", l(T::RMerchantId), settings.merchant_id, l(T::RTerminalId), t.terminal_id);
    s += &format!("{}{when}\n", l(T::RDateTime));
    s += &format!("{}  #{}\n", slip.title(lang), r.id);
    s += &format!("{}{} {}\n", l(T::RCard), o(&r.label), o(&r.pan_masked));
    s += &format!("{}{}   {} {}\n", l(T::RAid), o(&r.aid), T::RKernel.s(lang), o(&r.kernel));
    if slip != Slip::Refund {
        s += &format!("{}{}   {} {}\n", l(T::RAtc), r.atc.map(|a| a.to_string()).unwrap_or("-".into()), o(&r.cryptogram_type), o(&r.cryptogram));
    }
    s += &format!("{}{}   {} {}\n", l(T::RStan), r.stan.map(|x| format!("{x:06}")).unwrap_or("-".into()), T::RRrn.s(lang), o(&r.rrn));
    s += &format!("{}{}   {} {}\n", l(T::RAuthCode), o(&r.auth_code), T::RResponse.s(lang), o(&r.response_code));
    if let Some(orig) = r.original {
        s += &format!("{}#{orig}\n", l(T::ROriginal));
    }
    s += &format!("{}{currency}{}\n", l(T::RAmount), Amount(r.amount).display(exp));
    s += &format!("{status}\n");
    if let Some(refund) = refunded_by {
        s += &format!("{}\n", T::RRefundedBy.fmt(lang, &[&refund]));
    }
    if let Some(cvm) = cvm {
        s += &format!("{}\n", cvm.s(lang));
    }
    if !approved {
        s += &format!("{}\n", T::RNoCharge.s(lang));
    }
    if training {
        s += &training_line;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, NotCompleted, TxnEvent};

    fn english() -> Settings {
        let mut s = Settings::load(None).unwrap();
        s.lang = Lang::En;
        s
    }

    fn journal(name: &str) -> (Journal, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("shanfu-receipt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let d = root.join("journal");
        (Journal::open(&d).unwrap(), d)
    }

    #[test]
    fn a_cancelled_sale_says_not_completed_and_no_charge_never_approved() {
        let (j, d) = journal("cancel");
        let mut r = j.begin(TxnKind::Purchase, 1234, "0156").unwrap();
        j.advance(&mut r, TxnEvent::Closed, |r| r.disposition = Some(Disposition::NotCompleted { reason: NotCompleted::Cancelled })).unwrap();
        let text = receipt(&english(), &r, false, None);
        assert!(text.contains("CANCELLED") && text.contains("NO CHARGE"), "{text}");
        for internal in ["APPROVED", "END_APPLICATION", "ONLINE_DECLINED", "PIN verified"] {
            assert!(!text.contains(internal), "{internal} in {text}");
        }
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn pin_verified_only_when_the_pin_block_went_and_the_issuer_approved() {
        let (j, d) = journal("pin");
        let mut r = j.begin(TxnKind::Purchase, 50000, "0156").unwrap();
        for e in [TxnEvent::CardRead, TxnEvent::Sent, TxnEvent::Answered, TxnEvent::Closed] {
            j.advance(&mut r, e, |r| {
                r.cvm = Some(Cvm::OnlinePin);
                r.disposition = Some(Disposition::ApprovedOnline);
            })
            .unwrap();
        }
        r.pin_sent = true;
        assert!(receipt(&english(), &r, false, None).contains("PIN verified by the issuer"));
        r.pin_sent = false;
        let bypassed = receipt(&english(), &r, false, None);
        assert!(!bypassed.contains("PIN verified") && bypassed.contains("bypassed"), "{bypassed}");
        r.pin_sent = true;
        r.disposition = Some(Disposition::DeclinedByIssuer { response_code: host_contract::ResponseCode::IncorrectPin });
        assert!(!receipt(&english(), &r, false, None).contains("PIN verified"));
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn a_void_slip_is_a_void_with_its_own_time_not_the_sales_approval() {
        let (j, d) = journal("void");
        let mut r = j.begin(TxnKind::Purchase, 5678, "0156").unwrap();
        for e in [TxnEvent::CardRead, TxnEvent::Sent, TxnEvent::Answered, TxnEvent::Closed] {
            j.advance(&mut r, e, |r| r.disposition = Some(Disposition::ApprovedOnline)).unwrap();
        }
        // The sale at one time, the void an hour later.
        r.history[0].0 = 1_796_400_000;
        j.advance(&mut r, TxnEvent::Voided, |_| {}).unwrap();
        let void_at = r.history.last().unwrap().0;
        let text = receipt(&english(), &r, false, None);
        assert!(text.contains("VOID") && text.contains("VOID PENDING") && text.contains("NO CHARGE"), "{text}");
        assert!(!text.contains("APPROVED"), "{text}");
        let s = english();
        assert!(text.contains(&clock::format_local_zone(&s.time_zone, void_at)), "{text}");
        assert!(!text.contains(&clock::format_local_zone(&s.time_zone, 1_796_400_000)), "{text}");
        j.advance(&mut r, TxnEvent::ReversalAcked, |_| {}).unwrap();
        assert!(receipt(&s, &r, true, None).contains("VOIDED"), "confirmed void");
        assert!(receipt(&s, &r, true, None).contains(T::Training.s(Lang::En)), "training mark");
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }
}
