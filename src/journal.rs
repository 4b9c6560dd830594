//! The transaction journal: a sled database on disk. Every state change of a transaction is
//! written and flushed (fsync) before the next step runs or the next screen shows, so a crash at
//! any point leaves a record that start-up recovery can finish: a request sent without an
//! answer gets its reversal queued; offline approvals wait as advices until uploaded.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::terminal::disposition::{Disposition, NotCompleted};
pub use crate::terminal::lifecycle::{IllegalTransition, TxnEvent, TxnState};
use host_contract::{BatchNumber, ResponseCode};
use kernels::outcome::Cvm;

/// Whether STAN `a` is ahead of `b` in the 000001-999999 cycle (at most half a cycle ahead).
fn stan_ahead(a: u32, b: u32) -> bool {
    let d = (i64::from(a) - i64::from(b)).rem_euclid(999_999);
    d != 0 && d < 500_000
}

/// What kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxnKind {
    Purchase,
    Refund,
    /// Cash with the card (9C 01).
    Cash,
    /// Purchase with cashback (9C 09): the amount is the total, cashback included.
    Cashback,
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
    /// How it ended (`None` while it runs).
    #[serde(default)]
    pub disposition: Option<Disposition>,
    /// Technical detail behind the disposition (kernel or host), for logs and `journal show`.
    pub reason: Option<String>,
    /// Schema 1-2 kept the outcome as text; read once to migrate (see `Journal::open`).
    #[serde(default, rename = "outcome", skip_serializing)]
    legacy_outcome: Option<LegacyOutcome>,
    /// The PAN, in memory only: on disk it is [`TxnRecord::pan_sealed`] (crate::vault).
    #[serde(skip)]
    pub pan: Option<String>,
    /// The PAN sealed with AES-256-GCM under the terminal's data key, for this record's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pan_sealed: Option<String>,
    /// Schema 1-3 kept the PAN in clear: read once to seal it (see `Journal::open`).
    #[serde(default, rename = "pan", skip_serializing)]
    legacy_pan: Option<String>,
    pub pan_masked: Option<String>,
    pub expiry_yymm: Option<String>,
    pub psn: Option<u8>,
    pub label: Option<String>,
    pub aid: Option<String>,
    pub kernel: Option<String>,
    /// Read leniently: a CVM text this version does not know is dropped, not an unreadable record.
    #[serde(default, deserialize_with = "lenient")]
    pub cvm: Option<Cvm>,
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
    /// Whether the answer carried issuer authentication data (91): RECEIVED / ABSENT.
    pub arpc: Option<String>,
    /// Tag 91 (ARPC ‖ ARC) as the host sent it, hex: for the card where issuer update applies.
    #[serde(default)]
    pub issuer_auth_data: Option<String>,
    /// Reversal attempts so far.
    pub reversal_attempts: u32,
    /// The request carried the cardholder's PIN block (DE 52; the PIN itself is never kept): an
    /// approval then means the issuer verified the PIN.
    #[serde(default)]
    pub pin_sent: bool,
    /// For refunds and voids: the journal id of the original.
    pub original: Option<u64>,
    /// A refund's reference to its sale at the acquirer (the sale's RRN, DE 37).
    #[serde(default)]
    pub reference_rrn: Option<String>,
}

impl TxnRecord {
    /// The record as shown to people and exported: PAN removed.
    pub fn public(&self) -> TxnRecord {
        TxnRecord { pan: None, ..self.clone() }
    }

    /// The contract name of how it ended (DESIGN.md §4), `IN_PROGRESS` while it runs.
    pub fn outcome_name(&self) -> &'static str {
        self.disposition.map(Disposition::outcome_name).unwrap_or("IN_PROGRESS")
    }

    /// The record as exported (`journal show` / `export`): PAN removed, the outcome name beside
    /// the typed disposition.
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.public()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("outcome".into(), self.outcome_name().into());
            o.insert("slip".into(), crate::terminal::receipt::Slip::of(self).title(host_contract::Lang::En).into());
        }
        v
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Not a `#[source]`: the message already carries sled's, and an error chain printed with
    /// its causes would say it twice.
    #[error("journal database: {0}")]
    Db(sled::Error),
    /// Another process has the journal open (sled allows one): `holder` says which, from the
    /// [`HOLDER_FILE`] it wrote when it opened it.
    #[error("in use by {holder}")]
    InUse { dir: std::path::PathBuf, holder: String },
    #[error("journal record {0} is unreadable: {1}")]
    Decode(u64, String),
    #[error("no transaction {0} in the journal")]
    NotFound(u64),
    #[error("transaction {id}: {err}")]
    Illegal { id: u64, err: IllegalTransition },
    #[error("transaction {id}: no event takes {from:?} to {to:?}")]
    IllegalWrite { id: u64, from: TxnState, to: TxnState },
    #[error("the journal has schema version {0}; this shanfu reads version {SCHEMA_VERSION} (use a newer shanfu)")]
    NewerSchema(u32),
    #[error("journal card data: {0}")]
    Vault(#[from] crate::vault::VaultError),
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Db(e)
    }
}

/// In the journal directory: `pid N` and the command line of the process that has the journal
/// open, written when it opens it and removed when it closes it, for [`JournalError::InUse`].
pub const HOLDER_FILE: &str = "holder";

/// The holder file of this process: removed when the last handle on the journal goes.
#[derive(Debug)]
struct Holder(std::path::PathBuf);

impl Holder {
    fn write(dir: &Path) -> Holder {
        let path = dir.join(HOLDER_FILE);
        let cmd: Vec<String> = std::env::args().map(|a| if a.contains(' ') { format!("{a:?}") } else { a }).collect();
        if let Err(e) = std::fs::write(&path, format!("pid {}\n{}\n", std::process::id(), cmd.join(" "))) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the journal holder file");
        }
        Holder(path)
    }

    /// Who holds the journal in `dir`, as "pid N (command)", from its holder file.
    fn describe(dir: &Path) -> String {
        let text = std::fs::read_to_string(dir.join(HOLDER_FILE)).unwrap_or_default();
        let mut lines = text.lines();
        match (lines.next().and_then(|l| l.strip_prefix("pid ")).and_then(|p| p.trim().parse::<u32>().ok()), lines.next()) {
            (Some(pid), Some(cmd)) if !cmd.trim().is_empty() => format!("pid {pid} ({})", cmd.trim()),
            (Some(pid), _) => format!("pid {pid}"),
            _ => "another process (it wrote no holder file)".to_string(),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Only our own: a later holder may have written it since (after we closed).
        let ours = std::fs::read_to_string(&self.0).is_ok_and(|t| t.lines().next() == Some(&format!("pid {}", std::process::id())));
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Whether sled refused to open because another process holds the database's lock.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock"))
}

/// Version of the journal's layout: 1 = records only; 2 = + the state and STAN indexes;
/// 3 = typed disposition instead of the outcome text; 4 = the PAN sealed (crate::vault).
pub const SCHEMA_VERSION: u32 = 4;

/// The disposition a schema 1-2 record meant by its outcome text.
/// The outcome as schema 1-2 wrote it (text); anything else it may hold reads as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum LegacyOutcome {
    Approved,
    OnlineDeclined,
    Declined,
    TryAgain,
    SeePhone,
    TryAnotherInterface,
    Error,
    OnlineRequest,
    #[serde(other)]
    Other,
}

fn migrate_outcome(r: &TxnRecord, outcome: LegacyOutcome) -> Option<Disposition> {
    use LegacyOutcome as L;
    use NotCompleted as N;
    let nc = |reason| Some(Disposition::NotCompleted { reason });
    let rc = r.response_code.as_deref().and_then(ResponseCode::from_code);
    match outcome {
        L::Approved if r.stan.is_some() && r.state != TxnState::AdvicePending && r.state != TxnState::Advised => Some(Disposition::ApprovedOnline),
        L::Approved => Some(Disposition::ApprovedOffline),
        L::OnlineDeclined => Some(Disposition::DeclinedByIssuer { response_code: rc.unwrap_or(ResponseCode::DoNotHonour) }),
        L::Declined if matches!(r.state, TxnState::ReversalPending | TxnState::Reversed) => nc(N::HostUnreachable),
        L::Declined => Some(Disposition::DeclinedByCard),
        L::TryAgain => nc(N::TryAgain),
        L::SeePhone => nc(N::SeePhone),
        L::TryAnotherInterface => nc(N::TryAnotherInterface),
        L::Error => nc(N::TerminalStopped),
        L::OnlineRequest => None,
        L::Other => nc(N::CardError),
    }
}

/// A value this version cannot read becomes `None` rather than making the record unreadable.
fn lenient<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

fn state_key(state: TxnState, id: u64) -> Vec<u8> {
    let idx = TxnState::ALL.iter().position(|s| *s == state).unwrap_or(0) as u8;
    let mut k = vec![idx];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The journal. Clones are handles on the same open database (the host link's STAN source, the
/// local socket's thread).
#[derive(Clone)]
pub struct Journal {
    db: sled::Db,
    txns: sled::Tree,
    meta: sled::Tree,
    /// state index ‖ id → (): `in_state` without reading every record.
    by_state: sled::Tree,
    /// STAN → id of the transaction that used it last.
    by_stan: sled::Tree,
    /// The data key sealing the PAN (`DIR/../keystore/journal-data.key`, 0600).
    vault: crate::vault::DataKey,
    _holder: std::sync::Arc<Holder>,
}

fn now() -> u64 {
    crate::clock::unix_now()
}

impl Journal {
    /// Opens (creates) the journal under `dir`. One process at a time: while another has it
    /// open, [`JournalError::InUse`] names that process.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        // A database closed a moment ago may still be locked by sled's flusher thread: a lock
        // error is asked again for up to a second before it means another holder.
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).open() {
                Ok(db) => break db,
                Err(e) if is_lock_error(&e) && attempts < 20 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) if is_lock_error(&e) => return Err(JournalError::InUse { dir: dir.to_path_buf(), holder: Holder::describe(dir) }),
                Err(e) => return Err(e.into()),
            }
        };
        let holder = std::sync::Arc::new(Holder::write(dir));
        let txns = db.open_tree("txns")?;
        let meta = db.open_tree("meta")?;
        let by_state = db.open_tree("by_state")?;
        let by_stan = db.open_tree("by_stan")?;
        // The key lives beside the journal, not in it: DATA/keystore for DATA/journal.
        let key_path = dir.parent().unwrap_or(dir).join("keystore").join("journal-data.key");
        let vault = crate::vault::DataKey::load_or_create(&key_path)?;
        let j = Journal { db, txns, meta, by_state, by_stan, vault, _holder: holder };
        let version = j.meta.get("schema")?.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes);
        match version {
            Some(v) if v > SCHEMA_VERSION => return Err(JournalError::NewerSchema(v)),
            Some(SCHEMA_VERSION) => {}
            // Version 1-2 (or new): typed dispositions, then the indexes from the records.
            _ => {
                for (k, v) in j.txns.iter().flatten() {
                    let Ok(mut r) = serde_json::from_slice::<TxnRecord>(&v) else { continue };
                    let outcome = r.legacy_outcome.take();
                    let clear_pan = r.legacy_pan.take();
                    if outcome.is_none() && clear_pan.is_none() {
                        continue;
                    }
                    if let Some(o) = outcome {
                        if r.disposition.is_none() {
                            r.disposition = migrate_outcome(&r, o);
                        }
                    }
                    r.pan = clear_pan;
                    j.txns.insert(k, j.encode(&r)?)?;
                }
                j.by_state.clear()?;
                j.by_stan.clear()?;
                for r in j.all()? {
                    j.by_state.insert(state_key(r.state, r.id), &[])?;
                    if let Some(stan) = r.stan {
                        j.by_stan.insert(stan.to_be_bytes(), &r.id.to_be_bytes())?;
                    }
                }
                j.meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())?;
                j.flush()?;
            }
        }
        Ok(j)
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
            disposition: None,
            reason: None,
            legacy_outcome: None,
            pan: None,
            pan_sealed: None,
            legacy_pan: None,
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
            issuer_auth_data: None,
            reversal_attempts: 0,
            pin_sent: false,
            original: None,
            reference_rrn: None,
        };
        self.put(&r)?;
        Ok(r)
    }

    /// Writes a record and its index entries atomically and durably (flushed before returning).
    /// The state must be the stored one or reachable from it in one step of the lifecycle.
    pub fn put(&self, r: &TxnRecord) -> Result<(), JournalError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        use sled::Transactional;
        let v = self.encode(r)?;
        let res = (&self.txns, &self.by_state, &self.by_stan).transaction(|(txns, by_state, by_stan)| {
            let key = r.id.to_be_bytes();
            if let Some(old) = txns.get(key)? {
                let old: TxnRecord =
                    serde_json::from_slice(&old).map_err(|e| ConflictableTransactionError::Abort(JournalError::Decode(r.id, e.to_string())))?;
                if old.state != r.state {
                    let legal = TxnEvent::ALL.iter().any(|e| old.state.on(*e) == Ok(r.state));
                    if !legal {
                        return Err(ConflictableTransactionError::Abort(JournalError::IllegalWrite { id: r.id, from: old.state, to: r.state }));
                    }
                    by_state.remove(state_key(old.state, r.id))?;
                }
            }
            by_state.insert(state_key(r.state, r.id), &[])?;
            if let Some(stan) = r.stan {
                by_stan.insert(&stan.to_be_bytes(), &key)?;
            }
            txns.insert(&key, v.clone())?;
            Ok(())
        });
        match res {
            Ok(()) => self.flush(),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Applies `event` to a record (the lifecycle decides the next state; an illegal event is an
    /// error and nothing is written), then `f`, durably.
    pub fn advance(&self, r: &mut TxnRecord, event: TxnEvent, f: impl FnOnce(&mut TxnRecord)) -> Result<(), JournalError> {
        let next = r.state.on(event).map_err(|err| JournalError::Illegal { id: r.id, err })?;
        let mut updated = r.clone();
        f(&mut updated);
        updated.state = next;
        updated.history.push((now(), next));
        self.put(&updated)?;
        *r = updated;
        Ok(())
    }

    /// The transaction that used `stan` last.
    pub fn by_stan(&self, stan: u32) -> Result<Option<TxnRecord>, JournalError> {
        match self.by_stan.get(stan.to_be_bytes())? {
            Some(id) => {
                let id = <[u8; 8]>::try_from(id.as_ref()).map(u64::from_be_bytes).map_err(|_| JournalError::Decode(0, "bad STAN index entry".into()))?;
                self.get(id).map(Some)
            }
            None => Ok(None),
        }
    }

    pub fn get(&self, id: u64) -> Result<TxnRecord, JournalError> {
        let v = self.txns.get(id.to_be_bytes())?.ok_or(JournalError::NotFound(id))?;
        self.decode(id, &v)
    }

    /// The associated data binding a sealed PAN to its record.
    fn aad(id: u64) -> Vec<u8> {
        [b"shanfu journal pan ".as_slice(), &id.to_be_bytes()].concat()
    }

    /// A record as stored: the PAN sealed, never in clear.
    fn encode(&self, r: &TxnRecord) -> Result<Vec<u8>, JournalError> {
        let mut stored = r.clone();
        stored.pan_sealed = match &r.pan {
            Some(p) => Some(self.vault.seal(&Self::aad(r.id), p)?),
            None => None,
        };
        serde_json::to_vec(&stored).map_err(|e| JournalError::Decode(r.id, e.to_string()))
    }

    /// A stored record with its PAN opened.
    fn decode(&self, id: u64, v: &[u8]) -> Result<TxnRecord, JournalError> {
        let mut r: TxnRecord = serde_json::from_slice(v).map_err(|e| JournalError::Decode(id, e.to_string()))?;
        r.pan = match (r.pan_sealed.take(), r.legacy_pan.take()) {
            (Some(s), _) => Some(self.vault.open(&Self::aad(r.id), &s)?),
            (None, clear) => clear,
        };
        Ok(r)
    }

    /// All records, oldest first. Unreadable records are reported, not skipped silently.
    pub fn all(&self) -> Result<Vec<TxnRecord>, JournalError> {
        let mut out = Vec::new();
        for kv in self.txns.iter() {
            let (k, v) = kv?;
            let id = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
            out.push(self.decode(id, &v)?);
        }
        Ok(out)
    }

    /// The records in `state`, oldest first, from the state index.
    pub fn in_state(&self, state: TxnState) -> Result<Vec<TxnRecord>, JournalError> {
        let prefix = state_key(state, 0)[..1].to_vec();
        let mut out = Vec::new();
        for kv in self.by_state.scan_prefix(prefix) {
            let (k, _) = kv?;
            let id = k
                .get(1..9)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| JournalError::Decode(0, "bad state index entry".into()))?;
            out.push(self.get(id)?);
        }
        Ok(out)
    }

    /// How many records are in `state` (index only).
    pub fn count_in_state(&self, state: TxnState) -> usize {
        self.by_state.scan_prefix(&state_key(state, 0)[..1]).count()
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

    /// Adopts the acquirer's view from a sign-on (docs/host.md "Sign-on"): its last STAN when it
    /// is ahead of ours in the 000001-999999 cycle (a reset journal then continues after it
    /// instead of repeating old STANs), and its open batch.
    pub fn sync_position(&self, host_last_stan: u32, host_batch: BatchNumber) -> Result<(), JournalError> {
        let ours = self.meta.get("stan")?.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes).unwrap_or(0);
        if (1..=999_999).contains(&host_last_stan) && stan_ahead(host_last_stan, ours) {
            tracing::info!(ours, host_last_stan, "sign-on: the acquirer has seen later STANs; continuing after them");
            self.meta.insert("stan", &host_last_stan.to_be_bytes())?;
        }
        if self.batch()? != host_batch {
            tracing::info!(batch = %host_batch, "sign-on: the acquirer's open batch");
            self.meta.insert("batch", &host_batch.get().to_be_bytes())?;
        }
        self.flush()
    }

    /// The open settlement batch (000001 until a settlement or a sign-on says otherwise).
    pub fn batch(&self) -> Result<BatchNumber, JournalError> {
        let n = self.meta.get("batch")?.and_then(|b| <[u8; 4]>::try_from(b.as_ref()).ok()).map(u32::from_be_bytes).unwrap_or(1);
        Ok(BatchNumber::new(n).unwrap_or(BatchNumber::FIRST))
    }

    /// A reconciled batch closes; the next one opens.
    pub fn close_batch(&self, closed: BatchNumber) -> Result<(), JournalError> {
        self.meta.insert("batch", &closed.next().get().to_be_bytes())?;
        self.flush()
    }

    /// Start-up recovery: a request sent without an answer may have reached the host, so it
    /// is reversed; a transaction that never reached the host is closed as not completed.
    /// Returns the ids whose reversal was queued.
    pub fn recover(&self) -> Result<Vec<u64>, JournalError> {
        let mut queued = Vec::new();
        for mut r in self.all()? {
            match r.state {
                TxnState::Sent => {
                    self.advance(&mut r, TxnEvent::NotAnswered, |r| {
                        r.disposition = Some(Disposition::NotCompleted { reason: NotCompleted::TerminalStopped });
                        r.reason = Some("terminal stopped before the host answered: reversal queued".into());
                    })?;
                    queued.push(r.id);
                }
                // An offline approval (TC) exists once the card answered: the card has spent its
                // offline balance, so the advice must reach the issuer.
                TxnState::CardRead if r.disposition == Some(Disposition::ApprovedOffline) => {
                    self.advance(&mut r, TxnEvent::OfflineApproved, |_| {})?;
                }
                TxnState::Started | TxnState::CardRead => {
                    self.advance(&mut r, TxnEvent::Closed, |r| {
                        r.disposition = Some(Disposition::NotCompleted { reason: NotCompleted::TerminalStopped });
                        r.reason = Some("terminal stopped before the transaction was sent: not charged".into());
                    })?;
                }
                TxnState::Answered => {
                    // The answer is on disk: the transaction stands as the issuer answered it
                    // (contactless: the card left before the answer, nothing more to do with it).
                    self.advance(&mut r, TxnEvent::Closed, |r| {
                        // The answer on disk was checked before it was written.
                        r.disposition = Some(match r.response_code.as_deref().and_then(ResponseCode::from_code) {
                            Some(ResponseCode::Approved) => Disposition::ApprovedOnline,
                            Some(response_code) => Disposition::DeclinedByIssuer { response_code },
                            None => Disposition::NotCompleted { reason: NotCompleted::TerminalStopped },
                        });
                        r.reason =
                            Some(format!("terminal stopped after the host answered {}: completed at restart", r.response_code.as_deref().unwrap_or("?")));
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

    /// `ROOT/journal` of a fresh root (the data key goes to `ROOT/keystore`).
    fn dir(name: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("shanfu-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        root.join("journal")
    }

    fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                files_contain(&p, needle)
            } else {
                std::fs::read(&p).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false)
            }
        })
    }

    #[test]
    fn the_pan_is_sealed_on_disk_and_opens_with_the_key_store() {
        let d = dir("sealed");
        let pan = "6235880000000017";
        {
            let j = Journal::open(&d).unwrap();
            let mut r = j.begin(TxnKind::Purchase, 100, "156").unwrap();
            j.advance(&mut r, TxnEvent::CardRead, |r| r.pan = Some(pan.into())).unwrap();
            j.flush().unwrap();
        }
        assert!(!files_contain(&d, pan.as_bytes()), "no PAN in clear in the journal's files");
        let key = d.parent().unwrap().join("keystore/journal-data.key");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.all().unwrap()[0].pan.as_deref(), Some(pan), "the terminal reads it back for reversals");
        drop(j);
        // Another key store (the journal copied to another machine) cannot open it.
        std::fs::remove_file(&key).unwrap();
        let j = Journal::open(&d).unwrap();
        assert!(matches!(j.all(), Err(JournalError::Vault(_))));
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap());
    }

    #[test]
    fn a_second_open_names_the_holder_and_the_holder_file_goes_with_the_last_handle() {
        let d = dir("inuse");
        let j = Journal::open(&d).unwrap();
        let handle = j.clone();
        let err = Journal::open(&d).err().expect("the journal is held");
        let JournalError::InUse { dir: ref at, ref holder } = err else { panic!("{err:?}") };
        assert_eq!(at, &d);
        assert!(holder.starts_with(&format!("pid {} (", std::process::id())), "{holder}");
        assert!(err.to_string().starts_with(&format!("in use by pid {}", std::process::id())), "{err}");
        drop(j);
        assert!(d.join(HOLDER_FILE).exists(), "a handle is still open");
        drop(handle);
        assert!(!d.join(HOLDER_FILE).exists());
        let j = Journal::open(&d).unwrap();
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn records_survive_reopen_and_stan_is_persistent() {
        let d = dir("reopen");
        let id = {
            let j = Journal::open(&d).unwrap();
            assert_eq!(j.next_stan().unwrap(), 1);
            assert_eq!(j.next_stan().unwrap(), 2);
            let mut r = j.begin(TxnKind::Purchase, 1234, "156").unwrap();
            j.advance(&mut r, TxnEvent::CardRead, |r| r.pan = Some("6235880000000017".into())).unwrap();
            r.id
        };
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.next_stan().unwrap(), 3);
        let r = j.get(id).unwrap();
        assert_eq!((r.state, r.amount), (TxnState::CardRead, 1234));
        assert!(r.public().pan.is_none());
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn recovery_reverses_sent_and_closes_unsent() {
        let d = dir("recover");
        let j = Journal::open(&d).unwrap();
        let mut a = j.begin(TxnKind::Purchase, 100, "156").unwrap();
        j.advance(&mut a, TxnEvent::CardRead, |_| {}).unwrap();
        j.advance(&mut a, TxnEvent::Sent, |_| {}).unwrap();
        let mut b = j.begin(TxnKind::Purchase, 200, "156").unwrap();
        j.advance(&mut b, TxnEvent::CardRead, |_| {}).unwrap();
        let queued = j.recover().unwrap();
        assert_eq!(queued, vec![a.id]);
        assert_eq!(j.get(a.id).unwrap().state, TxnState::ReversalPending);
        assert_eq!(j.get(b.id).unwrap().state, TxnState::Completed);
        // Recovery is idempotent.
        assert!(j.recover().unwrap().is_empty());
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn illegal_transitions_are_refused_and_nothing_is_written() {
        let d = dir("illegal");
        let j = Journal::open(&d).unwrap();
        let mut r = j.begin(TxnKind::Purchase, 100, "156").unwrap();
        // Started cannot be Sent: the card data must be on disk first.
        let e = j.advance(&mut r, TxnEvent::Sent, |r| r.stan = Some(9)).unwrap_err();
        assert!(matches!(e, JournalError::Illegal { .. }), "{e}");
        assert_eq!((r.state, r.stan), (TxnState::Started, None));
        assert_eq!(j.get(r.id).unwrap().state, TxnState::Started);
        // A raw put that skips the lifecycle is refused too.
        let mut forged = r.clone();
        forged.state = TxnState::Settled;
        assert!(matches!(j.put(&forged), Err(JournalError::IllegalWrite { .. })));
        assert_eq!(j.get(r.id).unwrap().state, TxnState::Started);
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn state_and_stan_indexes_follow_the_records_and_survive_reopen() {
        let d = dir("index");
        {
            let j = Journal::open(&d).unwrap();
            let mut a = j.begin(TxnKind::Purchase, 100, "156").unwrap();
            j.advance(&mut a, TxnEvent::CardRead, |_| {}).unwrap();
            j.advance(&mut a, TxnEvent::Sent, |r| r.stan = Some(7)).unwrap();
            let mut b = j.begin(TxnKind::Purchase, 200, "156").unwrap();
            j.advance(&mut b, TxnEvent::CardRead, |_| {}).unwrap();
            j.advance(&mut b, TxnEvent::OfflineApproved, |_| {}).unwrap();
            assert_eq!(j.in_state(TxnState::Sent).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![a.id]);
            assert_eq!(j.count_in_state(TxnState::AdvicePending), 1);
            assert_eq!(j.count_in_state(TxnState::Started), 0);
            assert_eq!(j.by_stan(7).unwrap().map(|r| r.id), Some(a.id));
            assert!(j.by_stan(8).unwrap().is_none());
        }
        // An old (version 1) journal gets its indexes built at open.
        {
            let db = sled::open(&d).unwrap();
            db.open_tree("meta").unwrap().remove("schema").unwrap();
            db.open_tree("by_state").unwrap().clear().unwrap();
            db.open_tree("by_stan").unwrap().clear().unwrap();
            db.flush().unwrap();
        }
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.count_in_state(TxnState::Sent), 1);
        assert_eq!(j.by_stan(7).unwrap().map(|r| r.amount), Some(100));
        j.meta.insert("schema", &99u32.to_be_bytes()).unwrap();
        drop(j);
        assert!(matches!(Journal::open(&d), Err(JournalError::NewerSchema(99))));
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn schema_2_records_migrate_their_outcome_text_and_keep_their_cvm() {
        let d = dir("legacy");
        {
            let j = Journal::open(&d).unwrap();
            let mut a = j.begin(TxnKind::Purchase, 100, "156").unwrap();
            j.advance(&mut a, TxnEvent::CardRead, |_| {}).unwrap();
            j.advance(&mut a, TxnEvent::Sent, |r| r.stan = Some(3)).unwrap();
            j.advance(&mut a, TxnEvent::Answered, |_| {}).unwrap();
            let mut b = j.begin(TxnKind::Purchase, 200, "156").unwrap();
            j.advance(&mut b, TxnEvent::CardRead, |_| {}).unwrap();
            j.advance(&mut b, TxnEvent::Closed, |_| {}).unwrap();
        }
        // Rewrite both as schema 2 wrote them: outcome and CVM as text, no disposition.
        {
            let db = sled::open(&d).unwrap();
            let txns = db.open_tree("txns").unwrap();
            for (k, v) in txns.iter().flatten() {
                let mut r: serde_json::Value = serde_json::from_slice(&v).unwrap();
                let o = r.as_object_mut().unwrap();
                let first = o["amount"] == 100;
                o.remove("disposition");
                o.insert("outcome".into(), if first { "APPROVED" } else { "SOMETHING_NEWER" }.into());
                o.insert("cvm".into(), if first { "CDCVM" } else { "RETINA_SCAN" }.into());
                o.remove("pan_sealed");
                if first {
                    o.insert("pan".into(), "6235880000000017".into());
                }
                txns.insert(k, serde_json::to_vec(&r).unwrap()).unwrap();
            }
            db.open_tree("meta").unwrap().insert("schema", &2u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let j = Journal::open(&d).unwrap();
        let all = j.all().unwrap();
        let a = all.iter().find(|r| r.amount == 100).unwrap();
        let b = all.iter().find(|r| r.amount == 200).unwrap();
        assert_eq!(a.disposition, Some(Disposition::ApprovedOnline));
        assert_eq!(a.cvm, Some(Cvm::Cdcvm));
        assert_eq!(b.disposition, Some(Disposition::NotCompleted { reason: NotCompleted::CardError }));
        assert_eq!(b.cvm, None, "an unknown CVM text is dropped, the record still reads");
        assert_eq!(a.pan.as_deref(), Some("6235880000000017"), "a clear PAN of schema 1-3 is kept, sealed");
        let raw = j.txns.get(a.id.to_be_bytes()).unwrap().unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(raw.get("pan").is_none() && raw.get("pan_sealed").is_some(), "{raw}");
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn sign_on_position_moves_stan_forward_only_and_sets_the_batch() {
        let d = dir("sync");
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.next_stan().unwrap(), 1);
        j.sync_position(57, BatchNumber::new(3).unwrap()).unwrap();
        assert_eq!(j.next_stan().unwrap(), 58);
        assert_eq!(j.batch().unwrap().get(), 3);
        // The acquirer behind us (or knowing nothing) never moves us back.
        j.sync_position(10, BatchNumber::new(3).unwrap()).unwrap();
        j.sync_position(0, BatchNumber::new(3).unwrap()).unwrap();
        assert_eq!(j.next_stan().unwrap(), 59);
        // Across the wrap: 999990 is behind 5 only if we wrapped; 5 is ahead of 999990.
        assert!(stan_ahead(5, 999_990) && !stan_ahead(999_990, 5) && !stan_ahead(7, 7));
        j.close_batch(BatchNumber::new(3).unwrap()).unwrap();
        assert_eq!(j.batch().unwrap().get(), 4);
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }

    #[test]
    fn stan_wraps_after_999999() {
        let d = dir("wrap");
        let j = Journal::open(&d).unwrap();
        j.meta.insert("stan", 999_999u32.to_be_bytes().to_vec()).unwrap();
        assert_eq!(j.next_stan().unwrap(), 1);
        drop(j);
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }
}
