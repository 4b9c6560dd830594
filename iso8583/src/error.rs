//! Codec and spec errors.

use std::fmt;

use crate::spec::FieldSpec;

/// Which part of a message a [`Error::Truncated`] error ran out of bytes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The 5-byte TPDU header.
    Header,
    /// The message type indicator.
    Mti,
    /// The primary bitmap (fields 1..=64).
    PrimaryBitmap,
    /// The secondary bitmap (fields 65..=128).
    SecondaryBitmap,
    /// The LL / LLL length prefix of a variable-length field.
    LengthPrefix {
        /// Field number.
        field: u8,
        /// Field name from the spec.
        name: &'static str,
    },
    /// The value of a field.
    Field {
        /// Field number.
        field: u8,
        /// Field name from the spec.
        name: &'static str,
    },
}

impl Part {
    /// The field number, when the part belongs to a field.
    pub fn field(&self) -> Option<u8> {
        match *self {
            Part::LengthPrefix { field, .. } | Part::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => f.write_str("TPDU header"),
            Part::Mti => f.write_str("MTI"),
            Part::PrimaryBitmap => f.write_str("primary bitmap"),
            Part::SecondaryBitmap => f.write_str("secondary bitmap"),
            Part::LengthPrefix { field, name } => write!(f, "field {field} ({name}) length prefix"),
            Part::Field { field, name } => write!(f, "field {field} ({name})"),
        }
    }
}

/// Everything that can go wrong packing, unpacking or framing a message.
///
/// Every error that concerns a single data element names its number, and its name whenever
/// the spec defines it ([`Error::field`] extracts the number). Error texts never echo the
/// value of a field the spec marks as sensitive (PAN, track 2, PIN block, MACs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field value is invalid for its definition (charset, length, padding, prefix...).
    #[error("field {field} ({name}): {problem}")]
    Field {
        /// Field number.
        field: u8,
        /// Field name from the spec.
        name: &'static str,
        /// What is wrong, in words.
        problem: String,
    },
    /// The bitmap (unpack) or the message (pack) has a field the spec does not define.
    #[error("field {field} is not defined by spec {spec}")]
    UndefinedField {
        /// Field number.
        field: u8,
        /// Spec name, e.g. `ascii87`.
        spec: &'static str,
    },
    /// A [`crate::Message`] holds a field number that is not a data element
    /// (0, 1 — the secondary bitmap, which the codec manages — or above 128).
    #[error("field number {0} is not a data element (2..=128; field 1 is the secondary bitmap, set by the codec)")]
    InvalidFieldNumber(u8),
    /// The MTI is not 4 decimal digits.
    #[error("MTI: {0}")]
    Mti(String),
    /// A bitmap is malformed.
    #[error("bitmap: {0}")]
    Bitmap(String),
    /// The input ended inside `part`.
    #[error("{part}: truncated: needs {needed} bytes at offset {offset}, {available} available")]
    Truncated {
        /// Where the input ran out.
        part: Part,
        /// Offset (from the start of the unframed body, TPDU included) of the missing bytes.
        offset: usize,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes remain after the last field the bitmap announces.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// The frame (2-byte length prefix) does not match the data.
    #[error("frame: {0}")]
    Frame(String),
    /// The packed body does not fit the spec's framing (more than 65535 bytes).
    #[error("packed message is {0} bytes, more than the 65535 a 2-byte frame can carry")]
    TooLong(usize),
}

impl Error {
    /// The field number this error is about, if any.
    pub fn field(&self) -> Option<u8> {
        match self {
            Error::Field { field, .. } | Error::UndefinedField { field, .. } => Some(*field),
            Error::InvalidFieldNumber(n) => Some(*n),
            Error::Truncated { part, .. } => part.field(),
            _ => None,
        }
    }

    pub(crate) fn field_problem(fs: &FieldSpec, problem: impl Into<String>) -> Error {
        Error::Field { field: fs.number, name: fs.name, problem: problem.into() }
    }
}

/// Why a field table cannot be turned into a [`crate::Spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A field number outside 2..=128 (field 1 is reserved for the secondary bitmap).
    #[error("field number {0} is outside 2..=128 (field 1 is the secondary bitmap)")]
    FieldNumber(u8),
    /// The same field number appears twice.
    #[error("field {0} is defined twice")]
    Duplicate(u8),
    /// An impossible length (fixed 0 or above 9999, LLVAR max 0 or above 99, LLLVAR max 0 or above 999).
    #[error("field {field}: {problem}")]
    Length {
        /// Field number.
        field: u8,
        /// What is wrong.
        problem: &'static str,
    },
}
