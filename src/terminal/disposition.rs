//! How a transaction ended, as a type: the `--json` report, the receipt, the journal view, the
//! history row and the cashier's text are all views of a [`Disposition`]. Nothing decides money
//! by comparing strings.

use host_contract::{Lang, ResponseCode};
use kernels::outcome::{Outcome, Status};
use kernels::types::Amount;
use reader_drivers::ReaderError;
use serde::{Deserialize, Serialize};

/// What the tap decided before any host: `None` when the card asks to go online (Book A §6.2
/// Outcome "Online Request"), else how the transaction ended. `refused_before_tap` carries the
/// amount when pre-processing allowed no combination (Book B §3.1.1.4 zero amount, §3.1.1.5
/// at or above the contactless transaction limit), so no card was asked for.
pub fn after_tap(o: &Outcome, reader_error: Option<&ReaderError>, refused_before_tap: Option<Amount>) -> Option<Disposition> {
    use NotCompleted as N;
    let nc = |reason| Some(Disposition::NotCompleted { reason });
    if let (Some(amount), Status::TryAnotherInterface) = (refused_before_tap, o.status) {
        return nc(if amount.0 == 0 { N::ZeroAmountNotAllowed } else { N::OverContactlessLimit });
    }
    match reader_error {
        Some(ReaderError::Cancelled) => return nc(N::Cancelled),
        Some(ReaderError::Unavailable(_)) => return nc(N::ReaderUnavailable),
        Some(ReaderError::NoCard(_)) if o.status != Status::TryAgain => return nc(N::NoCard),
        _ => {}
    }
    match o.status {
        Status::OnlineRequest => None,
        Status::Approved => Some(Disposition::ApprovedOffline),
        Status::Declined => Some(Disposition::DeclinedByCard),
        Status::TryAgain if o.is_see_phone() => nc(N::SeePhone),
        Status::TryAgain => nc(N::TryAgain),
        Status::TryAnotherInterface => nc(N::TryAnotherInterface),
        Status::EndApplication | Status::SelectNext => nc(N::CardError),
    }
}

/// The end of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Disposition {
    /// The issuer approved the online request (DE 39 00, answer checked).
    ApprovedOnline,
    /// The card approved offline (TC); an advice (0220) follows.
    ApprovedOffline,
    /// The card declined (AAC) or the kernel declined on its rules.
    DeclinedByCard,
    /// The issuer declined with this response code.
    DeclinedByIssuer { response_code: ResponseCode },
    /// The terminal refused to approve.
    DeclinedByTerminal { reason: TerminalReason },
    /// Nothing was charged: the transaction did not complete.
    NotCompleted { reason: NotCompleted },
    /// `pay --no-host`: the authorization request (ARQC) is ready and was not sent anywhere.
    AuthorizationReady,
}

/// Why the terminal refused a transaction the card would have gone on with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TerminalReason {
    /// The card asks for online PIN and this terminal cannot take one — no PIN entry, or a host
    /// link without a PIN key (`mac = false`): not approved without it (Book A §6.2 CVM "Online
    /// PIN" — the PIN must travel in the request).
    OnlinePinUnavailable,
    /// The card asks for online PIN and the cardholder did not enter one (cancelled, timed out,
    /// or no PIN pad input): nothing sent, not approved (issue 12).
    PinNotEntered,
    /// The host's answer was not the answer to the request (wrong MTI, STAN, amount, currency,
    /// unknown DE 39, ARC ≠ DE 39): reversed.
    HostAnswerRejected,
}

/// Why a transaction did not complete (nothing charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotCompleted {
    /// The cashier cancelled.
    Cancelled,
    /// No card was presented in time.
    NoCard,
    /// The amount is at or above every contactless transaction limit (Book B §3.1.1.5).
    OverContactlessLimit,
    /// Zero amount, and no combination allows it (Book B §3.1.1.4).
    ZeroAmountNotAllowed,
    /// The card asks for another interface (contact chip), or no contactless application fits.
    TryAnotherInterface,
    /// The card left too early and did not come back (Book B §3.5.1.3 Try Again).
    TryAgain,
    /// The phone asked the holder to confirm, and no second tap came.
    SeePhone,
    /// The card failed (status words, no supported application, malformed data).
    CardError,
    /// The reader or pcscd went away.
    ReaderUnavailable,
    /// No answer from the host: the request was reversed (or its reversal is queued).
    HostUnreachable,
    /// The terminal stopped before the transaction finished (found at restart).
    TerminalStopped,
}

impl Disposition {
    pub fn is_approved(self) -> bool {
        matches!(self, Disposition::ApprovedOnline | Disposition::ApprovedOffline)
    }

    /// The contract name of DESIGN.md §4 (`outcome` in `pay --json`).
    pub fn outcome_name(self) -> &'static str {
        match self {
            Disposition::ApprovedOnline | Disposition::ApprovedOffline => "APPROVED",
            Disposition::DeclinedByCard | Disposition::DeclinedByTerminal { .. } => "DECLINED",
            Disposition::DeclinedByIssuer { .. } => "ONLINE_DECLINED",
            Disposition::AuthorizationReady => "ONLINE_REQUEST",
            Disposition::NotCompleted { reason } => match reason {
                NotCompleted::TryAgain => "TRY_AGAIN",
                NotCompleted::SeePhone => "SEE_PHONE",
                NotCompleted::TryAnotherInterface | NotCompleted::OverContactlessLimit | NotCompleted::ZeroAmountNotAllowed => "TRY_ANOTHER_INTERFACE",
                NotCompleted::HostUnreachable => "DECLINED",
                NotCompleted::Cancelled | NotCompleted::NoCard | NotCompleted::CardError | NotCompleted::ReaderUnavailable => "END_APPLICATION",
                NotCompleted::TerminalStopped => "ERROR",
            },
        }
    }

    /// Exit code of DESIGN.md §4: 0 approved (or authorization data ready), 1 not approved.
    pub fn exit_code(self) -> i32 {
        match self {
            d if d.is_approved() => 0,
            Disposition::AuthorizationReady => 0,
            _ => 1,
        }
    }

    /// The headline people read: APPROVED, DECLINED, CANCELLED, SEE PHONE …
    pub fn title(self, lang: Lang) -> &'static str {
        use Lang::*;
        match (self, lang) {
            (d, En) if d.is_approved() => "APPROVED",
            (d, ZhCn) if d.is_approved() => "交易成功",
            (Disposition::AuthorizationReady, En) => "AUTHORIZATION READY",
            (Disposition::AuthorizationReady, ZhCn) => "授权请求已就绪",
            (Disposition::NotCompleted { reason: NotCompleted::Cancelled }, En) => "CANCELLED",
            (Disposition::NotCompleted { reason: NotCompleted::Cancelled }, ZhCn) => "已取消",
            (Disposition::NotCompleted { reason: NotCompleted::SeePhone }, En) => "SEE PHONE",
            (Disposition::NotCompleted { reason: NotCompleted::SeePhone }, ZhCn) => "请查看手机",
            (Disposition::NotCompleted { reason: NotCompleted::TryAgain }, En) => "TRY AGAIN",
            (Disposition::NotCompleted { reason: NotCompleted::TryAgain }, ZhCn) => "请重试",
            (Disposition::NotCompleted { .. }, En) => "NOT COMPLETED",
            (Disposition::NotCompleted { .. }, ZhCn) => "交易未完成",
            (_, En) => "DECLINED",
            (_, ZhCn) => "交易拒绝",
        }
    }

    /// What the cashier should do or tell the customer, in words (never an internal code).
    pub fn cashier_text(self, lang: Lang) -> &'static str {
        use Lang::*;
        use NotCompleted as N;
        match (self, lang) {
            (Disposition::ApprovedOnline, En) => "Approved by the issuer",
            (Disposition::ApprovedOnline, ZhCn) => "发卡行批准",
            (Disposition::ApprovedOffline, En) => "Approved by the card (offline)",
            (Disposition::ApprovedOffline, ZhCn) => "卡片脱机批准",
            (Disposition::AuthorizationReady, En) => "Authorization request ready (not sent)",
            (Disposition::AuthorizationReady, ZhCn) => "授权请求已生成（未发送）",
            (Disposition::DeclinedByCard, En) => "Declined by the card — ask for another card",
            (Disposition::DeclinedByCard, ZhCn) => "卡片拒绝 — 请换卡",
            (Disposition::DeclinedByIssuer { response_code }, l) => response_code.text(l),
            (Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable }, En) => {
                "The card needs a PIN and this terminal cannot take one — not charged; ask for another card or a lower amount"
            }
            (Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable }, ZhCn) => {
                "此卡需要输入密码，本终端无法受理密码 — 未扣款；请换卡或降低金额"
            }
            (Disposition::DeclinedByTerminal { reason: TerminalReason::PinNotEntered }, En) => "No PIN entered — not charged",
            (Disposition::DeclinedByTerminal { reason: TerminalReason::PinNotEntered }, ZhCn) => "未输入密码 — 未扣款",
            (Disposition::DeclinedByTerminal { reason: TerminalReason::HostAnswerRejected }, En) => {
                "The host's answer did not match the request — not charged (reversed); try again"
            }
            (Disposition::DeclinedByTerminal { reason: TerminalReason::HostAnswerRejected }, ZhCn) => "主机应答与请求不符 — 已冲正，未扣款；请重试",
            (Disposition::NotCompleted { reason }, En) => match reason {
                N::Cancelled => "Cancelled by the cashier — nothing was charged",
                N::NoCard => "No card was presented — nothing was charged",
                N::OverContactlessLimit => "Amount at or above the contactless limit — use the contact chip or another payment",
                N::ZeroAmountNotAllowed => "A zero amount is not allowed on this terminal",
                N::TryAnotherInterface => "The card asks for another interface — insert the card or use another payment",
                N::TryAgain => "The card left too early — present it again and hold it still",
                N::SeePhone => "The phone asked the holder to confirm and no second tap came — nothing was charged",
                N::CardError => "The card could not be read — try another card",
                N::ReaderUnavailable => "The reader is not available — check the reader",
                N::HostUnreachable => "Host unreachable — not charged; try again",
                N::TerminalStopped => "The terminal stopped during this transaction — it was closed at restart",
            },
            (Disposition::NotCompleted { reason }, ZhCn) => match reason {
                N::Cancelled => "收银员已取消 — 未扣款",
                N::NoCard => "未检测到卡片 — 未扣款",
                N::OverContactlessLimit => "金额达到或超过非接限额 — 请插卡或换其他支付方式",
                N::ZeroAmountNotAllowed => "本终端不允许零金额交易",
                N::TryAnotherInterface => "卡片要求使用其他界面 — 请插卡或换其他支付方式",
                N::TryAgain => "卡片离开过早 — 请重新挥卡并保持不动",
                N::SeePhone => "手机要求持卡人确认，未再次挥卡 — 未扣款",
                N::CardError => "无法读取卡片 — 请换卡",
                N::ReaderUnavailable => "读卡器不可用 — 请检查读卡器",
                N::HostUnreachable => "主机无响应 — 未扣款，请重试",
                N::TerminalStopped => "交易中终端停止 — 重启时已关闭",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Disposition> {
        use NotCompleted as N;
        let mut v = vec![
            Disposition::ApprovedOnline,
            Disposition::ApprovedOffline,
            Disposition::DeclinedByCard,
            Disposition::AuthorizationReady,
            Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable },
            Disposition::DeclinedByTerminal { reason: TerminalReason::PinNotEntered },
            Disposition::DeclinedByTerminal { reason: TerminalReason::HostAnswerRejected },
        ];
        v.extend(ResponseCode::all().filter(|r| !r.is_approved()).map(|response_code| Disposition::DeclinedByIssuer { response_code }));
        for reason in [
            N::Cancelled,
            N::NoCard,
            N::OverContactlessLimit,
            N::ZeroAmountNotAllowed,
            N::TryAnotherInterface,
            N::TryAgain,
            N::SeePhone,
            N::CardError,
            N::ReaderUnavailable,
            N::HostUnreachable,
            N::TerminalStopped,
        ] {
            v.push(Disposition::NotCompleted { reason });
        }
        v
    }

    #[test]
    fn only_approvals_are_approved_and_exit_zero() {
        for d in all() {
            let approved = matches!(d, Disposition::ApprovedOnline | Disposition::ApprovedOffline);
            assert_eq!(d.is_approved(), approved, "{d:?}");
            assert_eq!(d.outcome_name() == "APPROVED", approved, "{d:?}");
            assert_eq!(d.exit_code() == 0, approved || d == Disposition::AuthorizationReady, "{d:?}");
        }
    }

    #[test]
    fn every_disposition_has_words_in_both_languages_and_no_internal_codes() {
        for d in all() {
            for lang in [Lang::En, Lang::ZhCn] {
                let t = d.cashier_text(lang);
                assert!(!t.is_empty() && !d.title(lang).is_empty(), "{d:?}");
                for code in ["ONLINE_DECLINED", "END_APPLICATION", "TRY_ANOTHER_INTERFACE", "_"] {
                    assert!(!t.contains(code), "{d:?} {lang:?}: {t}");
                }
            }
        }
    }

    #[test]
    fn tap_outcomes_map_to_dispositions() {
        use std::time::Duration;
        let o = |st| Outcome::new(st, "test");
        assert_eq!(after_tap(&o(Status::OnlineRequest), None, None), None);
        assert_eq!(after_tap(&o(Status::Approved), None, None), Some(Disposition::ApprovedOffline));
        assert_eq!(after_tap(&o(Status::Declined), None, None), Some(Disposition::DeclinedByCard));
        assert_eq!(after_tap(&o(Status::TryAgain), None, None), Some(Disposition::NotCompleted { reason: NotCompleted::TryAgain }));
        assert_eq!(after_tap(&o(Status::TryAnotherInterface), None, None), Some(Disposition::NotCompleted { reason: NotCompleted::TryAnotherInterface }));
        assert_eq!(after_tap(&o(Status::EndApplication), None, None), Some(Disposition::NotCompleted { reason: NotCompleted::CardError }));
        let end = o(Status::EndApplication);
        assert_eq!(after_tap(&end, Some(&ReaderError::Cancelled), None), Some(Disposition::NotCompleted { reason: NotCompleted::Cancelled }));
        assert_eq!(after_tap(&end, Some(&ReaderError::NoCard(Duration::ZERO)), None), Some(Disposition::NotCompleted { reason: NotCompleted::NoCard }));
        assert_eq!(
            after_tap(&end, Some(&ReaderError::Unavailable("x".into())), None),
            Some(Disposition::NotCompleted { reason: NotCompleted::ReaderUnavailable })
        );
        let refused = o(Status::TryAnotherInterface);
        assert_eq!(after_tap(&refused, None, Some(Amount(0))), Some(Disposition::NotCompleted { reason: NotCompleted::ZeroAmountNotAllowed }));
        assert_eq!(after_tap(&refused, None, Some(Amount(1_000_000))), Some(Disposition::NotCompleted { reason: NotCompleted::OverContactlessLimit }));
        // A card that failed mid-exchange does not turn an online request into anything else.
        assert_eq!(after_tap(&o(Status::OnlineRequest), Some(&ReaderError::CardRemoved), None), None);
    }

    #[test]
    fn journal_form_round_trips() {
        for d in all() {
            let s = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<Disposition>(&s).unwrap(), d, "{s}");
        }
    }
}
