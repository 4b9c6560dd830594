//! The one data dictionary: every tag the terminal, the card simulator, the decoder and the host
//! link use, by name, with its format and length rule (EMV Book 3 Annex A, Book C-3 Annex A,
//! Book C-7 Annex A, Book B). Kept as data: `DICTIONARY` is a table, `info()` looks it up.

use crate::tlv::Tag;

/// EMV data formats (Book 3 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Numeric, BCD, right-justified, left-padded with zeros.
    N,
    /// Compressed numeric, BCD, left-justified, right-padded with `F`.
    Cn,
    /// Binary.
    B,
    /// Alphanumeric.
    An,
    /// Alphanumeric special.
    Ans,
    /// Constructed template.
    Template,
}

/// Who supplies a data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Card,
    Terminal,
    Issuer,
}

/// One dictionary entry.
#[derive(Debug, Clone, Copy)]
pub struct TagInfo {
    pub tag: Tag,
    pub name: &'static str,
    pub format: Format,
    /// Allowed value length in bytes, inclusive.
    pub len: (usize, usize),
    pub source: Source,
    /// Values that must never be printed in clear (PAN, track 2, keys).
    pub sensitive: bool,
}

macro_rules! dictionary {
    ($( $konst:ident = $tag:literal, $name:literal, $fmt:ident, $min:literal ..= $max:literal, $src:ident $(, $sens:ident)? ; )*) => {
        $( #[doc = $name] pub const $konst: Tag = Tag($tag); )*
        /// All known tags.
        pub static DICTIONARY: &[TagInfo] = &[
            $( TagInfo { tag: Tag($tag), name: $name, format: Format::$fmt, len: ($min, $max),
                         source: Source::$src, sensitive: dictionary!(@s $($sens)?) }, )*
        ];
    };
    (@s sensitive) => { true };
    (@s) => { false };
}

dictionary! {
    AID_CARD = 0x4F, "Application Dedicated File (ADF) Name", B, 5..=16, Card;
    APPLICATION_LABEL = 0x50, "Application Label", Ans, 1..=16, Card;
    TRACK1_DATA = 0x56, "Track 1 Data", Ans, 0..=76, Card, sensitive;
    TRACK2_EQUIVALENT = 0x57, "Track 2 Equivalent Data", B, 0..=19, Card, sensitive;
    PAN = 0x5A, "Application Primary Account Number (PAN)", Cn, 0..=10, Card, sensitive;
    CARDHOLDER_NAME = 0x5F20, "Cardholder Name", Ans, 2..=26, Card, sensitive;
    EXPIRY_DATE = 0x5F24, "Application Expiration Date", N, 3..=3, Card;
    EFFECTIVE_DATE = 0x5F25, "Application Effective Date", N, 3..=3, Card;
    ISSUER_COUNTRY = 0x5F28, "Issuer Country Code", N, 2..=2, Card;
    TXN_CURRENCY = 0x5F2A, "Transaction Currency Code", N, 2..=2, Terminal;
    LANGUAGE_PREFERENCE = 0x5F2D, "Language Preference", An, 2..=8, Card;
    PAN_SEQUENCE = 0x5F34, "Application PAN Sequence Number", N, 1..=1, Card;
    TXN_CURRENCY_EXPONENT = 0x5F36, "Transaction Currency Exponent", N, 1..=1, Terminal;
    DIRECTORY_ENTRY = 0x61, "Application Template (Directory Entry)", Template, 0..=252, Card;
    FCI_TEMPLATE = 0x6F, "File Control Information (FCI) Template", Template, 0..=252, Card;
    RECORD_TEMPLATE = 0x70, "READ RECORD Response Message Template", Template, 0..=252, Card;
    ISSUER_SCRIPT_71 = 0x71, "Issuer Script Template 1", Template, 0..=252, Issuer;
    ISSUER_SCRIPT_72 = 0x72, "Issuer Script Template 2", Template, 0..=252, Issuer;
    RESPONSE_FORMAT_2 = 0x77, "Response Message Template Format 2", Template, 0..=252, Card;
    RESPONSE_FORMAT_1 = 0x80, "Response Message Template Format 1", B, 0..=252, Card;
    AMOUNT_AUTHORISED_BINARY = 0x81, "Amount, Authorised (Binary)", B, 4..=4, Terminal;
    AIP = 0x82, "Application Interchange Profile", B, 2..=2, Card;
    COMMAND_TEMPLATE = 0x83, "Command Template", B, 0..=252, Terminal;
    DF_NAME = 0x84, "Dedicated File (DF) Name", B, 5..=16, Card;
    PRIORITY = 0x87, "Application Priority Indicator", B, 1..=1, Card;
    SFI = 0x88, "Short File Identifier (SFI)", B, 1..=1, Card;
    AUTH_CODE = 0x89, "Authorisation Code", An, 6..=6, Issuer;
    AUTH_RESPONSE_CODE = 0x8A, "Authorisation Response Code", An, 2..=2, Issuer;
    CDOL1 = 0x8C, "Card Risk Management Data Object List 1 (CDOL1)", B, 0..=252, Card;
    CVM_LIST = 0x8E, "Cardholder Verification Method (CVM) List", B, 10..=252, Card;
    CA_PK_INDEX = 0x8F, "Certification Authority Public Key Index", B, 1..=1, Card;
    ISSUER_PK_CERT = 0x90, "Issuer Public Key Certificate", B, 0..=248, Card;
    ISSUER_AUTH_DATA = 0x91, "Issuer Authentication Data", B, 8..=16, Issuer;
    ISSUER_PK_REMAINDER = 0x92, "Issuer Public Key Remainder", B, 0..=248, Card;
    SSAD = 0x93, "Signed Static Application Data", B, 0..=248, Card;
    AFL = 0x94, "Application File Locator (AFL)", B, 0..=252, Card;
    TVR = 0x95, "Terminal Verification Results", B, 5..=5, Terminal;
    TXN_DATE = 0x9A, "Transaction Date", N, 3..=3, Terminal;
    TSI = 0x9B, "Transaction Status Information", B, 2..=2, Terminal;
    TXN_TYPE = 0x9C, "Transaction Type", N, 1..=1, Terminal;
    FCI_PROPRIETARY = 0xA5, "File Control Information (FCI) Proprietary Template", Template, 0..=252, Card;
    FCI_ISSUER_DISCRETIONARY = 0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", Template, 0..=222, Card;
    AMOUNT_AUTHORISED = 0x9F02, "Amount, Authorised (Numeric)", N, 6..=6, Terminal;
    AMOUNT_OTHER = 0x9F03, "Amount, Other (Numeric)", N, 6..=6, Terminal;
    AID_TERMINAL = 0x9F06, "Application Identifier (AID) - terminal", B, 5..=16, Terminal;
    AUC = 0x9F07, "Application Usage Control", B, 2..=2, Card;
    APP_VERSION_CARD = 0x9F08, "Application Version Number (card)", B, 2..=2, Card;
    APP_VERSION_TERMINAL = 0x9F09, "Application Version Number (terminal)", B, 2..=2, Terminal;
    ISSUER_APP_DATA = 0x9F10, "Issuer Application Data", B, 0..=32, Card;
    ISSUER_CODE_TABLE = 0x9F11, "Issuer Code Table Index", N, 1..=1, Card;
    PREFERRED_NAME = 0x9F12, "Application Preferred Name", Ans, 1..=16, Card;
    TERMINAL_FLOOR_LIMIT = 0x9F1B, "Terminal Floor Limit", B, 4..=4, Terminal;
    TERMINAL_ID = 0x9F1C, "Terminal Identification", An, 8..=8, Terminal;
    IFD_SERIAL = 0x9F1E, "Interface Device (IFD) Serial Number", An, 8..=8, Terminal;
    TERMINAL_COUNTRY = 0x9F1A, "Terminal Country Code", N, 2..=2, Terminal;
    TRACK1_DISCRETIONARY = 0x9F1F, "Track 1 Discretionary Data", Ans, 0..=54, Card;
    TXN_TIME = 0x9F21, "Transaction Time", N, 3..=3, Terminal;
    PAR = 0x9F24, "Payment Account Reference (PAR)", An, 29..=29, Card;
    APPLICATION_CRYPTOGRAM = 0x9F26, "Application Cryptogram", B, 8..=8, Card;
    CID = 0x9F27, "Cryptogram Information Data", B, 1..=1, Card;
    EXTENDED_SELECTION = 0x9F29, "Extended Selection", B, 0..=11, Card;
    KERNEL_IDENTIFIER = 0x9F2A, "Kernel Identifier", B, 0..=8, Card;
    ISSUER_PK_EXPONENT = 0x9F32, "Issuer Public Key Exponent", B, 1..=3, Card;
    TERMINAL_CAPABILITIES = 0x9F33, "Terminal Capabilities", B, 3..=3, Terminal;
    CVM_RESULTS = 0x9F34, "Cardholder Verification Method (CVM) Results", B, 3..=3, Terminal;
    TERMINAL_TYPE = 0x9F35, "Terminal Type", N, 1..=1, Terminal;
    ATC = 0x9F36, "Application Transaction Counter (ATC)", B, 2..=2, Card;
    UNPREDICTABLE_NUMBER = 0x9F37, "Unpredictable Number", B, 4..=4, Terminal;
    PDOL = 0x9F38, "Processing Options Data Object List (PDOL)", B, 0..=252, Card;
    POS_ENTRY_MODE = 0x9F39, "Point-of-Service (POS) Entry Mode", N, 1..=1, Terminal;
    ADDITIONAL_TERMINAL_CAPABILITIES = 0x9F40, "Additional Terminal Capabilities", B, 5..=5, Terminal;
    TXN_SEQUENCE_COUNTER = 0x9F41, "Transaction Sequence Counter", N, 2..=4, Terminal;
    APP_CURRENCY = 0x9F42, "Application Currency Code", N, 2..=2, Card;
    ICC_PK_CERT = 0x9F46, "ICC Public Key Certificate", B, 0..=248, Card;
    ICC_PK_EXPONENT = 0x9F47, "ICC Public Key Exponent", B, 1..=3, Card;
    ICC_PK_REMAINDER = 0x9F48, "ICC Public Key Remainder", B, 0..=248, Card;
    DDOL = 0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", B, 0..=252, Card;
    SDA_TAG_LIST = 0x9F4A, "Static Data Authentication Tag List", B, 0..=252, Card;
    SDAD = 0x9F4B, "Signed Dynamic Application Data", B, 0..=248, Card;
    ICC_DYNAMIC_NUMBER = 0x9F4C, "ICC Dynamic Number", B, 2..=8, Card;
    MERCHANT_NAME_LOCATION = 0x9F4E, "Merchant Name and Location", Ans, 0..=64, Terminal;
    AVAILABLE_OFFLINE_AMOUNT = 0x9F5D, "Available Offline Spending Amount (AOSA)", N, 6..=6, Card;
    TTQ = 0x9F66, "Terminal Transaction Qualifiers (TTQ)", B, 4..=4, Terminal;
    CARD_AUTH_RELATED_DATA = 0x9F69, "Card Authentication Related Data", B, 5..=16, Card;
    TRACK2_DATA = 0x9F6B, "Track 2 Data", B, 0..=19, Card, sensitive;
    CTQ = 0x9F6C, "Card Transaction Qualifiers (CTQ)", B, 2..=2, Card;
    FORM_FACTOR = 0x9F6E, "Form Factor Indicator", B, 4..=32, Card;
    EC_BALANCE = 0x9F79, "Electronic Cash Balance (UnionPay)", N, 6..=6, Card;
    CUSTOMER_EXCLUSIVE_DATA = 0x9F7C, "Customer Exclusive Data", B, 0..=32, Card;
    READER_CL_FLOOR_LIMIT = 0xDF8123, "Reader Contactless Floor Limit", N, 6..=6, Terminal;
    READER_CL_TXN_LIMIT = 0xDF8124, "Reader Contactless Transaction Limit", N, 6..=6, Terminal;
    READER_CVM_REQUIRED_LIMIT = 0xDF8126, "Reader CVM Required Limit", N, 6..=6, Terminal;
}

/// The dictionary entry for `tag`, if known.
pub fn info(tag: Tag) -> Option<&'static TagInfo> {
    DICTIONARY.iter().find(|i| i.tag == tag)
}

/// Human name of a tag, or "Unknown / proprietary".
pub fn name(tag: Tag) -> &'static str {
    info(tag).map(|i| i.name).unwrap_or("Unknown / proprietary")
}

/// Whether a tag's value must be masked or withheld in logs and reports.
pub fn is_sensitive(tag: Tag) -> bool {
    info(tag).is_some_and(|i| i.sensitive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_has_no_duplicate_tags() {
        let mut tags: Vec<u32> = DICTIONARY.iter().map(|i| i.tag.0).collect();
        tags.sort_unstable();
        let n = tags.len();
        tags.dedup();
        assert_eq!(n, tags.len());
    }

    #[test]
    fn constructed_bit_agrees_with_template_format() {
        for i in DICTIONARY {
            if i.tag.0 == 0x80 {
                continue; // format 1 response is primitive despite its "template" name
            }
            assert_eq!(i.tag.is_constructed(), i.format == Format::Template, "{}", i.name);
        }
    }

    #[test]
    fn pan_and_track2_are_sensitive() {
        assert!(is_sensitive(PAN) && is_sensitive(TRACK2_EQUIVALENT));
        assert!(is_sensitive(TRACK1_DATA) && is_sensitive(TRACK2_DATA) && is_sensitive(CARDHOLDER_NAME));
        assert!(!is_sensitive(AIP));
    }
}
