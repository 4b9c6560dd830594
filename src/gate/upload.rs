//! The gate's back-office link (issue 11 §1): the background uploader and the deny-list sync.
//!
//! - **Deferred authorizations.** A card that asked for an authorization (ARQC) and got in under
//!   the `defer` policy is queued before the gate opens ([`super::lane`]); the uploader sends it
//!   as a 0200 with the tap's field 55 and DE 4 = the amount its cryptogram covers (9F02).
//!   Approved → the card's own deny entry comes off (debt recovered); declined → the card goes
//!   on the gate's deny list (UnionPay "deferred online": a decline denies the card).
//! - **Aggregates.** The offline fares of one card (TC, fDDA verified) go up as one 0220 advice:
//!   the first tap's TC in field 55, DE 4 = the total, DE 62 = `AGGnnn` (the number of taps),
//!   DE 18 = 4111. The aggregator never closes an aggregate above the cumulative spend limit,
//!   and the acquirer refuses one above it (docs/gate.md "Back office").
//! - **In order, at most once.** Every queued item has its local date / time from the tap and
//!   its STAN from its first send (after the sign-on, which tells where the acquirer has the
//!   gate's STANs: a gate whose journal was reset does not reuse one), kept for every repeat, so a
//!   repeat after a lost answer is the same request (the acquirer answers it as the first time,
//!   posting nothing twice). An item is taken off the queue only
//!   with the host's answer durably in the gate journal (tree `uploads_done`, with the deny
//!   entry it makes, in one transaction). A host that does not answer is retried with backoff;
//!   the gate loop never waits for it.
//! - **Deny-list sync.** At start and every `deny_list.sync_s` seconds: 0800 DE 70 = 380, DE 62
//!   = the version the gate holds ([`host_contract::deny_sync`]); a delta applies on top of it,
//!   a gap asks the full list. The synced list is kept in the gate journal (`meta`
//!   `deny_host`), so a gate that restarts with the host down still refuses those cards.

use super::aggregate::CloseReason;
use super::decision::Settlement;
use super::deny::{CardKey, Delta, DenyError, DenyList, DenyReason, FullList};
use super::lane::Upload;
use crate::host::{HostError, HostLink};
use crate::online::Identity;
use host_contract::deny_sync::{Chunk, Kind, Request};
use host_contract::ResponseCode;
use iso8583::{field, Message, Mti};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// The card data a request needs. Kept only in the gate journal (owner-only, like the
/// terminal's journal); `Debug` masks the PAN.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardData {
    pub pan: String,
    pub expiry_yymm: Option<String>,
    /// 5F34 as the card holds it (BCD).
    pub psn: Option<u8>,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardData({})", kernels::types::mask_pan(&self.pan))
    }
}

/// One item of the upload queue (tree `uploads`, in queue order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// What the passenger's JSON line showed.
    pub upload: Upload,
    pub card_data: CardData,
    /// DE 11: 0 until the item is first sent, then kept for every repeat.
    pub stan: u32,
    /// DE 12 / 13 (local hhmmss, MMDD) of the tap that queued it.
    pub local_time: String,
    pub local_date: String,
    /// DE 4, minor units.
    pub amount: u64,
    /// Sends so far (a repeat after a lost answer is the same request).
    #[serde(default)]
    pub attempts: u32,
}

/// An item the host answered (tree `uploads_done`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub item: Queued,
    pub response_code: String,
    pub at: super::UnixSeconds,
}

impl Queued {
    /// The request: a 0200 for a deferred tap, a 0220 for an aggregate (docs/gate.md).
    pub fn message(&self, id: &Identity) -> Message {
        let deferred = self.upload.first.settlement == Settlement::Deferred;
        let mti = match (deferred, self.attempts) {
            (true, _) => Mti::FINANCIAL_REQUEST,
            (false, 0) => Mti::FINANCIAL_ADVICE,
            // A repeat advice (ISO 8583 origin 1: 0221), answered as the original.
            (false, _) => Mti::from_ascii(*b"0221").unwrap_or(Mti::FINANCIAL_ADVICE),
        };
        let mut m = Message::new(mti);
        m.set_str(field::PAN, &self.card_data.pan)
            .set_str(field::PROCESSING_CODE, host_contract::processing::PURCHASE)
            .set_str(field::AMOUNT, &format!("{:012}", self.amount))
            .set_str(field::TRANSMISSION_DATE_TIME, &crate::online::transmission_date_time())
            .set_str(field::STAN, &format!("{:06}", self.stan))
            .set_str(field::LOCAL_TIME, &self.local_time)
            .set_str(field::LOCAL_DATE, &self.local_date)
            .set_str(field::MERCHANT_TYPE, host_contract::transit::MCC)
            .set_str(field::POS_ENTRY_MODE, host_contract::ENTRY_MODE_CONTACTLESS)
            .set_str(field::POS_CONDITION_CODE, "00")
            .set_str(field::TERMINAL_ID, &id.terminal_id)
            .set_str(field::MERCHANT_ID, &id.merchant_id)
            .set_str(field::CURRENCY_CODE, &id.currency);
        if let Some(e) = &self.card_data.expiry_yymm {
            m.set_str(field::EXPIRY_DATE, e);
        }
        if let Some(psn) = self.card_data.psn {
            m.set_str(field::CARD_SEQUENCE_NUMBER, &format!("{:03}", kernels::types::from_bcd(&[psn]).unwrap_or(0)));
        }
        if let Some(icc) = self.upload.first.icc_data.as_deref().and_then(|h| hex::decode(h).ok()) {
            m.set(field::ICC_DATA, icc);
        }
        if !deferred {
            m.set_str(field::RESERVED_PRIVATE_62, &host_contract::transit::aggregate_de62(u32::try_from(self.upload.taps).unwrap_or(999)));
        }
        m
    }
}

/// The amount a deferred tap's cryptogram covers: 9F02 of its field 55 (else `fallback`).
pub fn cryptogram_amount(icc_hex: Option<&str>, fallback: u64) -> u64 {
    icc_hex
        .and_then(|h| hex::decode(h).ok())
        .and_then(|icc| kernels::tlv::find(&icc, kernels::tag::AMOUNT_AUTHORISED).ok().flatten().and_then(kernels::types::from_bcd))
        .unwrap_or(fallback)
}

/// What an answer means for the queued item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Approved: done; the card's own deny entry comes off.
    Approved,
    /// Declined for the card: done; the card goes on the gate's deny list.
    Declined(ResponseCode),
    /// Refused for a reason that is not the card's (format, duplicate): done, nothing denied.
    Failed(ResponseCode),
    /// The issuer or the host is not there (91, 96): sent again later.
    Retry,
}

/// The meaning of DE 39 for a gate upload.
pub fn verdict(rc: ResponseCode) -> Verdict {
    use ResponseCode as R;
    match rc {
        R::Approved => Verdict::Approved,
        R::IssuerUnavailable | R::SystemError => Verdict::Retry,
        // The gate's request was wrong (an aggregate above the limit, a format error): nothing
        // to hold against the card.
        R::InvalidAmount | R::FormatError | R::Duplicate | R::OriginalNotFound | R::TotalsDiffer => Verdict::Failed(rc),
        _ => Verdict::Declined(rc),
    }
}

/// The next STAN of the gate (000001-999999, kept in `meta`): queued uploads, sign-on, echo, sync.
pub fn next_stan(meta: &sled::Tree) -> Result<u32, sled::Error> {
    let read = |b: Option<&[u8]>| b.and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_be_bytes);
    let new = meta.update_and_fetch("stan", |old| Some((read(old) % 999_999 + 1).to_be_bytes().to_vec()))?;
    Ok(read(new.as_deref()))
}

/// Moves the gate's STAN counter up to `last` (the acquirer's newest STAN from the gate, from
/// the sign-on), so a gate whose journal was reset does not reuse a STAN the acquirer has.
pub fn stan_at_least(meta: &sled::Tree, last: u32) -> Result<(), sled::Error> {
    let read = |b: Option<&[u8]>| b.and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_be_bytes);
    meta.fetch_and_update("stan", |old| Some(read(old).max(last.min(999_999)).to_be_bytes().to_vec()))?;
    Ok(())
}

/// What the uploader tells the gate loop about its deny list (applied before the next decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyUpdate {
    /// A deferred or aggregated authorization was declined.
    Local(CardKey, DenyReason),
    /// An authorization of the card was approved: its own entry comes off.
    Approved(CardKey),
    /// The acquirer's list after a sync.
    Host { version: u64, keys: Vec<CardKey> },
}

impl DenyUpdate {
    pub fn apply(self, list: &mut DenyList) {
        match self {
            DenyUpdate::Local(k, why) => list.deny_local(k, why),
            DenyUpdate::Approved(k) => {
                list.approved(&k);
            }
            DenyUpdate::Host { version, keys } => list.replace_host(version, keys),
        }
    }
}

/// Counters of the uploader.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub approved: AtomicU64,
    pub declined: AtomicU64,
    pub failed: AtomicU64,
    pub syncs: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("gate journal: {0}")]
    Journal(#[from] sled::Error),
    #[error("gate journal record: {0}")]
    Record(#[from] serde_json::Error),
    #[error("host refused the deny-list request: {0}")]
    Refused(ResponseCode),
    #[error("deny-list answer: {0}")]
    BadChunk(String),
    #[error(transparent)]
    Deny(#[from] DenyError),
}

/// A received list, its chunks put together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub kind: Kind,
    pub from: u64,
    pub to: u64,
    /// (added, key).
    pub entries: Vec<(bool, CardKey)>,
}

/// The pieces of a received list, put together ([`Chunk`]s of one `to`, in order).
pub fn assemble(chunks: &[Chunk]) -> Result<Option<Received>, UploadError> {
    let Some(first) = chunks.first() else { return Ok(None) };
    let bad = |s: &str| UploadError::BadChunk(s.into());
    if chunks.len() != usize::from(first.chunks.max(1)) {
        return Err(bad("chunks missing"));
    }
    let mut entries = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        if (c.kind, c.from, c.to, c.chunks, usize::from(c.chunk)) != (first.kind, first.from, first.to, first.chunks, i) {
            return Err(bad("chunks of different lists"));
        }
        entries.extend(c.entries.iter().map(|(add, k)| (*add, CardKey(*k))));
    }
    Ok(Some(Received { kind: first.kind, from: first.from, to: first.to, entries }))
}

/// Applies a received list to `list` (the acquirer's part): full, delta on top of its version
/// (a gap is [`DenyError::Gap`]: the caller asks the full list), or nothing.
pub fn apply_list(list: &mut DenyList, got: Received) -> Result<bool, DenyError> {
    let Received { kind, from, to, entries } = got;
    match kind {
        Kind::Current => Ok(false),
        Kind::Full => {
            list.apply_full(to, entries.into_iter().filter(|(add, _)| *add).map(|(_, k)| k))?;
            Ok(true)
        }
        Kind::Delta => {
            let (add, remove): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(a, _)| *a);
            list.apply_delta(&Delta { from, to, add: add.into_iter().map(|(_, k)| k).collect(), remove: remove.into_iter().map(|(_, k)| k).collect() })?;
            Ok(true)
        }
    }
}

/// Backoff after a failed attempt: 200 ms doubling to 10 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << failures.min(6)).min(10_000))
}

/// The uploader: owns the host link, reads the queue from the gate journal.
pub struct Uploader {
    db: sled::Db,
    queue: sled::Tree,
    done: sled::Tree,
    deny_local: sled::Tree,
    meta: sled::Tree,
    link: HostLink,
    id: Identity,
    tx: Sender<DenyUpdate>,
    pub stats: Arc<Stats>,
    /// The acquirer's part of the gate's list, as last synced.
    mirror: DenyList,
    sync_every: Duration,
}

/// The synced list as kept in the gate journal.
pub fn load_host_list(db: &sled::Db) -> Result<Option<FullList>, UploadError> {
    Ok(db.open_tree("meta")?.get("deny_host")?.map(|v| serde_json::from_slice(&v)).transpose()?)
}

impl Uploader {
    /// Keys and wire format of the back-office link as config/host.toml says (issue 12): keyed
    /// and MAC'd unless the host is configured `mac = false`.
    pub fn configure_link(&mut self, host: &crate::settings::HostSettings, keystore: &std::path::Path) {
        self.link.configure(host, keystore);
    }

    /// `have`: the acquirer list the gate loop holds (version and keys), the start of the mirror.
    pub fn new(
        db: sled::Db,
        link_to: std::net::SocketAddr,
        timeout: Duration,
        id: Identity,
        tx: Sender<DenyUpdate>,
        have: &DenyList,
        sync_every: Duration,
    ) -> Result<Uploader, UploadError> {
        let meta = db.open_tree("meta")?;
        let m = meta.clone();
        let link =
            HostLink::new(link_to, timeout, &id.terminal_id, Box::new(move || next_stan(&m).unwrap_or(1)), Box::new(crate::online::transmission_date_time));
        let mut mirror = DenyList::new();
        if have.version() > 0 {
            mirror.apply_full(have.version(), have.host_keys().copied())?;
        }
        Ok(Uploader {
            queue: db.open_tree("uploads")?,
            done: db.open_tree("uploads_done")?,
            deny_local: db.open_tree("deny_local")?,
            meta,
            db,
            link,
            id,
            tx,
            stats: Arc::new(Stats::default()),
            mirror,
            sync_every,
        })
    }

    /// Items still queued.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Sends the queue in order until it is empty (`Ok`) or the host fails (`Err`: the item
    /// stays first in the queue).
    pub async fn drain(&mut self) -> Result<(), UploadError> {
        while let Some((k, v)) = self.queue.first()? {
            let mut item: Queued = match serde_json::from_slice(&v) {
                Ok(i) => i,
                Err(e) => {
                    // A record this build cannot read must not block the queue: set aside.
                    tracing::error!(error = %e, "unreadable upload record: moved to uploads_unreadable");
                    self.db.open_tree("uploads_unreadable")?.insert(&k, v)?;
                    self.queue.remove(&k)?;
                    continue;
                }
            };
            if item.stan == 0 {
                // Signed on first: the acquirer's newest STAN of this gate comes before ours.
                self.link.ready().await?;
                if let Some(p) = self.link.take_position() {
                    stan_at_least(&self.meta, p.last_stan)?;
                }
                item.stan = next_stan(&self.meta)?;
                self.queue.insert(&k, serde_json::to_vec(&item)?)?;
                self.db.flush_async().await?;
            }
            let req = item.message(&self.id);
            let sent = self.link.exchange(&req).await;
            // Counted as sent (the next try is a repeat) whatever came back.
            item.attempts += 1;
            self.queue.insert(&k, serde_json::to_vec(&item)?)?;
            let ans = sent?;
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            let rc = ans.response_code;
            let card = CardKey::from_hex(&item.upload.card)?;
            let v = verdict(rc);
            if v == Verdict::Retry {
                tracing::info!(stan = item.stan, rc = %rc, "host cannot answer now: upload kept for later");
                return Err(UploadError::Refused(rc));
            }
            let done = serde_json::to_vec(&Answered { item: item.clone(), response_code: rc.code().to_string(), at: crate::clock::unix_now() })?;
            let deny = match v {
                Verdict::Declined(_) => Some(serde_json::to_vec(&DenyReason::AuthorizationDeclined)?),
                _ => None,
            };
            // The answer, the queue and the deny entry move together, durably, before the
            // next item (and before the gate loop hears of it).
            {
                use sled::transaction::{ConflictableTransactionError, Transactional};
                (&self.queue, &self.done, &self.deny_local)
                    .transaction(|(q, d, l)| {
                        q.remove(&k)?;
                        d.insert(&k, done.clone())?;
                        match (&deny, v) {
                            (Some(why), _) => {
                                l.insert(&card.0[..], why.clone())?;
                            }
                            (None, Verdict::Approved) => {
                                l.remove(&card.0[..])?;
                            }
                            _ => {}
                        }
                        Ok::<(), ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| match e {
                        sled::transaction::TransactionError::Storage(e) => e,
                        sled::transaction::TransactionError::Abort(()) => sled::Error::Unsupported("aborted".into()),
                    })?;
            }
            self.db.flush_async().await?;
            let update = match v {
                Verdict::Approved => {
                    self.stats.approved.fetch_add(1, Ordering::Relaxed);
                    Some(DenyUpdate::Approved(card))
                }
                Verdict::Declined(rc) => {
                    self.stats.declined.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(pan = %item.upload.first.pan_masked.as_deref().unwrap_or("-"), rc = %rc, "authorization declined: the card goes on the deny list");
                    Some(DenyUpdate::Local(card, DenyReason::AuthorizationDeclined))
                }
                _ => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stan = item.stan, rc = %rc, "upload refused by the host");
                    None
                }
            };
            if let Some(u) = update {
                let _ = self.tx.send(u);
            }
        }
        Ok(())
    }

    /// Asks the list from version `have`, all its chunks.
    async fn fetch(&mut self, have: u64) -> Result<Option<Received>, UploadError> {
        let mut chunks = Vec::new();
        let mut at = 0;
        loop {
            let chunk = u16::try_from(chunks.len()).map_err(|_| UploadError::BadChunk("too many chunks".into()))?;
            let r = Request { have, at, chunk }.to_de62().ok_or_else(|| UploadError::BadChunk("version out of range".into()))?;
            let mut m = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
            m.set_str(field::TRANSMISSION_DATE_TIME, &crate::online::transmission_date_time())
                .set_str(field::STAN, &format!("{:06}", next_stan(&self.meta)?))
                .set_str(field::TERMINAL_ID, &self.id.terminal_id)
                .set_str(field::NETWORK_MANAGEMENT_CODE, host_contract::network::DENY_LIST)
                .set_str(field::RESERVED_PRIVATE_62, &r);
            let ans = self.link.exchange(&m).await?;
            if !ans.response_code.is_approved() {
                return Err(UploadError::Refused(ans.response_code));
            }
            let c = ans.private_62.as_deref().and_then(Chunk::parse_de62).ok_or_else(|| UploadError::BadChunk("DE 62 is not a deny-list chunk".into()))?;
            at = c.to;
            let last = usize::from(c.chunk) + 1 >= usize::from(c.chunks);
            chunks.push(c);
            if last {
                break;
            }
        }
        assemble(&chunks)
    }

    /// One sync: delta (or full) from the mirror's version; a gap asks the full list. When the
    /// list changed, it is kept in the gate journal and sent to the gate loop.
    pub async fn sync(&mut self) -> Result<bool, UploadError> {
        let have = self.mirror.version();
        let got = self.fetch(have).await?;
        let changed = match got.map(|g| apply_list(&mut self.mirror, g)) {
            None => false,
            Some(Ok(c)) => c,
            Some(Err(DenyError::Gap { .. } | DenyError::Stale { .. })) => {
                tracing::info!(have, "deny-list delta does not apply: asking the full list");
                let mut fresh = DenyList::new();
                if let Some(full) = self.fetch(0).await? {
                    apply_list(&mut fresh, full)?;
                }
                // The acquirer's list as it is now, even at a lower version (it was reset).
                self.mirror = fresh;
                true
            }
            Some(Err(e)) => return Err(e.into()),
        };
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        if changed {
            let keys: Vec<CardKey> = self.mirror.host_keys().copied().collect();
            let full = FullList { version: self.mirror.version(), keys: keys.iter().map(|k| k.to_hex()).collect() };
            self.meta.insert("deny_host", serde_json::to_vec(&full)?)?;
            self.db.flush_async().await?;
            tracing::info!(version = full.version, entries = keys.len(), "deny list synced");
            let _ = self.tx.send(DenyUpdate::Host { version: full.version, keys });
        }
        Ok(changed)
    }

    /// The background loop: drain the queue (retrying with backoff while the host fails), sync
    /// the deny list every `sync_every`. `stop` carries the moment to give up draining once
    /// the gate has stopped.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>) -> Arc<Stats> {
        let mut failures = 0u32;
        let mut next_sync = tokio::time::Instant::now() + self.sync_every;
        loop {
            let deadline = *stop.borrow();
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            if deadline.is_none() && now >= next_sync {
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, "deny-list sync failed");
                }
                next_sync = tokio::time::Instant::now() + self.sync_every;
            }
            let wait = match self.drain().await {
                Ok(()) => {
                    failures = 0;
                    if deadline.is_some() {
                        break;
                    }
                    Duration::from_millis(100)
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let b = backoff(failures);
                    tracing::info!(error = %e, pending = self.pending(), retry_in_ms = b.as_millis() as u64, "upload not done: retrying");
                    b
                }
            };
            let sleep = match deadline {
                Some(d) => wait.min(d.saturating_duration_since(tokio::time::Instant::now())),
                None => wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => {}
            }
        }
        self.stats
    }
}

/// The queued record of a deferred tap or a closed aggregate.
pub fn queued(upload: Upload, card_data: CardData, (local_time, local_date): (String, String)) -> Queued {
    let amount = match upload.first.settlement {
        Settlement::Deferred => cryptogram_amount(upload.first.icc_data.as_deref(), upload.total_minor),
        Settlement::Offline => upload.total_minor,
    };
    debug_assert!(upload.why != CloseReason::Deferred || upload.first.settlement == Settlement::Deferred);
    Queued { upload, card_data, stan: 0, local_time, local_date, amount, attempts: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::lane::FirstTap;

    fn id() -> Identity {
        Identity { terminal_id: "G0101E01".into(), merchant_id: "898310048160001".into(), currency: "156".into(), time_zone: jiff::tz::TimeZone::UTC }
    }

    fn item(settlement: Settlement, taps: usize, total: u64, icc: Option<&str>) -> Queued {
        let upload = Upload {
            card: CardKey([7; 32]).to_hex(),
            first: FirstTap { seq: 1, pan_masked: Some("623588******0017".into()), aid: None, kernel: None, icc_data: icc.map(str::to_string), settlement },
            opened_at: 0,
            taps,
            total_minor: total,
            why: if settlement == Settlement::Deferred { CloseReason::Deferred } else { CloseReason::Flush },
        };
        let mut q =
            queued(upload, CardData { pan: "6235880000000017".into(), expiry_yymm: Some("2912".into()), psn: Some(0x01) }, ("101500".into(), "1205".into()));
        q.stan = 42;
        q
    }

    #[test]
    fn a_deferred_tap_is_a_0200_for_what_its_cryptogram_covers() {
        // 9F02 = 2.00 in the tap's field 55.
        let q = item(Settlement::Deferred, 1, 300, Some("9F02060000000002009F2608AABBCCDDEEFF0011"));
        assert_eq!(q.amount, 200, "DE 4 is the cryptogram's amount, not more");
        let m = q.message(&id());
        assert_eq!(m.mti, Mti::FINANCIAL_REQUEST);
        assert_eq!(m.get_str(field::AMOUNT), Some("000000000200"));
        assert_eq!(m.get_str(field::MERCHANT_TYPE), Some("4111"));
        assert_eq!(
            (m.get_str(field::STAN), m.get_str(field::CARD_SEQUENCE_NUMBER), m.get_str(field::TERMINAL_ID)),
            (Some("000042"), Some("001"), Some("G0101E01"))
        );
        assert!(m.get(field::RESERVED_PRIVATE_62).is_none());
        assert!(m.get(field::ICC_DATA).is_some());
        assert!(!format!("{q:?}").contains("6235880000000017"), "Debug masks the PAN");
    }

    #[test]
    fn an_aggregate_is_a_0220_of_the_total_with_its_taps_and_repeats_are_0221() {
        let mut q = item(Settlement::Offline, 3, 600, Some("9F0206000000000200"));
        assert_eq!(q.amount, 600);
        let m = q.message(&id());
        assert_eq!((m.mti, m.get_str(field::AMOUNT), m.get_str(field::RESERVED_PRIVATE_62)), (Mti::FINANCIAL_ADVICE, Some("000000000600"), Some("AGG003")));
        q.attempts = 1;
        let again = q.message(&id());
        assert_eq!(again.mti.to_string(), "0221");
        // The repeat is the same request but for DE 7 and the MTI's origin digit.
        for f in [field::PAN, field::AMOUNT, field::STAN, field::LOCAL_TIME, field::LOCAL_DATE, field::ICC_DATA, field::RESERVED_PRIVATE_62] {
            assert_eq!(m.get(f), again.get(f), "DE {f}");
        }
    }

    #[test]
    fn verdicts_of_the_response_codes() {
        for rc in ResponseCode::all() {
            let v = verdict(rc);
            match rc.code() {
                "00" => assert_eq!(v, Verdict::Approved),
                "91" | "96" => assert_eq!(v, Verdict::Retry),
                "13" | "30" | "94" | "25" | "95" => assert_eq!(v, Verdict::Failed(rc)),
                _ => assert_eq!(v, Verdict::Declined(rc), "{rc}"),
            }
        }
    }

    #[test]
    fn stans_run_from_1_to_999999_and_wrap() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let meta = db.open_tree("meta").unwrap();
        assert_eq!((next_stan(&meta).unwrap(), next_stan(&meta).unwrap()), (1, 2));
        meta.insert("stan", &999_999u32.to_be_bytes()).unwrap();
        assert_eq!(next_stan(&meta).unwrap(), 1);
        // The acquirer has seen 500 from this gate: the next one is 501; never moved back.
        stan_at_least(&meta, 500).unwrap();
        stan_at_least(&meta, 7).unwrap();
        assert_eq!(next_stan(&meta).unwrap(), 501);
    }

    #[test]
    fn received_lists_apply_full_delta_and_report_gaps() {
        let k = |n: u8| [n; 32];
        let chunk = |kind, from, to, chunk, chunks, entries: Vec<(bool, [u8; 32])>| Chunk { kind, from, to, chunk, chunks, entries };
        let mut list = DenyList::new();
        let full = assemble(&[chunk(Kind::Full, 0, 5, 0, 2, vec![(true, k(1))]), chunk(Kind::Full, 0, 5, 1, 2, vec![(true, k(2))])]).unwrap().unwrap();
        assert!(apply_list(&mut list, full).unwrap());
        assert_eq!((list.version(), list.check(&[CardKey(k(2))])), (5, Some(DenyReason::Host)));
        let delta = assemble(&[chunk(Kind::Delta, 5, 7, 0, 1, vec![(false, k(1)), (true, k(3))])]).unwrap().unwrap();
        assert!(apply_list(&mut list, delta).unwrap());
        assert_eq!((list.version(), list.check(&[CardKey(k(1))]), list.check(&[CardKey(k(3))])), (7, None, Some(DenyReason::Host)));
        let gap = assemble(&[chunk(Kind::Delta, 9, 10, 0, 1, vec![(true, k(4))])]).unwrap().unwrap();
        assert!(matches!(apply_list(&mut list, gap), Err(DenyError::Gap { have: 7, from: 9, to: 10 })));
        let current = assemble(&[chunk(Kind::Current, 7, 7, 0, 1, vec![])]).unwrap().unwrap();
        assert!(!apply_list(&mut list, current).unwrap());
        // A missing chunk, chunks of two lists: refused.
        assert!(assemble(&[chunk(Kind::Full, 0, 5, 0, 2, vec![])]).is_err());
        assert!(assemble(&[chunk(Kind::Full, 0, 5, 0, 2, vec![]), chunk(Kind::Full, 0, 6, 1, 2, vec![])]).is_err());
    }

    #[test]
    fn updates_reach_the_gates_list() {
        let mut list = DenyList::new();
        DenyUpdate::Local(CardKey([1; 32]), DenyReason::AuthorizationDeclined).apply(&mut list);
        assert_eq!(list.check(&[CardKey([1; 32])]), Some(DenyReason::AuthorizationDeclined));
        DenyUpdate::Approved(CardKey([1; 32])).apply(&mut list);
        assert_eq!(list.check(&[CardKey([1; 32])]), None);
        DenyUpdate::Host { version: 3, keys: vec![CardKey([2; 32])] }.apply(&mut list);
        assert_eq!(list.check(&[CardKey([2; 32])]), Some(DenyReason::Host));
        assert!(backoff(1) < backoff(3) && backoff(40) == Duration::from_secs(10));
    }
}
