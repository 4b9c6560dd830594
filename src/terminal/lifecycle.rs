//! The life of one transaction as a pure state machine: `TxnState::on(event)` is the only way a
//! state changes, and the journal refuses anything it does not allow. Every (state, event) pair
//! is tested (`every_pair`).
//!
//! ```text
//! Started ──CardRead──▶ CardRead ──Sent──▶ Sent ──Answered──▶ Answered ──Closed──▶ Completed ──Settled──▶ Settled
//!    │                    │  │               │                                        │
//!    └──Closed──▶ Completed◀─┘ Closed        └──NotAnswered──▶ ReversalPending ◀──Voided┘
//!                         │                                     │
//!                         └──OfflineApproved──▶ AdvicePending   └──ReversalAcked──▶ Reversed
//!                                                  └──AdviceAcked──▶ Advised ──Settled──▶ Settled
//! ```

use serde::{Deserialize, Serialize};

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxnState {
    /// Journaled before the card is asked for.
    Started,
    /// The card's data is journaled (the card may be gone).
    CardRead,
    /// The request is journaled as sent before a byte leaves the terminal.
    Sent,
    /// The host's (checked) answer is on disk.
    Answered,
    /// Finished: approved, declined, or not completed.
    Completed,
    /// A request that may have been posted is to be reversed (0400/0401).
    ReversalPending,
    /// The host acknowledged the reversal (0410).
    Reversed,
    /// An offline approval waits to be uploaded (0220).
    AdvicePending,
    /// The host acknowledged the advice (0230).
    Advised,
    /// Counted in a reconciled batch (0510 00).
    Settled,
}

impl TxnState {
    pub const ALL: [TxnState; 10] = [
        TxnState::Started,
        TxnState::CardRead,
        TxnState::Sent,
        TxnState::Answered,
        TxnState::Completed,
        TxnState::ReversalPending,
        TxnState::Reversed,
        TxnState::AdvicePending,
        TxnState::Advised,
        TxnState::Settled,
    ];

    /// The next state after `event`, or why the event cannot happen here.
    pub fn on(self, event: TxnEvent) -> Result<TxnState, IllegalTransition> {
        use TxnEvent as E;
        use TxnState as S;
        let next = match (self, event) {
            (S::Started, E::CardRead) => S::CardRead,
            // No card, cancelled, refused before the tap, or closed by recovery.
            (S::Started, E::Closed) => S::Completed,
            (S::CardRead, E::Sent) => S::Sent,
            // Declined by the card or the terminal: nothing went to the host.
            (S::CardRead, E::Closed) => S::Completed,
            // An offline approval (TC): the advice must reach the issuer.
            (S::CardRead, E::OfflineApproved) => S::AdvicePending,
            (S::Sent, E::Answered) => S::Answered,
            // Timeout, unreadable or rejected answer, or a crash while waiting (docs/host.md).
            (S::Sent, E::NotAnswered) => S::ReversalPending,
            (S::Answered, E::Closed) => S::Completed,
            // A void of an online approval not yet settled.
            (S::Completed, E::Voided) => S::ReversalPending,
            (S::Completed, E::Settled) => S::Settled,
            (S::ReversalPending, E::ReversalAcked) => S::Reversed,
            (S::AdvicePending, E::AdviceAcked) => S::Advised,
            (S::Advised, E::Settled) => S::Settled,
            (state, event) => return Err(IllegalTransition { state, event }),
        };
        Ok(next)
    }

    /// No event leads anywhere from here.
    pub fn is_final(self) -> bool {
        TxnEvent::ALL.iter().all(|e| self.on(*e).is_err())
    }
}

/// What happens to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxnEvent {
    CardRead,
    Sent,
    Answered,
    Closed,
    NotAnswered,
    Voided,
    ReversalAcked,
    OfflineApproved,
    AdviceAcked,
    Settled,
}

impl TxnEvent {
    pub const ALL: [TxnEvent; 10] = [
        TxnEvent::CardRead,
        TxnEvent::Sent,
        TxnEvent::Answered,
        TxnEvent::Closed,
        TxnEvent::NotAnswered,
        TxnEvent::Voided,
        TxnEvent::ReversalAcked,
        TxnEvent::OfflineApproved,
        TxnEvent::AdviceAcked,
        TxnEvent::Settled,
    ];
}

/// An event the state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a transaction in state {state:?} cannot take event {event:?}")]
pub struct IllegalTransition {
    pub state: TxnState,
    pub event: TxnEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TxnEvent as E;
    use TxnState as S;

    /// The allowed transitions, written out independently of `on`.
    const LEGAL: &[(S, E, S)] = &[
        (S::Started, E::CardRead, S::CardRead),
        (S::Started, E::Closed, S::Completed),
        (S::CardRead, E::Sent, S::Sent),
        (S::CardRead, E::Closed, S::Completed),
        (S::CardRead, E::OfflineApproved, S::AdvicePending),
        (S::Sent, E::Answered, S::Answered),
        (S::Sent, E::NotAnswered, S::ReversalPending),
        (S::Answered, E::Closed, S::Completed),
        (S::Completed, E::Voided, S::ReversalPending),
        (S::Completed, E::Settled, S::Settled),
        (S::ReversalPending, E::ReversalAcked, S::Reversed),
        (S::AdvicePending, E::AdviceAcked, S::Advised),
        (S::Advised, E::Settled, S::Settled),
    ];

    #[test]
    fn every_pair() {
        let mut checked = 0;
        for s in TxnState::ALL {
            for e in TxnEvent::ALL {
                let want = LEGAL.iter().find(|(ls, le, _)| *ls == s && *le == e).map(|(_, _, n)| *n);
                match (s.on(e), want) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{s:?} × {e:?}"),
                    (Err(err), None) => assert_eq!((err.state, err.event), (s, e)),
                    (got, want) => panic!("{s:?} × {e:?}: got {got:?}, table says {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 100);
    }

    #[test]
    fn only_reversed_and_settled_are_final() {
        let finals: Vec<S> = TxnState::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![S::Reversed, S::Settled]);
    }

    #[test]
    fn a_sent_request_can_never_be_closed_without_an_answer() {
        // Money rule: what may have been posted is either answered or reversed.
        assert!(S::Sent.on(E::Closed).is_err());
        assert!(S::Sent.on(E::Settled).is_err());
        assert!(S::ReversalPending.on(E::Closed).is_err());
        assert!(S::Reversed.on(E::Settled).is_err());
    }
}
