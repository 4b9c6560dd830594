//! Hand-built byte-level vectors and error cases. The hex examples in README.md are the
//! vectors of `ascii87_0200_exact_bytes` and `bcd87_0200_with_tpdu_exact_bytes`.

use iso8583::{ascii87, bcd87, field, Encoding, Error, FieldSpec, Framing, Header, Kind, Length, Message, Mti, Part, Spec, Tpdu};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() & 1 == 0, "odd hex in test vector");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector hex")).collect()
}

const PAN: &str = "4761739001010119";
const TRACK2: &str = "4761739001010119=25122011143804400000";
const ICC: [u8; 11] = [0x9F, 0x26, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

/// 0200 with fields 2, 3, 4, 11, 22, 35, 41, 42, 49, 55.
fn sale() -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(2, PAN)
        .set_str(3, "000000")
        .set_str(4, "000000001000")
        .set_str(11, "000123")
        .set_str(22, "071")
        .set_str(35, TRACK2)
        .set_str(41, "TERM0001")
        .set_str(42, "MERCHANT0000001")
        .set_str(49, "156")
        .set(55, ICC);
    m
}

#[test]
fn ascii87_0200_exact_bytes() {
    let expected: &[u8] = concat!(
        "0200",             // MTI
        "7020040020C08200", // bitmap: 70=2,3,4 20=11 04=22 00 20=35 C0=41,42 82=49,55 00
        "16",
        "4761739001010119", // 2 LLVAR
        "000000",           // 3
        "000000001000",     // 4
        "000123",           // 11
        "071",              // 22 contactless chip
        "37",
        "4761739001010119=25122011143804400000", // 35 LLVAR
        "TERM0001",                              // 41
        "MERCHANT0000001",                       // 42
        "156",                                   // 49
        "022",
        "9F26081122334455667788", // 55 LLLVAR, counts hex chars
    )
    .as_bytes();
    assert_eq!(expected.len(), 155);

    let body = ascii87().pack(&sale()).unwrap();
    assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(expected));
    assert_eq!(body, expected);

    let framed = ascii87().frame(&body);
    assert_eq!(&framed[..2], &[0x00, 0x9B]);
    assert_eq!(&framed[2..], expected);
    assert_eq!(ascii87().pack_framed(&sale()).unwrap(), framed);

    assert_eq!(ascii87().unpack(expected).unwrap(), sale());
    assert_eq!(ascii87().unpack_framed(&framed).unwrap(), sale());
    assert_eq!(ascii87().unpack(expected).unwrap().get(55), Some(&ICC[..]));
}

#[test]
fn bcd87_0200_with_tpdu_exact_bytes() {
    let spec = Spec::bcd87_with_tpdu([0x60, 0x00, 0x03, 0x00, 0x00]);
    let expected = unhex(
        "6000030000                                 \
         0200                                       \
         7020040020C08200                           \
         16 4761739001010119                        \
         000000                                     \
         000000001000                               \
         000123                                     \
         0071                                       \
         37 4761739001010119D25122011143804400000F  \
         5445524D30303031                           \
         4D45524348414E54303030303030 31            \
         0156                                       \
         0011 9F26081122334455667788",
    );
    assert_eq!(expected.len(), 96);

    let body = spec.pack(&sale()).unwrap();
    assert_eq!(body, expected);
    let framed = spec.frame(&body);
    assert_eq!(&framed[..2], &[0x00, 0x60]);

    let (tpdu, m) = spec.unpack_with_tpdu(&expected).unwrap();
    assert_eq!(m, sale());
    let tpdu = tpdu.unwrap();
    assert_eq!(tpdu, Tpdu([0x60, 0x00, 0x03, 0x00, 0x00]));

    // The host answers with the addresses swapped.
    let reply_spec = bcd87().clone().with_header(Header::Tpdu(tpdu.reply()));
    let mut resp = m.clone();
    resp.mti = m.mti.response().unwrap();
    resp.set_str(39, "00");
    let r = reply_spec.pack(&resp).unwrap();
    assert_eq!(&r[..7], &[0x60, 0x00, 0x00, 0x00, 0x03, 0x02, 0x10]);

    // Without TPDU the body starts at the MTI.
    let plain = bcd87().pack(&sale()).unwrap();
    assert_eq!(plain, expected[5..]);
    assert_eq!(bcd87().unpack(&expected[5..]).unwrap(), sale());
}

#[test]
fn secondary_bitmap_ascii87() {
    let mut m = Message::new(Mti::REVERSAL_ADVICE);
    m.set_str(3, "000000")
        .set_str(4, "000000001000")
        .set_str(11, "000124")
        .set_str(41, "TERM0001")
        .set_str(90, "020000012301011200000000000000000000000000")
        .set(128, [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]);
    let expected = concat!(
        "0420",
        "B020000000800000", // bit 1 (secondary present), 3, 4, 11, 41
        "0000004000000001", // 90, 128
        "000000",
        "000000001000",
        "000124",
        "TERM0001",
        "020000012301011200000000000000000000000000",
        "0123456789ABCDEF",
    );
    let body = ascii87().pack(&m).unwrap();
    assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
    assert_eq!(ascii87().unpack(&body).unwrap(), m);

    // Only field 128 above 64: primary bit 1 still set.
    let mut n = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
    n.set_str(70, "301");
    let body = ascii87().pack(&n).unwrap();
    // Secondary byte 0 = 0x04: field 70 is bit 6 of the secondary bitmap.
    assert_eq!(body, b"080080000000000000000400000000000000301");
    assert_eq!(ascii87().unpack(&body).unwrap(), n);
}

#[test]
fn secondary_bitmap_bcd87() {
    let mut m = Message::new(Mti::REVERSAL_ADVICE);
    m.set_str(11, "000124").set_str(90, "020000012301011200000000000000000000000000").set(128, [0xFF; 8]);
    let body = bcd87().pack(&m).unwrap();
    let expected = unhex(
        "0420 8020000000000000 0000004000000001 000124 \
         020000012301011200000000000000000000000000 FFFFFFFFFFFFFFFF",
    );
    assert_eq!(body, expected);
    assert_eq!(bcd87().unpack(&body).unwrap(), m);
}

#[test]
fn fixed_padding_rules() {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(4, "1000").set_str(41, "TERM1").set_str(22, "71");
    let body = ascii87().pack(&m).unwrap();
    assert_eq!(&body[20..], b"000000001000071TERM1   ");
    let back = ascii87().unpack(&body).unwrap();
    assert_eq!(back.get_str(4), Some("000000001000"));
    assert_eq!(back.get_str(41), Some("TERM1   "), "alpha padding is kept on unpack");

    // BCD: odd widths get one more leading 0 nibble.
    let body = bcd87().pack(&m).unwrap();
    assert_eq!(body[10..], unhex("000000001000 0071 5445524D31202020")[..]);

    // Empty variable fields are legal and round-trip.
    let mut e = Message::new(Mti::FINANCIAL_REQUEST);
    e.set(55, Vec::new()).set_str(2, "");
    let body = ascii87().pack(&e).unwrap();
    assert_eq!(&body[20..], b"00000");
    assert_eq!(ascii87().unpack(&body).unwrap(), e);
    // Odd-length PAN in BCD: left-padded with a 0 nibble.
    let mut p = Message::new(Mti::FINANCIAL_REQUEST);
    p.set_str(2, "4761739001010119123");
    assert_eq!(bcd87().pack(&p).unwrap()[10..], unhex("19 04761739001010119123")[..]);
    assert_eq!(bcd87().unpack(&bcd87().pack(&p).unwrap()).unwrap(), p);
}

fn field_err(r: Result<impl std::fmt::Debug, Error>) -> (Option<u8>, String) {
    let e = r.expect_err("expected an error");
    (e.field(), e.to_string())
}

#[test]
fn pack_errors_name_the_field() {
    let p = |f: u8, v: &[u8]| {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set(f, v);
        field_err(ascii87().pack(&m))
    };
    let (f, s) = p(4, b"1234567890123");
    assert_eq!(f, Some(4));
    assert_eq!(s, "field 4 (amount, transaction): value has 13 digits, fixed length is 12");
    let (f, s) = p(4, b"12A4");
    assert_eq!(f, Some(4));
    assert!(s.starts_with("field 4 (amount, transaction): contains non-digit 'A'"), "{s}");
    let (_, s) = p(41, b"TERMINAL9");
    assert_eq!(s, "field 41 (card acceptor terminal identification): value has 9 characters, fixed length is 8");
    let (_, s) = p(41, b"TERM\n");
    assert!(s.contains("field 41") && s.contains("byte 0x0A"), "{s}");
    let (_, s) = p(35, b"4761739001010119X2512");
    assert!(s.starts_with("field 35 (track 2): contains 'X'"), "{s}");
    let (_, s) = p(35, b"4761739001010119D2512");
    assert!(s.starts_with("field 35 (track 2): contains 'D'"), "{s}");
    let (_, s) = p(52, &[0; 7]);
    assert_eq!(s, "field 52 (PIN data): value has 7 bytes, fixed length is exactly 8");
    let (_, s) = p(55, &[0; 500]);
    assert_eq!(s, "field 55 (ICC data): value is 500 bytes = 1000 hex characters, max 999");
    let (_, s) = p(2, b"12345678901234567890");
    assert_eq!(s, "field 2 (primary account number): value has 20 digits, max 19");
    let (f, s) = p(17, b"0101");
    assert_eq!(f, Some(17));
    assert_eq!(s, "field 17 is not defined by spec ascii87");
    assert!(matches!(ascii87().pack(&Message::new(Mti::FINANCIAL_REQUEST).with(1, "x")), Err(Error::InvalidFieldNumber(1))));
    assert!(matches!(ascii87().pack(&Message::new(Mti::FINANCIAL_REQUEST).with(200, "x")), Err(Error::InvalidFieldNumber(200))));
    // bcd87 accepts 999 bytes of ICC data (its prefix counts bytes), not 1000.
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set(55, vec![0u8; 999]);
    assert!(bcd87().pack(&m).is_ok());
    m.set(55, vec![0u8; 1000]);
    assert_eq!(field_err(bcd87().pack(&m)).0, Some(55));
}

#[test]
fn unpack_errors_name_the_field() {
    let u = |s: &str| field_err(ascii87().unpack(s.as_bytes()));

    // Fields 3 and 4 announced, input ends after field 3.
    let (f, s) = u(concat!("0200", "3000000000000000", "000000"));
    assert_eq!(f, Some(4), "{s}");
    assert!(matches!(
        ascii87().unpack(concat!("0200", "3000000000000000", "000000").as_bytes()),
        Err(Error::Truncated { part: Part::Field { field: 4, .. }, offset: 26, needed: 12, available: 0 })
    ));

    let (f, s) = u(concat!("0200", "1000000000000000", "12A400000000"));
    assert_eq!(f, Some(4));
    assert_eq!(s, "field 4 (amount, transaction): expected 12 digits, found \"12A400000000\"");

    let (f, s) = u(concat!("0200", "0000800000000000"));
    assert_eq!(f, Some(17));
    assert_eq!(s, "field 17 is not defined by spec ascii87");

    let (f, s) = u(concat!("0200", "0000000020000000", "05", "4761X"));
    assert_eq!(f, Some(35));
    assert!(s.starts_with("field 35 (track 2): contains 'X' at position 4"), "{s}");

    let (_, s) = u(concat!("0200", "0000000000000200", "007", "9F27018"));
    assert_eq!(s, "field 55 (ICC data): hex length 7 is odd (2 hex characters per byte)");
    let (_, s) = u(concat!("0200", "0000000000000200", "004", "9f27"));
    assert!(s.starts_with("field 55 (ICC data): 'f' at position 1 is not an upper-case hex digit"), "{s}");

    let (_, s) = u(concat!("0200", "4000000000000000", "1X"));
    assert_eq!(s, "field 2 (primary account number): length prefix \"1X\" is not 2 ASCII digits");
    let (_, s) = u(concat!("0200", "4000000000000000", "20"));
    assert_eq!(s, "field 2 (primary account number): LLVAR length 20 exceeds max 19");
    // A PAN error does not echo the PAN.
    let (_, s) = u(concat!("0200", "4000000000000000", "16", "47617390010A0119"));
    assert!(s.contains("field 2") && !s.contains("4761739"), "{s}");

    let (f, s) = u(concat!("0200", "3000000000000000", "000000", "000000010000", "ABCD"));
    assert_eq!((f, s.as_str()), (None, "4 trailing bytes after the last field"));
    assert!(matches!(ascii87().unpack(concat!("0200", "7000000000000000", "00").as_bytes()), Err(Error::Truncated { part: Part::Field { field: 3, .. }, .. })));
    assert!(matches!(ascii87().unpack(b"02A0"), Err(Error::Mti(_))));
    let lower = u(concat!("0200", "7a00000000000000")).1;
    assert!(lower.starts_with("bitmap: primary bitmap \"7a00000000000000\": 'a'"), "{lower}");
    let empty2 = u(concat!("0200", "8000000000000000", "0000000000000000")).1;
    assert_eq!(empty2, "bitmap: bit 1 announces a secondary bitmap, but it is empty");
}

#[test]
fn bcd87_unpack_errors() {
    let u = |h: &str| field_err(bcd87().unpack(&unhex(h)));
    let (f, s) = u("0200 0000000000000200 1200");
    assert_eq!(f, Some(55));
    assert_eq!(s, "field 55 (ICC data): LLLVAR length 1200 exceeds max 999");
    let (_, s) = u("0200 0000000000000200 0A00");
    assert_eq!(s, "field 55 (ICC data): length prefix 0A00 is not BCD");
    let (_, s) = u("0200 0000040000000000 1071"); // 22 with pad nibble 1
    assert_eq!(s, "field 22 (point of service entry mode): BCD pad nibble is 1, expected 0");
    let (_, s) = u("0200 1000000000000000 0000000010A0");
    assert_eq!(s, "field 4 (amount, transaction): expected 12 BCD digits, found nibble A at digit 10");
    let (_, s) = u("0200 0000000020000000 03 12D0");
    assert_eq!(s, "field 35 (track 2): pad nibble is 0, expected F");
    let (_, s) = u("0200 0000000020000000 03 12AF");
    assert_eq!(s, "field 35 (track 2): contains nibble A at position 2 (track 2 allows 0-9 and D)");
    assert!(matches!(bcd87().unpack(&unhex("02A0")), Err(Error::Mti(_))));
    assert!(matches!(bcd87().unpack(&unhex("0200")), Err(Error::Truncated { part: Part::PrimaryBitmap, .. })));
    let t = Spec::bcd87_with_tpdu([0x60, 0, 3, 0, 0]);
    assert!(matches!(t.unpack(&unhex("6000")), Err(Error::Truncated { part: Part::Header, .. })));
}

#[test]
fn framing_helpers() {
    let body = ascii87().pack(&sale()).unwrap();
    let mut stream = ascii87().frame(&body);
    stream.extend_from_slice(&ascii87().frame(b"x"));
    let (first, rest) = ascii87().split_frame(&stream).unwrap();
    assert_eq!(first, body);
    assert_eq!(rest, [0x00, 0x01, b'x']);
    assert_eq!(ascii87().split_frame(&rest[..2]), None);
    assert_eq!(ascii87().split_frame(&[0x00]), None);

    let framed = ascii87().frame(&body);
    assert!(matches!(ascii87().unpack_framed(&framed[..framed.len() - 1]), Err(Error::Frame(_))));
    assert!(matches!(ascii87().unpack_framed(&[0x00]), Err(Error::Frame(_))));
    let mut longer = framed.clone();
    longer.push(0);
    assert!(matches!(ascii87().unpack_framed(&longer), Err(Error::Frame(_))));
    assert!(ascii87().try_frame(&vec![0; 70_000]).is_err());

    let unframed = ascii87().clone().with_framing(Framing::None);
    assert_eq!(unframed.frame(&body), body);
    assert_eq!(unframed.unpack_framed(&body).unwrap(), sale());
}

#[test]
fn too_long_for_the_frame() {
    let fields: Vec<FieldSpec> = (2..=128).map(|n| FieldSpec::new(n, "blob", Kind::Alpha, Length::LLLVar(999))).collect();
    let spec = Spec::new("wide", fields, Encoding::ASCII87).unwrap();
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    for n in 2..=80 {
        m.set(n, vec![b'a'; 999]);
    }
    let mut out = b"keep".to_vec();
    assert!(matches!(spec.pack_into(&m, &mut out), Err(Error::TooLong(_))));
    assert_eq!(out, b"keep");
    assert!(spec.clone().with_framing(Framing::None).pack(&m).is_ok());
}

#[test]
fn describe_masks_sensitive_fields() {
    let mut m = sale();
    m.set(52, [0x12; 8]).set(64, [0xAB; 8]).set_str(43, "SHANFU TEST SHOP");
    let d = ascii87().describe(&m);
    assert!(d.starts_with("MTI 0200 (ascii87)\n"), "{d}");
    assert!(d.contains("  2 primary account number: 476173******0119\n"), "{d}");
    assert!(d.contains(" 35 track 2: 476173******0119=********************\n"), "{d}");
    assert!(d.contains(" 52 PIN data: <withheld, 8 bytes>\n"), "{d}");
    assert!(d.contains(" 64 message authentication code: <withheld, 8 bytes>\n"), "{d}");
    assert!(d.contains("  4 amount, transaction: 000000001000\n"), "{d}");
    assert!(d.contains(" 41 card acceptor terminal identification: \"TERM0001\"\n"), "{d}");
    assert!(d.contains(" 55 ICC data: 9F26081122334455667788\n"), "{d}");
    assert!(!d.contains(PAN) && !d.contains("1212121212") && !d.contains("ABABAB"), "{d}");
    assert_eq!(d.lines().count(), 1 + m.len());

    let dbg = format!("{m:?}");
    assert!(!dbg.contains(PAN) && !dbg.contains("25122011"), "{dbg}");
    assert!(dbg.contains("476173******0119"), "{dbg}");
}

#[test]
fn message_api() {
    let mut m = Message::new("0100".parse().unwrap());
    assert!(m.is_empty());
    m.set(field::AMOUNT, "000000000100").set_str(field::RESPONSE_CODE, "00");
    assert!(m.has(4) && !m.has(5));
    assert_eq!(m.get(39), Some(&b"00"[..]));
    assert_eq!(m.fields().map(|(n, _)| n).collect::<Vec<_>>(), vec![4, 39]);
    assert_eq!(m.remove(4), Some(b"000000000100".to_vec()));
    assert_eq!(m.len(), 1);
    m.set(55, vec![0xFF]);
    assert_eq!(m.get_str(55), None);
}
