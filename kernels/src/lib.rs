//! # kernels — the pure EMV core of shanfu
//!
//! No I/O, no clock, no randomness: dates, unpredictable numbers and keys are inputs, so every
//! test and every replay gives the same bytes. The Entry Point and kernels are sans-IO state
//! machines: they emit C-APDUs and take R-APDUs, and end in an [`outcome::Outcome`].
//!
//! Layers (EMV books in brackets):
//! - [`tlv`], [`tag`], [`dol`], [`types`], [`apdu`]: codecs and the data dictionary (Book 3);
//! - [`capk`], [`oda`], [`cryptogram`]: CA keys, fDDA, application cryptograms (Book 2);
//! - [`entry_point`]: pre-processing, PPSE, combination selection, kernel activation (Book B);
//! - [`purse`]: the T-Union transit purse (PBOC e-purse, CAPP purchase) and the gate's purse
//!   transaction (JR/T 0025, JT/T 978);
//! - [`kernel`]: the `Kernel` trait and the registry by kernel id; the qVSDC-shaped kernels C-3
//!   (Visa) and C-7 (UnionPay QuickPass) over their shared steps.

pub mod apdu;
pub mod capk;
pub mod config;
pub mod cryptogram;
pub mod dol;
pub mod entry_point;
pub mod iad;
pub mod kernel;
pub mod oda;
pub mod outcome;
pub mod purse;
pub mod tag;
pub mod tlv;
pub mod types;
