//! Card simulator: a phone wallet (or plastic card) that answers like a real one. TEST KEYS ONLY.

pub mod pki;
