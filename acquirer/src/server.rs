//! TCP front ends: the ISO 8583 port (one task per connection, many requests per connection,
//! answers written as they become ready, fault injection) and the admin line port.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use iso8583::ascii87;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::limits::{Limits, Place, Registry};
use crate::{Acquirer, AcquirerError, Faults, Seed};

/// File in the database directory holding the running server's admin address (`ip:port`).
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// File in the database directory holding the admin port's token (created 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The admin port's token: 32 random bytes as hex in `db_dir/admin.token`, created owner-only
/// (0600) on first use. Whoever can read that file may manage tokens, accounts, the deny list
/// and faults; nobody else can (issue 12 §7).
pub fn admin_token(db_dir: &Path) -> Result<String, AcquirerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = db_dir.join(ADMIN_TOKEN_FILE);
    let read = |path: &Path| -> Result<Option<String>, AcquirerError> {
        match std::fs::read_to_string(path) {
            Ok(t) if t.trim().len() == 64 && t.trim().bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(t.trim().to_string())),
            Ok(_) => Err(AcquirerError::Admin(format!("{} does not hold an admin token (64 hex digits)", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AcquirerError::io(format!("reading {}", path.display()), e)),
        }
    };
    if let Some(t) = read(&path)? {
        return Ok(t);
    }
    let b: [u8; 32] = crate::at_rest::random().map_err(|e| AcquirerError::io("drawing the admin token", e))?;
    let token = hex::encode(b);
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut f) => {
            f.write_all(token.as_bytes()).map_err(|e| AcquirerError::io(format!("writing {}", path.display()), e))?;
            Ok(token)
        }
        // Another process made it first: theirs is the token.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(&path)?.ok_or_else(|| AcquirerError::Admin(format!("{} vanished", path.display()))),
        Err(e) => Err(AcquirerError::io(format!("creating {}", path.display()), e)),
    }
}

/// Equal in time independent of where the inputs differ (the token must not leak byte by byte).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first word of every admin command.
fn is_admin_command(line: &str) -> bool {
    matches!(line.split_whitespace().next(), Some("token" | "account" | "deny" | "faults"))
}

/// Longest admin line accepted.
const MAX_ADMIN_LINE: u64 = 1024;
/// Answers waiting to be written on one connection before reading pauses.
const OUTBOX: usize = 256;
/// The first and the longest wait after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Admin connections held at most (an operator's few, not a crowd).
const ADMIN_CONNECTIONS: usize = 16;

/// What happens to the answer of request number `n` (1-based, server-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Drop,
    Close,
    Garble,
}

pub(crate) fn fault_for(f: &Faults, n: u64) -> Fault {
    let hit = |every: Option<u64>| every.is_some_and(|k| k > 0 && n % k == 0);
    if hit(f.drop_every) {
        Fault::Drop
    } else if hit(f.close_every) {
        Fault::Close
    } else if hit(f.garble_every) {
        Fault::Garble
    } else {
        Fault::None
    }
}

/// A framed answer of random-looking bytes that is not ISO 8583 (the first byte is never an
/// ASCII digit, so not even an MTI can be read).
pub(crate) fn garbage(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    };
    let len = 24 + usize::from(next() % 40);
    let mut body: Vec<u8> = (0..len).map(|_| next()).collect();
    body[0] = 0xF0 | (body[0] & 0x0F);
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Accepts connections for ever: each gets a place in `registry` (see [`crate::limits`]) or, when
/// every place is busy, is closed at once. Accept errors are never fatal: out of descriptors,
/// the idlest connection makes room; any failure waits (10 ms doubling to 1 s) and goes on.
async fn accept_loop<F, Fut>(listener: TcpListener, what: &'static str, registry: Arc<Registry>, mut on_conn: F)
where
    F: FnMut(TcpStream, SocketAddr, Place) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                match registry.admit() {
                    Some(place) => {
                        tokio::spawn(on_conn(sock, peer, place));
                    }
                    None => {
                        tracing::warn!(%peer, port = what, connections = registry.len(), "connection cap reached and every connection busy: refused");
                        drop(sock);
                    }
                }
            }
            Err(e) => {
                let out_of_descriptors = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                let made_room = out_of_descriptors && registry.make_room();
                tracing::warn!(error = %e, port = what, made_room, retry_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Serves ISO 8583 (`ascii87`, 2-byte length frames) on `listener`: one task per connection,
/// any number of requests per connection, each answer written as soon as it is ready (after
/// the configured delay), fault injection of [`Faults`]; connections held within `limits`.
/// Runs for ever.
pub async fn serve(listener: TcpListener, state: Arc<Acquirer>, limits: Limits) {
    let registry = Registry::new(crate::limits::effective_cap(limits.max_connections));
    accept_loop(listener, "iso8583", registry, move |sock, peer, place| connection(sock, peer, state.clone(), place, limits)).await
}

async fn connection(sock: TcpStream, peer: SocketAddr, state: Arc<Acquirer>, place: Place, limits: Limits) {
    let _ = sock.set_nodelay(true);
    tracing::debug!(%peer, "terminal connected");
    let (mut rd, mut wr) = sock.into_split();
    // Each queued answer keeps the connection busy (not evicted) until it is written.
    let (tx, mut rx) = mpsc::channel::<(Vec<u8>, crate::limits::Busy)>(OUTBOX);
    let write_timeout = limits.idle_timeout;
    // The connection keeps its place until its socket is closed: the writer holds it too.
    let place = Arc::new(place);
    let writer_place = place.clone();
    let writer = tokio::spawn(async move {
        let _place = writer_place;
        while let Some((frame, _busy)) = rx.recv().await {
            // A peer that does not read its answers is dropped, not waited on for ever.
            match tokio::time::timeout(write_timeout, wr.write_all(&frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "writing an answer failed");
                    break;
                }
                Err(_) => {
                    tracing::debug!("the terminal does not read its answers: connection closed");
                    break;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    let faults = state.faults();
    let delay = Duration::from_millis(faults.delay_ms);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    // The connection's keys (issue 12): set by its keyed sign-on, used for every later message.
    let mut link = crate::LinkSession::default();
    // When the first byte of a frame not yet complete arrived.
    let mut frame_started: Option<tokio::time::Instant> = None;
    'conn: loop {
        while let Some((body, rest)) = ascii87().split_frame(&buf) {
            let body = body.to_vec();
            let consumed = buf.len() - rest.len();
            buf.drain(..consumed);
            frame_started = (!buf.is_empty()).then(tokio::time::Instant::now);
            let busy = place.busy();
            // Fault injection counts and hits transaction messages only: network management
            // (0800 sign-on / echo) is always answered at once, so a test's "every Nth request"
            // lands on the 0200 / 0400 / 0500 it means.
            let network = crate::link::is_network(&body);
            let n = if network { 0 } else { state.requests.fetch_add(1, Ordering::Relaxed).wrapping_add(1) };
            let st = state.clone();
            // A one-shot fault set over the admin port (`faults …`) hits this request; a forced
            // response code goes in before the answer is MAC'd.
            let shot = if network { None } else { state.take_next_fault() };
            // Handled on this thread (decisions are CPU and in-memory work); what it wrote is
            // made durable by group commit while this task waits, and the answer goes out
            // only then — never an answer whose record could be lost (issue 13).
            link.override_code = shot.as_ref().and_then(|s| s.code.clone());
            let (answer, ticket) = st.deferring(|| st.handle_link(&mut link, &body));
            let answer = match ticket {
                None => answer,
                Some(t) => match st.durable(t).await {
                    Ok(()) => answer,
                    Err(e) => {
                        tracing::error!(error = %e, "records not made durable: not answered");
                        None
                    }
                },
            };
            let fault = match &shot {
                Some(s) if s.drop => Fault::Drop,
                Some(s) if s.close => Fault::Close,
                _ if network => Fault::None,
                _ => fault_for(&faults, n),
            };
            let delay = shot.as_ref().and_then(|s| s.delay_ms).map(Duration::from_millis).unwrap_or(delay);
            let frame = match fault {
                Fault::Drop => {
                    tracing::info!(request = n, "fault injection: answer dropped");
                    None
                }
                Fault::Close => {
                    tracing::info!(request = n, "fault injection: connection closed instead of answering");
                    writer.abort();
                    break 'conn;
                }
                Fault::Garble => {
                    tracing::info!(request = n, "fault injection: garbage answer");
                    Some(garbage(n))
                }
                Fault::None => answer.and_then(|b| ascii87().try_frame(&b).ok()),
            };
            let Some(frame) = frame else { continue };
            if delay.is_zero() || network {
                if tx.send((frame, busy)).await.is_err() {
                    break 'conn;
                }
            } else {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send((frame, busy)).await;
                });
            }
        }
        // Nothing for `idle_timeout`, or a frame begun and not finished within
        // `frame_timeout`: closed. So is a connection evicted to make room.
        let deadline = match frame_started {
            Some(t) => t + limits.frame_timeout,
            None => tokio::time::Instant::now() + limits.idle_timeout,
        };
        let read = tokio::select! {
            () = place.slot.evicted() => {
                tracing::debug!(%peer, "idle connection closed to make room for a new one");
                break;
            }
            r = tokio::time::timeout_at(deadline, rd.read(&mut chunk)) => r,
        };
        match read {
            Ok(Ok(0)) => break,
            Ok(Ok(k)) => {
                place.touch();
                if buf.is_empty() {
                    frame_started = Some(tokio::time::Instant::now());
                }
                buf.extend_from_slice(&chunk[..k]);
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "terminal connection read failed");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, partial = frame_started.is_some(), "connection timed out: closed");
                break;
            }
        }
    }
    // Answers still delayed are written by the writer before it closes (it ends when the last
    // sender is gone), unless the connection was closed on purpose.
    drop(tx);
    tracing::debug!(%peer, "terminal connection ended");
}

/// Serves the admin line protocol on `listener`: first `auth TOKEN\n` (the content of
/// `admin.token`) → `ok\n`, then `token suspend|resume|delete TOKEN\n` (also `token status
/// TOKEN`, `account balance PAN`, `deny …`, `faults …`) → `ok\n` / `ok <value>\n` /
/// `error: ...\n`. A connection without the token, or a line that is not an admin command,
/// gets an error line and is closed.
pub async fn serve_admin(listener: TcpListener, state: Arc<Acquirer>, token: String, limits: Limits) {
    let token = Arc::new(token);
    let registry = Registry::new(crate::limits::effective_cap(ADMIN_CONNECTIONS.min(limits.max_connections)));
    accept_loop(listener, "admin", registry, move |sock, peer, place| {
        let (state, token) = (state.clone(), token.clone());
        async move {
            // An admin connection lasts at most the idle timeout (an operator's command or few).
            let _ = tokio::time::timeout(limits.idle_timeout, admin_connection(sock, peer, state, token)).await;
            drop(place);
        }
    })
    .await
}

async fn admin_connection(sock: TcpStream, peer: SocketAddr, state: Arc<Acquirer>, token: Arc<String>) {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    let mut authenticated = false;
    loop {
        line.clear();
        match (&mut rd).take(MAX_ADMIN_LINE + 1).read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "admin read failed");
                break;
            }
        }
        if line.len() as u64 > MAX_ADMIN_LINE {
            let _ = wr.write_all(b"error: line too long\n").await;
            break;
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if text.is_empty() {
            continue;
        }
        if !authenticated {
            match text.strip_prefix("auth ") {
                Some(t) if ct_eq(t.trim().as_bytes(), token.as_bytes()) => {
                    authenticated = true;
                    if wr.write_all(b"ok\n").await.is_err() {
                        break;
                    }
                    continue;
                }
                _ => {
                    tracing::warn!(%peer, "admin connection without the admin token: closed");
                    let _ = wr.write_all(b"error: not authenticated\n").await;
                    break;
                }
            }
        }
        if !is_admin_command(&text) {
            tracing::warn!(%peer, "admin connection sent a line that is not an admin command: closed");
            let _ = wr.write_all(b"error: not an admin command\n").await;
            break;
        }
        let st = state.clone();
        let answer = tokio::task::spawn_blocking(move || st.admin_line(&text)).await.unwrap_or_else(|e| format!("error: internal failure: {e}"));
        if wr.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
            break;
        }
    }
}

/// Applies one admin line (`token suspend|resume|delete TOKEN`) to the acquirer database in
/// `db_dir`: directly when no process holds the database (creating and seeding it if needed),
/// else through the admin port of the running server (address in `db_dir/admin.addr`).
/// Returns the answer line without its newline: `ok...` or `error: ...` (a refused command is
/// an answer, not an `Err`); `Err` only when neither path works. Blocking.
pub fn admin_command(db_dir: &Path, line: &str) -> Result<String, AcquirerError> {
    let line = line.trim();
    if line.contains(['\n', '\r']) {
        return Err(AcquirerError::Admin("one line only".into()));
    }
    let seed = Seed::builtin()?;
    // A database locked with no server answering is a process (or sled's flusher thread) that is
    // just letting go of it: retry for a moment before giving up.
    let mut attempts = 0;
    loop {
        match Acquirer::open(db_dir, &seed, Faults::default()) {
            Ok(acq) => return Ok(acq.admin_line(line)),
            Err(AcquirerError::Locked(_)) => match remote_admin(db_dir, line) {
                Ok(answer) => return Ok(answer),
                Err(e) if attempts >= 20 => return Err(e),
                Err(_) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            },
            Err(e) => return Err(e),
        }
    }
}

fn remote_admin(db_dir: &Path, line: &str) -> Result<String, AcquirerError> {
    use std::io::{BufRead, Read, Write};
    let path = db_dir.join(ADMIN_ADDR_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| AcquirerError::io(format!("the database is in use but {} cannot be read", path.display()), e))?;
    let addr: SocketAddr = text.trim().parse().map_err(|_| AcquirerError::Admin(format!("{} does not hold an address", path.display())))?;
    let ctx = |what: &str| format!("{what} the acquirer admin port {addr}");
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| AcquirerError::io(ctx("connecting to"), e))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| AcquirerError::io(ctx("configuring"), e))?;
    s.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| AcquirerError::io(ctx("configuring"), e))?;
    let token = admin_token(db_dir)?;
    s.write_all(format!("auth {token}\n{line}\n").as_bytes()).map_err(|e| AcquirerError::io(ctx("writing to"), e))?;
    let mut rd = std::io::BufReader::new(s.take(2 * MAX_ADMIN_LINE));
    let mut answer = String::new();
    rd.read_line(&mut answer).map_err(|e| AcquirerError::io(ctx("reading from"), e))?;
    if answer.trim_end() != "ok" {
        return Err(AcquirerError::Admin(format!("{addr} refused the admin token: {}", answer.trim_end())));
    }
    answer.clear();
    rd.read_line(&mut answer).map_err(|e| AcquirerError::io(ctx("reading from"), e))?;
    let answer = answer.trim_end().to_string();
    if answer.is_empty() {
        return Err(AcquirerError::Admin(format!("{addr} closed the admin connection without answering")));
    }
    Ok(answer)
}
