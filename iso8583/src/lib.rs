//! # iso8583 — table-driven ISO 8583 codec for shanfu
//!
//! A [`Spec`] is data: a table of [`FieldSpec`]s (number, name, [`Kind`], [`Length`],
//! [`Redact`]) plus whole-message [`Encoding`] choices (MTI, bitmap, length prefixes,
//! numerics, track 2, binary fields, framing, optional TPDU header), in the manner of jPOS
//! packagers or moov-io specs. The codec is generic over any spec; two stock specs share the
//! ISO 8583:1987 field table:
//!
//! - [`ascii87()`]: everything ASCII, binary fields as upper-case hex text;
//! - [`bcd87()`] / [`Spec::bcd87_with_tpdu`]: BCD MTI / numerics / lengths / track 2, binary
//!   bitmaps and binary fields, optional 5-byte TPDU (CUPS-style hosts).
//!
//! Both frame a body with a 2-byte big-endian length ([`Spec::frame`]). The exact byte
//! layouts, with hex examples, are in the crate's `README.md`.
//!
//! ## Logical values
//!
//! A [`Message`] holds values in *logical* form, the same whatever the spec:
//!
//! | kind | logical value | example |
//! |---|---|---|
//! | numeric (`n`) | ASCII digits | field 4 `b"000000001000"` |
//! | alpha (`an`/`ans`) | printable ASCII bytes (0x20..=0x7E) | field 41 `b"TERM0001"` |
//! | binary (`b`): 52, 55, 64, 128 | raw bytes | field 55 `[0x9F, 0x26, 0x08, ...]` |
//! | track 2 (`z`): 35 | ASCII digits with `=` separator | `b"4761739001010119=2512..."` |
//!
//! The codec does the wire conversions: binary → hex text in ascii87, raw in bcd87; track 2
//! `=` ↔ BCD nibble `D` (plus an `F` pad nibble) in bcd87; digits ↔ BCD in bcd87.
//!
//! Padding: fixed numeric values may be shorter than the field and are zero-padded on the
//! left; fixed alpha values are space-padded on the right; unpack returns the padded,
//! full-width value (no trimming). Fixed binary and track-2 values must have the exact
//! length. A longer value is an error naming the field.
//!
//! Field 22 (POS entry mode, n3) for contactless chip is `071` (terminal can accept PINs) or
//! `072` (cannot); `07` is the contactless-chip PAN entry mode, the third digit the PIN entry
//! capability.
//!
//! ## Errors and robustness
//!
//! [`Spec::unpack`] returns `Ok` or `Err` for any input, never panics, and rejects trailing
//! bytes. Field errors name the number and the name, e.g.
//! `field 4 (amount, transaction): expected 12 digits, found "12A400000000"` or
//! `field 55 (ICC data): LLLVAR length 1200 exceeds max 999`; texts never echo sensitive
//! values (PAN, track 2, PIN block, MAC). Unpack is canonical: whatever it accepts, pack
//! reproduces byte for byte.
//!
//! ## Example
//!
//! ```
//! use iso8583::{ascii87, field, Message, Mti};
//!
//! let mut m = Message::new(Mti::FINANCIAL_REQUEST);
//! m.set_str(field::PAN, "4761739001010119")
//!     .set_str(field::PROCESSING_CODE, "000000")
//!     .set_str(field::AMOUNT, "1000") // zero-padded to 000000001000
//!     .set(field::ICC_DATA, vec![0x9F, 0x27, 0x01, 0x80]); // raw bytes
//! let body = ascii87().pack(&m)?;
//! let wire = ascii87().frame(&body);
//! assert_eq!(&wire[..2], (body.len() as u16).to_be_bytes());
//!
//! let back = ascii87().unpack_framed(&wire)?;
//! assert_eq!(back.get_str(field::AMOUNT), Some("000000001000"));
//! assert_eq!(back.get(field::ICC_DATA), Some(&[0x9F, 0x27, 0x01, 0x80][..]));
//! assert!(ascii87().describe(&back).contains("476173******0119"));
//! # Ok::<(), iso8583::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod describe;
mod error;
mod iso87;
mod message;
mod mti;
mod spec;

pub use error::{Error, Part, SpecError};
pub use iso87::{field, iso87_fields};
pub use message::Message;
pub use mti::Mti;
pub use spec::{ascii87, bcd87, BinaryEncoding, BitmapEncoding, DigitEncoding, Encoding, FieldSpec, Framing, Header, Kind, Length, Redact, Spec, Tpdu};
