//! Fares: a flat fare per entry, or tap-in / tap-out zone fares (the fare of a journey depends
//! on the number of zones between the entry and the exit station).
//!
//! An exit with no known entry (the passenger did not tap in, or tapped in with another card)
//! pays the maximum fare — the usual rule of tap-in / tap-out systems (TfL "maximum fare",
//! the Chinese metros' "补票" at the highest fare); an operator setting, not an EMV rule.

use kernels::types::Amount;
use std::collections::BTreeMap;

/// A station code as the operator numbers them (e.g. `"0101"`, line 01 station 01).
pub type StationId = String;

/// How the gate prices a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FareTable {
    /// The same fare for every journey, charged at entry.
    Flat(Amount),
    /// Charged at exit by the zones crossed: `by_zones[n]` is the fare of a journey that crosses
    /// `n` zone boundaries (0 = within one zone); more boundaries than listed pay the last one.
    Zones { zone_of: BTreeMap<StationId, u8>, by_zones: Vec<Amount> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FareError {
    #[error("station {0:?} is in no fare zone")]
    UnknownStation(StationId),
    #[error("the zone fare table is empty")]
    EmptyTable,
}

impl FareTable {
    /// The highest fare of the table: what an exit without a known entry pays.
    pub fn max_fare(&self) -> Amount {
        match self {
            FareTable::Flat(a) => *a,
            FareTable::Zones { by_zones, .. } => by_zones.iter().copied().max().unwrap_or_default(),
        }
    }

    /// Whether fares are charged at the exit gate (tap-in / tap-out) rather than at entry.
    pub fn charged_at_exit(&self) -> bool {
        matches!(self, FareTable::Zones { .. })
    }

    /// The fare of a journey from `entry` (None: no known tap-in) to `exit`.
    pub fn journey(&self, entry: Option<&str>, exit: &str) -> Result<Amount, FareError> {
        let (zone_of, by_zones) = match self {
            FareTable::Flat(a) => return Ok(*a),
            FareTable::Zones { zone_of, by_zones } => (zone_of, by_zones),
        };
        let last = *by_zones.last().ok_or(FareError::EmptyTable)?;
        let zone = |s: &str| zone_of.get(s).copied().ok_or_else(|| FareError::UnknownStation(s.to_string()));
        let to = zone(exit)?;
        let Some(entry) = entry else {
            return Ok(self.max_fare());
        };
        let from = zone(entry)?;
        let crossed = usize::from(from.abs_diff(to));
        Ok(by_zones.get(crossed).copied().unwrap_or(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> FareTable {
        let zone_of = [("0101", 1u8), ("0102", 1), ("0201", 2), ("0301", 3), ("0401", 4)].into_iter().map(|(s, z)| (s.to_string(), z)).collect();
        FareTable::Zones { zone_of, by_zones: vec![Amount(300), Amount(400), Amount(500)] }
    }

    #[test]
    fn flat_fare_is_the_same_whatever_the_stations() {
        let f = FareTable::Flat(Amount(200));
        assert_eq!(f.journey(None, "9999"), Ok(Amount(200)));
        assert_eq!(f.journey(Some("0101"), "0401"), Ok(Amount(200)));
        assert!(!f.charged_at_exit());
    }

    #[test]
    fn zone_fares_count_the_boundaries_crossed_either_way() {
        let f = zones();
        assert_eq!(f.journey(Some("0101"), "0102"), Ok(Amount(300)));
        assert_eq!(f.journey(Some("0101"), "0201"), Ok(Amount(400)));
        assert_eq!(f.journey(Some("0301"), "0101"), Ok(Amount(500)));
        // Three boundaries: beyond the table, the last fare.
        assert_eq!(f.journey(Some("0101"), "0401"), Ok(Amount(500)));
        assert!(f.charged_at_exit());
    }

    #[test]
    fn an_exit_without_entry_pays_the_maximum_fare() {
        assert_eq!(zones().journey(None, "0101"), Ok(Amount(500)));
    }

    #[test]
    fn unknown_stations_and_empty_tables_are_errors() {
        assert_eq!(zones().journey(Some("7777"), "0101"), Err(FareError::UnknownStation("7777".into())));
        assert_eq!(zones().journey(Some("0101"), "7777"), Err(FareError::UnknownStation("7777".into())));
        let empty = FareTable::Zones { zone_of: BTreeMap::new(), by_zones: vec![] };
        assert_eq!(empty.journey(None, "0101"), Err(FareError::EmptyTable));
    }
}
