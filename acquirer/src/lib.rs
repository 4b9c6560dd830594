//! The acquirer simulator: an ISO 8583 host (`ascii87`, docs/host.md) with a token vault and
//! accounts in its own sled database, ARQC / TC verification and ARPC with the test issuer keys of
//! `test-cards/keys/issuers.toml`, idempotent authorizations, advices, reversals and
//! reconciliation, fault injection on the wire, and a line-based admin port for the token
//! lifecycle.
//!
//! - [`Acquirer`]: the state ([`Acquirer::open`]) and the pure request → response logic
//!   ([`Acquirer::handle`], [`Acquirer::handle_bytes`]);
//! - [`serve`] / [`serve_admin`]: the TCP front ends; [`run`], [`run_server`] and [`embedded`]
//!   put them together;
//! - [`admin_command`]: `token suspend|resume|delete TOKEN` against a database directory, directly
//!   or through the running server that holds it.
//!
//! Logs never carry a clear PAN (first 6 / last 4 only) nor track 2 nor ICC data.
//!
//! A system of its own: it shares only the message contract with the terminal (`host-contract`
//! and the `iso8583` codec) and never depends on the `shanfu` package.

mod at_rest;
mod crypto;
mod deny;
mod group_commit;
mod limits;
mod link;
mod logic;
mod next_fault;
mod pin;
mod seed;
mod server;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// The crate's public API: the shanfu binary uses part of it (as `shanfu::acquirer`), tests and
// other callers the rest.
pub use deny::DenySource;
pub use limits::Limits;
pub use link::{public_key_hex, signing_key_from_file, test_signing_key, LinkSession, MacMode, TEST_SIGNING_KEY};
pub use seed::{AccountStatus, Seed, SeedAccount, SeedToken, SeedTransit, TokenDomain, TokenStatus, DEFAULT_SEED};
pub use server::{admin_command, admin_token, serve, serve_admin, ADMIN_ADDR_FILE, ADMIN_TOKEN_FILE};
pub use store::{Account, Acquirer, TokenRecord};

/// Everything the acquirer can fail with (outside the protocol, where failures are answers).
#[derive(Debug, thiserror::Error)]
pub enum AcquirerError {
    /// The sled database failed.
    #[error("acquirer database: {0}")]
    Db(#[from] sled::Error),
    /// Another process holds the database (a running acquirer).
    #[error("acquirer database {0} is in use by another process")]
    Locked(PathBuf),
    /// A stored record cannot be read back.
    #[error("acquirer database: corrupt record in {tree}: {problem}")]
    Corrupt { tree: &'static str, problem: String },
    /// The seed file is invalid.
    #[error("acquirer seed: {0}")]
    Seed(String),
    /// A token lifecycle change is not allowed, or the token is unknown.
    #[error("{0}")]
    Token(String),
    /// An admin line could not be understood.
    #[error("admin command: {0}")]
    Admin(String),
    /// The key store of the card data at rest, or sealed card data that does not open.
    #[error("acquirer card data at rest: {0}")]
    AtRest(#[from] at_rest::AtRestError),
    /// A database this acquirer cannot read: written before card data was sealed (PANs in
    /// clear), by a newer acquirer, or under another key store's key.
    #[error(
        "acquirer database {dir}: {problem}; it holds simulator state only: delete the directory and start again (the seed recreates the vault and accounts)"
    )]
    Schema { dir: PathBuf, problem: String },
    /// Network or file I/O, with what was being done.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

/// A PAN for logs and messages: `kernels::types::mask_pan` (first 6, last 4), or all `*` for
/// anything that is not plain ASCII (never slices inside a character).
pub(crate) fn masked(pan: &str) -> String {
    if pan.is_ascii() {
        kernels::types::mask_pan(pan)
    } else {
        "*".repeat(pan.chars().count())
    }
}

impl AcquirerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> AcquirerError {
        AcquirerError::Io { context: context.into(), source }
    }
}

/// Fault injection on the wire. Requests are counted server-wide (all connections), from 1;
/// when several faults fall on the same request, drop wins over close, close over garble. The
/// request is processed in every case (a debit is posted even when its answer is lost), which is
/// exactly what a terminal's reversal logic must cope with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Wait this long before writing each answer (answers of one connection still go out as
    /// they become ready; other requests are read meanwhile).
    pub delay_ms: u64,
    /// Every Nth request is read and processed but never answered.
    pub drop_every: Option<u64>,
    /// Every Nth request: the connection is closed instead of answering.
    pub close_every: Option<u64>,
    /// Every Nth request is answered with a frame of random-looking non-ISO bytes.
    pub garble_every: Option<u64>,
}

/// What the acquirer binary needs to run.
#[derive(Debug, Clone)]
pub struct AcquirerConfig {
    /// ISO 8583 listen address.
    pub listen: SocketAddr,
    /// Database directory (created if needed).
    pub db_dir: PathBuf,
    pub faults: Faults,
    /// Seed for a new database (and for entries a database lacks).
    pub seed: Seed,
    /// Whether messages without a MAC are served (`--mac off`).
    pub mac: MacMode,
    /// The provisioning signing key (`--signing-key FILE`); `None`: the TEST ONLY key.
    pub signing_key: Option<shanfu_keys::p256::ecdsa::SigningKey>,
    /// Connection cap and timeouts of the listeners.
    pub limits: Limits,
}

/// Opens the database, binds the ISO 8583 port (`config.listen`) and an admin port on
/// 127.0.0.1 (any free port, written to `db_dir/admin.addr`), then serves both until an
/// unrecoverable listener error.
pub async fn run(config: AcquirerConfig) -> Result<(), AcquirerError> {
    let state = Arc::new(open_blocking(config.db_dir.clone(), config.seed, config.faults).await?);
    state.set_mac_mode(config.mac);
    if let Some(k) = config.signing_key {
        state.set_signing_key(k);
    }
    if config.mac == MacMode::Off {
        tracing::warn!("--mac off: messages without a MAC are served (third-party test tools only)");
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| AcquirerError::io(format!("binding {}", config.listen), e))?;
    let addr = listener.local_addr().map_err(|e| AcquirerError::io("listener address", e))?;
    let admin = start_admin(&config.db_dir, state.clone(), config.limits).await?;
    tracing::info!(%addr, %admin, db = %config.db_dir.display(), faults = ?config.faults, "acquirer listening");
    // The first stdout line is the contract for scripts and tests that start us on port 0.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
    }
    serve(listener, state, config.limits).await;
    Ok(())
}

/// [`run`] with the built-in seed: what `shanfu acquirer` runs.
pub async fn run_server(
    listen: SocketAddr,
    db_dir: &Path,
    faults: Faults,
    mac: MacMode,
    signing_key: Option<&Path>,
    limits: Limits,
) -> Result<(), AcquirerError> {
    let signing_key = signing_key.map(signing_key_from_file).transpose()?;
    run(AcquirerConfig { listen, db_dir: db_dir.to_path_buf(), faults, seed: Seed::builtin()?, mac, signing_key, limits }).await
}

/// Starts an acquirer inside the current tokio runtime on 127.0.0.1 (a free port), over
/// `db_dir` with the built-in seed and no faults, plus its admin port; returns the ISO 8583
/// address. The server runs as long as the runtime does.
pub async fn embedded(db_dir: &Path) -> Result<SocketAddr, AcquirerError> {
    embedded_with(db_dir, MacMode::Required).await
}

/// [`embedded`] with a MAC policy (the benchmark compares MAC on and off).
pub async fn embedded_with(db_dir: &Path, mac: MacMode) -> Result<SocketAddr, AcquirerError> {
    Ok(embedded_state(db_dir, mac).await?.0)
}

/// [`embedded_with`], also handing back the acquirer (the benchmark reads its group-commit
/// counts).
pub async fn embedded_state(db_dir: &Path, mac: MacMode) -> Result<(SocketAddr, Arc<Acquirer>), AcquirerError> {
    let state = Arc::new(open_blocking(db_dir.to_path_buf(), Seed::builtin()?, Faults::default()).await?);
    state.set_mac_mode(mac);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| AcquirerError::io("binding 127.0.0.1", e))?;
    let addr = listener.local_addr().map_err(|e| AcquirerError::io("listener address", e))?;
    start_admin(db_dir, state.clone(), Limits::default()).await?;
    tokio::spawn(serve(listener, state.clone(), Limits::default()));
    tracing::debug!(%addr, "embedded acquirer listening");
    Ok((addr, state))
}

/// Binds the admin port on 127.0.0.1, writes `db_dir/admin.addr`, spawns [`serve_admin`].
async fn start_admin(db_dir: &Path, state: Arc<Acquirer>, limits: Limits) -> Result<SocketAddr, AcquirerError> {
    let admin = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| AcquirerError::io("binding the admin port", e))?;
    let addr = admin.local_addr().map_err(|e| AcquirerError::io("admin address", e))?;
    let token = admin_token(db_dir)?;
    write_admin_addr(db_dir, addr)?;
    tokio::spawn(serve_admin(admin, state, token, limits));
    Ok(addr)
}

/// Writes `db_dir/admin.addr` (the admin port of the server holding the database), atomically.
pub fn write_admin_addr(db_dir: &Path, addr: SocketAddr) -> Result<(), AcquirerError> {
    let path = db_dir.join(ADMIN_ADDR_FILE);
    let tmp = db_dir.join(format!("{ADMIN_ADDR_FILE}.tmp"));
    std::fs::write(&tmp, format!("{addr}\n")).map_err(|e| AcquirerError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| AcquirerError::io(format!("writing {}", path.display()), e))
}

async fn open_blocking(db_dir: PathBuf, seed: Seed, faults: Faults) -> Result<Acquirer, AcquirerError> {
    tokio::task::spawn_blocking(move || Acquirer::open(&db_dir, &seed, faults))
        .await
        .map_err(|e| AcquirerError::io("opening the acquirer database", std::io::Error::other(e.to_string())))?
}
