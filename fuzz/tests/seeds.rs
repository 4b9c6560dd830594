//! Writes the first seeds of every target into `fuzz/corpus/TARGET/` from real sessions (the
//! card simulator's answers, real ISO 8583 messages): `cargo test -p shanfu-fuzz --test seeds
//! -- --ignored`. AFL++ grows the corpora from there and `scripts/fuzz.sh` minimizes them.

use iso8583::{ascii87, bcd87, field, Message, Mti};
use kernels::config::KernelId;
use kernels::tlv::{self, Tag};
use std::path::Path;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
}

fn body(answer: &[u8]) -> &[u8] {
    &answer[..answer.len().saturating_sub(2)]
}

fn request(icc: &[u8]) -> Message {
    let mut m = Message::new(Mti::FINANCIAL_REQUEST);
    m.set_str(field::PAN, "6235880000000017")
        .set_str(field::PROCESSING_CODE, "000000")
        .set_str(field::AMOUNT, "000000005000")
        .set_str(field::TRANSMISSION_DATE_TIME, "1125103000")
        .set_str(field::STAN, "000042")
        .set_str(field::LOCAL_TIME, "103000")
        .set_str(field::LOCAL_DATE, "1125")
        .set_str(field::EXPIRY_DATE, "2912")
        .set_str(field::POS_ENTRY_MODE, "071")
        .set_str(field::POS_CONDITION_CODE, "00")
        .set_str(field::TERMINAL_ID, "SHF00001")
        .set_str(field::MERCHANT_ID, "898310048160001")
        .set_str(field::CURRENCY_CODE, "156")
        .set(field::ICC_DATA, icc.to_vec());
    m
}

#[test]
#[ignore = "writes seed files: run on purpose"]
fn write_seeds() {
    let mut gpo_data = Vec::new();
    for (profile, kernel, target) in
        [("unionpay-phone", KernelId::C7, "kernel_c7"), ("unionpay-transit", KernelId::C7, "kernel_c7"), ("visa-phone", KernelId::C3, "kernel_c3")]
    {
        for first in [0x02u8, 0x82, 0x04, 0x08] {
            let s = shanfu_fuzz::session(profile, kernel, first);
            assert!(s.len() >= 3, "{profile}: a session");
            let mut k = vec![first];
            k.extend(shanfu_fuzz::join_chunks(s.iter().map(|(_, a)| a.as_slice())));
            write(target, &format!("{profile}-{first:02x}"), &k);
            write("card_apdu", &format!("{profile}-{first:02x}"), &shanfu_fuzz::join_chunks(s.iter().map(|(c, _)| c.as_slice())));
            for (i, (_, a)) in s.iter().enumerate() {
                write("tlv", &format!("{profile}-{first:02x}-{i}"), body(a));
            }
            write("ppse", profile, body(&s[0].1));
            // Certificates of the records: issuer (90 + 92) and ICC (9F46), for recovery.
            let mut certs = Vec::new();
            for (_, a) in &s {
                for t in [0x90, 0x92, 0x9F46] {
                    if let Ok(Some(v)) = tlv::find(body(a), Tag(t)) {
                        certs.push((t, v.to_vec()));
                    }
                }
                if let Ok(Some(v)) = tlv::find(body(a), Tag(0x9F26)) {
                    let _ = v;
                    gpo_data = body(a).to_vec();
                }
            }
            if let Some((_, issuer)) = certs.iter().find(|(t, _)| *t == 0x90) {
                for sel in 0..16u8 {
                    let mut c = vec![sel];
                    c.extend(issuer);
                    if let Some((_, r)) = certs.iter().find(|(t, _)| *t == 0x92) {
                        c.extend(r);
                    }
                    if let Some((_, icc)) = certs.iter().find(|(t, _)| *t == 0x9F46) {
                        c.extend(icc);
                    }
                    write("cert", &format!("{profile}-{sel}"), &c);
                }
            }
        }
    }
    write(
        "dol",
        "pdol",
        &[24, 0x9F, 0x66, 4, 0x9F, 0x02, 6, 0x9F, 0x03, 6, 0x9F, 0x1A, 2, 0x95, 5, 0x5F, 0x2A, 2, 0x9A, 3, 0x9C, 1, 0x9F, 0x37, 4, 0x66, 1, 2, 3, 4],
    );
    let icc = tlv::parse_all(&gpo_data).ok().and_then(|v| v.first().map(|t| t.value.to_vec())).unwrap_or(gpo_data.clone());
    let req = request(&icc);
    write("iso8583_ascii87", "0200", &ascii87().pack(&req).unwrap());
    write("iso8583_bcd87", "0200", &bcd87().pack(&req).unwrap());
    write("acquirer", "0200", &ascii87().pack(&req).unwrap());
    let mut echo = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
    echo.set_str(field::STAN, "000001").set_str(field::TERMINAL_ID, "SHF00001").set_str(field::NETWORK_MANAGEMENT_CODE, "301");
    write("acquirer", "0800", &ascii87().pack(&echo).unwrap());
    let mut answer = Message::new(Mti::FINANCIAL_RESPONSE);
    for f in [field::PAN, field::PROCESSING_CODE, field::AMOUNT, field::STAN, field::TERMINAL_ID, field::CURRENCY_CODE] {
        answer.set(f, req.get(f).unwrap().to_vec());
    }
    answer.set_str(field::RESPONSE_CODE, "00").set_str(field::RRN, "000000000001").set_str(field::AUTH_ID_RESPONSE, "A1B2C3");
    answer.set(field::ICC_DATA, tlv::encode(Tag(0x91), &[1, 2, 3, 4, 5, 6, 7, 8, b'0', b'0']));
    write("host_answer", "0210", &ascii87().pack(&answer).unwrap());
}
