//! Properties over arbitrary inputs: round trips hold, and no decoder or decipherer panics on any
//! bytes (the crate's "no panics on any input" rule). All keys here are TEST ONLY.

use proptest::prelude::*;
use shanfu_keys::pin_block::{self, Pan, Pin};
use shanfu_keys::provision::{AcquirerAnswer, TerminalConfirm, TerminalHello};
use shanfu_keys::wrap::{self, KeyUsage, WrappedAesKey, WrappedTdesKey};
use shanfu_keys::{mac, AesKey, TdesKey};

fn tdes(bytes: [u8; 16]) -> Option<TdesKey> {
    TdesKey::new(bytes).ok()
}

proptest! {
    #[test]
    fn format0_round_trips(pin in "[0-9]{4,12}", pan in "[0-9]{8,19}", key in any::<[u8; 16]>()) {
        let Some(key) = tdes(key) else { return Ok(()) };
        let (pin, pan) = (Pin::new(&pin).unwrap(), Pan::new(&pan).unwrap());
        let block = pin_block::encrypt_format0(&key, &pin, &pan);
        prop_assert_eq!(pin_block::decrypt_format0(&key, &block, &pan), Ok(pin));
    }

    #[test]
    fn format4_round_trips(pin in "[0-9]{4,12}", pan in "[0-9]{8,19}", key in any::<[u8; 16]>(), fill in any::<[u8; 8]>()) {
        let key = AesKey::new(key);
        let (pin, pan) = (Pin::new(&pin).unwrap(), Pan::new(&pan).unwrap());
        let block = pin_block::encrypt_format4_with_fill(&key, &pin, &pan, fill);
        prop_assert_eq!(pin_block::decrypt_format4(&key, &block, &pan), Ok(pin));
    }

    /// Any 16-byte block under any key: an error or a PIN of 4–12 digits, never a panic.
    #[test]
    fn any_block_deciphers_to_an_error_or_a_well_formed_pin(block in any::<[u8; 16]>(), key in any::<[u8; 16]>(), pan in "[0-9]{8,19}") {
        let pan = Pan::new(&pan).unwrap();
        if let Ok(pin) = pin_block::decrypt_format4(&AesKey::new(key), &block, &pan) {
            prop_assert!((4..=12).contains(&pin.len()));
            prop_assert!(pin.expose_digits().iter().all(|d| *d <= 9));
        }
        if let Some(k) = tdes(key) {
            let mut b8 = [0u8; 8];
            b8.copy_from_slice(&block[..8]);
            if let Ok(pin) = pin_block::decrypt_format0(&k, &b8, &pan) {
                prop_assert!((4..=12).contains(&pin.len()));
            }
        }
    }

    #[test]
    fn pin_and_pan_parsers_take_any_string(s in ".{0,24}") {
        if let Ok(pin) = Pin::new(&s) {
            prop_assert_eq!(pin.len(), s.len());
        }
        let _ = Pan::new(&s);
    }

    #[test]
    fn macs_verify_their_own_output_and_refuse_a_changed_message(data in proptest::collection::vec(any::<u8>(), 0..100), key in any::<[u8; 16]>(), flip in any::<usize>()) {
        let aes = AesKey::new(key);
        let m = mac::aes_cmac(&aes, &data);
        prop_assert!(mac::verify_aes_cmac(&aes, &data, &m[..8]).is_ok());
        if !data.is_empty() {
            let mut changed = data.clone();
            changed[flip % data.len()] ^= 0x01;
            prop_assert!(mac::verify_aes_cmac(&aes, &changed, &m).is_err());
        }
        if let Some(t) = tdes(key) {
            let m = mac::x919_mac(&t, &data);
            prop_assert!(mac::verify_x919(&t, &data, &m).is_ok());
            if !data.is_empty() {
                let mut changed = data.clone();
                changed[flip % data.len()] ^= 0x01;
                prop_assert!(mac::verify_x919(&t, &changed, &m).is_err());
            }
        }
    }

    #[test]
    fn wrapped_keys_round_trip(tmk in any::<[u8; 16]>(), key in any::<[u8; 16]>()) {
        let (tmk_a, key_a) = (AesKey::new(tmk), AesKey::new(key));
        let w = wrap::wrap_aes(&tmk_a, KeyUsage::Data, &key_a).unwrap();
        let back = wrap::unwrap_aes(&tmk_a, &WrappedAesKey::from_bytes(&w.to_bytes()).unwrap(), KeyUsage::Data).unwrap();
        prop_assert_eq!(back.expose_secret(), key_a.expose_secret());
        if let (Some(tmk_t), Some(key_t)) = (tdes(tmk), tdes(key)) {
            let w = wrap::wrap_tdes(&tmk_t, KeyUsage::Pin, &key_t);
            let back = wrap::unwrap_tdes(&tmk_t, &WrappedTdesKey::from_bytes(&w.to_bytes()).unwrap(), KeyUsage::Pin).unwrap();
            prop_assert_eq!(back.expose_secret(), key_t.expose_secret());
        }
    }

    /// Every decoder on arbitrary bytes: an error or a value, never a panic.
    #[test]
    fn decoders_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(h) = TerminalHello::decode(&bytes) {
            prop_assert_eq!(h.encode(), bytes.clone());
        }
        if let Ok(a) = AcquirerAnswer::decode(&bytes) {
            prop_assert_eq!(a.encode(), bytes.clone());
        }
        if let Ok(c) = TerminalConfirm::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes.clone());
        }
        let _ = WrappedAesKey::from_bytes(&bytes);
        let _ = WrappedTdesKey::from_bytes(&bytes);
    }

    /// Headers right, then arbitrary bytes: reaches the field parsers, never panics.
    #[test]
    fn decoders_take_any_fields(ty in 1u8..=3, rest in proptest::collection::vec(any::<u8>(), 0..300)) {
        let msg = [&[ty, 1][..], &rest].concat();
        let _ = TerminalHello::decode(&msg);
        let _ = AcquirerAnswer::decode(&msg);
        let _ = TerminalConfirm::decode(&msg);
    }
}
