//! The gate's decision on one tap: open or reject, with the reason — a pure function of what
//! the kernel said and what the gate knows (deny list, anti-passback, operator policy).
//!
//! Order of the checks (transit.md's offline gate checks: card genuine, restrictions, deny
//! list, risk exposure): a tap that could not be read is "tap again" before anything else; a
//! denied card is refused whatever its cryptogram; then anti-passback; then the card's own
//! answer — an offline approval with fDDA verified opens, an online request opens only under
//! the deferred-authorization policy, a failed fDDA refuses and puts the card on the local deny
//! list (UnionPay single-fare model: ODA failure → deny list + debt recovery).

use super::deny::DenyReason;
use crate::text::T;
use host_contract::Lang;
use kernels::outcome::{OdaResult, Status};
use kernels::types::Amount;

/// What the operator does with a card that asks to go online (config/gate.toml `online`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnlinePolicy {
    /// Open now, authorize in the background (UnionPay "deferred online", Visa MTT deferred
    /// authorization); a decline puts the card on the deny list.
    Defer,
    /// Refuse the card at the gate.
    Deny,
}

/// What the tap gave, as the gate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tap {
    pub status: Status,
    pub oda: OdaResult,
    /// The phone asks for its holder (two-tap): a transit card in express mode never does.
    pub see_phone: bool,
}

/// How the fare of an opening is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Settlement {
    /// The card approved offline (TC, fDDA verified): the fare joins the card's aggregate.
    Offline,
    /// The card asked for an authorization: the gate opened, the uploader sends it later.
    Deferred,
}

/// Why the gate stays shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "reason")]
pub enum Reject {
    /// The card could not be read to the end: tap again.
    ReadError,
    Denied {
        why: DenyReason,
    },
    /// The same card opened this gate `seconds_left` seconds too early.
    Passback {
        seconds_left: u64,
    },
    /// fDDA failed: the card goes on the local deny list.
    OdaFailed,
    /// The card declined (AAC).
    Declined,
    /// The card asks to go online and the operator does not defer.
    OnlineRefused,
    /// The phone asks for its holder (See Phone).
    SeePhone,
    /// No application the gate accepts, or another interface asked.
    NotAccepted,
}

impl Reject {
    /// The red display line.
    pub fn text(self, lang: Lang) -> String {
        match self {
            Reject::ReadError => T::GateReadError.s(lang).into(),
            Reject::Denied { .. } => T::GateDenied.s(lang).into(),
            Reject::Passback { seconds_left } => T::GatePassback.fmt(lang, &[&seconds_left]),
            Reject::OdaFailed => T::GateOdaFailed.s(lang).into(),
            Reject::Declined => T::GateDeclined.s(lang).into(),
            Reject::OnlineRefused => T::GateOnlineRefused.s(lang).into(),
            Reject::SeePhone => T::GateSeePhone.s(lang).into(),
            Reject::NotAccepted => T::GateNotAccepted.s(lang).into(),
        }
    }

    /// Whether the card must go on the gate's own deny list.
    pub fn deny_local(self) -> Option<DenyReason> {
        (self == Reject::OdaFailed).then_some(DenyReason::OdaFailed)
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Open { fare: Amount, settlement: Settlement },
    Reject(Reject),
}

/// Open or reject. `denied`: the deny list's answer for the card's keys; `passback`: the
/// anti-passback check (`Err(seconds left)`).
pub fn decide(tap: Tap, denied: Option<DenyReason>, passback: Result<(), u64>, policy: OnlinePolicy, fare: Amount) -> Decision {
    use Decision::Reject as R;
    if tap.status == Status::TryAgain {
        return R(Reject::ReadError);
    }
    if let Some(why) = denied {
        return R(Reject::Denied { why });
    }
    if let Err(seconds_left) = passback {
        return R(Reject::Passback { seconds_left });
    }
    if tap.see_phone {
        return R(Reject::SeePhone);
    }
    if tap.oda == OdaResult::FddaFailed {
        return R(Reject::OdaFailed);
    }
    match tap.status {
        // An offline approval is worth a ride only with the card proven genuine.
        Status::Approved if tap.oda == OdaResult::FddaOk => Decision::Open { fare, settlement: Settlement::Offline },
        Status::Approved => R(Reject::NotAccepted),
        Status::OnlineRequest => match policy {
            OnlinePolicy::Defer => Decision::Open { fare, settlement: Settlement::Deferred },
            OnlinePolicy::Deny => R(Reject::OnlineRefused),
        },
        Status::Declined => R(Reject::Declined),
        Status::TryAgain => R(Reject::ReadError),
        Status::EndApplication | Status::SelectNext | Status::TryAnotherInterface => R(Reject::NotAccepted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_STATUS: [Status; 7] =
        [Status::Approved, Status::Declined, Status::OnlineRequest, Status::EndApplication, Status::SelectNext, Status::TryAgain, Status::TryAnotherInterface];
    const ALL_ODA: [OdaResult; 3] = [OdaResult::NotPerformed, OdaResult::FddaOk, OdaResult::FddaFailed];
    const FARE: Amount = Amount(200);

    fn tap(status: Status, oda: OdaResult) -> Tap {
        Tap { status, oda, see_phone: false }
    }

    /// Every (status, ODA, policy) with a clean card: the table the module doc describes.
    #[test]
    fn every_kernel_answer_under_both_policies() {
        for s in ALL_STATUS {
            for o in ALL_ODA {
                for p in [OnlinePolicy::Defer, OnlinePolicy::Deny] {
                    let d = decide(tap(s, o), None, Ok(()), p, FARE);
                    let want = match (s, o, p) {
                        (Status::TryAgain, _, _) => Decision::Reject(Reject::ReadError),
                        (_, OdaResult::FddaFailed, _) => Decision::Reject(Reject::OdaFailed),
                        (Status::Approved, OdaResult::FddaOk, _) => Decision::Open { fare: FARE, settlement: Settlement::Offline },
                        (Status::Approved, _, _) => Decision::Reject(Reject::NotAccepted),
                        (Status::OnlineRequest, _, OnlinePolicy::Defer) => Decision::Open { fare: FARE, settlement: Settlement::Deferred },
                        (Status::OnlineRequest, _, OnlinePolicy::Deny) => Decision::Reject(Reject::OnlineRefused),
                        (Status::Declined, _, _) => Decision::Reject(Reject::Declined),
                        _ => Decision::Reject(Reject::NotAccepted),
                    };
                    assert_eq!(d, want, "{s:?} {o:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn a_denied_card_is_refused_whatever_it_answers_but_a_misread_is_tap_again_first() {
        for s in ALL_STATUS {
            let d = decide(tap(s, OdaResult::FddaOk), Some(DenyReason::Host), Ok(()), OnlinePolicy::Defer, FARE);
            if s == Status::TryAgain {
                assert_eq!(d, Decision::Reject(Reject::ReadError));
            } else {
                assert_eq!(d, Decision::Reject(Reject::Denied { why: DenyReason::Host }), "{s:?}");
            }
        }
    }

    #[test]
    fn passback_comes_after_the_deny_list_and_before_the_card() {
        let good = tap(Status::Approved, OdaResult::FddaOk);
        assert_eq!(decide(good, None, Err(12), OnlinePolicy::Defer, FARE), Decision::Reject(Reject::Passback { seconds_left: 12 }));
        assert_eq!(
            decide(good, Some(DenyReason::OdaFailed), Err(12), OnlinePolicy::Defer, FARE),
            Decision::Reject(Reject::Denied { why: DenyReason::OdaFailed })
        );
    }

    #[test]
    fn see_phone_is_refused_and_only_failed_oda_goes_on_the_deny_list() {
        let t = Tap { status: Status::EndApplication, oda: OdaResult::NotPerformed, see_phone: true };
        assert_eq!(decide(t, None, Ok(()), OnlinePolicy::Defer, FARE), Decision::Reject(Reject::SeePhone));
        assert_eq!(Reject::OdaFailed.deny_local(), Some(DenyReason::OdaFailed));
        for r in [Reject::ReadError, Reject::Declined, Reject::OnlineRefused, Reject::SeePhone, Reject::NotAccepted, Reject::Passback { seconds_left: 1 }] {
            assert_eq!(r.deny_local(), None);
        }
    }

    #[test]
    fn reject_texts_exist_in_both_languages() {
        let r = Reject::Passback { seconds_left: 7 };
        assert!(r.text(Lang::En).contains("7 s"));
        assert!(r.text(Lang::ZhCn).contains("7 秒"));
        assert_ne!(Reject::ReadError.text(Lang::En), Reject::ReadError.text(Lang::ZhCn));
    }
}
