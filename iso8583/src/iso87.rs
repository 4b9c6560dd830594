//! The ISO 8583:1987 data elements shanfu uses, shared by [`crate::ascii87`] and
//! [`crate::bcd87`] (the two specs differ only in [`crate::Encoding`]).

use crate::spec::{FieldSpec, Kind, Length, Redact};

use Kind::{Alpha, Binary, Numeric, Track2};
use Length::{Fixed, LLLVar, LLVar};

const fn f(number: u8, name: &'static str, kind: Kind, length: Length) -> FieldSpec {
    FieldSpec::new(number, name, kind, length)
}

/// The field table: every data element both stock specs define. Any other field number in a
/// bitmap or a message is an error ("field 17 is not defined by spec ascii87").
pub(crate) const FIELDS: &[FieldSpec] = &[
    f(2, "primary account number", Numeric, LLVar(19)).redacted(Redact::Pan),
    f(3, "processing code", Numeric, Fixed(6)),
    f(4, "amount, transaction", Numeric, Fixed(12)),
    f(7, "transmission date and time", Numeric, Fixed(10)),
    f(11, "systems trace audit number", Numeric, Fixed(6)),
    f(12, "time, local transaction", Numeric, Fixed(6)),
    f(13, "date, local transaction", Numeric, Fixed(4)),
    f(14, "date, expiration", Numeric, Fixed(4)),
    f(18, "merchant type", Numeric, Fixed(4)),
    f(22, "point of service entry mode", Numeric, Fixed(3)),
    f(23, "card sequence number", Numeric, Fixed(3)),
    f(24, "network international identifier", Numeric, Fixed(3)),
    f(25, "point of service condition code", Numeric, Fixed(2)),
    f(35, "track 2", Track2, LLVar(37)).redacted(Redact::Pan),
    f(37, "retrieval reference number", Alpha, Fixed(12)),
    f(38, "authorization identification response", Alpha, Fixed(6)),
    f(39, "response code", Alpha, Fixed(2)),
    f(41, "card acceptor terminal identification", Alpha, Fixed(8)),
    f(42, "card acceptor identification code", Alpha, Fixed(15)),
    f(43, "card acceptor name/location", Alpha, Fixed(40)),
    f(49, "currency code, transaction", Numeric, Fixed(3)),
    f(52, "PIN data", Binary, Fixed(8)).redacted(Redact::Withhold),
    f(53, "security related control information", Numeric, Fixed(16)),
    f(54, "additional amounts", Alpha, LLLVar(120)),
    f(55, "ICC data", Binary, LLLVar(999)),
    f(60, "reserved private (batch/settlement data)", Alpha, LLLVar(999)),
    f(62, "reserved private", Alpha, LLLVar(999)),
    f(63, "reserved private", Alpha, LLLVar(999)),
    f(64, "message authentication code", Binary, Fixed(8)).redacted(Redact::Withhold),
    f(70, "network management information code", Numeric, Fixed(3)),
    f(74, "credits, number", Numeric, Fixed(10)),
    f(76, "debits, number", Numeric, Fixed(10)),
    f(86, "credits, amount", Numeric, Fixed(16)),
    f(88, "debits, amount", Numeric, Fixed(16)),
    f(90, "original data elements", Numeric, Fixed(42)),
    f(95, "replacement amounts", Alpha, Fixed(42)),
    f(97, "amount, net settlement", Alpha, Fixed(17)),
    f(128, "message authentication code", Binary, Fixed(8)).redacted(Redact::Withhold),
];

/// The field table shared by [`crate::ascii87`] and [`crate::bcd87`], to build variants with
/// [`crate::Spec::new`].
pub fn iso87_fields() -> &'static [FieldSpec] {
    FIELDS
}

/// Display policy of field `n` under ISO 8583:1987 (used by `Debug for Message`, which has
/// no spec at hand).
pub(crate) fn default_redact(n: u8) -> Redact {
    match n {
        2 | 35 => Redact::Pan,
        52 | 64 | 128 => Redact::Withhold,
        _ => Redact::Clear,
    }
}

/// Data element numbers of the stock specs, for readable `set` / `get` calls.
pub mod field {
    /// 2 primary account number, n..19 LLVAR.
    pub const PAN: u8 = 2;
    /// 3 processing code, n6.
    pub const PROCESSING_CODE: u8 = 3;
    /// 4 amount, transaction, n12 (minor units).
    pub const AMOUNT: u8 = 4;
    /// 7 transmission date and time, n10 MMDDhhmmss.
    pub const TRANSMISSION_DATE_TIME: u8 = 7;
    /// 11 systems trace audit number, n6.
    pub const STAN: u8 = 11;
    /// 12 time, local transaction, n6 hhmmss.
    pub const LOCAL_TIME: u8 = 12;
    /// 13 date, local transaction, n4 MMDD.
    pub const LOCAL_DATE: u8 = 13;
    /// 14 date, expiration, n4 YYMM.
    pub const EXPIRY_DATE: u8 = 14;
    /// 18 merchant type, n4 (ISO 18245 MCC; transit gates send 4111).
    pub const MERCHANT_TYPE: u8 = 18;
    /// 22 POS entry mode, n3 (contactless chip: `071` PIN capable, `072` no PIN capability).
    pub const POS_ENTRY_MODE: u8 = 22;
    /// 23 card sequence number, n3.
    pub const CARD_SEQUENCE_NUMBER: u8 = 23;
    /// 24 NII / function code, n3.
    pub const NII: u8 = 24;
    /// 25 POS condition code, n2.
    pub const POS_CONDITION_CODE: u8 = 25;
    /// 35 track 2 equivalent data, z..37 LLVAR.
    pub const TRACK2: u8 = 35;
    /// 37 retrieval reference number, an12.
    pub const RRN: u8 = 37;
    /// 38 authorization identification response, an6.
    pub const AUTH_ID_RESPONSE: u8 = 38;
    /// 39 response code, an2.
    pub const RESPONSE_CODE: u8 = 39;
    /// 41 card acceptor terminal identification, ans8.
    pub const TERMINAL_ID: u8 = 41;
    /// 42 card acceptor identification code (merchant id), ans15.
    pub const MERCHANT_ID: u8 = 42;
    /// 43 card acceptor name/location, ans40.
    pub const NAME_LOCATION: u8 = 43;
    /// 49 currency code, transaction, n3 (ISO 4217 numeric, e.g. `156`).
    pub const CURRENCY_CODE: u8 = 49;
    /// 52 PIN data, b64 (8 raw bytes).
    pub const PIN_DATA: u8 = 52;
    /// 53 security related control information, n16 (PIN block format, algorithm).
    pub const SECURITY_CONTROL: u8 = 53;
    /// 54 additional amounts, an..120 LLLVAR.
    pub const ADDITIONAL_AMOUNTS: u8 = 54;
    /// 55 ICC data, b..999 LLLVAR (raw BER-TLV bytes).
    pub const ICC_DATA: u8 = 55;
    /// 60 reserved private (batch / settlement info), ans..999 LLLVAR.
    pub const RESERVED_PRIVATE_60: u8 = 60;
    /// 62 reserved private, ans..999 LLLVAR.
    pub const RESERVED_PRIVATE_62: u8 = 62;
    /// 63 reserved private, ans..999 LLLVAR.
    pub const RESERVED_PRIVATE_63: u8 = 63;
    /// 64 message authentication code, b64 (8 raw bytes).
    pub const MAC: u8 = 64;
    /// 70 network management information code, n3.
    pub const NETWORK_MANAGEMENT_CODE: u8 = 70;
    /// 74 credits, number, n10.
    pub const CREDITS_NUMBER: u8 = 74;
    /// 76 debits, number, n10.
    pub const DEBITS_NUMBER: u8 = 76;
    /// 86 credits, amount, n16.
    pub const CREDITS_AMOUNT: u8 = 86;
    /// 88 debits, amount, n16.
    pub const DEBITS_AMOUNT: u8 = 88;
    /// 90 original data elements, n42.
    pub const ORIGINAL_DATA_ELEMENTS: u8 = 90;
    /// 95 replacement amounts, an42.
    pub const REPLACEMENT_AMOUNTS: u8 = 95;
    /// 97 amount, net settlement, x+n16 carried as an17 (`C`/`D` then 16 digits).
    pub const NET_SETTLEMENT_AMOUNT: u8 = 97;
    /// 128 message authentication code (secondary bitmap messages), b64 (8 raw bytes).
    pub const MAC_128: u8 = 128;
}
