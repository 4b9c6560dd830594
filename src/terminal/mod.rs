//! The terminal core: one transaction from "present card" to the outcome and the host's answer.
//!
//! - [`tap`]: drives the Entry Point with a reader (taps, restarts, See Phone).
//! - [`answer`]: what the terminal accepts from a host — a pure check of every answer.
//! - [`lifecycle`]: the transaction's states and the only transitions allowed between them.

pub mod answer;
pub mod lifecycle;
pub mod tap;

pub use tap::*;
