//! `shanfu decode HEX`: TLV with tag names, C-APDUs with the command, R-APDUs with the status
//! word's meaning. PAN, track data and the other sensitive tags are masked (`redact::value`)
//! unless `--reveal`.

use kernels::apdu::{sw_meaning, CApdu};
use kernels::tag;
use kernels::tlv::{self, Tlv};

fn value_text(t: &Tlv, reveal: bool) -> String {
    let hexv = hex::encode_upper(t.value);
    // Every sensitive tag of the dictionary, by the one rule of `redact`.
    if let Some(masked) = (!reveal).then(|| crate::redact::value(t.tag, t.value)).flatten() {
        return if masked.contains("<withheld>") { format!("{masked} (--reveal to show)") } else { masked };
    }
    match tag::info(t.tag).map(|i| i.format) {
        Some(tag::Format::An | tag::Format::Ans) if t.value.iter().all(|b| (0x20..0x7F).contains(b)) => {
            format!("{hexv} \"{}\"", String::from_utf8_lossy(t.value))
        }
        _ => hexv,
    }
}

fn tree(data: &[u8], depth: usize, reveal: bool, out: &mut String) -> Result<(), tlv::TlvError> {
    for t in tlv::Iter::new(data) {
        let t = t?;
        let pad = "  ".repeat(depth);
        if t.tag.is_constructed() {
            out.push_str(&format!("{pad}{} ({}) [{}]\n", t.tag, tag::name(t.tag), t.value.len()));
            tree(t.value, depth + 1, reveal, out)?;
        } else {
            out.push_str(&format!("{pad}{} ({}) [{}] {}\n", t.tag, tag::name(t.tag), t.value.len(), value_text(&t, reveal)));
        }
    }
    Ok(())
}

/// Decodes hex as an R-APDU (TLV data followed by a status word), plain TLV, or a C-APDU.
pub fn decode(hex_in: &str, reveal: bool) -> Result<String, String> {
    let clean: String = hex_in.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = hex::decode(&clean).map_err(|e| format!("not hex: {e}"))?;
    if bytes.is_empty() {
        return Err("nothing to decode".into());
    }
    let mut out = String::new();
    if bytes.len() >= 2 {
        let (d, s) = bytes.split_at(bytes.len() - 2);
        let sw = u16::from_be_bytes([s[0], s[1]]);
        if matches!(s[0], 0x61..=0x6F | 0x90..=0x9F) && (d.is_empty() || (tlv::validate(d).is_ok() && tree(d, 1, reveal, &mut out).is_ok())) {
            return Ok(format!("R-APDU  SW {sw:04X}: {}\n{out}", sw_meaning(sw)));
        }
    }
    out.clear();
    if tlv::validate(&bytes).is_ok() && tree(&bytes, 0, reveal, &mut out).is_ok() && !out.is_empty() {
        return Ok(format!("TLV\n{out}"));
    }
    out.clear();
    if let Some(c) = CApdu::parse(&bytes) {
        let mut s = format!("C-APDU  {}  CLA {:02X} INS {:02X} P1 {:02X} P2 {:02X}", c.name(), c.cla, c.ins, c.p1, c.p2);
        if let Some(le) = c.le {
            s += &format!(" Le {le:02X}");
        }
        s.push('\n');
        if !c.data.is_empty() {
            if c.data.iter().all(|b| (0x20..0x7F).contains(b)) {
                s += &format!("  data \"{}\"\n", String::from_utf8_lossy(&c.data));
            } else if tree(&c.data, 1, reveal, &mut out).is_ok() {
                s += &out;
            } else {
                s += &format!("  data {}\n", hex::encode_upper(&c.data));
            }
        }
        return Ok(s);
    }
    Err("neither BER-TLV nor an APDU".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ppse_response_with_names() {
        let s = decode("6F2D840E325041592E5359532E4444463031A51BBF0C1861164F07A0000000031010500B56495341204352454449549000", false).unwrap();
        assert!(s.starts_with("R-APDU  SW 9000"), "{s}");
        assert!(s.contains("4F (Application Dedicated File (ADF) Name) [7] A0000000031010"), "{s}");
        assert!(s.contains("\"VISA CREDIT\""), "{s}");
    }

    #[test]
    fn decodes_select_command() {
        let s = decode("00A404000E325041592E5359532E444446303100", false).unwrap();
        assert!(s.contains("SELECT") && s.contains("2PAY.SYS.DDF01"), "{s}");
    }

    #[test]
    fn masks_pan_unless_revealed() {
        let s = decode("5A086235880000000017", false).unwrap();
        assert!(s.contains("623588******0017") && !s.contains("6235880000000017"), "{s}");
        assert!(decode("5A086235880000000017", true).unwrap().contains("6235880000000017"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode("zz", false).is_err());
        assert!(decode("", false).is_err());
        assert!(decode("5A", false).is_err());
    }
}
