//! Property tests: the codecs never panic on hostile bytes and round-trip what they encode.

use kernels::apdu::{CApdu, RApdu};
use kernels::dol::{DataStore, Dol};
use kernels::tlv::{self, Tag};
use proptest::prelude::*;

/// A valid tag: 1 byte (low 5 bits not all 1), or 2-3 bytes with continuation bits.
fn arb_tag() -> impl Strategy<Value = Tag> {
    prop_oneof![
        (0u8..=0xFF).prop_filter("not multi-byte, not padding", |b| b & 0x1F != 0x1F && *b != 0 && *b != 0xFF && b & 0x20 == 0).prop_map(|b| Tag(u32::from(b))),
        (0u8..=0x07, 0u8..=0x7F).prop_map(|(cls, b2)| Tag(u32::from(0x9F | (cls << 5) & 0xC0) << 8 | u32::from(b2.max(0x1F)))),
        (0u8..=0x7F).prop_map(|b3| Tag(0xDF8100 | u32::from(b3))),
    ]
}

proptest! {
    #[test]
    fn tlv_roundtrip(items in prop::collection::vec((arb_tag(), prop::collection::vec(any::<u8>(), 0..300)), 0..8)) {
        let mut b = tlv::Builder::new();
        for (t, v) in &items { b = b.put(*t, v); }
        let enc = b.build();
        let dec = tlv::parse_all(&enc).unwrap();
        prop_assert_eq!(dec.len(), items.len());
        for (d, (t, v)) in dec.iter().zip(&items) {
            prop_assert_eq!(d.tag, *t);
            prop_assert_eq!(d.value, &v[..]);
        }
    }

    #[test]
    fn tlv_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = tlv::parse_all(&data);
        let _ = tlv::validate(&data);
        let _ = tlv::find(&data, Tag(0x5A));
        let _ = tlv::walk_primitives(&data, &mut |_| {});
    }

    #[test]
    fn tlv_truncation_is_an_error(v in prop::collection::vec(any::<u8>(), 1..300), cut in 1usize..300) {
        let enc = tlv::encode(Tag(0x9F46), &v);
        let cut = cut.min(enc.len() - 1);
        prop_assert!(tlv::parse_all(&enc[..enc.len() - cut]).is_err());
    }

    #[test]
    fn dol_build_has_exactly_the_requested_length(
        entries in prop::collection::vec((arb_tag(), 0u8..=40), 0..12),
        values in prop::collection::vec((arb_tag(), prop::collection::vec(any::<u8>(), 0..40)), 0..12),
    ) {
        let mut raw = Vec::new();
        for (t, l) in &entries { raw.extend(t.to_bytes()); raw.push(*l); }
        let dol = Dol::parse(&raw).unwrap();
        let mut s = DataStore::new();
        for (t, v) in values { s.set(t, v); }
        let data = dol.build(&s);
        prop_assert_eq!(data.len(), entries.iter().map(|(_, l)| usize::from(*l)).sum::<usize>());
        prop_assert!(dol.split(&data).is_some());
        prop_assert_eq!(Dol::parse(&dol.encode()).unwrap(), dol);
    }

    #[test]
    fn dol_parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(d) = Dol::parse(&data) { let _ = d.build(&DataStore::new()); }
    }

    #[test]
    fn apdu_parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Some(c) = CApdu::parse(&data) { prop_assert_eq!(CApdu::parse(&c.to_bytes()), Some(c)); }
        if let Some(r) = RApdu::parse(&data) { prop_assert_eq!(r.to_bytes(), data); }
    }

    #[test]
    fn afl_parse_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(a) = kernels::types::Afl::parse(&data) {
            for (sfi, rec, _) in a.records() { prop_assert!((1..=30).contains(&sfi) && rec >= 1); }
        }
    }
}
