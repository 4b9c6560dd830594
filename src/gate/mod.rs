//! Transit gate mode (`shanfu gate`, issue 11): the decisions a turnstile makes on a tap, in
//! pure parts the gate loop wires together — no I/O, no clock (times are inputs, seconds since
//! the Unix epoch), so every rule is tested on its own.
//!
//! - [`config`]: `config/gate.toml` — the gate, its fares, the operator's policy.
//! - [`fare`]: flat fares and tap-in / tap-out zone fares.
//! - [`deny`]: the deny list keyed by a keyed hash of the PAN / token (and PAR), full and delta
//!   sync from the acquirer, local entries for failed ODA and failed deferred authorizations.
//! - [`passback`]: anti-passback (same card, same gate, N seconds).
//! - [`aggregate`]: taps of one card aggregated into one authorization up to a cumulative spend
//!   limit or a maximum travel time.
//! - [`decision`]: open or reject, with the reason, from the kernel's outcome and the above.
//! - [`lane`] / [`cli`]: the open-loop gate loop (`shanfu gate`).
//! - [`upload`]: the background uploader (deferred authorizations, aggregates) and the deny-list
//!   sync with the acquirer.
//! - Closed loop: the T-Union purse tap ([`tap`]) between a card, the pure purse transaction of
//!   `kernels::purse::gate` and a software PSAM ([`psam`]); not yet in the gate loop.

pub mod aggregate;
#[cfg(feature = "simulators")]
pub mod bench;
pub mod cli;
pub mod config;
pub mod decision;
pub mod deny;
pub mod fare;
pub mod lane;
pub mod passback;
pub mod psam;
pub mod tap;
pub mod upload;

/// Seconds since the Unix epoch: the gate's clock, always passed in.
pub type UnixSeconds = u64;
