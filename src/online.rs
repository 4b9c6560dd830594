//! Online processing after the tap: the ISO 8583 messages of docs/host.md, authorization with
//! the issuer's answer checked, reversals on every unanswered request, store-and-forward of
//! offline approvals, and settlement. Every state is in the journal (flushed) before the next
//! step: the request is journaled as Sent before a byte leaves the terminal.

use crate::host::{HostError, HostLink};
use crate::journal::{Disposition, Journal, JournalError, NotCompleted, TxnEvent, TxnKind, TxnRecord, TxnState};
use crate::terminal::answer::AnswerFault;
use crate::terminal::disposition::TerminalReason;
use crate::terminal::pin::EnteredPin;
use host_contract::ResponseCode;
use iso8583::{field, Message, Mti};

/// Terminal identity for messages.
#[derive(Debug, Clone)]
pub struct Identity {
    pub terminal_id: String,
    pub merchant_id: String,
    /// n3 currency for DE 49, e.g. "156".
    pub currency: String,
    /// The terminal's time zone: DE 12 / 13 are local (DE 7 is UTC).
    pub time_zone: jiff::tz::TimeZone,
}

#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Host(HostError),
    #[error("host answered {0}")]
    Refused(String),
    #[error("host answer rejected: {0}")]
    BadAnswer(AnswerFault),
}

impl From<HostError> for OnlineError {
    fn from(e: HostError) -> OnlineError {
        match e {
            HostError::Rejected(f) => OnlineError::BadAnswer(f),
            e => OnlineError::Host(e),
        }
    }
}

/// Crash-test hook, only in builds with the `crash-test` feature (the test suite; never the
/// shipped binary): `SHANFU_CRASH_AT=<state>` aborts the process right after that state is
/// journaled, as a `kill -9` at that point would (tests/online.rs).
#[cfg(not(feature = "crash-test"))]
#[inline(always)]
pub fn crash_point(_state: TxnState) {}

#[cfg(feature = "crash-test")]
pub fn crash_point(state: TxnState) {
    if let Ok(want) = std::env::var("SHANFU_CRASH_AT") {
        if serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).as_deref() == Some(want.as_str()) {
            eprintln!("shanfu: SHANFU_CRASH_AT={want}: aborting");
            std::process::abort();
        }
    }
}

/// DE 7 (MMDDhhmmss, UTC) of a message sent now.
pub fn transmission_date_time() -> String {
    let (date, time) = crate::clock::now();
    let d = hex::encode(date.to_bcd());
    format!("{}{}", &d[2..6], hex::encode(time))
}

/// DE 7 (UTC), DE 12 (local hhmmss) and DE 13 (local MMDD) of a message sent now.
fn message_times(id: &Identity) -> (String, String, String) {
    let (de12, de13) = crate::clock::local_de12_de13(&id.time_zone, crate::clock::unix_now() as i64);
    (transmission_date_time(), de12, de13)
}

/// DE 3 of a request for a transaction of this kind (the contract's processing codes).
pub fn processing_code(kind: TxnKind) -> &'static str {
    match kind {
        TxnKind::Purchase => host_contract::processing::PURCHASE,
        TxnKind::Refund => host_contract::processing::REFUND,
        TxnKind::Cash => host_contract::processing::CASH,
        TxnKind::Cashback => host_contract::processing::CASHBACK,
    }
}

fn base(mti: Mti, id: &Identity, r: &TxnRecord) -> Message {
    let mut m = Message::new(mti);
    if let Some(p) = &r.pan {
        m.set_str(field::PAN, p);
    }
    m.set_str(field::PROCESSING_CODE, processing_code(r.kind))
        .set_str(field::AMOUNT, &format!("{:012}", r.amount))
        .set_str(field::STAN, &format!("{:06}", r.stan.unwrap_or(0)))
        .set_str(field::TERMINAL_ID, &id.terminal_id)
        .set_str(field::MERCHANT_ID, &id.merchant_id)
        .set_str(field::CURRENCY_CODE, &id.currency);
    if let Some(t) = &r.transmitted {
        m.set_str(field::TRANSMISSION_DATE_TIME, t);
    }
    if let (Some(t), Some(d)) = (&r.local_time, &r.local_date) {
        m.set_str(field::LOCAL_TIME, t).set_str(field::LOCAL_DATE, d);
    }
    m
}

fn card_fields(m: &mut Message, r: &TxnRecord) {
    if let Some(e) = &r.expiry_yymm {
        m.set_str(field::EXPIRY_DATE, e);
    }
    m.set_str(field::POS_ENTRY_MODE, "071").set_str(field::POS_CONDITION_CODE, "00");
    if let Some(psn) = r.psn {
        m.set_str(field::CARD_SEQUENCE_NUMBER, &format!("{:03}", kernels::types::from_bcd(&[psn]).unwrap_or(0)));
    }
    if let Some(icc) = r.icc_data.as_deref().and_then(|h| hex::decode(h).ok()) {
        m.set(field::ICC_DATA, icc);
    }
}

/// What the issuer answered, as the terminal sees it (checked by [`answer::check`]).
#[derive(Debug, Clone)]
pub struct HostAnswer {
    pub response_code: String,
    pub auth_code: Option<String>,
    pub rrn: Option<String>,
    /// RECEIVED (tag 91 recorded for the card) or ABSENT.
    pub arpc: String,
}

/// Cashier-facing meaning of a response code (the contract's table; English).
pub fn response_text(code: &str) -> &'static str {
    ResponseCode::from_code(code).map(|rc| rc.text(host_contract::Lang::En)).unwrap_or("Declined")
}

/// Authorization of an online request: journal Sent → exchange → journal Answered → Completed.
/// No answer → the reversal is queued (journaled) and tried once at once.
pub async fn authorize(
    journal: &Journal,
    link: &mut HostLink,
    id: &Identity,
    rec: &mut TxnRecord,
    track2: Option<String>,
    pin: Option<&EnteredPin>,
) -> Result<HostAnswer, OnlineError> {
    // Connected and signed on before the STAN is taken: the sign-on says where the acquirer has
    // this terminal. A host that cannot be reached or refuses the sign-on got nothing: the
    // transaction closes as not completed, with nothing to reverse.
    if let Err(e) = ready(journal, link).await {
        tracing::warn!(error = %e, "host not reachable: the request was not sent");
        journal.advance(rec, TxnEvent::Closed, |r| {
            r.disposition = Some(Disposition::NotCompleted { reason: NotCompleted::HostUnreachable });
            r.reason = Some(format!("host unreachable ({e}): not sent, not charged"));
        })?;
        return Err(e);
    }
    // The PIN block under this connection's PIN key (DE 52, ISO 9564 format 0): made now, never
    // journaled. A link without keys has no PIN key: the PIN cannot travel, nothing is sent.
    let pin_block = match pin {
        None => None,
        Some(p) => match (link.pin_key(), rec.pan.as_deref()) {
            (Some(k), Some(pan)) => p.format0_block(k, pan).ok(),
            _ => None,
        },
    };
    if pin.is_some() && pin_block.is_none() {
        tracing::warn!("online PIN entered but the host link has no PIN key: not sent");
        journal.advance(rec, TxnEvent::Closed, |r| {
            r.disposition = Some(Disposition::DeclinedByTerminal { reason: TerminalReason::OnlinePinUnavailable });
            r.reason = Some("online PIN needs a keyed host link (this host is configured mac = false): not sent, not approved".into());
        })?;
        return Err(OnlineError::Refused("no PIN key on the host link".into()));
    }
    let stan = journal.next_stan()?;
    let (de7, de12, de13) = message_times(id);
    journal.advance(rec, TxnEvent::Sent, |r| {
        r.pin_sent = pin_block.is_some();
        r.stan = Some(stan);
        r.transmitted = Some(de7);
        r.local_time = Some(de12);
        r.local_date = Some(de13);
    })?;
    crash_point(TxnState::Sent);
    let mut req = base(Mti::FINANCIAL_REQUEST, id, rec);
    card_fields(&mut req, rec);
    if let Some(t2) = &track2 {
        req.set_str(field::TRACK2, t2);
    }
    if let Some(rrn) = &rec.reference_rrn {
        req.set_str(field::RRN, rrn);
    }
    if let Some(b) = pin_block {
        // DE 53: PIN format 1 (ISO 9564 format 0, with the PAN), algorithm 6 (double-length
        // TDES) — the CUP-style layout (unverified against the CUP specification).
        req.set(field::PIN_DATA, b.to_vec()).set_str(field::SECURITY_CONTROL, "1600000000000000");
    }
    match link.exchange(&req).await.map_err(OnlineError::from) {
        Ok(ans) => {
            let rc = ans.response_code;
            let answer = HostAnswer {
                auth_code: ans.auth_code.clone(),
                rrn: ans.rrn.clone(),
                arpc: if ans.issuer_auth_data.is_some() { "RECEIVED" } else { "ABSENT" }.into(),
                response_code: rc.code().to_string(),
            };
            journal.advance(rec, TxnEvent::Answered, |r| {
                r.response_code = Some(rc.code().to_string());
                r.auth_code = answer.auth_code.clone();
                r.rrn = answer.rrn.clone();
                r.arpc = Some(answer.arpc.clone());
                r.issuer_auth_data = ans.issuer_auth_data.as_deref().map(hex::encode_upper);
            })?;
            crash_point(TxnState::Answered);
            journal.advance(rec, TxnEvent::Closed, |r| {
                r.disposition = Some(if rc.is_approved() { Disposition::ApprovedOnline } else { Disposition::DeclinedByIssuer { response_code: rc } });
                r.reason = Some(if rc.is_approved() { "approved online by the issuer".into() } else { format!("issuer declined: {} ({rc})", rc.meaning()) });
            })?;
            Ok(answer)
        }
        Err(e) => {
            // No answer, or an answer that is not this request's: it may have been posted, so
            // it is reversed (docs/host.md), and nothing is approved.
            let (disposition, why) = match &e {
                OnlineError::BadAnswer(f) => (
                    Disposition::DeclinedByTerminal { reason: TerminalReason::HostAnswerRejected },
                    format!("host answer rejected ({f}): transaction reversed"),
                ),
                e => (Disposition::NotCompleted { reason: NotCompleted::HostUnreachable }, format!("host unreachable ({e}): transaction reversed")),
            };
            tracing::warn!(error = %e, stan, "no valid answer from the host: reversal queued");
            journal.advance(rec, TxnEvent::NotAnswered, |r| {
                r.disposition = Some(disposition);
                r.reason = Some(why);
            })?;
            crash_point(TxnState::ReversalPending);
            let _ = reverse(journal, link, id, rec).await;
            Err(e)
        }
    }
}

/// Connects and signs on if needed; the acquirer's position (last STAN, open batch) from the
/// sign-on goes into the journal before any STAN is taken (docs/host.md "Sign-on").
pub async fn ready(journal: &Journal, link: &mut HostLink) -> Result<(), OnlineError> {
    link.ready().await?;
    if let Some(p) = link.take_position() {
        journal.sync_position(p.last_stan, p.batch)?;
    }
    Ok(())
}

/// Sends the reversal (0400, then 0401 repeats) of a transaction; Reversed on a 0410.
pub async fn reverse(journal: &Journal, link: &mut HostLink, id: &Identity, rec: &mut TxnRecord) -> Result<(), OnlineError> {
    let mti = if rec.reversal_attempts == 0 { Mti::REVERSAL_REQUEST } else { Mti::from_ascii(*b"0401").unwrap_or(Mti::REVERSAL_REQUEST) };
    rec.reversal_attempts += 1;
    journal.put(rec)?;
    let mut m = base(mti, id, rec);
    m.set_str(field::POS_ENTRY_MODE, "071");
    let original = format!("0200{:06}{}{:0>22}", rec.stan.unwrap_or(0), rec.transmitted.clone().unwrap_or_else(|| "0".repeat(10)), "");
    m.set_str(field::ORIGINAL_DATA_ELEMENTS, &original);
    ready(journal, link).await?;
    let ans = link.exchange(&m).await?;
    if !ans.response_code.ends_reversal() {
        return Err(OnlineError::Refused(format!("{} to the reversal ({})", ans.response_code, ans.response_code.meaning())));
    }
    if !ans.response_code.is_approved() {
        tracing::info!(stan = rec.stan, rc = %ans.response_code, meaning = ans.response_code.meaning(), "reversal: nothing left to undo at the host");
    }
    journal.advance(rec, TxnEvent::ReversalAcked, |_| {})?;
    Ok(())
}

/// Uploads an offline approval (0220 advice); Advised on a 0230.
pub async fn advise(journal: &Journal, link: &mut HostLink, id: &Identity, rec: &mut TxnRecord) -> Result<(), OnlineError> {
    ready(journal, link).await?;
    if rec.stan.is_none() {
        let stan = journal.next_stan()?;
        let (de7, de12, de13) = message_times(id);
        rec.stan = Some(stan);
        rec.transmitted = Some(de7);
        rec.local_time.get_or_insert(de12);
        rec.local_date.get_or_insert(de13);
        journal.put(rec)?;
    }
    let mut m = base(Mti::FINANCIAL_ADVICE, id, rec);
    card_fields(&mut m, rec);
    let ans = link.exchange(&m).await?;
    if ans.response_code.is_not_processed() {
        // Not posted: the advice is still owed to the acquirer (sent again by the next settle).
        return Err(OnlineError::Refused(format!("{} to the advice ({})", ans.response_code, ans.response_code.meaning())));
    }
    journal.advance(rec, TxnEvent::AdviceAcked, |r| r.response_code = Some(ans.response_code.code().to_string()))?;
    Ok(())
}

/// Totals of what the acquirer should have for this terminal since the last settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Totals {
    pub debits: u64,
    pub debits_amount: u64,
    pub credits: u64,
    pub credits_amount: u64,
}

/// Whether a transaction is in the batch the next settlement (0500) reconciles: an approved
/// sale, and an advice the acquirer accepted (a refused advice was not posted there).
pub fn counts(r: &TxnRecord) -> bool {
    (r.state == TxnState::Completed && r.disposition.is_some_and(Disposition::is_approved))
        || (r.state == TxnState::Advised && r.response_code.as_deref().and_then(ResponseCode::from_code).is_some_and(ResponseCode::is_approved))
}

/// What `settle` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettleReport {
    pub reversals_sent: usize,
    pub reversals_pending: usize,
    pub advices_sent: usize,
    pub advices_pending: usize,
    pub totals: Totals,
    pub response_code: Option<String>,
    pub reconciled: bool,
    /// The batch number the 0500 carried (DE 60).
    pub batch: Option<String>,
}

/// Pending reversals and advices of the journal, retried once each.
pub async fn drain(journal: &Journal, link: &mut HostLink, id: &Identity) -> Result<(usize, usize, usize, usize), OnlineError> {
    let (mut rs, mut rp, mut as_, mut ap) = (0, 0, 0, 0);
    for mut r in journal.in_state(TxnState::ReversalPending)? {
        match reverse(journal, link, id, &mut r).await {
            Ok(()) => rs += 1,
            Err(e) => {
                tracing::warn!(id = r.id, error = %e, "reversal still pending");
                rp += 1;
            }
        }
    }
    for mut r in journal.in_state(TxnState::AdvicePending)? {
        match advise(journal, link, id, &mut r).await {
            Ok(()) => as_ += 1,
            Err(e) => {
                tracing::warn!(id = r.id, error = %e, "advice still pending");
                ap += 1;
            }
        }
    }
    Ok((rs, rp, as_, ap))
}

/// How many times `settle` sends its 0500 when no answer comes.
const RECONCILE_ATTEMPTS: u32 = 3;

/// `settle`: drain the queues, then reconcile (0500) and mark the counted transactions Settled.
pub async fn settle(journal: &Journal, link: &mut HostLink, id: &Identity) -> Result<SettleReport, OnlineError> {
    let (reversals_sent, reversals_pending, advices_sent, advices_pending) = drain(journal, link, id).await?;
    let counted: Vec<TxnRecord> = journal.all()?.into_iter().filter(counts).collect();
    let mut t = Totals::default();
    for r in &counted {
        match r.kind {
            // Cash and cashback are debits of their whole amount (cashback included).
            TxnKind::Purchase | TxnKind::Cash | TxnKind::Cashback => {
                t.debits += 1;
                t.debits_amount += r.amount;
            }
            TxnKind::Refund => {
                t.credits += 1;
                t.credits_amount += r.amount;
            }
        }
    }
    let mut report =
        SettleReport { reversals_sent, reversals_pending, advices_sent, advices_pending, totals: t, response_code: None, reconciled: false, batch: None };
    if reversals_pending > 0 || advices_pending > 0 {
        return Ok(report);
    }
    ready(journal, link).await?;
    let batch = journal.batch()?;
    report.batch = Some(batch.to_de60());
    let stan = journal.next_stan()?;
    let de7 = transmission_date_time();
    let mut m = Message::new(Mti::RECONCILIATION_REQUEST);
    m.set_str(field::TRANSMISSION_DATE_TIME, &de7)
        .set_str(field::STAN, &format!("{stan:06}"))
        .set_str(field::TERMINAL_ID, &id.terminal_id)
        .set_str(field::MERCHANT_ID, &id.merchant_id)
        .set_str(field::CURRENCY_CODE, &id.currency)
        .set_str(field::CREDITS_NUMBER, &format!("{:010}", t.credits))
        .set_str(field::DEBITS_NUMBER, &format!("{:010}", t.debits))
        .set_str(field::CREDITS_AMOUNT, &format!("{:016}", t.credits_amount))
        .set_str(field::DEBITS_AMOUNT, &format!("{:016}", t.debits_amount))
        .set_str(field::RESERVED_PRIVATE_60, &batch.to_de60());
    // The same 0500 (same batch, STAN and totals) is asked again when its answer is lost: the
    // acquirer answers a repeat for a batch it already closed as it did the first time.
    let mut attempt = 0;
    let ans = loop {
        attempt += 1;
        match link.exchange(&m).await {
            Ok(a) => break a,
            Err(e) if attempt < RECONCILE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "no answer to the reconciliation: asking again");
                let _ = link.ready().await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let rc = ans.response_code;
    report.reconciled = rc.is_approved();
    report.response_code = Some(rc.code().to_string());
    if report.reconciled {
        for mut r in counted {
            journal.advance(&mut r, TxnEvent::Settled, |_| {})?;
        }
        journal.close_batch(batch)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advised(code: Option<&str>) -> TxnRecord {
        let v = serde_json::json!({
            "id": 1, "kind": "PURCHASE", "state": "ADVISED", "history": [], "amount": 1000, "currency": "0156",
            "reversal_attempts": 0, "response_code": code,
        });
        serde_json::from_value(v).unwrap()
    }

    /// The 0500 counts an advice only when the acquirer accepted (posted) it.
    #[test]
    fn an_advice_counts_in_the_batch_only_when_the_acquirer_accepted_it() {
        assert!(counts(&advised(Some("00"))));
        for refused in [Some("14"), Some("62"), Some("82"), Some("30"), Some("XX"), None] {
            assert!(!counts(&advised(refused)), "{refused:?}");
        }
        let mut pending = advised(Some("00"));
        pending.state = TxnState::AdvicePending;
        assert!(!counts(&pending));
    }

    #[test]
    fn only_codes_that_mean_not_processed_keep_an_advice_owed() {
        let kept: Vec<_> = ResponseCode::all().filter(|rc| rc.is_not_processed()).map(ResponseCode::code).collect();
        assert_eq!(kept, ["63", "91", "96"]);
    }
}
