//! One gate lane: taps back to back, no cashier. Each tap runs the terminal core's reader and
//! kernel flow ([`crate::terminal::service::tap`]), then the gate decides ([`super::decision`])
//! — deny list, anti-passback, the card's answer, the operator's policy — journals the tap
//! durably, and only then opens. The decision time (after the card left) is measured per tap.

use super::aggregate::{Aggregate, Aggregator, CloseReason};
use super::config::{GateConfig, KernelAmount};
use super::decision::{decide, Decision, Reject, Settlement, Tap};
use super::deny::{CardKey, DenyList, DenyReason};
use super::passback::AntiPassback;
use super::upload::{CardData, DenyUpdate, Queued};
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
    fn of((a, why): (Aggregate<(FirstTap, CardData)>, CloseReason)) -> (Upload, CardData) {
        let (first, card_data) = a.first;
        (Upload { card: a.card.to_hex(), taps: a.fares.len(), total_minor: a.total.0, opened_at: a.opened_at, first, why }, card_data)
    }
}

/// What the gate did: a type, so nothing downstream decides on a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gate {
    Open,
    Reject,
}

impl Gate {
    pub fn name(self) -> &'static str {
        match self {
            Gate::Open => "OPEN",
            Gate::Reject => "REJECT",
        }
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
    pub decision: Gate,
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
    /// The transport card's balance after the tap (closed loop).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub balance: Option<String>,
    /// The card's TAC over the debit (closed loop), hex: what the back office clears with.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tac: Option<String>,
    /// A torn debit of an earlier tap proven done: the gate opens, nothing charged again.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub recovered: bool,
    /// Uploads this tap queued: its deferred authorization, or aggregates it closed (limit, travel time).
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
    #[error("gate PSAM: {0}")]
    Psam(#[from] super::psam::PsamError),
    #[error("gate configuration: {0}")]
    Config(String),
}

/// The closed-loop side of a gate: the purse transaction's setup, the PSAM, the torn debits.
struct PurseGate {
    setup: kernels::purse::gate::GateSetup,
    psam: super::psam::Psam,
    torn: super::tap::TornDebits,
}

/// A reader whose card the lane already activated (and probed for the transport card): the
/// EMV flow's "begin" and first "wait for card" find it there.
struct Activated<'a> {
    inner: &'a mut dyn Reader,
    fresh: bool,
}

impl Reader for Activated<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if std::mem::take(&mut self.fresh) {
            return Ok(());
        }
        self.inner.wait_for_card(timeout)
    }
    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        self.inner.transmit_raw(capdu)
    }
    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        self.inner.wait_for_removal(timeout)
    }
    fn field_off(&mut self, off: Duration) {
        self.inner.field_off(off)
    }
    fn air_time(&self) -> Option<Duration> {
        self.inner.air_time()
    }
}

/// The PSAM's key text for `keys`.
fn psam_key_text(keys: &super::config::PsamKeys, config_dir: Option<&Path>) -> Result<(String, std::path::PathBuf), LaneError> {
    match keys {
        #[cfg(feature = "simulators")]
        super::config::PsamKeys::BuiltinTest => Ok((test_cards::purse::TRANSIT_TOML.to_string(), "builtin-test".into())),
        #[cfg(not(feature = "simulators"))]
        super::config::PsamKeys::BuiltinTest => {
            Err(LaneError::Config("transit.psam_key_file = \"builtin-test\": this build has no test keys; name a key file".into()))
        }
        super::config::PsamKeys::File(p) => {
            let path = match config_dir {
                Some(d) if p.is_relative() => d.join(p),
                _ => p.clone(),
            };
            let text = std::fs::read_to_string(&path).map_err(|e| LaneError::Config(format!("transit.psam_key_file {}: {e}", path.display())))?;
            Ok((text, path))
        }
    }
}

/// The purse's date-time of `now` in the terminal's time zone.
fn purse_time(now: UnixSeconds, tz: &jiff::tz::TimeZone) -> Option<kernels::purse::PurseDateTime> {
    let z = tz.to_datetime(jiff::Timestamp::from_second(i64::try_from(now).ok()?).ok()?);
    kernels::purse::PurseDateTime::new(u16::try_from(z.year()).ok()?, z.month() as u8, z.day() as u8, z.hour() as u8, z.minute() as u8, z.second() as u8)
}

/// The contract name and display text of a purse rejection.
fn purse_reject(r: &kernels::purse::gate::Reject, lang: Lang) -> (&'static str, String) {
    use kernels::purse::gate::Reject as P;
    match r {
        P::NotWhitelisted { .. } => ("NOT_WHITELISTED", T::GateIssuerNotAccepted.s(lang).into()),
        P::Expired { .. } | P::NotYetValid { .. } => ("CARD_NOT_VALID", T::GateNotAccepted.s(lang).into()),
        P::InsufficientBalance { .. } => ("INSUFFICIENT_BALANCE", T::GateInsufficientBalance.s(lang).into()),
        P::NoEntryRecorded => ("NO_ENTRY", T::GateNoEntry.s(lang).into()),
        P::AlreadyEntered { .. } => ("ALREADY_ENTERED", T::GateAlreadyEntered.s(lang).into()),
        P::Blocked => ("CARD_BLOCKED", T::GateNotAccepted.s(lang).into()),
    }
}

/// A gate lane and what it remembers.
pub struct Lane {
    pub cfg: GateConfig,
    settings: Settings,
    lang: Lang,
    pub deny: DenyList,
    passback: AntiPassback,
    aggregates: Aggregator<(FirstTap, CardData)>,
    /// Deny-list changes from the uploader (answers, syncs), applied before each decision.
    updates: Option<std::sync::mpsc::Receiver<DenyUpdate>>,
    pub counters: Counters,
    db: sled::Db,
    taps: sled::Tree,
    uploads: sled::Tree,
    /// The gate's own deny entries (card key → reason), so a restart keeps them.
    denied: sled::Tree,
    meta: sled::Tree,
    purse: Option<PurseGate>,
    policy: TapPolicy,
    /// A card was read at the last tap: it must leave before the next one is read.
    card_read: bool,
}

impl Lane {
    /// Opens the gate journal under `data` (created owner-only).
    pub fn open(cfg: GateConfig, mut settings: Settings, data: &Path, wait_for_card: Duration, config_dir: Option<&Path>) -> Result<Lane, LaneError> {
        // Gate pre-processing: the transit TTQ for every AID (no PIN pad, no signature).
        if let Some(ttq) = cfg.ttq {
            for c in &mut settings.ep.combinations {
                c.ttq = Some(ttq);
            }
        }
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
        let meta = db.open_tree("meta")?;
        let purse = match &cfg.transit {
            None => None,
            Some(t) => {
                let (text, path) = psam_key_text(&t.psam_keys, config_dir)?;
                // The terminal transaction number goes on from the last run (never reused).
                let ttsn = meta.get("psam_ttsn")?.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok()).map_or(0, u32::from_be_bytes);
                let psam = super::psam::Psam::from_key_text(&text, &path, &t.psam_terminal_id, ttsn)?;
                let setup = kernels::purse::gate::GateSetup {
                    terminal_id: [0; 6], // the PSAM's
                    station: t.station,
                    direction: if cfg.direction == super::config::Direction::Exit {
                        kernels::purse::gate::Direction::Exit
                    } else {
                        kernels::purse::gate::Direction::Entry
                    },
                    key_index: 0, // the PSAM's
                    issuers: t.issuers.clone(),
                    transfer_window_minutes: t.transfer_window_minutes,
                    max_trip_minutes: t.max_trip_minutes,
                    entry_fare: if cfg.fare.charged_at_exit() { 0 } else { u32::try_from(cfg.fare.max_fare().0).unwrap_or(u32::MAX) },
                };
                let torn = match meta.get("torn_debits")? {
                    Some(v) => super::tap::TornDebits(serde_json::from_slice(&v)?),
                    None => super::tap::TornDebits::default(),
                };
                Some(PurseGate { setup, psam, torn })
            }
        };
        Ok(Lane {
            meta,
            purse,
            card_read: false,
            passback: AntiPassback::new(cfg.anti_passback_s),
            aggregates: Aggregator::new(cfg.aggregation),
            updates: None,
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

    /// Uploads queued and not yet answered.
    pub fn pending_uploads(&self) -> Result<Vec<Upload>, LaneError> {
        // A record this build cannot read is not counted (the uploader sets it aside).
        Ok(self.uploads.iter().values().filter_map(|v| v.ok().and_then(|v| serde_json::from_slice::<Queued>(&v).ok())).map(|q| q.upload).collect())
    }

    /// The gate journal (the uploader reads the queue from it and writes the answers).
    pub fn journal(&self) -> sled::Db {
        self.db.clone()
    }

    /// Deny-list changes the uploader sends (applied before each decision).
    pub fn listen(&mut self, rx: std::sync::mpsc::Receiver<DenyUpdate>) {
        self.updates = Some(rx);
    }

    /// Applies what the uploader sent so far.
    pub fn apply_updates(&mut self) {
        if let Some(rx) = &self.updates {
            while let Ok(u) = rx.try_recv() {
                u.apply(&mut self.deny);
            }
        }
    }

    /// Closes the aggregates whose travel time ran out (and all of them with `flush`), queueing
    /// their uploads durably.
    pub fn close_due(&mut self, now: UnixSeconds, flush: bool) -> Result<Vec<Upload>, LaneError> {
        let closed = if flush { self.aggregates.flush() } else { self.aggregates.due(now) };
        let ups: Vec<(Upload, CardData)> = closed.into_iter().map(Upload::of).collect();
        self.queue(&ups, now)?;
        self.db.flush()?;
        Ok(ups.into_iter().map(|(u, _)| u).collect())
    }

    /// Queues uploads in the gate journal with the tap's local time (not flushed: the caller
    /// flushes with the tap).
    fn queue(&self, ups: &[(Upload, CardData)], now: UnixSeconds) -> Result<(), LaneError> {
        let local = crate::clock::local_de12_de13(&self.settings.time_zone, i64::try_from(now).unwrap_or(i64::MAX));
        for (u, card) in ups {
            let id = self.db.generate_id()?;
            let q = super::upload::queued(u.clone(), card.clone(), local.clone());
            self.uploads.insert(id.to_be_bytes(), serde_json::to_vec(&q)?)?;
        }
        Ok(())
    }

    /// One passenger. `Ok(None)`: nobody tapped within the wait. A gate that takes transport
    /// cards activates the card and SELECTs the T-Union purse first (express transit); a card
    /// without it goes on to the EMV flow on the same activation, its SELECT answer reused.
    pub fn tap(&mut self, reader: &mut dyn Reader, now: UnixSeconds) -> Result<Option<TapEvent>, LaneError> {
        // The last passenger's card must have left before the next tap is read (a phone left
        // on the reader would otherwise pay again at once).
        if self.card_read {
            if reader.wait_for_removal(self.policy.first_tap).is_err() {
                return Ok(None);
            }
            self.card_read = false;
        }
        let ev = self.tap_card(reader, now)?;
        self.card_read = ev.is_some();
        Ok(ev)
    }

    fn tap_card(&mut self, reader: &mut dyn Reader, now: UnixSeconds) -> Result<Option<TapEvent>, LaneError> {
        if self.purse.is_none() {
            return self.emv_tap(reader, now);
        }
        reader.begin_transaction();
        match reader.wait_for_card(self.policy.first_tap) {
            Err(ReaderError::NoCard(_)) => return Ok(None),
            Err(_) => return self.emv_tap(&mut Activated { inner: reader, fresh: false }, now),
            Ok(()) => {}
        }
        match reader.transceive(&kernels::purse::select().to_bytes()) {
            Ok(r) if r.ends_with(&[0x90, 0x00]) => self.purse_tap(reader, now, r).map(Some),
            _ => self.emv_tap(&mut Activated { inner: reader, fresh: true }, now),
        }
    }

    /// The closed-loop tap: the purse transaction with the PSAM, the fare from the trip record.
    fn purse_tap(&mut self, reader: &mut dyn Reader, now: UnixSeconds, select_answer: Vec<u8>) -> Result<TapEvent, LaneError> {
        use kernels::purse::gate::GateOutcome;
        let exp = u32::from(self.settings.ep.terminal.currency_exponent);
        let when = purse_time(now, &self.settings.time_zone).ok_or_else(|| LaneError::Config(format!("clock {now} out of the purse's range")))?;
        let fares = self.cfg.fare.clone();
        let Some(pg) = self.purse.as_mut() else {
            return Err(LaneError::Config("no transit configuration".into()));
        };
        let mut cached = Some(select_answer);
        let mut apdus = 0usize;
        let card = |c: &kernels::apdu::CApdu| {
            if c.ins == 0xA4 {
                if let Some(r) = cached.take() {
                    return kernels::apdu::RApdu::parse(&r);
                }
            }
            apdus += 1;
            reader.transceive(&c.to_bytes()).ok().and_then(|r| kernels::apdu::RApdu::parse(&r))
        };
        let fare = |q: &kernels::purse::gate::FareQuery| {
            let st = |s: kernels::purse::Station| format!("{:02}{:02}", s.line, s.station);
            let a = fares.journey(Some(&st(q.entry)), &st(q.exit)).unwrap_or_else(|_| fares.max_fare());
            u32::try_from(a.0).unwrap_or(u32::MAX)
        };
        let outcome = super::tap::run_purse_tap(pg.setup.clone(), when, &pg.torn, card, &mut pg.psam, fare);
        let _ = apdus;
        let decided_from = Instant::now();
        if let Ok(o) = &outcome {
            pg.torn.settle(o);
        }
        // The torn debits outlive the process: a gate restarted between a torn tap and the
        // card's return still proves the debit instead of charging again.
        self.meta.insert("torn_debits", serde_json::to_vec(&pg.torn.0)?)?;
        self.meta.insert("psam_ttsn", &pg.psam.ttsn().to_be_bytes())?;
        let air = reader.air_time().unwrap_or_default();
        let _ = reader.wait_for_removal(Duration::from_secs(1));
        self.counters.taps += 1;
        let seq = self.db.generate_id()?;
        let sym = self.settings.currency_symbol.clone();
        let mut ev = TapEvent {
            seq,
            at: now,
            gate: self.cfg.gate_id.clone(),
            station: self.cfg.station.clone(),
            decision: Gate::Reject,
            reason: None,
            fare: None,
            settlement: None,
            pan_masked: None,
            card: None,
            kernel: Some("T-Union".into()),
            oda: OdaResult::NotPerformed.name().into(),
            light: "RED".into(),
            display: String::new(),
            balance: None,
            tac: None,
            recovered: false,
            uploads: Vec::new(),
            card_in_field_ms: air.as_secs_f64() * 1e3,
            decision_us: 0,
        };
        let receipt = match &outcome {
            Ok(GateOutcome::Open(r)) => Some((r, false)),
            Ok(GateOutcome::Recovered(r)) => Some((r, true)),
            _ => None,
        };
        if let Some((r, recovered)) = receipt {
            let number = hex::encode_upper(r.card.app_serial);
            ev.pan_masked = Some(kernels::types::mask_pan(&number));
            ev.card = Some(CardKey::of_pan(&self.cfg.deny_key.0, &number).to_hex()[..12].to_string());
            ev.decision = Gate::Open;
            ev.light = "GREEN".into();
            ev.fare = Some(Amount(u64::from(r.amount)).display(exp));
            ev.balance = Some(Amount(u64::from(r.balance_after)).display(exp));
            ev.tac = Some(hex::encode_upper(r.tac));
            ev.recovered = recovered;
            ev.display = T::GateWelcomeBalance
                .fmt(self.lang, &[&format!("{sym}{}", ev.fare.as_deref().unwrap_or("")), &format!("{sym}{}", ev.balance.as_deref().unwrap_or(""))]);
            self.counters.opens += 1;
        } else {
            let (name, text) = match &outcome {
                Ok(GateOutcome::Reject(r)) => purse_reject(r, self.lang),
                // A torn debit, a card gone, a MAC that does not verify: tap again (a torn debit
                // is settled at the card's next tap, never charged twice).
                _ => ("READ_ERROR", T::GateReadError.s(self.lang).to_string()),
            };
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "purse tap ended outside the protocol");
            } else if let Ok(GateOutcome::Failed(f)) = &outcome {
                tracing::info!(failure = %f, "purse tap failed: tap again");
            }
            ev.reason = Some(name.into());
            ev.display = text;
            self.counters.rejects += 1;
        }
        self.taps.insert(seq.to_be_bytes(), serde_json::to_vec(&ev)?)?;
        self.db.flush()?;
        ev.decision_us = decided_from.elapsed().as_micros() as u64;
        Ok(ev)
    }

    /// The open-loop tap: Entry Point and kernel through the terminal core, then the decision.
    fn emv_tap(&mut self, reader: &mut dyn Reader, now: UnixSeconds) -> Result<Option<TapEvent>, LaneError> {
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
        self.apply_updates();
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
            decision: Gate::Reject,
            reason: None,
            fare: None,
            settlement: None,
            pan_masked: t.report.pan_masked.clone(),
            card: keys.first().map(|k| k.to_hex()[..12].to_string()),
            kernel: t.report.kernel.clone(),
            oda: oda.name().into(),
            light: String::new(),
            display: String::new(),
            balance: None,
            tac: None,
            recovered: false,
            uploads: Vec::new(),
            card_in_field_ms: t.report.card_in_field_ms,
            decision_us: 0,
        };
        let mut to_queue = Vec::new();
        match decision {
            Decision::Open { fare, settlement } => {
                self.counters.opens += 1;
                ev.decision = Gate::Open;
                ev.fare = Some(self.money(fare));
                ev.settlement = Some(settlement);
                ev.light = "GREEN".into();
                let sym = &self.settings.currency_symbol;
                ev.display = T::GateWelcome.fmt(self.lang, &[&format!("{sym}{}", self.money(fare))]);
                if let (Some(k), Some(pan)) = (keys.first(), s.pan.clone()) {
                    self.passback.opened(*k, now);
                    let first = || {
                        let tap = FirstTap {
                            seq,
                            pan_masked: t.report.pan_masked.clone(),
                            aid: t.report.aid.clone(),
                            kernel: t.report.kernel.clone(),
                            icc_data: t.report.icc_data.clone(),
                            settlement,
                        };
                        let card = CardData { pan, expiry_yymm: s.expiry.as_ref().map(|e| e.chars().take(4).collect()), psn: s.pan_sequence };
                        (tap, card)
                    };
                    to_queue = match settlement {
                        // The card asked for an authorization: queued now, on its own.
                        Settlement::Deferred => {
                            let (first, card) = first();
                            let up = Upload { card: k.to_hex(), first, opened_at: now, taps: 1, total_minor: fare.0, why: CloseReason::Deferred };
                            vec![(up, card)]
                        }
                        Settlement::Offline => self.aggregates.add(*k, fare, now, first).into_iter().map(Upload::of).collect(),
                    };
                    ev.uploads = to_queue.iter().map(|(u, _)| u.clone()).collect();
                }
            }
            Decision::Reject(r) => {
                self.counters.rejects += 1;
                ev.decision = Gate::Reject;
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
        self.queue(&to_queue, now)?;
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
