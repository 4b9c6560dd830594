//! Data Object Lists and the data store they are filled from (EMV Book 3 §5.4).

use crate::tag::{self, Format};
use crate::tlv::{Tag, TlvError};
use std::collections::BTreeMap;

/// One DOL entry: a tag and the length the card asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DolEntry {
    pub tag: Tag,
    pub len: usize,
}

/// A parsed Data Object List (PDOL 9F38, CDOL 8C, DDOL 9F49): tag + length pairs, no values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dol(pub Vec<DolEntry>);

impl Dol {
    /// Book 3 §5.4: a DOL is a concatenation of tag (BER) and one-byte length fields.
    pub fn parse(data: &[u8]) -> Result<Dol, TlvError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let (tag, used) = Tag::parse(&data[pos..]).map_err(|e| match e {
                TlvError::Truncated { at, what } => TlvError::Truncated { at: at + pos, what },
                other => other,
            })?;
            pos += used;
            let len = *data.get(pos).ok_or(TlvError::Truncated { at: pos, what: "DOL length" })?;
            pos += 1;
            out.push(DolEntry { tag, len: usize::from(len) });
        }
        Ok(Dol(out))
    }

    /// Encodes back to tag+length pairs.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.0 {
            v.extend(e.tag.to_bytes());
            v.push(e.len as u8);
        }
        v
    }

    pub fn contains(&self, tag: Tag) -> bool {
        self.0.iter().any(|e| e.tag == tag)
    }

    /// Total length of the DOL related data.
    pub fn data_len(&self) -> usize {
        self.0.iter().map(|e| e.len).sum()
    }

    /// Builds the DOL related data from `store` (Book 3 §5.4):
    /// - absent or unknown data, and constructed tags: `len` bytes of hex zeros;
    /// - longer than asked: numeric (n) loses its leftmost bytes, everything else its rightmost;
    /// - shorter than asked: numeric is padded with leading zeros, compressed numeric (cn) with
    ///   trailing `FF`, everything else with trailing zeros.
    pub fn build(&self, store: &DataStore) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data_len());
        for e in &self.0 {
            out.extend(fit(e.tag, store.get(e.tag), e.len));
        }
        out
    }

    /// Splits DOL related data back into (tag, value) pairs: what a card does with a PDOL.
    pub fn split<'a>(&self, data: &'a [u8]) -> Option<Vec<(Tag, &'a [u8])>> {
        let mut pos = 0;
        let mut out = Vec::new();
        for e in &self.0 {
            let v = data.get(pos..pos + e.len)?;
            out.push((e.tag, v));
            pos += e.len;
        }
        (pos == data.len()).then_some(out)
    }
}

fn fit(tag: Tag, value: Option<&[u8]>, len: usize) -> Vec<u8> {
    let format = tag::info(tag).map(|i| i.format);
    let value = match value {
        Some(v) if !tag.is_constructed() => v,
        _ => return vec![0; len],
    };
    use std::cmp::Ordering::*;
    match (value.len().cmp(&len), format) {
        (Equal, _) => value.to_vec(),
        (Greater, Some(Format::N)) => value[value.len() - len..].to_vec(),
        (Greater, _) => value[..len].to_vec(),
        (Less, Some(Format::N)) => {
            let mut v = vec![0; len - value.len()];
            v.extend_from_slice(value);
            v
        }
        (Less, Some(Format::Cn)) => {
            let mut v = value.to_vec();
            v.resize(len, 0xFF);
            v
        }
        (Less, _) => {
            let mut v = value.to_vec();
            v.resize(len, 0x00);
            v
        }
    }
}

/// Why card data could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Book C-3 §5.4.2.2 / C-7: a card data object returned twice is a card data error.
    #[error("card returned tag {0} more than once")]
    Duplicate(Tag),
    #[error(transparent)]
    Tlv(#[from] TlvError),
}

/// The kernel's database of data objects: terminal data and what the card returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataStore {
    map: BTreeMap<Tag, Vec<u8>>,
}

impl DataStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.map.get(&tag).map(|v| v.as_slice())
    }
    pub fn has(&self, tag: Tag) -> bool {
        self.map.contains_key(&tag)
    }
    pub fn set(&mut self, tag: Tag, value: impl Into<Vec<u8>>) {
        self.map.insert(tag, value.into());
    }
    pub fn remove(&mut self, tag: Tag) -> Option<Vec<u8>> {
        self.map.remove(&tag)
    }
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &[u8])> {
        self.map.iter().map(|(t, v)| (*t, v.as_slice()))
    }
    /// Stores every primitive object of a card response, rejecting a tag already received from
    /// the card in this transaction (`card_tags` tracks those).
    pub fn store_card_response(&mut self, data: &[u8], card_tags: &mut Vec<Tag>) -> Result<(), StoreError> {
        let mut dup = None;
        let mut items = Vec::new();
        crate::tlv::walk_primitives(data, &mut |t| items.push((t.tag, t.value.to_vec())))?;
        for (t, v) in items {
            if card_tags.contains(&t) {
                dup.get_or_insert(t);
                continue;
            }
            card_tags.push(t);
            self.map.insert(t, v);
        }
        match dup {
            Some(t) => Err(StoreError::Duplicate(t)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag;

    fn store() -> DataStore {
        let mut s = DataStore::new();
        s.set(tag::AMOUNT_AUTHORISED, vec![0, 0, 0, 0, 0x12, 0x34]);
        s.set(tag::TTQ, vec![0x36, 0, 0x40, 0]);
        s.set(tag::PAN, vec![0x62, 0x12, 0x34]);
        s.set(tag::MERCHANT_NAME_LOCATION, b"SHOP".to_vec());
        s
    }

    #[test]
    fn exact_lengths_copy_values_in_order() {
        let dol = Dol::parse(&[0x9F, 0x66, 4, 0x9F, 0x02, 6]).unwrap();
        assert_eq!(dol.build(&store()), vec![0x36, 0, 0x40, 0, 0, 0, 0, 0, 0x12, 0x34]);
    }

    #[test]
    fn numeric_truncates_left_and_pads_left() {
        let s = store();
        assert_eq!(Dol::parse(&[0x9F, 0x02, 2]).unwrap().build(&s), vec![0x12, 0x34]);
        assert_eq!(Dol::parse(&[0x9F, 0x02, 8]).unwrap().build(&s), vec![0, 0, 0, 0, 0, 0, 0x12, 0x34]);
    }

    #[test]
    fn binary_truncates_right_and_pads_right() {
        let s = store();
        assert_eq!(Dol::parse(&[0x9F, 0x66, 2]).unwrap().build(&s), vec![0x36, 0]);
        assert_eq!(Dol::parse(&[0x9F, 0x4E, 6]).unwrap().build(&s), b"SHOP\0\0".to_vec());
    }

    #[test]
    fn compressed_numeric_pads_with_f() {
        assert_eq!(Dol::parse(&[0x5A, 5]).unwrap().build(&store()), vec![0x62, 0x12, 0x34, 0xFF, 0xFF]);
    }

    #[test]
    fn absent_unknown_and_constructed_give_zeros() {
        let dol = Dol::parse(&[0x9F, 0x37, 4, 0xDF, 0x81, 0x7F, 2, 0x70, 3]).unwrap();
        assert_eq!(dol.build(&store()), vec![0; 9]);
    }

    #[test]
    fn truncated_dol_is_error() {
        assert!(Dol::parse(&[0x9F, 0x66]).is_err());
        assert!(Dol::parse(&[0x9F]).is_err());
    }

    #[test]
    fn split_inverts_build() {
        let dol = Dol::parse(&[0x9F, 0x66, 4, 0x9F, 0x02, 6]).unwrap();
        let data = dol.build(&store());
        let parts = dol.split(&data).unwrap();
        assert_eq!(parts[1], (tag::AMOUNT_AUTHORISED, &[0, 0, 0, 0, 0x12, 0x34][..]));
        assert!(dol.split(&data[1..]).is_none());
    }

    #[test]
    fn duplicate_card_tag_rejected() {
        let mut s = DataStore::new();
        let mut seen = Vec::new();
        s.store_card_response(&[0x77, 0x04, 0x82, 0x02, 0x20, 0x00], &mut seen).unwrap();
        let err = s.store_card_response(&[0x70, 0x04, 0x82, 0x02, 0x00, 0x00], &mut seen);
        assert_eq!(err, Err(StoreError::Duplicate(tag::AIP)));
    }
}
