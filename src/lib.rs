//! shanfu: the terminal side of an EMV contactless payment — the wiring of readers
//! (`reader-drivers`), the Entry Point and kernels (`kernels`), the host link and journal, the
//! acquirer simulator, and the cashier screens. The `shanfu` binary is the command line over it;
//! benchmarks (`benches/`) use it directly.

pub mod acquirer;
pub mod bench;
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
