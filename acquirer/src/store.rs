//! The acquirer's state in its own sled database: trees `vault` (token → record), `accounts`
//! (PAN → account), `auths` (TID ‖ STAN → authorization record), `settlements` (TID ‖ batch →
//! the reconciliation that closed it), `batches` (TID → open batch), `stans` (TID → newest STAN
//! seen) and `meta`. Values are JSON (batch numbers and STANs: 4 bytes big-endian). Every change
//! that moves money is one multi-tree transaction, flushed before the answer leaves.
//!
//! No PAN is stored in clear ([`crate::at_rest`]): `vault`, `accounts` and `deny_cards` are keyed
//! by the blind index of the (token) PAN, and the PANs a record must give back (a token's
//! funding PAN, an authorization's PAN and account) are sealed in it. `meta` `schema` is
//! [`SCHEMA`]; a database without it kept PANs in clear and is refused.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::at_rest::{aad, AtRest};
use crate::masked as mask_pan;
use crate::seed::{AccountStatus, Seed, TokenDomain, TokenStatus};
use crate::{AcquirerError, Faults};
use host_contract::BatchNumber;
use test_cards::issuers::{self, Issuer};

/// A token as the vault holds it (the key is the blind index of the token PAN; in the database
/// `funding_pan` is sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub funding_pan: String,
    pub status: TokenStatus,
    /// YYMM.
    pub expiry: String,
    pub par: String,
    pub domain: TokenDomain,
}

/// An account (the key is the blind index of its PAN: a funding account, or a plastic card).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Minor units; may go negative through offline advices.
    pub balance: i64,
    pub currency: String,
    /// YYMM.
    pub expiry: String,
    pub status: AccountStatus,
    /// IBM 3624 PIN offset of a card with online PIN ([`crate::pin`]); `None` = no PIN data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_offset: Option<String>,
}

/// What kind of card request an authorization record answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RequestKind {
    /// 0100: authorization only, nothing posted.
    Authorization,
    /// 0200: financial, posted on approval.
    Financial,
    /// 0220: advice of an offline approval, always posted when accepted.
    Advice,
}

/// One answered card request, keyed by TID ‖ STAN: the duplicate / reversal / settlement unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuthRecord {
    pub kind: RequestKind,
    /// DE 2 as received (sealed in the database, never logged).
    pub pan: String,
    pub processing_code: String,
    pub amount: u64,
    /// Refund (processing code 20xxxx): credits the account.
    pub credit: bool,
    pub response_code: String,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    /// Field 55 of the answer, hex (91 = ARPC ‖ ARC).
    pub icc_response: Option<String>,
    /// The account whose balance moved (funding PAN or card PAN) when `posted` (sealed in the
    /// database).
    pub account: Option<String>,
    pub posted: bool,
    pub reversed: bool,
    pub settled: bool,
    /// Unix seconds.
    pub at: u64,
    /// The batch of the terminal that was open when the record was made (a posted record counts
    /// in that batch's totals); 0 for records made before batches were kept (they count in the
    /// open batch).
    #[serde(default)]
    pub batch: u32,
    /// SHA-1 (hex) of the request without DE 7 ([`crate::logic`]'s `request_digest`): a
    /// retransmission has the same, another request with the same TID + STAN does not. `None`
    /// for records made before it was kept (then kind, PAN, amount and processing code decide).
    #[serde(default)]
    pub request_digest: Option<String>,
    /// A refund by reference: the RRN of the sale it credits back.
    #[serde(default)]
    pub refund_of: Option<String>,
    /// The request's MTI and DE 7: a reversal names both in DE 90. `None` for records made
    /// before they were kept (then they are not compared).
    #[serde(default)]
    pub mti: Option<String>,
    #[serde(default)]
    pub transmitted: Option<String>,
    /// The digest of the reversal that reversed it, in full or in part: a repeat of that
    /// reversal gets the same answer, another reversal 94.
    #[serde(default)]
    pub reversal_digest: Option<String>,
    /// The amount approved before a partial reversal (DE 95); `amount` is then what stands.
    #[serde(default)]
    pub original_amount: Option<u64>,
}

/// A reconciliation the acquirer agreed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SettlementRecord {
    pub terminal_id: String,
    pub debits: u64,
    pub debits_amount: u64,
    pub credits: u64,
    pub credits_amount: u64,
    pub transactions: u64,
    pub at: u64,
    /// STAN of the 0500 that closed the batch (a repeat of that 0500 without DE 60 is recognised by it).
    #[serde(default)]
    pub stan: u64,
    /// The batch it closed (with the terminal id, its key); 0 in records made before batches
    /// were kept (keyed by terminal id ‖ STAN, no longer read).
    #[serde(default)]
    pub batch: u32,
}

impl SettlementRecord {
    /// [debits, debits amount, credits, credits amount].
    pub fn totals(&self) -> [u64; 4] {
        [self.debits, self.debits_amount, self.credits, self.credits_amount]
    }
}

/// The acquirer: database, issuer keys, fault settings, request counter.
pub struct Acquirer {
    pub(crate) db: sled::Db,
    pub(crate) vault: sled::Tree,
    pub(crate) accounts: sled::Tree,
    pub(crate) auths: sled::Tree,
    pub(crate) settlements: sled::Tree,
    /// Terminal id (8) → its open batch (u32 big-endian); absent = [`BatchNumber::FIRST`].
    pub(crate) batches: sled::Tree,
    /// Terminal id (8) → the newest STAN seen from it (u32 big-endian).
    pub(crate) stans: sled::Tree,
    pub(crate) meta: sled::Tree,
    /// Cryptograms used (SHA-1 of PAN ‖ PSN ‖ ATC ‖ AC) → the auth key that used it: one
    /// cryptogram authorizes at most one request (issue 13).
    pub(crate) cryptograms: sled::Tree,
    pub(crate) issuers: Vec<Issuer>,
    pub(crate) faults: Faults,
    /// Requests received, all connections (fault injection counts these).
    pub(crate) requests: AtomicU64,
    /// Serializes every read-decide-write on balances and records.
    pub(crate) lock: Mutex<()>,
    /// Current month override (YYMM) for tests.
    pub(crate) today: Option<u32>,
    /// A one-shot fault for the next transaction request (admin `faults …`).
    pub(crate) next_fault: Mutex<Option<crate::next_fault::NextFault>>,
    /// Registered transit gates and the deny-list key (`[transit]` of the seed).
    pub(crate) transit: Option<crate::seed::SeedTransit>,
    /// Registered terminal id → its merchant id (`[[merchant]]` of the seed).
    pub(crate) terminals: std::collections::HashMap<String, String>,
    /// PAN → its deny-list entry ([`crate::deny`]).
    pub(crate) deny_cards: sled::Tree,
    /// Terminal master keys and the link policy ([`crate::link`]).
    pub(crate) keys: crate::link::KeyStore,
    /// Version → the change it made.
    pub(crate) deny_log: sled::Tree,
    /// The data key's blind index and sealing ([`crate::at_rest`]).
    pub(crate) at_rest: AtRest,
    /// Many requests per fsync ([`crate::group_commit`]).
    pub(crate) group: crate::group_commit::GroupCommit,
    /// The approval numbers reserved in `meta` and not used yet: (next, last) ([`Acquirer::next_seq`]).
    pub(crate) seq: Mutex<(u64, u64)>,
}

/// Approval numbers reserved per write of the sequence ([`Acquirer::next_seq`]).
pub(crate) const SEQ_BLOCK: u64 = 1000;

thread_local! {
    /// `Some` while [`Acquirer::deferring`] runs on this thread: the newest ticket taken.
    static DEFERRED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// `meta` `schema`: 2 = PANs behind the blind index and sealed (issue 12 §6). A database
/// without it (written before) kept PANs in clear: refused, not migrated in place — sled's log
/// would keep the clear values in its old segments.
pub(crate) const SCHEMA: u64 = 2;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// UTC (year, month, day of year 1..=366) of a Unix time.
pub(crate) fn utc_date(secs: u64) -> (u64, u32, u32) {
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = secs / 86_400;
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let doy = days as u32 + 1;
    let lengths = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for l in lengths {
        if days < l {
            break;
        }
        days -= l;
        month += 1;
    }
    (year, month, doy)
}

fn decode<T: DeserializeOwned>(tree: &'static str, v: &[u8]) -> Result<T, AcquirerError> {
    serde_json::from_slice(v).map_err(|e| AcquirerError::Corrupt { tree, problem: e.to_string() })
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, AcquirerError> {
    serde_json::to_vec(v).map_err(|e| AcquirerError::Corrupt { tree: "(encode)", problem: e.to_string() })
}

fn open_error(dir: &Path, e: sled::Error) -> AcquirerError {
    match &e {
        // sled's exclusive file lock (fs2 try_lock_exclusive) failing: another process has it.
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => AcquirerError::Locked(dir.to_path_buf()),
        _ => AcquirerError::Db(e),
    }
}

impl Acquirer {
    /// Opens (creating if needed) the database at `db_dir`. Seed entries the database does not
    /// hold yet are added (all of them on first open); stored ones — balances, token statuses —
    /// are never overwritten. Fails with [`AcquirerError::Locked`] when another process holds
    /// the database.
    pub fn open(db_dir: &Path, seed: &Seed, faults: Faults) -> Result<Acquirer, AcquirerError> {
        {
            // Owner-only: the directory holds card data (sealed) and its key store.
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let io = |e| AcquirerError::io(format!("creating {}", db_dir.display()), e);
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(db_dir).map_err(io)?;
            std::fs::set_permissions(db_dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let at_rest = AtRest::load_or_create(db_dir)?;
        let db = sled::Config::new().path(db_dir).open().map_err(|e| open_error(db_dir, e))?;
        let issuers = issuers::builtin().map_err(|e| AcquirerError::Seed(format!("test issuers: {e}")))?;
        let acq = Acquirer {
            vault: db.open_tree("vault")?,
            accounts: db.open_tree("accounts")?,
            auths: db.open_tree("auths")?,
            settlements: db.open_tree("settlements")?,
            batches: db.open_tree("batches")?,
            stans: db.open_tree("stans")?,
            meta: db.open_tree("meta")?,
            cryptograms: db.open_tree("cryptograms")?,
            deny_cards: db.open_tree("deny_cards")?,
            deny_log: db.open_tree("deny_log")?,
            keys: crate::link::KeyStore::open(db_dir, &db)?,
            db,
            issuers,
            faults,
            requests: AtomicU64::new(0),
            lock: Mutex::new(()),
            today: None,
            next_fault: Mutex::new(None),
            transit: seed.transit.clone(),
            terminals: seed.terminals(),
            group: Default::default(),
            seq: Mutex::new((1, 0)),
            at_rest,
        };
        acq.check_schema(db_dir)?;
        acq.apply_seed(seed)?;
        Ok(acq)
    }

    /// A new database gets [`SCHEMA`] and the key's check value; an existing one must have
    /// both, else it is refused ([`AcquirerError::Schema`]).
    fn check_schema(&self, dir: &Path) -> Result<(), AcquirerError> {
        let refuse = |problem: String| Err(AcquirerError::Schema { dir: dir.to_path_buf(), problem });
        let check = self.at_rest.check_value();
        match self.meta.get("schema")? {
            None => {
                let used = self.meta.get("seeded_at")?.is_some() || !self.accounts.is_empty() || !self.vault.is_empty() || !self.auths.is_empty();
                if used {
                    return refuse("written by an older acquirer that kept card numbers in clear (no schema number)".into());
                }
                self.meta.insert("key_check", &check[..])?;
                self.meta.insert("schema", &SCHEMA.to_be_bytes()[..])?;
                self.db.flush()?;
                Ok(())
            }
            Some(v) => {
                let found = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).unwrap_or(0);
                if found != SCHEMA {
                    return refuse(format!("schema {found}, this acquirer reads schema {SCHEMA}"));
                }
                if self.meta.get("key_check")?.as_deref() != Some(&check[..]) {
                    return refuse(format!("its card data was sealed under another key than {}", dir.join(crate::at_rest::KEY_FILE).display()));
                }
                Ok(())
            }
        }
    }

    /// The stored form of a token (funding PAN sealed) under its index.
    fn encode_token(&self, index: &[u8], rec: &TokenRecord) -> Result<Vec<u8>, AcquirerError> {
        let mut stored = rec.clone();
        stored.funding_pan = self.at_rest.seal(&aad("vault", "funding_pan", index), &rec.funding_pan)?;
        encode(&stored)
    }

    /// The stored form of an authorization record (PAN and account sealed) under its key.
    fn encode_auth(&self, key: &[u8], rec: &AuthRecord) -> Result<Vec<u8>, AcquirerError> {
        let mut stored = rec.clone();
        stored.pan = self.at_rest.seal(&aad("auths", "pan", key), &rec.pan)?;
        stored.account = rec.account.as_deref().map(|a| self.at_rest.seal(&aad("auths", "account", key), a)).transpose()?;
        encode(&stored)
    }

    fn decode_auth(&self, key: &[u8], v: &[u8]) -> Result<AuthRecord, AcquirerError> {
        let mut rec: AuthRecord = decode("auths", v)?;
        rec.pan = self.at_rest.open(&aad("auths", "pan", key), &rec.pan)?;
        rec.account = rec.account.as_deref().map(|a| self.at_rest.open(&aad("auths", "account", key), a)).transpose()?;
        Ok(rec)
    }

    /// Writes an account under the blind index of its PAN (tests set up balances with it).
    #[cfg(test)]
    pub(crate) fn put_account(&self, pan: &str, account: &Account) -> Result<(), AcquirerError> {
        self.accounts.insert(&self.at_rest.index(pan)[..], encode(account)?)?;
        Ok(())
    }

    fn apply_seed(&self, seed: &Seed) -> Result<(), AcquirerError> {
        let _g = self.guard();
        let mut added = 0usize;
        for a in &seed.accounts {
            let index = self.at_rest.index(&a.pan);
            if !self.accounts.contains_key(index)? {
                let rec =
                    Account { balance: a.balance, currency: a.currency.clone(), expiry: a.expiry.clone(), status: a.status, pin_offset: a.pin_offset.clone() };
                self.accounts.insert(&index[..], encode(&rec)?)?;
                added += 1;
            } else if let (Some(offset), Some(mut rec)) = (&a.pin_offset, self.account(&a.pan)?) {
                // A database made before PIN data: the seed's offset is added, a stored one kept.
                if rec.pin_offset.is_none() {
                    rec.pin_offset = Some(offset.clone());
                    self.accounts.insert(&index[..], encode(&rec)?)?;
                    added += 1;
                }
            }
        }
        for t in &seed.tokens {
            let index = self.at_rest.index(&t.token);
            if !self.vault.contains_key(index)? {
                let rec = TokenRecord { funding_pan: t.funding_pan.clone(), status: t.status, expiry: t.expiry.clone(), par: t.par.clone(), domain: t.domain };
                self.vault.insert(&index[..], self.encode_token(&index, &rec)?)?;
                added += 1;
            }
        }
        if self.meta.get("seeded_at")?.is_none() {
            self.meta.insert("seeded_at", unix_now().to_string().as_bytes())?;
        }
        if added > 0 {
            tracing::info!(added, "acquirer seeded vault and accounts");
            self.db.flush()?;
        }
        Ok(())
    }

    /// Takes the one-shot fault set for the next transaction request, if any.
    pub(crate) fn take_next_fault(&self) -> Option<crate::next_fault::NextFault> {
        self.next_fault.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// The fault settings [`crate::serve`] applies.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    pub(crate) fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current month, YYMM (UTC).
    pub(crate) fn today_yymm(&self) -> u32 {
        self.today.unwrap_or_else(|| {
            let (y, m, _) = utc_date(unix_now());
            (y % 100) as u32 * 100 + m
        })
    }

    /// Pins the current month (YYMM) for expiry checks.
    #[cfg(test)]
    pub(crate) fn set_today(&mut self, yymm: u32) {
        self.today = Some(yymm);
    }

    /// The vault entry of a token PAN.
    pub fn token(&self, token: &str) -> Result<Option<TokenRecord>, AcquirerError> {
        let index = self.at_rest.index(token);
        let Some(v) = self.vault.get(index)? else { return Ok(None) };
        let mut rec: TokenRecord = decode("vault", &v)?;
        rec.funding_pan = self.at_rest.open(&aad("vault", "funding_pan", &index), &rec.funding_pan)?;
        Ok(Some(rec))
    }

    /// The account of a PAN (funding PAN or plastic card PAN).
    pub fn account(&self, pan: &str) -> Result<Option<Account>, AcquirerError> {
        self.accounts.get(self.at_rest.index(pan))?.map(|v| decode("accounts", &v)).transpose()
    }

    /// The balance (minor units) of the account a PAN spends from: the funding account of a
    /// token, or the card's own account.
    pub fn balance(&self, pan: &str) -> Result<Option<i64>, AcquirerError> {
        let account = match self.token(pan)? {
            Some(t) => t.funding_pan,
            None => pan.to_string(),
        };
        Ok(self.account(&account)?.map(|a| a.balance))
    }

    /// Blocks (every authorization declined 05) or unblocks the account a PAN spends from (the
    /// funding account of a token).
    pub fn set_account_status(&self, pan: &str, status: AccountStatus) -> Result<(), AcquirerError> {
        {
            let _g = self.guard();
            let account = match self.token(pan)? {
                Some(t) => t.funding_pan,
                None => pan.to_string(),
            };
            let mut rec = self.account(&account)?.ok_or_else(|| AcquirerError::Token(format!("unknown card or token {}", mask_pan(pan))))?;
            rec.status = status;
            self.accounts.insert(&self.at_rest.index(&account)[..], encode(&rec)?)?;
            tracing::info!(account = %mask_pan(&account), ?status, "account status changed");
        }
        self.flush()
    }

    pub(crate) fn auth(&self, key: &[u8]) -> Result<Option<AuthRecord>, AcquirerError> {
        self.auths.get(key)?.map(|v| self.decode_auth(key, &v)).transpose()
    }

    /// Authorization records of one terminal (key prefix = the 8-character TID).
    pub(crate) fn auths_of(&self, tid8: &[u8]) -> Result<Vec<(sled::IVec, AuthRecord)>, AcquirerError> {
        self.auths
            .scan_prefix(tid8)
            .map(|kv| {
                let (k, v) = kv?;
                let rec = self.decode_auth(&k, &v)?;
                Ok((k, rec))
            })
            .collect()
    }

    /// The next number of the approval sequence (1, 2, 3...): RRNs and authorization codes.
    /// `meta` keeps the last number reserved, a block of [`SEQ_BLOCK`] at a time: one write
    /// per block instead of one per approval. A reservation is made durable by the same flush
    /// as the first record using it, so a number is never given twice; a restart skips what was
    /// reserved and unused (at most a block), keeping the sequence nearly dense (unlike sled's
    /// `generate_id`), so the 8 digits an RRN keeps of it do not wrap after a few restarts.
    pub(crate) fn next_seq(&self) -> Result<u64, AcquirerError> {
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        if seq.0 > seq.1 {
            let read = |b: Option<&[u8]>| b.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
            let new = self.meta.update_and_fetch("approval_seq", |old| Some(read(old).wrapping_add(SEQ_BLOCK).to_be_bytes().to_vec()))?;
            let last = read(new.as_deref());
            *seq = (last.saturating_sub(SEQ_BLOCK) + 1, last);
        }
        let n = seq.0;
        seq.0 += 1;
        Ok(n)
    }

    /// Writes an authorization record and, when given, an account, atomically.
    pub(crate) fn commit(&self, key: &[u8], rec: &AuthRecord, account: Option<(&str, &Account)>) -> Result<(), AcquirerError> {
        use sled::transaction::Transactional;
        let rec_bytes = self.encode_auth(key, rec)?;
        let Some(acct) = account.map(|(pan, a)| encode(a).map(|b| (self.at_rest.index(pan).to_vec(), b))).transpose()? else {
            // One key in one tree is atomic by itself: no transaction (sled's multi-tree
            // transactions were the largest single cost of an authorization under load).
            self.auths.insert(key, rec_bytes)?;
            return Ok(());
        };
        let acct = Some(acct);
        (&self.auths, &self.accounts)
            .transaction(|(auths, accounts)| {
                auths.insert(key, rec_bytes.clone())?;
                if let Some((k, v)) = &acct {
                    accounts.insert(k.clone(), v.clone())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// The open batch of a terminal (8-character id): [`BatchNumber::FIRST`] until one closes.
    pub(crate) fn open_batch(&self, tid8: &[u8]) -> Result<BatchNumber, AcquirerError> {
        match self.batches.get(tid8)? {
            None => Ok(BatchNumber::FIRST),
            Some(v) => <[u8; 4]>::try_from(v.as_ref())
                .ok()
                .and_then(|b| BatchNumber::new(u32::from_be_bytes(b)))
                .ok_or(AcquirerError::Corrupt { tree: "batches", problem: "not a batch number".into() }),
        }
    }

    /// The reconciliation that closed batch `batch` of a terminal, if it is closed.
    pub(crate) fn closed_batch(&self, tid8: &[u8], batch: BatchNumber) -> Result<Option<SettlementRecord>, AcquirerError> {
        self.settlements.get(settlement_key(tid8, batch))?.map(|v| decode("settlements", &v)).transpose()
    }

    /// Closes a batch: marks its records settled, stores the settlement and opens the next
    /// batch, atomically.
    pub(crate) fn commit_settlement(
        &self,
        tid8: &[u8],
        keys: &[sled::IVec],
        records: &[AuthRecord],
        settlement: &SettlementRecord,
    ) -> Result<(), AcquirerError> {
        use sled::transaction::Transactional;
        let closed = BatchNumber::new(settlement.batch).ok_or(AcquirerError::Corrupt { tree: "settlements", problem: "batch 0 closed".into() })?;
        let encoded = keys.iter().zip(records).map(|(k, r)| self.encode_auth(k, r)).collect::<Result<Vec<_>, _>>()?;
        let skey = settlement_key(tid8, closed);
        let sval = encode(settlement)?;
        let next = closed.next().get().to_be_bytes();
        (&self.auths, &self.settlements, &self.batches)
            .transaction(|(auths, settlements, batches)| {
                for (k, v) in keys.iter().zip(&encoded) {
                    auths.insert(k.clone(), v.clone())?;
                }
                settlements.insert(skey.clone(), sval.clone())?;
                batches.insert(tid8, &next[..])?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(tx_error)
    }

    /// The newest STAN seen from a terminal (8-character id), 0 if none.
    pub(crate) fn last_stan(&self, tid8: &[u8]) -> Result<u32, AcquirerError> {
        Ok(self.stans.get(tid8)?.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok()).map_or(0, u32::from_be_bytes))
    }

    /// Records that a terminal sent a request with this STAN (1..=999999): kept when it is newer
    /// than the one known, in the 000001-999999 cycle ([`stan_is_newer`]). Not flushed by itself.
    pub(crate) fn note_stan(&self, tid8: &[u8], stan: u32) -> Result<(), AcquirerError> {
        self.stans.fetch_and_update(tid8, |old| {
            let known = old.and_then(|v| <[u8; 4]>::try_from(v).ok()).map_or(0, u32::from_be_bytes);
            let keep = if stan_is_newer(stan, known) { stan } else { known };
            Some(keep.to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// Durably writes everything so far (before an answer that moved money leaves).
    /// Makes everything written so far durable — one fsync for every request waiting at the
    /// same time ([`crate::group_commit`]). Inside [`Acquirer::deferring`] it only takes a
    /// ticket: the caller waits for it ([`Acquirer::durable`]) before answering.
    pub(crate) fn flush(&self) -> Result<(), AcquirerError> {
        if DEFERRED.with(|d| d.get().is_some()) {
            let t = self.group.ticket();
            DEFERRED.with(|d| d.set(Some(t)));
            return Ok(());
        }
        self.group.wait(|| self.db.flush().map(|_| ()).map_err(AcquirerError::from))
    }

    /// Runs `f` with its flushes deferred: `f`'s result and the ticket that makes what it
    /// wrote durable (`None`: it asked for no flush). The server answers only after
    /// [`Acquirer::durable`] of that ticket, and meanwhile handles other requests on the same
    /// thread instead of blocking it.
    pub(crate) fn deferring<T>(&self, f: impl FnOnce() -> T) -> (T, Option<u64>) {
        /// Puts the thread back to flushing itself even if `f` panics.
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                DEFERRED.with(|d| d.set(None));
            }
        }
        DEFERRED.with(|d| d.set(Some(0)));
        let _reset = Reset;
        let r = f();
        let ticket = DEFERRED.with(|d| d.get()).filter(|t| *t > 0);
        (r, ticket)
    }

    /// Waits until `ticket` is durable: a flush that started after it has finished. Leads a
    /// flush on the blocking pool when none is running; an error if the flush it led failed.
    pub(crate) async fn durable(self: &std::sync::Arc<Self>, ticket: u64) -> Result<(), AcquirerError> {
        let mut rx = self.group.subscribe();
        loop {
            if self.group.is_durable(ticket) {
                return Ok(());
            }
            // Let the requests already runnable on this runtime write their records first: the
            // flush this task may lead then covers them too (more answers per fsync, no timer).
            tokio::task::yield_now().await;
            if self.group.is_durable(ticket) {
                return Ok(());
            }
            if let Some(target) = self.group.try_lead() {
                let me = self.clone();
                let flushed = tokio::task::spawn_blocking(move || me.group.lead(target, || me.db.flush().map(|_| ()).map_err(AcquirerError::from))).await;
                match flushed {
                    Ok(r) => r?,
                    Err(e) => return Err(AcquirerError::io("the flush task", std::io::Error::other(e.to_string()))),
                }
                continue;
            }
            // A flush is running (maybe begun before our writes): wait for it to end.
            if rx.changed().await.is_err() {
                return Err(AcquirerError::io("waiting for a flush", std::io::Error::other("the acquirer is gone")));
            }
        }
    }

    /// Group commit so far: (fsyncs, requests they made durable).
    pub fn durability_counts(&self) -> (u64, u64) {
        self.group.counts()
    }

    /// Changes a token's lifecycle state and flushes. Suspending or resuming a token already in
    /// that state is accepted; a deleted token stays deleted ("deleted tokens cannot be
    /// resumed" / "... suspended").
    pub fn set_token_status(&self, token: &str, status: TokenStatus) -> Result<(), AcquirerError> {
        {
            let _g = self.guard();
            let mut rec = self.token(token)?.ok_or_else(|| AcquirerError::Token(format!("unknown token {}", mask_pan(token))))?;
            if rec.status == TokenStatus::Deleted && status != TokenStatus::Deleted {
                return Err(AcquirerError::Token(match status {
                    TokenStatus::Active => "deleted tokens cannot be resumed".into(),
                    _ => "deleted tokens cannot be suspended".into(),
                }));
            }
            let before = rec.status;
            rec.status = status;
            let index = self.at_rest.index(token);
            self.vault.insert(&index[..], self.encode_token(&index, &rec)?)?;
            tracing::info!(token = %mask_pan(token), from = before.as_str(), to = status.as_str(), "token status changed");
        }
        self.flush()
    }

    /// One admin line: `token suspend|resume|delete|status TOKEN`, `account balance|block|unblock|
    /// pin-reset PAN`, or `faults …` (a one-shot fault, [`crate::next_fault`]).
    /// Answers `ok` (`ok <value>` for queries) or `error: <reason>`; never fails otherwise.
    pub fn admin_line(&self, line: &str) -> String {
        match self.admin_apply(line) {
            Ok(answer) => answer,
            Err(e) => format!("error: {e}"),
        }
    }

    fn admin_apply(&self, line: &str) -> Result<String, AcquirerError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let usage = || {
            AcquirerError::Admin(
                "expected `token suspend|resume|delete|status TOKEN`, `account balance|block|unblock|pin-reset PAN`, `deny add|remove|status PAN` or `faults [delay=MS] [drop] [close] [code=XX]|clear`".into(),
            )
        };
        match words.as_slice() {
            ["token", _, token] | ["account", _, token] if !crate::seed::valid_pan(token) => {
                Err(AcquirerError::Admin(format!("{} is not a PAN (12 to 19 digits)", mask_pan(token))))
            }
            ["token", action, token] => {
                let status = match *action {
                    "suspend" => TokenStatus::Suspended,
                    "resume" => TokenStatus::Active,
                    "delete" => TokenStatus::Deleted,
                    "status" => {
                        let rec = self.token(token)?.ok_or_else(|| AcquirerError::Token(format!("unknown token {}", mask_pan(token))))?;
                        return Ok(format!("ok {}", rec.status.as_str()));
                    }
                    _ => return Err(usage()),
                };
                self.set_token_status(token, status)?;
                Ok("ok".into())
            }
            ["account", verb @ ("block" | "unblock"), pan] => {
                self.set_account_status(pan, if *verb == "block" { AccountStatus::Blocked } else { AccountStatus::Active })?;
                Ok("ok".into())
            }
            ["faults", rest @ ..] => {
                let f = crate::next_fault::NextFault::parse(rest).map_err(AcquirerError::Admin)?;
                *self.next_fault.lock().unwrap_or_else(|p| p.into_inner()) = f;
                Ok("ok".into())
            }
            ["deny", verb @ ("add" | "remove" | "status"), pan] => {
                if !crate::seed::valid_pan(pan) {
                    return Err(AcquirerError::Admin(format!("{} is not a PAN (12 to 19 digits)", mask_pan(pan))));
                }
                match *verb {
                    "add" => {
                        self.deny_add(pan, crate::deny::DenySource::Admin)?;
                    }
                    "remove" => {
                        self.deny_remove(pan, None)?;
                    }
                    _ => {
                        return Ok(match self.denied(pan)? {
                            Some(s) => format!(
                                "ok denied {} (version {})",
                                if s == crate::deny::DenySource::Admin { "admin" } else { "declined" },
                                self.deny_version()?
                            ),
                            None => format!("ok clear (version {})", self.deny_version()?),
                        })
                    }
                }
                Ok(format!("ok version {}", self.deny_version()?))
            }
            ["account", "pin-reset", pan] => {
                self.pin_reset(pan)?;
                Ok("ok".into())
            }
            ["account", "balance", pan] => match self.balance(pan)? {
                Some(b) => Ok(format!("ok {b}")),
                None => Err(AcquirerError::Token(format!("unknown card or token {}", mask_pan(pan)))),
            },
            _ => Err(usage()),
        }
    }
}

fn tx_error(e: sled::transaction::TransactionError<()>) -> AcquirerError {
    match e {
        sled::transaction::TransactionError::Storage(e) => AcquirerError::Db(e),
        sled::transaction::TransactionError::Abort(()) => AcquirerError::Corrupt { tree: "(transaction)", problem: "aborted".into() },
    }
}

/// `settlements` key: terminal id (8) ‖ batch (big-endian u32). (Before batches, the key was
/// terminal id ‖ STAN as a big-endian u64: 16 bytes, never equal to these 12.)
fn settlement_key(tid8: &[u8], batch: BatchNumber) -> Vec<u8> {
    let mut k = tid8.to_vec();
    k.extend_from_slice(&batch.get().to_be_bytes());
    k
}

/// Whether STAN `stan` comes after `known` in the terminal's 000001-999999 cycle (serial number
/// arithmetic: at most half a cycle ahead), so that late uploads (advices, repeats) of older
/// STANs and the original STAN a reversal carries do not move the position back. `known` 0 =
/// nothing seen yet.
pub(crate) fn stan_is_newer(stan: u32, known: u32) -> bool {
    const CYCLE: u32 = 999_999;
    if known == 0 {
        return stan != 0;
    }
    let ahead = (stan + CYCLE - known) % CYCLE;
    ahead != 0 && ahead < CYCLE / 2
}
