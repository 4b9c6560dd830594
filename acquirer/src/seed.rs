//! Seed data of the token vault and the accounts (`config/acquirer.toml`), checked on parse.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::masked as mask_pan;
use crate::AcquirerError;

/// The built-in seed (`config/acquirer.toml`): every PAN of `test-cards/profiles`.
pub const DEFAULT_SEED: &str = include_str!("../../config/acquirer.toml");

/// Token lifecycle state (token service provider view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Usable.
    Active,
    /// Temporarily blocked (lost phone): authorizations are declined 62; can be resumed.
    Suspended,
    /// Permanently removed: authorizations are declined 14; cannot be resumed.
    Deleted,
}

impl TokenStatus {
    /// `active` / `suspended` / `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Suspended => "suspended",
            TokenStatus::Deleted => "deleted",
        }
    }
}

/// Account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Usable.
    Active,
    /// Every authorization is declined 05 (do not honour).
    Blocked,
}

/// Where a token may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenDomain {
    /// Contactless EMV only: DE 22 must start with `07`.
    ContactlessChip,
}

/// One `[[account]]`: a funding account, or a plastic card that is its own account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    pub pan: String,
    /// Minor units.
    pub balance: i64,
    /// ISO 4217 numeric, 3 digits.
    pub currency: String,
    /// YYMM.
    pub expiry: String,
    pub status: AccountStatus,
    /// IBM 3624 PIN offset of a card with online PIN, 4 to 12 digits ([`crate::pin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_offset: Option<String>,
}

/// One `[[token]]`: a device token and its funding account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub token: String,
    pub funding_pan: String,
    pub status: TokenStatus,
    /// YYMM.
    pub expiry: String,
    /// Payment Account Reference, 29 characters.
    pub par: String,
    pub domain: TokenDomain,
}

/// One `[[merchant]]`: a merchant (DE 42) and the terminals (DE 41) registered to it. Only
/// these terminals, each with its own merchant id, are served (issue 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMerchant {
    /// DE 42, 1 to 15 printable characters.
    pub id: String,
    pub name: String,
    /// DE 41 of its terminals, 1 to 8 printable characters each (no `-`), or a numbered range
    /// `BENCH000-BENCH063` (the same prefix, numbers of the same width, at most 10000).
    pub terminals: Vec<String>,
}

/// Most terminals one range may name.
const MAX_RANGE: u64 = 10_000;

/// The terminal ids `entry` names: itself, or every id of a numbered range.
fn expand(entry: &str) -> Result<Vec<String>, String> {
    let printable = |t: &str| !t.is_empty() && t.len() <= 8 && t.bytes().all(|b| (0x21..=0x7E).contains(&b));
    let Some((lo, hi)) = entry.split_once('-') else {
        return if printable(entry) { Ok(vec![entry.to_string()]) } else { Err(format!("terminal {entry:?}: 1 to 8 printable characters, no spaces")) };
    };
    let split = |t: &str| {
        let n = t.bytes().rev().take_while(u8::is_ascii_digit).count();
        (t[..t.len() - n].to_string(), t[t.len() - n..].to_string())
    };
    let ((p1, n1), (p2, n2)) = (split(lo), split(hi));
    let (Ok(a), Ok(b)) = (n1.parse::<u64>(), n2.parse::<u64>()) else {
        return Err(format!("terminal range {entry:?}: both ends end in digits"));
    };
    if p1 != p2 || n1.len() != n2.len() || !printable(lo) || !printable(hi) || a > b || b - a >= MAX_RANGE {
        return Err(format!("terminal range {entry:?}: the same prefix, numbers of the same width, low to high, at most {MAX_RANGE}"));
    }
    Ok((a..=b).map(|n| format!("{p1}{n:0w$}", w = n1.len())).collect())
}

impl Seed {
    /// Terminal id → its merchant id, every `[[merchant]]` expanded (checked at parse).
    pub fn terminals(&self) -> std::collections::HashMap<String, String> {
        let mut out = std::collections::HashMap::new();
        for m in &self.merchants {
            for t in m.terminals.iter().filter_map(|e| expand(e).ok()).flatten() {
                out.insert(t, m.id.clone());
            }
        }
        out
    }
}

/// The whole seed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default, rename = "account")]
    pub accounts: Vec<SeedAccount>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<SeedToken>,
    /// Merchants and their terminals: no other terminal is served.
    #[serde(default, rename = "merchant")]
    pub merchants: Vec<SeedMerchant>,
    /// Transit gates this acquirer serves (`[transit]`): none → no aggregated advices, no deny list.
    #[serde(default)]
    pub transit: Option<SeedTransit>,
}

/// `[transit]`: the registered transit merchants and gates, their aggregation limit and the
/// deny-list key (docs/gate.md "Back office").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTransit {
    /// DE 42 of the transit operators.
    pub merchant_ids: Vec<String>,
    /// DE 41 of their gates.
    pub terminal_ids: Vec<String>,
    /// The most one aggregated advice may carry (minor units): the scheme's cumulative spend limit.
    pub cumulative_spend_limit: u64,
    /// HMAC-SHA256 key of the deny list, hex (the gates' `deny_list.key`). TEST ONLY.
    pub deny_list_key: String,
}

impl SeedTransit {
    /// The deny-list key, checked at parse.
    pub fn key(&self) -> Vec<u8> {
        hex::decode(&self.deny_list_key).unwrap_or_default()
    }
}

/// A PAN: 12 to 19 decimal digits.
pub(crate) fn valid_pan(p: &str) -> bool {
    (12..=19).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// YYMM with a month 01..=12, as the number YYMM.
pub(crate) fn parse_yymm(s: &str) -> Option<u32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    (1..=12).contains(&(v % 100)).then_some(v)
}

impl Seed {
    /// Parses and checks a seed file: PANs of 12-19 digits, YYMM dates, 3-digit currencies,
    /// 29-character PARs, no PAN twice, every token's funding account present.
    pub fn parse(text: &str) -> Result<Seed, AcquirerError> {
        let seed: Seed = toml::from_str(text).map_err(|e| AcquirerError::Seed(e.to_string()))?;
        seed.check()?;
        Ok(seed)
    }

    /// The built-in seed, [`DEFAULT_SEED`].
    pub fn builtin() -> Result<Seed, AcquirerError> {
        Seed::parse(DEFAULT_SEED)
    }

    fn check(&self) -> Result<(), AcquirerError> {
        let bad = |what: String| Err(AcquirerError::Seed(what));
        let mut accounts = HashSet::new();
        for a in &self.accounts {
            if !valid_pan(&a.pan) {
                return bad(format!("account {}: a PAN has 12 to 19 digits", mask_pan(&a.pan)));
            }
            if parse_yymm(&a.expiry).is_none() {
                return bad(format!("account {}: expiry {:?} is not YYMM", mask_pan(&a.pan), a.expiry));
            }
            if a.currency.len() != 3 || !a.currency.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!("account {}: currency {:?} is not 3 digits", mask_pan(&a.pan), a.currency));
            }
            if let Some(Err(e)) = a.pin_offset.as_deref().map(crate::pin::check_offset) {
                return bad(format!("account {}: {e}", mask_pan(&a.pan)));
            }
            if !accounts.insert(a.pan.as_str()) {
                return bad(format!("account {} is listed twice", mask_pan(&a.pan)));
            }
        }
        let mut tokens = HashSet::new();
        for t in &self.tokens {
            let tm = mask_pan(&t.token);
            if !valid_pan(&t.token) {
                return bad(format!("token {tm}: a PAN has 12 to 19 digits"));
            }
            if accounts.contains(t.token.as_str()) {
                return bad(format!("token {tm} is also listed as an account"));
            }
            if !accounts.contains(t.funding_pan.as_str()) {
                return bad(format!("token {tm}: its funding account is not an [[account]]"));
            }
            if parse_yymm(&t.expiry).is_none() {
                return bad(format!("token {tm}: expiry {:?} is not YYMM", t.expiry));
            }
            if t.par.len() != 29 || !t.par.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad(format!("token {tm}: a PAR has 29 letters or digits"));
            }
            if !tokens.insert(t.token.as_str()) {
                return bad(format!("token {tm} is listed twice"));
            }
        }
        let mut merchants = HashSet::new();
        let mut terminals = HashSet::new();
        for m in &self.merchants {
            if m.id.is_empty() || m.id.len() > 15 || !m.id.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
                return bad(format!("merchant {:?}: an id of 1 to 15 printable characters", m.id));
            }
            if !merchants.insert(m.id.as_str()) {
                return bad(format!("merchant {} is listed twice", m.id));
            }
            for e in &m.terminals {
                for t in expand(e).map_err(|e| AcquirerError::Seed(format!("merchant {}: {e}", m.id)))? {
                    if !terminals.insert(t.clone()) {
                        return bad(format!("terminal {t} is registered twice"));
                    }
                }
            }
        }
        if let Some(t) = &self.transit {
            if let Some(g) = t.terminal_ids.iter().find(|g| !terminals.contains(g.as_str())) {
                return bad(format!("transit gate {g} is not a registered terminal of a [[merchant]]"));
            }
            if hex::decode(&t.deny_list_key).map_or(true, |k| k.len() < 16) {
                return bad("transit.deny_list_key: at least 16 bytes of hex".into());
            }
            if t.terminal_ids.iter().any(|id| id.is_empty() || id.len() > 8) {
                return bad("transit.terminal_ids: 1 to 8 characters each".into());
            }
        }
        Ok(())
    }
}
