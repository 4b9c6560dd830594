//! Message type indicator.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Message type indicator: always 4 ASCII decimal digits (version, class, function, origin),
/// e.g. `0200`. Construct with the constants, `"0200".parse()`, [`Mti::from_ascii`] or
/// `Mti::try_from(200u16)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

impl Mti {
    /// 0100 authorization request.
    pub const AUTHORIZATION_REQUEST: Mti = Mti(*b"0100");
    /// 0110 authorization request response.
    pub const AUTHORIZATION_RESPONSE: Mti = Mti(*b"0110");
    /// 0200 financial transaction request.
    pub const FINANCIAL_REQUEST: Mti = Mti(*b"0200");
    /// 0210 financial transaction request response.
    pub const FINANCIAL_RESPONSE: Mti = Mti(*b"0210");
    /// 0220 financial transaction advice (offline / completion).
    pub const FINANCIAL_ADVICE: Mti = Mti(*b"0220");
    /// 0230 financial transaction advice response.
    pub const FINANCIAL_ADVICE_RESPONSE: Mti = Mti(*b"0230");
    /// 0320 batch upload (file action advice).
    pub const BATCH_UPLOAD: Mti = Mti(*b"0320");
    /// 0330 batch upload response.
    pub const BATCH_UPLOAD_RESPONSE: Mti = Mti(*b"0330");
    /// 0400 reversal request.
    pub const REVERSAL_REQUEST: Mti = Mti(*b"0400");
    /// 0410 reversal request response.
    pub const REVERSAL_RESPONSE: Mti = Mti(*b"0410");
    /// 0420 reversal advice.
    pub const REVERSAL_ADVICE: Mti = Mti(*b"0420");
    /// 0430 reversal advice response.
    pub const REVERSAL_ADVICE_RESPONSE: Mti = Mti(*b"0430");
    /// 0500 reconciliation (settlement) request.
    pub const RECONCILIATION_REQUEST: Mti = Mti(*b"0500");
    /// 0510 reconciliation response.
    pub const RECONCILIATION_RESPONSE: Mti = Mti(*b"0510");
    /// 0800 network management request (sign-on, key exchange, echo).
    pub const NETWORK_MANAGEMENT_REQUEST: Mti = Mti(*b"0800");
    /// 0810 network management response.
    pub const NETWORK_MANAGEMENT_RESPONSE: Mti = Mti(*b"0810");

    /// From 4 ASCII bytes; `None` unless all are decimal digits. Usable in `const`.
    pub const fn from_ascii(digits: [u8; 4]) -> Option<Mti> {
        let mut i = 0;
        while i < 4 {
            if !digits[i].is_ascii_digit() {
                return None;
            }
            i += 1;
        }
        Some(Mti(digits))
    }

    /// The 4 ASCII digits.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// The 4 digits as text, e.g. `"0200"`.
    pub fn as_str(&self) -> &str {
        // Invariant: always 4 ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The MTI as a number, e.g. `200` for `0200`.
    pub fn as_u16(&self) -> u16 {
        self.0.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
    }

    /// Digit `i` (0 = version, 1 = class, 2 = function, 3 = origin) as a number 0..=9.
    pub fn digit(&self, i: usize) -> Option<u8> {
        self.0.get(i).map(|d| d - b'0')
    }

    /// The matching response MTI (function digit + 1): 0200 → 0210, 0420 → 0430, 0800 → 0810.
    /// `None` when the function digit is odd (already a response) or 9.
    pub fn response(&self) -> Option<Mti> {
        let f = self.0[2] - b'0';
        if f & 1 == 0 && f < 9 {
            let mut d = self.0;
            d[2] += 1;
            Some(Mti(d))
        } else {
            None
        }
    }

    /// True when the function digit is even (request, advice, notification, instruction).
    pub fn is_request(&self) -> bool {
        (self.0[2] - b'0') & 1 == 0
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

impl FromStr for Mti {
    type Err = Error;

    /// Exactly 4 ASCII digits.
    fn from_str(s: &str) -> Result<Mti, Error> {
        let b: [u8; 4] = s.as_bytes().try_into().map_err(|_| Error::Mti(format!("expected 4 digits, found {s:?}")))?;
        Mti::from_ascii(b).ok_or_else(|| Error::Mti(format!("expected 4 digits, found {s:?}")))
    }
}

impl TryFrom<u16> for Mti {
    type Error = Error;

    /// 0..=9999, e.g. `200` → `0200`.
    fn try_from(n: u16) -> Result<Mti, Error> {
        if n > 9999 {
            return Err(Error::Mti(format!("{n} has more than 4 digits")));
        }
        let mut d = [b'0'; 4];
        let mut v = n;
        for slot in d.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Ok(Mti(d))
    }
}

impl From<Mti> for u16 {
    fn from(m: Mti) -> u16 {
        m.as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_numeric() {
        let m: Mti = "0200".parse().unwrap();
        assert_eq!(m, Mti::FINANCIAL_REQUEST);
        assert_eq!(m.to_string(), "0200");
        assert_eq!(m.as_u16(), 200);
        assert_eq!(Mti::try_from(200u16).unwrap(), m);
        assert_eq!(Mti::try_from(9999u16).unwrap().to_string(), "9999");
        assert!(Mti::try_from(10000u16).is_err());
        assert!("020".parse::<Mti>().is_err());
        assert!("02A0".parse::<Mti>().is_err());
        assert!("02000".parse::<Mti>().is_err());
        assert!("０２００".parse::<Mti>().is_err());
    }

    #[test]
    fn responses() {
        assert_eq!(Mti::FINANCIAL_REQUEST.response(), Some(Mti::FINANCIAL_RESPONSE));
        assert_eq!(Mti::REVERSAL_ADVICE.response(), Some(Mti::REVERSAL_ADVICE_RESPONSE));
        assert_eq!(Mti::NETWORK_MANAGEMENT_REQUEST.response(), Some(Mti::NETWORK_MANAGEMENT_RESPONSE));
        assert_eq!(Mti::FINANCIAL_RESPONSE.response(), None);
        assert!(Mti::FINANCIAL_REQUEST.is_request());
        assert!(!Mti::FINANCIAL_RESPONSE.is_request());
    }
}
