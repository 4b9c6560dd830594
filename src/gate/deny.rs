//! The deny list: cards the gate must not open for, keyed by a keyed hash of the PAN (token or
//! card number) and of the PAR, never the number itself (PCI DSS: a gate holds no PAN list).
//!
//! - The acquirer publishes the list with a version: a **full** list replaces the gate's copy, a
//!   **delta** (`from` → `to`, adds and removes) applies only on top of version `from` — a gap
//!   or a stale list is refused and the gate asks for a full one (a replayed old list must not
//!   take a card off).
//! - The gate adds **local** entries itself: a failed ODA after the gate opened, a failed
//!   deferred authorization (UnionPay "deferred online ODA": a decline puts the card on the deny
//!   list). A later approval of that card takes its local entry off — debt recovery (the
//!   Cybersource urban-mobility rule: off the list within an hour of an approval).

use std::collections::{HashMap, HashSet};
use std::fmt;

/// HMAC-SHA256 of a card identifier under the operator's deny-list key: 32 bytes that name a
/// card without revealing it (a plain hash of a PAN is reversed by trying the ~10^9 numbers of a
/// BIN; the key stops that).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardKey(pub [u8; 32]);

impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardKey({}…)", hex::encode(&self.0[..6]))
    }
}

impl CardKey {
    /// The key of a PAN (token PAN for a wallet), digits only (5A without the F padding): the
    /// contract's one definition, the acquirer computes the same.
    pub fn of_pan(key: &[u8], pan: &str) -> CardKey {
        CardKey(host_contract::transit::card_key(key, host_contract::transit::Identifier::Pan, pan))
    }

    /// The key of a Payment Account Reference (9F24), which names the account behind every token
    /// of it: a lost phone's new token is still the same account.
    pub fn of_par(key: &[u8], par: &str) -> CardKey {
        CardKey(host_contract::transit::card_key(key, host_contract::transit::Identifier::Par, par))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<CardKey, DenyError> {
        let v = hex::decode(s).map_err(|_| DenyError::BadKey(s.chars().take(80).collect()))?;
        let a: [u8; 32] = v.try_into().map_err(|_| DenyError::BadKey(s.chars().take(80).collect()))?;
        Ok(CardKey(a))
    }
}

/// Why a card is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DenyReason {
    /// On the acquirer's list (debt, lost or stolen, issuer request).
    Host,
    /// fDDA failed after the gate had opened.
    OdaFailed,
    /// The deferred or aggregated authorization was declined.
    AuthorizationDeclined,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyError {
    #[error("deny-list delta {from}→{to} does not apply to version {have}: a full list is needed")]
    Gap { have: u64, from: u64, to: u64 },
    #[error("deny list version {got} is not newer than the gate's {have}: refused")]
    Stale { have: u64, got: u64 },
    #[error("deny-list entry {0:?} is not 64 hex digits")]
    BadKey(String),
}

/// A full list as the acquirer publishes it (JSON `{"version": N, "keys": ["64 hex", …]}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FullList {
    pub version: u64,
    pub keys: Vec<String>,
}

impl FullList {
    /// The keys, checked.
    pub fn card_keys(&self) -> Result<Vec<CardKey>, DenyError> {
        self.keys.iter().map(|k| CardKey::from_hex(k)).collect()
    }
}

/// A delta from the acquirer: what changed from version `from` to version `to`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    pub from: u64,
    pub to: u64,
    pub add: Vec<CardKey>,
    pub remove: Vec<CardKey>,
}

/// The gate's deny list: the acquirer's entries (versioned) and the gate's own.
#[derive(Debug, Clone, Default)]
pub struct DenyList {
    version: u64,
    host: HashSet<CardKey>,
    local: HashMap<CardKey, DenyReason>,
}

impl DenyList {
    pub fn new() -> DenyList {
        DenyList::default()
    }

    /// The version of the acquirer's list the gate holds (0: none yet).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Entries from the acquirer, entries of the gate's own.
    pub fn len(&self) -> (usize, usize) {
        (self.host.len(), self.local.len())
    }

    pub fn is_empty(&self) -> bool {
        self.host.is_empty() && self.local.is_empty()
    }

    /// Replaces the acquirer's part with a full list of `version`, newer than the one held.
    pub fn apply_full(&mut self, version: u64, keys: impl IntoIterator<Item = CardKey>) -> Result<(), DenyError> {
        if version <= self.version {
            return Err(DenyError::Stale { have: self.version, got: version });
        }
        self.host = keys.into_iter().collect();
        self.version = version;
        Ok(())
    }

    /// Replaces the acquirer's part whatever the version held: the uploader's sync checked the
    /// list already (a gate whose list is ahead of the acquirer's — the acquirer was reset —
    /// takes the acquirer's full list as it is).
    pub fn replace_host(&mut self, version: u64, keys: impl IntoIterator<Item = CardKey>) {
        self.host = keys.into_iter().collect();
        self.version = version;
    }

    /// Applies a delta made on top of the version held.
    pub fn apply_delta(&mut self, d: &Delta) -> Result<(), DenyError> {
        if d.to <= d.from {
            return Err(DenyError::Stale { have: self.version, got: d.to });
        }
        if d.from != self.version {
            return Err(DenyError::Gap { have: self.version, from: d.from, to: d.to });
        }
        for k in &d.remove {
            self.host.remove(k);
        }
        self.host.extend(d.add.iter().copied());
        self.version = d.to;
        Ok(())
    }

    /// The gate puts a card on its own list (failed ODA, declined deferred authorization).
    pub fn deny_local(&mut self, key: CardKey, why: DenyReason) {
        self.local.insert(key, why);
    }

    /// An approval of the card's debt: its local entry comes off. The acquirer's entries change
    /// only with the acquirer's list.
    pub fn approved(&mut self, key: &CardKey) -> bool {
        self.local.remove(key).is_some()
    }

    /// The acquirer's entries (what a sync keeps in the gate journal).
    pub fn host_keys(&self) -> impl Iterator<Item = &CardKey> {
        self.host.iter()
    }

    /// Whether any of a card's keys (PAN, PAR) is denied, and why; the acquirer's entry first.
    pub fn check(&self, keys: &[CardKey]) -> Option<DenyReason> {
        if keys.iter().any(|k| self.host.contains(k)) {
            return Some(DenyReason::Host);
        }
        keys.iter().find_map(|k| self.local.get(k).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"test deny-list key";

    fn pan(n: u32) -> CardKey {
        CardKey::of_pan(K, &format!("62123456{n:08}"))
    }

    #[test]
    fn keys_depend_on_the_operator_key_and_the_kind_of_identifier() {
        assert_eq!(CardKey::of_pan(K, "6212345678901234"), CardKey::of_pan(K, "6212345678901234"));
        assert_ne!(CardKey::of_pan(K, "6212345678901234"), CardKey::of_pan(b"other", "6212345678901234"));
        assert_ne!(CardKey::of_pan(K, "6212345678901234"), CardKey::of_par(K, "6212345678901234"));
        let k = pan(1);
        assert_eq!(CardKey::from_hex(&k.to_hex()), Ok(k));
        assert!(matches!(CardKey::from_hex("zz"), Err(DenyError::BadKey(_))));
        assert!(matches!(CardKey::from_hex("00"), Err(DenyError::BadKey(_))));
        assert!(!format!("{k:?}").contains(&k.to_hex()), "Debug shows a prefix only");
    }

    #[test]
    fn full_lists_replace_and_stale_ones_are_refused() {
        let mut d = DenyList::new();
        d.apply_full(3, [pan(1), pan(2)]).unwrap();
        assert_eq!(d.check(&[pan(1)]), Some(DenyReason::Host));
        d.apply_full(4, [pan(2)]).unwrap();
        assert_eq!(d.check(&[pan(1)]), None);
        assert_eq!(d.apply_full(4, [pan(1)]), Err(DenyError::Stale { have: 4, got: 4 }));
        assert_eq!(d.apply_full(2, [pan(1)]), Err(DenyError::Stale { have: 4, got: 2 }));
        assert_eq!(d.check(&[pan(1)]), None, "a refused list changes nothing");
        assert_eq!(d.version(), 4);
    }

    #[test]
    fn deltas_apply_only_on_their_base_version() {
        let mut d = DenyList::new();
        d.apply_full(1, [pan(1)]).unwrap();
        let delta = Delta { from: 1, to: 2, add: vec![pan(2)], remove: vec![pan(1)] };
        d.apply_delta(&delta).unwrap();
        assert_eq!((d.check(&[pan(1)]), d.check(&[pan(2)])), (None, Some(DenyReason::Host)));
        // Applied twice: its base is gone.
        assert_eq!(d.apply_delta(&delta), Err(DenyError::Gap { have: 2, from: 1, to: 2 }));
        let gap = Delta { from: 5, to: 6, add: vec![pan(3)], remove: vec![] };
        assert_eq!(d.apply_delta(&gap), Err(DenyError::Gap { have: 2, from: 5, to: 6 }));
        let backwards = Delta { from: 2, to: 2, ..Delta::default() };
        assert!(matches!(d.apply_delta(&backwards), Err(DenyError::Stale { .. })));
        assert_eq!((d.version(), d.check(&[pan(3)])), (2, None));
    }

    #[test]
    fn local_entries_come_off_with_an_approval_and_survive_host_syncs() {
        let mut d = DenyList::new();
        d.deny_local(pan(7), DenyReason::OdaFailed);
        assert_eq!(d.check(&[pan(7)]), Some(DenyReason::OdaFailed));
        d.apply_full(1, []).unwrap();
        assert_eq!(d.check(&[pan(7)]), Some(DenyReason::OdaFailed), "the host does not know it yet");
        assert!(d.approved(&pan(7)));
        assert!(!d.approved(&pan(7)));
        assert_eq!(d.check(&[pan(7)]), None);
    }

    #[test]
    fn a_card_is_denied_by_its_par_whatever_its_token() {
        let mut d = DenyList::new();
        let par = CardKey::of_par(K, "V0010013018294829374816237");
        d.apply_full(1, [par]).unwrap();
        assert_eq!(d.check(&[pan(9), par]), Some(DenyReason::Host));
        assert_eq!(d.check(&[pan(9)]), None);
        // The acquirer's reason wins over the gate's own.
        d.deny_local(pan(9), DenyReason::AuthorizationDeclined);
        assert_eq!(d.check(&[pan(9), par]), Some(DenyReason::Host));
    }
}
