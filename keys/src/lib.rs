//! shanfu host-link keys (issue 12, "Online PIN and a keyed, MAC'd host link"): the pure
//! cryptographic groundwork, kept apart from the terminal and the acquirer so both can share it.
//!
//! - [`pin_block`]: ISO 9564-1 PIN blocks, format 0 (TDES) and format 4 (AES);
//! - [`mac`]: ANSI X9.19 retail MAC and AES-CMAC (NIST SP 800-38B), constant-time verification;
//! - [`kcv`]: key check values (ANSI X9.24-1);
//! - [`wrap`]: working keys (PIN, MAC, data) under the terminal master key (RFC 3394 / TDES ECB);
//! - [`provision`]: terminal master key establishment with P-256 ECDH + ECDSA and HKDF-SHA256.
//!
//! Pure: no I/O, no clock; randomness is always an input (a [`rand_core::CryptoRngCore`] or the
//! caller's bytes), so every test gives the same bytes. Key material lives in types that zeroize
//! on drop and whose `Debug` shows only the key check value. No function panics on any input.
//! The wire formats are described in the project's `docs/keys.md`.

#![forbid(unsafe_code)]

pub mod kcv;
pub mod key;
pub mod mac;
pub mod pin_block;
pub mod provision;
pub mod wrap;

pub use kcv::Kcv;
pub use key::{AesKey, KeyError, TdesKey};
/// The P-256 types the [`provision`] API takes (signing and verifying keys, public keys).
pub use p256;
/// The random-source trait every randomised function here takes.
pub use rand_core;

#[cfg(test)]
pub(crate) mod test_util {
    //! Test helpers. A deterministic "random" source for tests only: SHA-256 in counter mode over a seed.
    //! Never use it outside tests (it is predictable by construction).
    use rand_core::{CryptoRng, RngCore};
    use sha2::{Digest, Sha256};

    pub struct TestRng {
        seed: u64,
        counter: u64,
    }

    impl TestRng {
        pub fn new(seed: u64) -> Self {
            TestRng { seed, counter: 0 }
        }
    }

    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_be_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_be_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(32) {
                let mut h = Sha256::new();
                h.update(self.seed.to_be_bytes());
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                let out = h.finalize();
                chunk.copy_from_slice(&out[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for TestRng {}

    pub fn hex_bytes<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex")).collect();
        v.try_into().expect("test hex length")
    }
}
