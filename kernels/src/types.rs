//! Domain value types with named bit accessors: amounts, TTQ, CTQ, AIP, AFL, TVR, CID, dates.

use std::fmt;

/// An amount in minor units of the transaction currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Amount(pub u64);

impl Amount {
    /// Largest value that fits n12.
    pub const MAX: Amount = Amount(999_999_999_999);

    /// Parses decimal major units with up to `exponent` decimals ("12.34" → 1234 for exponent 2).
    pub fn parse(s: &str, exponent: u32) -> Result<Amount, AmountError> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(AmountError::Empty);
        }
        if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
            return Err(AmountError::NotDecimal(s.to_string()));
        }
        if frac.len() > exponent as usize {
            return Err(AmountError::TooManyDecimals(exponent));
        }
        let mut v: u64 = 0;
        for c in int.chars().chain(frac.chars()).chain(std::iter::repeat_n('0', exponent as usize - frac.len())) {
            v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(c as u8 - b'0'))).ok_or(AmountError::TooLarge)?;
        }
        if v > Amount::MAX.0 {
            return Err(AmountError::TooLarge);
        }
        Ok(Amount(v))
    }

    /// n12 BCD, as in 9F02.
    pub fn to_n12(self) -> [u8; 6] {
        let mut out = [0u8; 6];
        out.copy_from_slice(&to_bcd(self.0, 6));
        out
    }

    pub fn from_bcd(b: &[u8]) -> Option<Amount> {
        from_bcd(b).map(Amount)
    }

    /// Decimal major units, e.g. "12.34".
    pub fn display(self, exponent: u32) -> String {
        if exponent == 0 {
            return self.0.to_string();
        }
        let d = 10u64.pow(exponent);
        format!("{}.{:0w$}", self.0 / d, self.0 % d, w = exponent as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is not a decimal number")]
    NotDecimal(String),
    #[error("amount has more than {0} decimals")]
    TooManyDecimals(u32),
    #[error("amount is larger than 12 digits")]
    TooLarge,
}

/// Encodes `v` as `len` bytes of BCD, right-justified.
pub fn to_bcd(mut v: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for b in out.iter_mut().rev() {
        let lo = (v % 10) as u8;
        v /= 10;
        let hi = (v % 10) as u8;
        v /= 10;
        *b = (hi << 4) | lo;
    }
    out
}

/// Decodes BCD; `None` if a nibble is not a decimal digit or the value overflows.
pub fn from_bcd(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &x in b {
        for n in [x >> 4, x & 0x0F] {
            if n > 9 {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(n))?;
        }
    }
    Some(v)
}

/// Digits of a cn/BCD field, stopping at the first `F` nibble (PAN 5A, track 2).
pub fn digits(b: &[u8]) -> String {
    let mut s = String::new();
    for &x in b {
        for n in [x >> 4, x & 0x0F] {
            match n {
                0..=9 => s.push((b'0' + n) as char),
                0xD => s.push('='),
                _ => return s,
            }
        }
    }
    s
}

/// Masks a PAN for display: first 6 and last 4 digits, the rest `*` (PCI DSS 3.4).
pub fn mask_pan(pan: &str) -> String {
    let c: Vec<char> = pan.chars().collect();
    let n = c.len();
    if n <= 10 {
        return "*".repeat(n);
    }
    // By characters: a PAN from a file or a host may hold anything, and must not panic here.
    format!("{}{}{}", c[..6].iter().collect::<String>(), "*".repeat(n - 10), c[n - 4..].iter().collect::<String>())
}

/// A date as YYMMDD BCD (9A, 5F24, 5F25), compared as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EmvDate(pub u32);

impl EmvDate {
    pub fn from_bcd(b: &[u8]) -> Option<EmvDate> {
        if b.len() != 3 {
            return None;
        }
        let v = from_bcd(b)? as u32;
        let (m, d) = ((v / 100) % 100, v % 100);
        ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some(EmvDate(v))
    }
    pub fn to_bcd(self) -> [u8; 3] {
        let b = to_bcd(u64::from(self.0), 3);
        [b[0], b[1], b[2]]
    }
    /// End of the month of a MMYY certificate expiry, as YYMMDD.
    pub fn from_mmyy_end(b: &[u8]) -> Option<EmvDate> {
        if b.len() != 2 {
            return None;
        }
        let mm = from_bcd(&b[..1])? as u32;
        let yy = from_bcd(&b[1..])? as u32;
        (1..=12).contains(&mm).then_some(EmvDate(yy * 10000 + mm * 100 + 31))
    }
}

macro_rules! bits {
    ($(#[$m:meta])* $name:ident, $n:literal { $( $(#[$fm:meta])* $get:ident, $set:ident = ($byte:literal, $mask:literal); )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name(pub [u8; $n]);
        impl $name {
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; $n]>::try_from(b).ok().map($name)
            }
            $( $(#[$fm])* pub fn $get(&self) -> bool { self.0[$byte - 1] & $mask != 0 }
               pub fn $set(&mut self, on: bool) { if on { self.0[$byte - 1] |= $mask } else { self.0[$byte - 1] &= !$mask } } )*
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode_upper(self.0))
            }
        }
    };
}

bits! {
    /// Terminal Transaction Qualifiers, 9F66 (Book C-3 Annex A, C-7 Annex A; DIGEST.md table).
    Ttq, 4 {
        mag_stripe_supported, set_mag_stripe_supported = (1, 0x80);
        emv_mode_supported, set_emv_mode_supported = (1, 0x20);
        contact_chip_supported, set_contact_chip_supported = (1, 0x10);
        offline_only, set_offline_only = (1, 0x08);
        online_pin_supported, set_online_pin_supported = (1, 0x04);
        signature_supported, set_signature_supported = (1, 0x02);
        oda_for_online_supported, set_oda_for_online_supported = (1, 0x01);
        online_cryptogram_required, set_online_cryptogram_required = (2, 0x80);
        cvm_required, set_cvm_required = (2, 0x40);
        issuer_update_supported, set_issuer_update_supported = (3, 0x80);
        cdcvm_supported, set_cdcvm_supported = (3, 0x40);
        fdda_v1_supported, set_fdda_v1_supported = (4, 0x80);
    }
}

bits! {
    /// Card Transaction Qualifiers, 9F6C (Book C-3 Annex A.2, C-7 Annex A).
    Ctq, 2 {
        online_pin_required, set_online_pin_required = (1, 0x80);
        signature_required, set_signature_required = (1, 0x40);
        online_if_oda_fails, set_online_if_oda_fails = (1, 0x20);
        switch_interface_if_oda_fails, set_switch_interface_if_oda_fails = (1, 0x10);
        online_if_expired, set_online_if_expired = (1, 0x08);
        switch_interface_for_cash, set_switch_interface_for_cash = (1, 0x04);
        switch_interface_for_cashback, set_switch_interface_for_cashback = (1, 0x02);
        cdcvm_performed, set_cdcvm_performed = (2, 0x80);
        issuer_update_supported, set_issuer_update_supported = (2, 0x40);
    }
}

bits! {
    /// Application Interchange Profile, 82 (Book 3 Annex C1; C-3 Annex A).
    Aip, 2 {
        sda_supported, set_sda_supported = (1, 0x40);
        dda_supported, set_dda_supported = (1, 0x20);
        cardholder_verification_supported, set_cardholder_verification_supported = (1, 0x10);
        terminal_risk_management, set_terminal_risk_management = (1, 0x08);
        issuer_authentication_supported, set_issuer_authentication_supported = (1, 0x04);
        cdcvm_supported, set_cdcvm_supported = (1, 0x02);
        cda_supported, set_cda_supported = (1, 0x01);
        msd_supported, set_msd_supported = (2, 0x80);
    }
}

bits! {
    /// Terminal Verification Results, 95 (Book 3 Annex C5).
    Tvr, 5 {
        oda_not_performed, set_oda_not_performed = (1, 0x80);
        sda_failed, set_sda_failed = (1, 0x40);
        icc_data_missing, set_icc_data_missing = (1, 0x20);
        card_on_exception_file, set_card_on_exception_file = (1, 0x10);
        dda_failed, set_dda_failed = (1, 0x08);
        cda_failed, set_cda_failed = (1, 0x04);
        expired_application, set_expired_application = (2, 0x40);
        not_yet_effective, set_not_yet_effective = (2, 0x20);
        floor_limit_exceeded, set_floor_limit_exceeded = (4, 0x80);
    }
}

/// Cryptogram type from CID 9F27 bits b8-b7 (Book 3 Table 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CryptogramType {
    Aac,
    Tc,
    Arqc,
    Rfu,
}

impl CryptogramType {
    pub fn from_cid(cid: u8) -> Self {
        match cid >> 6 {
            0 => Self::Aac,
            1 => Self::Tc,
            2 => Self::Arqc,
            _ => Self::Rfu,
        }
    }
    pub fn cid(self) -> u8 {
        match self {
            Self::Aac => 0x00,
            Self::Tc => 0x40,
            Self::Arqc => 0x80,
            Self::Rfu => 0xC0,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Aac => "AAC",
            Self::Tc => "TC",
            Self::Arqc => "ARQC",
            Self::Rfu => "RFU",
        }
    }
}

/// One entry of the Application File Locator, 94 (Book 3 §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AflEntry {
    pub sfi: u8,
    pub first: u8,
    pub last: u8,
    /// How many records from `first` take part in offline data authentication.
    pub oda_count: u8,
}

/// Parsed AFL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Afl(pub Vec<AflEntry>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AflError {
    #[error("AFL length {0} is not a multiple of 4")]
    Length(usize),
    #[error("AFL entry {0} is invalid (SFI 0 or 31, record 0, last < first, or too many ODA records)")]
    Entry(usize),
}

impl Afl {
    /// Book 3 §10.2 / C-3 §5.4 checks: length a multiple of 4; per entry SFI in 1..=30, first ≥ 1,
    /// last ≥ first, ODA count ≤ number of records.
    pub fn parse(b: &[u8]) -> Result<Afl, AflError> {
        if !b.len().is_multiple_of(4) {
            return Err(AflError::Length(b.len()));
        }
        let mut v = Vec::new();
        for (i, c) in b.chunks(4).enumerate() {
            let e = AflEntry { sfi: c[0] >> 3, first: c[1], last: c[2], oda_count: c[3] };
            if e.sfi == 0 || e.sfi == 31 || c[0] & 0x07 != 0 || e.first == 0 || e.last < e.first || u16::from(e.oda_count) > u16::from(e.last - e.first) + 1 {
                return Err(AflError::Entry(i));
            }
            v.push(e);
        }
        Ok(Afl(v))
    }

    /// Every (SFI, record, counts-for-ODA) in reading order.
    pub fn records(&self) -> Vec<(u8, u8, bool)> {
        let mut out = Vec::new();
        for e in &self.0 {
            for r in e.first..=e.last {
                out.push((e.sfi, r, r - e.first < e.oda_count));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_parse_and_bcd() {
        assert_eq!(Amount::parse("12.34", 2), Ok(Amount(1234)));
        assert_eq!(Amount::parse("10", 2), Ok(Amount(1000)));
        assert_eq!(Amount::parse(".5", 2), Ok(Amount(50)));
        assert!(Amount::parse("1.234", 2).is_err());
        assert!(Amount::parse("-1", 2).is_err());
        assert!(Amount::parse("", 2).is_err());
        assert!(Amount::parse("99999999999999", 2).is_err());
        assert_eq!(Amount(1234).to_n12(), [0, 0, 0, 0, 0x12, 0x34]);
        assert_eq!(Amount::from_bcd(&[0, 0, 0, 0, 0x12, 0x34]), Some(Amount(1234)));
        assert_eq!(Amount::from_bcd(&[0x1A]), None);
        assert_eq!(Amount(1234).display(2), "12.34");
    }

    #[test]
    fn pan_masking_keeps_first6_last4() {
        assert_eq!(mask_pan("6234567890123456"), "623456******3456");
        assert_eq!(mask_pan("1234"), "****");
    }

    #[test]
    fn digits_stop_at_padding() {
        assert_eq!(digits(&[0x62, 0x34, 0x5F]), "62345");
        assert_eq!(digits(&[0x62, 0xD2, 0x51]), "62=251");
    }

    #[test]
    fn afl_parses_and_lists_oda_records() {
        let afl = Afl::parse(&[0x18, 1, 1, 1, 0x10, 1, 2, 0]).unwrap();
        assert_eq!(afl.records(), vec![(3, 1, true), (2, 1, false), (2, 2, false)]);
    }

    #[test]
    fn afl_rejects_bad_entries() {
        assert_eq!(Afl::parse(&[0x18, 1, 1]), Err(AflError::Length(3)));
        assert_eq!(Afl::parse(&[0x00, 1, 1, 0]), Err(AflError::Entry(0)));
        assert_eq!(Afl::parse(&[0xF8, 1, 1, 0]), Err(AflError::Entry(0)));
        assert_eq!(Afl::parse(&[0x08, 0, 1, 0]), Err(AflError::Entry(0)));
        assert_eq!(Afl::parse(&[0x08, 2, 1, 0]), Err(AflError::Entry(0)));
        assert_eq!(Afl::parse(&[0x08, 1, 1, 2]), Err(AflError::Entry(0)));
    }

    #[test]
    fn dates_compare_and_validate() {
        assert!(EmvDate::from_bcd(&[0x26, 0x11, 0x25]).unwrap() > EmvDate::from_bcd(&[0x26, 0x10, 0x31]).unwrap());
        assert!(EmvDate::from_bcd(&[0x26, 0x13, 0x01]).is_none());
        assert_eq!(EmvDate::from_mmyy_end(&[0x12, 0x30]), Some(EmvDate(301231)));
    }

    #[test]
    fn ttq_bits_named() {
        let mut t = Ttq([0x36, 0, 0x40, 0]);
        assert!(t.emv_mode_supported() && t.cdcvm_supported() && !t.cvm_required());
        t.set_cvm_required(true);
        assert_eq!(t.0, [0x36, 0x40, 0x40, 0]);
    }
}
