//! One closed-loop purse tap, driven to its end: the glue between a card link, the sans-IO
//! [`PurseTxn`], a PSAM and the fare rule. The gate loop calls [`run_purse_tap`] for each card and
//! keeps its torn debits in a [`TornDebits`] between taps.

use super::psam::PurchaseSam;
use kernels::apdu::{CApdu, RApdu};
use kernels::purse::gate::{Action, Event, FareQuery, GateOutcome, GateSetup, PurseTxn, TornDebit, Unexpected};
use kernels::purse::PurseDateTime;

/// Runs a purse transaction to its outcome. `card` sends one C-APDU and returns the answer, or
/// `None` when the card is gone (removed, no answer). The PSAM decides the terminal id and key
/// index the card is asked for (they override `setup`'s). `fare` prices an exit.
pub fn run_purse_tap(
    mut setup: GateSetup,
    now: PurseDateTime,
    torn: &TornDebits,
    mut card: impl FnMut(&CApdu) -> Option<RApdu>,
    psam: &mut dyn PurchaseSam,
    mut fare: impl FnMut(&FareQuery) -> u32,
) -> Result<GateOutcome, Unexpected> {
    setup.terminal_id = psam.terminal_id();
    setup.key_index = psam.key_index();
    let (mut txn, mut action) = PurseTxn::start(setup, now, torn.0.clone());
    loop {
        let event = match action {
            Action::Done(outcome) => return Ok(outcome),
            Action::Transmit(c) => card(&c).map_or(Event::CardLost, Event::Card),
            Action::ComputeMac1(req) => psam.compute_mac1(&req).map_or_else(|e| Event::PsamFailed(e.to_string()), Event::Mac1),
            Action::VerifyMac2(check) => psam.verify_mac2(&check).map_or_else(|e| Event::PsamFailed(e.to_string()), Event::Mac2Verified),
            Action::QuoteFare(q) => Event::Fare(fare(&q)),
        };
        action = txn.step(event)?;
    }
}

/// The torn debits a gate remembers, one per card at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TornDebits(pub Vec<TornDebit>);

impl TornDebits {
    /// Updates the list after a tap: a torn debit is kept (replacing an older one of the same
    /// card); an open or recovered tap of a card settles its torn debit; a reject or a failure
    /// leaves the list as it was (the card must come back).
    pub fn settle(&mut self, outcome: &GateOutcome) {
        match outcome {
            GateOutcome::Torn(t) => {
                self.0.retain(|o| o.session.request.serial != t.session.request.serial);
                self.0.push(t.clone());
            }
            GateOutcome::Open(r) | GateOutcome::Recovered(r) => {
                let serial = r.card.serial();
                self.0.retain(|o| o.session.request.serial != serial);
            }
            GateOutcome::Reject(_) | GateOutcome::Failed(_) => {}
        }
    }
}
