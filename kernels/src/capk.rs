//! Certification Authority public keys (EMV Book 2 §11.2, "CA Public Key Management").
//!
//! The terminal keeps, per RID, the CA public keys it accepts, each identified by its one-byte
//! index (tag 8F on the card). Every key in the configuration carries a checksum,
//! `SHA-1(RID ‖ index ‖ modulus ‖ exponent)`, which is checked when the store is built, so a
//! corrupted or hand-edited modulus is refused before it can be used.
//!
//! Test and live keys never share a store: test and live indexes collide (e.g. Mastercard 05),
//! so a store is built for one [`KeyMode`] and refuses entries of the other.
//!
//! The file format is the `[[capk]]` array of `config/capk.toml`, with its certification
//! revocation list as `[[revoked_issuer]]` tables (Book 2 §6.3 step 10: RID, CA public key index
//! and issuer certificate serial number); this module only defines the serde shapes
//! ([`CapkFile`], [`CapkEntry`], [`RevokedIssuerEntry`]): parsing TOML is the binary's job.

use crate::types::EmvDate;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One `[[capk]]` table as written in the configuration file. All byte fields are hex.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapkEntry {
    /// Free text ("visa", "unionpay", ...), informational only.
    pub scheme: Option<String>,
    /// Registered Application Provider Identifier, 5 bytes.
    pub rid: String,
    /// CA public key index, 1 byte.
    pub index: String,
    /// Public exponent (EMV allows 3 and 65537), 1 to 3 bytes.
    pub exponent: String,
    /// Modulus, big-endian.
    pub modulus: String,
    /// SHA-1(RID ‖ index ‖ modulus ‖ exponent), 20 bytes.
    pub checksum: String,
    /// Last day of validity, "YYMMDD". Absent: no expiry configured.
    pub expiry: Option<String>,
    /// Listed on the CA revocation list: kept so the refusal can be reported precisely.
    pub revoked: Option<bool>,
    /// "test" or "live"; absent means "test".
    pub mode: Option<String>,
}

/// A whole CAPK file: `[[capk]]` tables and the revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapkFile {
    pub capk: Vec<CapkEntry>,
    /// Issuer certificates the payment systems revoked (certification revocation list).
    #[serde(default)]
    pub revoked_issuer: Vec<RevokedIssuerEntry>,
}

/// One `[[revoked_issuer]]` table: an issuer public key certificate revoked by its CA
/// (Book 2 §6.3 step 10). All fields hex.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedIssuerEntry {
    /// Registered Application Provider Identifier, 5 bytes.
    pub rid: String,
    /// CA public key index (8F) that signed the certificate, 1 byte.
    pub index: String,
    /// Certificate serial number, 3 bytes, as in the recovered issuer certificate.
    pub serial: String,
    /// Why it is listed, informational only.
    pub note: Option<String>,
}

/// Whether a key belongs to the scheme test PKI or to production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMode {
    Test,
    Live,
}

impl KeyMode {
    fn parse(s: Option<&str>) -> Option<KeyMode> {
        match s {
            None | Some("test") => Some(KeyMode::Test),
            Some("live") => Some(KeyMode::Live),
            Some(_) => None,
        }
    }
}

impl fmt::Display for KeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyMode::Test => "test",
            KeyMode::Live => "live",
        })
    }
}

/// A checked CA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    pub rid: [u8; 5],
    pub index: u8,
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
    pub expiry: Option<EmvDate>,
    pub revoked: bool,
    pub mode: KeyMode,
}

/// Why a CAPK configuration was refused or a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapkError {
    /// `entry` is "RID/index" as written in the file.
    #[error("CAPK {entry}: field `{field}` is not valid hex")]
    Hex { entry: String, field: &'static str },
    #[error("CAPK {entry}: field `{field}` has {got} bytes, expected {expected}")]
    FieldLength { entry: String, field: &'static str, got: usize, expected: &'static str },
    #[error("CAPK {rid}/{index:02X}: checksum does not match SHA-1(RID|index|modulus|exponent)")]
    Checksum { rid: String, index: u8 },
    #[error("CAPK {entry}: expiry {value:?} is not a valid YYMMDD date")]
    BadExpiry { entry: String, value: String },
    #[error("CAPK {entry}: mode {value:?} is neither \"test\" nor \"live\"")]
    BadMode { entry: String, value: String },
    #[error("CAPK {rid}/{index:02X} is a {key} key and cannot be loaded into a {store} key store")]
    ModeMismatch { rid: String, index: u8, key: KeyMode, store: KeyMode },
    #[error("CAPK {rid}/{index:02X} is configured twice")]
    Duplicate { rid: String, index: u8 },
    #[error("no CA public key for RID {rid} index {index:02X}")]
    Unknown { rid: String, index: u8 },
    #[error("CA public key {rid}/{index:02X} expired on {expiry:06} (today {today:06})")]
    Expired { rid: String, index: u8, expiry: u32, today: u32 },
    #[error("CA public key {rid}/{index:02X} is revoked")]
    Revoked { rid: String, index: u8 },
    #[error("revoked_issuer {rid}/{index:02X}/{serial} is listed twice")]
    DuplicateRevokedIssuer { rid: String, index: u8, serial: String },
}

/// Orders two-digit-year dates across the century: YY 50-99 are 19YY, 00-49 are 20YY
/// (the EMV convention for YYMMDD dates, Book 4 §6.7.3).
pub(crate) fn date_order(d: EmvDate) -> u32 {
    if d.0 >= 50_0000 {
        d.0
    } else {
        d.0 + 100_0000
    }
}

/// True when something valid up to and including `last_day` can no longer be used on `today`.
pub(crate) fn is_past(last_day: EmvDate, today: EmvDate) -> bool {
    date_order(last_day) < date_order(today)
}

fn parse_hex(entry: &str, field: &'static str, s: &str) -> Result<Vec<u8>, CapkError> {
    hex::decode(s.trim()).map_err(|_| CapkError::Hex { entry: entry.to_string(), field })
}

fn parse_fixed<const N: usize>(entry: &str, field: &'static str, s: &str, expected: &'static str) -> Result<[u8; N], CapkError> {
    let v = parse_hex(entry, field, s)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| CapkError::FieldLength { entry: entry.to_string(), field, got: v.len(), expected })
}

fn check_len(entry: &str, field: &'static str, v: &[u8], range: std::ops::RangeInclusive<usize>, expected: &'static str) -> Result<(), CapkError> {
    if range.contains(&v.len()) {
        Ok(())
    } else {
        Err(CapkError::FieldLength { entry: entry.to_string(), field, got: v.len(), expected })
    }
}

impl CaPublicKey {
    /// Checks and converts one configuration entry (hex, lengths, checksum, expiry, mode).
    pub fn from_entry(e: &CapkEntry) -> Result<CaPublicKey, CapkError> {
        let entry = format!("{}/{}", e.rid.trim(), e.index.trim());
        let rid: [u8; 5] = parse_fixed(&entry, "rid", &e.rid, "5")?;
        let [index] = parse_fixed::<1>(&entry, "index", &e.index, "1")?;
        let modulus = parse_hex(&entry, "modulus", &e.modulus)?;
        // Book 2 §11.2.2: modulus up to 248 bytes, exponent 3 or 2^16+1 (1 to 3 bytes).
        check_len(&entry, "modulus", &modulus, 1..=248, "1 to 248")?;
        let exponent = parse_hex(&entry, "exponent", &e.exponent)?;
        check_len(&entry, "exponent", &exponent, 1..=3, "1 to 3")?;
        let checksum: [u8; 20] = parse_fixed(&entry, "checksum", &e.checksum, "20")?;
        let digest = Sha1::new().chain_update(rid).chain_update([index]).chain_update(&modulus).chain_update(&exponent).finalize();
        if digest.as_slice() != checksum {
            return Err(CapkError::Checksum { rid: hex::encode_upper(rid), index });
        }
        let expiry = match &e.expiry {
            None => None,
            Some(s) => {
                let bad = || CapkError::BadExpiry { entry: entry.clone(), value: s.clone() };
                let b = hex::decode(s.trim()).map_err(|_| bad())?;
                Some(EmvDate::from_bcd(&b).ok_or_else(bad)?)
            }
        };
        let mode = KeyMode::parse(e.mode.as_deref().map(str::trim))
            .ok_or_else(|| CapkError::BadMode { entry: entry.clone(), value: e.mode.clone().unwrap_or_default() })?;
        Ok(CaPublicKey { rid, index, modulus, exponent, expiry, revoked: e.revoked.unwrap_or(false), mode })
    }
}

/// The CA public keys of one mode, by (RID, index), and the revoked issuer certificates.
#[derive(Debug, Clone)]
pub struct CapkStore {
    mode: KeyMode,
    keys: BTreeMap<([u8; 5], u8), CaPublicKey>,
    revoked_issuers: BTreeSet<([u8; 5], u8, [u8; 3])>,
}

impl CapkStore {
    /// Builds a store of `mode` keys. Fails on the first bad entry: bad hex or length, checksum
    /// mismatch, bad expiry, an entry of the other mode, or a (RID, index) given twice.
    pub fn load(entries: &[CapkEntry], mode: KeyMode) -> Result<CapkStore, CapkError> {
        let mut keys = BTreeMap::new();
        for e in entries {
            let k = CaPublicKey::from_entry(e)?;
            let rid = hex::encode_upper(k.rid);
            if k.mode != mode {
                return Err(CapkError::ModeMismatch { rid, index: k.index, key: k.mode, store: mode });
            }
            if keys.contains_key(&(k.rid, k.index)) {
                return Err(CapkError::Duplicate { rid, index: k.index });
            }
            keys.insert((k.rid, k.index), k);
        }
        Ok(CapkStore { mode, keys, revoked_issuers: BTreeSet::new() })
    }

    /// [`CapkStore::load`] of a whole file, its revocation list included: each entry's RID (5
    /// bytes), index (1) and serial (3) must be hex of those lengths, and listed once.
    pub fn load_file(file: &CapkFile, mode: KeyMode) -> Result<CapkStore, CapkError> {
        let mut store = CapkStore::load(&file.capk, mode)?;
        for r in &file.revoked_issuer {
            let entry = format!("revoked_issuer {}/{}/{}", r.rid.trim(), r.index.trim(), r.serial.trim());
            let rid: [u8; 5] = parse_fixed(&entry, "rid", &r.rid, "5")?;
            let [index] = parse_fixed::<1>(&entry, "index", &r.index, "1")?;
            let serial: [u8; 3] = parse_fixed(&entry, "serial", &r.serial, "3")?;
            if !store.revoked_issuers.insert((rid, index, serial)) {
                return Err(CapkError::DuplicateRevokedIssuer { rid: hex::encode_upper(rid), index, serial: hex::encode_upper(serial) });
            }
        }
        Ok(store)
    }

    /// Serial numbers of the revoked issuer certificates signed by CA key (RID, index).
    pub fn revoked_issuer_serials(&self, rid: &[u8], index: u8) -> Vec<[u8; 3]> {
        self.revoked_issuers.iter().filter(|(r, i, _)| r.as_slice() == rid && *i == index).map(|(_, _, s)| *s).collect()
    }

    /// The key for (RID, index) usable on `today`: known, not revoked, not past its expiry date.
    pub fn get(&self, rid: &[u8], index: u8, today: EmvDate) -> Result<&CaPublicKey, CapkError> {
        let rid_hex = hex::encode_upper(rid);
        let key = <[u8; 5]>::try_from(rid).ok().and_then(|r| self.keys.get(&(r, index))).ok_or_else(|| CapkError::Unknown { rid: rid_hex.clone(), index })?;
        if key.revoked {
            return Err(CapkError::Revoked { rid: rid_hex, index });
        }
        if let Some(expiry) = key.expiry {
            if is_past(expiry, today) {
                return Err(CapkError::Expired { rid: rid_hex, index, expiry: expiry.0, today: today.0 });
            }
        }
        Ok(key)
    }

    /// The mode every key of this store has.
    pub fn mode(&self) -> KeyMode {
        self.mode
    }

    /// Number of keys, revoked and expired ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, ordered by (RID, index).
    pub fn iter(&self) -> impl Iterator<Item = &CaPublicKey> {
        self.keys.values()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// config/capk.toml: the public scheme test keys plus the project test CAs. Parsed here with
    /// a minimal reader of its flat `key = "value"` lines (kernels has no TOML dependency).
    const CONFIG: &str = include_str!("../../config/capk.toml");

    pub(crate) fn config_entries() -> Vec<CapkEntry> {
        let mut out: Vec<CapkEntry> = Vec::new();
        let mut in_capk = false;
        for line in CONFIG.lines().map(str::trim) {
            if line.starts_with("[[") {
                in_capk = line == "[[capk]]";
            }
            if !in_capk || line.starts_with('#') {
                continue;
            }
            if line == "[[capk]]" {
                out.push(CapkEntry {
                    scheme: None,
                    rid: String::new(),
                    index: String::new(),
                    exponent: String::new(),
                    modulus: String::new(),
                    checksum: String::new(),
                    expiry: None,
                    revoked: None,
                    mode: None,
                });
                continue;
            }
            let (Some(e), Some((k, v))) = (out.last_mut(), line.split_once(" = ")) else {
                continue;
            };
            let s = v.trim_matches('"').to_string();
            match k {
                "scheme" => e.scheme = Some(s),
                "rid" => e.rid = s,
                "index" => e.index = s,
                "exponent" => e.exponent = s,
                "modulus" => e.modulus = s,
                "checksum" => e.checksum = s,
                "expiry" => e.expiry = Some(s),
                "revoked" => e.revoked = Some(v == "true"),
                "mode" => e.mode = Some(s),
                "note" => {}
                other => panic!("unexpected key {other} in config/capk.toml"),
            }
        }
        out
    }

    fn entry(rid: &str, index: &str) -> CapkEntry {
        config_entries().into_iter().find(|e| e.rid == rid && e.index == index).expect("entry in config")
    }

    const TODAY: EmvDate = EmvDate(251125);

    #[test]
    fn loads_the_whole_configuration() {
        let entries = config_entries();
        assert_eq!(entries.len(), 28);
        let store = CapkStore::load(&entries, KeyMode::Test).unwrap();
        assert_eq!(store.len(), 28);
        assert!(!store.is_empty());
        let visa92 = store.get(&[0xA0, 0, 0, 0, 0x03], 0x92, TODAY).unwrap();
        assert_eq!(visa92.modulus.len(), 176);
        assert_eq!(visa92.exponent, [3]);
        let up = store.get(&[0xA0, 0, 0, 0x03, 0x33], 0xE1, TODAY).unwrap();
        assert_eq!((up.modulus.len(), up.expiry), (176, Some(EmvDate(301231))));
        let f5 = store.get(&[0xA0, 0, 0, 0, 0x04], 0xF5, TODAY).unwrap();
        assert_eq!(f5.exponent, [1, 0, 1]);
    }

    #[test]
    fn tampered_modulus_or_checksum_is_refused() {
        let mut e = entry("A000000003", "92");
        let flipped = if &e.modulus[10..11] == "0" { "1" } else { "0" };
        e.modulus.replace_range(10..11, flipped);
        assert_eq!(CapkStore::load(&[e], KeyMode::Test).unwrap_err(), CapkError::Checksum { rid: "A000000003".into(), index: 0x92 });
        let mut e = entry("A000000003", "92");
        e.checksum = "00".repeat(20);
        let err = CapkStore::load(&[e], KeyMode::Test).unwrap_err();
        assert_eq!(err.to_string(), "CAPK A000000003/92: checksum does not match SHA-1(RID|index|modulus|exponent)");
    }

    #[test]
    fn bad_hex_and_lengths_are_refused() {
        let mut e = entry("A000000003", "92");
        e.modulus.push('Z');
        assert!(matches!(CapkStore::load(&[e], KeyMode::Test), Err(CapkError::Hex { field: "modulus", .. })));
        let mut e = entry("A000000003", "92");
        e.rid = "A0000000".into();
        assert!(matches!(CapkStore::load(&[e], KeyMode::Test), Err(CapkError::FieldLength { field: "rid", got: 4, .. })));
        let mut e = entry("A000000003", "92");
        e.expiry = Some("301341".into());
        assert!(matches!(CapkStore::load(&[e], KeyMode::Test), Err(CapkError::BadExpiry { .. })));
        let mut e = entry("A000000003", "92");
        e.mode = Some("prod".into());
        assert!(matches!(CapkStore::load(&[e], KeyMode::Test), Err(CapkError::BadMode { .. })));
    }

    #[test]
    fn test_and_live_keys_never_mix() {
        let mut live = entry("A000000003", "95");
        live.mode = Some("live".into());
        let test = entry("A000000003", "92");
        assert_eq!(
            CapkStore::load(&[test.clone(), live.clone()], KeyMode::Test).unwrap_err(),
            CapkError::ModeMismatch { rid: "A000000003".into(), index: 0x95, key: KeyMode::Live, store: KeyMode::Test }
        );
        assert!(matches!(CapkStore::load(&[test], KeyMode::Live), Err(CapkError::ModeMismatch { key: KeyMode::Test, .. })));
        let store = CapkStore::load(&[live], KeyMode::Live).unwrap();
        assert_eq!((store.mode(), store.len()), (KeyMode::Live, 1));
    }

    #[test]
    fn duplicate_rid_and_index_is_refused() {
        let e = entry("A000000004", "05");
        assert_eq!(CapkStore::load(&[e.clone(), e], KeyMode::Test).unwrap_err(), CapkError::Duplicate { rid: "A000000004".into(), index: 0x05 });
    }

    #[test]
    fn unknown_revoked_and_expired_are_distinct() {
        let store = CapkStore::load(&config_entries(), KeyMode::Test).unwrap();
        let up = [0xA0, 0, 0, 0x03, 0x33];
        assert_eq!(store.get(&up, 0xE3, TODAY).unwrap_err(), CapkError::Unknown { rid: "A000000333".into(), index: 0xE3 });
        assert!(matches!(store.get(&up[..4], 0xE1, TODAY), Err(CapkError::Unknown { .. })));
        assert_eq!(store.get(&up, 0xE2, TODAY).unwrap_err(), CapkError::Revoked { rid: "A000000333".into(), index: 0xE2 });
        // Valid through its last day, expired the day after.
        assert!(store.get(&up, 0xE1, EmvDate(301231)).is_ok());
        assert_eq!(
            store.get(&up, 0xE1, EmvDate(310101)).unwrap_err(),
            CapkError::Expired { rid: "A000000333".into(), index: 0xE1, expiry: 301231, today: 310101 }
        );
        // E4: the E1 key under another index, already expired.
        assert!(store.get(&up, 0xE4, TODAY).is_ok());
        assert!(matches!(store.get(&up, 0xE4, EmvDate(260101)), Err(CapkError::Expired { index: 0xE4, .. })));
        // No expiry configured: never expires.
        assert!(store.get(&[0xA0, 0, 0, 0, 0x03], 0x92, EmvDate(491231)).is_ok());
    }

    fn revoked(rid: &str, index: &str, serial: &str) -> RevokedIssuerEntry {
        RevokedIssuerEntry { rid: rid.into(), index: index.into(), serial: serial.into(), note: None }
    }

    #[test]
    fn revoked_issuer_list_loads_and_is_checked() {
        let file = CapkFile {
            capk: config_entries(),
            revoked_issuer: vec![revoked("A000000333", "E1", "0000A1"), revoked("A000000333", "E1", "0000A2"), revoked("A000000003", "E1", "0000A1")],
        };
        let store = CapkStore::load_file(&file, KeyMode::Test).unwrap();
        let up = [0xA0, 0, 0, 0x03, 0x33];
        assert_eq!(store.revoked_issuer_serials(&up, 0xE1), vec![[0, 0, 0xA1], [0, 0, 0xA2]]);
        assert_eq!(store.revoked_issuer_serials(&up, 0xE2), Vec::<[u8; 3]>::new());
        assert_eq!(store.revoked_issuer_serials(&[0xA0, 0, 0, 0, 0x03], 0xE1), vec![[0, 0, 0xA1]]);
        assert_eq!(store.revoked_issuer_serials(&up[..4], 0xE1), Vec::<[u8; 3]>::new());
        // Without a list nothing is revoked.
        let plain = CapkStore::load(&config_entries(), KeyMode::Test).unwrap();
        assert!(plain.revoked_issuer_serials(&up, 0xE1).is_empty());
    }

    #[test]
    fn bad_revoked_issuer_entries_are_refused_with_the_entry_named() {
        let load = |r: RevokedIssuerEntry| CapkStore::load_file(&CapkFile { capk: vec![], revoked_issuer: vec![r] }, KeyMode::Test).map(|_| ()).unwrap_err();
        let e = load(revoked("A000000333", "E1", "00A1"));
        assert_eq!(e.to_string(), "CAPK revoked_issuer A000000333/E1/00A1: field `serial` has 2 bytes, expected 3");
        assert!(matches!(load(revoked("A0000003", "E1", "0000A1")), CapkError::FieldLength { field: "rid", got: 4, .. }));
        assert!(matches!(load(revoked("A000000333", "E", "0000A1")), CapkError::Hex { field: "index", .. }));
        assert!(matches!(load(revoked("A000000333", "E1", "0000ZZ")), CapkError::Hex { field: "serial", .. }));
        let twice = CapkFile { capk: vec![], revoked_issuer: vec![revoked("A000000333", "E1", "0000A1"), revoked("a000000333", "e1", "0000a1")] };
        assert_eq!(
            CapkStore::load_file(&twice, KeyMode::Test).unwrap_err(),
            CapkError::DuplicateRevokedIssuer { rid: "A000000333".into(), index: 0xE1, serial: "0000A1".into() }
        );
    }

    #[test]
    fn two_digit_years_order_across_the_century() {
        assert!(is_past(EmvDate(991231), EmvDate(250101)));
        assert!(date_order(EmvDate(991231)) < date_order(EmvDate(301231)));
        assert!(!is_past(EmvDate(250101), EmvDate(250101)));
        assert!(is_past(EmvDate(250101), EmvDate(250102)));
    }
}
