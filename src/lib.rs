//! shanfu: the terminal side of an EMV contactless payment — the wiring of readers
//! (`reader-drivers`), the Entry Point and kernels (`kernels`), the host link and journal, and
//! the cashier screens. The `shanfu` binary is the command line over it; benchmarks (`benches/`)
//! use it directly.
//!
//! The acquirer simulator is a separate system (crate `acquirer`, sharing only `host-contract`
//! and `iso8583` with the terminal); it is re-exported as `shanfu::acquirer` for the binary's
//! `acquirer` command and the embedded host of `demo` / `pay`.

pub use acquirer;
pub mod bench;
pub mod cert;
pub mod clock;
pub mod decode;
pub mod host;
pub mod journal;
pub mod online;
pub mod pos;
pub mod redact;
pub mod report;
pub mod settings;
pub mod terminal;
