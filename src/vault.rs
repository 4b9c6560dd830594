//! Card data at rest (issue 12 §6): the terminal's data key in a key store file created
//! owner-only, and AES-256-GCM sealing of the PAN the journal keeps for reversals and advices.
//! Views, exports and receipts use the masked PAN and never need the key.
//!
//! A sealed value is hex of `nonce (12) ‖ ciphertext ‖ tag (16)`, with the record it belongs to
//! as associated data, so a ciphertext moved to another record does not open (NIST SP 800-38D;
//! a fresh random nonce per seal).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The data key; its `Debug` does not show it.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.path.display())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
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

use crate::clock::random;

impl DataKey {
    /// Loads the key at `path`, or creates it (32 random bytes; directory 0700, file 0600).
    /// A key file others can read is refused rather than used.
    pub fn load_or_create(path: &Path) -> Result<DataKey, VaultError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let io = |source| VaultError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        }
        // Written whole under a temporary name, then linked into place: a second process never
        // reads a half-written key, and the first link wins.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let created = {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
            let k: [u8; 32] = random().map_err(io)?;
            f.write_all(&k).and_then(|_| f.sync_all()).map_err(io)?;
            let linked = std::fs::hard_link(&tmp, path);
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
                let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(VaultError::Exposed(path.to_path_buf(), mode & 0o777));
                }
                let bytes = std::fs::read(path).map_err(io)?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| VaultError::BadKey(path.to_path_buf()))?
            }
        };
        Ok(DataKey { cipher: Aes256Gcm::new(&key.into()), path: path.to_path_buf() })
    }

    /// Seals `plain` for the record named by `aad`.
    pub fn seal(&self, aad: &[u8], plain: &str) -> Result<String, VaultError> {
        let nonce: [u8; 12] = random().map_err(VaultError::Random)?;
        let ct = self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad }).map_err(|_| VaultError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(hex::encode(out))
    }

    /// Opens what [`DataKey::seal`] sealed for the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<String, VaultError> {
        let bytes = hex::decode(sealed).map_err(|_| VaultError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(VaultError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| VaultError::Open)?;
        String::from_utf8(plain).map_err(|_| VaultError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shanfu-vault-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_key_is_created_owner_only_and_seals_and_opens() {
        let d = dir("create");
        let p = d.join("keystore/data.key");
        let k = DataKey::load_or_create(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let s = k.seal(b"txn 7", "6235880000000017").unwrap();
        assert!(!s.contains("6235880000000017"));
        assert_ne!(s, k.seal(b"txn 7", "6235880000000017").unwrap(), "a fresh nonce each time");
        assert_eq!(k.open(b"txn 7", &s).unwrap(), "6235880000000017");
        // The same key file again opens it; another record's AAD or an altered byte does not.
        let again = DataKey::load_or_create(&p).unwrap();
        assert_eq!(again.open(b"txn 7", &s).unwrap(), "6235880000000017");
        assert!(matches!(again.open(b"txn 8", &s), Err(VaultError::Open)));
        let mut bad = s.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(matches!(again.open(b"txn 7", &String::from_utf8(bad).unwrap()), Err(VaultError::Open)));
        assert!(matches!(again.open(b"txn 7", "zz"), Err(VaultError::Open)));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn another_key_does_not_open_and_an_exposed_or_short_key_is_refused() {
        let d = dir("refuse");
        let a = DataKey::load_or_create(&d.join("a.key")).unwrap();
        let b = DataKey::load_or_create(&d.join("b.key")).unwrap();
        let s = a.seal(b"x", "6212345678901234").unwrap();
        assert!(matches!(b.open(b"x", &s), Err(VaultError::Open)));
        std::fs::set_permissions(d.join("a.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(DataKey::load_or_create(&d.join("a.key")), Err(VaultError::Exposed(..))));
        std::fs::write(d.join("short.key"), [1u8; 7]).unwrap();
        std::fs::set_permissions(d.join("short.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(DataKey::load_or_create(&d.join("short.key")), Err(VaultError::BadKey(_))));
        let _ = std::fs::remove_dir_all(&d);
    }
}
