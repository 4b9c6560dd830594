//! Card simulator: a phone wallet (or plastic card) that answers like a real one, the test PKI
//! and the card profiles. TEST KEYS ONLY — nothing here may be used with real cards.

pub mod issuers;
pub mod pki;
pub mod profile;
pub mod purse;
pub mod vpcd;
pub mod wallet;

pub use profile::{Profile, ProfileError};
pub use wallet::Wallet;
