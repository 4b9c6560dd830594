//! Specs as data: field tables plus whole-message encoding choices.

use std::borrow::Cow;
use std::fmt;

use crate::error::SpecError;
use crate::iso87;

/// Data-element class. Decides the charset of the logical value and how it is laid on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `n`: decimal digits. Logical value: ASCII digits. Wire: ASCII digits or packed BCD
    /// ([`Encoding::numeric`]). Fixed fields are zero-padded on the left.
    Numeric,
    /// `a` / `an` / `ans`: printable ASCII (0x20..=0x7E). Wire: the same bytes. Fixed fields
    /// are space-padded on the right.
    Alpha,
    /// `b`: raw bytes. Logical value: the bytes. Wire: raw bytes or upper-case hex text
    /// ([`Encoding::binary`]).
    Binary,
    /// `z`: track-2 equivalent data, digits and `=` (separator). Wire: ASCII, or BCD with
    /// nibble `D` for `=` and a trailing `F` pad nibble ([`Encoding::track2`]).
    Track2,
    /// Raw bytes always carried as upper-case hex text, whatever [`Encoding::binary`] says.
    Hex,
}

/// Field length. Fixed widths count *logical* units: digits ([`Kind::Numeric`]), characters
/// ([`Kind::Alpha`], [`Kind::Track2`]) or bytes ([`Kind::Binary`], [`Kind::Hex`]).
/// Variable maxima bound the number written in the length prefix, which counts *wire* units:
/// the same as logical units, except that binary data carried as hex text counts hex
/// characters (two per byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Length {
    /// Exactly `n` units (1..=9999).
    Fixed(usize),
    /// 2-digit length prefix, at most `max` (1..=99).
    LLVar(usize),
    /// 3-digit length prefix, at most `max` (1..=999).
    LLLVar(usize),
}

/// How [`crate::Spec::describe`] (and error texts) show a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Redact {
    /// Shown as is.
    #[default]
    Clear,
    /// Card number: first 6 and last 4 digits shown, the rest `*` (values shorter than 13
    /// are fully masked). For track 2, this applies to the PAN before `=`; everything after
    /// the separator is masked.
    Pan,
    /// Never shown, only its length (PIN block, MAC).
    Withhold,
}

/// One data element of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// Data element number, 2..=128.
    pub number: u8,
    /// Name, used in errors and [`crate::Spec::describe`].
    pub name: &'static str,
    /// Class of data.
    pub kind: Kind,
    /// Fixed or variable length.
    pub length: Length,
    /// Display policy for sensitive data.
    pub redact: Redact,
}

impl FieldSpec {
    /// A field shown in clear.
    pub const fn new(number: u8, name: &'static str, kind: Kind, length: Length) -> FieldSpec {
        FieldSpec { number, name, kind, length, redact: Redact::Clear }
    }

    /// Same field with another display policy.
    pub const fn redacted(self, redact: Redact) -> FieldSpec {
        FieldSpec { redact, ..self }
    }
}

/// Digits on the wire: one ASCII character each, or packed BCD (two per byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitEncoding {
    /// `'0'..='9'`, one byte per digit.
    Ascii,
    /// Packed BCD, two digits per byte, high nibble first.
    Bcd,
}

/// Bitmap on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitmapEncoding {
    /// 16 upper-case hex characters per bitmap.
    HexAscii,
    /// 8 raw bytes per bitmap.
    Binary,
}

/// [`Kind::Binary`] fields on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryEncoding {
    /// The bytes themselves; length prefixes count bytes.
    Raw,
    /// Upper-case hex text; length prefixes count hex characters.
    HexAscii,
}

/// How a packed message is delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No frame: [`crate::Spec::frame`] returns the body unchanged.
    None,
    /// 2-byte big-endian binary length of the body, excluding the prefix itself.
    U16BigEndian,
}

/// Transport protocol data unit: 5 bytes before the MTI, as Chinese POS hosts (CUPS style)
/// use: ID (usually `0x60`), 2-byte destination address, 2-byte originator address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tpdu(pub [u8; 5]);

impl Tpdu {
    /// From ID, destination and originator addresses.
    pub const fn new(id: u8, destination: u16, originator: u16) -> Tpdu {
        let d = destination.to_be_bytes();
        let o = originator.to_be_bytes();
        Tpdu([id, d[0], d[1], o[0], o[1]])
    }

    /// TPDU ID (first byte).
    pub const fn id(&self) -> u8 {
        self.0[0]
    }

    /// Destination address (bytes 2-3).
    pub const fn destination(&self) -> u16 {
        u16::from_be_bytes([self.0[1], self.0[2]])
    }

    /// Originator address (bytes 4-5).
    pub const fn originator(&self) -> u16 {
        u16::from_be_bytes([self.0[3], self.0[4]])
    }

    /// The TPDU a reply carries: destination and originator swapped.
    pub const fn reply(self) -> Tpdu {
        Tpdu::new(self.id(), self.originator(), self.destination())
    }

    /// The 5 bytes.
    pub const fn bytes(&self) -> [u8; 5] {
        self.0
    }
}

impl From<[u8; 5]> for Tpdu {
    fn from(b: [u8; 5]) -> Tpdu {
        Tpdu(b)
    }
}

/// Bytes before the MTI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// Nothing: the body starts with the MTI.
    None,
    /// A 5-byte TPDU. Pack writes this one; unpack reads any 5 bytes (see
    /// [`crate::Spec::unpack_with_tpdu`]).
    Tpdu(Tpdu),
}

/// Whole-message encoding choices of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encoding {
    /// MTI: 4 ASCII digits or 2 BCD bytes.
    pub mti: DigitEncoding,
    /// Primary and secondary bitmaps.
    pub bitmap: BitmapEncoding,
    /// LL / LLL length prefixes: 2 / 3 ASCII digits, or 1 / 2 BCD bytes.
    pub length_prefix: DigitEncoding,
    /// [`Kind::Numeric`] values.
    pub numeric: DigitEncoding,
    /// [`Kind::Track2`] values.
    pub track2: DigitEncoding,
    /// [`Kind::Binary`] values.
    pub binary: BinaryEncoding,
    /// Stream delimiting.
    pub framing: Framing,
    /// Bytes before the MTI.
    pub header: Header,
}

impl Encoding {
    /// Everything ASCII; binary as hex text; 2-byte frame; no header.
    pub const ASCII87: Encoding = Encoding {
        mti: DigitEncoding::Ascii,
        bitmap: BitmapEncoding::HexAscii,
        length_prefix: DigitEncoding::Ascii,
        numeric: DigitEncoding::Ascii,
        track2: DigitEncoding::Ascii,
        binary: BinaryEncoding::HexAscii,
        framing: Framing::U16BigEndian,
        header: Header::None,
    };

    /// BCD MTI, lengths, numerics and track 2; binary bitmap and binary fields; alpha
    /// fields ASCII; 2-byte frame; no header.
    pub const BCD87: Encoding = Encoding {
        mti: DigitEncoding::Bcd,
        bitmap: BitmapEncoding::Binary,
        length_prefix: DigitEncoding::Bcd,
        numeric: DigitEncoding::Bcd,
        track2: DigitEncoding::Bcd,
        binary: BinaryEncoding::Raw,
        framing: Framing::U16BigEndian,
        header: Header::None,
    };
}

pub(crate) const NO_FIELD: u8 = u8::MAX;

/// A message format: a field table plus [`Encoding`] choices. Pure data; build your own
/// with [`Spec::new`] or derive one from a stock spec with [`Spec::with_field`],
/// [`Spec::with_header`], [`Spec::with_framing`].
#[derive(Clone)]
pub struct Spec {
    pub(crate) name: &'static str,
    pub(crate) fields: Cow<'static, [FieldSpec]>,
    /// `index[n]` = position of field `n` in `fields`, or [`NO_FIELD`].
    pub(crate) index: [u8; 129],
    pub(crate) encoding: Encoding,
}

/// Validates a field table and builds the number → position index. `const` so the stock
/// tables are checked at compile time.
pub(crate) const fn build_index(fields: &[FieldSpec]) -> Result<[u8; 129], SpecError> {
    let mut index = [NO_FIELD; 129];
    let mut i = 0;
    while i < fields.len() {
        let f = &fields[i];
        let n = f.number;
        if n < 2 || n > 128 {
            return Err(SpecError::FieldNumber(n));
        }
        if index[n as usize] != NO_FIELD {
            return Err(SpecError::Duplicate(n));
        }
        match f.length {
            Length::Fixed(w) if w == 0 || w > 9999 => return Err(SpecError::Length { field: n, problem: "fixed length must be 1..=9999" }),
            Length::LLVar(m) if m == 0 || m > 99 => return Err(SpecError::Length { field: n, problem: "LLVAR max must be 1..=99" }),
            Length::LLLVar(m) if m == 0 || m > 999 => return Err(SpecError::Length { field: n, problem: "LLLVAR max must be 1..=999" }),
            _ => {}
        }
        // At most 127 entries (numbers 2..=128, no duplicates), so `i` fits a u8.
        index[n as usize] = i as u8;
        i += 1;
    }
    Ok(index)
}

const ISO87_INDEX: [u8; 129] = match build_index(iso87::FIELDS) {
    Ok(i) => i,
    Err(_) => panic!("invalid ISO 8583:1987 field table"),
};

static ASCII87: Spec = Spec { name: "ascii87", fields: Cow::Borrowed(iso87::FIELDS), index: ISO87_INDEX, encoding: Encoding::ASCII87 };

static BCD87: Spec = Spec { name: "bcd87", fields: Cow::Borrowed(iso87::FIELDS), index: ISO87_INDEX, encoding: Encoding::BCD87 };

/// The all-ASCII ISO 8583:1987 spec (see the crate README for the exact wire format).
pub fn ascii87() -> &'static Spec {
    &ASCII87
}

/// The BCD / binary ISO 8583:1987 spec, without TPDU (see the crate README).
pub fn bcd87() -> &'static Spec {
    &BCD87
}

impl Spec {
    /// A spec from a field table (any order) and encoding choices.
    pub fn new(name: &'static str, fields: impl Into<Cow<'static, [FieldSpec]>>, encoding: Encoding) -> Result<Spec, SpecError> {
        let fields = fields.into();
        let index = build_index(&fields)?;
        Ok(Spec { name, fields, index, encoding })
    }

    /// Same as the free function [`ascii87`].
    pub fn ascii87() -> &'static Spec {
        &ASCII87
    }

    /// Same as the free function [`bcd87`].
    pub fn bcd87() -> &'static Spec {
        &BCD87
    }

    /// [`bcd87`] with a 5-byte TPDU before the MTI, e.g. `[0x60, 0x00, 0x03, 0x00, 0x00]`.
    pub fn bcd87_with_tpdu(tpdu: impl Into<Tpdu>) -> Spec {
        BCD87.clone().with_header(Header::Tpdu(tpdu.into()))
    }

    /// This spec with another header (e.g. the [`Tpdu::reply`] of a request's TPDU).
    #[must_use]
    pub fn with_header(mut self, header: Header) -> Spec {
        self.encoding.header = header;
        self
    }

    /// This spec with another framing.
    #[must_use]
    pub fn with_framing(mut self, framing: Framing) -> Spec {
        self.encoding.framing = framing;
        self
    }

    /// This spec with `field` added, or replacing the definition with the same number.
    pub fn with_field(self, field: FieldSpec) -> Result<Spec, SpecError> {
        let mut fields = self.fields.into_owned();
        match fields.iter_mut().find(|f| f.number == field.number) {
            Some(slot) => *slot = field,
            None => fields.push(field),
        }
        Spec::new(self.name, fields, self.encoding)
    }

    /// Spec name, e.g. `ascii87`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Encoding choices.
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// The field table, in definition order.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// Definition of field `number`, if the spec has one.
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        let i = *self.index.get(usize::from(number))?;
        if i == NO_FIELD {
            None
        } else {
            self.fields.get(usize::from(i))
        }
    }

    /// Whether a [`Kind::Binary`] / [`Kind::Hex`] field is carried as hex text in this spec.
    pub fn is_hex_text(&self, field: &FieldSpec) -> bool {
        match field.kind {
            Kind::Hex => true,
            Kind::Binary => self.encoding.binary == BinaryEncoding::HexAscii,
            _ => false,
        }
    }

    /// Longest logical value `field` accepts in this spec: digits, characters or bytes
    /// (for binary carried as hex text, half the prefix maximum).
    pub fn max_logical_len(&self, field: &FieldSpec) -> usize {
        match field.length {
            Length::Fixed(w) => w,
            Length::LLVar(m) | Length::LLLVar(m) if self.is_hex_text(field) => m / 2,
            Length::LLVar(m) | Length::LLLVar(m) => m,
        }
    }
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("encoding", &self.encoding)
            .field("fields", &self.fields.iter().map(|f| f.number).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_specs_index_every_field() {
        for spec in [ascii87(), bcd87()] {
            for f in spec.fields() {
                assert_eq!(spec.field(f.number), Some(f));
            }
            assert!(spec.field(17).is_none());
            assert!(spec.field(1).is_none());
            assert!(spec.field(0).is_none());
            assert!(spec.field(200).is_none());
        }
    }

    #[test]
    fn invalid_tables_rejected() {
        let f = |n, l| FieldSpec::new(n, "x", Kind::Alpha, l);
        assert_eq!(Spec::new("t", vec![f(1, Length::Fixed(1))], Encoding::ASCII87).unwrap_err(), SpecError::FieldNumber(1));
        assert_eq!(Spec::new("t", vec![f(129, Length::Fixed(1))], Encoding::ASCII87).unwrap_err(), SpecError::FieldNumber(129));
        assert_eq!(Spec::new("t", vec![f(3, Length::Fixed(1)), f(3, Length::Fixed(2))], Encoding::ASCII87).unwrap_err(), SpecError::Duplicate(3));
        assert!(Spec::new("t", vec![f(3, Length::Fixed(0))], Encoding::ASCII87).is_err());
        assert!(Spec::new("t", vec![f(3, Length::LLVar(100))], Encoding::ASCII87).is_err());
        assert!(Spec::new("t", vec![f(3, Length::LLLVar(1000))], Encoding::ASCII87).is_err());
    }

    #[test]
    fn with_field_adds_and_replaces() {
        let s = ascii87()
            .clone()
            .with_field(FieldSpec::new(48, "additional data, private", Kind::Alpha, Length::LLLVar(999)))
            .unwrap()
            .with_field(FieldSpec::new(4, "amount", Kind::Numeric, Length::Fixed(10)))
            .unwrap();
        assert_eq!(s.field(48).unwrap().name, "additional data, private");
        assert_eq!(s.field(4).unwrap().length, Length::Fixed(10));
        assert_eq!(ascii87().field(4).unwrap().length, Length::Fixed(12));
    }

    #[test]
    fn tpdu_reply_swaps_addresses() {
        let t = Tpdu([0x60, 0x00, 0x03, 0x00, 0x00]);
        assert_eq!(t.destination(), 3);
        assert_eq!(t.reply().bytes(), [0x60, 0x00, 0x00, 0x00, 0x03]);
        assert_eq!(Tpdu::new(0x60, 3, 0), t);
    }
}
