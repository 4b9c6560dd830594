//! One gate lane: taps back to back, no cashier. Each tap runs the terminal core's reader and
//! kernel flow ([`crate::terminal::service::tap`]), then the gate decides ([`super::decision`])
//! — deny list, anti-passback, the card's answer, the operator's policy — journals the tap
//! durably, and only then opens. The decision time (after the card left) is measured per tap.

use super::aggregate::{Aggregate, Aggregator, CloseReason};
use super::config::{GateConfig, KernelAmount};
use super::decision::{decide, Decision, Reject, Settlement, Tap};
use super::deny::{CardKey, DenyList, DenyReason};
use super::passback::AntiPassback;
use super::UnixSeconds;
use crate::settings::Settings;
use crate::terminal::service::{self, SaleRequest};
use crate::terminal::TapPolicy;
use crate::text::T;
use host_contract::Lang;
use kernels::outcome::OdaResult;
use kernels::types::Amount;
use reader_drivers::{Reader, ReaderError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// What the uploader needs of an aggregate's first tap. No full PAN: the ICC data of field 55
/// (cryptogram, ATC, …) and the masked PAN; the card key names the card to the back office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstTap {
    pub seq: u64,
    pub pan_masked: Option<String>,
    pub aid: Option<String>,
    pub kernel: Option<String>,
    pub icc_data: Option<String>,
    pub settlement: Settlement,
}

/// An aggregate closed and queued for upload (journal tree `uploads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub card: String,
    pub first: FirstTap,
    pub opened_at: UnixSeconds,
    pub taps: usize,
    pub total_minor: u64,
    pub why: CloseReason,
}

impl Upload {
    fn of((a, why): (Aggregate<FirstTap>, CloseReason)) -> Upload {
        Upload { card: a.card.to_hex(), taps: a.fares.len(), total_minor: a.total.0, opened_at: a.opened_at, first: a.first, why }
    }
}

/// One tap as the gate reports it: a JSON line on stdout, a record in the gate journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TapEvent {
    pub seq: u64,
    pub at: UnixSeconds,
    pub gate: String,
    pub station: String,
    /// `OPEN` or `REJECT`.
    pub decision: String,
    /// The reason of a rejection (READ_ERROR, DENIED, PASSBACK, ODA_FAILED, DECLINED,
    /// ONLINE_REFUSED, SEE_PHONE, NOT_ACCEPTED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The fare charged (major units), on an opening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fare: Option<String>,
    /// OFFLINE (aggregated) or DEFERRED (authorized in the background), on an opening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    pub pan_masked: Option<String>,
    /// First 12 hex digits of the card's deny-list key: the same card has the same one.
    pub card: Option<String>,
    pub kernel: Option<String>,
    pub oda: String,
    /// What the gate's display shows (GREEN / RED and the line).
    pub light: String,
    pub display: String,
    /// Uploads this tap closed (aggregates reaching their limit).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub uploads: Vec<Upload>,
    pub card_in_field_ms: f64,
    /// From the card leaving the field to the decision journaled, µs.
    pub decision_us: u64,
}

/// Counters of a gate since it started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    pub taps: u64,
    pub opens: u64,
    pub rejects: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("gate journal: {0}")]
    Journal(#[from] sled::Error),
    #[error("gate journal record: {0}")]
    Record(#[from] serde_json::Error),
}

/// A gate lane and what it remembers.
pub struct Lane {
    pub cfg: GateConfig,
    settings: Settings,
    lang: Lang,
    pub deny: DenyList,
    passback: AntiPassback,
    aggregates: Aggregator<FirstTap>,
    pub counters: Counters,
    db: sled::Db,
    taps: sled::Tree,
    uploads: sled::Tree,
    /// The gate's own deny entries (card key → reason), so a restart keeps them.
    denied: sled::Tree,
    policy: TapPolicy,
}

impl Lane {
    /// Opens the gate journal under `data` (created owner-only).
    pub fn open(cfg: GateConfig, settings: Settings, data: &Path, wait_for_card: Duration) -> Result<Lane, LaneError> {
        std::fs::create_dir_all(data).map_err(sled::Error::Io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).map_err(sled::Error::Io)?;
        }
        let db = sled::open(data.join("gate"))?;
        let taps = db.open_tree("taps")?;
        let uploads = db.open_tree("uploads")?;
        let denied = db.open_tree("deny_local")?;
        let mut deny = DenyList::new();
        for kv in denied.iter() {
            let (k, v) = kv?;
            if let (Ok(k), Ok(why)) = (<[u8; 32]>::try_from(k.as_ref()), serde_json::from_slice::<DenyReason>(&v)) {
                deny.deny_local(CardKey(k), why);
            }
        }
        let lang = settings.lang;
        Ok(Lane {
            passback: AntiPassback::new(cfg.anti_passback_s),
            aggregates: Aggregator::new(cfg.aggregation),
            deny,
            counters: Counters::default(),
            // One tap per passenger: no See Phone wait, no Try Again wait at a gate.
            policy: TapPolicy { first_tap: wait_for_card, see_phone: Duration::ZERO, try_again: Duration::ZERO, max_taps: 1 },
            cfg,
            settings,
            lang,
            db,
            taps,
            uploads,
            denied,
        })
    }

    /// The amount the card is asked for.
    fn kernel_amount(&self) -> Amount {
        match self.cfg.kernel_amount {
            KernelAmount::Fare if !self.cfg.fare.charged_at_exit() => self.cfg.fare.max_fare(),
            _ => self.cfg.nominal_amount,
        }
    }

    fn money(&self, a: Amount) -> String {
        a.display(u32::from(self.settings.ep.terminal.currency_exponent))
    }

    /// Uploads queued and not yet sent.
    pub fn pending_uploads(&self) -> Result<Vec<Upload>, LaneError> {
        self.uploads.iter().values().map(|v| Ok(serde_json::from_slice(&v?)?)).collect()
    }

    /// Closes the aggregates whose travel time ran out (and all of them with `flush`), queueing
    /// their uploads durably.
    pub fn close_due(&mut self, now: UnixSeconds, flush: bool) -> Result<Vec<Upload>, LaneError> {
        let closed = if flush { self.aggregates.flush() } else { self.aggregates.due(now) };
        let ups: Vec<Upload> = closed.into_iter().map(Upload::of).collect();
        self.queue(&ups)?;
        Ok(ups)
    }

    fn queue(&self, ups: &[Upload]) -> Result<(), LaneError> {
        for u in ups {
            let id = self.db.generate_id()?;
            self.uploads.insert(id.to_be_bytes(), serde_json::to_vec(u)?)?;
        }
        Ok(())
    }

    /// One passenger. `Ok(None)`: nobody tapped within the wait.
    pub fn tap(&mut self, reader: &mut dyn Reader, now: UnixSeconds) -> Result<Option<TapEvent>, LaneError> {
        let req = SaleRequest { amount: self.kernel_amount(), ..SaleRequest::default() };
        let t = service::tap(&self.settings, &req, reader, &self.policy, &mut |_| {});
        if matches!(t.result.reader_error, Some(ReaderError::NoCard(_))) && t.result.exchanges.is_empty() {
            return Ok(None);
        }
        let decided_from = Instant::now();
        let s = t.ep.summary();
        let key = &self.cfg.deny_key.0;
        let keys: Vec<CardKey> = s.pan.iter().map(|p| CardKey::of_pan(key, p)).chain(s.par.iter().map(|p| CardKey::of_par(key, p))).collect();
        let oda = s.oda.unwrap_or(OdaResult::NotPerformed);
        let tap = Tap { status: t.result.outcome.status, oda, see_phone: t.result.outcome.is_see_phone() };
        let denied = self.deny.check(&keys);
        let passback = keys.first().map_or(Ok(()), |k| self.passback.check(k, now));
        let fare = self.cfg.fare.journey(None, &self.cfg.station).unwrap_or_else(|_| self.cfg.fare.max_fare());
        let decision = decide(tap, denied, passback, self.cfg.online, fare);
        self.counters.taps += 1;
        let seq = self.db.generate_id()?;
        let mut ev = TapEvent {
            seq,
            at: now,
            gate: self.cfg.gate_id.clone(),
            station: self.cfg.station.clone(),
            decision: String::new(),
            reason: None,
            fare: None,
            settlement: None,
            pan_masked: t.report.pan_masked.clone(),
            card: keys.first().map(|k| k.to_hex()[..12].to_string()),
            kernel: t.report.kernel.clone(),
            oda: oda.name().into(),
            light: String::new(),
            display: String::new(),
            uploads: Vec::new(),
            card_in_field_ms: t.report.card_in_field_ms,
            decision_us: 0,
        };
        match decision {
            Decision::Open { fare, settlement } => {
                self.counters.opens += 1;
                ev.decision = "OPEN".into();
                ev.fare = Some(self.money(fare));
                ev.settlement = Some(settlement);
                ev.light = "GREEN".into();
                let sym = &self.settings.currency_symbol;
                ev.display = T::GateWelcome.fmt(self.lang, &[&format!("{sym}{}", self.money(fare))]);
                if let Some(k) = keys.first() {
                    self.passback.opened(*k, now);
                    let first = || FirstTap {
                        seq,
                        pan_masked: t.report.pan_masked.clone(),
                        aid: t.report.aid.clone(),
                        kernel: t.report.kernel.clone(),
                        icc_data: t.report.icc_data.clone(),
                        settlement,
                    };
                    ev.uploads = self.aggregates.add(*k, fare, now, first).into_iter().map(Upload::of).collect();
                }
            }
            Decision::Reject(r) => {
                self.counters.rejects += 1;
                ev.decision = "REJECT".into();
                ev.reason = Some(reject_name(r).into());
                ev.light = "RED".into();
                ev.display = r.text(self.lang);
                if let (Some(why), Some(k)) = (r.deny_local(), keys.first()) {
                    self.deny.deny_local(*k, why);
                    self.denied.insert(k.0, serde_json::to_vec(&why)?)?;
                }
            }
        }
        // Journal before the gate opens: the tap and its uploads, durable.
        self.queue(&ev.uploads)?;
        self.taps.insert(seq.to_be_bytes(), serde_json::to_vec(&ev)?)?;
        self.db.flush()?;
        ev.decision_us = decided_from.elapsed().as_micros() as u64;
        Ok(Some(ev))
    }
}

/// The contract name of a rejection.
pub fn reject_name(r: Reject) -> &'static str {
    match r {
        Reject::ReadError => "READ_ERROR",
        Reject::Denied { .. } => "DENIED",
        Reject::Passback { .. } => "PASSBACK",
        Reject::OdaFailed => "ODA_FAILED",
        Reject::Declined => "DECLINED",
        Reject::OnlineRefused => "ONLINE_REFUSED",
        Reject::SeePhone => "SEE_PHONE",
        Reject::NotAccepted => "NOT_ACCEPTED",
    }
}
