//! Human-readable, log-safe rendering of messages.

use std::fmt::Write as _;

use crate::iso87;
use crate::message::Message;
use crate::spec::{Kind, Redact, Spec};

impl Spec {
    /// A log-safe dump: a first line `MTI 0200 (ascii87)`, then one line per present field,
    /// `  4 amount, transaction: 000000001000`. Numeric and track-2 values are shown bare,
    /// alpha values quoted (to show padding), binary values as upper-case hex. Fields the spec
    /// marks [`Redact::Pan`] (2, 35) are masked first 6 / last 4 (track 2: everything after
    /// `=` masked too); [`Redact::Withhold`] fields (52, 64, 128) show only their length.
    /// Fields the spec does not define are shown as hex with a note.
    pub fn describe(&self, m: &Message) -> String {
        let mut s = format!("MTI {} ({})\n", m.mti, self.name);
        for (n, v) in m.fields() {
            let _ = match self.field(n) {
                Some(fs) => {
                    writeln!(s, "{n:>3} {}: {}", fs.name, render(fs.kind, fs.redact, v))
                }
                None => writeln!(s, "{n:>3} (not defined by spec {}): {}", self.name, hex(v)),
            };
        }
        s
    }
}

/// Renders a value for `Debug for Message`, which has no spec: ISO 8583:1987 redaction by
/// field number, text when printable, hex otherwise.
pub(crate) fn debug_value(n: u8, v: &[u8]) -> String {
    let printable = v.iter().all(|&c| (0x20..=0x7E).contains(&c));
    let kind = match iso87::default_redact(n) {
        Redact::Pan if v.contains(&b'=') => Kind::Track2,
        _ if printable => Kind::Alpha,
        _ => Kind::Binary,
    };
    render(kind, iso87::default_redact(n), v)
}

fn render(kind: Kind, redact: Redact, v: &[u8]) -> String {
    match redact {
        Redact::Withhold => format!("<withheld, {} bytes>", v.len()),
        Redact::Pan => match kind {
            Kind::Binary | Kind::Hex => format!("<masked, {} bytes>", v.len()),
            _ => {
                let sep = v.iter().position(|&c| c == b'=').unwrap_or(v.len());
                let (pan, rest) = v.split_at(sep);
                let mut s = mask_pan(pan);
                if let Some((_, after)) = rest.split_first() {
                    s.push('=');
                    s.extend(std::iter::repeat_n('*', after.len()));
                }
                s
            }
        },
        Redact::Clear => match kind {
            Kind::Numeric | Kind::Track2 => escape(v),
            Kind::Alpha => quoted(v),
            Kind::Binary | Kind::Hex => hex(v),
        },
    }
}

/// First 6 and last 4 shown when at least 13 characters long; fully masked otherwise.
fn mask_pan(pan: &[u8]) -> String {
    let n = pan.len();
    if n >= 13 {
        let mut s = escape(&pan[..6]);
        s.extend(std::iter::repeat_n('*', n - 10));
        s.push_str(&escape(&pan[n - 4..]));
        s
    } else {
        "*".repeat(n)
    }
}

fn hex(v: &[u8]) -> String {
    let mut s = String::with_capacity(v.len() * 2);
    for b in v {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Printable ASCII as is (`"` and `\` escaped), anything else as `\xNN`.
fn escape(v: &[u8]) -> String {
    let mut s = String::with_capacity(v.len());
    for &c in v {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(c));
            }
            0x20..=0x7E => s.push(char::from(c)),
            _ => {
                let _ = write!(s, "\\x{c:02X}");
            }
        }
    }
    s
}

/// `"..."` with [`escape`]; values over 48 bytes are cut with `...`.
pub(crate) fn quoted(v: &[u8]) -> String {
    const MAX: usize = 48;
    if v.len() > MAX {
        format!("\"{}...\"", escape(&v[..MAX]))
    } else {
        format!("\"{}\"", escape(v))
    }
}

/// One byte for an error text: `'A'` when printable, `byte 0x0A` otherwise.
pub(crate) fn byte_char(c: u8) -> String {
    if (0x20..=0x7E).contains(&c) {
        format!("'{}'", char::from(c))
    } else {
        format!("byte 0x{c:02X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_masking() {
        assert_eq!(mask_pan(b"4761739001010119"), "476173******0119");
        assert_eq!(mask_pan(b"4761739001010"), "476173***1010");
        assert_eq!(mask_pan(b"476173900101"), "************");
        assert_eq!(render(Kind::Track2, Redact::Pan, b"4761739001010119=2512201"), "476173******0119=*******");
        assert_eq!(render(Kind::Binary, Redact::Withhold, &[0; 8]), "<withheld, 8 bytes>");
    }

    #[test]
    fn escaping() {
        assert_eq!(quoted(b"a\"b\x01"), "\"a\\\"b\\x01\"");
        assert_eq!(byte_char(b'X'), "'X'");
        assert_eq!(byte_char(0), "byte 0x00");
    }
}
