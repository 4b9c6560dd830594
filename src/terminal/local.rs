//! The running terminal's local socket, `DATA/shanfu.sock`: while a terminal (`pos`, `demo`,
//! `pay`) holds the journal — sled lets one process open it — `shanfu journal list|show|export`
//! from another shell asks it here instead, and prints the same text.
//!
//! A line protocol over a Unix socket, one request per connection:
//!
//! ```text
//! → journal list | journal show ID | journal export json|csv
//! ← ok            (then the text the command prints, to the end of the stream)
//! ← error: WHY
//! ```
//!
//! The socket is the owner's only (0600), served by one thread, and removed when the
//! [`Terminal`](crate::terminal::Terminal) that started it drops.

use crate::journal::{Journal, TxnRecord};
use crate::{clock, terminal::receipt::Slip};
use anyhow::{anyhow, bail, Context, Result};
use host_contract::Lang;
use kernels::types::Amount;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "shanfu.sock";

/// How long one side waits for the other on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What `shanfu journal` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    List,
    Show(u64),
    /// `json` or `csv`.
    Export(String),
}

impl Query {
    /// The request line.
    pub fn line(&self) -> String {
        match self {
            Query::List => "journal list".into(),
            Query::Show(id) => format!("journal show {id}"),
            Query::Export(f) => format!("journal export {f}"),
        }
    }

    pub fn parse(line: &str) -> Result<Query> {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["journal", "list"] => Ok(Query::List),
            ["journal", "show", id] => Ok(Query::Show(id.parse().map_err(|_| anyhow!("not a transaction id: {id:?}"))?)),
            ["journal", "export", f @ ("json" | "csv")] => Ok(Query::Export(f.to_string())),
            _ => bail!("unknown request {line:?} (journal list | journal show ID | journal export json|csv)"),
        }
    }
}

/// The text `shanfu journal ...` prints for `q` (amounts with `exp` decimals), every line
/// ending in a newline.
pub fn render(j: &Journal, exp: u32, q: &Query) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let when = |r: &TxnRecord| r.history.first().map(|(t, _)| clock::format_utc(*t)).unwrap_or_default();
    match q {
        Query::Show(id) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&j.get(*id)?.view())?)?;
        }
        Query::List => {
            let all = j.all()?;
            writeln!(
                out,
                "{:>6}  {:<19}  {:<6} {:>14}  {:<22} {:<16} {:<18} {:<4} {:<6} label",
                "id", "date (UTC)", "kind", "amount", "outcome", "state", "card", "rc", "stan"
            )?;
            for r in &all {
                writeln!(
                    out,
                    "{:>6}  {:<19}  {:<6} {:>14}  {:<22} {:<16} {:<18} {:<4} {:<6} {}",
                    r.id,
                    when(r),
                    Slip::of(r).title(Lang::En),
                    Amount(r.amount).display(exp),
                    r.outcome_name(),
                    format!("{:?}", r.state),
                    r.pan_masked.as_deref().unwrap_or("-"),
                    r.response_code.as_deref().unwrap_or("-"),
                    r.stan.map(|s| format!("{s:06}")).unwrap_or_else(|| "-".into()),
                    r.label.as_deref().unwrap_or("")
                )?;
            }
        }
        Query::Export(f) if f == "json" => {
            let all = j.all()?;
            writeln!(out, "{}", serde_json::to_string(&all.iter().map(TxnRecord::view).collect::<Vec<_>>())?)?;
        }
        Query::Export(_) => {
            let all = j.all()?;
            writeln!(out, "id,date_utc,kind,state,amount,currency,outcome,pan_masked,label,kernel,cvm,oda,cryptogram_type,atc,stan,response_code,auth_code,rrn,arpc,original")?;
            for r in &all {
                let o = |v: &Option<String>| v.clone().unwrap_or_default().replace(',', " ");
                writeln!(
                    out,
                    "{},{},{},{:?},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.id,
                    when(r),
                    Slip::of(r).title(Lang::En),
                    r.state,
                    Amount(r.amount).display(exp),
                    r.currency,
                    r.outcome_name(),
                    o(&r.pan_masked),
                    o(&r.label),
                    o(&r.kernel),
                    r.cvm.map(kernels::outcome::Cvm::name).unwrap_or("-"),
                    o(&r.oda),
                    o(&r.cryptogram_type),
                    r.atc.map(|a| a.to_string()).unwrap_or_default(),
                    r.stan.map(|s| s.to_string()).unwrap_or_default(),
                    o(&r.response_code),
                    o(&r.auth_code),
                    o(&r.rrn),
                    o(&r.arpc),
                    r.original.map(|x| x.to_string()).unwrap_or_default()
                )?;
            }
        }
    }
    Ok(out)
}

/// The socket server of a running terminal: one thread, stopped and the socket file removed on
/// drop.
pub struct LocalServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LocalServer {
    /// Serves `journal` on `DATA/shanfu.sock`. The caller holds the journal, so a socket file
    /// already there is a stale one (a terminal that crashed) and is replaced. `None` (logged)
    /// when the socket cannot be made: the terminal runs on without it.
    pub fn start(data: &Path, journal: Journal, exp: u32) -> Option<LocalServer> {
        let path = data.join(SOCKET);
        match Self::bind(&path) {
            Ok(listener) => {
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                let thread = std::thread::Builder::new()
                    .name("local-socket".into())
                    .spawn(move || serve(listener, &journal, exp, &flag))
                    .map_err(|e| tracing::warn!(error = %e, "local socket thread"))
                    .ok()?;
                tracing::debug!(path = %path.display(), "local socket listening");
                Some(LocalServer { path, stop, thread: Some(thread) })
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no local socket: `shanfu journal` cannot read the journal while this terminal runs");
                None
            }
        }
    }

    fn bind(path: &Path) -> std::io::Result<UnixListener> {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How often the serving thread looks at the stop flag between connections.
const POLL: Duration = Duration::from_millis(50);

fn serve(listener: UnixListener, journal: &Journal, exp: u32, stop: &AtomicBool) {
    // Non-blocking accept, polled: stopping never depends on reaching the socket file (the data
    // directory may be gone by then).
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::warn!(error = %e, "local socket: cannot poll, not serving");
        return;
    }
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                if let Err(e) = s.set_nonblocking(false).and_then(|_| answer(s, journal, exp)) {
                    tracing::debug!(error = %e, "local socket request");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!(error = %e, "local socket accept");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn answer(s: UnixStream, journal: &Journal, exp: u32) -> std::io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&s).take(256)).read_line(&mut line)?;
    let reply = Query::parse(line.trim()).and_then(|q| render(journal, exp, &q));
    let mut w = &s;
    match reply {
        Ok(text) => write!(w, "ok\n{text}"),
        Err(e) => writeln!(w, "error: {}", format!("{e:#}").replace('\n', " ")),
    }
}

/// Asks the terminal running over `data` for `q`: `Ok(Ok(text))` its answer, `Ok(Err(why))` its
/// refusal, `Err` when no terminal answers there.
pub fn ask(data: &Path, q: &Query) -> std::io::Result<std::result::Result<String, String>> {
    let mut s = UnixStream::connect(data.join(SOCKET))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    writeln!(s, "{}", q.line())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    match reply.split_once('\n') {
        Some(("ok", text)) => Ok(Ok(text.to_string())),
        Some((status, _)) if status.starts_with("error: ") => Ok(Err(status["error: ".len()..].to_string())),
        _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected answer {:?}", reply.chars().take(80).collect::<String>()))),
    }
}

/// `shanfu journal ...` over `data`: the journal itself when it is free, else the running
/// terminal's answer on its socket.
pub fn journal_text(data: &Path, exp: u32, q: &Query) -> Result<String> {
    let dir = data.join("journal");
    match Journal::open(&dir) {
        Ok(j) => {
            let queued = j.recover()?;
            if !queued.is_empty() {
                tracing::warn!(count = queued.len(), "recovery: transactions sent without an answer are queued for reversal");
            }
            render(&j, exp, q)
        }
        Err(in_use @ crate::journal::JournalError::InUse { .. }) => match ask(data, q) {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(why)) => bail!("{why}"),
            Err(e) => bail!("the journal at {} is {in_use}, which does not answer on {}: {e}", dir.display(), data.join(SOCKET).display()),
        },
        Err(e) => Err(e).with_context(|| format!("opening the journal at {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::TxnKind;

    #[test]
    fn a_second_process_reads_the_journal_through_the_socket_of_the_holder() {
        let data = std::env::temp_dir().join(format!("shanfu-local-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let j = Journal::open(&data.join("journal")).unwrap();
        j.begin(TxnKind::Purchase, 1234, "156").unwrap();
        let server = LocalServer::start(&data, j.clone(), 2).expect("socket");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(SOCKET)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The journal is held here, so journal_text goes through the socket; same text.
        let direct = render(&j, 2, &Query::List).unwrap();
        let asked = journal_text(&data, 2, &Query::List).unwrap();
        assert_eq!(asked, direct);
        assert!(asked.contains("12.34"), "{asked}");
        assert_eq!(journal_text(&data, 2, &Query::Export("csv".into())).unwrap(), render(&j, 2, &Query::Export("csv".into())).unwrap());
        let err = journal_text(&data, 2, &Query::Show(99)).unwrap_err();
        assert!(format!("{err:#}").contains("no transaction 99"), "{err:#}");
        drop(server);
        assert!(!data.join(SOCKET).exists(), "socket file left behind");
        // No server: the in-use error says so.
        let err = journal_text(&data, 2, &Query::List).unwrap_err();
        assert!(format!("{err:#}").contains("in use by pid"), "{err:#}");
        drop(j);
        let _ = std::fs::remove_dir_all(&data);
    }

    #[test]
    fn the_server_stops_even_when_its_data_directory_is_gone() {
        let data = std::env::temp_dir().join(format!("shanfu-local-gone-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let j = Journal::open(&data.join("journal")).unwrap();
        let server = LocalServer::start(&data, j.clone(), 2).expect("socket");
        std::fs::remove_dir_all(&data).unwrap();
        let t = std::time::Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(2), "drop took {:?}", t.elapsed());
    }

    #[test]
    fn requests_parse_and_print_back() {
        for q in [Query::List, Query::Show(7), Query::Export("csv".into()), Query::Export("json".into())] {
            assert_eq!(Query::parse(&q.line()).unwrap(), q);
        }
        assert!(Query::parse("journal export xml").is_err());
        assert!(Query::parse("settle").is_err());
    }
}
