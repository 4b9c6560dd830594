//! The acquirer's side of transit gates (docs/gate.md "Back office"): the registered transit
//! merchants and gates, the versioned deny list (admin `deny add|remove PAN`, a declined
//! deferred authorization adds the card, a later approval takes it off) and its publication
//! in chunks over 0800 / 0810 ([`host_contract::deny_sync`]).
//!
//! Trees: `deny_cards` (blind index of the PAN, [`crate::at_rest`] → [`DenyEntry`]), `deny_log` (version, big-endian u64 → one
//! [`LogEntry`]: a key added or removed); `meta` `deny_version` is the newest version.

use host_contract::deny_sync::{Chunk, Kind, Request, PER_CHUNK};
use host_contract::transit::{self, Identifier};
use host_contract::ResponseCode;
use iso8583::{field, Message};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::masked;
use crate::store::encode;
use crate::{Acquirer, AcquirerError};

/// Why a card is on the acquirer's deny list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenySource {
    /// `deny add PAN` (lost, stolen, fraud, issuer request): only `deny remove` takes it off.
    Admin,
    /// A transit authorization (deferred 0200, aggregated 0220) was declined: the next approval
    /// of the card takes it off (debt recovered).
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct DenyEntry {
    source: DenySource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LogEntry {
    add: bool,
    key: String,
}

/// A gate this far behind gets the full list rather than a delta.
const MAX_DELTA: u64 = 10_000;

/// Response codes that say something about the card (it goes on the list); the others (format,
/// duplicate, issuer down, system) say nothing about it.
fn card_declined(rc: ResponseCode) -> bool {
    use ResponseCode as R;
    matches!(rc, R::DoNotHonour | R::InvalidCard | R::InsufficientFunds | R::ExpiredCard | R::NotPermitted | R::RestrictedCard | R::CryptogramFailed)
}

impl Acquirer {
    /// The newest version of the deny list (0: never changed).
    pub fn deny_version(&self) -> Result<u64, AcquirerError> {
        Ok(self.meta.get("deny_version")?.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok()).map_or(0, u64::from_be_bytes))
    }

    fn deny_key(&self) -> Result<Vec<u8>, AcquirerError> {
        self.transit.as_ref().map(|t| t.key()).ok_or_else(|| AcquirerError::Admin("no [transit] in the seed: no deny list".into()))
    }

    /// Whether a PAN is on the deny list, and why.
    pub fn denied(&self, pan: &str) -> Result<Option<DenySource>, AcquirerError> {
        Ok(self.deny_cards.get(self.at_rest.index(pan))?.and_then(|v| serde_json::from_slice::<DenyEntry>(&v).ok()).map(|e| e.source))
    }

    /// Puts a card on the list (a new version); `false` when it already was (no new version;
    /// an admin entry replaces a declined one's reason).
    pub fn deny_add(&self, pan: &str, source: DenySource) -> Result<bool, AcquirerError> {
        let key = self.deny_key()?;
        let added = {
            let _g = self.guard();
            match self.denied(pan)? {
                Some(old) => {
                    if old != source && source == DenySource::Admin {
                        self.deny_cards.insert(&self.at_rest.index(pan)[..], encode(&DenyEntry { source })?)?;
                    }
                    false
                }
                None => {
                    self.deny_change(pan, &key, Some(source))?;
                    true
                }
            }
        };
        self.flush()?;
        if added {
            tracing::info!(pan = %masked(pan), ?source, "deny list: card added");
        }
        Ok(added)
    }

    /// Takes a card off (a new version); with `only`, only an entry of that source. `false`
    /// when nothing was taken off.
    pub fn deny_remove(&self, pan: &str, only: Option<DenySource>) -> Result<bool, AcquirerError> {
        let key = self.deny_key()?;
        let removed = {
            let _g = self.guard();
            match self.denied(pan)? {
                Some(s) if only.is_none_or(|o| o == s) => {
                    self.deny_change(pan, &key, None)?;
                    true
                }
                _ => false,
            }
        };
        self.flush()?;
        if removed {
            tracing::info!(pan = %masked(pan), "deny list: card taken off");
        }
        Ok(removed)
    }

    /// One change: the log entry, the card's entry and the version, atomically (caller holds the lock).
    fn deny_change(&self, pan: &str, key: &[u8], add: Option<DenySource>) -> Result<(), AcquirerError> {
        use sled::transaction::Transactional;
        let version = self.deny_version()? + 1;
        let entry = encode(&LogEntry { add: add.is_some(), key: hex::encode_upper(transit::card_key(key, Identifier::Pan, pan)) })?;
        let card = add.map(|source| encode(&DenyEntry { source })).transpose()?;
        let index = self.at_rest.index(pan);
        (&self.deny_log, &self.deny_cards, &self.meta)
            .transaction(|(log, cards, meta)| {
                log.insert(&version.to_be_bytes()[..], entry.clone())?;
                match &card {
                    Some(c) => cards.insert(&index[..], c.clone())?,
                    None => cards.remove(&index[..])?,
                };
                meta.insert("deny_version", &version.to_be_bytes()[..])?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => AcquirerError::Db(e),
                sled::transaction::TransactionError::Abort(()) => AcquirerError::Corrupt { tree: "deny_log", problem: "aborted".into() },
            })
    }

    /// The net changes of versions `(from, to]`: key → added.
    fn deny_changes(&self, from: u64, to: u64) -> Result<BTreeMap<[u8; 32], bool>, AcquirerError> {
        let mut net = BTreeMap::new();
        for kv in self.deny_log.range((from + 1).to_be_bytes()..=to.to_be_bytes()) {
            let (_, v) = kv?;
            let e: LogEntry = serde_json::from_slice(&v).map_err(|e| AcquirerError::Corrupt { tree: "deny_log", problem: e.to_string() })?;
            let k: [u8; 32] = hex::decode(&e.key)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| AcquirerError::Corrupt { tree: "deny_log", problem: "key is not 32 bytes".into() })?;
            net.insert(k, e.add);
        }
        Ok(net)
    }

    /// One chunk of what a gate holding version `have` needs ([`host_contract::deny_sync`]).
    pub fn deny_chunk(&self, req: Request) -> Result<Option<Chunk>, AcquirerError> {
        let current = self.deny_version()?;
        let to = if req.chunk == 0 { current } else { req.at };
        if to > current || to == 0 && req.chunk > 0 {
            return Ok(None);
        }
        let (kind, from, entries): (Kind, u64, Vec<(bool, [u8; 32])>) = if req.have == to {
            (Kind::Current, to, vec![])
        } else if req.have == 0 || req.have > to || to - req.have > MAX_DELTA {
            (Kind::Full, 0, self.deny_changes(0, to)?.into_iter().filter(|(_, add)| *add).map(|(k, _)| (true, k)).collect())
        } else {
            (Kind::Delta, req.have, self.deny_changes(req.have, to)?.into_iter().map(|(k, add)| (add, k)).collect())
        };
        let chunks = entries.len().div_ceil(PER_CHUNK).max(1);
        let i = usize::from(req.chunk);
        if i >= chunks {
            return Ok(None);
        }
        let part = entries.chunks(PER_CHUNK).nth(i).map(<[_]>::to_vec).unwrap_or_default();
        Ok(Some(Chunk { kind, from, to, chunk: req.chunk, chunks: u16::try_from(chunks).unwrap_or(u16::MAX), entries: part }))
    }

    /// Whether a request comes from a registered transit gate: its DE 41 and DE 42 are in
    /// `[transit]` and its DE 18 is the transit MCC.
    pub(crate) fn is_transit_gate(&self, req: &Message) -> bool {
        let Some(t) = &self.transit else { return false };
        let tid = req.get_str(field::TERMINAL_ID).map(str::trim_end);
        let mid = req.get_str(field::MERCHANT_ID).map(str::trim_end);
        req.get_str(field::MERCHANT_TYPE) == Some(transit::MCC)
            && tid.is_some_and(|tid| t.terminal_ids.iter().any(|x| x == tid))
            && mid.is_some_and(|mid| t.merchant_ids.iter().any(|x| x == mid))
    }

    /// After a new answer to a transit gate's card request: a card-related decline puts the card
    /// on the list, an approval takes a declined card off (its debt is paid).
    pub(crate) fn transit_answered(&self, pan: &str, rc: ResponseCode) {
        let r = if rc.is_approved() {
            self.deny_remove(pan, Some(DenySource::Declined)).map(|_| ())
        } else if card_declined(rc) {
            self.deny_add(pan, DenySource::Declined).map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = r {
            tracing::error!(error = %e, pan = %masked(pan), "deny list update failed");
        }
    }

    /// 0800 DE 70 = 380: one chunk of the deny list in DE 62 of the answer; 30 for a request
    /// that does not parse or names a chunk that does not exist, 57 for a terminal that is not
    /// a registered gate.
    pub(crate) fn deny_list_request(&self, req: &Message, resp: &mut Message) -> ResponseCode {
        let tid = req.get_str(field::TERMINAL_ID).map(str::trim_end);
        if !self.transit.as_ref().is_some_and(|t| tid.is_some_and(|tid| t.terminal_ids.iter().any(|x| x == tid))) {
            return ResponseCode::NotPermitted;
        }
        let Some(r) = req.get_str(field::RESERVED_PRIVATE_62).and_then(Request::parse_de62) else {
            return ResponseCode::FormatError;
        };
        match self.deny_chunk(r) {
            Ok(Some(c)) => match c.to_de62() {
                Some(s) => {
                    resp.set_str(field::RESERVED_PRIVATE_62, &s);
                    ResponseCode::Approved
                }
                None => ResponseCode::SystemError,
            },
            Ok(None) => ResponseCode::FormatError,
            Err(e) => {
                tracing::error!(error = %e, "deny list chunk failed");
                ResponseCode::SystemError
            }
        }
    }
}
