//! BER-TLV codec (EMV Book 3 Annex B, ISO/IEC 8825-1 subset).
//!
//! Tolerant of unknown and proprietary tags (they are carried, not rejected), strict on malformed
//! encodings: a truncated tag, a length field longer than 4 bytes, an indefinite length or a value
//! running past the end of the buffer is an error, never a panic. `00` and `FF` bytes between
//! objects are padding (Book 3 Annex B: "may occur before, between or after TLV-coded data objects").

use std::fmt;

/// An EMV tag, stored as its big-endian bytes in a `u32` (`0x9F02`, `0x5A`, `0xBF0C`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u32);

impl Tag {
    /// Number of bytes of the encoded tag.
    pub fn encoded_len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }
    /// The encoded tag bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let b = self.0.to_be_bytes();
        b[4 - self.encoded_len()..].to_vec()
    }
    fn first_byte(self) -> u8 {
        self.to_bytes()[0]
    }
    /// Book 3 Annex B1: bit b6 of the first byte marks a constructed object.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }
    /// Reads one tag from the front of `data`, returning it and the bytes it took.
    pub fn parse(data: &[u8]) -> Result<(Tag, usize), TlvError> {
        let first = *data.first().ok_or(TlvError::Truncated { at: 0, what: "tag" })?;
        let mut value = u32::from(first);
        let mut used = 1;
        if first & 0x1F == 0x1F {
            loop {
                let b = *data.get(used).ok_or(TlvError::Truncated { at: used, what: "tag" })?;
                used += 1;
                if used > 4 {
                    return Err(TlvError::TagTooLong { at: 0 });
                }
                value = (value << 8) | u32::from(b);
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        Ok((Tag(value), used))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode_upper(self.to_bytes()))
    }
}

/// Why a byte string is not valid BER-TLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV truncated in {what} at offset {at}")]
    Truncated { at: usize, what: &'static str },
    #[error("tag longer than 4 bytes at offset {at}")]
    TagTooLong { at: usize },
    #[error("unsupported length encoding 0x{byte:02X} at offset {at}")]
    BadLength { at: usize, byte: u8 },
    #[error("value of tag {tag} needs {needed} bytes, only {available} left")]
    ValueOverrun { tag: Tag, needed: usize, available: usize },
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

/// One decoded object borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    /// The whole encoding (tag, length, value).
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Children of a constructed object.
    pub fn children(&self) -> Iter<'a> {
        Iter::new(self.value)
    }
}

fn parse_length(data: &[u8], at: usize) -> Result<(usize, usize), TlvError> {
    let first = *data.get(at).ok_or(TlvError::Truncated { at, what: "length" })?;
    if first & 0x80 == 0 {
        return Ok((usize::from(first), 1));
    }
    let n = usize::from(first & 0x7F);
    if n == 0 || n > 4 {
        return Err(TlvError::BadLength { at, byte: first });
    }
    let mut len = 0usize;
    for i in 0..n {
        let b = *data.get(at + 1 + i).ok_or(TlvError::Truncated { at: at + 1 + i, what: "length" })?;
        len = (len << 8) | usize::from(b);
    }
    Ok((len, 1 + n))
}

/// Iterator over the objects at one level of a buffer.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iter<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Iter { data, pos: 0, failed: false }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while self.pos < self.data.len() && matches!(self.data[self.pos], 0x00 | 0xFF) {
            self.pos += 1;
        }
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let res = (|| {
            let (tag, tl) = Tag::parse(&self.data[start..]).map_err(|e| shift(e, start))?;
            let (len, ll) = parse_length(self.data, start + tl)?;
            let vstart = start + tl + ll;
            let available = self.data.len() - vstart;
            if len > available {
                return Err(TlvError::ValueOverrun { tag, needed: len, available });
            }
            let end = vstart + len;
            Ok((Tlv { tag, value: &self.data[vstart..end], raw: &self.data[start..end] }, end))
        })();
        match res {
            Ok((tlv, end)) => {
                self.pos = end;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn shift(e: TlvError, by: usize) -> TlvError {
    match e {
        TlvError::Truncated { at, what } => TlvError::Truncated { at: at + by, what },
        TlvError::TagTooLong { at } => TlvError::TagTooLong { at: at + by },
        other => other,
    }
}

/// Parses one level fully, failing on the first malformed object.
pub fn parse_all(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    Iter::new(data).collect()
}

/// Validates a whole tree (every constructed object's children too), up to `MAX_DEPTH`.
pub fn validate(data: &[u8]) -> Result<(), TlvError> {
    fn walk(data: &[u8], depth: usize) -> Result<(), TlvError> {
        if depth > MAX_DEPTH {
            return Err(TlvError::TooDeep(MAX_DEPTH));
        }
        for t in Iter::new(data) {
            let t = t?;
            if t.tag.is_constructed() {
                walk(t.value, depth + 1)?;
            }
        }
        Ok(())
    }
    walk(data, 0)
}

/// Deepest nesting the codec walks into (real card data uses 3-4).
pub const MAX_DEPTH: usize = 8;

/// Depth-first search for the first object with `tag`, descending into constructed objects.
pub fn find(data: &[u8], tag: Tag) -> Result<Option<&[u8]>, TlvError> {
    fn walk(data: &[u8], tag: Tag, depth: usize) -> Result<Option<&[u8]>, TlvError> {
        if depth > MAX_DEPTH {
            return Err(TlvError::TooDeep(MAX_DEPTH));
        }
        for t in Iter::new(data) {
            let t = t?;
            if t.tag == tag {
                return Ok(Some(t.value));
            }
            if t.tag.is_constructed() {
                if let Some(v) = walk(t.value, tag, depth + 1)? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }
    walk(data, tag, 0)
}

/// Every object of a TLV tree, parsed once, for many look-ups: [`Index::get`] answers what
/// [`find`] would (the first object with the tag, depth first, templates included) without
/// walking the bytes again.
#[derive(Debug, Clone, Default)]
pub struct Index<'a>(Vec<(Tag, &'a [u8])>);

impl<'a> Index<'a> {
    /// Indexes `data`; malformed data anywhere (or nesting deeper than [`find`] accepts) is an
    /// error.
    pub fn new(data: &'a [u8]) -> Result<Self, TlvError> {
        fn go<'a>(data: &'a [u8], out: &mut Vec<(Tag, &'a [u8])>, depth: usize) -> Result<(), TlvError> {
            if depth > MAX_DEPTH {
                return Err(TlvError::TooDeep(MAX_DEPTH));
            }
            for t in Iter::new(data) {
                let t = t?;
                out.push((t.tag, t.value));
                if t.tag.is_constructed() {
                    go(t.value, out, depth + 1)?;
                }
            }
            Ok(())
        }
        let mut out = Vec::with_capacity(32);
        go(data, &mut out, 0)?;
        Ok(Index(out))
    }

    /// The value of the first object tagged `tag`.
    pub fn get(&self, tag: Tag) -> Option<&'a [u8]> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }
}

/// Calls `f` for every primitive object in the tree (depth first), with its depth.
pub fn walk_primitives<'a>(data: &'a [u8], f: &mut dyn FnMut(Tlv<'a>)) -> Result<(), TlvError> {
    fn go<'a>(data: &'a [u8], f: &mut dyn FnMut(Tlv<'a>), depth: usize) -> Result<(), TlvError> {
        if depth > MAX_DEPTH {
            return Err(TlvError::TooDeep(MAX_DEPTH));
        }
        for t in Iter::new(data) {
            let t = t?;
            if t.tag.is_constructed() {
                go(t.value, f, depth + 1)?;
            } else {
                f(t);
            }
        }
        Ok(())
    }
    go(data, f, 0)
}

/// Encodes a length per Book 3 Annex B2 (short form below 128, else 81/82/83 long forms).
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
}

/// Encodes one object.
pub fn encode(tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_bytes();
    encode_length(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// Small builder for nested templates: `Builder::new().put(tag::PAN, &pan).wrap(tag::RECORD_TEMPLATE)`.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(mut self, tag: Tag, value: &[u8]) -> Self {
        self.buf.extend(encode(tag, value));
        self
    }
    pub fn put_opt(self, tag: Tag, value: Option<&[u8]>) -> Self {
        match value {
            Some(v) => self.put(tag, v),
            None => self,
        }
    }
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self
    }
    pub fn wrap(self, tag: Tag) -> Vec<u8> {
        encode(tag, &self.buf)
    }
    pub fn build(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index answers what `find` answers: first match depth first, templates included, a
    /// later duplicate ignored, an absent tag absent; malformed data is refused.
    #[test]
    fn index_answers_like_find() {
        let inner = Builder::new().put(Tag(0x5A), &[0x62, 0x35]).put(Tag(0x9F36), &[0, 7]).wrap(Tag(0x70));
        let data = Builder::new().put(Tag(0x9F02), &[0, 0, 0, 0, 0x50, 0]).raw(&inner).put(Tag(0x5A), &[0x99]).put(Tag(0x9F27), &[0x80]).build();
        let index = Index::new(&data).unwrap();
        for t in [0x9F02, 0x70, 0x5A, 0x9F36, 0x9F27, 0x9F26, 0x82] {
            assert_eq!(index.get(Tag(t)), find(&data, Tag(t)).unwrap(), "tag {t:X}");
        }
        assert_eq!(index.get(Tag(0x5A)), Some(&[0x62, 0x35][..]), "the first 5A, inside the template");
        assert!(Index::new(&[0x5A, 0x08, 0x12]).is_err());
    }

    #[test]
    fn parses_multibyte_tag_and_long_length() {
        let mut v = vec![0x9F, 0x46, 0x81, 0x90];
        v.extend(std::iter::repeat_n(0xAB, 0x90));
        let t = parse_all(&v).unwrap();
        assert_eq!(t[0].tag, Tag(0x9F46));
        assert_eq!(t[0].value.len(), 0x90);
    }

    #[test]
    fn value_overrun_is_error_not_panic() {
        assert_eq!(parse_all(&[0x5A, 0x08, 0x12]), Err(TlvError::ValueOverrun { tag: Tag(0x5A), needed: 8, available: 1 }));
    }

    #[test]
    fn truncated_tag_and_length_are_errors() {
        assert!(matches!(parse_all(&[0x9F]), Err(TlvError::Truncated { what: "tag", .. })));
        assert!(matches!(parse_all(&[0x9F, 0x02]), Err(TlvError::Truncated { what: "length", .. })));
        assert!(matches!(parse_all(&[0x5A, 0x82, 0x01]), Err(TlvError::Truncated { .. })));
    }

    #[test]
    fn indefinite_and_oversized_lengths_rejected() {
        assert!(matches!(parse_all(&[0x5A, 0x80]), Err(TlvError::BadLength { .. })));
        assert!(matches!(parse_all(&[0x5A, 0x85, 0, 0, 0, 0, 1]), Err(TlvError::BadLength { .. })));
    }

    #[test]
    fn padding_between_objects_is_skipped() {
        let t = parse_all(&[0x00, 0x5A, 0x01, 0x12, 0xFF, 0x00, 0x50, 0x00]).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].tag, Tag(0x50));
    }

    #[test]
    fn unknown_proprietary_tags_are_carried() {
        let data = Builder::new().put(Tag(0xDF8F01), &[1, 2]).put(Tag(0x9F7F), &[3]).wrap(Tag(0x70));
        assert_eq!(find(&data, Tag(0xDF8F01)).unwrap(), Some(&[1u8, 2][..]));
    }

    #[test]
    fn find_descends_into_templates() {
        let data = Builder::new().raw(&Builder::new().put(Tag(0x4F), &[0xA0, 0, 0, 3, 0x33]).wrap(Tag(0x61))).wrap(Tag(0xBF0C));
        assert_eq!(find(&data, Tag(0x4F)).unwrap().unwrap(), &[0xA0, 0, 0, 3, 0x33]);
        assert_eq!(find(&data, Tag(0x50)).unwrap(), None);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut v = vec![0x5A, 0x00];
        for _ in 0..20 {
            v = encode(Tag(0x70), &v);
        }
        assert_eq!(validate(&v), Err(TlvError::TooDeep(MAX_DEPTH)));
    }
}
