//! `shanfu cert --serve ADDR`: the automation server a lab's test tool drives, one JSON object
//! per line each way over TCP (docs/cert-suite.md "Automation server").
//!
//! Requests are `{"cmd": NAME, …}`; every answer has `"ok": true` or `"ok": false, "error": …`.
//! Commands: `list_cases`, `list_profiles`, `select_profile` (`profile`), `initiate` (`amount`,
//! optional `host` none|embedded, `fingerprint`, `remove_after`, `date`: a purchase on the
//! selected profile), `run_case` (`id`), `get_archive` (the evidence of the last run), `quit`
//! (closes this connection), `shutdown` (stops the server).
//!
//! One client at a time (the reader and its card are one): the next connection is taken when
//! the current one closes. A line longer than [`MAX_LINE`] or a connection idle for
//! `--idle-timeout` seconds gets an error answer and is closed; a request that is not JSON gets
//! an error answer.

use super::case::{self, Case};
use super::runner::{CaseRun, Runner};
use super::{evidence, status, CertArgs};
use crate::settings::Settings;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// What one request asks the connection to do next.
enum Next {
    Continue,
    Close,
    Shutdown,
}

/// The server's state: the suite, the runner, the selected profile, the last run.
struct Server {
    cases: Vec<Case>,
    runner: Runner,
    exp: u32,
    profile: String,
    last: Option<CaseRun>,
    initiated: usize,
    idle: Duration,
}

fn err(e: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": e.to_string() })
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, Value> {
    req.get(name).and_then(Value::as_str).ok_or_else(|| err(format!("`{name}` (a string) is missing")))
}

/// The result of a run, as `run_case` and `initiate` answer it.
fn run_json(r: &CaseRun) -> Value {
    let a = r.actual.as_ref();
    json!({
        "ok": true, "id": r.case.id, "status": status(r), "skip_reason": r.skipped, "error": r.error,
        "checks": r.checks, "elapsed_ms": r.elapsed.as_secs_f64() * 1000.0,
        "outcome": a.map(|a| a.outcome.clone()), "disposition": a.map(|a| a.disposition.clone()),
        "cvm": a.map(|a| a.cvm.clone()), "online": a.map(|a| a.online), "taps": a.map(|a| a.taps),
        "kernel": a.and_then(|a| a.kernel.clone()), "aid": a.and_then(|a| a.aid.clone()),
        "response_code": a.and_then(|a| a.response_code.clone()),
    })
}

impl Server {
    fn handle(&mut self, req: &Value) -> (Value, Next) {
        let Some(cmd) = req.get("cmd").and_then(Value::as_str) else {
            return (err("`cmd` (a string) is missing"), Next::Continue);
        };
        let answer = match cmd {
            "list_cases" => {
                let cases: Vec<Value> = self.cases.iter().map(|c| json!({ "id": c.id, "title": c.title, "group": c.group, "profile": c.profile })).collect();
                json!({ "ok": true, "cases": cases })
            }
            "list_profiles" => {
                let names: Vec<&str> = test_cards::profile::BUILTIN.iter().map(|(n, _)| *n).collect();
                json!({ "ok": true, "profiles": names, "selected": self.profile })
            }
            "select_profile" => match str_field(req, "profile") {
                Ok(p) => match test_cards::Profile::load(p) {
                    Ok(_) => {
                        self.profile = p.to_string();
                        json!({ "ok": true, "selected": p })
                    }
                    Err(e) => err(e),
                },
                Err(e) => e,
            },
            "initiate" => self.initiate(req).unwrap_or_else(|e| e),
            "run_case" => match str_field(req, "id") {
                Ok(id) => match self.cases.iter().find(|c| c.id == id).cloned() {
                    Some(c) => {
                        let r = self.runner.run(&c);
                        let v = run_json(&r);
                        self.last = Some(r);
                        v
                    }
                    None => err(format!("no case {id:?} (list_cases lists them)")),
                },
                Err(e) => e,
            },
            "get_archive" => match &self.last {
                Some(r) => json!({
                    "ok": true, "id": r.case.id, "status": status(r), "case": r.case.source,
                    "trace": evidence::trace_text(r), "record": evidence::record_text(r), "report": r.report,
                    "verdict": evidence::verdict_text(r), "phone": r.phone_log,
                }),
                None => err("nothing has run yet (run_case or initiate first)"),
            },
            "quit" => return (json!({ "ok": true, "bye": true }), Next::Close),
            "shutdown" => return (json!({ "ok": true, "shutdown": true }), Next::Shutdown),
            other => err(format!("unknown cmd {other:?} (list_cases, list_profiles, select_profile, initiate, run_case, get_archive, quit, shutdown)")),
        };
        (answer, Next::Continue)
    }

    /// A purchase on the selected profile, as an ad-hoc case with nothing expected (the suite's
    /// own loader checks the fields).
    fn initiate(&mut self, req: &Value) -> Result<Value, Value> {
        let amount = str_field(req, "amount")?;
        self.initiated += 1;
        let mut t = toml::Table::new();
        t.insert("id".into(), format!("SERVE.{}", self.initiated).into());
        t.insert("title".into(), format!("initiate {amount}").into());
        t.insert("group".into(), "serve".into());
        t.insert("profile".into(), self.profile.clone().into());
        t.insert("amount".into(), amount.into());
        t.insert("host".into(), req.get("host").and_then(Value::as_str).unwrap_or("none").into());
        if let Some(d) = req.get("date").and_then(Value::as_str) {
            t.insert("date".into(), d.into());
        }
        let mut holder = toml::Table::new();
        holder.insert("fingerprint".into(), req.get("fingerprint").and_then(Value::as_bool).unwrap_or(false).into());
        if let Some(n) = req.get("remove_after").and_then(Value::as_u64) {
            holder.insert("remove_after".into(), i64::try_from(n).map_err(err)?.into());
        }
        t.insert("holder".into(), holder.into());
        t.insert("expect".into(), toml::Table::new().into());
        let mut doc = toml::Table::new();
        doc.insert("case".into(), vec![toml::Value::Table(t)].into());
        let text = toml::to_string(&doc).map_err(err)?;
        let c = case::parse_file(Path::new("initiate"), &text, self.exp).map_err(err)?.into_iter().next().ok_or_else(|| err("no case built"))?;
        let r = self.runner.run(&c);
        let v = run_json(&r);
        self.last = Some(r);
        Ok(v)
    }

    /// Serves one connection until it quits, idles, sends too long a line, or shuts down.
    fn connection(&mut self, stream: TcpStream) -> std::io::Result<bool> {
        stream.set_read_timeout(Some(self.idle))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut out = stream.try_clone()?;
        let mut input = BufReader::new(stream);
        let mut send = |v: &Value| -> std::io::Result<()> {
            let mut line = serde_json::to_string(v).unwrap_or_else(|_| "{\"ok\":false}".into());
            line.push('\n');
            out.write_all(line.as_bytes())
        };
        loop {
            let mut buf = Vec::new();
            match (&mut input).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
                Ok(0) => return Ok(false),
                Ok(_) if buf.len() > MAX_LINE => {
                    send(&err(format!("request longer than {MAX_LINE} bytes; closing")))?;
                    return Ok(false);
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    send(&err(format!("idle for {} s; closing", self.idle.as_secs())))?;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
            let text = String::from_utf8_lossy(&buf);
            if text.trim().is_empty() {
                continue;
            }
            let (answer, next) = match serde_json::from_str::<Value>(text.trim()) {
                Ok(req) if req.is_object() => self.handle(&req),
                Ok(_) => (err("a request is a JSON object with \"cmd\""), Next::Continue),
                Err(e) => (err(format!("not JSON: {e}")), Next::Continue),
            };
            send(&answer)?;
            match next {
                Next::Continue => {}
                Next::Close => return Ok(false),
                Next::Shutdown => return Ok(true),
            }
        }
    }
}

/// Binds `addr`, prints `listening ADDR` (the bound address: port 0 picks one) and serves until
/// a `shutdown`.
pub fn main(args: &CertArgs, base: Settings, addr: SocketAddr) -> Result<i32> {
    let exp = u32::from(base.ep.terminal.currency_exponent);
    let cases = super::load_cases(&args.suite, args.case.as_deref(), exp)?;
    let runner = super::runner_for(base, &args.reader, args.vpcd)?;
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    {
        let mut o = std::io::stdout().lock();
        writeln!(o, "listening {bound}").and_then(|()| o.flush())?;
    }
    let mut server =
        Server { cases, runner, exp, profile: "unionpay-phone".into(), last: None, initiated: 0, idle: Duration::from_secs(args.idle_timeout.max(1)) };
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection");
                continue;
            }
        };
        match server.connection(stream) {
            Ok(true) => break,
            Ok(false) => {}
            // A client that went away mid-answer: the server goes on.
            Err(e) => tracing::info!(error = %e, "connection ended"),
        }
    }
    Ok(0)
}
