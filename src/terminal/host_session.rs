//! The host session, sans-IO (the shape of rustls / quinn-proto): connection events, received
//! frames, requests and the clock go in; messages to send and results come out. The driver
//! (`crate::host::HostLink`) only moves bytes over TCP and keeps time.
//!
//! Rules (docs/host.md):
//! - one connection, one request outstanding at a time;
//! - every new connection starts with a sign-on (0800, DE 70 = 001); requests wait until its
//!   answer; the 0810's DE 60 says where the acquirer has the terminal (last STAN, open batch);
//! - an idle connection is kept alive with an echo (0800, DE 70 = 301);
//! - every answer is checked against its request ([`answer::check`]); a wrong, unreadable or
//!   missing answer fails the request, and the connection is dropped so that a late answer can
//!   never be read as the next request's.

use crate::terminal::answer::{self, Answer, AnswerFault};
use host_contract::{network, SignOnPosition};
use iso8583::{field, Message, Mti};

/// What comes in.
#[derive(Debug)]
pub enum Input {
    /// The driver opened a new connection at `now_ms`.
    Connected { now_ms: u64 },
    /// The connection closed or failed.
    Disconnected,
    /// A frame arrived at `now_ms`: the message, or why it could not be read.
    Received { msg: Result<Message, String>, now_ms: u64 },
    /// The caller wants `req` answered.
    Submit { req: Message, now_ms: u64 },
    /// Time passes.
    Tick { now_ms: u64 },
}

/// What the driver must do.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Open a connection (there is none, and something waits to be sent).
    Connect,
    /// Write this message.
    Send(Message),
    /// Close the connection.
    Close,
    /// The sign-on was answered: where the acquirer has the terminal (`None`: the acquirer
    /// gave no position).
    SignedOn(Option<SignOnPosition>),
    /// The submitted request's result.
    Done(Result<Answer, Failure>),
}

/// Why a submitted request has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("host did not answer within {0} ms")]
    Timeout(u64),
    #[error("host closed the connection")]
    Closed,
    #[error("unreadable host answer: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Rejected(#[from] AnswerFault),
    #[error("sign-on refused: {0}")]
    SignOnRefused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    SignOn,
    Echo,
    Request,
}

#[derive(Debug)]
struct Outstanding {
    msg: Message,
    purpose: Purpose,
    sent_ms: u64,
}

/// The session state. The STANs of its own 0800s and DE 7 come from outside (inputs), so the
/// session stays deterministic.
pub struct Session {
    terminal_id: String,
    timeout_ms: u64,
    echo_after_ms: u64,
    connected: bool,
    signed_on: bool,
    outstanding: Option<Outstanding>,
    /// A request waiting for the sign-on.
    queued: Option<Message>,
    last_activity_ms: u64,
    next_stan: Box<dyn FnMut() -> u32 + Send>,
    transmitted: Box<dyn FnMut() -> String + Send>,
    /// The sign-on asks for working keys (DE 63 = K1, issue 12): the driver MACs it and reads
    /// the keys of its answer.
    keyed: bool,
}

impl Session {
    /// Sign-ons ask for working keys ([`host_contract::link::KEYS_REQUEST`] in DE 63).
    pub fn set_keyed(&mut self, keyed: bool) {
        self.keyed = keyed;
    }

    /// `next_stan` numbers the session's own 0800s (the journal's counter); `transmitted` gives
    /// DE 7 (MMDDhhmmss UTC). Both are inputs so the session stays deterministic.
    pub fn new(
        terminal_id: &str,
        timeout_ms: u64,
        echo_after_ms: u64,
        next_stan: Box<dyn FnMut() -> u32 + Send>,
        transmitted: Box<dyn FnMut() -> String + Send>,
    ) -> Session {
        Session {
            terminal_id: terminal_id.into(),
            timeout_ms,
            echo_after_ms,
            connected: false,
            signed_on: false,
            outstanding: None,
            queued: None,
            last_activity_ms: 0,
            next_stan,
            transmitted,
            keyed: false,
        }
    }

    pub fn is_signed_on(&self) -> bool {
        self.signed_on
    }

    fn network(&mut self, code: &str) -> Message {
        let mut m = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
        let stan = (self.next_stan)();
        let de7 = (self.transmitted)();
        m.set_str(field::TRANSMISSION_DATE_TIME, &de7)
            .set_str(field::STAN, &format!("{stan:06}"))
            .set_str(field::TERMINAL_ID, &self.terminal_id)
            .set_str(field::NETWORK_MANAGEMENT_CODE, code);
        m
    }

    fn send(&mut self, msg: Message, purpose: Purpose, now_ms: u64, out: &mut Vec<Output>) {
        self.outstanding = Some(Outstanding { msg: msg.clone(), purpose, sent_ms: now_ms });
        self.last_activity_ms = now_ms;
        out.push(Output::Send(msg));
    }

    /// Drops the connection and fails whatever waited.
    fn fail(&mut self, why: Failure, out: &mut Vec<Output>) {
        let waiting_request = matches!(self.outstanding.as_ref().map(|o| o.purpose), Some(Purpose::Request | Purpose::SignOn)) || self.queued.is_some();
        self.outstanding = None;
        self.queued = None;
        if self.connected {
            out.push(Output::Close);
        }
        self.connected = false;
        self.signed_on = false;
        if waiting_request {
            out.push(Output::Done(Err(why)));
        }
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Submit { req, now_ms } => {
                if self.outstanding.as_ref().is_some_and(|o| o.purpose == Purpose::Echo) && self.queued.is_none() {
                    // An echo is on the wire: the request follows its answer.
                    self.queued = Some(req);
                } else if self.outstanding.is_some() || self.queued.is_some() {
                    // One request at a time: the driver serialises callers, so this is a bug
                    // in the caller, answered as a failure rather than a second message.
                    out.push(Output::Done(Err(Failure::Unreadable("a request is already outstanding".into()))));
                } else if !self.connected {
                    self.queued = Some(req);
                    out.push(Output::Connect);
                } else if !self.signed_on {
                    self.queued = Some(req);
                } else {
                    self.send(req, Purpose::Request, now_ms, &mut out);
                }
            }
            Input::Connected { now_ms } => {
                self.connected = true;
                self.signed_on = false;
                let mut m = self.network(network::SIGN_ON);
                if self.keyed {
                    m.set_str(field::RESERVED_PRIVATE_63, host_contract::link::KEYS_REQUEST);
                }
                self.send(m, Purpose::SignOn, now_ms, &mut out);
            }
            Input::Disconnected => self.fail(Failure::Closed, &mut out),
            Input::Received { msg: Err(e), .. } => self.fail(Failure::Unreadable(e), &mut out),
            Input::Received { msg: Ok(msg), now_ms } => {
                self.last_activity_ms = now_ms;
                let Some(o) = self.outstanding.take() else {
                    // Nothing was asked: an unsolicited frame is not trusted; start clean.
                    self.fail(Failure::Unreadable(format!("unsolicited {}", msg.mti)), &mut out);
                    return out;
                };
                let checked = answer::check(&o.msg, &msg);
                match (o.purpose, checked) {
                    (Purpose::Request, Ok(a)) => out.push(Output::Done(Ok(a))),
                    (Purpose::Request, Err(f)) => {
                        self.outstanding = Some(o);
                        self.fail(Failure::Rejected(f), &mut out);
                    }
                    (Purpose::SignOn, Ok(a)) if a.response_code.is_approved() => {
                        self.signed_on = true;
                        let pos = msg.get_str(field::RESERVED_PRIVATE_60).and_then(SignOnPosition::parse_de60);
                        out.push(Output::SignedOn(pos));
                        if let Some(req) = self.queued.take() {
                            self.send(req, Purpose::Request, now_ms, &mut out);
                        }
                    }
                    (Purpose::SignOn, Ok(a)) => self.fail(Failure::SignOnRefused(format!("DE 39 {}", a.response_code)), &mut out),
                    (Purpose::SignOn, Err(f)) => self.fail(Failure::SignOnRefused(f.to_string()), &mut out),
                    (Purpose::Echo, Ok(a)) if a.response_code.is_approved() => {
                        if let Some(req) = self.queued.take() {
                            self.send(req, Purpose::Request, now_ms, &mut out);
                        }
                    }
                    (Purpose::Echo, _) => self.fail(Failure::Closed, &mut out),
                }
            }
            Input::Tick { now_ms } => match &self.outstanding {
                Some(o) if now_ms.saturating_sub(o.sent_ms) >= self.timeout_ms => {
                    let t = self.timeout_ms;
                    self.fail(Failure::Timeout(t), &mut out);
                }
                None if self.connected && self.signed_on && self.echo_after_ms > 0 && now_ms.saturating_sub(self.last_activity_ms) >= self.echo_after_ms => {
                    let m = self.network(network::ECHO);
                    self.send(m, Purpose::Echo, now_ms, &mut out);
                }
                _ => {}
            },
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_contract::BatchNumber;

    fn session() -> Session {
        let mut n = 100;
        Session::new(
            "SHF00001",
            1000,
            30_000,
            Box::new(move || {
                n += 1;
                n
            }),
            Box::new(|| "1204180000".into()),
        )
    }

    fn request(stan: &str) -> Message {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_str(field::AMOUNT, "000000001000").set_str(field::STAN, stan).set_str(field::TERMINAL_ID, "SHF00001").set_str(field::CURRENCY_CODE, "156");
        m
    }

    /// The honest answer to `req` with `rc`.
    fn answer(req: &Message, rc: &str) -> Message {
        let mut r = Message::new(host_contract::response_mti(req.mti).unwrap());
        for f in [field::STAN, field::TERMINAL_ID, field::AMOUNT, field::CURRENCY_CODE, field::NETWORK_MANAGEMENT_CODE] {
            if let Some(v) = req.get(f) {
                r.set(f, v.to_vec());
            }
        }
        r.set_str(field::RESPONSE_CODE, rc);
        r
    }

    fn sent(out: &[Output]) -> Message {
        out.iter()
            .find_map(|o| match o {
                Output::Send(m) => Some(m.clone()),
                _ => None,
            })
            .expect("a message to send")
    }

    /// Submit → connect → sign-on answered with a position → the request goes out.
    fn signed_on(s: &mut Session, req: &Message) -> Message {
        assert_eq!(s.handle(Input::Submit { req: req.clone(), now_ms: 0 }), vec![Output::Connect]);
        let out = s.handle(Input::Connected { now_ms: 0 });
        let sign_on = sent(&out);
        assert_eq!((sign_on.mti, sign_on.get_str(field::NETWORK_MANAGEMENT_CODE)), (Mti::NETWORK_MANAGEMENT_REQUEST, Some("001")));
        let mut ans = answer(&sign_on, "00");
        ans.set_str(field::RESERVED_PRIVATE_60, "000057000003");
        let out = s.handle(Input::Received { msg: Ok(ans), now_ms: 5 });
        assert_eq!(out[0], Output::SignedOn(Some(SignOnPosition { last_stan: 57, batch: BatchNumber::new(3).unwrap() })));
        sent(&out)
    }

    #[test]
    fn a_request_waits_for_the_sign_on_then_its_checked_answer_is_delivered() {
        let mut s = session();
        let req = request("000058");
        assert_eq!(signed_on(&mut s, &req), req);
        let out = s.handle(Input::Received { msg: Ok(answer(&req, "00")), now_ms: 10 });
        assert!(matches!(&out[..], [Output::Done(Ok(a))] if a.response_code.is_approved()), "{out:?}");
        // The connection stays: the next request goes out at once.
        let next = request("000059");
        assert_eq!(s.handle(Input::Submit { req: next.clone(), now_ms: 20 }), vec![Output::Send(next)]);
    }

    #[test]
    fn a_refused_sign_on_fails_the_request_without_sending_it() {
        let mut s = session();
        s.handle(Input::Submit { req: request("000001"), now_ms: 0 });
        let sign_on = sent(&s.handle(Input::Connected { now_ms: 0 }));
        let out = s.handle(Input::Received { msg: Ok(answer(&sign_on, "96")), now_ms: 1 });
        assert!(matches!(&out[..], [Output::Close, Output::Done(Err(Failure::SignOnRefused(_)))]), "{out:?}");
        assert!(!s.is_signed_on());
    }

    #[test]
    fn a_sign_on_answer_without_position_is_accepted() {
        let mut s = session();
        s.handle(Input::Submit { req: request("000001"), now_ms: 0 });
        let sign_on = sent(&s.handle(Input::Connected { now_ms: 0 }));
        let out = s.handle(Input::Received { msg: Ok(answer(&sign_on, "00")), now_ms: 1 });
        assert_eq!(out[0], Output::SignedOn(None));
    }

    #[test]
    fn a_foreign_answer_fails_the_request_and_drops_the_connection() {
        let mut s = session();
        let req = request("000058");
        signed_on(&mut s, &req);
        let mut wrong = answer(&req, "00");
        wrong.set_str(field::STAN, "000059");
        let out = s.handle(Input::Received { msg: Ok(wrong), now_ms: 10 });
        assert!(matches!(&out[..], [Output::Close, Output::Done(Err(Failure::Rejected(AnswerFault::Mismatch { .. })))]), "{out:?}");
        // Next time it starts over with a new connection and sign-on.
        assert_eq!(s.handle(Input::Submit { req: request("000060"), now_ms: 20 }), vec![Output::Connect]);
    }

    #[test]
    fn no_answer_in_time_times_out() {
        let mut s = session();
        let req = request("000058");
        signed_on(&mut s, &req);
        assert!(s.handle(Input::Tick { now_ms: 500 }).is_empty());
        let out = s.handle(Input::Tick { now_ms: 1005 });
        assert!(matches!(&out[..], [Output::Close, Output::Done(Err(Failure::Timeout(1000)))]), "{out:?}");
    }

    #[test]
    fn closed_or_unreadable_while_waiting_fails_the_request() {
        for input in [Input::Disconnected, Input::Received { msg: Err("garbage".into()), now_ms: 9 }] {
            let mut s = session();
            signed_on(&mut s, &request("000058"));
            let out = s.handle(input);
            assert!(matches!(&out[..], [Output::Close, Output::Done(Err(Failure::Closed | Failure::Unreadable(_)))]), "{out:?}");
        }
    }

    #[test]
    fn an_idle_connection_is_echoed_and_a_request_waits_behind_the_echo() {
        let mut s = session();
        let req = request("000058");
        signed_on(&mut s, &req);
        s.handle(Input::Received { msg: Ok(answer(&req, "00")), now_ms: 10 });
        assert!(s.handle(Input::Tick { now_ms: 20_000 }).is_empty());
        let echo = sent(&s.handle(Input::Tick { now_ms: 30_010 }));
        assert_eq!(echo.get_str(field::NETWORK_MANAGEMENT_CODE), Some("301"));
        let next = request("000060");
        assert!(s.handle(Input::Submit { req: next.clone(), now_ms: 30_011 }).is_empty(), "queued behind the echo");
        let out = s.handle(Input::Received { msg: Ok(answer(&echo, "00")), now_ms: 30_012 });
        assert_eq!(out, vec![Output::Send(next)]);
    }

    #[test]
    fn an_unsolicited_frame_is_not_trusted() {
        let mut s = session();
        let req = request("000058");
        signed_on(&mut s, &req);
        s.handle(Input::Received { msg: Ok(answer(&req, "00")), now_ms: 10 });
        let out = s.handle(Input::Received { msg: Ok(answer(&req, "00")), now_ms: 11 });
        assert_eq!(out, vec![Output::Close]);
        assert!(!s.is_signed_on());
    }
}
