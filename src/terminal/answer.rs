//! The host's answer, checked before anything is approved (docs/host.md "Messages").
//!
//! An answer counts only if it is the response to *this* request: the response MTI of the
//! request, the same STAN (DE 11) and terminal id (DE 41), the same amount (DE 4) and currency
//! (DE 49), a response code (DE 39) of the contract, and — when the issuer authentication data
//! (tag 91 in DE 55) is present — an ARC equal to DE 39. Anything else is a fault: not an
//! approval, and the request is reversed (it may have been posted).
//!
//! The terminal holds no issuer keys: the ARPC in tag 91 is recorded and handed to the card where
//! issuer update applies (EMV Book 2 §8.2); a forged ARPC with a plausible ARC can only be caught
//! by message authentication on the link.

use host_contract::ResponseCode;
use iso8583::{field, Message};
use kernels::{tag, tlv};

/// Why an answer is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerFault {
    #[error("answer MTI {got} is not the response to {request} (expected {expected})")]
    WrongMti { request: String, expected: String, got: String },
    #[error("answer DE {field} is {got:?}, the request had {sent:?}")]
    Mismatch { field: u8, sent: Option<String>, got: Option<String> },
    #[error("answer has no response code (DE 39)")]
    NoResponseCode,
    #[error("answer response code {0:?} is not in the contract")]
    UnknownResponseCode(String),
    #[error("issuer authentication data (tag 91) is malformed: {0}")]
    BadIssuerAuthData(String),
    #[error("issuer authentication data ARC {arc:?} differs from DE 39 {de39}")]
    ArcMismatch { arc: String, de39: String },
    /// The answer's MAC is missing or does not verify under the session MAC key (issue 12).
    #[error("answer not authenticated: {0}")]
    Unauthenticated(String),
}

/// An answer that belongs to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub response_code: ResponseCode,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    /// Tag 91 (ARPC ‖ ARC) as received, for the card.
    pub issuer_auth_data: Option<Vec<u8>>,
    /// DE 62 as received (a deny-list chunk of an 0810, `host_contract::deny_sync`).
    pub private_62: Option<String>,
}

/// The fields an answer must carry with the request's value (docs/host.md: responses echo them).
const ECHOED: [u8; 4] = [field::STAN, field::TERMINAL_ID, field::AMOUNT, field::CURRENCY_CODE];

/// Checks `resp` against `req`. Pure: no I/O, no clock.
pub fn check(req: &Message, resp: &Message) -> Result<Answer, AnswerFault> {
    let expected = host_contract::response_mti(req.mti);
    if Some(resp.mti) != expected {
        return Err(AnswerFault::WrongMti {
            request: req.mti.to_string(),
            expected: expected.map(|m| m.to_string()).unwrap_or_else(|| "none".into()),
            got: resp.mti.to_string(),
        });
    }
    for f in ECHOED {
        // Reconciliation carries no amount: only the fields the request has must come back.
        let sent = req.get(f);
        if sent.is_some() && resp.get(f) != sent {
            let s = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
            return Err(AnswerFault::Mismatch { field: f, sent: s(sent), got: s(resp.get(f)) });
        }
    }
    let rc_text = resp.get_str(field::RESPONSE_CODE).ok_or(AnswerFault::NoResponseCode)?;
    let response_code = ResponseCode::from_code(rc_text).ok_or_else(|| AnswerFault::UnknownResponseCode(rc_text.into()))?;
    let issuer_auth_data = match resp.get(field::ICC_DATA) {
        None => None,
        Some(d) => match tlv::find(d, tag::ISSUER_AUTH_DATA) {
            Ok(v) => v.map(<[u8]>::to_vec),
            Err(e) => return Err(AnswerFault::BadIssuerAuthData(format!("DE 55: {e}"))),
        },
    };
    if let Some(iad) = &issuer_auth_data {
        // Tag 91 for ARPC method 1: ARPC (8) ‖ ARC (2), EMV Book 2 §8.2.1.
        if !(10..=16).contains(&iad.len()) {
            return Err(AnswerFault::BadIssuerAuthData(format!("{} bytes, expected 10 to 16", iad.len())));
        }
        let arc = &iad[8..10];
        if arc != response_code.code().as_bytes() {
            return Err(AnswerFault::ArcMismatch { arc: String::from_utf8_lossy(arc).into_owned(), de39: response_code.code().into() });
        }
    }
    let text = |f| resp.get_str(f).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Answer {
        response_code,
        auth_code: text(field::AUTH_ID_RESPONSE),
        rrn: text(field::RRN),
        issuer_auth_data,
        private_62: resp.get_str(field::RESERVED_PRIVATE_62).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iso8583::Mti;

    fn request() -> Message {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_str(field::PROCESSING_CODE, "000000")
            .set_str(field::AMOUNT, "000000002000")
            .set_str(field::STAN, "000042")
            .set_str(field::TERMINAL_ID, "SHF00001")
            .set_str(field::CURRENCY_CODE, "156");
        m
    }

    fn approval() -> Message {
        let mut m = Message::new(Mti::FINANCIAL_RESPONSE);
        m.set_str(field::PROCESSING_CODE, "000000")
            .set_str(field::AMOUNT, "000000002000")
            .set_str(field::STAN, "000042")
            .set_str(field::TERMINAL_ID, "SHF00001")
            .set_str(field::CURRENCY_CODE, "156")
            .set_str(field::RESPONSE_CODE, "00")
            .set_str(field::AUTH_ID_RESPONSE, "A1B2C3")
            .set_str(field::RRN, "000000000001");
        m.set(field::ICC_DATA, tlv::Builder::new().put(tag::ISSUER_AUTH_DATA, b"\x11\x22\x33\x44\x55\x66\x77\x8800").build());
        m
    }

    #[test]
    fn the_echo_of_the_request_is_accepted() {
        let a = check(&request(), &approval()).unwrap();
        assert_eq!(a.response_code, ResponseCode::Approved);
        assert_eq!(a.auth_code.as_deref(), Some("A1B2C3"));
        assert_eq!(a.issuer_auth_data.as_deref().map(<[u8]>::len), Some(10));
    }

    #[test]
    fn an_answer_without_tag_91_is_accepted_as_the_issuer_sent_it() {
        let mut r = approval();
        r.remove(field::ICC_DATA);
        assert_eq!(check(&request(), &r).unwrap().issuer_auth_data, None);
    }

    #[test]
    fn wrong_mti_is_a_fault() {
        for mti in [Mti::NETWORK_MANAGEMENT_RESPONSE, Mti::REVERSAL_RESPONSE, Mti::FINANCIAL_REQUEST, Mti::AUTHORIZATION_RESPONSE] {
            let mut r = approval();
            r.mti = mti;
            assert!(matches!(check(&request(), &r), Err(AnswerFault::WrongMti { .. })), "{mti}");
        }
    }

    #[test]
    fn changed_echo_fields_are_faults() {
        for (f, v) in [(field::AMOUNT, "000000000001"), (field::CURRENCY_CODE, "840"), (field::STAN, "000043"), (field::TERMINAL_ID, "SHF00002")] {
            let mut r = approval();
            r.set_str(f, v);
            assert!(matches!(check(&request(), &r), Err(AnswerFault::Mismatch { field, .. }) if field == f), "DE {f}");
            r.remove(f);
            assert!(matches!(check(&request(), &r), Err(AnswerFault::Mismatch { field, .. }) if field == f), "DE {f} absent");
        }
    }

    #[test]
    fn response_code_must_be_in_the_contract() {
        let mut r = approval();
        r.remove(field::RESPONSE_CODE);
        assert_eq!(check(&request(), &r), Err(AnswerFault::NoResponseCode));
        r.set_str(field::RESPONSE_CODE, "Z9");
        assert_eq!(check(&request(), &r), Err(AnswerFault::UnknownResponseCode("Z9".into())));
    }

    #[test]
    fn arc_must_equal_de39() {
        let mut r = approval();
        r.set(field::ICC_DATA, tlv::Builder::new().put(tag::ISSUER_AUTH_DATA, b"\x11\x22\x33\x44\x55\x66\x77\x8805").build());
        assert!(matches!(check(&request(), &r), Err(AnswerFault::ArcMismatch { .. })));
        r.set(field::ICC_DATA, tlv::Builder::new().put(tag::ISSUER_AUTH_DATA, b"\x11\x22").build());
        assert!(matches!(check(&request(), &r), Err(AnswerFault::BadIssuerAuthData(_))));
        r.set(field::ICC_DATA, vec![0x91, 0x20, 0x00]);
        assert!(matches!(check(&request(), &r), Err(AnswerFault::BadIssuerAuthData(_))));
    }
}
