//! Aggregation (UnionPay's aggregated model, Visa MTT's journey aggregation): the fares of one
//! card are added up and sent as one authorization when the total would pass the **cumulative
//! spend limit** or the first tap is older than the **maximum travel time**; the closed
//! aggregate goes to the background uploader (0200, or 0220 when the card approved offline).
//!
//! A fare that would take the open total past the limit closes the aggregate *before* it and
//! opens the next one with it, so no authorization is ever above the limit (a single fare above
//! the limit makes an aggregate of its own).

use super::deny::CardKey;
use super::UnixSeconds;
use kernels::types::Amount;
use std::collections::HashMap;

/// The operator's aggregation limits (config/gate.toml `[aggregation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub cumulative_spend_limit: Amount,
    pub max_travel_time_s: u64,
}

/// One card's fares, from its first tap. `first` is what the authorization needs of the first
/// tap (its data record: field 55, masked PAN, …), kept as the gate loop gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate<T> {
    pub card: CardKey,
    pub first: T,
    pub opened_at: UnixSeconds,
    pub fares: Vec<(UnixSeconds, Amount)>,
    pub total: Amount,
}

/// Why an aggregate was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    SpendLimit,
    TravelTime,
    /// The gate shuts down or is told to flush.
    Flush,
    /// Not an aggregate: a tap whose card asked for an authorization, sent on its own.
    Deferred,
}

/// The open aggregates of a gate.
#[derive(Debug, Clone)]
pub struct Aggregator<T> {
    limits: Limits,
    open: HashMap<CardKey, Aggregate<T>>,
}

impl<T> Aggregator<T> {
    pub fn new(limits: Limits) -> Aggregator<T> {
        Aggregator { limits, open: HashMap::new() }
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn open_total(&self, card: &CardKey) -> Option<Amount> {
        self.open.get(card).map(|a| a.total)
    }

    /// Adds a fare of `card`; returns the aggregate it closed, if any (limit or travel time).
    pub fn add(&mut self, card: CardKey, fare: Amount, now: UnixSeconds, first: impl FnOnce() -> T) -> Option<(Aggregate<T>, CloseReason)> {
        let mut closed = None;
        if let Some(a) = self.open.get(&card) {
            let expired = now.saturating_sub(a.opened_at) >= self.limits.max_travel_time_s;
            let over = a.total.0.saturating_add(fare.0) > self.limits.cumulative_spend_limit.0;
            if expired || over {
                closed = self.open.remove(&card).map(|a| (a, if expired { CloseReason::TravelTime } else { CloseReason::SpendLimit }));
            }
        }
        let a = self.open.entry(card).or_insert_with(|| Aggregate { card, first: first(), opened_at: now, fares: Vec::new(), total: Amount(0) });
        a.fares.push((now, fare));
        a.total = Amount(a.total.0.saturating_add(fare.0));
        closed
    }

    /// The aggregates whose maximum travel time has run out by `now` (the uploader asks this
    /// on its timer, so a card seen once is authorized without waiting for its next tap).
    pub fn due(&mut self, now: UnixSeconds) -> Vec<(Aggregate<T>, CloseReason)> {
        let max = self.limits.max_travel_time_s;
        let keys: Vec<CardKey> = self.open.values().filter(|a| now.saturating_sub(a.opened_at) >= max).map(|a| a.card).collect();
        let mut out: Vec<_> = keys.iter().filter_map(|k| self.open.remove(k)).map(|a| (a, CloseReason::TravelTime)).collect();
        out.sort_by_key(|(a, _)| a.opened_at);
        out
    }

    /// Closes every open aggregate.
    pub fn flush(&mut self) -> Vec<(Aggregate<T>, CloseReason)> {
        let mut out: Vec<_> = self.open.drain().map(|(_, a)| (a, CloseReason::Flush)).collect();
        out.sort_by_key(|(a, _)| a.opened_at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { cumulative_spend_limit: Amount(1000), max_travel_time_s: 3600 };

    fn card(n: u8) -> CardKey {
        CardKey([n; 32])
    }

    #[test]
    fn fares_add_up_to_the_limit_and_the_next_one_opens_a_new_aggregate() {
        let mut g: Aggregator<&str> = Aggregator::new(LIMITS);
        for i in 0..5 {
            assert!(g.add(card(1), Amount(200), 100 + i, || "tap1").is_none());
        }
        assert_eq!(g.open_total(&card(1)), Some(Amount(1000)), "exactly at the limit stays open");
        let (closed, why) = g.add(card(1), Amount(200), 200, || "tap6").expect("over the limit closes");
        assert_eq!((closed.total, closed.fares.len(), closed.first, why), (Amount(1000), 5, "tap1", CloseReason::SpendLimit));
        assert_eq!(g.open_total(&card(1)), Some(Amount(200)));
    }

    #[test]
    fn the_travel_time_closes_on_the_next_tap_or_when_due() {
        let mut g: Aggregator<u8> = Aggregator::new(LIMITS);
        g.add(card(1), Amount(300), 0, || 1);
        g.add(card(2), Amount(300), 100, || 2);
        let (a, why) = g.add(card(1), Amount(300), 3600, || 3).expect("travel time over");
        assert_eq!((a.total, why), (Amount(300), CloseReason::TravelTime));
        assert!(g.due(3699).is_empty());
        let due = g.due(3700);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0.card, card(2));
        assert_eq!(g.open_count(), 1, "card 1's new aggregate stays open");
        let rest = g.flush();
        assert_eq!((rest.len(), rest[0].1, g.open_count()), (1, CloseReason::Flush, 0));
    }

    #[test]
    fn a_single_fare_above_the_limit_is_an_aggregate_of_its_own() {
        let mut g: Aggregator<()> = Aggregator::new(LIMITS);
        assert!(g.add(card(1), Amount(1500), 0, || ()).is_none());
        let (a, _) = g.add(card(1), Amount(100), 1, || ()).expect("closed");
        assert_eq!(a.total, Amount(1500));
        assert_eq!(g.open_total(&card(1)), Some(Amount(100)));
    }

    #[test]
    fn no_fare_is_lost_or_counted_twice() {
        let mut g: Aggregator<()> = Aggregator::new(LIMITS);
        let fares = [300u64, 450, 120, 990, 10, 700, 700, 5, 1200, 60];
        let mut closed_sum = 0;
        for (i, f) in fares.iter().enumerate() {
            if let Some((a, _)) = g.add(card(1), Amount(*f), i as u64 * 60, || ()) {
                assert!(a.total.0 <= 1000 || a.fares.len() == 1);
                closed_sum += a.total.0;
            }
        }
        closed_sum += g.flush().iter().map(|(a, _)| a.total.0).sum::<u64>();
        assert_eq!(closed_sum, fares.iter().sum::<u64>());
    }
}
