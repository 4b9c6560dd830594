//! shanfu: the terminal side of an EMV contactless payment — the wiring of readers
//! (`reader-drivers`), the Entry Point and kernels (`kernels`), the host link and journal, and
//! the cashier screens. The `shanfu` binary is the command line over it; benchmarks (`benches/`)
//! use it directly.
//!
//! The acquirer simulator is a separate system (crate `acquirer`, sharing only `host-contract`
//! and `iso8583` with the terminal); it is re-exported as `shanfu::acquirer` for the binary's
//! `acquirer` command and the embedded host of `demo` / `pay --host embedded` — only with the
//! `simulators` feature (default); a product build (`--no-default-features`) has none of it.

#[cfg(feature = "simulators")]
pub use acquirer;
#[cfg(feature = "simulators")]
pub mod bench;
#[cfg(feature = "simulators")]
pub mod cert;
pub mod clock;
pub mod decode;
pub mod gate;
pub mod host;
pub mod journal;
pub mod online;
pub mod pos;
pub mod redact;
pub mod report;
pub mod settings;
pub mod terminal;
pub mod text;
pub mod vault;
