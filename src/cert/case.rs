//! The suite as data: `test-cards/suite/*.toml`, one or more `[[case]]` per file
//! (docs/cert-suite.md). Loading checks everything that can be checked before a run — unknown
//! keys, amounts, profiles and their overrides, TVR bit names, command names, duplicate ids —
//! and every error names the file and the case.

use kernels::types::Amount;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    /// Group of the file's cases that do not name their own.
    group: Option<String>,
    #[serde(default, rename = "case")]
    cases: Vec<toml::Value>,
}

/// One certification case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// EMVCo test id where the case is that test's intent (`2EB.010.00`), else a project id
    /// (`C7.ODA.03`).
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub group: String,
    /// A built-in card profile (`test-cards/profiles/NAME.toml`) or a profile file path.
    pub profile: String,
    /// Profile fields replaced for this case: top-level keys (`fingerprint = "given"`) and a
    /// `card` table merged into every `[[card]]`.
    pub overrides: Option<toml::Table>,
    /// Terminal setting overrides (the combinations of config/kernels.toml).
    #[serde(default)]
    pub settings: SettingsOverride,
    /// `none` (default): kernel only, an online request ends as AUTHORIZATION_READY; `embedded`:
    /// the terminal goes online to the acquirer simulator.
    #[serde(default)]
    pub host: HostMode,
    /// The token's state at the acquirer before the tap (`host = "embedded"` only).
    pub token: Option<TokenState>,
    /// Transaction type: purchase (default), refund, cash, cashback.
    #[serde(default, rename = "type")]
    pub txn_type: TxnType,
    /// Amount, Authorised (9F02): the total, cashback included.
    pub amount: String,
    /// Amount, Other (9F03): the cashback part of `amount` (`type = "cashback"` only).
    pub amount_other: Option<String>,
    /// A purchase of this amount on the same card and terminal before the case's transaction,
    /// which must be approved online (`type = "refund"`, `host = "embedded"`): the sale the
    /// refund gives back (the acquirer credits a refund only against its sale).
    pub sale_first: Option<String>,
    /// Faults the acquirer simulator injects for this case (`host = "embedded"`; the case gets
    /// an acquirer of its own).
    pub host_faults: Option<HostFaults>,
    /// The paying card's account at the acquirer before the tap (`"blocked"`: every
    /// authorization is declined 05); `host = "embedded"`, own acquirer.
    pub account: Option<AccountState>,
    /// Transaction date YYMMDD (default: today).
    pub date: Option<String>,
    /// What the holder does at the reader.
    #[serde(default)]
    pub holder: HolderToml,
    pub expect: Expect,
    #[serde(skip)]
    pub file: PathBuf,
    /// The case as written (copied into its evidence folder).
    #[serde(skip)]
    pub source: String,
    #[serde(skip)]
    pub amount_minor: u64,
    #[serde(skip)]
    pub amount_other_minor: Option<u64>,
    #[serde(skip)]
    pub sale_first_minor: Option<u64>,
    #[serde(skip)]
    pub profile_data: Option<test_cards::profile::Profile>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    #[default]
    None,
    Embedded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// The acquirer answers 62.
    Suspended,
    /// The acquirer answers 14.
    Deleted,
}

pub use crate::terminal::txn_type::TxnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// The acquirer declines every authorization of the account 05 (do not honour).
    Blocked,
}

/// What the acquirer simulator does wrong for one case (its admin `faults` line).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFaults {
    /// Answer every request this many ms late.
    pub delay_ms: Option<u64>,
    /// Process the request but never answer it.
    #[serde(default)]
    pub drop: bool,
    /// Close the connection instead of answering.
    #[serde(default)]
    pub close: bool,
    /// Answer with this DE 39 instead of the issuer's (e.g. an unknown code `"Q7"`).
    pub response_code: Option<String>,
}

impl HostFaults {
    /// The acquirer admin line that sets these faults.
    pub fn admin_line(&self) -> String {
        let mut s = String::from("faults");
        if let Some(ms) = self.delay_ms {
            s += &format!(" delay={ms}");
        }
        if self.drop {
            s += " drop";
        }
        if self.close {
            s += " close";
        }
        if let Some(rc) = &self.response_code {
            s += &format!(" code={rc}");
        }
        s
    }
}

/// The simulated holder: the taps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderToml {
    /// When the phone asks (See Phone), give the fingerprint and tap again.
    #[serde(default)]
    pub fingerprint: bool,
    /// Pull the card away after N APDUs of the first tap.
    pub remove_after: Option<usize>,
    /// Present the card again whenever the terminal asks for it again (after a Try Again).
    #[serde(default)]
    pub tap_again: bool,
    /// A second card (a profile) held in the field with the first on the first tap.
    pub second_card: Option<String>,
    /// The second card leaves after this many polls that saw both (default: never).
    pub remove_second_after: Option<usize>,
}

/// Terminal setting overrides, applied to every combination (or only to `aid`'s).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsOverride {
    /// Only the combination with exactly this AID (hex); default: all of them.
    pub aid: Option<String>,
    /// Amounts, or `"none"` for "not present".
    pub txn_limit: Option<String>,
    pub floor_limit: Option<String>,
    pub terminal_floor_limit: Option<String>,
    pub cvm_limit: Option<String>,
    pub zero_amount_allowed: Option<bool>,
    pub status_check: Option<bool>,
    /// TTQ 9F66, 4 bytes hex.
    pub ttq: Option<String>,
    /// How long the terminal waits for the host's answer (host = "embedded").
    pub host_timeout_ms: Option<u64>,
}

/// Pass criteria: every field given must match; absent fields are not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Contract name: APPROVED, DECLINED, ONLINE_DECLINED, ONLINE_REQUEST, TRY_AGAIN, SEE_PHONE,
    /// TRY_ANOTHER_INTERFACE, END_APPLICATION.
    pub outcome: Option<String>,
    /// Disposition kind: APPROVED_ONLINE, NOT_COMPLETED, DECLINED_BY_ISSUER …
    pub disposition: Option<String>,
    /// Disposition reason: OVER_CONTACTLESS_LIMIT, ONLINE_PIN_UNAVAILABLE, or DE 39 for
    /// DECLINED_BY_ISSUER.
    pub reason: Option<String>,
    /// A piece of the reason text (e.g. "revoked").
    pub reason_contains: Option<String>,
    pub response_code: Option<String>,
    pub cvm: Option<String>,
    pub oda: Option<String>,
    pub online: Option<bool>,
    pub taps: Option<u32>,
    pub kernel: Option<String>,
    pub aid: Option<String>,
    pub label: Option<String>,
    pub cryptogram_type: Option<String>,
    /// Every UI request and prompt shown, in order (names of [`crate::cert::ui_name`]).
    pub ui: Option<Vec<String>>,
    /// The outcome's message text.
    pub ui_message: Option<String>,
    /// TVR 95 as 10 hex digits.
    pub tvr: Option<String>,
    /// TVR bits by name that must be set / clear.
    #[serde(default)]
    pub tvr_set: Vec<String>,
    #[serde(default)]
    pub tvr_clear: Vec<String>,
    /// Data record values: tag (hex) → value (hex).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// C-APDU content: the named command was sent and (if given) its bytes contain `contains`.
    #[serde(default)]
    pub capdu: Vec<CapduCheck>,
    pub available_offline_amount: Option<String>,
    /// Whether the field was switched off before a restart (Book B §3.5.1.2).
    pub field_off: Option<bool>,
    /// The hold time of the first field-off, in ms.
    pub field_off_ms: Option<u64>,
    /// Whether the terminal reversed the request (0400 queued or sent: no answer in time).
    pub reversal: Option<bool>,
    /// DE 3 of the request the terminal sent (`"090000"`).
    pub processing_code: Option<String>,
    /// The journal's state of the transaction after the case (COMPLETED, REVERSAL_PENDING,
    /// REVERSED …).
    pub journal_state: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapduCheck {
    /// SELECT_PPSE, SELECT_AID, GPO, READ_RECORD, GET_DATA.
    pub command: String,
    /// Hex substring of the whole C-APDU (any occurrence of the command).
    pub contains: Option<String>,
    /// The command must not be sent at all.
    #[serde(default)]
    pub absent: bool,
}

/// Command names a C-APDU check may use.
pub const COMMANDS: [&str; 5] = ["SELECT_PPSE", "SELECT_AID", "GPO", "READ_RECORD", "GET_DATA"];

/// Outcome names of the JSON contract (docs/design.md "Dispositions").
pub const OUTCOMES: [&str; 9] =
    ["APPROVED", "DECLINED", "ONLINE_DECLINED", "ONLINE_REQUEST", "TRY_AGAIN", "SEE_PHONE", "TRY_ANOTHER_INTERFACE", "END_APPLICATION", "ERROR"];

/// Disposition kinds.
pub const DISPOSITIONS: [&str; 7] =
    ["APPROVED_ONLINE", "APPROVED_OFFLINE", "DECLINED_BY_CARD", "DECLINED_BY_ISSUER", "DECLINED_BY_TERMINAL", "NOT_COMPLETED", "AUTHORIZATION_READY"];

/// TVR bits by name (EMV Book 3 Annex C5): name, byte (1-5), mask.
pub const TVR_BITS: &[(&str, usize, u8)] = &[
    ("oda_not_performed", 1, 0x80),
    ("sda_failed", 1, 0x40),
    ("icc_data_missing", 1, 0x20),
    ("card_on_exception_file", 1, 0x10),
    ("dda_failed", 1, 0x08),
    ("cda_failed", 1, 0x04),
    ("different_application_versions", 2, 0x80),
    ("expired_application", 2, 0x40),
    ("not_yet_effective", 2, 0x20),
    ("service_not_allowed", 2, 0x10),
    ("new_card", 2, 0x08),
    ("cvm_not_successful", 3, 0x80),
    ("unrecognised_cvm", 3, 0x40),
    ("pin_try_limit_exceeded", 3, 0x20),
    ("pin_pad_missing", 3, 0x10),
    ("pin_not_entered", 3, 0x08),
    ("online_pin_entered", 3, 0x04),
    ("floor_limit_exceeded", 4, 0x80),
    ("lower_offline_limit_exceeded", 4, 0x40),
    ("upper_offline_limit_exceeded", 4, 0x20),
    ("random_selection", 4, 0x10),
    ("merchant_forced_online", 4, 0x08),
    ("default_tdol_used", 5, 0x80),
    ("issuer_authentication_failed", 5, 0x40),
    ("script_failed_before_final_gac", 5, 0x20),
    ("script_failed_after_final_gac", 5, 0x10),
];

/// UI names a case may expect in `ui`.
pub const UI_NAMES: &[&str] = &[
    "PRESENT_CARD",
    "AUTHORISING",
    "APPROVED",
    "NOT_AUTHORISED",
    "ENTER_PIN",
    "PROCESSING_ERROR",
    "REMOVE_CARD",
    "WELCOME",
    "PROCESSING",
    "CARD_READ_OK",
    "INSERT_OR_SWIPE",
    "PRESENT_ONE_CARD_ONLY",
    "APPROVED_SIGN",
    "TRY_ANOTHER_CARD",
    "INSERT_CARD",
    "CLEAR_DISPLAY",
    "SEE_PHONE",
    "PRESENT_CARD_AGAIN",
];

/// A suite that cannot be run as written.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", case.as_deref().map(|c| format!(": case {c}")).unwrap_or_default())]
pub struct LoadError {
    pub file: String,
    pub case: Option<String>,
    pub message: String,
}

/// Parses an amount with `"none"` for "not present".
pub fn limit(v: &str, exp: u32) -> Result<Option<Amount>, String> {
    if v == "none" {
        return Ok(None);
    }
    Amount::parse(v, exp).map(Some).map_err(|e| format!("{v:?}: {e}"))
}

fn hex_of(field: &str, v: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    let b = hex::decode(v).map_err(|_| format!("{field} = {v:?} is not hex"))?;
    match len {
        Some(n) if b.len() != n => Err(format!("{field} = {v:?} is not {n} bytes")),
        _ => Ok(b),
    }
}

/// The profile of a case with its overrides applied.
pub fn profile_with(name: &str, overrides: Option<&toml::Table>) -> Result<test_cards::profile::Profile, String> {
    use test_cards::profile::Profile;
    let Some(o) = overrides else {
        return Profile::load(name).map_err(|e| e.to_string());
    };
    let text = profile_text_with(name, o)?;
    Profile::parse(&format!("{name} (with overrides)"), &text).map_err(|e| e.to_string())
}

/// The profile file text of a case with its overrides merged in (what [`profile_with`] parses;
/// the phone process loads it from a file).
pub fn profile_text_with(name: &str, o: &toml::Table) -> Result<String, String> {
    use test_cards::profile::BUILTIN;
    let text = match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, t)) => t.to_string(),
        None => std::fs::read_to_string(name).map_err(|e| format!("profile {name:?}: {e}"))?,
    };
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| format!("profile {name}: {e}"))?;
    for (k, v) in o {
        if k == "card" {
            let Some(fields) = v.as_table() else {
                return Err("overrides.card must be a table of card fields".into());
            };
            let Some(cards) = doc.get_mut("card").and_then(|c| c.as_array_mut()) else {
                return Err(format!("profile {name} has no [[card]]"));
            };
            for c in cards.iter_mut().filter_map(|c| c.as_table_mut()) {
                for (ck, cv) in fields {
                    // Nested tables (`keys`, `behaviour`) merge key by key into the card's own.
                    match (c.get_mut(ck).and_then(|t| t.as_table_mut()), cv.as_table()) {
                        (Some(own), Some(sub)) => own.extend(sub.iter().map(|(k, v)| (k.clone(), v.clone()))),
                        _ => {
                            c.insert(ck.clone(), cv.clone());
                        }
                    }
                }
            }
        } else {
            doc.insert(k.clone(), v.clone());
        }
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

impl Case {
    /// Checks what can be checked before a run.
    fn validate(&mut self, exp: u32) -> Result<(), String> {
        if self.id.trim().is_empty() || self.id.contains(['/', '\\']) || self.id.starts_with('.') {
            return Err(format!("id {:?} must be a non-empty name without slashes", self.id));
        }
        if self.group.is_empty() {
            return Err("no group (give `group` in the case or at the top of the file)".into());
        }
        self.amount_minor = Amount::parse(&self.amount, exp).map_err(|e| format!("amount {:?}: {e}", self.amount))?.0;
        self.validate_txn_and_holder(exp)?;
        if let Some(d) = &self.date {
            let b = hex_of("date", d, Some(3))?;
            kernels::types::EmvDate::from_bcd(&b).ok_or_else(|| format!("date {d:?} is not a valid YYMMDD"))?;
        }
        if (self.token.is_some() || self.host_faults.is_some() || self.account.is_some() || self.settings.host_timeout_ms.is_some())
            && self.host != HostMode::Embedded
        {
            if self.token.is_none() {
                return Err("`host_faults`, `account` and `settings.host_timeout_ms` act on the acquirer: they need host = \"embedded\"".into());
            }
            return Err("`token` sets the acquirer's token state: it needs host = \"embedded\"".into());
        }
        let s = &self.settings;
        for (f, v) in
            [("txn_limit", &s.txn_limit), ("floor_limit", &s.floor_limit), ("terminal_floor_limit", &s.terminal_floor_limit), ("cvm_limit", &s.cvm_limit)]
        {
            if let Some(v) = v {
                limit(v, exp).map_err(|e| format!("settings.{f}: {e}"))?;
            }
        }
        if let Some(t) = &s.ttq {
            hex_of("settings.ttq", t, Some(4))?;
        }
        if let Some(a) = &s.aid {
            hex_of("settings.aid", a, None)?;
        }
        self.profile_data = Some(profile_with(&self.profile, self.overrides.as_ref())?);
        let e = &self.expect;
        if let Some(o) = &e.outcome {
            if !OUTCOMES.contains(&o.as_str()) {
                return Err(format!("expect.outcome {o:?} is not one of {}", OUTCOMES.join(", ")));
            }
        }
        if let Some(d) = &e.disposition {
            if !DISPOSITIONS.contains(&d.as_str()) {
                return Err(format!("expect.disposition {d:?} is not one of {}", DISPOSITIONS.join(", ")));
            }
        }
        for b in e.tvr_set.iter().chain(&e.tvr_clear) {
            if !TVR_BITS.iter().any(|(n, _, _)| n == b) {
                return Err(format!("TVR bit {b:?} is unknown (known: {})", TVR_BITS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")));
            }
        }
        if let Some(t) = &e.tvr {
            hex_of("expect.tvr", t, Some(5))?;
        }
        for (t, v) in &e.tags {
            hex_of("expect.tags key", t, None)?;
            hex_of(&format!("expect.tags.{t}"), v, None)?;
        }
        for c in &e.capdu {
            if !COMMANDS.contains(&c.command.as_str()) {
                return Err(format!("expect.capdu command {:?} is not one of {}", c.command, COMMANDS.join(", ")));
            }
            if let Some(h) = &c.contains {
                hex_of("expect.capdu.contains", h, None)?;
            }
        }
        for u in e.ui.iter().flatten() {
            if !UI_NAMES.contains(&u.as_str()) {
                return Err(format!("expect.ui {u:?} is not one of {}", UI_NAMES.join(", ")));
            }
        }
        Ok(())
    }
}

/// Journal states `expect.journal_state` may name.
pub const JOURNAL_STATES: &[&str] =
    &["STARTED", "CARD_READ", "SENT", "ANSWERED", "COMPLETED", "REVERSAL_PENDING", "REVERSED", "ADVICE_PENDING", "ADVISED", "SETTLED"];

impl Case {
    /// The keys of the transaction-type, holder, host-fault and evidence slice (issue 10):
    /// `type` / `amount_other`, `holder.tap_again` / `second_card` / `remove_second_after`,
    /// `host_faults`, `expect.field_off*` / `reversal` / `processing_code` / `journal_state`.
    fn validate_txn_and_holder(&mut self, exp: u32) -> Result<(), String> {
        self.amount_other_minor = match &self.amount_other {
            Some(a) => Some(Amount::parse(a, exp).map_err(|e| format!("amount_other {a:?}: {e}"))?.0),
            None => None,
        };
        self.txn_type
            .check_amounts(Amount(self.amount_minor), self.amount_other_minor.map(Amount))
            .map_err(|e| format!("type = {:?}: {e}", self.txn_type.name()))?;
        self.sale_first_minor = match &self.sale_first {
            Some(_) if self.txn_type != TxnType::Refund || self.host != HostMode::Embedded => {
                return Err("sale_first is the sale a refund gives back: it needs type = \"refund\" and host = \"embedded\"".into())
            }
            Some(a) => Some(Amount::parse(a, exp).map_err(|e| format!("sale_first {a:?}: {e}"))?.0),
            None => None,
        };
        let h = &self.holder;
        if let Some(p) = &h.second_card {
            test_cards::profile::Profile::load(p).map_err(|e| format!("holder.second_card {p:?}: {e}"))?;
        }
        match (h.remove_second_after, &h.second_card) {
            (Some(_), None) => return Err("holder.remove_second_after needs holder.second_card (the card that leaves)".into()),
            (Some(0), _) => return Err("holder.remove_second_after = 0: a second card that leaves before any poll is no second card".into()),
            _ => {}
        }
        if let Some(f) = &self.host_faults {
            if f.drop && f.close {
                return Err("host_faults: `drop` and `close` both set (the answer is either lost or the connection closed)".into());
            }
            if let Some(rc) = &f.response_code {
                if rc.len() != 2 || !rc.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("host_faults.response_code {rc:?} is not two letters or digits (DE 39)"));
                }
            }
            if f.delay_ms == Some(0) {
                return Err("host_faults.delay_ms = 0: leave it out for no delay".into());
            }
        }
        if self.settings.host_timeout_ms == Some(0) {
            return Err("settings.host_timeout_ms = 0: the terminal would not wait for any answer".into());
        }
        let e = &self.expect;
        if let Some(pc) = &e.processing_code {
            if pc.len() != 6 || !pc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("expect.processing_code {pc:?} is not 6 digits (DE 3)"));
            }
        }
        if let Some(st) = &e.journal_state {
            if !JOURNAL_STATES.contains(&st.as_str()) {
                return Err(format!("expect.journal_state {st:?} is not one of {}", JOURNAL_STATES.join(", ")));
            }
        }
        if e.field_off_ms.is_some() && e.field_off == Some(false) {
            return Err("expect.field_off_ms with expect.field_off = false".into());
        }
        if (e.reversal.is_some() || e.processing_code.is_some() || e.journal_state.is_some()) && self.host != HostMode::Embedded {
            return Err("expect.reversal / processing_code / journal_state are about the host exchange: they need host = \"embedded\"".into());
        }
        Ok(())
    }
}

/// Loads every `*.toml` of `dir` (sorted by name; cases in file order). `exp` is the currency
/// exponent the amounts are written in.
pub fn load_dir(dir: &Path, exp: u32) -> Result<Vec<Case>, LoadError> {
    let shown = dir.display().to_string();
    let entries =
        std::fs::read_dir(dir).map_err(|e| LoadError { file: shown.clone(), case: None, message: format!("cannot read the suite directory: {e}") })?;
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError { file: shown, case: None, message: "no *.toml case files".into() });
    }
    let mut all: Vec<Case> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| LoadError { file: f.display().to_string(), case: None, message: e.to_string() })?;
        for c in parse_file(&f, &text, exp)? {
            if let Some(first) = all.iter().find(|o| o.id == c.id) {
                return Err(LoadError {
                    file: f.display().to_string(),
                    case: Some(c.id.clone()),
                    message: format!("duplicate id (also in {})", first.file.display()),
                });
            }
            all.push(c);
        }
    }
    Ok(all)
}

/// Parses one suite file.
pub fn parse_file(file: &Path, text: &str, exp: u32) -> Result<Vec<Case>, LoadError> {
    let fname = file.display().to_string();
    let err = |case: Option<String>, message: String| LoadError { file: fname.clone(), case, message };
    let sf: SuiteFile = toml::from_str(text).map_err(|e| err(None, e.to_string().trim_end().to_string()))?;
    let mut out = Vec::new();
    for (i, v) in sf.cases.into_iter().enumerate() {
        let name = v.get("id").and_then(|x| x.as_str()).map(String::from).unwrap_or_else(|| format!("#{} (no id)", i + 1));
        let source = toml::to_string(&v).unwrap_or_default();
        let mut c: Case = v.try_into().map_err(|e: toml::de::Error| err(Some(name.clone()), e.message().trim_end().to_string()))?;
        if c.group.is_empty() {
            c.group = sf.group.clone().unwrap_or_default();
        }
        c.file = file.to_path_buf();
        c.source = source;
        c.validate(exp).map_err(|m| err(Some(name.clone()), m))?;
        out.push(c);
    }
    if out.is_empty() {
        return Err(err(None, "no [[case]] in this file".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Case>, LoadError> {
        parse_file(Path::new("t.toml"), text, 2)
    }

    const OK: &str = r#"
group = "g"
[[case]]
id = "X.1"
title = "t"
profile = "unionpay-phone"
amount = "1.00"
expect = { outcome = "ONLINE_REQUEST" }
"#;

    #[test]
    fn a_good_case_loads_with_the_file_group() {
        let c = parse(OK).unwrap();
        assert_eq!((c[0].id.as_str(), c[0].group.as_str(), c[0].amount_minor), ("X.1", "g", 100));
    }

    #[test]
    fn errors_name_the_file_the_case_and_the_problem() {
        let e = parse(&OK.replace("amount = ", "amuont = ")).unwrap_err().to_string();
        assert!(e.starts_with("t.toml: case X.1: ") && e.contains("amuont"), "{e}");
        let e = parse(&OK.replace("\"1.00\"", "\"1.2.3\"")).unwrap_err().to_string();
        assert!(e.contains("case X.1") && e.contains("amount"), "{e}");
        let e = parse(&OK.replace("unionpay-phone", "no-such-card")).unwrap_err().to_string();
        assert!(e.contains("case X.1") && e.contains("no-such-card"), "{e}");
        let e = parse(&OK.replace("outcome = \"ONLINE_REQUEST\"", "outcome = \"OK\"")).unwrap_err().to_string();
        assert!(e.contains("expect.outcome \"OK\""), "{e}");
        let e = parse(&OK.replace("outcome = \"ONLINE_REQUEST\"", "tvr_set = [\"expired\"]")).unwrap_err().to_string();
        assert!(e.contains("TVR bit \"expired\""), "{e}");
        let e = parse(&OK.replace("id = \"X.1\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("case #1 (no id)") && e.contains("id"), "{e}");
        let e = parse(&OK.replace("group = \"g\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("no group"), "{e}");
        let e = parse(&format!("{OK}\ntoken = \"deleted\"")).unwrap_err().to_string();
        assert!(e.contains("host = \\\"embedded\\\"") || e.contains("host = \"embedded\""), "{e}");
        let e = parse("[[case]]\nid = 3").unwrap_err().to_string();
        assert!(e.contains("case #1") || e.contains("t.toml"), "{e}");
        let e = parse("grup = 1").unwrap_err().to_string();
        assert!(e.starts_with("t.toml: ") && e.contains("grup"), "{e}");
    }

    #[test]
    fn overrides_reach_the_profile_and_bad_ones_are_refused() {
        let text = OK.replace("expect =", "overrides = { fingerprint = \"given\", card = { offline_capable = true } }\nexpect =");
        let c = parse(&text).unwrap();
        let p = c[0].profile_data.as_ref().unwrap();
        assert_eq!(p.fingerprint, test_cards::profile::FingerprintState::Given);
        assert!(p.cards[0].offline_capable);
        let e = parse(&OK.replace("expect =", "overrides = { card = { colour = 1 } }\nexpect =")).unwrap_err().to_string();
        assert!(e.contains("case X.1") && e.contains("colour"), "{e}");
    }

    #[test]
    fn nested_card_tables_merge_key_by_key() {
        let p = profile_with("unionpay-transit", Some(&toml::from_str("card = { keys = { issuer_cert_serial = \"0000A1\" } }").unwrap())).unwrap();
        let k = &p.cards[0].keys;
        // The one key replaced, the others kept from the profile.
        assert_eq!((k.issuer_cert_serial.as_deref(), k.ca.as_str(), k.ca_index.as_str()), (Some("0000A1"), "ca-unionpay-e1", "E1"));
        // A nested table the profile lacks is inserted whole.
        let p = profile_with("unionpay-transit", Some(&toml::from_str("card = { behaviour = { omit_expiry = true } }").unwrap())).unwrap();
        assert!(p.cards[0].behaviour.omit_expiry);
        // An unknown nested key is still refused.
        assert!(profile_with("unionpay-transit", Some(&toml::from_str("card = { keys = { colour = 1 } }").unwrap())).unwrap_err().contains("colour"));
    }

    #[test]
    fn cashback_holder_and_host_fault_keys_load() {
        let text = OK.replace(
            "expect =",
            "type = \"cashback\"\namount_other = \"0.40\"\nhost = \"embedded\"\nhost_faults = { delay_ms = 800, code = \"Q7\" }\nexpect =",
        );
        // `code` is not a key: the fault's field is `response_code`.
        assert!(parse(&text).unwrap_err().to_string().contains("code"));
        let text = text.replace("code = ", "response_code = ");
        let c = parse(&text).unwrap();
        assert_eq!((c[0].txn_type, c[0].amount_other_minor), (TxnType::Cashback, Some(40)));
        assert_eq!(c[0].host_faults.as_ref().unwrap().admin_line(), "faults delay=800 code=Q7");
        let text = OK.replace("expect =", "holder = { second_card = \"visa-phone\", remove_second_after = 2, tap_again = true }\nexpect =");
        let h = &parse(&text).unwrap()[0].holder;
        assert_eq!((h.second_card.as_deref(), h.remove_second_after, h.tap_again), (Some("visa-phone"), Some(2), true));
        let e = parse(&OK.replace("expect =", "holder = { second_card = \"visa-phone\", remove_second_after = 0 }\nexpect =")).unwrap_err().to_string();
        assert!(e.contains("remove_second_after = 0"), "{e}");
        let e = parse(&OK.replace("outcome = \"ONLINE_REQUEST\"", "reversal = true")).unwrap_err().to_string();
        assert!(e.contains("expect.reversal"), "{e}");
        let e = parse(&OK.replace("expect =", "host = \"embedded\"\nexpect =").replace("outcome = \"ONLINE_REQUEST\"", "journal_state = \"DONE\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("journal_state \"DONE\""), "{e}");
    }

    #[test]
    fn duplicate_ids_are_refused_across_files() {
        let dir = std::env::temp_dir().join(format!("shanfu-cert-dup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), OK).unwrap();
        std::fs::write(dir.join("b.toml"), OK).unwrap();
        let e = load_dir(&dir, 2).unwrap_err().to_string();
        assert!(e.contains("b.toml: case X.1: duplicate id (also in") && e.contains("a.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
