//! Terminal side of the host link: the thin driver of the sans-IO [`Session`] — TCP connect,
//! 2-byte framed `ascii87` ISO 8583 (docs/host.md) in and out, and the clock. One connection,
//! kept between requests, signed on when it opens; one request outstanding at a time.

use crate::terminal::answer::{Answer, AnswerFault};
use crate::terminal::host_session::{Failure, Input, Output, Session};
use host_contract::SignOnPosition;
use iso8583::{ascii87, Message};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot connect to host {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("host did not answer within {0:?}")]
    Timeout(Duration),
    #[error("host closed the connection")]
    Closed,
    #[error("host link I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot build the request: {0}")]
    Pack(iso8583::Error),
    #[error("unreadable host answer: {0}")]
    Unreadable(String),
    #[error("host answer rejected: {0}")]
    Rejected(AnswerFault),
    #[error("host refused the sign-on: {0}")]
    SignOnRefused(String),
}

impl From<Failure> for HostError {
    fn from(f: Failure) -> HostError {
        match f {
            Failure::Timeout(ms) => HostError::Timeout(Duration::from_millis(ms)),
            Failure::Closed => HostError::Closed,
            Failure::Unreadable(e) => HostError::Unreadable(e),
            Failure::Rejected(a) => HostError::Rejected(a),
            Failure::SignOnRefused(e) => HostError::SignOnRefused(e),
        }
    }
}

impl HostError {
    /// Whether the request may have reached the host (so it must be reversed): everything but a
    /// failure to connect or sign on, or a request that could not be built.
    pub fn may_have_been_sent(&self) -> bool {
        !matches!(self, HostError::Connect(..) | HostError::SignOnRefused(_) | HostError::Pack(_))
    }
}

/// An idle connection is checked with an echo (0800, DE 70 = 301) before it is used again.
const ECHO_AFTER_MS: u64 = 30_000;

/// A connection to the acquirer, opened (and signed on) on demand.
pub struct HostLink {
    pub addr: SocketAddr,
    conn: Option<TcpStream>,
    session: Session,
    epoch: Instant,
    timeout: Duration,
    /// Where the acquirer has the terminal, from the latest sign-on (taken by [`HostLink::take_position`]).
    position: Option<SignOnPosition>,
}

/// Reads one length-prefixed frame.
async fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>, HostError> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(HostError::Closed),
        Err(e) => return Err(e.into()),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await.map_err(|e| if e.kind() == std::io::ErrorKind::UnexpectedEof { HostError::Closed } else { e.into() })?;
    Ok(body)
}

impl HostLink {
    /// `stan` numbers the link's own sign-on and echo messages (the journal's counter);
    /// `transmitted` gives their DE 7.
    pub fn new(
        addr: SocketAddr,
        timeout: Duration,
        terminal_id: &str,
        stan: Box<dyn FnMut() -> u32 + Send>,
        transmitted: Box<dyn FnMut() -> String + Send>,
    ) -> Self {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        HostLink { addr, conn: None, session: Session::new(terminal_id, ms, ECHO_AFTER_MS, stan, transmitted), epoch: Instant::now(), timeout, position: None }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The acquirer's view of this terminal from the latest sign-on, once.
    pub fn take_position(&mut self) -> Option<SignOnPosition> {
        self.position.take()
    }

    /// Connects and signs on if needed, without a request: afterwards [`HostLink::take_position`]
    /// tells where the acquirer has the terminal, before the next STAN is taken.
    pub async fn ready(&mut self) -> Result<(), HostError> {
        if self.session.is_signed_on() && self.conn.is_some() {
            let now_ms = self.now_ms();
            let outs = self.session.handle(Input::Tick { now_ms });
            if outs.is_empty() {
                return Ok(());
            }
            // An echo went out on the idle connection: its answer says whether it still works.
            if self.drive(outs).await.is_ok() && self.session.is_signed_on() && self.conn.is_some() {
                return Ok(());
            }
            tracing::info!("idle host connection did not answer the echo: reconnecting");
        }
        self.conn = None;
        let _ = self.session.handle(Input::Disconnected);
        let outs = self.connect().await?;
        match self.drive(outs).await? {
            Some(Err(e)) => Err(e.into()),
            _ if self.session.is_signed_on() => Ok(()),
            _ => Err(HostError::Closed),
        }
    }

    async fn connect(&mut self) -> Result<Vec<Output>, HostError> {
        let s = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| HostError::Timeout(self.timeout))?
            .map_err(|e| HostError::Connect(self.addr, e))?;
        s.set_nodelay(true)?;
        self.conn = Some(s);
        let now_ms = self.now_ms();
        Ok(self.session.handle(Input::Connected { now_ms }))
    }

    /// Carries out the session's outputs and feeds it what the connection gives, until a
    /// request result (`Some`) or nothing more is waited for (`None`).
    async fn drive(&mut self, mut outs: Vec<Output>) -> Result<Option<Result<Answer, Failure>>, HostError> {
        loop {
            let mut waiting = false;
            for o in std::mem::take(&mut outs) {
                match o {
                    Output::Connect => match self.connect().await {
                        Ok(more) => outs.extend(more),
                        Err(e) => {
                            let _ = self.session.handle(Input::Disconnected);
                            return Err(e);
                        }
                    },
                    Output::Send(m) => {
                        let wire = ascii87().pack_framed(&m).map_err(HostError::Pack)?;
                        let written = match self.conn.as_mut() {
                            Some(c) => c.write_all(&wire).await.map_err(HostError::from),
                            None => Err(HostError::Closed),
                        };
                        if written.is_err() {
                            outs.extend(self.session.handle(Input::Disconnected));
                        } else {
                            waiting = true;
                        }
                    }
                    Output::Close => self.conn = None,
                    Output::SignedOn(p) => {
                        tracing::debug!(position = ?p, "signed on");
                        self.position = p.or(self.position);
                    }
                    Output::Done(r) => return Ok(Some(r)),
                }
            }
            if !outs.is_empty() {
                continue;
            }
            if !waiting {
                return Ok(None);
            }
            // Wait for the answer of what was sent, the session's timeout as the bound.
            let Some(conn) = self.conn.as_mut() else { return Ok(None) };
            let read = tokio::time::timeout(self.timeout, read_frame(conn)).await;
            let now_ms = self.now_ms();
            outs = match read {
                Ok(Ok(body)) => self.session.handle(Input::Received { msg: ascii87().unpack(&body).map_err(|e| e.to_string()), now_ms }),
                Ok(Err(_)) => self.session.handle(Input::Disconnected),
                Err(_) => self.session.handle(Input::Tick { now_ms: now_ms.saturating_add(self.timeout_ms()) }),
            };
        }
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// Sends `req` and returns its answer, checked against it (`answer::check`): anything that is
    /// not the answer to this request is an error, and the connection is dropped.
    pub async fn exchange(&mut self, req: &Message) -> Result<Answer, HostError> {
        let now_ms = self.now_ms();
        let outs = self.session.handle(Input::Submit { req: req.clone(), now_ms });
        match self.drive(outs).await {
            Ok(Some(Ok(a))) => Ok(a),
            Ok(Some(Err(f))) => {
                self.conn = None;
                Err(f.into())
            }
            Ok(None) => {
                self.conn = None;
                Err(HostError::Closed)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}
