//! Pack / unpack / framing, driven by a [`Spec`].
//!
//! Unpack never panics: every read goes through [`Reader::take`], which checks bounds, and
//! every value is validated before conversion. Unpack is also *canonical*: it accepts only
//! what pack produces (upper-case hex, exact pad nibbles, no empty secondary bitmap...), so
//! `unpack(b) == Ok(m)` implies `pack(&m) == Ok(b)`.

use std::collections::BTreeMap;

use crate::describe::{byte_char, quoted};
use crate::error::{Error, Part};
use crate::message::Message;
use crate::mti::Mti;
use crate::spec::{BitmapEncoding, DigitEncoding, FieldSpec, Framing, Header, Kind, Length, Redact, Spec, Tpdu};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const TPDU_LEN: usize = 5;

impl Spec {
    /// Packs `m` into the message body (TPDU if the spec has one, MTI, bitmaps, fields),
    /// without the frame. Fails on the first invalid field, naming it.
    pub fn pack(&self, m: &Message) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(64 + m.fields().map(|(_, v)| 2 * v.len() + 3).sum::<usize>());
        self.pack_into(m, &mut out)?;
        Ok(out)
    }

    /// Like [`Spec::pack`], appending to `out` (to reuse a buffer). On error `out` is left
    /// as it was.
    pub fn pack_into(&self, m: &Message, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let r = self.pack_body(m, out);
        let r = r.and_then(|()| match self.encoding.framing {
            Framing::U16BigEndian if out.len() - start > usize::from(u16::MAX) => Err(Error::TooLong(out.len() - start)),
            _ => Ok(()),
        });
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Packs `m` and frames it: `frame(pack(m)?)`.
    pub fn pack_framed(&self, m: &Message) -> Result<Vec<u8>, Error> {
        let body = self.pack(m)?;
        Ok(self.frame(&body))
    }

    /// Unpacks a message body (no frame). The TPDU, if the spec has one, is read and
    /// dropped; use [`Spec::unpack_with_tpdu`] to get it.
    pub fn unpack(&self, b: &[u8]) -> Result<Message, Error> {
        self.unpack_with_tpdu(b).map(|(_, m)| m)
    }

    /// Unpacks a message body, also returning the TPDU when the spec has a
    /// [`Header::Tpdu`] (any 5 bytes are accepted; answer with
    /// `spec.clone().with_header(Header::Tpdu(tpdu.reply()))`).
    pub fn unpack_with_tpdu(&self, b: &[u8]) -> Result<(Option<Tpdu>, Message), Error> {
        let mut r = Reader { buf: b, pos: 0 };
        let tpdu = match self.encoding.header {
            Header::None => None,
            Header::Tpdu(_) => {
                let h = r.take(TPDU_LEN, Part::Header)?;
                let mut t = [0u8; TPDU_LEN];
                t.copy_from_slice(h);
                Some(Tpdu(t))
            }
        };
        let mti = self.read_mti(&mut r)?;
        let bitmap = self.read_bitmaps(&mut r)?;

        // Every announced field must be defined before any is decoded.
        let present: Vec<u8> = (2..=128u8).filter(|&n| bit(&bitmap, n)).collect();
        for &n in &present {
            if self.field(n).is_none() {
                return Err(Error::UndefinedField { field: n, spec: self.name });
            }
        }
        let mut fields = BTreeMap::new();
        for n in present {
            let fs = self.field(n).ok_or(Error::UndefinedField { field: n, spec: self.name })?;
            let v = self.decode_field(fs, &mut r)?;
            fields.insert(n, v);
        }
        if r.remaining() != 0 {
            return Err(Error::TrailingBytes(r.remaining()));
        }
        Ok((tpdu, Message::from_parts(mti, fields)))
    }

    /// Unpacks exactly one framed message: the frame length must match `b` exactly.
    pub fn unpack_framed(&self, b: &[u8]) -> Result<Message, Error> {
        match self.encoding.framing {
            Framing::None => self.unpack(b),
            Framing::U16BigEndian => {
                let (len, body) = match b {
                    [hi, lo, body @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), body),
                    _ => return Err(Error::Frame(format!("{} bytes, shorter than the 2-byte length prefix", b.len()))),
                };
                if len != body.len() {
                    return Err(Error::Frame(format!("length prefix says {len} bytes, {} follow", body.len())));
                }
                self.unpack(body)
            }
        }
    }

    /// Frames a packed body: 2-byte big-endian length (excluding itself) + body, for the
    /// stock specs; the body unchanged for [`Framing::None`].
    ///
    /// # Panics
    /// If the body exceeds 65535 bytes with [`Framing::U16BigEndian`]; [`Spec::pack`] never
    /// returns such a body. Use [`Spec::try_frame`] for arbitrary input.
    pub fn frame(&self, body: &[u8]) -> Vec<u8> {
        match self.try_frame(body) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Spec::frame`], with an error instead of a panic for bodies over 65535 bytes.
    pub fn try_frame(&self, body: &[u8]) -> Result<Vec<u8>, Error> {
        match self.encoding.framing {
            Framing::None => Ok(body.to_vec()),
            Framing::U16BigEndian => {
                let len = u16::try_from(body.len()).map_err(|_| Error::TooLong(body.len()))?;
                let mut out = Vec::with_capacity(body.len() + 2);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(body);
                Ok(out)
            }
        }
    }

    /// Splits the first complete frame off a stream buffer: `Some((body, rest))`, or `None`
    /// while more bytes are needed. With [`Framing::None`] the whole buffer is the body.
    pub fn split_frame<'a>(&self, buf: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        match self.encoding.framing {
            Framing::None => Some((buf, &[])),
            Framing::U16BigEndian => {
                let (hi, lo, rest) = match buf {
                    [hi, lo, rest @ ..] => (*hi, *lo, rest),
                    _ => return None,
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if rest.len() < len {
                    return None;
                }
                Some(rest.split_at(len))
            }
        }
    }

    // ---------------------------------------------------------------- pack internals

    fn pack_body(&self, m: &Message, out: &mut Vec<u8>) -> Result<(), Error> {
        // Validate numbers and build the bitmap first, so a bad field number is reported
        // before anything else.
        let mut bitmap = [0u8; 16];
        let mut secondary = false;
        for (n, _) in m.fields() {
            if !(2..=128).contains(&n) {
                return Err(Error::InvalidFieldNumber(n));
            }
            if self.field(n).is_none() {
                return Err(Error::UndefinedField { field: n, spec: self.name });
            }
            set_bit(&mut bitmap, n);
            secondary |= n > 64;
        }
        if secondary {
            set_bit(&mut bitmap, 1);
        }

        if let Header::Tpdu(t) = self.encoding.header {
            out.extend_from_slice(&t.0);
        }
        match self.encoding.mti {
            DigitEncoding::Ascii => out.extend_from_slice(m.mti.as_bytes()),
            DigitEncoding::Bcd => push_bcd(out, m.mti.as_bytes(), 4),
        }
        let maps = if secondary { &bitmap[..] } else { &bitmap[..8] };
        match self.encoding.bitmap {
            BitmapEncoding::Binary => out.extend_from_slice(maps),
            BitmapEncoding::HexAscii => push_hex(out, maps),
        }
        for (n, v) in m.fields() {
            let fs = self.field(n).ok_or(Error::UndefinedField { field: n, spec: self.name })?;
            self.encode_field(fs, v, out)?;
        }
        Ok(())
    }

    fn encode_field(&self, fs: &FieldSpec, v: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let hex_text = self.is_hex_text(fs);
        // Wire units the value occupies (what a length prefix would say).
        let units = if hex_text { 2 * v.len() } else { v.len() };
        let unit = unit_word(fs.kind, hex_text);

        match fs.kind {
            Kind::Numeric => check_digits(fs, v)?,
            Kind::Alpha => check_printable(fs, v)?,
            Kind::Track2 => check_track2(fs, v)?,
            Kind::Binary | Kind::Hex => {}
        }

        // Width in logical units after padding, and the prefix to write.
        let width = match fs.length {
            Length::Fixed(w) => {
                match fs.kind {
                    Kind::Numeric | Kind::Alpha if v.len() > w => {
                        return Err(Error::field_problem(fs, format!("value has {} {unit}, fixed length is {w}", v.len())));
                    }
                    Kind::Track2 | Kind::Binary | Kind::Hex if v.len() != w => {
                        let unit = unit_word(fs.kind, false);
                        return Err(Error::field_problem(fs, format!("value has {} {unit}, fixed length is exactly {w}", v.len())));
                    }
                    _ => {}
                }
                w
            }
            Length::LLVar(max) | Length::LLLVar(max) => {
                if units > max {
                    let what = if hex_text { format!("value is {} bytes = {units} hex characters", v.len()) } else { format!("value has {units} {unit}") };
                    return Err(Error::field_problem(fs, format!("{what}, max {max}")));
                }
                let digits = if matches!(fs.length, Length::LLVar(_)) { 2 } else { 3 };
                self.push_prefix(out, units, digits);
                v.len()
            }
        };

        match fs.kind {
            Kind::Numeric => match self.encoding.numeric {
                DigitEncoding::Ascii => {
                    out.resize(out.len() + (width - v.len()), b'0');
                    out.extend_from_slice(v);
                }
                DigitEncoding::Bcd => push_bcd(out, v, width),
            },
            Kind::Alpha => {
                out.extend_from_slice(v);
                out.resize(out.len() + (width - v.len()), b' ');
            }
            Kind::Track2 => match self.encoding.track2 {
                DigitEncoding::Ascii => out.extend_from_slice(v),
                DigitEncoding::Bcd => push_track2_bcd(out, v),
            },
            Kind::Binary | Kind::Hex => {
                if hex_text {
                    push_hex(out, v);
                } else {
                    out.extend_from_slice(v);
                }
            }
        }
        Ok(())
    }

    fn push_prefix(&self, out: &mut Vec<u8>, n: usize, digits: usize) {
        let mut d = [b'0'; 3];
        let d = &mut d[..digits];
        let mut v = n;
        for slot in d.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        match self.encoding.length_prefix {
            DigitEncoding::Ascii => out.extend_from_slice(d),
            DigitEncoding::Bcd => push_bcd(out, d, digits),
        }
    }

    // -------------------------------------------------------------- unpack internals

    fn read_mti(&self, r: &mut Reader<'_>) -> Result<Mti, Error> {
        match self.encoding.mti {
            DigitEncoding::Ascii => {
                let b = r.take(4, Part::Mti)?;
                let mut d = [0u8; 4];
                d.copy_from_slice(b);
                Mti::from_ascii(d).ok_or_else(|| Error::Mti(format!("expected 4 ASCII digits, found {}", quoted(b))))
            }
            DigitEncoding::Bcd => {
                let b = r.take(2, Part::Mti)?;
                let mut d = [0u8; 4];
                for (i, slot) in d.iter_mut().enumerate() {
                    let nib = nibble(b, i);
                    if nib > 9 {
                        return Err(Error::Mti(format!("expected 4 BCD digits, found {:02X}{:02X}", b[0], b[1])));
                    }
                    *slot = b'0' + nib;
                }
                Mti::from_ascii(d).ok_or_else(|| Error::Mti("invalid BCD".into()))
            }
        }
    }

    fn read_bitmaps(&self, r: &mut Reader<'_>) -> Result<[u8; 16], Error> {
        let mut bitmap = [0u8; 16];
        self.read_bitmap(r, Part::PrimaryBitmap, &mut bitmap[..8])?;
        if bit(&bitmap, 1) {
            self.read_bitmap(r, Part::SecondaryBitmap, &mut bitmap[8..])?;
            if bitmap[8..].iter().all(|&b| b == 0) {
                return Err(Error::Bitmap("bit 1 announces a secondary bitmap, but it is empty".into()));
            }
        }
        Ok(bitmap)
    }

    fn read_bitmap(&self, r: &mut Reader<'_>, part: Part, into: &mut [u8]) -> Result<(), Error> {
        let which = if part == Part::PrimaryBitmap { "primary" } else { "secondary" };
        match self.encoding.bitmap {
            BitmapEncoding::Binary => {
                into.copy_from_slice(r.take(8, part)?);
            }
            BitmapEncoding::HexAscii => {
                let text = r.take(16, part)?;
                decode_hex(text, into).map_err(|(pos, c)| {
                    Error::Bitmap(format!("{which} bitmap {}: {} at position {pos} is not an upper-case hex digit", quoted(text), byte_char(c)))
                })?;
            }
        }
        Ok(())
    }

    fn read_prefix(&self, fs: &FieldSpec, r: &mut Reader<'_>, digits: usize, max: usize) -> Result<usize, Error> {
        let part = Part::LengthPrefix { field: fs.number, name: fs.name };
        let n = match self.encoding.length_prefix {
            DigitEncoding::Ascii => {
                let b = r.take(digits, part)?;
                let mut n = 0usize;
                for &c in b {
                    if !c.is_ascii_digit() {
                        return Err(Error::field_problem(fs, format!("length prefix {} is not {digits} ASCII digits", quoted(b))));
                    }
                    n = n * 10 + usize::from(c - b'0');
                }
                n
            }
            DigitEncoding::Bcd => {
                let b = r.take(digits.div_ceil(2), part)?;
                let mut n = 0usize;
                for i in 0..b.len() * 2 {
                    let nib = nibble(b, i);
                    if nib > 9 {
                        return Err(Error::field_problem(fs, format!("length prefix {} is not BCD", hex_string(b))));
                    }
                    n = n * 10 + usize::from(nib);
                }
                n
            }
        };
        if n > max {
            let kind = if digits == 2 { "LLVAR" } else { "LLLVAR" };
            return Err(Error::field_problem(fs, format!("{kind} length {n} exceeds max {max}")));
        }
        Ok(n)
    }

    fn decode_field(&self, fs: &FieldSpec, r: &mut Reader<'_>) -> Result<Vec<u8>, Error> {
        let hex_text = self.is_hex_text(fs);
        let (units, variable) = match fs.length {
            Length::Fixed(w) => (w, false),
            Length::LLVar(max) => (self.read_prefix(fs, r, 2, max)?, true),
            Length::LLLVar(max) => (self.read_prefix(fs, r, 3, max)?, true),
        };
        let part = Part::Field { field: fs.number, name: fs.name };

        match fs.kind {
            Kind::Numeric => match self.encoding.numeric {
                DigitEncoding::Ascii => {
                    let b = r.take(units, part)?;
                    if let Some(pos) = b.iter().position(|c| !c.is_ascii_digit()) {
                        return Err(Error::field_problem(fs, expected_digits(fs, units, b, pos)));
                    }
                    Ok(b.to_vec())
                }
                DigitEncoding::Bcd => {
                    let b = r.take(units.div_ceil(2), part)?;
                    decode_bcd_digits(fs, b, units)
                }
            },
            Kind::Alpha => {
                let b = r.take(units, part)?;
                check_printable(fs, b)?;
                Ok(b.to_vec())
            }
            Kind::Track2 => match self.encoding.track2 {
                DigitEncoding::Ascii => {
                    let b = r.take(units, part)?;
                    check_track2(fs, b)?;
                    Ok(b.to_vec())
                }
                DigitEncoding::Bcd => {
                    let b = r.take(units.div_ceil(2), part)?;
                    decode_track2_bcd(fs, b, units)
                }
            },
            Kind::Binary | Kind::Hex => {
                if hex_text {
                    let chars = if variable {
                        if units % 2 != 0 {
                            return Err(Error::field_problem(fs, format!("hex length {units} is odd (2 hex characters per byte)")));
                        }
                        units
                    } else {
                        units * 2
                    };
                    let text = r.take(chars, part)?;
                    let mut v = vec![0u8; chars / 2];
                    decode_hex(text, &mut v)
                        .map_err(|(pos, c)| Error::field_problem(fs, format!("{} at position {pos} is not an upper-case hex digit", byte_char(c))))?;
                    Ok(v)
                } else {
                    Ok(r.take(units, part)?.to_vec())
                }
            }
        }
    }
}

/// Bounds-checked cursor over the input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, part: Part) -> Result<&'a [u8], Error> {
        let available = self.remaining();
        let slice =
            self.pos.checked_add(n).and_then(|end| self.buf.get(self.pos..end)).ok_or(Error::Truncated { part, offset: self.pos, needed: n, available })?;
        self.pos += n;
        Ok(slice)
    }
}

fn bit(bitmap: &[u8; 16], n: u8) -> bool {
    let i = usize::from(n - 1);
    bitmap[i / 8] & (0x80 >> (i % 8)) != 0
}

fn set_bit(bitmap: &mut [u8; 16], n: u8) {
    let i = usize::from(n - 1);
    bitmap[i / 8] |= 0x80 >> (i % 8);
}

/// Nibble `i` of `b` (high nibble first). Caller guarantees `i < 2 * b.len()`.
fn nibble(b: &[u8], i: usize) -> u8 {
    let byte = b.get(i / 2).copied().unwrap_or(0);
    if i & 1 == 0 {
        byte >> 4
    } else {
        byte & 0x0F
    }
}

/// Packs validated ASCII digits as BCD, `width` digits wide (left zero padding), rounded up to
/// whole bytes with one more leading 0 nibble when `width` is odd.
fn push_bcd(out: &mut Vec<u8>, digits: &[u8], width: usize) {
    let nibbles = width + (width & 1);
    let pad = nibbles - digits.len();
    let mut it = std::iter::repeat_n(0u8, pad).chain(digits.iter().map(|d| d - b'0'));
    while let (Some(hi), lo) = (it.next(), it.next()) {
        out.push(hi << 4 | lo.unwrap_or(0));
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX_UPPER[usize::from(b >> 4)]);
        out.push(HEX_UPPER[usize::from(b & 0x0F)]);
    }
}

fn hex_string(bytes: &[u8]) -> String {
    let mut v = Vec::new();
    push_hex(&mut v, bytes);
    String::from_utf8(v).unwrap_or_default()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Upper-case hex text into `into` (`text.len() == 2 * into.len()`); error: (position, byte).
fn decode_hex(text: &[u8], into: &mut [u8]) -> Result<(), (usize, u8)> {
    for (i, (pair, slot)) in text.chunks_exact(2).zip(into.iter_mut()).enumerate() {
        let hi = hex_val(pair[0]).ok_or((2 * i, pair[0]))?;
        let lo = hex_val(pair[1]).ok_or((2 * i + 1, pair[1]))?;
        *slot = hi << 4 | lo;
    }
    Ok(())
}

fn push_track2_bcd(out: &mut Vec<u8>, v: &[u8]) {
    let mut it = v.iter().map(|&c| if c == b'=' { 0x0D } else { c - b'0' });
    while let (Some(hi), lo) = (it.next(), it.next()) {
        out.push(hi << 4 | lo.unwrap_or(0x0F));
    }
}

fn decode_bcd_digits(fs: &FieldSpec, b: &[u8], digits: usize) -> Result<Vec<u8>, Error> {
    let pad = b.len() * 2 - digits;
    if pad == 1 && nibble(b, 0) != 0 {
        return Err(Error::field_problem(fs, format!("BCD pad nibble is {:X}, expected 0", nibble(b, 0))));
    }
    let mut v = Vec::with_capacity(digits);
    for i in pad..b.len() * 2 {
        let nib = nibble(b, i);
        if nib > 9 {
            return Err(Error::field_problem(fs, format!("expected {digits} BCD digits, found nibble {nib:X} at digit {}", i - pad)));
        }
        v.push(b'0' + nib);
    }
    Ok(v)
}

fn decode_track2_bcd(fs: &FieldSpec, b: &[u8], chars: usize) -> Result<Vec<u8>, Error> {
    let mut v = Vec::with_capacity(chars);
    for i in 0..chars {
        match nibble(b, i) {
            n @ 0..=9 => v.push(b'0' + n),
            0x0D => v.push(b'='),
            n => return Err(Error::field_problem(fs, format!("contains nibble {n:X} at position {i} (track 2 allows 0-9 and D)"))),
        }
    }
    if chars % 2 == 1 && nibble(b, chars) != 0x0F {
        return Err(Error::field_problem(fs, format!("pad nibble is {:X}, expected F", nibble(b, chars))));
    }
    Ok(v)
}

fn unit_word(kind: Kind, hex_text: bool) -> &'static str {
    match kind {
        Kind::Numeric => "digits",
        Kind::Alpha | Kind::Track2 => "characters",
        Kind::Binary | Kind::Hex if hex_text => "hex characters",
        Kind::Binary | Kind::Hex => "bytes",
    }
}

fn expected_digits(fs: &FieldSpec, n: usize, found: &[u8], pos: usize) -> String {
    match fs.redact {
        Redact::Clear => format!("expected {n} digits, found {}", quoted(found)),
        _ => format!("expected {n} digits, found {} at position {pos}", byte_char(found.get(pos).copied().unwrap_or(0))),
    }
}

fn check_digits(fs: &FieldSpec, v: &[u8]) -> Result<(), Error> {
    match v.iter().position(|c| !c.is_ascii_digit()) {
        None => Ok(()),
        Some(pos) => Err(Error::field_problem(fs, format!("contains non-digit {} at position {pos}", byte_char(v[pos])))),
    }
}

fn check_printable(fs: &FieldSpec, v: &[u8]) -> Result<(), Error> {
    match v.iter().position(|&c| !(0x20..=0x7E).contains(&c)) {
        None => Ok(()),
        Some(pos) => Err(Error::field_problem(fs, format!("contains {} at position {pos} (printable ASCII expected)", byte_char(v[pos])))),
    }
}

fn check_track2(fs: &FieldSpec, v: &[u8]) -> Result<(), Error> {
    match v.iter().position(|&c| !(c.is_ascii_digit() || c == b'=')) {
        None => Ok(()),
        Some(pos) => Err(Error::field_problem(fs, format!("contains {} at position {pos} (track 2 allows digits and '=')", byte_char(v[pos])))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_packing() {
        let mut o = Vec::new();
        push_bcd(&mut o, b"123", 3);
        assert_eq!(o, [0x01, 0x23]);
        o.clear();
        push_bcd(&mut o, b"12", 6);
        assert_eq!(o, [0x00, 0x00, 0x12]);
        o.clear();
        push_bcd(&mut o, b"", 0);
        assert!(o.is_empty());
        o.clear();
        push_track2_bcd(&mut o, b"123=4");
        assert_eq!(o, [0x12, 0x3D, 0x4F]);
    }

    #[test]
    fn hex_round_trip_upper_only() {
        let mut o = Vec::new();
        push_hex(&mut o, &[0x9F, 0x26, 0x00]);
        assert_eq!(o, b"9F2600");
        let mut b = [0u8; 3];
        decode_hex(b"9F2600", &mut b).unwrap();
        assert_eq!(b, [0x9F, 0x26, 0x00]);
        assert_eq!(decode_hex(b"9f2600", &mut b), Err((1, b'f')));
    }

    #[test]
    fn bits() {
        let mut m = [0u8; 16];
        for n in [1u8, 2, 8, 9, 64, 65, 128] {
            set_bit(&mut m, n);
            assert!(bit(&m, n));
        }
        assert_eq!(m[0], 0xC1);
        assert_eq!(m[1], 0x80);
        assert_eq!(m[7], 0x01);
        assert_eq!(m[8], 0x80);
        assert_eq!(m[15], 0x01);
    }
}
