//! The keyed host link (issue 12; docs/host.md "Keys and MAC"): what both ends compute so that
//! every message is authenticated and the working keys travel under the terminal master key.
//!
//! - **MAC**: AES-CMAC (NIST SP 800-38B) under the session MAC key, leftmost 8 bytes, in DE 64 —
//!   or DE 128 when the message has a secondary bitmap (a field above 64). It covers the packed
//!   message from the MTI (after any TPDU) to the end of the field before the MAC, bitmaps
//!   included (the MAC field's bit is set in them). [`pack_with_mac`] / [`unpack_verified`].
//! - **Working keys at sign-on**: DE 63 of the sign-on 0800 is [`KEYS_REQUEST`]; DE 63 of its
//!   0810 is [`WorkingKeys`]: the PIN key (double-length TDES, for ISO 9564 format 0 in the
//!   8-byte DE 52 of ISO 8583:1987), the MAC key and the data key (AES-128), each wrapped under
//!   the TMK (RFC 3394) with its check value. The 0810 is MAC'd with the new MAC key.
//! - **The sign-on request** is MAC'd with [`signon_mac_key`], derived from the TMK, so that
//!   nobody without the TMK can make the acquirer rotate a terminal's keys.

use iso8583::{BinaryEncoding, Header, Message, Spec};
use shanfu_keys::wrap::{self, KeyUsage, WrappedAesKey};
use shanfu_keys::{mac, AesKey, TdesKey};

/// Bytes of MAC carried (leftmost bytes of the CMAC).
pub const MAC_LEN: usize = 8;

/// DE 63 of a sign-on 0800 that asks for working keys (version 1 of the layout below).
pub const KEYS_REQUEST: &str = "K1";

/// Label of the sign-on MAC key derivation (see [`signon_mac_key`]).
const SIGNON_LABEL: &[u8] = b"shanfu sign-on MAC v1";

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the message carries no MAC")]
    MissingMac,
    #[error("the MAC is in the wrong field (DE 64 with a secondary bitmap, or both DE 64 and DE 128)")]
    MisplacedMac,
    #[error("the MAC does not verify")]
    WrongMac,
    #[error("ISO 8583: {0}")]
    Codec(String),
    #[error("working keys: {0}")]
    Keys(String),
}

/// The field that carries a message's MAC: DE 128 when any field 65..=127 is present, else DE 64.
pub fn mac_field(m: &Message) -> u8 {
    if m.fields().any(|(n, _)| (65..=127).contains(&n)) {
        128
    } else {
        64
    }
}

fn mac_wire_len(spec: &Spec) -> usize {
    match spec.encoding().binary {
        BinaryEncoding::HexAscii => 2 * MAC_LEN,
        BinaryEncoding::Raw => MAC_LEN,
    }
}

fn header_len(spec: &Spec) -> usize {
    match spec.encoding().header {
        Header::None => 0,
        Header::Tpdu(_) => 5,
    }
}

/// The bytes the MAC covers in a packed body whose last field is the MAC.
pub fn mac_block<'a>(spec: &Spec, body: &'a [u8]) -> Result<&'a [u8], LinkError> {
    let (h, w) = (header_len(spec), mac_wire_len(spec));
    if body.len() < h + w + 4 {
        return Err(LinkError::Codec("message too short to carry a MAC".into()));
    }
    Ok(&body[h..body.len() - w])
}

/// The MAC of `block` (leftmost [`MAC_LEN`] bytes of AES-CMAC).
pub fn mac(key: &AesKey, block: &[u8]) -> [u8; MAC_LEN] {
    let full = mac::aes_cmac(key, block);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// Packs `m` (without frame) with its MAC under `key` in DE 64 / DE 128.
pub fn pack_with_mac(spec: &Spec, m: &Message, key: &AesKey) -> Result<Vec<u8>, LinkError> {
    let mut m = m.clone();
    m.remove(64);
    m.remove(128);
    let f = mac_field(&m);
    m.set(f, [0u8; MAC_LEN]);
    let codec = |e: iso8583::Error| LinkError::Codec(e.to_string());
    let mut body = spec.pack(&m).map_err(codec)?;
    let tag = mac(key, mac_block(spec, &body)?);
    // The MAC is the last field and of fixed length: only its bytes at the end change.
    let w = mac_wire_len(spec);
    let tail = body.len() - w;
    match spec.encoding().binary {
        BinaryEncoding::Raw => body[tail..].copy_from_slice(&tag),
        BinaryEncoding::HexAscii => body[tail..].copy_from_slice(hex::encode_upper(tag).as_bytes()),
    }
    Ok(body)
}

/// Unpacks a body and verifies its MAC under `key` (constant-time comparison).
pub fn unpack_verified(spec: &Spec, body: &[u8], key: &AesKey) -> Result<Message, LinkError> {
    let m = spec.unpack(body).map_err(|e| LinkError::Codec(e.to_string()))?;
    verify(spec, body, &m, key)?;
    Ok(m)
}

/// Verifies the MAC of a body already unpacked into `m`.
pub fn verify(spec: &Spec, body: &[u8], m: &Message, key: &AesKey) -> Result<(), LinkError> {
    let f = mac_field(m);
    let other = if f == 64 { 128 } else { 64 };
    if m.has(other) {
        return Err(LinkError::MisplacedMac);
    }
    let Some(got) = m.get(f) else { return Err(LinkError::MissingMac) };
    mac::verify_aes_cmac(key, mac_block(spec, body)?, got).map_err(|_| LinkError::WrongMac)
}

/// Whether a message carries a MAC field at all.
pub fn has_mac(m: &Message) -> bool {
    m.has(64) || m.has(128)
}

/// The key that MACs the sign-on request: `AES-CMAC(TMK, "shanfu sign-on MAC v1")` (a one-block
/// NIST SP 800-108 style derivation), so the TMK itself never MACs a message.
pub fn signon_mac_key(tmk: &AesKey) -> AesKey {
    AesKey::new(mac::aes_cmac(tmk, SIGNON_LABEL))
}

/// The working keys of one sign-on, clear (zeroized on drop).
pub struct SessionKeys {
    pub pin: TdesKey,
    pub mac: AesKey,
    pub data: AesKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionKeys {{ pin KCV {}, mac KCV {}, data KCV {} }}",
            hex::encode_upper(self.pin.kcv().as_bytes()),
            hex::encode_upper(self.mac.kcv().as_bytes()),
            hex::encode_upper(self.data.kcv().as_bytes())
        )
    }
}

/// DE 63 of a sign-on 0810: `"K1"` ‖ hex(PIN key) ‖ hex(MAC key) ‖ hex(data key), each the
/// 28-byte wire form `usage ‖ RFC 3394 wrap ‖ KCV` of docs/keys.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingKeys {
    pub pin: WrappedAesKey,
    pub mac: WrappedAesKey,
    pub data: WrappedAesKey,
}

impl WorkingKeys {
    /// Wraps `keys` under `tmk` (acquirer side).
    pub fn wrap(tmk: &AesKey, keys: &SessionKeys) -> Result<WorkingKeys, LinkError> {
        let e = |e: wrap::WrapError| LinkError::Keys(e.to_string());
        Ok(WorkingKeys {
            pin: wrap::wrap_tdes_under_aes(tmk, KeyUsage::Pin, &keys.pin).map_err(e)?,
            mac: wrap::wrap_aes(tmk, KeyUsage::Mac, &keys.mac).map_err(e)?,
            data: wrap::wrap_aes(tmk, KeyUsage::Data, &keys.data).map_err(e)?,
        })
    }

    /// Unwraps under `tmk` (terminal side): each key's usage, integrity and check value checked.
    pub fn unwrap(&self, tmk: &AesKey) -> Result<SessionKeys, LinkError> {
        let e = |e: wrap::WrapError| LinkError::Keys(e.to_string());
        Ok(SessionKeys {
            pin: wrap::unwrap_tdes_under_aes(tmk, &self.pin, KeyUsage::Pin).map_err(e)?,
            mac: wrap::unwrap_aes(tmk, &self.mac, KeyUsage::Mac).map_err(e)?,
            data: wrap::unwrap_aes(tmk, &self.data, KeyUsage::Data).map_err(e)?,
        })
    }

    pub fn encode(&self) -> String {
        let mut s = String::from(KEYS_REQUEST);
        for k in [&self.pin, &self.mac, &self.data] {
            s.push_str(&hex::encode_upper(k.to_bytes()));
        }
        s
    }

    pub fn decode(de63: &str) -> Result<WorkingKeys, LinkError> {
        let bad = |why: &str| LinkError::Keys(why.to_string());
        let body = de63.strip_prefix(KEYS_REQUEST).ok_or_else(|| bad("DE 63 does not start with K1"))?;
        let n = 2 * WrappedAesKey::WIRE_LEN;
        if body.len() != 3 * n {
            return Err(bad("DE 63 is not three wrapped keys"));
        }
        let key = |i: usize| -> Result<WrappedAesKey, LinkError> {
            let bytes = hex::decode(body.get(i * n..(i + 1) * n).ok_or_else(|| bad("short"))?).map_err(|_| bad("not hex"))?;
            WrappedAesKey::from_bytes(&bytes).map_err(|e| LinkError::Keys(e.to_string()))
        };
        Ok(WorkingKeys { pin: key(0)?, mac: key(1)?, data: key(2)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iso8583::{ascii87, bcd87, field, Mti, Tpdu};

    fn key(b: u8) -> AesKey {
        AesKey::new([b; 16])
    }

    fn sale() -> Message {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_str(field::PROCESSING_CODE, "000000")
            .set_str(field::AMOUNT, "000000005000")
            .set_str(field::STAN, "000123")
            .set_str(field::TERMINAL_ID, "SHANFU01");
        m
    }

    fn specs() -> Vec<Spec> {
        vec![ascii87().clone(), bcd87().clone(), Spec::bcd87_with_tpdu(Tpdu::new(0x60, 3, 0))]
    }

    #[test]
    fn a_maced_message_verifies_in_every_wire_format_and_the_mac_is_the_cmac_of_the_block() {
        for spec in specs() {
            let body = pack_with_mac(&spec, &sale(), &key(7)).unwrap();
            let m = unpack_verified(&spec, &body, &key(7)).unwrap();
            assert_eq!(m.get(64).unwrap(), &mac(&key(7), mac_block(&spec, &body).unwrap())[..], "{}", spec.name());
            assert_eq!(m.get_str(field::AMOUNT), Some("000000005000"));
        }
    }

    #[test]
    fn a_changed_byte_a_wrong_key_a_missing_or_misplaced_mac_are_refused() {
        for spec in specs() {
            let body = pack_with_mac(&spec, &sale(), &key(7)).unwrap();
            assert_eq!(unpack_verified(&spec, &body, &key(8)).err(), Some(LinkError::WrongMac));
            // Change the amount's last digit (ASCII '0' → '9', BCD 0x00 → 0x09): still parses.
            let m = spec.unpack(&body).unwrap();
            let mut changed = m.clone();
            changed.set_str(field::AMOUNT, "000000005009");
            let mut forged = spec.pack(&changed).unwrap();
            assert_eq!(forged.len(), body.len());
            assert_eq!(unpack_verified(&spec, &forged, &key(7)).err(), Some(LinkError::WrongMac));
            forged = spec.pack(&sale()).unwrap();
            assert_eq!(unpack_verified(&spec, &forged, &key(7)).err(), Some(LinkError::MissingMac));
            let mut both = m.clone();
            both.set(128, [0u8; 8]);
            let both = spec.pack(&both).unwrap();
            assert_eq!(unpack_verified(&spec, &both, &key(7)).err(), Some(LinkError::MisplacedMac));
        }
    }

    #[test]
    fn a_message_with_a_secondary_bitmap_carries_its_mac_in_de128() {
        let mut m = sale();
        m.set_str(field::ORIGINAL_DATA_ELEMENTS, &"0".repeat(42));
        let body = pack_with_mac(ascii87(), &m, &key(1)).unwrap();
        let back = unpack_verified(ascii87(), &body, &key(1)).unwrap();
        assert!(back.has(128) && !back.has(64));
    }

    #[test]
    fn working_keys_round_trip_and_refuse_another_tmk() {
        let keys = SessionKeys { pin: TdesKey::new(*b"0123456789abcdef").unwrap(), mac: key(2), data: key(3) };
        let w = WorkingKeys::wrap(&key(9), &keys).unwrap();
        let de63 = w.encode();
        assert_eq!(de63.len(), 2 + 3 * 56);
        let back = WorkingKeys::decode(&de63).unwrap().unwrap(&key(9)).unwrap();
        assert_eq!(back.mac.expose_secret(), keys.mac.expose_secret());
        assert_eq!(back.pin.expose_secret(), keys.pin.expose_secret());
        assert!(WorkingKeys::decode(&de63).unwrap().unwrap(&key(10)).is_err());
        assert!(WorkingKeys::decode(&de63[..100]).is_err());
        assert!(WorkingKeys::decode(&de63.replace("K1", "K2")).is_err());
        // The PIN key slot must hold a PIN key: swapped slots are refused by usage.
        let swapped = WorkingKeys { pin: w.mac.clone(), mac: w.pin.clone(), data: w.data.clone() };
        assert!(swapped.unwrap(&key(9)).is_err());
        assert!(!format!("{back:?}").contains(&hex::encode_upper(keys.mac.expose_secret())));
    }

    #[test]
    fn the_signon_key_is_not_the_tmk() {
        assert_ne!(signon_mac_key(&key(4)).expose_secret(), key(4).expose_secret());
        assert_eq!(signon_mac_key(&key(4)).expose_secret(), signon_mac_key(&key(4)).expose_secret());
    }
}
