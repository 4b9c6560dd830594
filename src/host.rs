//! Terminal side of the host link: the thin driver of the sans-IO [`Session`] — TCP connect,
//! 2-byte framed ISO 8583 (`ascii87`, or `bcd87` with a TPDU; docs/host.md) in and out, and the
//! clock. One connection, kept between requests, signed on when it opens; one request
//! outstanding at a time.
//!
//! Keyed (issue 12, the default): the terminal master key comes from provisioning against the
//! acquirer key pinned in config/host.toml ([`HostLink::provision`], automatic when the key store
//! has none or the acquirer no longer knows it); every sign-on gets fresh working keys; every
//! message out is MAC'd and every answer's MAC is verified before the session sees it — an
//! answer that does not verify is rejected (and the request reversed).

use crate::terminal::answer::{Answer, AnswerFault};
use crate::terminal::host_session::{Failure, Input, Output, Session};
use host_contract::link::{self as keyed, SessionKeys, WorkingKeys};
use host_contract::{network, ResponseCode, SignOnPosition};
use iso8583::{ascii87, field, Message, Mti, Spec};
use shanfu_keys::p256::ecdsa::VerifyingKey;
use shanfu_keys::provision::{AcquirerAnswer, TerminalId, TerminalProvisioning};
use shanfu_keys::{AesKey, Kcv};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    #[error("terminal master key provisioning failed: {0}")]
    Provisioning(String),
    #[error("host link keys: {0}")]
    Keys(String),
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
        !matches!(self, HostError::Connect(..) | HostError::SignOnRefused(_) | HostError::Pack(_) | HostError::Provisioning(_) | HostError::Keys(_))
    }
}

/// An idle connection is checked with an echo (0800, DE 70 = 301) before it is used again.
const ECHO_AFTER_MS: u64 = 30_000;

/// How the link is secured (config/host.toml `mac`).
pub enum LinkSecurity {
    /// `mac = false` for this host: no keys, no MAC (third-party test hosts only); every report
    /// says the link is unauthenticated.
    Unauthenticated,
    /// MAC on every message under keys established with the pinned acquirer key.
    Keyed(Keyed),
}

/// The keyed link's keys.
pub struct Keyed {
    /// The acquirer's P-256 public key, pinned in config/host.toml (`acquirer_key`).
    pinned: VerifyingKey,
    /// Where the terminal master key is kept (0600, in a 0700 key store).
    tmk_path: PathBuf,
    tmk: Option<AesKey>,
    /// Working keys of the current connection's sign-on.
    session: Option<SessionKeys>,
    /// A keyed sign-on is on the wire: its answer carries the working keys.
    signon_pending: bool,
    /// The acquirer answered the sign-on 63: it holds no TMK for this terminal (provision).
    needs_provisioning: bool,
    /// Why the last answer was refused (MAC), for the error the caller sees.
    refused: Option<String>,
}

impl Keyed {
    /// Keys for a terminal whose key store is `keystore` (DATA/keystore), talking to the acquirer
    /// whose public key is `pinned`: the TMK file is named after the terminal id and the key.
    pub fn new(keystore: &Path, terminal_id: &str, pinned: VerifyingKey) -> Keyed {
        use sha2::Digest;
        let fp = hex::encode(&sha2::Sha256::digest(pinned.to_encoded_point(false).as_bytes())[..6]);
        let tid: String = terminal_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let tmk_path = keystore.join(format!("tmk-{tid}-{fp}.key"));
        let tmk = load_key(&tmk_path);
        Keyed { pinned, tmk_path, tmk, session: None, signon_pending: false, needs_provisioning: false, refused: None }
    }
}

/// Reads a TMK file (32 hex digits); anything else is no key (provisioning makes a new one).
/// A file that group or others may read is a key that may have leaked: it is not used, and the
/// next provisioning replaces it with a new owner-only one.
fn load_key(path: &Path) -> Option<AesKey> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "terminal master key readable by others: not used, provisioning a new one");
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let b: [u8; 16] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(AesKey::new(b))
}

/// Writes a TMK file owner-only (0600, directory 0700), atomically.
fn save_key(path: &Path, key: &AesKey) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(hex::encode(key.expose_secret()).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A connection to the acquirer, opened (and signed on) on demand.
pub struct HostLink {
    pub addr: SocketAddr,
    conn: Option<TcpStream>,
    session: Session,
    epoch: Instant,
    timeout: Duration,
    /// Where the acquirer has the terminal, from the latest sign-on (taken by [`HostLink::take_position`]).
    position: Option<SignOnPosition>,
    security: LinkSecurity,
    /// The wire format (`ascii87`, or `bcd87` with a TPDU).
    spec: Spec,
    terminal_id: String,
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
        HostLink {
            addr,
            conn: None,
            session: Session::new(terminal_id, ms, ECHO_AFTER_MS, stan, transmitted),
            epoch: Instant::now(),
            timeout,
            position: None,
            security: LinkSecurity::Unauthenticated,
            spec: ascii87().clone(),
            terminal_id: terminal_id.to_string(),
        }
    }

    /// The link as config/host.toml says: keyed against the pinned acquirer key with the TMK in
    /// `keystore` (DATA/keystore), or unauthenticated for `mac = false`; the wire format.
    pub fn configured(mut self, host: &crate::settings::HostSettings, keystore: &Path) -> Self {
        self.configure(host, keystore);
        self
    }

    /// [`HostLink::configured`] in place.
    pub fn configure(&mut self, host: &crate::settings::HostSettings, keystore: &Path) {
        let security = match host.pinned_key() {
            Ok(k) if host.mac => LinkSecurity::Keyed(Keyed::new(keystore, &self.terminal_id.clone(), k)),
            // Checked when the settings were loaded; unreachable with loaded settings.
            Err(e) if host.mac => {
                tracing::error!(error = %e, "no pinned acquirer key: the link cannot be keyed");
                LinkSecurity::Keyed(Keyed::new(
                    keystore,
                    &self.terminal_id.clone(),
                    shanfu_keys::p256::ecdsa::VerifyingKey::from(shanfu_keys::p256::ecdsa::SigningKey::random(&mut shanfu_keys::rand_core::OsRng)),
                ))
            }
            _ => {
                tracing::warn!("host link configured WITHOUT keys (mac = false): answers are not authenticated");
                LinkSecurity::Unauthenticated
            }
        };
        self.spec = host.spec().unwrap_or_else(|_| ascii87().clone());
        self.session.set_keyed(matches!(security, LinkSecurity::Keyed(_)));
        self.security = security;
    }

    /// The link with this security (a keyed link asks for working keys at every sign-on).
    pub fn with_security(mut self, security: LinkSecurity) -> Self {
        self.session.set_keyed(matches!(security, LinkSecurity::Keyed(_)));
        self.security = security;
        self
    }

    /// The link in this wire format (`ascii87` by default; `bcd87` with a TPDU for hosts that
    /// want it).
    pub fn with_spec(mut self, spec: Spec) -> Self {
        self.spec = spec;
        self
    }

    /// Whether messages are MAC'd (false only for a host configured `mac = false`).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.security, LinkSecurity::Keyed(_))
    }

    /// The KCV of the current connection's MAC key (after a keyed sign-on).
    pub fn session_kcvs(&self) -> Option<(Kcv, Kcv, Kcv)> {
        match &self.security {
            LinkSecurity::Keyed(k) => k.session.as_ref().map(|s| (s.pin.kcv(), s.mac.kcv(), s.data.kcv())),
            LinkSecurity::Unauthenticated => None,
        }
    }

    /// The session PIN key, to make a PIN block (`None`: not signed on with keys).
    pub fn pin_key(&self) -> Option<&shanfu_keys::TdesKey> {
        match &self.security {
            LinkSecurity::Keyed(k) => k.session.as_ref().map(|s| &s.pin),
            LinkSecurity::Unauthenticated => None,
        }
    }

    /// Drops the connection: the next request connects and signs on again (new working keys).
    pub fn disconnect(&mut self) {
        self.conn = None;
        let _ = self.session.handle(Input::Disconnected);
        if let LinkSecurity::Keyed(k) = &mut self.security {
            k.session = None;
        }
    }

    /// Provisions the terminal master key (docs/keys.md): hello (0800, DE 70 = 170), the
    /// acquirer's signed answer checked against the pinned key, confirmation (171); the TMK is
    /// stored only when the acquirer accepted the confirmation. Returns the TMK's check value.
    pub async fn provision(&mut self) -> Result<Kcv, HostError> {
        let LinkSecurity::Keyed(k) = &self.security else {
            return Err(HostError::Provisioning("this host is configured without keys (mac = false)".into()));
        };
        let bad = |why: String| HostError::Provisioning(why);
        let tid = TerminalId::new(&self.terminal_id).map_err(|e| bad(e.to_string()))?;
        let (state, hello) = TerminalProvisioning::start(&mut shanfu_keys::rand_core::OsRng, tid, k.pinned);
        let mut s = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| HostError::Timeout(self.timeout))?
            .map_err(|e| HostError::Connect(self.addr, e))?;
        s.set_nodelay(true)?;
        let ans = self.provisioning_exchange(&mut s, network::PROVISION, &hello.encode()).await?;
        let answer = ans
            .get_str(field::RESERVED_PRIVATE_63)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| AcquirerAnswer::decode(&b).ok())
            .ok_or_else(|| bad("the acquirer's answer carries no readable provisioning answer".into()))?;
        let (tmk, confirm) = state.finish(&answer).map_err(|e| bad(format!("refused the acquirer's answer: {e}")))?;
        self.provisioning_exchange(&mut s, network::PROVISION_CONFIRM, &confirm.encode()).await?;
        let kcv = tmk.kcv();
        let LinkSecurity::Keyed(k) = &mut self.security else { return Err(bad("security changed".into())) };
        save_key(&k.tmk_path, &tmk).map_err(|e| bad(format!("storing the master key in {}: {e}", k.tmk_path.display())))?;
        k.tmk = Some(tmk);
        k.needs_provisioning = false;
        tracing::info!(kcv = %hex::encode_upper(kcv.as_bytes()), "terminal master key provisioned");
        Ok(kcv)
    }

    /// One provisioning 0800 → its 0810 (DE 39 00 and the same DE 70), on `s`.
    async fn provisioning_exchange(&mut self, s: &mut TcpStream, code: &str, payload: &[u8]) -> Result<Message, HostError> {
        let (spec, timeout) = (self.spec.clone(), self.timeout);
        provisioning_exchange(&spec, timeout, &self.terminal_id.clone(), s, code, payload).await
    }
}

/// One provisioning 0800 → its 0810 (DE 39 00 and the same DE 70), on `s`.
async fn provisioning_exchange(spec: &Spec, timeout: Duration, terminal_id: &str, s: &mut TcpStream, code: &str, payload: &[u8]) -> Result<Message, HostError> {
    {
        let mut m = Message::new(Mti::NETWORK_MANAGEMENT_REQUEST);
        m.set_str(field::TRANSMISSION_DATE_TIME, &crate::online::transmission_date_time())
            .set_str(field::STAN, "000000")
            .set_str(field::TERMINAL_ID, terminal_id)
            .set_str(field::NETWORK_MANAGEMENT_CODE, code)
            .set_str(field::RESERVED_PRIVATE_63, &hex::encode_upper(payload));
        let wire = spec.pack_framed(&m).map_err(HostError::Pack)?;
        s.write_all(&wire).await?;
        let body = tokio::time::timeout(timeout, read_frame(s)).await.map_err(|_| HostError::Timeout(timeout))??;
        let ans = spec.unpack(&body).map_err(|e| HostError::Unreadable(e.to_string()))?;
        if ans.mti != Mti::NETWORK_MANAGEMENT_RESPONSE || ans.get_str(field::NETWORK_MANAGEMENT_CODE) != Some(code) {
            return Err(HostError::Provisioning(format!("answer {} is not the answer to provisioning step {code}", ans.mti)));
        }
        match ans.get_str(field::RESPONSE_CODE) {
            Some("00") => Ok(ans),
            other => Err(HostError::Provisioning(format!("the acquirer refused step {code} with DE 39 {}", other.unwrap_or("(none)")))),
        }
    }
}

impl HostLink {
    /// Seals a message for the wire (MAC'd when keyed).
    fn seal(&mut self, m: &Message) -> Result<Vec<u8>, HostError> {
        let body = match &mut self.security {
            LinkSecurity::Unauthenticated => self.spec.pack(m).map_err(HostError::Pack)?,
            LinkSecurity::Keyed(k) => {
                let signon = m.mti == Mti::NETWORK_MANAGEMENT_REQUEST && m.get_str(field::NETWORK_MANAGEMENT_CODE) == Some(network::SIGN_ON);
                let key = if signon {
                    k.session = None;
                    k.signon_pending = true;
                    let tmk = k.tmk.as_ref().ok_or_else(|| HostError::Keys("no terminal master key (provision first)".into()))?;
                    keyed::signon_mac_key(tmk)
                } else {
                    let s = k.session.as_ref().ok_or_else(|| HostError::Keys("no working keys (not signed on)".into()))?;
                    AesKey::new(*s.mac.expose_secret())
                };
                keyed::pack_with_mac(&self.spec, m, &key).map_err(|e| HostError::Keys(e.to_string()))?
            }
        };
        self.spec.try_frame(&body).map_err(HostError::Pack)
    }

    /// Opens a received body: unpacked, and when keyed its MAC verified (a sign-on answer's under
    /// the working keys it delivers, which become the connection's).
    fn open(&mut self, body: &[u8]) -> Result<Message, String> {
        let m = self.spec.unpack(body).map_err(|e| e.to_string())?;
        let LinkSecurity::Keyed(k) = &mut self.security else { return Ok(m) };
        if std::mem::take(&mut k.signon_pending) {
            if m.get_str(field::RESPONSE_CODE) == Some(ResponseCode::SecurityViolation.code()) {
                k.needs_provisioning = true;
                return Err("the acquirer refused the keyed sign-on (63): it holds no master key for this terminal".into());
            }
            let tmk = k.tmk.as_ref().ok_or("no terminal master key")?;
            let keys = m
                .get_str(field::RESERVED_PRIVATE_63)
                .ok_or_else(|| "the sign-on answer carries no working keys".to_string())
                .and_then(|d| WorkingKeys::decode(d).map_err(|e| e.to_string()))
                .and_then(|w| w.unwrap(tmk).map_err(|e| format!("working keys refused: {e}")))?;
            keyed::verify(&self.spec, body, &m, &keys.mac).map_err(|e| format!("sign-on answer: {e}"))?;
            tracing::debug!(keys = ?keys, "signed on with new working keys");
            k.session = Some(keys);
            return Ok(m);
        }
        let Some(s) = &k.session else { return Err("an answer before the keyed sign-on".into()) };
        match keyed::verify(&self.spec, body, &m, &s.mac) {
            Ok(()) => Ok(m),
            Err(e) => {
                let why = format!("answer {}: {e}", m.mti);
                k.refused = Some(why.clone());
                Err(why)
            }
        }
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
        if let LinkSecurity::Keyed(k) = &self.security {
            if k.tmk.is_none() {
                self.provision().await?;
            }
        }
        match self.ready_once().await {
            Err(e) if matches!(&self.security, LinkSecurity::Keyed(k) if k.needs_provisioning) => {
                tracing::warn!(error = %e, "the acquirer does not know this terminal's master key: provisioning again");
                self.provision().await?;
                self.ready_once().await
            }
            r => r,
        }
    }

    async fn ready_once(&mut self) -> Result<(), HostError> {
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
                        let wire = self.seal(&m)?;
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
                Ok(Ok(body)) => {
                    let msg = self.open(&body);
                    self.session.handle(Input::Received { msg, now_ms })
                }
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
        // A keyed link that never signed on (a caller that did not call `ready`): provisioning
        // and the keyed sign-on come first.
        if matches!(&self.security, LinkSecurity::Keyed(k) if k.tmk.is_none() || k.needs_provisioning) || (self.conn.is_none() && self.is_authenticated()) {
            self.ready().await?;
        }
        let now_ms = self.now_ms();
        let outs = self.session.handle(Input::Submit { req: req.clone(), now_ms });
        match self.drive(outs).await {
            Ok(Some(Ok(a))) => Ok(a),
            Ok(Some(Err(f))) => {
                self.disconnect();
                // An answer whose MAC does not verify is a rejected answer, not an unreadable one.
                let refused = match &mut self.security {
                    LinkSecurity::Keyed(k) => k.refused.take(),
                    LinkSecurity::Unauthenticated => None,
                };
                match (refused, f) {
                    (Some(why), Failure::Unreadable(_)) => Err(HostError::Rejected(AnswerFault::Unauthenticated(why))),
                    (_, f) => Err(f.into()),
                }
            }
            Ok(None) => {
                self.disconnect();
                Err(HostError::Closed)
            }
            Err(e) => {
                self.disconnect();
                Err(e)
            }
        }
    }
}
