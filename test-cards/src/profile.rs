//! Card profiles: one wallet (phone) or plastic card per TOML file in `test-cards/profiles/`
//! (format: DESIGN.md §5.1). The built-in set is compiled in so `virtual:NAME` works anywhere.

use serde::Deserialize;

/// A whole profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What this profile is for, one line.
    pub description: String,
    /// "phone" (wallet with a secure element and CDCVM) or "plastic".
    pub form: Form,
    /// State of the holder's verification on the phone when the tap starts.
    #[serde(default)]
    pub fingerprint: FingerprintState,
    /// Respond to SELECT PPSE with this status word instead (e.g. "6A82").
    pub ppse_sw: Option<String>,
    /// Raw bytes (hex) appended inside the PPSE's BF0C after the directory entries of the cards:
    /// malformed or extra entries (`61` without `4F`, a length running past the entry …).
    pub ppse_extra_entries: Option<String>,
    /// The city transport card (T-Union electronic purse, AID A000000632010105) the wallet
    /// also carries, served in express mode (no fingerprint).
    pub transit: Option<TransitProfile>,
    #[serde(rename = "card", default)]
    pub cards: Vec<CardProfile>,
}

/// A T-Union purse in the wallet (test card of the built-in test issuer, TEST ONLY keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitProfile {
    /// Last 8 digits of the application serial (the card number).
    pub serial: u32,
    /// Balance in fen (minor units).
    pub balance: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Phone,
    Plastic,
}

/// The phone's CDCVM state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FingerprintState {
    /// Locked phone: above the CVM limit the wallet answers "See Phone".
    #[default]
    None,
    /// The holder already confirmed with a fingerprint (double-click + touch before the tap).
    Given,
}

/// One card (tokenized or plastic) in the wallet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardProfile {
    pub aid: String,
    pub label: String,
    /// Application Priority Indicator 87 (1 = highest). Absent = not sent.
    pub priority: Option<u8>,
    /// Kernel Identifier 9F2A, hex. Absent = not sent (the terminal uses the RID default).
    pub kernel_id: Option<String>,
    /// Token PAN (DPAN) for phones, the card PAN for plastics.
    pub pan: String,
    /// 5F24 YYMMDD.
    pub expiry: String,
    /// 5F25 YYMMDD.
    pub effective: Option<String>,
    #[serde(default)]
    pub psn: u8,
    /// Payment Account Reference 9F24 (29 characters): links the token to the funding account.
    pub par: Option<String>,
    pub pdol: String,
    /// 82, hex.
    pub aip: String,
    /// Base CTQ 9F6C, hex; the card adds the CDCVM / CVM bits per transaction.
    pub ctq: String,
    /// Form factor 9F6E, hex.
    pub form_factor: Option<String>,
    /// Include 9F27 in the GPO answer (C-7 cards do; Visa cards leave the CID in the IAD).
    #[serde(default = "yes")]
    pub send_cid: bool,
    /// Layout of the Issuer Application Data (9F10). Absent: `visa-0` for Visa CVN 10 issuers,
    /// `unionpay` for the others.
    pub iad_format: Option<IadFormat>,
    /// fDDA version the card signs with (9F69 byte 1): `"01"` (default) signs UN, amount,
    /// currency and 9F69; `"00"` signs the unpredictable number only.
    #[serde(default)]
    pub fdda_version: FddaVersion,
    /// The card approves offline (TC) when the terminal allows and the offline balance covers it.
    #[serde(default)]
    pub offline_capable: bool,
    /// Available offline spending amount 9F5D, in minor units (transit / electronic cash).
    pub offline_balance: Option<u64>,
    /// Card holds CDCVM (phone wallets).
    #[serde(default)]
    pub cdcvm: bool,
    /// The holder's PIN of a card with online PIN (TEST DATA): what the demo's holder types and
    /// what tests enter. The acquirer keeps only its IBM 3624 offset (config/acquirer.toml).
    pub holder_pin: Option<HolderPin>,
    /// Starting ATC.
    #[serde(default = "one")]
    pub atc: u16,
    pub keys: CardKeys,
    #[serde(default)]
    pub behaviour: Behaviour,
}

/// References into the test PKI (`test-cards/keys/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardKeys {
    /// CA key that signs the issuer certificate.
    pub ca: String,
    /// 8F the card states (normally the CA's index; may differ to simulate an unknown CA).
    pub ca_index: String,
    pub issuer: String,
    pub icc: String,
    /// Issuer certificate expiry MMYY.
    #[serde(default = "cert_expiry")]
    pub issuer_cert_expiry: String,
    #[serde(default = "cert_expiry")]
    pub icc_cert_expiry: String,
    /// Issuer certificate serial number, 3 bytes hex (default `000001`); `0000A1` is on the test
    /// revocation list of `config/capk.toml`.
    pub issuer_cert_serial: Option<String>,
    /// PAN written into the ICC certificate instead of the card's (a PAN mismatch with 5A).
    pub icc_cert_pan: Option<String>,
}

/// A test card holder's PIN: 4 to 12 decimal digits (ISO 9564-1). `Debug` shows only its
/// length, so printing a profile never shows it; never log [`HolderPin::digits`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HolderPin(String);

impl HolderPin {
    /// The digits, for typing them on a PIN pad (demo, tests). Never log them.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HolderPin {
    type Error = String;
    fn try_from(s: String) -> Result<HolderPin, String> {
        if (4..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(HolderPin(s))
        } else {
            Err("holder_pin: 4 to 12 decimal digits".into())
        }
    }
}

impl std::fmt::Debug for HolderPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HolderPin({} digits)", self.0.len())
    }
}

/// Issuer Application Data layouts the simulator can send (see `kernels::iad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IadFormat {
    /// `06 ‖ DKI ‖ CVN 0A ‖ 03 ‖ CVR(3)`.
    #[serde(rename = "visa-0")]
    Visa0,
    /// `06 ‖ DKI ‖ CVN 11 ‖ 03 ‖ CVR(3)`.
    #[serde(rename = "visa-1")]
    Visa1,
    /// `1F ‖ CVN 22 ‖ DKI ‖ CVR(5) ‖ IDD option ‖ IDD`, 32 bytes.
    #[serde(rename = "visa-2")]
    Visa2,
    /// `06 ‖ DKI ‖ CVN 12 ‖ 03 ‖ CVR(3)`.
    #[serde(rename = "visa-3")]
    Visa3,
    /// `07 ‖ DKI ‖ CVN 01 ‖ 03 ‖ CVR(3) ‖ algorithm id`.
    #[serde(rename = "unionpay")]
    UnionPay,
}

/// fDDA version (9F69 byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum FddaVersion {
    #[serde(rename = "00")]
    V00,
    #[default]
    #[serde(rename = "01")]
    V01,
}

/// Failure switches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Always answer AAC (issuer-set decline, e.g. blocked application).
    #[serde(default)]
    pub decline: bool,
    /// Corrupt the SDAD signature (bad fDDA).
    #[serde(default)]
    pub corrupt_sdad: bool,
    /// Status word for GPO instead of an answer, e.g. "6985".
    pub gpo_sw: Option<String>,
    /// Corrupt the issuer public key certificate (90).
    #[serde(default)]
    pub corrupt_issuer_cert: bool,
    /// Corrupt the ICC public key certificate (9F46).
    #[serde(default)]
    pub corrupt_icc_cert: bool,
    /// Leave the Application Expiration Date (5F24) out of the records (track 2 keeps it).
    #[serde(default)]
    pub omit_expiry: bool,
    /// A record (hex, sent as is) in proprietary SFI 11, record 1, listed in the AFL.
    pub proprietary_record: Option<String>,
    /// List that proprietary record for offline data authentication.
    #[serde(default)]
    pub proprietary_record_oda: bool,
}

fn yes() -> bool {
    true
}
fn one() -> u16 {
    1
}
fn cert_expiry() -> String {
    "1230".into()
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile {0:?} (built-in: {1})")]
    Unknown(String, String),
    #[error("profile {name}: {source}")]
    Toml { name: String, source: toml::de::Error },
    #[error("profile {name}: field {field}: {problem}")]
    Field { name: String, field: String, problem: String },
    #[error("profile {name}: a wallet holds 1 to 8 cards, this one has {count}")]
    CardCount { name: String, count: usize },
    #[error("profile {name}: {source}")]
    Pki { name: String, source: crate::pki::PkiError },
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        /// Built-in profiles: name and TOML text.
        pub static BUILTIN: &[(&str, &str)] = &[ $( ($name, include_str!(concat!("../profiles/", $name, ".toml"))), )* ];
    };
}

builtin!(
    "unionpay-phone",
    "unionpay-phone-8cards",
    "unionpay-plastic",
    "unionpay-transit",
    "visa-phone",
    "bad-fdda",
    "revoked-ca",
    "unknown-ca",
    "expired-token",
    "card-decline",
    "no-supported-aid",
    "unionpay-phone-nofunds",
    "unionpay-ecash",
    "tunion-phone",
    "tunion-phone-low",
);

impl Profile {
    /// Parses profile text.
    pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|source| ProfileError::Toml { name: name.into(), source })?;
        if (p.cards.is_empty() && p.transit.is_none()) || p.cards.len() > 8 {
            return Err(ProfileError::CardCount { name: name.into(), count: p.cards.len() });
        }
        Ok(p)
    }

    /// A built-in profile by name, or a profile file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(name_or_path, text);
        }
        match std::fs::read_to_string(name_or_path) {
            Ok(text) => Profile::parse(name_or_path, &text),
            Err(_) => Err(ProfileError::Unknown(name_or_path.into(), BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))),
        }
    }
}

#[cfg(test)]
mod holder_pin_tests {
    use super::*;

    #[test]
    fn the_plastic_card_has_a_holder_pin_the_phones_do_not() {
        let plastic = Profile::load("unionpay-plastic").unwrap();
        let pin = plastic.cards[0].holder_pin.as_ref().unwrap();
        assert_eq!(pin.digits(), "123456");
        assert!(!format!("{plastic:?}").contains("123456"), "Debug of a profile never shows the PIN");
        assert_eq!(format!("{pin:?}"), "HolderPin(6 digits)");
        assert!(Profile::load("unionpay-phone").unwrap().cards.iter().all(|c| c.holder_pin.is_none()));
    }

    #[test]
    fn a_holder_pin_is_4_to_12_digits() {
        let text = BUILTIN.iter().find(|(n, _)| *n == "unionpay-plastic").unwrap().1;
        for (pin, ok) in [("1234", true), ("123456789012", true), ("123", false), ("1234567890123", false), ("12a4", false)] {
            let t = text.replace("holder_pin = \"123456\"", &format!("holder_pin = \"{pin}\""));
            assert_eq!(Profile::parse("p", &t).is_ok(), ok, "{} characters", pin.len());
        }
    }
}
