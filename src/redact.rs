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
    if t == tag::PAN {
        format!("{t}={}", mask_pan(&digits(v)))
    } else if t == tag::TRACK2_EQUIVALENT {
        let d = digits(v);
        let p = d.split('=').next().unwrap_or("");
        format!("{t}={}=<withheld>", mask_pan(p))
    } else if tag::is_sensitive(t) {
        format!("{t}=<withheld>")
    } else {
        format!("{t}={}", hex::encode_upper(v))
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
}
