//! Property tests, driven by the spec tables themselves: round trips, no panics on arbitrary
//! or corrupted input, canonical unpack, truncation always detected.

use iso8583::{ascii87, bcd87, Error, FieldSpec, Header, Kind, Length, Message, Mti, Spec};
use proptest::collection::vec;
use proptest::prelude::*;

fn tpdu_spec() -> &'static Spec {
    use std::sync::OnceLock;
    static S: OnceLock<Spec> = OnceLock::new();
    S.get_or_init(|| Spec::bcd87_with_tpdu([0x60, 0x00, 0x03, 0x00, 0x00]))
}

fn specs() -> [&'static Spec; 3] {
    [ascii87(), bcd87(), tpdu_spec()]
}

/// A value valid for `fs` in `spec`, in logical form. Fixed fields get their full width so
/// the round trip is the identity (shorter numeric / alpha values are padded).
fn value(spec: &Spec, fs: &FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let max = spec.max_logical_len(fs);
    let len = match fs.length {
        Length::Fixed(w) => w..=w,
        Length::LLVar(_) | Length::LLLVar(_) => 0..=max,
    };
    match fs.kind {
        Kind::Numeric => vec(b'0'..=b'9', len).boxed(),
        Kind::Alpha => vec(0x20u8..=0x7E, len).boxed(),
        Kind::Track2 => vec(prop_oneof![9 => b'0'..=b'9', 1 => Just(b'=')], len).boxed(),
        Kind::Binary | Kind::Hex => vec(any::<u8>(), len).boxed(),
    }
}

fn mti() -> impl Strategy<Value = Mti> {
    (0u16..=9999).prop_map(|n| Mti::try_from(n).expect("0..=9999"))
}

/// A random valid message for `spec`: each defined field present with probability 0.3.
fn message(spec: &'static Spec) -> impl Strategy<Value = Message> {
    let fields: Vec<_> = spec.fields().iter().map(|fs| proptest::option::weighted(0.3, value(spec, fs)).prop_map(move |v| (fs.number, v))).collect();
    (mti(), fields).prop_map(|(mti, fields)| {
        let mut m = Message::new(mti);
        for (n, v) in fields {
            if let Some(v) = v {
                m.set(n, v);
            }
        }
        m
    })
}

/// A spec index and a valid message for it.
fn spec_and_message() -> impl Strategy<Value = (usize, Message)> {
    prop_oneof![message(specs()[0]).prop_map(|m| (0, m)), message(specs()[1]).prop_map(|m| (1, m)), message(specs()[2]).prop_map(|m| (2, m)),]
}

/// Unpack; if accepted, pack must give back exactly the same bytes (canonical unpack).
fn check_unpack(spec: &Spec, bytes: &[u8]) -> Result<(), TestCaseError> {
    match spec.unpack_with_tpdu(bytes) {
        Ok((tpdu, m)) => {
            let again = match tpdu {
                Some(t) => spec.clone().with_header(Header::Tpdu(t)).pack(&m),
                None => spec.pack(&m),
            };
            prop_assert_eq!(again.as_deref(), Ok(bytes), "accepted input does not re-pack to itself");
        }
        Err(e) => {
            // Rendering must not panic either.
            let _ = e.to_string();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn pack_unpack_round_trip((i, m) in spec_and_message()) {
        let spec = specs()[i];
        let body = spec.pack(&m).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&spec.unpack(&body), &Ok(m.clone()));
        let framed = spec.frame(&body);
        prop_assert_eq!(framed.len(), body.len() + 2);
        prop_assert_eq!(spec.unpack_framed(&framed), Ok(m.clone()));
        prop_assert_eq!(spec.split_frame(&framed), Some((&body[..], &[][..])));
        // describe never shows a full PAN
        if let Some(pan) = m.get(2).filter(|p| p.len() >= 13) {
            let d = spec.describe(&m);
            let pan = std::str::from_utf8(pan).unwrap();
            prop_assert!(!d.contains(pan));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        for spec in specs() {
            check_unpack(spec, &bytes)?;
            let _ = spec.unpack_framed(&bytes);
            let _ = spec.split_frame(&bytes);
        }
    }

    /// Arbitrary bytes after a plausible header, so the field decoders see the noise.
    #[test]
    fn noise_after_valid_header_never_panics(
        mti in mti(),
        bitmap in any::<[u8; 16]>(),
        tail in vec(prop_oneof![3 => b'0'..=b'9', 1 => any::<u8>()], 0..400),
    ) {
        for spec in specs() {
            let header = spec.pack(&Message::new(mti)).unwrap();
            // Binary bitmap variant.
            let mut b = header[..header.len() - 8].to_vec();
            b.extend_from_slice(&bitmap);
            b.extend_from_slice(&tail);
            check_unpack(spec, &b)?;
            // Hex bitmap variant.
            let mut h = header[..header.len().saturating_sub(16)].to_vec();
            for x in bitmap {
                h.extend_from_slice(format!("{x:02X}").as_bytes());
            }
            h.extend_from_slice(&tail);
            check_unpack(spec, &h)?;
        }
    }

    #[test]
    fn one_byte_mutation_errors_or_is_canonical(
        (i, m) in spec_and_message(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let spec = specs()[i];
        let mut b = spec.pack(&m).unwrap();
        let p = pos.index(b.len());
        b[p] = byte;
        check_unpack(spec, &b)?;
    }

    #[test]
    fn splice_of_noise_errors_or_is_canonical(
        (i, m) in spec_and_message(),
        pos in any::<prop::sample::Index>(),
        noise in vec(any::<u8>(), 0..40),
    ) {
        let spec = specs()[i];
        let b = spec.pack(&m).unwrap();
        let mut s = b[..pos.index(b.len())].to_vec();
        s.extend_from_slice(&noise);
        check_unpack(spec, &s)?;
    }

    #[test]
    fn every_truncation_is_an_error((i, m) in spec_and_message()) {
        let spec = specs()[i];
        let body = spec.pack(&m).unwrap();
        for cut in 0..body.len() {
            let r = spec.unpack(&body[..cut]);
            prop_assert!(matches!(r, Err(Error::Truncated { .. })), "cut at {}: {:?}", cut, r);
        }
        let framed = spec.frame(&body);
        for cut in 0..framed.len() {
            prop_assert!(spec.unpack_framed(&framed[..cut]).is_err());
            prop_assert_eq!(spec.split_frame(&framed[..cut]), None);
        }
    }

    /// Shorter numeric / alpha values are padded, and the padded value comes back.
    #[test]
    fn short_fixed_values_are_padded((i, m) in spec_and_message(), keep in 0usize..12) {
        let spec = specs()[i];
        let mut short = m.clone();
        let mut expected = m.clone();
        for fs in spec.fields() {
            if let (Length::Fixed(w), Some(v)) = (fs.length, m.get(fs.number)) {
                let k = keep.min(w);
                match fs.kind {
                    Kind::Numeric => {
                        let mut padded = vec![b'0'; w - k];
                        padded.extend_from_slice(&v[w - k..]);
                        short.set(fs.number, &v[w - k..]);
                        expected.set(fs.number, padded);
                    }
                    Kind::Alpha => {
                        let mut padded = v[..k].to_vec();
                        padded.resize(w, b' ');
                        short.set(fs.number, &v[..k]);
                        expected.set(fs.number, padded);
                    }
                    _ => {}
                }
            }
        }
        let body = spec.pack(&short).unwrap();
        prop_assert_eq!(spec.unpack(&body), Ok(expected));
    }
}
