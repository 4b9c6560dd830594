//! The terminal core: one transaction from "present card" to the outcome and the host's answer.
//!
//! - [`service`]: the [`Terminal`] every front end calls: sale, refund, void, settle.
//! - [`receipt`]: receipts and slips, views of the journal record.
//! - [`tap`]: drives the Entry Point with a reader (taps, restarts, See Phone).
//! - [`answer`]: what the terminal accepts from a host — a pure check of every answer.
//! - [`disposition`]: how a transaction ended, as a type; every text people read is a view of it.
//! - [`host_session`]: the host link as a sans-IO state machine (sign-on, echo, one request at
//!   a time, every answer checked); `crate::host` is its TCP driver.
//! - [`lifecycle`]: the transaction's states and the only transitions allowed between them.
//! - [`local`]: the running terminal's local socket (`journal` from another shell).
//! - [`pin`]: PIN entry (PIN pad trait, `--pin-stdin`) and the PIN block it becomes.
//! - [`txn_type`]: purchase, refund, cash, cashback: 9C, 9F03, DE 3 and their limits.

pub mod answer;
pub mod disposition;
pub mod host_session;
pub mod lifecycle;
pub mod local;
pub mod pin;
pub mod receipt;
pub mod service;
pub mod tap;
pub mod txn_type;

pub use service::{HostChoice, SaleRequest, Terminal};
pub use tap::*;
