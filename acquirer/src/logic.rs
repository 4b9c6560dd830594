//! Request → response: the message contract of docs/host.md. Pure with respect to the wire
//! (fault injection lives in the server); all state goes through the store.

use host_contract::{network, BatchNumber, ResponseCode, SignOnPosition};
use iso8583::{ascii87, field, Message, Mti};
use kernels::tlv;
use kernels::types::CryptogramType;
use sha1::{Digest, Sha1};
use test_cards::issuers;

use crate::crypto::{self, Verified};
use crate::link::PinInput;
use crate::masked;
use crate::pin::PinVerdict;
use crate::seed::{parse_yymm, valid_pan, AccountStatus, TokenDomain, TokenStatus};
use crate::store::{unix_now, utc_date, Account, AuthRecord, RequestKind, SettlementRecord};
use crate::{Acquirer, AcquirerError};

/// DE 39: the contract's one table of response codes.
use ResponseCode as Rc;

/// Fields every response echoes when the request has them.
const ECHO: [u8; 6] = [field::PAN, field::PROCESSING_CODE, field::AMOUNT, field::STAN, field::TERMINAL_ID, field::CURRENCY_CODE];

pub(crate) use host_contract::response_mti;

fn echo(req: &Message, mti: Mti, fields: &[u8]) -> Message {
    let mut r = Message::new(mti);
    for &f in fields {
        if let Some(v) = req.get(f) {
            r.set(f, v.to_vec());
        }
    }
    r
}

fn digits_only(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A numeric field of at most `max` digits.
fn number(req: &Message, f: u8, max: usize) -> Result<u64, String> {
    let s = req.get_str(f).ok_or_else(|| format!("DE {f} missing"))?;
    if s.is_empty() || s.len() > max || !digits_only(s) {
        return Err(format!("DE {f} is not up to {max} digits"));
    }
    s.parse().map_err(|_| format!("DE {f} is not a number"))
}

/// The 8-character terminal id as the key prefix (space-padded like the wire's ans8).
fn tid8(req: &Message) -> Result<Vec<u8>, String> {
    let tid = req.get(field::TERMINAL_ID).ok_or("DE 41 (terminal id) missing")?;
    if tid.is_empty() || tid.len() > 8 || !tid.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return Err("DE 41 is not 1 to 8 printable characters".into());
    }
    let mut k = tid.to_vec();
    k.resize(8, b' ');
    Ok(k)
}

/// TID(8) ‖ STAN(6): the key of an authorization record.
fn record_key(tid8: &[u8], stan: u64) -> Vec<u8> {
    let mut k = tid8.to_vec();
    k.extend_from_slice(format!("{stan:06}").as_bytes());
    k
}

/// The terminal and card data an ARQC / TC covers (Book 2 §8.1.1) and their lengths.
const AC_INPUT_LENGTHS: [(kernels::tlv::Tag, usize); 10] = [
    (kernels::tag::AMOUNT_AUTHORISED, 6),
    (kernels::tag::AMOUNT_OTHER, 6),
    (kernels::tag::TERMINAL_COUNTRY, 2),
    (kernels::tag::TVR, 5),
    (kernels::tag::TXN_CURRENCY, 2),
    (kernels::tag::TXN_DATE, 3),
    (kernels::tag::TXN_TYPE, 1),
    (kernels::tag::UNPREDICTABLE_NUMBER, 4),
    (kernels::tag::AIP, 2),
    (kernels::tag::ATC, 2),
];

/// The card data of a 0100 / 0200 / 0220, checked for format.
struct CardRequest<'a> {
    pan: &'a str,
    processing_code: &'a str,
    credit: bool,
    amount: u64,
    key: Vec<u8>,
    /// DE 55; absent only in a refund by reference ([`CardRequest::original_rrn`]).
    icc: Option<tlv::Index<'a>>,
    /// DE 37 of a refund sent without the card (no DE 55): the RRN of the approved sale it
    /// credits back (docs/host.md "Refunds").
    original_rrn: Option<&'a str>,
    /// 5F34 as the card holds it: two BCD digits.
    psn: u8,
    entry_mode: Option<&'a str>,
    expiry: Option<u32>,
    /// [`request_digest`] of the message.
    digest: String,
    /// DE 62 `AGGnnn`: a transit gate's aggregate of n taps (DE 4 the total of the fares).
    aggregate: Option<u32>,
    /// 9F02 of DE 55: the amount the cryptogram covers.
    icc_amount: Option<u64>,
    /// The MTI and DE 7, kept with the record: a reversal must name both (DE 90).
    mti: Mti,
    transmitted: Option<&'a str>,
    /// 5F2A of DE 55 and DE 49, as numbers: the currency the cryptogram covers, the request's.
    icc_currency: Option<u64>,
    currency: Option<u64>,
    /// 9C of DE 55: the transaction type the cryptogram covers (must be DE 3's first two digits).
    icc_txn_type: Option<u8>,
    /// SHA-1 (hex) of PAN ‖ PSN ‖ ATC (9F36) ‖ AC (9F26): the cryptogram's identity.
    cryptogram_id: Option<String>,
}

fn parse_card_request(req: &Message) -> Result<CardRequest<'_>, String> {
    let pan = req.get_str(field::PAN).ok_or("DE 2 (PAN) missing")?;
    if !valid_pan(pan) {
        return Err("DE 2 is not 12 to 19 digits".into());
    }
    let processing_code = req.get_str(field::PROCESSING_CODE).ok_or("DE 3 (processing code) missing")?;
    if processing_code.len() != 6 || !digits_only(processing_code) {
        return Err("DE 3 is not 6 digits".into());
    }
    let credit = match &processing_code[..2] {
        // 00 purchase, 01 cash, 09 purchase with cashback (DE 4 the total): debits; 20 refund.
        "00" | "01" | "09" => false,
        "20" => true,
        other => return Err(format!("processing code {other}xxxx is not supported (00 purchase, 01 cash, 09 cashback, 20 refund)")),
    };
    let amount = number(req, field::AMOUNT, 12)?;
    let stan = number(req, field::STAN, 6)?;
    let key = record_key(&tid8(req)?, stan);
    // DE 55 parsed once; every look-up below reads the index.
    let icc = req.get(field::ICC_DATA).map(tlv::Index::new).transpose().map_err(|e| format!("DE 55 is not BER-TLV: {e}"))?;
    let original_rrn = match (&icc, credit) {
        (Some(icc), _) => {
            // The data the cryptogram covers at their dictionary lengths: an over-long value is
            // cut to fit the AC input while the host would read all of it (a 7-byte 9F02 must
            // not let DE 4 go unchecked).
            for (t, len) in AC_INPUT_LENGTHS {
                if let Some(v) = icc.get(t) {
                    if v.len() != len {
                        return Err(format!("DE 55 tag {:X} is {} bytes, not {len}", t.0, v.len()));
                    }
                }
            }
            // A refund with the card names its sale too (issue 13); without it: 25.
            credit.then(|| req.get_str(field::RRN).filter(|r| r.len() == 12)).flatten()
        }
        // A refund without the card names the sale it credits back.
        (None, true) => Some(req.get_str(field::RRN).filter(|r| r.len() == 12).ok_or("a refund without DE 55 needs DE 37 (the original's RRN)")?),
        (None, false) => return Err("DE 55 (ICC data) missing".into()),
    };
    let psn = match req.get_str(field::CARD_SEQUENCE_NUMBER) {
        Some(s) => {
            let n = (!s.is_empty() && s.len() <= 3 && digits_only(s))
                .then(|| s.parse::<u8>().ok())
                .flatten()
                .filter(|n| *n <= 99)
                .ok_or("DE 23 is not a card sequence number 000-099")?;
            (n / 10) << 4 | (n % 10)
        }
        None => icc.as_ref().and_then(|icc| icc.get(kernels::tag::PAN_SEQUENCE)).and_then(|v| v.first().copied()).unwrap_or(0),
    };
    let expiry = req.get_str(field::EXPIRY_DATE).map(|s| parse_yymm(s).ok_or("DE 14 is not YYMM")).transpose()?;
    if let Some(t2) = req.get_str(field::TRACK2) {
        if t2.split('=').next() != Some(pan) {
            return Err("DE 35 does not carry the PAN of DE 2".into());
        }
    }
    Ok(CardRequest {
        pan,
        mti: req.mti,
        transmitted: req.get_str(field::TRANSMISSION_DATE_TIME),
        processing_code,
        credit,
        amount,
        key,
        original_rrn,
        psn,
        entry_mode: req.get_str(field::POS_ENTRY_MODE),
        expiry,
        digest: request_digest(req),
        aggregate: req.get_str(field::RESERVED_PRIVATE_62).and_then(host_contract::transit::parse_aggregate_de62),
        icc_amount: icc.as_ref().and_then(|icc| icc.get(kernels::tag::AMOUNT_AUTHORISED)).and_then(kernels::types::from_bcd),
        icc_currency: icc.as_ref().and_then(|icc| icc.get(kernels::tag::TXN_CURRENCY)).and_then(kernels::types::from_bcd),
        icc_txn_type: icc.as_ref().and_then(|icc| icc.get(kernels::tag::TXN_TYPE)).and_then(|t| t.first().copied()),
        currency: req.get_str(field::CURRENCY_CODE).and_then(|c| c.parse().ok()),
        cryptogram_id: icc.as_ref().and_then(|icc| {
            let atc = icc.get(kernels::tag::ATC)?;
            let ac = icc.get(kernels::tag::APPLICATION_CRYPTOGRAM)?;
            let mut h = Sha1::new();
            h.update(pan.as_bytes());
            h.update([psn]);
            h.update(atc);
            h.update(ac);
            Some(hex::encode(h.finalize()))
        }),
        icc,
    })
}

/// SHA-1 (hex) over the request as the terminal sent it, minus what a retransmission may
/// change: the MTI with its origin digit as the original's (0221 → 0220) and every field but
/// DE 7 (transmission date/time) and what is made under the connection's working keys (DE 52
/// PIN block, DE 64 / 128 MAC: a retransmission on a new connection has new keys), each as
/// number ‖ length ‖ value. Same TID + STAN with another
/// digest is another request (answered 94), not a retransmission.
fn request_digest(req: &Message) -> String {
    let mut mti = *req.mti.as_bytes();
    mti[3] = b'0';
    let mut h = Sha1::new();
    h.update(mti);
    for (f, v) in req.fields().filter(|(f, _)| ![field::TRANSMISSION_DATE_TIME, field::PIN_DATA, field::MAC, field::MAC_128].contains(f)) {
        h.update([f]);
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    hex::encode(h.finalize())
}

/// The stateless part of a card request's checks.
enum Crypto<'a> {
    /// A refund by reference: no cryptogram, the original sale vouches for the card.
    Referenced,
    NoIssuer,
    Failed(crypto::Failure),
    Verified {
        v: Verified,
        token_range: bool,
        issuer: &'a str,
    },
}

/// What a decision changes.
struct Decision {
    rc: ResponseCode,
    /// The account the PAN spends from, when known.
    account_pan: Option<String>,
    /// The account with its new balance, when money moves.
    posting: Option<Account>,
}

impl Decision {
    fn decline(rc: ResponseCode) -> Decision {
        Decision { rc, account_pan: None, posting: None }
    }
}

enum Outcome {
    New(AuthRecord),
    /// A retransmission of a recorded request: its recorded answer.
    Duplicate(AuthRecord),
    /// Same TID + STAN as a recorded request with other data: refused (94), nothing posted.
    Conflict,
}

/// Six letters and digits from a unique number (scrambled so consecutive codes look unrelated).
fn auth_code(id: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x = id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    (0..6)
        .map(|_| {
            let c = ALPHABET[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect()
}

/// RRN: last digit of the year ‖ day of year (3) ‖ the approval sequence number (8 digits).
fn rrn(id: u64) -> String {
    let (year, _, doy) = utc_date(unix_now());
    format!("{}{:03}{:08}", year % 10, doy, id % 100_000_000)
}

fn apply(balance: i64, amount: u64, credit: bool) -> i64 {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    if credit {
        balance.saturating_add(amount)
    } else {
        balance.saturating_sub(amount)
    }
}

impl Acquirer {
    /// Answers one request (docs/host.md): `None` when there is nothing to answer (the message
    /// is itself a response). Never panics, whatever the message holds.
    pub fn handle(&self, req: &Message) -> Option<Message> {
        self.handle_with(req, PinInput::Absent)
    }

    /// [`Acquirer::handle`] with what DE 52 came to under the connection's PIN key.
    pub(crate) fn handle_with(&self, req: &Message, pin: PinInput) -> Option<Message> {
        let Some(rmti) = response_mti(req.mti) else {
            tracing::warn!(mti = %req.mti, "not a request: not answered");
            return None;
        };
        if let Some(rc) = self.registration_refusal(req) {
            return crate::link::refusal(req, rc);
        }
        let d = req.mti.as_bytes();
        let resp = match (d[0], d[1], d[2]) {
            (b'0', b'1', b'0') => self.card_request(req, rmti, RequestKind::Authorization, &pin),
            (b'0', b'2', b'0') => self.card_request(req, rmti, RequestKind::Financial, &pin),
            (b'0', b'2', b'2') => self.card_request(req, rmti, RequestKind::Advice, &pin),
            (b'0', b'4', b'0') | (b'0', b'4', b'2') => self.reversal(req, rmti),
            (b'0', b'5', b'0') => self.reconciliation(req, rmti),
            (b'0', b'8', b'0') => self.network_management(req, rmti),
            _ => {
                tracing::warn!(mti = %req.mti, "unsupported message type");
                let mut r = echo(req, rmti, &ECHO);
                r.set_str(field::RESPONSE_CODE, Rc::FormatError.code());
                r
            }
        };
        // DE 11 of these is a STAN the terminal has just taken from its counter (a reversal's
        // is the original's): the position a sign-on reports. After the answer, so that a
        // sign-on reports what came before it.
        if matches!((d[1], d[2]), (b'1' | b'2' | b'5' | b'8', b'0') | (b'2', b'2')) {
            self.note_request_stan(req);
        }
        Some(resp)
    }

    fn note_request_stan(&self, req: &Message) {
        let (Ok(tid), Ok(stan)) = (tid8(req), number(req, field::STAN, 6)) else { return };
        if stan == 0 {
            return;
        }
        if let Err(e) = self.note_stan(&tid, stan as u32) {
            tracing::error!(error = %e, "recording the terminal's STAN failed");
        }
    }

    /// 0800: sign-on (DE 70 = 001) answered with DE 60 = [`SignOnPosition`]; echo (301) and any
    /// other code answered 00 without DE 60.
    fn network_management(&self, req: &Message, rmti: Mti) -> Message {
        let mut r = echo(req, rmti, &[field::TRANSMISSION_DATE_TIME, field::STAN, field::TERMINAL_ID, field::NETWORK_MANAGEMENT_CODE]);
        let code = req.get_str(field::NETWORK_MANAGEMENT_CODE);
        tracing::debug!(code = ?code, "network management");
        let rc = if code == Some(network::DENY_LIST) {
            self.deny_list_request(req, &mut r)
        } else if code == Some(network::SIGN_ON) {
            match tid8(req) {
                Err(problem) => {
                    tracing::warn!(mti = %req.mti, %problem, "format error");
                    Rc::FormatError
                }
                Ok(tid) => match self.sign_on_position(&tid) {
                    Ok(pos) => match pos.to_de60() {
                        Some(de60) => {
                            tracing::info!(tid = %String::from_utf8_lossy(&tid), last_stan = pos.last_stan, batch = %pos.batch, "sign-on");
                            r.set_str(field::RESERVED_PRIVATE_60, &de60);
                            Rc::Approved
                        }
                        None => Rc::SystemError,
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "sign-on failed");
                        Rc::SystemError
                    }
                },
            }
        } else {
            Rc::Approved
        };
        r.set_str(field::RESPONSE_CODE, rc.code());
        r
    }

    fn sign_on_position(&self, tid: &[u8]) -> Result<SignOnPosition, AcquirerError> {
        Ok(SignOnPosition { last_stan: self.last_stan(tid)?, batch: self.open_batch(tid)? })
    }

    /// Unpacks an `ascii87` body (no frame), answers it, packs the answer. A body that does not
    /// unpack is logged (without its content) and answered with the response MTI and 39 = 30
    /// when its MTI is readable, else not at all.
    pub fn handle_bytes(&self, body: &[u8]) -> Option<Vec<u8>> {
        let req = match ascii87().unpack(body) {
            Ok(m) => m,
            Err(e) => {
                let mti = body.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).and_then(Mti::from_ascii);
                tracing::warn!(error = %e, bytes = body.len(), mti = ?mti.map(|m| m.to_string()), "unreadable request");
                let resp = Message::new(response_mti(mti?)?).with(field::RESPONSE_CODE, Rc::FormatError.code().as_bytes());
                return ascii87().pack(&resp).ok();
            }
        };
        let resp = self.handle(&req)?;
        match ascii87().pack(&resp) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, mti = %resp.mti, "answer does not pack; answering 96");
                let fallback = Message::new(resp.mti).with(field::RESPONSE_CODE, Rc::SystemError.code().as_bytes());
                ascii87().pack(&fallback).ok()
            }
        }
    }

    /// 0100 / 0200 / 0220.
    fn card_request(&self, req: &Message, rmti: Mti, kind: RequestKind, pin: &PinInput) -> Message {
        let mut resp = echo(req, rmti, &ECHO);
        let cr = match parse_card_request(req) {
            Ok(c) => c,
            Err(problem) => {
                tracing::warn!(mti = %req.mti, %problem, "format error");
                resp.set_str(field::RESPONSE_CODE, Rc::FormatError.code());
                return resp;
            }
        };
        let crypto = match (&cr.icc, issuers::for_pan(&self.issuers, cr.pan)) {
            (None, _) => Crypto::Referenced,
            (Some(_), None) => Crypto::NoIssuer,
            (Some(icc), Some(iss)) => match crypto::verify(iss, cr.pan, cr.psn, icc) {
                Ok(v) => Crypto::Verified { v, token_range: iss.name.ends_with("-token"), issuer: &iss.name },
                Err(why) => Crypto::Failed(why),
            },
        };
        let stan = req.get_str(field::STAN).unwrap_or("");
        let tid = req.get_str(field::TERMINAL_ID).unwrap_or("");
        let transit = self.is_transit_gate(req);
        match self.decide(kind, &cr, &crypto, transit, pin) {
            Ok(Outcome::New(rec)) => {
                if transit {
                    if let Some(rc) = ResponseCode::from_code(&rec.response_code) {
                        self.transit_answered(cr.pan, rc);
                    }
                }
                tracing::info!(mti = %req.mti, tid, stan, pan = %masked(cr.pan), amount = cr.amount,
                    refund = cr.credit, rc = %rec.response_code, posted = rec.posted, "card request");
                fill(&mut resp, &rec);
            }
            Ok(Outcome::Duplicate(rec)) => {
                tracing::info!(mti = %req.mti, tid, stan, rc = %rec.response_code, "duplicate: same answer, nothing posted again");
                fill(&mut resp, &rec);
            }
            Ok(Outcome::Conflict) => {
                tracing::warn!(mti = %req.mti, tid, stan, "STAN reused by this terminal for a different request: refused, nothing posted");
                resp.set_str(field::RESPONSE_CODE, Rc::Duplicate.code());
            }
            Err(e) => {
                tracing::error!(error = %e, mti = %req.mti, tid, stan, "card request failed");
                resp.set_str(field::RESPONSE_CODE, Rc::SystemError.code());
            }
        }
        resp
    }

    fn decide(&self, kind: RequestKind, cr: &CardRequest<'_>, crypto: &Crypto<'_>, transit: bool, pin: &PinInput) -> Result<Outcome, AcquirerError> {
        let rec = {
            let guard = self.guard();
            if let Some(rec) = self.auth(&cr.key)? {
                let same = match &rec.request_digest {
                    Some(d) => *d == cr.digest,
                    // Recorded before digests were kept: what was compared then.
                    None => rec.kind == kind && rec.pan == cr.pan && rec.amount == cr.amount && rec.processing_code == cr.processing_code,
                };
                drop(guard);
                // The first answer may not be durable yet (its flush is running): whatever this
                // one says waits for it — a ticket taken now is after every earlier write.
                self.flush()?;
                if !same {
                    return Ok(Outcome::Conflict);
                }
                return Ok(Outcome::Duplicate(rec));
            }
            // A cryptogram already used by another request (a captured 0200 re-sent with a new
            // STAN): refused as a duplicate, nothing posted.
            let replay = match (&cr.cryptogram_id, crypto) {
                (Some(id), Crypto::Verified { .. }) => self.cryptograms.get(id.as_bytes())?.is_some(),
                _ => false,
            };
            if replay {
                tracing::warn!(pan = %masked(cr.pan), "cryptogram already used by another request: refused");
            }
            let (d, verified) = match crypto {
                Crypto::Verified { .. } if replay => (Decision::decline(Rc::Duplicate), None),
                // A refund without the card: a 0200 only (an authorization or an advice of a
                // refund is not a thing: 57).
                Crypto::Referenced if kind != RequestKind::Financial => (Decision::decline(Rc::NotPermitted), None),
                Crypto::Referenced => (self.refund_decision(cr)?, None),
                Crypto::NoIssuer => (Decision::decline(Rc::InvalidCard), None),
                Crypto::Failed(why) => {
                    tracing::warn!(pan = %masked(cr.pan), reason = *why, "cryptogram not verified");
                    (Decision::decline(Rc::CryptogramFailed), None)
                }
                Crypto::Verified { v, token_range, issuer } => {
                    tracing::debug!(issuer = *issuer, "cryptogram verified");
                    // The money moved is the money the card signed for (issue 13): DE 4 = 9F02
                    // (an advice may carry more only as a registered gate's aggregate, below)
                    // and DE 49 = 5F2A.
                    // 9F02 / 5F2A / 9C missing or unreadable: the money is not tied to the card's
                    // signature, a mismatch.
                    let amount_differs = match kind {
                        RequestKind::Advice => cr.icc_amount.is_none_or(|a| cr.amount < a),
                        _ => cr.icc_amount.is_none_or(|a| cr.amount != a),
                    };
                    let currency_differs = cr.icc_currency.zip(cr.currency).is_none_or(|(a, b)| a != b);
                    if amount_differs || currency_differs {
                        tracing::warn!(pan = %masked(cr.pan), amount_differs, currency_differs, "DE 4 / DE 49 differ from what the cryptogram covers");
                    }
                    // And the transaction the card signed for: 9C (in the AC input) is DE 3's
                    // type — a purchase ARQC is not a refund's.
                    let type_differs = cr.icc_txn_type.is_none_or(|t| format!("{t:02X}") != cr.processing_code[..2]);
                    if type_differs {
                        tracing::warn!(pan = %masked(cr.pan), "DE 3 is not the transaction type (9C) the cryptogram covers");
                    }
                    match (kind, v.cid_type) {
                        _ if amount_differs || currency_differs => (Decision::decline(Rc::InvalidAmount), (kind != RequestKind::Advice).then_some(v)),
                        _ if type_differs => (Decision::decline(Rc::InvalidTransaction), (kind != RequestKind::Advice).then_some(v)),
                        // An advice must carry a TC, the type the card signed (the IAD's CVR, see
                        // crypto::verify): an ARQC whose 9F27 was removed or changed is not one.
                        (RequestKind::Advice, t) if t != Some(CryptogramType::Tc) => {
                            tracing::warn!(pan = %masked(cr.pan), cryptogram = t.map_or("unknown", |t| t.name()), "advice without a TC");
                            (Decision::decline(Rc::CryptogramFailed), None)
                        }
                        // An offline refund (a credit advice) is not a thing the cards sign for:
                        // a refund goes online against its sale.
                        (RequestKind::Advice, _) if cr.credit => {
                            tracing::warn!(pan = %masked(cr.pan), "credit advice refused");
                            (Decision::decline(Rc::NotPermitted), None)
                        }
                        // More than the cryptogram covers: only a registered gate's aggregate.
                        (RequestKind::Advice, _) if cr.aggregate.is_some() || cr.icc_amount.is_some_and(|a| cr.amount > a) => {
                            (self.aggregate_decision(cr, transit)?, None)
                        }
                        (RequestKind::Advice, _) => (self.advice_decision(cr)?, None),
                        // The card did not ask to go online (TC / AAC): not honoured.
                        (_, Some(t)) if t != CryptogramType::Arqc => {
                            tracing::warn!(pan = %masked(cr.pan), cryptogram = t.name(), "online request without an ARQC");
                            (Decision::decline(Rc::DoNotHonour), Some(v))
                        }
                        _ => (self.auth_decision(kind, cr, *token_range, pin)?, Some(v)),
                    }
                }
            };
            let approved = d.rc == Rc::Approved;
            let (auth_code, rrn) = if approved && kind != RequestKind::Advice {
                let id = self.next_seq()?;
                (Some(auth_code(id)), Some(rrn(id)))
            } else {
                (None, None)
            };
            let rec = AuthRecord {
                kind,
                pan: cr.pan.to_string(),
                processing_code: cr.processing_code.to_string(),
                amount: cr.amount,
                credit: cr.credit,
                response_code: d.rc.to_string(),
                auth_code,
                rrn,
                icc_response: verified.map(|v| hex::encode_upper(v.issuer_authentication_data(d.rc))),
                account: d.account_pan.clone(),
                posted: d.posting.is_some(),
                reversed: false,
                settled: false,
                at: unix_now(),
                batch: self.open_batch(&cr.key[..8])?.get(),
                request_digest: Some(cr.digest.clone()),
                refund_of: cr.original_rrn.map(str::to_string),
                mti: Some(cr.mti.to_string()),
                transmitted: cr.transmitted.map(str::to_string),
                reversal_digest: None,
                original_amount: None,
            };
            let posting = match (&d.account_pan, &d.posting) {
                (Some(pan), Some(a)) => Some((pan.as_str(), a)),
                _ => None,
            };
            // An approved cryptogram is spent, reserved before the posting: a crash in between
            // leaves it spent and nothing posted (the terminal reverses), never a second posting.
            if let (Some(id), false, Crypto::Verified { .. }, true) = (&cr.cryptogram_id, replay, crypto, d.rc == Rc::Approved) {
                self.cryptograms.insert(id.as_bytes(), &cr.key[..])?;
            }
            self.commit(&cr.key, &rec, posting)?;
            rec
        };
        // Answered only once its record is durable — the spent cryptogram and the posting of
        // an approval, the answer a retransmission must get again — by group commit.
        self.flush()?;
        Ok(Outcome::New(rec))
    }

    /// Vault, account, expiry and funds checks of a verified 0100 / 0200, in docs order.
    fn auth_decision(&self, kind: RequestKind, cr: &CardRequest<'_>, token_range: bool, pin: &PinInput) -> Result<Decision, AcquirerError> {
        let today = self.today_yymm();
        let token = self.token(cr.pan)?;
        let account_pan = match &token {
            Some(t) => {
                match t.status {
                    TokenStatus::Deleted => return Ok(Decision::decline(Rc::InvalidCard)),
                    TokenStatus::Suspended => return Ok(Decision::decline(Rc::RestrictedCard)),
                    TokenStatus::Active => {}
                }
                match t.domain {
                    TokenDomain::ContactlessChip => {
                        if !cr.entry_mode.is_some_and(|m| m.starts_with("07")) {
                            return Ok(Decision::decline(Rc::NotPermitted));
                        }
                    }
                }
                if parse_yymm(&t.expiry).is_none_or(|e| e < today) {
                    return Ok(Decision::decline(Rc::ExpiredCard));
                }
                t.funding_pan.clone()
            }
            // A token range PAN the vault does not know.
            None if token_range => return Ok(Decision::decline(Rc::InvalidCard)),
            None => cr.pan.to_string(),
        };
        let Some(mut account) = self.account(&account_pan)? else {
            if token.is_some() {
                tracing::error!(pan = %masked(cr.pan), "vault entry without its funding account");
                return Ok(Decision::decline(Rc::SystemError));
            }
            return Ok(Decision::decline(Rc::InvalidCard));
        };
        if cr.expiry.is_some_and(|e| e < today) {
            return Ok(Decision::decline(Rc::ExpiredCard));
        }
        if token.is_none() && parse_yymm(&account.expiry).is_none_or(|e| e < today) {
            return Ok(Decision::decline(Rc::ExpiredCard));
        }
        if account.status == AccountStatus::Blocked {
            return Ok(Decision::decline(Rc::DoNotHonour));
        }
        if let Some(rc) = self.pin_decision(cr, pin)? {
            return Ok(Decision::decline(rc));
        }
        // A refund with the card: credited only against its sale, as one without (issue 13: a
        // card's ARQC alone mints no credit).
        if cr.credit {
            return match kind {
                RequestKind::Financial => self.refund_decision(cr),
                _ => Ok(Decision::decline(Rc::NotPermitted)),
            };
        }
        if i128::from(account.balance) < i128::from(cr.amount) {
            return Ok(Decision::decline(Rc::InsufficientFunds));
        }
        let posting = (kind == RequestKind::Financial).then(|| {
            account.balance = apply(account.balance, cr.amount, cr.credit);
            account
        });
        Ok(Decision { rc: Rc::Approved, account_pan: Some(account_pan), posting })
    }

    /// Online PIN (issue 12 §2): a PIN sent is verified by the issuer (IBM 3624, [`crate::pin`]) —
    /// wrong 55, tries exceeded 75; a card whose CTQ (9F6C byte 1 bit 8, C-7 / C-3 "online PIN
    /// required") asked for online PIN and no readable PIN came is declined 55: a PIN card is
    /// never approved without its PIN. `None`: nothing against the request.
    fn pin_decision(&self, cr: &CardRequest<'_>, pin: &PinInput) -> Result<Option<Rc>, AcquirerError> {
        let asked =
            cr.icc.as_ref().and_then(|icc| icc.get(kernels::tag::CTQ)).and_then(kernels::types::Ctq::from_slice).is_some_and(|ctq| ctq.online_pin_required());
        Ok(match pin {
            PinInput::Clear(p) => match self.verify_pin(cr.pan, p)? {
                PinVerdict::Verified => None,
                PinVerdict::Wrong | PinVerdict::NoPinData => Some(Rc::IncorrectPin),
                PinVerdict::TriesExceeded => Some(Rc::PinTriesExceeded),
            },
            PinInput::Unreadable => Some(Rc::IncorrectPin),
            PinInput::Absent if asked && !cr.credit => Some(Rc::IncorrectPin),
            PinInput::Absent => None,
        })
    }

    /// A refund, with the card (its ARQC verified, 9C = 20) or by reference (no card, no
    /// cryptogram): only against the approved, posted and not reversed sale its DE 37 names, of
    /// the same terminal and card (25 otherwise), for at most what is left of it after earlier
    /// refunds (13); credited to the account the sale was paid from.
    fn refund_decision(&self, cr: &CardRequest<'_>) -> Result<Decision, AcquirerError> {
        let Some(rrn) = cr.original_rrn else { return Ok(Decision::decline(Rc::OriginalNotFound)) };
        let records = self.auths_of(&cr.key[..8])?;
        let original = records
            .iter()
            .map(|(_, r)| r)
            .find(|r| r.rrn.as_deref() == Some(rrn) && !r.credit && r.kind == RequestKind::Financial && r.posted && !r.reversed && r.pan == cr.pan);
        let Some(original) = original else { return Ok(Decision::decline(Rc::OriginalNotFound)) };
        let refunded: u64 = records.iter().map(|(_, r)| r).filter(|r| r.refund_of.as_deref() == Some(rrn) && r.posted && !r.reversed).map(|r| r.amount).sum();
        if cr.amount == 0 || cr.amount.saturating_add(refunded) > original.amount {
            return Ok(Decision::decline(Rc::InvalidAmount));
        }
        // A suspended or deleted token, a blocked account: no money moves to or through it.
        if let Err(rc) = self.live_funding(cr.pan)? {
            return Ok(Decision::decline(rc));
        }
        let Some(account_pan) = original.account.clone() else { return Ok(Decision::decline(Rc::OriginalNotFound)) };
        let Some(mut account) = self.account(&account_pan)? else { return Ok(Decision::decline(Rc::SystemError)) };
        if account.status == AccountStatus::Blocked {
            return Ok(Decision::decline(Rc::DoNotHonour));
        }
        account.balance = apply(account.balance, cr.amount, true);
        Ok(Decision { rc: Rc::Approved, account_pan: Some(account_pan), posting: Some(account) })
    }

    /// The account a PAN spends from when it may move money: a token's funding PAN when the token
    /// is active (`Err` 62 suspended, 14 deleted), the PAN itself otherwise (issue 13: a lost
    /// phone's token takes no advice and no refund either).
    fn live_funding(&self, pan: &str) -> Result<Result<String, Rc>, AcquirerError> {
        Ok(match self.token(pan)? {
            Some(t) => match t.status {
                TokenStatus::Deleted => Err(Rc::InvalidCard),
                TokenStatus::Suspended => Err(Rc::RestrictedCard),
                TokenStatus::Active => Ok(t.funding_pan),
            },
            None => Ok(pan.to_string()),
        })
    }

    /// A verified 0220 carrying a TC: the offline approval is posted whatever the balance (the
    /// card approved it), but not for a suspended or deleted token (62 / 14) nor an unknown card.
    fn advice_decision(&self, cr: &CardRequest<'_>) -> Result<Decision, AcquirerError> {
        let account_pan = match self.live_funding(cr.pan)? {
            Ok(pan) => pan,
            Err(rc) => return Ok(Decision::decline(rc)),
        };
        let Some(mut account) = self.account(&account_pan)? else {
            return Ok(Decision::decline(Rc::InvalidCard));
        };
        account.balance = apply(account.balance, cr.amount, cr.credit);
        Ok(Decision { rc: Rc::Approved, account_pan: Some(account_pan), posting: Some(account) })
    }

    /// A transit gate's aggregate (0220, DE 62 `AGGnnn`, DE 55 the first tap's TC): accepted only
    /// from a registered transit gate (DE 41, 42 in `[transit]`, DE 18 = 4111), only up to the
    /// cumulative spend limit (else 13), and only when the account holds it (else 51, and the
    /// card goes on the deny list: the rides are a debt). Posted once: a repeat (same TID, STAN
    /// and fields) gets the recorded answer ([`Acquirer::decide`]).
    fn aggregate_decision(&self, cr: &CardRequest<'_>, transit: bool) -> Result<Decision, AcquirerError> {
        let Some(limit) = self.transit.as_ref().map(|t| t.cumulative_spend_limit) else {
            return Ok(Decision::decline(Rc::InvalidAmount));
        };
        if !transit || cr.aggregate.is_none() || cr.credit {
            tracing::warn!(pan = %masked(cr.pan), "advice above its cryptogram's amount from a terminal that is not a registered transit gate");
            return Ok(Decision::decline(Rc::InvalidAmount));
        }
        if cr.amount > limit || cr.amount == 0 {
            tracing::warn!(pan = %masked(cr.pan), amount = cr.amount, limit, "aggregate above the cumulative spend limit");
            return Ok(Decision::decline(Rc::InvalidAmount));
        }
        let account_pan = match self.live_funding(cr.pan)? {
            Ok(pan) => pan,
            Err(rc) => return Ok(Decision::decline(rc)),
        };
        let Some(mut account) = self.account(&account_pan)? else {
            return Ok(Decision::decline(Rc::InvalidCard));
        };
        if i128::from(account.balance) < i128::from(cr.amount) {
            return Ok(Decision::decline(Rc::InsufficientFunds));
        }
        account.balance = apply(account.balance, cr.amount, false);
        Ok(Decision { rc: Rc::Approved, account_pan: Some(account_pan), posting: Some(account) })
    }

    /// Only a registered terminal is served, and only for its own merchant (issue 13, the
    /// seed's `[[merchant]]`): `58` for a DE 41 that is not registered, `03` for a DE 42 that
    /// is not its merchant's — required on every message but the 0800, which carries none. A
    /// message without DE 41 is left to the format checks (`30`).
    pub(crate) fn registration_refusal(&self, req: &Message) -> Option<Rc> {
        let tid = req.get_str(field::TERMINAL_ID)?.trim_end();
        let Some(merchant) = self.terminals.get(tid) else {
            tracing::warn!(mti = %req.mti, terminal = tid, "request from a terminal that is not registered: 58");
            return Some(Rc::TerminalNotPermitted);
        };
        match req.get_str(field::MERCHANT_ID).map(str::trim_end) {
            Some(m) if m == merchant => None,
            None if req.mti.as_bytes()[1] == b'8' => None,
            other => {
                tracing::warn!(mti = %req.mti, terminal = tid, merchant = other.unwrap_or("(none)"), "DE 42 is not this terminal's merchant: 03");
                Some(Rc::InvalidMerchant)
            }
        }
    }

    /// 0400 / 0401 (and 0420 / 0421): undo an approved, unsettled original once, in full or
    /// in part (DE 95), when the reversal names it exactly (issue 13): DE 41 and DE 90 (original
    /// MTI, STAN, DE 7) locate it, DE 2 and DE 4 must be its PAN and amount. Not found or not
    /// matching → 25; the original already reversed by another reversal → 94, by this one (a
    /// repeat) → 00 again; settled, or refunded in part → 12; malformed → 30.
    fn reversal(&self, req: &Message, rmti: Mti) -> Message {
        let mut resp = echo(req, rmti, &ECHO);
        let code = match ReversalRequest::parse(req) {
            // Every answer to a reversal — from a record just written or one another request
            // wrote and may still be flushing — is sent only once that record is durable.
            Ok(r) => self.reverse(&r).and_then(|rc| self.flush().map(|()| rc)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "reversal failed");
                Rc::SystemError
            }),
            Err(problem) => {
                tracing::warn!(mti = %req.mti, %problem, "format error");
                Rc::FormatError
            }
        };
        resp.set_str(field::RESPONSE_CODE, code.code());
        resp
    }

    fn reverse(&self, r: &ReversalRequest) -> Result<Rc, AcquirerError> {
        let original = String::from_utf8_lossy(&r.key).into_owned();
        let posted = {
            let _g = self.guard();
            let Some(mut rec) = self.auth(&r.key)? else {
                // Never received (lost on the way, or still on its way): 25, and the place is
                // taken so an original arriving after its reversal is refused (94), not posted.
                tracing::warn!(original = %original, "reversal of a transaction never received: 25");
                let tombstone = AuthRecord {
                    kind: RequestKind::Financial,
                    pan: r.pan.clone(),
                    processing_code: String::new(),
                    amount: r.amount,
                    credit: false,
                    response_code: Rc::OriginalNotFound.code().to_string(),
                    auth_code: None,
                    rrn: None,
                    icc_response: None,
                    account: None,
                    posted: false,
                    reversed: true,
                    settled: false,
                    at: unix_now(),
                    batch: self.open_batch(&r.key[..8])?.get(),
                    request_digest: Some(REVERSED_BEFORE_RECEIVED.to_string()),
                    refund_of: None,
                    mti: Some(r.original_mti.clone()),
                    transmitted: Some(r.original_transmitted.clone()),
                    reversal_digest: Some(r.digest.clone()),
                    original_amount: None,
                };
                self.commit(&r.key, &tombstone, None)?;
                return Ok(Rc::OriginalNotFound);
            };
            let approved_amount = rec.original_amount.unwrap_or(rec.amount);
            // The original request's MTI with the repeat digit cleared (0201 → 0200).
            let base_mti = |m: &str| m.get(..3).map(str::to_string);
            let mismatch = if rec.kind == RequestKind::Advice {
                Some("an advice is not reversed")
            } else if rec.mti.as_deref().is_some_and(|m| base_mti(m) != base_mti(&r.original_mti)) {
                Some("DE 90 names another MTI")
            } else if rec.transmitted.as_deref().is_some_and(|t| t != r.original_transmitted) {
                Some("DE 90 names another transmission time")
            } else if rec.pan != r.pan {
                Some("DE 2 is not the original's PAN")
            } else if r.amount != approved_amount {
                Some("DE 4 is not the original's amount")
            } else {
                None
            };
            if let Some(why) = mismatch {
                tracing::warn!(original = %original, reason = why, "reversal does not match its original: 25");
                return Ok(Rc::OriginalNotFound);
            }
            match &rec.reversal_digest {
                // A repeat: the answer it had (25 when the original was never received).
                Some(d) if *d == r.digest => return Ok(Rc::from_code(&rec.response_code).filter(|c| *c == Rc::OriginalNotFound).unwrap_or(Rc::Approved)),
                Some(_) => {
                    tracing::warn!(original = %original, "the original was already reversed by another reversal: 94");
                    return Ok(Rc::Duplicate);
                }
                // Reversed before the digest was kept: the same answer as then.
                None if rec.reversed => return Ok(Rc::Approved),
                None => {}
            }
            if rec.settled {
                tracing::warn!(original = %original, "reversal of a settled sale refused: 12");
                return Ok(Rc::InvalidTransaction);
            }
            let refunded = match &rec.rrn {
                Some(rrn) => self.auths_of(&r.key[..8])?.iter().any(|(_, x)| x.refund_of.as_deref() == Some(rrn.as_str()) && x.posted && !x.reversed),
                None => false,
            };
            if refunded {
                tracing::warn!(original = %original, "reversal of a sale with refunds against it refused: 12");
                return Ok(Rc::InvalidTransaction);
            }
            // What goes back: all of it, or what DE 95 says was not completed.
            let back = match r.replacement {
                None => rec.amount,
                Some(actual) if actual < rec.amount => rec.amount - actual,
                Some(_) => {
                    tracing::warn!(original = %original, "DE 95 is not less than the original amount: 13");
                    return Ok(Rc::InvalidAmount);
                }
            };
            let mut account = None;
            if rec.posted && rec.response_code == Rc::Approved.code() {
                let pan = rec.account.clone().unwrap_or_default();
                match self.account(&pan)? {
                    Some(mut a) => {
                        a.balance = apply(a.balance, back, !rec.credit);
                        account = Some((pan, a));
                    }
                    None => tracing::error!(original = %original, "reversal: the posted account is gone"),
                }
            }
            match r.replacement {
                Some(actual) if rec.response_code == Rc::Approved.code() => {
                    rec.original_amount = Some(approved_amount);
                    rec.amount = actual;
                }
                _ => rec.reversed = true,
            }
            rec.reversal_digest = Some(r.digest.clone());
            self.commit(&r.key, &rec, account.as_ref().map(|(p, a)| (p.as_str(), a)))?;
            tracing::info!(original = %original, pan = %masked(&rec.pan), back, posted = rec.posted, "reversed");
            account.is_some()
        };
        if posted {
            self.flush()?;
        }
        Ok(Rc::Approved)
    }

    /// 0500: the terminal's totals against ours for one batch (DE 60; without it, the open
    /// batch). The answer echoes DE 60.
    fn reconciliation(&self, req: &Message, rmti: Mti) -> Message {
        let mut resp = echo(req, rmti, &ECHO);
        if let Some(v) = req.get(field::RESERVED_PRIVATE_60) {
            resp.set(field::RESERVED_PRIVATE_60, v.to_vec());
        }
        let parsed = (|| -> Result<ReconciliationRequest, String> {
            let stan = number(req, field::STAN, 6)?;
            let tid = tid8(req)?;
            let batch = match req.get(field::RESERVED_PRIVATE_60) {
                None => None,
                Some(v) => Some(std::str::from_utf8(v).ok().and_then(BatchNumber::parse_de60).ok_or("DE 60 is not a batch number (6 digits, not 000000)")?),
            };
            Ok((
                tid,
                stan,
                batch,
                [
                    number(req, field::DEBITS_NUMBER, 10)?,
                    number(req, field::DEBITS_AMOUNT, 16)?,
                    number(req, field::CREDITS_NUMBER, 10)?,
                    number(req, field::CREDITS_AMOUNT, 16)?,
                ],
            ))
        })();
        let code = match parsed {
            Err(problem) => {
                tracing::warn!(mti = %req.mti, %problem, "format error");
                Rc::FormatError
            }
            // Answered from durable state only (a closed batch's record may still be flushing).
            Ok((tid, stan, batch, theirs)) => self.reconcile(&tid, stan, batch, theirs).and_then(|rc| self.flush().map(|()| rc)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "reconciliation failed");
                Rc::SystemError
            }),
        };
        resp.set_str(field::RESPONSE_CODE, code.code());
        resp
    }

    /// `theirs` = [debits, debits amount, credits, credits amount] of batch `batch` (`None`: the
    /// open batch, as a terminal that does not send DE 60 means).
    ///
    /// - the open batch: 00 and closed (the next one opens) when the totals of what was posted
    ///   into it (not reversed) are `theirs`, else 95 and it stays open;
    /// - a closed batch (its 0510 was lost): the answer it got, 00, when `theirs` are the totals
    ///   it closed with, else 95; nothing changes;
    /// - without DE 60, a repeat of the 0500 that closed the last batch (same STAN, same totals)
    ///   is answered as that one was;
    /// - any other batch number: 95 (the terminal is not where the acquirer is: it should sign
    ///   on), nothing changes.
    fn reconcile(&self, tid: &[u8], stan: u64, batch: Option<BatchNumber>, theirs: [u64; 4]) -> Result<ResponseCode, AcquirerError> {
        let terminal = String::from_utf8_lossy(tid).into_owned();
        {
            let _g = self.guard();
            let open = self.open_batch(tid)?;
            match batch {
                Some(b) if b != open => {
                    return Ok(match self.closed_batch(tid, b)? {
                        Some(done) => {
                            let same = done.totals() == theirs;
                            tracing::info!(terminal = %terminal, batch = %b, same, "reconciliation of a closed batch: answered as it was");
                            if same {
                                Rc::Approved
                            } else {
                                Rc::TotalsDiffer
                            }
                        }
                        None => {
                            tracing::warn!(terminal = %terminal, batch = %b, open = %open, "reconciliation of a batch that is neither open nor closed");
                            Rc::TotalsDiffer
                        }
                    });
                }
                Some(_) => {}
                None => {
                    let last = BatchNumber::new(open.get() - 1).unwrap_or(BatchNumber::new(BatchNumber::MAX).unwrap_or(BatchNumber::FIRST));
                    if let Some(done) = self.closed_batch(tid, last)? {
                        if done.stan == stan && done.totals() == theirs {
                            tracing::info!(terminal = %terminal, stan, batch = %last, "repeated reconciliation: answered as it was");
                            return Ok(Rc::Approved);
                        }
                    }
                }
            }
            let in_batch: Vec<_> =
                self.auths_of(tid)?.into_iter().filter(|(_, r)| r.posted && !r.reversed && !r.settled && (r.batch == open.get() || r.batch == 0)).collect();
            let mut ours = [0u64; 4];
            for (_, r) in &in_batch {
                let i = if r.credit { 2 } else { 0 };
                ours[i] += 1;
                ours[i + 1] = ours[i + 1].saturating_add(r.amount);
            }
            if ours != theirs {
                tracing::warn!(terminal = %terminal, batch = %open, ?ours, ?theirs, "reconciliation totals differ ([debits, amount, credits, amount])");
                return Ok(Rc::TotalsDiffer);
            }
            let (keys, records): (Vec<_>, Vec<_>) = in_batch
                .into_iter()
                .map(|(k, mut r)| {
                    r.settled = true;
                    (k, r)
                })
                .unzip();
            let settlement = SettlementRecord {
                terminal_id: terminal.clone(),
                debits: ours[0],
                debits_amount: ours[1],
                credits: ours[2],
                credits_amount: ours[3],
                transactions: records.len() as u64,
                at: unix_now(),
                stan,
                batch: open.get(),
            };
            self.commit_settlement(tid, &keys, &records, &settlement)?;
            tracing::info!(terminal = %terminal, batch = %open, ?ours, "settled: batch closed");
        }
        self.flush()?;
        Ok(Rc::Approved)
    }
}

/// The request digest of the place a reversal took for an original it never received: no
/// request has it, so the original arriving late is refused as another request (94).
const REVERSED_BEFORE_RECEIVED: &str = "reversed before received";

/// A 0400 / 0420 checked for format.
struct ReversalRequest {
    /// The original's record key: DE 41 ‖ the STAN in DE 90.
    key: Vec<u8>,
    original_mti: String,
    original_transmitted: String,
    pan: String,
    amount: u64,
    /// DE 95's actual amount when a partial reversal (0 or absent: in full).
    replacement: Option<u64>,
    /// The reversal's own digest (repeat digit cleared, DE 7 left out): a 0401 repeating a
    /// 0400 has the same.
    digest: String,
}

impl ReversalRequest {
    /// DE 41, DE 2, DE 4 and DE 90 (42 digits: MTI 4, STAN 6, DE 7 10, acquirer and forwarding
    /// institution 11 + 11; ISO 8583:1987) are required; DE 95 (an 42, the actual transaction
    /// amount in its first 12) is optional.
    fn parse(req: &Message) -> Result<Self, String> {
        let tid = tid8(req)?;
        let pan = req
            .get_str(field::PAN)
            .filter(|p| (12..=19).contains(&p.len()) && digits_only(p))
            .ok_or("DE 2 (the original's PAN) missing or not 12 to 19 digits")?;
        let amount = number(req, field::AMOUNT, 12)?;
        let de90 = req
            .get_str(field::ORIGINAL_DATA_ELEMENTS)
            .filter(|s| s.len() == 42 && digits_only(s))
            .ok_or("DE 90 (original data elements) missing or not 42 digits")?;
        let stan: u64 = de90[4..10].parse().map_err(|_| "DE 90 STAN is not a number")?;
        let replacement = match req.get_str(field::REPLACEMENT_AMOUNTS) {
            None => None,
            Some(s) => {
                let actual = s.get(..12).filter(|a| s.len() == 42 && digits_only(a)).ok_or("DE 95 is not 42 characters starting with 12 digits")?;
                Some(actual.parse::<u64>().map_err(|_| "DE 95 amount is not a number")?).filter(|a| *a > 0)
            }
        };
        Ok(ReversalRequest {
            key: record_key(&tid, stan),
            original_mti: de90[..4].to_string(),
            original_transmitted: de90[10..20].to_string(),
            pan: pan.to_string(),
            amount,
            replacement,
            digest: request_digest(req),
        })
    }
}

/// A 0500 checked for format: terminal id (8), STAN, DE 60 when present, [debits, debits
/// amount, credits, credits amount].
type ReconciliationRequest = (Vec<u8>, u64, Option<BatchNumber>, [u64; 4]);

/// DE 39 and, as recorded, 37 / 38 / 55.
fn fill(resp: &mut Message, rec: &AuthRecord) {
    resp.set_str(field::RESPONSE_CODE, &rec.response_code);
    if rec.kind == RequestKind::Advice {
        return;
    }
    if let Some(r) = &rec.rrn {
        resp.set_str(field::RRN, r);
    }
    if let Some(a) = &rec.auth_code {
        resp.set_str(field::AUTH_ID_RESPONSE, a);
    }
    if let Some(icc) = rec.icc_response.as_deref().and_then(|h| hex::decode(h).ok()) {
        resp.set(field::ICC_DATA, icc);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
