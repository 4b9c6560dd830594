//! Loads the configuration directory (`config/` by default, built into the binary) into the
//! kernels' types. Every bad value is an error naming the file and field.

use kernels::capk::{CapkFile, CapkStore, KeyMode};
use kernels::config::{CombinationToml, EntryPointConfig, TerminalData};
use serde::Deserialize;
use std::path::Path;

const BUILTIN_TERMINAL: &str = include_str!("../config/terminal.toml");
const BUILTIN_KERNELS: &str = include_str!("../config/kernels.toml");
const BUILTIN_CAPK: &str = include_str!("../config/capk.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminalToml {
    terminal: TerminalSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminalSection {
    terminal_id: String,
    merchant_id: String,
    merchant_name: String,
    country: String,
    currency: String,
    currency_exponent: u8,
    #[serde(default = "yuan")]
    currency_symbol: String,
    terminal_type: String,
    capabilities: String,
    additional_capabilities: String,
    online_capable: bool,
}

fn yuan() -> String {
    "¥".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelsToml {
    combination: Vec<CombinationToml>,
}

/// Everything the terminal is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ep: EntryPointConfig,
    pub capks: CapkStore,
    pub merchant_id: String,
    pub currency_symbol: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

fn err(file: &str, message: impl ToString) -> SettingsError {
    SettingsError::File { file: file.into(), message: message.to_string() }
}

fn fixed_hex<const N: usize>(file: &str, field: &str, v: &str) -> Result<[u8; N], SettingsError> {
    hex::decode(v).ok().and_then(|b| <[u8; N]>::try_from(b).ok()).ok_or_else(|| err(file, format!("{field} = {v:?} is not {N} bytes of hex")))
}

impl Settings {
    /// Built-in configuration, or the files of `dir` (missing files fall back to built-in).
    pub fn load(dir: Option<&Path>) -> Result<Settings, SettingsError> {
        let read = |name: &str, builtin: &'static str| -> Result<(String, String), SettingsError> {
            match dir {
                Some(d) => {
                    let p = d.join(name);
                    if p.exists() {
                        let text = std::fs::read_to_string(&p).map_err(|e| err(&p.display().to_string(), e))?;
                        Ok((p.display().to_string(), text))
                    } else {
                        Ok((format!("built-in {name}"), builtin.to_string()))
                    }
                }
                None => Ok((format!("built-in {name}"), builtin.to_string())),
            }
        };
        let (tf, tt) = read("terminal.toml", BUILTIN_TERMINAL)?;
        let (kf, kt) = read("kernels.toml", BUILTIN_KERNELS)?;
        let (cf, ct) = read("capk.toml", BUILTIN_CAPK)?;
        Self::parse(&tf, &tt, &kf, &kt, &cf, &ct)
    }

    pub fn parse(tf: &str, tt: &str, kf: &str, kt: &str, cf: &str, ct: &str) -> Result<Settings, SettingsError> {
        let t: TerminalToml = toml::from_str(tt).map_err(|e| err(tf, e))?;
        let t = t.terminal;
        if t.terminal_id.len() != 8 {
            return Err(err(tf, "terminal_id must have 8 characters"));
        }
        if t.merchant_id.len() != 15 {
            return Err(err(tf, "merchant_id must have 15 characters"));
        }
        if t.currency_exponent > 3 {
            return Err(err(tf, "currency_exponent must be 0 to 3"));
        }
        let terminal = TerminalData {
            country: fixed_hex(tf, "country", &t.country)?,
            currency: fixed_hex(tf, "currency", &t.currency)?,
            currency_exponent: t.currency_exponent,
            terminal_type: fixed_hex::<1>(tf, "terminal_type", &t.terminal_type)?[0],
            capabilities: fixed_hex(tf, "capabilities", &t.capabilities)?,
            additional_capabilities: fixed_hex(tf, "additional_capabilities", &t.additional_capabilities)?,
            terminal_id: t.terminal_id,
            merchant_name_location: t.merchant_name,
            online_capable: t.online_capable,
        };
        let k: KernelsToml = toml::from_str(kt).map_err(|e| err(kf, e))?;
        let combinations =
            k.combination.iter().map(|c| c.build(u32::from(terminal.currency_exponent))).collect::<Result<Vec<_>, _>>().map_err(|e| err(kf, e))?;
        if combinations.is_empty() {
            return Err(err(kf, "no [[combination]]: the terminal would accept nothing"));
        }
        let c: CapkFile = toml::from_str(ct).map_err(|e| err(cf, e))?;
        let capks = CapkStore::load(&c.capk, KeyMode::Test).map_err(|e| err(cf, e))?;
        Ok(Settings { ep: EntryPointConfig { terminal, combinations }, capks, merchant_id: t.merchant_id, currency_symbol: t.currency_symbol })
    }

    /// Overrides the TTQ of every combination (replay scripts fix it).
    pub fn override_ttq(&mut self, ttq: kernels::types::Ttq) {
        for c in &mut self.ep.combinations {
            c.ttq = Some(ttq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_configuration_loads() {
        let s = Settings::load(None).unwrap();
        assert!(s.ep.combinations.len() >= 2);
        assert!(s.capks.len() > 24);
    }

    #[test]
    fn bad_values_name_the_file_and_field() {
        let bad = BUILTIN_TERMINAL.replace("currency = \"0156\"", "currency = \"01\"");
        let e = Settings::parse("t.toml", &bad, "k", BUILTIN_KERNELS, "c", BUILTIN_CAPK).unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("currency"), "{e}");
        let bad = BUILTIN_KERNELS.replace("kernel = 3", "kernel = 9");
        let e = Settings::parse("t", BUILTIN_TERMINAL, "k.toml", &bad, "c", BUILTIN_CAPK).unwrap_err().to_string();
        assert!(e.contains("kernel 9 is not implemented"), "{e}");
        let e = Settings::parse("t", BUILTIN_TERMINAL, "k", BUILTIN_KERNELS, "c.toml", "capk = 3").unwrap_err().to_string();
        assert!(e.starts_with("c.toml"), "{e}");
    }
}
