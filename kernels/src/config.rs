//! Terminal and combination configuration, as data (deserialized from `config/*.toml` by the
//! binary). Book B §3.1 names the per-combination items.

use crate::types::{Amount, Ttq};
use serde::Deserialize;

/// Kernel identifiers (Book B §3.3.2.5 C, Table 3-6; one byte, b8b7 = 00). Which of them this
/// crate implements is [`crate::kernel::REGISTRY`]; the configuration accepts only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelId {
    /// Book C-1.
    C1 = 1,
    /// Book C-2 (Mastercard).
    C2 = 2,
    /// Visa qVSDC, Book C-3.
    C3 = 3,
    /// Book C-4 (American Express).
    C4 = 4,
    /// Book C-5 (JCB).
    C5 = 5,
    /// Book C-6 (Discover).
    C6 = 6,
    /// UnionPay QuickPass qPBOC/qUICS, Book C-7.
    C7 = 7,
    /// Book C-8.
    C8 = 8,
}

impl KernelId {
    const ALL: [KernelId; 8] = [KernelId::C1, KernelId::C2, KernelId::C3, KernelId::C4, KernelId::C5, KernelId::C6, KernelId::C7, KernelId::C8];
    const NAMES: [&'static str; 8] = ["C-1", "C-2", "C-3", "C-4", "C-5", "C-6", "C-7", "C-8"];

    /// The kernel of a one-byte Kernel Identifier, implemented or not (see [`crate::kernel::registration`]).
    pub fn from_u8(v: u8) -> Option<KernelId> {
        Self::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }
    pub fn id(self) -> u8 {
        self as u8
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[usize::from(self.id() - 1)]
    }
}

/// Book B Table 3-6: the kernel an AID's RID implies when the card gives no 9F2A.
pub fn default_kernel_for_rid(aid: &[u8]) -> Option<u8> {
    let rid: [u8; 5] = aid.get(..5)?.try_into().ok()?;
    Some(match rid {
        [0xA0, 0, 0, 0, 0x04] => 2,
        [0xA0, 0, 0, 0, 0x03] => 3,
        [0xA0, 0, 0, 0, 0x25] => 4,
        [0xA0, 0, 0, 0, 0x65] => 5,
        [0xA0, 0, 0, 0x01, 0x52] => 6,
        [0xA0, 0, 0, 0x03, 0x33] => 7,
        _ => return None,
    })
}

/// One Combination {AID, Kernel ID} with its limits (Book B §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    pub aid: Vec<u8>,
    pub kernel: KernelId,
    pub label: String,
    /// Reader Contactless Transaction Limit (Book B §3.1.1.5): at or above → not allowed.
    pub txn_limit: Option<Amount>,
    /// Reader Contactless Floor Limit (Book B §3.1.1.6): above → online cryptogram required.
    pub floor_limit: Option<Amount>,
    /// Terminal Floor Limit 9F1B, used when the reader floor limit is absent (Book B §3.1.1.7).
    pub terminal_floor_limit: Option<Amount>,
    /// Reader CVM Required Limit (Book B §3.1.1.8): at or above → CVM required.
    pub cvm_limit: Option<Amount>,
    pub status_check: bool,
    pub zero_amount_allowed: bool,
    pub extended_selection: bool,
    pub ttq: Option<Ttq>,
}

/// Terminal-wide data the kernels put in the data store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalData {
    pub country: [u8; 2],
    pub currency: [u8; 2],
    pub currency_exponent: u8,
    /// 9F35.
    pub terminal_type: u8,
    /// 9F33.
    pub capabilities: [u8; 3],
    /// 9F40.
    pub additional_capabilities: [u8; 5],
    pub terminal_id: String,
    pub merchant_name_location: String,
    /// Whether the terminal can go online at all (TTQ byte 1 b4 is its mirror).
    pub online_capable: bool,
}

/// Everything the Entry Point is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointConfig {
    pub terminal: TerminalData,
    pub combinations: Vec<Combination>,
}

/// Serde shapes for `config/kernels.toml`; the binary converts them with [`CombinationToml::build`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinationToml {
    pub aid: String,
    pub kernel: u8,
    #[serde(default)]
    pub label: String,
    pub txn_limit: Option<String>,
    pub floor_limit: Option<String>,
    pub terminal_floor_limit: Option<String>,
    pub cvm_limit: Option<String>,
    #[serde(default)]
    pub status_check: bool,
    #[serde(default = "yes")]
    pub zero_amount_allowed: bool,
    #[serde(default)]
    pub extended_selection: bool,
    pub ttq: Option<String>,
}

/// "3 and 7 are": the registered kernel ids, for error messages.
fn implemented() -> String {
    let ids: Vec<String> = crate::kernel::REGISTRY.iter().map(|r| r.id.id().to_string()).collect();
    match ids.split_last() {
        None => "none is".into(),
        Some((last, [])) => format!("{last} is"),
        Some((last, rest)) => format!("{} and {last} are", rest.join(", ")),
    }
}

fn yes() -> bool {
    true
}

/// A configuration value that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl CombinationToml {
    pub fn build(&self, exponent: u32) -> Result<Combination, ConfigError> {
        let err = |field: &str, problem: String| ConfigError { field: format!("{} {}", self.aid, field), problem };
        let aid = hex::decode(&self.aid).map_err(|e| err("aid", e.to_string()))?;
        if !(5..=16).contains(&aid.len()) {
            return Err(err("aid", "an AID has 5 to 16 bytes".into()));
        }
        let kernel = KernelId::from_u8(self.kernel)
            .filter(|&k| crate::kernel::registration(k).is_some())
            .ok_or_else(|| err("kernel", format!("kernel {} is not implemented ({})", self.kernel, implemented())))?;
        let amount = |f: &str, v: &Option<String>| -> Result<Option<Amount>, ConfigError> {
            v.as_deref().map(|s| Amount::parse(s, exponent).map_err(|e| err(f, e.to_string()))).transpose()
        };
        let ttq = match &self.ttq {
            Some(s) => Some(hex::decode(s).ok().and_then(|b| Ttq::from_slice(&b)).ok_or_else(|| err("ttq", "TTQ is 4 bytes of hex".into()))?),
            None => None,
        };
        Ok(Combination {
            aid,
            kernel,
            label: self.label.clone(),
            txn_limit: amount("txn_limit", &self.txn_limit)?,
            floor_limit: amount("floor_limit", &self.floor_limit)?,
            terminal_floor_limit: amount("terminal_floor_limit", &self.terminal_floor_limit)?,
            cvm_limit: amount("cvm_limit", &self.cvm_limit)?,
            status_check: self.status_check,
            zero_amount_allowed: self.zero_amount_allowed,
            extended_selection: self.extended_selection,
            ttq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_ids_round_trip_book_b_table_3_6() {
        for v in 1..=8 {
            let k = KernelId::from_u8(v).unwrap();
            assert_eq!(k.id(), v);
            assert_eq!(k.name(), format!("C-{v}"));
        }
        assert_eq!(KernelId::from_u8(0), None);
        assert_eq!(KernelId::from_u8(9), None);
        assert_eq!(KernelId::from_u8(0x83), None);
    }
}
