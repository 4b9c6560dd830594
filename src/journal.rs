//! The transaction journal: a sled database on disk. Every state change of a transaction is
//! written and flushed (fsync) before the next step runs or the next screen shows, so a crash at
//! any point leaves a record that start-up recovery can finish: a request sent without an
//! answer gets its reversal queued; offline approvals wait as advices until uploaded.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxnState {
    Started,
    CardRead,
    Sent,
    Answered,
    Completed,
    ReversalPending,
    Reversed,
    AdvicePending,
    Advised,
    Settled,
}

/// What kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxnKind {
    Purchase,
    Refund,
}

/// One journal record. `pan` is kept for reversals and advices (never shown: every view uses
/// `pan_masked`); track 2 is never stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxnRecord {
    pub id: u64,
    pub kind: TxnKind,
    pub state: TxnState,
    /// (unix seconds, state) for every change.
    pub history: Vec<(u64, TxnState)>,
    pub amount: u64,
    pub currency: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    pub pan_masked: Option<String>,
    pub expiry_yymm: Option<String>,
    pub psn: Option<u8>,
    pub label: Option<String>,
    pub aid: Option<String>,
    pub kernel: Option<String>,
    pub cvm: Option<String>,
    pub oda: Option<String>,
    pub cryptogram_type: Option<String>,
    pub cryptogram: Option<String>,
    pub atc: Option<u16>,
    /// Field 55 (data record without PAN / track 2), hex.
    pub icc_data: Option<String>,
    pub stan: Option<u32>,
    /// DE 7 of the request (MMDDhhmmss) — needed for the reversal's DE 90.
    pub transmitted: Option<String>,
    pub local_date: Option<String>,
    pub local_time: Option<String>,
    pub response_code: Option<String>,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    /// Result of the issuer authentication data (91) check.
    pub arpc: Option<String>,
    /// Reversal attempts so far.
    pub reversal_attempts: u32,
    /// For refunds and voids: the journal id of the original.
    pub original: Option<u64>,
}

impl TxnRecord {
    /// The record as shown to people and exported: PAN removed.
    pub fn public(&self) -> TxnRecord {
        TxnRecord { pan: None, ..self.clone() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Db(#[from] sled::Error),
    #[error("journal record {0} is unreadable: {1}")]
    Decode(u64, String),
    #[error("no transaction {0} in the journal")]
    NotFound(u64),
}

/// The journal.
pub struct Journal {
    db: sled::Db,
    txns: sled::Tree,
    meta: sled::Tree,
}

fn now() -> u64 {
    crate::clock::unix_now()
}

impl Journal {
    /// Opens (creates) the journal under `dir`.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let db = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).open()?;
        let txns = db.open_tree("txns")?;
        let meta = db.open_tree("meta")?;
        Ok(Journal { db, txns, meta })
    }

    fn flush(&self) -> Result<(), JournalError> {
        self.db.flush()?;
        Ok(())
    }

    /// Starts a transaction: written and flushed before the card is asked for.
    pub fn begin(&self, kind: TxnKind, amount: u64, currency: &str) -> Result<TxnRecord, JournalError> {
        // Dense ids (1, 2, 3...): the last one + 1, in the same tree, so a restart does not skip
        // ahead as sled's `generate_id` does. Only one process holds the database.
        let id = match self.txns.last()? {
            Some((k, _)) => <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes).unwrap_or(0) + 1,
            None => 1,
        };
        let r = TxnRecord {
            id,
            kind,
            state: TxnState::Started,
            history: vec![(now(), TxnState::Started)],
            amount,
            currency: currency.into(),
            outcome: None,
            reason: None,
            pan: None,
            pan_masked: None,
            expiry_yymm: None,
            psn: None,
            label: None,
            aid: None,
            kernel: None,
            cvm: None,
            oda: None,
            cryptogram_type: None,
            cryptogram: None,
            atc: None,
            icc_data: None,
            stan: None,
            transmitted: None,
            local_date: None,
            local_time: None,
            response_code: None,
            auth_code: None,
            rrn: None,
            arpc: None,
            reversal_attempts: 0,
            original: None,
        };
        self.put(&r)?;
        Ok(r)
    }

    /// Writes a record durably (flushed before returning).
    pub fn put(&self, r: &TxnRecord) -> Result<(), JournalError> {
        let v = serde_json::to_vec(r).map_err(|e| JournalError::Decode(r.id, e.to_string()))?;
        self.txns.insert(r.id.to_be_bytes(), v)?;
        self.flush()
    }

    /// Moves a record to `state` (with history) and applies `f`, durably.
    pub fn advance(&self, r: &mut TxnRecord, state: TxnState, f: impl FnOnce(&mut TxnRecord)) -> Result<(), JournalError> {
        f(r);
        r.state = state;
        r.history.push((now(), state));
        self.put(r)
    }

    pub fn get(&self, id: u64) -> Result<TxnRecord, JournalError> {
        let v = self.txns.get(id.to_be_bytes())?.ok_or(JournalError::NotFound(id))?;
        serde_json::from_slice(&v).map_err(|e| JournalError::Decode(id, e.to_string()))
    }

    /// All records, oldest first. Unreadable records are reported, not skipped silently.
    pub fn all(&self) -> Result<Vec<TxnRecord>, JournalError> {
        let mut out = Vec::new();
        for kv in self.txns.iter() {
            let (k, v) = kv?;
            let id = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
            out.push(serde_json::from_slice(&v).map_err(|e| JournalError::Decode(id, e.to_string()))?);
        }
        Ok(out)
    }

    pub fn in_state(&self, state: TxnState) -> Result<Vec<TxnRecord>, JournalError> {
        Ok(self.all()?.into_iter().filter(|r| r.state == state).collect())
    }

    /// The next STAN (000001-999999, wrapping), persisted and flushed before it is used.
    pub fn next_stan(&self) -> Result<u32, JournalError> {
        let v = self.meta.update_and_fetch("stan", |old| {
            let cur = old.and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes).unwrap_or(0);
            let next = if cur >= 999_999 { 1 } else { cur + 1 };
            Some(next.to_be_bytes().to_vec())
        })?;
        self.flush()?;
        Ok(v.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes).unwrap_or(1))
    }

    /// Start-up recovery: a request sent without an answer may have reached the host, so it
    /// is reversed; a transaction that never reached the host is closed as not completed.
    /// Returns the ids whose reversal was queued.
    pub fn recover(&self) -> Result<Vec<u64>, JournalError> {
        let mut queued = Vec::new();
        for mut r in self.all()? {
            match r.state {
                TxnState::Sent => {
                    self.advance(&mut r, TxnState::ReversalPending, |r| {
                        r.outcome = Some("DECLINED".into());
                        r.reason = Some("terminal stopped before the host answered: reversal queued".into());
                    })?;
                    queued.push(r.id);
                }
                // An offline approval (TC) exists once the card answered: the card has spent its
                // offline balance, so the advice must reach the issuer.
                TxnState::CardRead if r.outcome.as_deref() == Some("APPROVED") => {
                    self.advance(&mut r, TxnState::AdvicePending, |_| {})?;
                }
                TxnState::Started | TxnState::CardRead => {
                    self.advance(&mut r, TxnState::Completed, |r| {
                        r.outcome = Some("ERROR".into());
                        r.reason = Some("terminal stopped before the transaction was sent: not charged".into());
                    })?;
                }
                TxnState::Answered => {
                    // The answer is on disk: the transaction stands as the issuer answered it
                    // (contactless: the card left before the answer, nothing more to do with it).
                    self.advance(&mut r, TxnState::Completed, |r| {
                        let approved = r.response_code.as_deref() == Some("00");
                        r.outcome = Some(if approved { "APPROVED" } else { "ONLINE_DECLINED" }.into());
                        r.reason = Some(format!(
                            "terminal stopped after the host answered {}: completed at restart",
                            r.response_code.as_deref().unwrap_or("?")
                        ));
                    })?;
                }
                _ => {}
            }
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("shanfu-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_survive_reopen_and_stan_is_persistent() {
        let d = dir("reopen");
        let id = {
            let j = Journal::open(&d).unwrap();
            assert_eq!(j.next_stan().unwrap(), 1);
            assert_eq!(j.next_stan().unwrap(), 2);
            let mut r = j.begin(TxnKind::Purchase, 1234, "156").unwrap();
            j.advance(&mut r, TxnState::CardRead, |r| r.pan = Some("6235880000000017".into())).unwrap();
            r.id
        };
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.next_stan().unwrap(), 3);
        let r = j.get(id).unwrap();
        assert_eq!((r.state, r.amount), (TxnState::CardRead, 1234));
        assert!(r.public().pan.is_none());
        drop(j);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn recovery_reverses_sent_and_closes_unsent() {
        let d = dir("recover");
        let j = Journal::open(&d).unwrap();
        let mut a = j.begin(TxnKind::Purchase, 100, "156").unwrap();
        j.advance(&mut a, TxnState::Sent, |_| {}).unwrap();
        let mut b = j.begin(TxnKind::Purchase, 200, "156").unwrap();
        j.advance(&mut b, TxnState::CardRead, |_| {}).unwrap();
        let queued = j.recover().unwrap();
        assert_eq!(queued, vec![a.id]);
        assert_eq!(j.get(a.id).unwrap().state, TxnState::ReversalPending);
        assert_eq!(j.get(b.id).unwrap().state, TxnState::Completed);
        // Recovery is idempotent.
        assert!(j.recover().unwrap().is_empty());
        drop(j);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stan_wraps_after_999999() {
        let d = dir("wrap");
        let j = Journal::open(&d).unwrap();
        j.meta.insert("stan", 999_999u32.to_be_bytes().to_vec()).unwrap();
        assert_eq!(j.next_stan().unwrap(), 1);
        drop(j);
        let _ = std::fs::remove_dir_all(&d);
    }
}
