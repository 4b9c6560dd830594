//! Transit gates in the contract (docs/gate.md "Back office"): the merchant type the gate's
//! uploads carry, the marker of an aggregated advice, and the keyed hash naming a card on the
//! deny list — computed the same way by the acquirer (which publishes the list) and the gate
//! (which looks cards up in it).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// DE 18 merchant type of every transit upload: ISO 18245 MCC 4111 "local and suburban commuter
/// passenger transportation, including ferries".
pub const MCC: &str = "4111";

/// What a deny-list key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identifier {
    /// A PAN (a token PAN for a wallet), digits only.
    Pan,
    /// A Payment Account Reference (9F24).
    Par,
}

/// HMAC-SHA256(key, "PAN\\0" ‖ PAN) or (key, "PAR\\0" ‖ PAR): 32 bytes that name a card without
/// revealing it (a plain hash of a PAN is reversed by trying the numbers of a BIN; the key
/// stops that).
pub fn card_key(key: &[u8], what: Identifier, id: &str) -> [u8; 32] {
    let domain: &[u8] = match what {
        Identifier::Pan => b"PAN\0",
        Identifier::Par => b"PAR\0",
    };
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(domain);
    mac.update(id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// DE 62 of a 0220 that carries a gate's aggregate: `AGG` ‖ number of taps (3 digits, 001-999).
/// DE 4 is then the total of the fares, DE 55 the first tap's TC (whose 9F02 is the first
/// fare). Without it an advice's DE 4 may not exceed the cryptogram's amount.
pub fn aggregate_de62(taps: u32) -> String {
    format!("AGG{:03}", taps.clamp(1, 999))
}

/// The number of taps of an aggregate marker; `None` when DE 62 is not one.
pub fn parse_aggregate_de62(de62: &str) -> Option<u32> {
    let n = de62.strip_prefix("AGG")?;
    (n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().ok()).flatten().filter(|n| *n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_key_and_the_kind_of_identifier() {
        let k = b"0123456789abcdef";
        assert_eq!(card_key(k, Identifier::Pan, "6235880000000017"), card_key(k, Identifier::Pan, "6235880000000017"));
        assert_ne!(card_key(k, Identifier::Pan, "6235880000000017"), card_key(k, Identifier::Par, "6235880000000017"));
        assert_ne!(card_key(k, Identifier::Pan, "6235880000000017"), card_key(b"other key 123456", Identifier::Pan, "6235880000000017"));
    }

    #[test]
    fn aggregate_marker_round_trips() {
        assert_eq!(aggregate_de62(3), "AGG003");
        assert_eq!(parse_aggregate_de62("AGG003"), Some(3));
        for bad in ["", "AGG", "AGG000", "AGG01", "AGG0001", "agg003", "AGG00x"] {
            assert_eq!(parse_aggregate_de62(bad), None, "{bad:?}");
        }
    }
}
