//! Runs one case: the card profile in the virtual reader with a scripted holder, the terminal
//! settings with the case's overrides, then [`service::tap`] (kernel only) or a [`Terminal`]
//! over the embedded acquirer simulator (online cases). One temporary data directory per run;
//! one shared terminal for the online cases, and a terminal of its own for a case that changes
//! the acquirer's state (a suspended or deleted token).

use super::case::{self, Case, HostMode, TokenState};
use super::verdict::{self, Check};
use crate::report::PayReport;
use crate::settings::Settings;
use crate::terminal::disposition::Disposition;
use crate::terminal::service::{self, HostChoice, Progress, SaleRequest, Terminal};
use crate::terminal::TapPolicy;
use anyhow::{anyhow, bail, Context, Result};
use kernels::outcome::MessageId;
use kernels::types::{Amount, EmvDate, Ttq};
use reader_drivers::virtual_reader::{Holder, VirtualReader};
use reader_drivers::{Reader, ReaderError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One raw exchange at the reader, with the time since the case started.
#[derive(Debug, Clone)]
pub struct TraceLine {
    pub at: Duration,
    pub tap: u32,
    pub c: Vec<u8>,
    /// The R-APDU, or what the reader reported instead (card removed …).
    pub r: Result<Vec<u8>, String>,
}

/// What the run produced, in the terms a case checks.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    pub outcome: String,
    pub disposition: String,
    pub reason: Option<String>,
    pub reason_text: String,
    pub response_code: Option<String>,
    pub cvm: String,
    pub oda: String,
    pub online: bool,
    pub taps: u32,
    pub kernel: Option<String>,
    pub aid: Option<String>,
    pub label: Option<String>,
    pub cryptogram_type: Option<String>,
    pub ui: Vec<String>,
    pub ui_message: Option<String>,
    pub tvr: String,
    pub record: Vec<u8>,
    pub capdus: Vec<Vec<u8>>,
    pub available_offline_amount: Option<String>,
    /// Field-offs before restarts, with their hold times.
    pub field_offs: Vec<Duration>,
    /// The journal record after an online case: DE 3 sent, state, whether it was reversed.
    pub processing_code: Option<String>,
    pub journal_state: Option<String>,
    pub reversal: bool,
}

/// One case, run and judged.
#[derive(Debug)]
pub struct CaseRun {
    pub case: Case,
    pub actual: Option<Actual>,
    pub checks: Vec<Check>,
    /// The case could not be run (setup, journal, acquirer): an error, not a mismatch.
    pub error: Option<String>,
    pub trace: Vec<TraceLine>,
    pub report: Option<serde_json::Value>,
    pub elapsed: Duration,
    /// Not run on this reader, and why (a case only the virtual reader can play).
    pub skipped: Option<String>,
    /// What the card process said during the case (`phone.txt` of the evidence), when it is one.
    pub phone_log: Option<String>,
}

impl CaseRun {
    pub fn passed(&self) -> bool {
        self.skipped.is_none() && self.error.is_none() && self.checks.iter().all(|c| c.ok)
    }
    /// Run and not passed (a skipped case has not failed).
    pub fn failed(&self) -> bool {
        self.skipped.is_none() && !self.passed()
    }
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

/// The UI name of a Book A message (the names `expect.ui` uses).
pub fn ui_name(m: MessageId) -> &'static str {
    match m {
        MessageId::Approved => "APPROVED",
        MessageId::NotAuthorised => "NOT_AUTHORISED",
        MessageId::EnterPin => "ENTER_PIN",
        MessageId::ProcessingError => "PROCESSING_ERROR",
        MessageId::RemoveCard => "REMOVE_CARD",
        MessageId::Welcome => "WELCOME",
        MessageId::PresentCard => "PRESENT_CARD",
        MessageId::Processing => "PROCESSING",
        MessageId::CardReadOk => "CARD_READ_OK",
        MessageId::InsertOrSwipe => "INSERT_OR_SWIPE",
        MessageId::PresentOneCardOnly => "PRESENT_ONE_CARD_ONLY",
        MessageId::ApprovedSign => "APPROVED_SIGN",
        MessageId::Authorising => "AUTHORISING",
        MessageId::TryAnotherCard => "TRY_ANOTHER_CARD",
        MessageId::InsertCard => "INSERT_CARD",
        MessageId::ClearDisplay => "CLEAR_DISPLAY",
        MessageId::SeePhone => "SEE_PHONE",
        MessageId::PresentCardAgain => "PRESENT_CARD_AGAIN",
    }
}

/// The command a C-APDU is, by class and instruction (names of `expect.capdu`).
pub fn command_name(c: &[u8]) -> &'static str {
    match c {
        [0x00, 0xA4, 0x04, _, _, rest @ ..] if rest.starts_with(b"2PAY.SYS.DDF01") => "SELECT_PPSE",
        [0x00, 0xA4, ..] => "SELECT_AID",
        [0x80, 0xA8, ..] => "GPO",
        [0x00, 0xB2, ..] => "READ_RECORD",
        [0x80, 0xCA, ..] => "GET_DATA",
        _ => "OTHER",
    }
}

/// Where the card of a case is when it is not the in-process virtual reader: a reader opened per
/// case with the card played by another process (`--reader pcsc:…`, src/cert/phone.rs).
pub trait CardSource {
    /// Why this source cannot play `case`, if it cannot (the case is SKIPPED).
    fn skip_reason(&self, case: &Case) -> Option<String>;
    /// The reader of one case, its card set up as the case's profile and holder say.
    fn reader(&mut self, case: &Case, profile: &test_cards::Profile) -> Result<Box<dyn Reader>>;
    /// The terminal's waits for taps on this source.
    fn policy(&self) -> TapPolicy;
    /// What the card process logged since the last call.
    fn take_log(&mut self) -> Option<String>;
}

/// The case's reader, with every raw exchange logged and timed.
struct Recording {
    inner: Box<dyn Reader>,
    start: Instant,
    tap: u32,
    log: Vec<TraceLine>,
    /// The field-offs the terminal asked for, in order, with their hold times.
    field_offs: Vec<Duration>,
}

impl Reader for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        let r = self.inner.wait_for_card(timeout);
        if r.is_ok() {
            self.tap += 1;
        }
        r
    }
    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let at = self.start.elapsed();
        let r = self.inner.transmit_raw(capdu);
        self.log.push(TraceLine { at, tap: self.tap, c: capdu.to_vec(), r: r.clone().map_err(|e| e.to_string()) });
        r
    }
    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        self.inner.wait_for_removal(timeout)
    }
    /// Logged in the trace as a line without a C-APDU (the evidence shows it as the field off).
    fn field_off(&mut self, off: Duration) {
        let at = self.start.elapsed();
        self.log.push(TraceLine { at, tap: self.tap, c: vec![], r: Err(format!("field off for {} ms", off.as_millis())) });
        self.field_offs.push(off);
        self.inner.field_off(off)
    }
    fn air_time(&self) -> Option<Duration> {
        self.inner.air_time()
    }
}

/// The terminal settings of a case: the base configuration with the case's overrides.
pub fn settings_for(base: &Settings, o: &case::SettingsOverride) -> Result<Settings> {
    let mut s = base.clone();
    let exp = u32::from(s.ep.terminal.currency_exponent);
    let only = o.aid.as_deref().map(hex::decode).transpose().map_err(|_| anyhow!("settings.aid is not hex"))?;
    let lim = |v: &Option<String>| -> Result<Option<Option<Amount>>> { v.as_deref().map(|v| case::limit(v, exp).map_err(|e| anyhow!(e))).transpose() };
    let (txn, floor, tfloor, cvm) = (lim(&o.txn_limit)?, lim(&o.floor_limit)?, lim(&o.terminal_floor_limit)?, lim(&o.cvm_limit)?);
    let ttq = o.ttq.as_deref().map(|t| hex::decode(t).ok().and_then(|b| Ttq::from_slice(&b)).ok_or_else(|| anyhow!("settings.ttq {t:?}"))).transpose()?;
    let mut matched = 0;
    for c in s.ep.combinations.iter_mut().filter(|c| only.as_ref().is_none_or(|a| &c.aid == a)) {
        matched += 1;
        if let Some(v) = txn {
            c.txn_limit = v;
        }
        if let Some(v) = floor {
            c.floor_limit = v;
        }
        if let Some(v) = tfloor {
            c.terminal_floor_limit = v;
        }
        if let Some(v) = cvm {
            c.cvm_limit = v;
        }
        if let Some(v) = o.zero_amount_allowed {
            c.zero_amount_allowed = v;
        }
        if let Some(v) = o.status_check {
            c.status_check = v;
        }
        if let Some(v) = ttq {
            c.ttq = Some(v);
        }
    }
    if matched == 0 {
        bail!("settings.aid {:?} names no configured combination", o.aid.as_deref().unwrap_or(""));
    }
    Ok(s)
}

/// The card a wallet pays with (priority 1, else the first): its PAN is the token the acquirer
/// knows.
fn paying_pan(p: &test_cards::Profile) -> &str {
    p.cards.iter().find(|c| c.priority == Some(1)).or(p.cards.first()).map(|c| c.pan.as_str()).unwrap_or("")
}

/// One line to the acquirer simulator's admin port (its address and token in `db`).
fn acquirer_admin(db: &Path, line: &str) -> Result<String> {
    let answer = crate::acquirer::admin_command(db, line)?;
    if !answer.starts_with("ok") {
        bail!("acquirer admin `{line}`: {answer}");
    }
    Ok(answer)
}

/// Runs cases; owns the temporary data directory and the shared online terminal.
pub struct Runner {
    base: Settings,
    dir: PathBuf,
    shared: Option<Terminal>,
    isolated: usize,
    source: Option<Box<dyn CardSource>>,
}

impl Runner {
    pub fn new(base: Settings) -> Result<Runner> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("shanfu-cert-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Runner { base, dir, shared: None, isolated: 0, source: None })
    }

    /// Runs the cases on `source` instead of the virtual reader.
    pub fn with_source(mut self, source: Box<dyn CardSource>) -> Runner {
        self.source = Some(source);
        self
    }

    /// Runs one case and judges it.
    pub fn run(&mut self, case: &Case) -> CaseRun {
        let started = Instant::now();
        let mut trace = Vec::new();
        if let Some(why) = self.source.as_ref().and_then(|s| s.skip_reason(case)) {
            let (actual, error, report) = (None, None, None);
            return CaseRun {
                case: case.clone(),
                actual,
                checks: vec![],
                error,
                trace,
                report,
                elapsed: started.elapsed(),
                skipped: Some(why),
                phone_log: None,
            };
        }
        let res = self.execute(case, &mut trace);
        let elapsed = started.elapsed();
        let phone_log = self.source.as_mut().and_then(|s| s.take_log());
        match res {
            Ok((actual, report)) => {
                let checks = verdict::judge(&case.expect, &actual);
                CaseRun { case: case.clone(), actual: Some(actual), checks, error: None, trace, report: Some(report), elapsed, skipped: None, phone_log }
            }
            Err(e) => {
                let error = Some(format!("{e:#}"));
                CaseRun { case: case.clone(), actual: None, checks: vec![], error, trace, report: None, elapsed, skipped: None, phone_log }
            }
        }
    }

    fn execute(&mut self, case: &Case, trace: &mut Vec<TraceLine>) -> Result<(Actual, serde_json::Value)> {
        let settings = settings_for(&self.base, &case.settings)?;
        let profile = match &case.profile_data {
            Some(p) => p.clone(),
            None => case::profile_with(&case.profile, case.overrides.as_ref()).map_err(|e| anyhow!(e))?,
        };
        let wallet = test_cards::Wallet::from_profile(&case.profile, &profile)?;
        let holder = Holder { fingerprint_on_prompt: case.holder.fingerprint, remove_after: case.holder.remove_after };
        let (inner, policy): (Box<dyn Reader>, TapPolicy) = match self.source.as_mut() {
            Some(s) => (s.reader(case, &profile)?, s.policy()),
            None => (Box::new(scripted_reader(case, wallet, holder)), TapPolicy::default()),
        };
        let mut reader = Recording { inner, start: Instant::now(), tap: 0, log: vec![], field_offs: vec![] };
        let date = case.date.as_deref().map(|d| hex::decode(d).ok().and_then(|b| EmvDate::from_bcd(&b)).ok_or_else(|| anyhow!("date {d:?}"))).transpose()?;
        let req = SaleRequest {
            amount: Amount(case.amount_minor),
            date,
            txn_type: case.txn_type,
            amount_other: case.amount_other_minor.map(Amount),
            ..Default::default()
        };
        let mut ui: Vec<String> = Vec::new();
        let mut progress = |p: Progress| match p {
            Progress::PresentCard => ui.push("PRESENT_CARD".into()),
            Progress::Message(m) => ui.push(ui_name(m).into()),
            // "Hold still" and "sending": reader and host states, not Book A UI requests.
            Progress::CardDetected | Progress::Authorizing | Progress::EnterPin => {}
        };
        let mut journal: Option<crate::journal::TxnRecord> = None;
        let (report, tap) = match case.host {
            HostMode::None => {
                let t = service::tap(&settings, &req, &mut reader, &policy, &mut progress);
                (t.report, t.result)
            }
            HostMode::Embedded => {
                let mut own: Option<Terminal> = None;
                let terminal: &mut Terminal = if needs_own_acquirer(case) {
                    self.isolated += 1;
                    let dir = self.dir.join(format!("isolated-{}", self.isolated));
                    own.insert(own_terminal(case, &settings, &profile, &dir)?)
                } else if let Some(state) = case.token {
                    self.isolated += 1;
                    let dir = self.dir.join(format!("isolated-{}", self.isolated));
                    let t = own.insert(Terminal::open(settings.clone(), &dir, HostChoice::Embedded).context("opening a terminal over its own acquirer")?);
                    let verb = match state {
                        TokenState::Suspended => "suspend",
                        TokenState::Deleted => "delete",
                    };
                    acquirer_admin(&dir.join("acquirer"), &format!("token {verb} {}", paying_pan(&profile)))?;
                    t
                } else {
                    if self.shared.is_none() {
                        let t = Terminal::open(self.base.clone(), &self.dir.join("shared"), HostChoice::Embedded)
                            .context("opening the run's terminal over the embedded acquirer")?;
                        self.shared = Some(t);
                    }
                    self.shared.as_mut().expect("opened above")
                };
                terminal.settings = settings.clone();
                terminal.policy = policy.clone();
                if let Some(amount) = case.sale_first_minor {
                    // The sale the refund gives back, on a holder of its own (not recorded).
                    let first = SaleRequest { amount: Amount(amount), date, ..Default::default() };
                    let holder = Holder { fingerprint_on_prompt: case.holder.fingerprint, remove_after: None };
                    let mut card = VirtualReader::new(&case.profile, test_cards::Wallet::from_profile(&case.profile, &profile)?, holder);
                    let sold = terminal.sale(&first, &mut card, &mut |_| {})?;
                    if !sold.report.disposition.is_approved() {
                        bail!("sale_first: the sale before the refund was not approved ({})", sold.report.outcome);
                    }
                }
                let sale = terminal.sale(&req, &mut reader, &mut progress)?;
                journal = sale.report.journal_id.and_then(|id| terminal.journal.get(id).ok());
                drop(own);
                (sale.report, sale.tap)
            }
        };
        *trace = std::mem::take(&mut reader.log);
        let mut a = actual(&report, &tap, ui, trace);
        a.field_offs = reader.field_offs.clone();
        if let Some(r) = &journal {
            a.processing_code = r.stan.map(|_| crate::online::processing_code(r.kind).to_string());
            a.journal_state = serde_json::to_value(r.state).ok().and_then(|v| v.as_str().map(String::from));
            a.reversal = matches!(r.state, crate::journal::TxnState::ReversalPending | crate::journal::TxnState::Reversed);
        }
        Ok((a, serde_json::to_value(&report)?))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shared.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn actual(report: &PayReport, tap: &crate::terminal::TapResult, ui: Vec<String>, trace: &[TraceLine]) -> Actual {
    let d = serde_json::to_value(report.disposition).unwrap_or_default();
    let reason = match report.disposition {
        Disposition::DeclinedByIssuer { response_code } => Some(response_code.code().to_string()),
        _ => d.get("reason").and_then(|v| v.as_str()).map(String::from),
    };
    Actual {
        outcome: report.outcome.to_string(),
        disposition: d.get("kind").and_then(|v| v.as_str()).unwrap_or("").to_string(),
        reason,
        reason_text: report.reason.clone(),
        response_code: report.response_code.clone(),
        cvm: report.cvm.name().into(),
        oda: report.oda.clone(),
        online: report.online,
        taps: report.taps,
        kernel: report.kernel.clone(),
        aid: report.aid.clone(),
        label: report.label.clone(),
        cryptogram_type: report.cryptogram_type.clone(),
        ui,
        ui_message: report.ui_message.clone(),
        tvr: report.tvr.clone(),
        record: tap.outcome.data_record.clone().unwrap_or_default(),
        capdus: trace.iter().filter(|t| !t.c.is_empty()).map(|t| t.c.clone()).collect(),
        available_offline_amount: report.available_offline_amount.clone(),
        ..Default::default()
    }
}

/// The virtual reader with the case's holder: taps again after a Try Again, a second card in
/// the field.
fn scripted_reader(case: &Case, wallet: test_cards::Wallet, holder: Holder) -> VirtualReader {
    let r = VirtualReader::new(&case.profile, wallet, holder).with_tap_again(case.holder.tap_again);
    match case.holder.second_card {
        Some(_) => r.with_second_card(case.holder.remove_second_after),
        None => r,
    }
}

/// Whether the case changes the acquirer or the host link beyond a token state (faults, the
/// answer timeout): it gets a terminal and acquirer of its own.
fn needs_own_acquirer(case: &Case) -> bool {
    case.host_faults.is_some() || case.account.is_some() || case.settings.host_timeout_ms.is_some()
}

/// A terminal over an acquirer of its own in `dir`, with the case's token state, one-shot host
/// faults (admin `faults …`) and host timeout.
fn own_terminal(case: &Case, settings: &Settings, profile: &test_cards::Profile, dir: &Path) -> Result<Terminal> {
    let mut t = Terminal::open(settings.clone(), dir, HostChoice::Embedded).context("opening a terminal over its own acquirer")?;
    let db = dir.join("acquirer");
    if let Some(state) = case.token {
        let verb = match state {
            TokenState::Suspended => "suspend",
            TokenState::Deleted => "delete",
        };
        acquirer_admin(&db, &format!("token {verb} {}", paying_pan(profile)))?;
    }
    if let Some(case::AccountState::Blocked) = case.account {
        acquirer_admin(&db, &format!("account block {}", paying_pan(profile)))?;
    }
    if let Some(f) = &case.host_faults {
        acquirer_admin(&db, &f.admin_line())?;
    }
    if let Some(ms) = case.settings.host_timeout_ms {
        t.timeout = Duration::from_millis(ms);
    }
    Ok(t)
}
