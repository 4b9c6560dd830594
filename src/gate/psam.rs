//! A software PSAM (purchase secure access module) for the closed-loop transit gate: it holds the
//! purse purchase master key, computes MAC1 for a card's purchase (what a hardware PSAM does for
//! INIT FOR SAM PURCHASE `80 70`, transit.md step 3), checks the card's MAC2 (CREDIT SAM FOR
//! PURCHASE `80 72`, step 6) and keeps the terminal transaction number.
//!
//! The key comes from a file whose path the gate configuration gives ([`PsamConfig`]); the key is
//! never logged or printed (`Debug` leaves it out). The product ships no key: the only key file in
//! the repository is the TEST ONLY `test-cards/keys/transit.toml`. The cryptography is
//! `kernels::purse::crypto` (our reading of the PBOC e-purse scheme, unverified against a real
//! PSAM).

use kernels::purse::crypto::{self, Key16};
use kernels::purse::gate::{Mac1Answer, Mac1Request, Mac2Check};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `[psam]` table of the gate configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsamConfig {
    /// The key file (TOML, a `[purchase]` table: `key_index`, `key_version`, `algorithm`,
    /// `master_key` as 32 hex digits). Other tables of the file are ignored.
    pub key_file: PathBuf,
    /// The PSAM's terminal number, 12 hex digits (6 bytes).
    pub terminal_id: String,
    /// The terminal transaction number the PSAM starts from (the gate keeps the last one used).
    #[serde(default)]
    pub ttsn: u32,
}

/// What can go wrong with the PSAM. Messages name files and fields, never key material.
#[derive(Debug, thiserror::Error)]
pub enum PsamError {
    #[error("PSAM key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("PSAM key file {path}: {source}")]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("PSAM key file {path}: purchase.master_key is not 16 bytes of hex")]
    Key { path: PathBuf },
    #[error("PSAM terminal_id {0:?} is not 6 bytes of hex")]
    TerminalId(String),
    #[error("card key version {card} does not match the PSAM key version {psam}")]
    KeyVersion { card: u8, psam: u8 },
    #[error("card algorithm {card:02X} is not the PSAM's {psam:02X}")]
    Algorithm { card: u8, psam: u8 },
}

#[derive(Deserialize)]
struct KeyFile {
    purchase: PurchaseKey,
}

#[derive(Deserialize)]
struct PurchaseKey {
    key_index: u8,
    key_version: u8,
    algorithm: u8,
    master_key: String,
}

/// What the gate asks of a PSAM, software or hardware (a PC/SC PSAM would implement it with
/// `80 70` / `80 72`).
pub trait PurchaseSam {
    /// The terminal number the card sees in INITIALIZE and that MAC1 and TAC cover.
    fn terminal_id(&self) -> [u8; 6];
    /// The purchase key index to ask the card for.
    fn key_index(&self) -> u8;
    /// MAC1 for a purchase, with the next terminal transaction number.
    fn compute_mac1(&mut self, req: &Mac1Request) -> Result<Mac1Answer, PsamError>;
    /// Does the card's MAC2 prove the debit of this session?
    fn verify_mac2(&mut self, check: &Mac2Check) -> Result<bool, PsamError>;
}

/// The software PSAM.
pub struct Psam {
    terminal_id: [u8; 6],
    key_index: u8,
    key_version: u8,
    algorithm: u8,
    master: Key16,
    ttsn: u32,
}

impl std::fmt::Debug for Psam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Psam")
            .field("terminal_id", &hex::encode_upper(self.terminal_id))
            .field("key_index", &self.key_index)
            .field("key_version", &self.key_version)
            .field("ttsn", &self.ttsn)
            .finish_non_exhaustive()
    }
}

fn terminal_id(s: &str) -> Result<[u8; 6], PsamError> {
    hex::decode(s).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| PsamError::TerminalId(s.to_string()))
}

impl Psam {
    /// Loads the key file named by the configuration. A relative `key_file` is taken from `base`
    /// (the configuration directory), if given.
    pub fn load(cfg: &PsamConfig, base: Option<&Path>) -> Result<Psam, PsamError> {
        let path = match base {
            Some(b) if cfg.key_file.is_relative() => b.join(&cfg.key_file),
            _ => cfg.key_file.clone(),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| PsamError::Read { path: path.clone(), source })?;
        Psam::from_key_text(&text, &path, &cfg.terminal_id, cfg.ttsn)
    }

    /// The same from the key file's text (`path` only names it in errors).
    pub fn from_key_text(text: &str, path: &Path, terminal: &str, ttsn: u32) -> Result<Psam, PsamError> {
        let f: KeyFile = toml::from_str(text).map_err(|source| PsamError::Toml { path: path.to_path_buf(), source })?;
        let master =
            hex::decode(&f.purchase.master_key).ok().and_then(|v| Key16::try_from(v).ok()).ok_or_else(|| PsamError::Key { path: path.to_path_buf() })?;
        Ok(Psam {
            terminal_id: terminal_id(terminal)?,
            key_index: f.purchase.key_index,
            key_version: f.purchase.key_version,
            algorithm: f.purchase.algorithm,
            master,
            ttsn,
        })
    }

    /// The next terminal transaction number to be used (persist it between runs).
    pub fn ttsn(&self) -> u32 {
        self.ttsn
    }

    fn session_key(&self, req: &Mac1Request, ttsn: [u8; 4]) -> Result<crypto::Key8, PsamError> {
        if req.key_version != self.key_version {
            return Err(PsamError::KeyVersion { card: req.key_version, psam: self.key_version });
        }
        if req.algorithm != self.algorithm {
            return Err(PsamError::Algorithm { card: req.algorithm, psam: self.algorithm });
        }
        let dpk = crypto::card_key(&self.master, &crypto::issuer_factor(&req.issuer_id), &req.serial);
        Ok(crypto::session_key(&dpk, req.random, req.offline_atc, ttsn))
    }
}

impl PurchaseSam for Psam {
    fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    fn key_index(&self) -> u8 {
        self.key_index
    }

    /// Uses the current terminal transaction number and steps it, whatever the card does next
    /// (a real PSAM counts every INIT FOR SAM PURCHASE).
    fn compute_mac1(&mut self, req: &Mac1Request) -> Result<Mac1Answer, PsamError> {
        let ttsn = self.ttsn.to_be_bytes();
        let sk = self.session_key(req, ttsn)?;
        self.ttsn = self.ttsn.wrapping_add(1);
        Ok(Mac1Answer { ttsn, mac1: crypto::mac1(&sk, req.amount, req.kind, self.terminal_id, req.when) })
    }

    /// Recomputes the session key from the session's inputs, so the MAC2 of a torn debit's proof
    /// is checked the same way as a fresh one.
    fn verify_mac2(&mut self, check: &Mac2Check) -> Result<bool, PsamError> {
        let sk = self.session_key(&check.session.request, check.session.ttsn)?;
        Ok(crypto::mac2(&sk, check.session.request.amount) == check.mac2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::purse::gate::Session;
    use kernels::purse::{CardSerial, PurchaseType, PurseDateTime};

    // A key file of this test only (not the test-cards one): the known answers of
    // kernels::purse::crypto use this master.
    const KEYS: &str = "[purchase]\nkey_index = 1\nkey_version = 1\nalgorithm = 0\nmaster_key = \"0123456789ABCDEFFEDCBA9876543210\"\n";

    fn psam(ttsn: u32) -> Psam {
        Psam::from_key_text(KEYS, Path::new("test.toml"), "112233445566", ttsn).unwrap()
    }

    fn req() -> Mac1Request {
        Mac1Request {
            serial: CardSerial([0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]),
            issuer_id: [0x03, 0x11, 0x31, 0x00, 0, 0, 0, 1],
            random: [0x11, 0x22, 0x33, 0x44],
            offline_atc: 5,
            amount: 300,
            kind: PurchaseType::Capp,
            when: PurseDateTime::new(2026, 12, 5, 8, 30, 0).unwrap(),
            key_version: 1,
            algorithm: 0,
        }
    }

    #[test]
    fn mac1_matches_the_known_answer_and_steps_the_ttsn() {
        let mut p = psam(0x107);
        let a = p.compute_mac1(&req()).unwrap();
        // kernels::purse::crypto's known answer for this key, card and session.
        assert_eq!(a, Mac1Answer { ttsn: [0, 0, 1, 7], mac1: [0x9C, 0x77, 0x5E, 0x66] });
        assert_eq!(p.ttsn(), 0x108);
        let b = p.compute_mac1(&req()).unwrap();
        assert_eq!(b.ttsn, [0, 0, 1, 8]);
        assert_ne!(b.mac1, a.mac1);
    }

    #[test]
    fn mac2_is_checked() {
        let mut p = psam(0x107);
        let session = Session { request: req(), ttsn: [0, 0, 1, 7] };
        assert!(p.verify_mac2(&Mac2Check { session, mac2: [0xC5, 0xCD, 0xF0, 0xAF] }).unwrap());
        assert!(!p.verify_mac2(&Mac2Check { session, mac2: [0xC5, 0xCD, 0xF0, 0xAE] }).unwrap());
        let other = Session { ttsn: [0, 0, 1, 8], ..session };
        assert!(!p.verify_mac2(&Mac2Check { session: other, mac2: [0xC5, 0xCD, 0xF0, 0xAF] }).unwrap());
    }

    #[test]
    fn refuses_other_key_versions_and_algorithms() {
        let mut p = psam(0);
        assert!(matches!(p.compute_mac1(&Mac1Request { key_version: 2, ..req() }), Err(PsamError::KeyVersion { card: 2, psam: 1 })));
        assert!(matches!(p.compute_mac1(&Mac1Request { algorithm: 4, ..req() }), Err(PsamError::Algorithm { card: 4, psam: 0 })));
        assert_eq!(p.ttsn(), 0, "a refused request uses no transaction number");
    }

    #[test]
    fn loading_errors_name_the_file_not_the_key() {
        let e = Psam::from_key_text("[purchase]\nkey_index=1\nkey_version=1\nalgorithm=0\nmaster_key=\"0123\"\n", Path::new("k.toml"), "112233445566", 0)
            .unwrap_err();
        assert_eq!(e.to_string(), "PSAM key file k.toml: purchase.master_key is not 16 bytes of hex");
        assert!(matches!(Psam::from_key_text(KEYS, Path::new("k.toml"), "1122", 0), Err(PsamError::TerminalId(_))));
        let missing = PsamConfig { key_file: "no-such-psam-key.toml".into(), terminal_id: "112233445566".into(), ttsn: 0 };
        let e = Psam::load(&missing, Some(Path::new("/nonexistent-dir"))).unwrap_err();
        assert!(e.to_string().starts_with("PSAM key file /nonexistent-dir/no-such-psam-key.toml:"), "{e}");
        let shown = format!("{:?}", psam(0));
        assert!(!shown.contains("0123456789") && !shown.contains("[1, 35, 69"), "{shown}");
    }

    #[test]
    fn config_table() {
        let c: PsamConfig = toml::from_str("key_file = \"keys/transit.toml\"\nterminal_id = \"112233445566\"\n").unwrap();
        assert_eq!((c.key_file, c.ttsn), (PathBuf::from("keys/transit.toml"), 0));
        assert!(toml::from_str::<PsamConfig>("key_file = \"k\"\nterminal_id = \"1\"\nmaster_key = \"00\"\n").is_err());
    }
}
