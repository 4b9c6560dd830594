//! The transit gate (issue 11). Closed loop so far: the T-Union purse tap ([`tap`]) between a
//! card, the pure purse transaction of `kernels::purse::gate` and a PSAM ([`psam`]). The gate loop,
//! fares from config/gate.toml, the deny list and the uploader come on top of these.

pub mod psam;
pub mod tap;
