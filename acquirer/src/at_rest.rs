//! Card data at rest in the acquirer's database (issue 12 §6): no PAN or token PAN is stored in
//! clear (docs/host.md "The acquirer database at rest").
//!
//! - the data key: 32 random bytes in `DB_DIR/keystore/pan.key`, created owner-only (file 0600,
//!   directory 0700); a key file others can read is refused rather than used;
//! - two keys derived from it (HKDF-Expand, RFC 5869 §2.3, the random data key standing for the
//!   PRK as §3.3 allows): a sealing key and an index key;
//! - lookups by PAN go through a blind index, HMAC-SHA256(index key, PAN) (RFC 2104): the sled
//!   key of `vault`, `accounts` and `deny_cards`;
//! - a value that must give a PAN back (the funding PAN of a token, the PAN and the account of
//!   an authorization record) holds it sealed: AES-256-GCM with a fresh random 96-bit nonce and
//!   the tree, the field and the record key as associated data, so a sealed PAN moved to another
//!   record or field does not open (NIST SP 800-38D). Stored as hex of `nonce ‖ ciphertext ‖ tag`.
//!
//! The acquirer's own module: the simulator shares only the message contract with the terminal
//! (which has the same idea in its `vault`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the data key lives, under the database directory.
pub(crate) const KEY_FILE: &str = "keystore/pan.key";

/// What the key store and the sealing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("key store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key store {0}: not a 32-byte key")]
    BadKey(PathBuf),
    #[error("key store {0}: readable by others (mode {1:o}); it must be owner-only (chmod 600)")]
    Exposed(PathBuf, u32),
    #[error("sealed card data does not open under this key store's key (another key, or altered)")]
    Open,
    #[error("no randomness for a nonce: {0}")]
    Random(std::io::Error),
}

/// The keys derived from the acquirer's data key; its `Debug` shows neither.
pub(crate) struct AtRest {
    seal: Aes256Gcm,
    index: [u8; 32],
    check: [u8; 32],
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRest(..)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return [0; 32] };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `N` bytes from the operating system's CSPRNG (getrandom(2): no file opened per call — a
/// nonce is drawn for every record written).
pub(crate) fn random<const N: usize>() -> Result<[u8; N], std::io::Error> {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    rand_core::OsRng.try_fill_bytes(&mut b).map_err(std::io::Error::other)?;
    Ok(b)
}

impl AtRest {
    /// The keys of a data key: HKDF-Expand of one block (`T(1) = HMAC(key, info ‖ 0x01)`) for
    /// each purpose.
    pub(crate) fn from_key(key: &[u8; 32]) -> AtRest {
        let expand = |info: &[u8]| hmac(key, &[info, &[1]]);
        let seal = expand(b"shanfu acquirer at rest v1: seal");
        AtRest {
            seal: Aes256Gcm::new(&seal.into()),
            index: expand(b"shanfu acquirer at rest v1: blind index"),
            check: expand(b"shanfu acquirer at rest v1: key check"),
        }
    }

    /// Loads `db_dir/keystore/pan.key`, or creates it (32 random bytes; directory 0700, file
    /// 0600). Written whole under a temporary name, then linked into place: a second process
    /// never reads a half-written key, and the first link wins.
    pub(crate) fn load_or_create(db_dir: &Path) -> Result<AtRest, AtRestError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let path = db_dir.join(KEY_FILE);
        let io = |source| AtRestError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let created = if path.exists() {
            None
        } else {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
            let k: [u8; 32] = random().map_err(io)?;
            f.write_all(&k).and_then(|_| f.sync_all()).map_err(io)?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Some(k),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                Err(e) => return Err(io(e)),
            }
        };
        let key = match created {
            Some(k) => k,
            None => {
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(AtRestError::Exposed(path, mode & 0o777));
                }
                let bytes = std::fs::read(&path).map_err(io)?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| AtRestError::BadKey(path.clone()))?
            }
        };
        Ok(AtRest::from_key(&key))
    }

    /// The blind index of a PAN (or token PAN): the sled key it is looked up by.
    pub(crate) fn index(&self, pan: &str) -> [u8; 32] {
        hmac(&self.index, &[pan.as_bytes()])
    }

    /// A value that names the key without giving it away (kept in `meta`): a database opened
    /// with another key store is refused instead of silently finding nothing.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        self.check
    }

    /// Seals `plain` for the record named by `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plain: &str) -> Result<String, AtRestError> {
        let nonce: [u8; 12] = random().map_err(AtRestError::Random)?;
        let ct = self.seal.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad }).map_err(|_| AtRestError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(hex::encode(out))
    }

    /// Opens what [`AtRest::seal`] sealed for the same `aad`.
    pub(crate) fn open(&self, aad: &[u8], sealed: &str) -> Result<String, AtRestError> {
        let bytes = hex::decode(sealed).map_err(|_| AtRestError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(AtRestError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self.seal.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| AtRestError::Open)?;
        String::from_utf8(plain).map_err(|_| AtRestError::Open)
    }
}

/// Associated data of a sealed field: tree ‖ `.` ‖ field ‖ 0x00 ‖ record key.
pub(crate) fn aad(tree: &str, field: &str, record_key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(tree.len() + field.len() + 2 + record_key.len());
    a.extend_from_slice(tree.as_bytes());
    a.push(b'.');
    a.extend_from_slice(field.as_bytes());
    a.push(0);
    a.extend_from_slice(record_key);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shanfu-acq-at-rest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_key_is_created_owner_only_and_seals_indexes_and_opens() {
        let d = dir("create");
        let k = AtRest::load_or_create(&d).unwrap();
        let p = d.join(KEY_FILE);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let s = k.seal(b"auths.pan\0k1", "6235880000000017").unwrap();
        assert!(!s.contains("6235880000000017"));
        assert_ne!(s, k.seal(b"auths.pan\0k1", "6235880000000017").unwrap(), "a fresh nonce each time");
        assert_eq!(k.open(b"auths.pan\0k1", &s).unwrap(), "6235880000000017");
        // The same key file again: same index, same check value, opens; another AAD does not.
        let again = AtRest::load_or_create(&d).unwrap();
        assert_eq!(again.index("6235880000000017"), k.index("6235880000000017"));
        assert_ne!(again.index("6235880000000017"), again.index("6235880000000025"));
        assert_eq!(again.check_value(), k.check_value());
        assert_eq!(again.open(b"auths.pan\0k1", &s).unwrap(), "6235880000000017");
        assert!(matches!(again.open(b"auths.account\0k1", &s), Err(AtRestError::Open)));
        assert!(matches!(again.open(b"auths.pan\0k1", "zz"), Err(AtRestError::Open)));
        let mut bad = s.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(matches!(again.open(b"auths.pan\0k1", &String::from_utf8(bad).unwrap()), Err(AtRestError::Open)));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn another_key_differs_and_an_exposed_or_short_key_is_refused() {
        let (a, b) = (dir("a"), dir("b"));
        let ka = AtRest::load_or_create(&a).unwrap();
        let kb = AtRest::load_or_create(&b).unwrap();
        assert_ne!(ka.index("6222020000000015"), kb.index("6222020000000015"));
        assert_ne!(ka.check_value(), kb.check_value());
        let s = ka.seal(b"x", "6222020000000015").unwrap();
        assert!(matches!(kb.open(b"x", &s), Err(AtRestError::Open)));
        std::fs::set_permissions(a.join(KEY_FILE), std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(AtRest::load_or_create(&a), Err(AtRestError::Exposed(..))));
        std::fs::write(b.join(KEY_FILE), [1u8; 7]).unwrap();
        assert!(matches!(AtRest::load_or_create(&b), Err(AtRestError::BadKey(_))));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}
