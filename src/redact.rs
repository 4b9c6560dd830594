//! Masking for logs, screens and reports: PANs as first 6 / last 4, track 2 and other
//! sensitive tags withheld (PCI DSS 3.3-3.4). Every APDU that reaches a log goes through here.

use kernels::tag;
use kernels::tlv::{self, Tag};
use kernels::types::{digits, mask_pan};

/// A masked PAN from its digits.
pub fn pan(p: &str) -> String {
    mask_pan(p)
}

/// TLV data as `tag=value` pairs, sensitive values masked; undecodable data only by length.
pub fn tlv_data(data: &[u8]) -> String {
    let mut parts = Vec::new();
    let ok = tlv::walk_primitives(data, &mut |t| parts.push(item(t.tag, t.value))).is_ok();
    if !ok || parts.is_empty() {
        return format!("<{} bytes>", data.len());
    }
    parts.join(" ")
}

fn item(t: Tag, v: &[u8]) -> String {
    match value(t, v) {
        Some(m) => format!("{t}={m}"),
        None => format!("{t}={}", hex::encode_upper(v)),
    }
}

/// The one masking rule for text, for every sensitive tag of the dictionary
/// ([`tag::is_sensitive`]); `None` for a value that may be shown. PAN (5A): first 6 / last 4;
/// track 2 (57, 9F6B): the masked PAN, the rest withheld; track 1 (56, `B<PAN>^NAME^...`): its
/// format code and masked PAN, the rest withheld; anything else (cardholder name, ...): withheld.
pub fn value(t: Tag, v: &[u8]) -> Option<String> {
    if !tag::is_sensitive(t) {
        return None;
    }
    Some(if t == tag::PAN {
        mask_pan(&digits(v))
    } else if t == tag::TRACK2_EQUIVALENT || t == tag::TRACK2_DATA {
        let d = digits(v);
        format!("{}=<withheld>", mask_pan(d.split('=').next().unwrap_or("")))
    } else if t == tag::TRACK1_DATA {
        // ISO/IEC 7813 track 1: format code, PAN, '^', name, '^', expiry, service code, ...
        let text: String = v.iter().map(|&b| if (0x20..0x7F).contains(&b) { b as char } else { '?' }).collect();
        let mut fields = text.splitn(2, '^');
        let head = fields.next().unwrap_or("");
        let (code, pan) = head.split_at(head.chars().next().filter(|c| c.is_ascii_alphabetic()).map_or(0, |c| c.len_utf8()));
        if fields.next().is_some() && !pan.is_empty() && pan.chars().all(|c| c.is_ascii_digit() || c == ' ') {
            format!("{code}{}^<withheld>", mask_pan(&pan.replace(' ', "")))
        } else {
            "<withheld>".to_string()
        }
    } else {
        "<withheld>".to_string()
    })
}

/// The same bytes with the card data withheld, lengths and TLV structure kept (recordings made
/// without `--reveal`): PAN digits 7 to n-4 and everything after the PAN in track 2 (57, 9F6B)
/// become `F` nibbles; other sensitive values (track 1, names) become `*`. Data that does not
/// parse as BER-TLV (after the status word is split off) is returned unchanged.
pub fn mask_card_data(rapdu: &[u8]) -> Vec<u8> {
    let mut out = rapdu.to_vec();
    let body = if rapdu.len() >= 2 { &rapdu[..rapdu.len() - 2] } else { rapdu };
    let mut spans = Vec::new();
    let base = body.as_ptr() as usize;
    let _ = tlv::walk_primitives(body, &mut |t| {
        if tag::is_sensitive(t.tag) {
            spans.push((t.tag, t.value.as_ptr() as usize - base, t.value.len()));
        }
    });
    for (t, at, len) in spans {
        let v = &mut out[at..at + len];
        if t == tag::PAN || t == tag::TRACK2_EQUIVALENT || t == tag::TRACK2_DATA {
            mask_bcd(v, t == tag::PAN);
        } else {
            v.fill(b'*');
        }
    }
    out
}

/// PAN / track 2 nibbles: keep the first 6 and last 4 PAN digits; F for the rest.
fn mask_bcd(v: &mut [u8], pan_only: bool) {
    let mut nibbles: Vec<u8> = v.iter().flat_map(|b| [b >> 4, b & 0x0F]).collect();
    let pan_len = if pan_only { nibbles.iter().take_while(|n| **n <= 9).count() } else { nibbles.iter().position(|n| *n == 0x0D).unwrap_or(nibbles.len()) };
    for (i, n) in nibbles.iter_mut().enumerate() {
        let keep = i < pan_len && (i < 6 || i + 4 >= pan_len);
        if !keep {
            *n = 0x0F;
        }
    }
    for (b, pair) in v.iter_mut().zip(nibbles.chunks(2)) {
        *b = pair[0] << 4 | pair.get(1).copied().unwrap_or(0x0F);
    }
}

/// A C-APDU for logs: header in clear, data as masked TLV when it parses.
pub fn apdu_command(c: &[u8]) -> String {
    match c.get(..4) {
        Some(h) => format!("{} {}", hex::encode_upper(h), if c.len() > 5 { format!("<{} bytes>", c.len() - 5) } else { String::new() }),
        None => format!("<{} bytes>", c.len()),
    }
}

/// An R-APDU for logs: masked TLV and the status word.
pub fn apdu_response(r: &[u8]) -> String {
    if r.len() < 2 {
        return format!("<{} bytes>", r.len());
    }
    let (d, sw) = r.split_at(r.len() - 2);
    format!("{} [{}]", tlv_data(d), hex::encode_upper(sw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_and_track2_never_in_clear() {
        let data = tlv::Builder::new()
            .put(tag::PAN, &[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17])
            .put(tag::TRACK2_EQUIVALENT, &[0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17, 0xD2, 0x91, 0x22, 0x01])
            .wrap(tag::RECORD_TEMPLATE);
        let s = apdu_response(&[data, vec![0x90, 0x00]].concat());
        assert!(!s.contains("6235880000000017"), "{s}");
        assert!(s.contains("623588******0017"), "{s}");
        assert!(!s.contains("2912"), "{s}");
    }

    #[test]
    fn every_sensitive_tag_has_one_rule() {
        let t1 = b"B6235880000000017^SMITH/JOHN^2912201000000000";
        assert_eq!(value(tag::TRACK1_DATA, t1).unwrap(), "B623588******0017^<withheld>");
        assert_eq!(value(tag::TRACK1_DATA, b"garbage").unwrap(), "<withheld>");
        let t2 = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17, 0xD2, 0x91, 0x22, 0x01];
        assert_eq!(value(tag::TRACK2_DATA, &t2).unwrap(), "623588******0017=<withheld>");
        assert_eq!(value(tag::TRACK2_EQUIVALENT, &t2).unwrap(), "623588******0017=<withheld>");
        assert_eq!(value(tag::CARDHOLDER_NAME, b"SMITH/JOHN").unwrap(), "<withheld>");
        assert_eq!(value(tag::PAN, &t2[..8]).unwrap(), "623588******0017");
        assert_eq!(value(tag::AIP, &[0x20, 0x00]), None);
    }

    #[test]
    fn recordings_without_reveal_keep_structure_but_not_card_data() {
        let data = tlv::Builder::new()
            .put(tag::PAN, &[0x62, 0x35, 0x88, 0x12, 0x34, 0x56, 0x00, 0x17])
            .put(tag::TRACK2_EQUIVALENT, &[0x62, 0x35, 0x88, 0x12, 0x34, 0x56, 0x00, 0x17, 0xD2, 0x91, 0x22, 0x01, 0x23, 0x4F])
            .put(tag::APPLICATION_LABEL, b"UnionPay")
            .wrap(tag::RECORD_TEMPLATE);
        let r = [data, vec![0x90, 0x00]].concat();
        let m = mask_card_data(&r);
        assert_eq!(m.len(), r.len());
        let h = hex::encode_upper(&m);
        assert!(h.contains("623588FFFFFF0017"), "{h}");
        assert!(!h.contains("123456") && !h.contains("D291") && !h.contains("2912"), "{h}");
        assert!(h.ends_with("9000") && h.contains(&hex::encode_upper(b"UnionPay")), "{h}");
        assert!(tlv::validate(&m[..m.len() - 2]).is_ok());
    }
}
