//! Loads the configuration directory (`config/` by default, built into the binary) into the
//! kernels' types. Every bad value is an error naming the file and field.

use host_contract::Lang;
use kernels::capk::{CapkFile, CapkStore, KeyMode};
use kernels::config::{CombinationToml, EntryPointConfig, TerminalData};
use serde::Deserialize;
use std::path::Path;

const BUILTIN_TERMINAL: &str = include_str!("../config/terminal.toml");
const BUILTIN_KERNELS: &str = include_str!("../config/kernels.toml");
const BUILTIN_CAPK: &str = include_str!("../config/capk.toml");
const BUILTIN_HOST: &str = include_str!("../config/host.toml");

/// The files a configuration directory may hold; anything else ending in `.toml` is a mistake
/// (a misspelt name would otherwise be ignored and the built-in copy used).
const KNOWN_FILES: [&str; 6] = ["terminal.toml", "kernels.toml", "capk.toml", "host.toml", "acquirer.toml", "gate.toml"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostToml {
    host: HostSettings,
}

/// Where the acquirer is (config/host.toml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// `IP:PORT` of the acquirer; `None`: no host configured.
    pub address: Option<String>,
    #[serde(default = "five_seconds")]
    pub timeout_ms: u64,
    /// MAC every message under keys established with `acquirer_key` (issue 12). Only a
    /// third-party test host without keys may be configured `mac = false`: the screen and the
    /// JSON report then say the link is unauthenticated.
    #[serde(default = "yes")]
    pub mac: bool,
    /// The acquirer's P-256 public key (SEC1 uncompressed, hex), pinned: provisioning refuses an
    /// acquirer that cannot sign with it.
    pub acquirer_key: Option<String>,
    /// Wire format: "ascii87" (default) or "bcd87" (binary / BCD with a TPDU, Chinese POS hosts).
    #[serde(default = "ascii87_name")]
    pub wire: String,
    /// TPDU of `bcd87` messages, 10 hex digits (ID 60, destination, originator).
    #[serde(default = "default_tpdu")]
    pub tpdu: String,
}

fn yes() -> bool {
    true
}

fn ascii87_name() -> String {
    "ascii87".into()
}

fn default_tpdu() -> String {
    "6000030000".into()
}

impl HostSettings {
    /// The pinned acquirer key, checked.
    pub fn pinned_key(&self) -> Result<shanfu_keys::p256::ecdsa::VerifyingKey, String> {
        let hex =
            self.acquirer_key.as_deref().ok_or("config/host.toml [host]: `acquirer_key` is required when `mac` is on (the acquirer's P-256 public key)")?;
        let bytes = hex::decode(hex.trim()).map_err(|_| "config/host.toml [host] acquirer_key: not hex".to_string())?;
        shanfu_keys::p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| "config/host.toml [host] acquirer_key: not a P-256 public key".to_string())
    }

    /// The wire format, checked.
    pub fn spec(&self) -> Result<iso8583::Spec, String> {
        match self.wire.as_str() {
            "ascii87" => Ok(iso8583::ascii87().clone()),
            "bcd87" => {
                let b: [u8; 5] = hex::decode(&self.tpdu).ok().and_then(|v| v.try_into().ok()).ok_or("config/host.toml [host] tpdu: not 10 hex digits")?;
                // The TPDU's first byte is its ID, 60 on Chinese POS links; the acquirer tells a
                // bcd87 frame from an ascii87 one by it.
                if b[0] != 0x60 {
                    return Err("config/host.toml [host] tpdu: must start with 60 (the TPDU ID)".into());
                }
                Ok(iso8583::Spec::bcd87_with_tpdu(b))
            }
            other => Err(format!("config/host.toml [host] wire: {other:?} is not \"ascii87\" or \"bcd87\"")),
        }
    }
}

fn five_seconds() -> u64 {
    5000
}

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
    /// `test` or `live`: which CA public keys the terminal trusts (EMV Book 2 §5.1; a live
    /// terminal must never accept a test-signed card).
    capk_mode: String,
    capabilities: String,
    additional_capabilities: String,
    online_capable: bool,
    /// Language of the screens and receipts: "zh-CN" or "en"; absent: zh-CN for a CNY
    /// terminal (currency 0156), else en.
    language: Option<String>,
    /// IANA time zone of the terminal's local time (screens, receipts, DE 12/13).
    #[serde(default = "shanghai")]
    time_zone: String,
    /// Whether the PIN pad offers "PIN bypass" when the card asks for online PIN (default no:
    /// the issuer then declines anyway, issue 12).
    #[serde(default)]
    pin_bypass: bool,
}

fn shanghai() -> String {
    "Asia/Shanghai".into()
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
    pub host: HostSettings,
    /// Language of the cashier screens and receipts (`language` under `[terminal]`).
    pub lang: Lang,
    /// The terminal's local time zone (`time_zone` under `[terminal]`).
    pub time_zone: jiff::tz::TimeZone,
    /// Its IANA name, as configured.
    pub time_zone_name: String,
    /// `[terminal] pin_bypass`: the PIN pad may offer "PIN bypass".
    pub pin_bypass: bool,
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
    /// Built-in configuration, or the files of `dir` (missing files fall back to built-in). A
    /// `dir` that does not exist, or that holds a `.toml` file of another name, is an error.
    pub fn load(dir: Option<&Path>) -> Result<Settings, SettingsError> {
        if let Some(d) = dir {
            let shown = d.display().to_string();
            let entries = std::fs::read_dir(d).map_err(|e| err(&shown, format!("cannot read the configuration directory: {e}")))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".toml") && !KNOWN_FILES.contains(&name.as_str()) {
                    return Err(err(&e.path().display().to_string(), format!("unknown configuration file (expected one of {})", KNOWN_FILES.join(", "))));
                }
            }
        }
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
        let (hf, ht) = read("host.toml", BUILTIN_HOST)?;
        let mut s = Self::parse(&tf, &tt, &kf, &kt, &cf, &ct)?;
        s.host = Self::parse_host(&hf, &ht)?;
        Ok(s)
    }

    fn parse_host(hf: &str, ht: &str) -> Result<HostSettings, SettingsError> {
        let h: HostToml = toml::from_str(ht).map_err(|e| err(hf, e))?;
        if let Some(a) = &h.host.address {
            if a != "embedded" && a.parse::<std::net::SocketAddr>().is_err() {
                return Err(err(hf, format!("[host] address = {a:?} is not IP:PORT")));
            }
        }
        if h.host.timeout_ms == 0 || h.host.timeout_ms > 120_000 {
            return Err(err(hf, "[host] timeout_ms must be 1 to 120000"));
        }
        if h.host.mac {
            h.host.pinned_key().map_err(|e| err(hf, e))?;
        }
        h.host.spec().map_err(|e| err(hf, e))?;
        Ok(h.host)
    }

    pub fn parse(tf: &str, tt: &str, kf: &str, kt: &str, cf: &str, ct: &str) -> Result<Settings, SettingsError> {
        let t: TerminalToml = toml::from_str(tt).map_err(|e| err(tf, e))?;
        let t = t.terminal;
        // DE 41 ans8 / DE 42 ans15: printable ASCII only, or no message could carry them.
        let printable = |v: &str| v.bytes().all(|b| (0x20..=0x7E).contains(&b));
        if t.terminal_id.len() != 8 || !printable(&t.terminal_id) {
            return Err(err(tf, format!("terminal_id = {:?} must be 8 printable ASCII characters (DE 41)", t.terminal_id)));
        }
        if t.merchant_id.len() != 15 || !printable(&t.merchant_id) {
            return Err(err(tf, format!("merchant_id = {:?} must be 15 printable ASCII characters (DE 42)", t.merchant_id)));
        }
        // 5F2A / 9F1A are n3 in BCD; DE 49 carries the three digits.
        for (key, v) in [("currency", &t.currency), ("country", &t.country)] {
            if v.len() != 4 || !v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(tf, format!("{key} = {v:?} must be an ISO numeric code as 4 digits, e.g. \"0156\"")));
            }
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
        let mode = match t.capk_mode.as_str() {
            "test" => KeyMode::Test,
            "live" => KeyMode::Live,
            other => return Err(err(tf, format!("capk_mode = {other:?} must be \"test\" or \"live\""))),
        };
        let capks = CapkStore::load_file(&c, mode).map_err(|e| err(cf, e))?;
        let lang = match t.language.as_deref() {
            None if t.currency == "0156" => Lang::ZhCn,
            None => Lang::En,
            Some("zh-CN") => Lang::ZhCn,
            Some("en") => Lang::En,
            Some(other) => return Err(err(tf, format!("[terminal] language = {other:?} must be \"zh-CN\" or \"en\""))),
        };
        let time_zone = jiff::tz::TimeZone::get(&t.time_zone)
            .map_err(|e| err(tf, format!("[terminal] time_zone = {:?} is not a known IANA time zone (e.g. \"Asia/Shanghai\"): {e}", t.time_zone)))?;
        Ok(Settings {
            ep: EntryPointConfig { terminal, combinations },
            capks,
            merchant_id: t.merchant_id,
            currency_symbol: t.currency_symbol,
            host: Self::parse_host("built-in host.toml", BUILTIN_HOST)?,
            lang,
            time_zone,
            time_zone_name: t.time_zone,
            pin_bypass: t.pin_bypass,
        })
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
    fn the_wire_format_and_its_tpdu_are_checked() {
        let host = |extra: &str| toml::from_str::<HostSettings>(extra).unwrap().spec();
        assert_eq!(host("").unwrap().name(), iso8583::ascii87().name());
        assert!(host("wire = \"bcd87\"").is_ok());
        for (cfg, says) in [
            ("wire = \"bcd87\"\ntpdu = \"5000030000\"", "must start with 60"),
            ("wire = \"bcd87\"\ntpdu = \"60000300\"", "not 10 hex digits"),
            ("wire = \"bcd93\"", "is not"),
        ] {
            let e = host(cfg).unwrap_err();
            assert!(e.contains(says), "{cfg}: {e}");
        }
    }

    #[test]
    fn builtin_configuration_loads() {
        let s = Settings::load(None).unwrap();
        assert!(s.ep.combinations.len() >= 2);
        assert!(s.capks.len() > 24);
        // The test revocation list entry of config/capk.toml is loaded with the keys.
        assert_eq!(s.capks.revoked_issuer_serials(&[0xA0, 0, 0, 0x03, 0x33], 0xE1), vec![[0, 0, 0xA1]]);
    }

    #[test]
    fn a_bad_revoked_issuer_entry_names_the_file_and_the_entry() {
        let bad = BUILTIN_CAPK.replace("serial = \"0000A1\"", "serial = \"A1\"");
        let e = Settings::parse("t", BUILTIN_TERMINAL, "k", BUILTIN_KERNELS, "capk.toml", &bad).unwrap_err().to_string();
        assert!(e.starts_with("capk.toml") && e.contains("revoked_issuer A000000333/E1/A1") && e.contains("serial"), "{e}");
        let bad = BUILTIN_CAPK.replace("note = \"test:", "colour = \"test:");
        let e = Settings::parse("t", BUILTIN_TERMINAL, "k", BUILTIN_KERNELS, "capk.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn values_that_cannot_be_sent_are_refused_at_load() {
        for (from, to, key) in [
            ("terminal_id = \"SHF00001\"", "terminal_id = \"SHF0000é\"", "terminal_id"),
            ("currency = \"0156\"", "currency = \"FFFF\"", "currency"),
            ("country = \"0156\"", "country = \"01A6\"", "country"),
        ] {
            let bad = BUILTIN_TERMINAL.replace(from, to);
            assert_ne!(bad, BUILTIN_TERMINAL, "{from}");
            let e = Settings::parse("t.toml", &bad, "k", BUILTIN_KERNELS, "c", BUILTIN_CAPK).unwrap_err().to_string();
            assert!(e.starts_with("t.toml") && e.contains(key), "{e}");
        }
        let e = Settings::parse_host("h.toml", "[host]\naddress = \"nowhere\"\n").unwrap_err().to_string();
        assert!(e.starts_with("h.toml") && e.contains("address"), "{e}");
    }

    #[test]
    fn language_defaults_to_chinese_for_cny_and_unknown_values_are_refused() {
        let parse = |tt: &str| Settings::parse("t.toml", tt, "k", BUILTIN_KERNELS, "c", BUILTIN_CAPK);
        let s = parse(BUILTIN_TERMINAL).unwrap();
        assert_eq!(s.lang, Lang::ZhCn, "the shipped CNY terminal speaks Chinese");
        assert_eq!(s.time_zone_name, "Asia/Shanghai");
        let usd = BUILTIN_TERMINAL.replace("currency = \"0156\"", "currency = \"0840\"");
        assert_eq!(parse(&usd).unwrap().lang, Lang::En, "another currency: English");
        let with = |line: &str| BUILTIN_TERMINAL.replace("[terminal]\n", &format!("[terminal]\n{line}\n"));
        assert_eq!(parse(&with("language = \"en\"")).unwrap().lang, Lang::En);
        assert_eq!(parse(&with("language = \"zh-CN\"")).unwrap().lang, Lang::ZhCn);
        let e = parse(&with("language = \"fr\"")).unwrap_err().to_string();
        assert!(e.starts_with("t.toml") && e.contains("language") && e.contains("\"fr\""), "{e}");
        let e = parse(&with("time_zone = \"Mars/Olympus\"")).unwrap_err().to_string();
        assert!(e.starts_with("t.toml") && e.contains("time_zone"), "{e}");
        assert_eq!(parse(&with("time_zone = \"UTC\"")).unwrap().time_zone_name, "UTC");
    }

    #[test]
    fn a_missing_directory_or_a_misspelt_file_is_an_error() {
        let d = std::env::temp_dir().join(format!("shanfu-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let e = Settings::load(Some(&d)).unwrap_err().to_string();
        assert!(e.contains("cannot read the configuration directory"), "{e}");
        std::fs::create_dir_all(&d).unwrap();
        assert!(Settings::load(Some(&d)).is_ok(), "an empty directory means built-in files");
        std::fs::write(d.join("termnal.toml"), "").unwrap();
        let e = Settings::load(Some(&d)).unwrap_err().to_string();
        assert!(e.contains("termnal.toml") && e.contains("unknown configuration file"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
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
