//! A dishonest or broken host (issue 9): answers that are not the answer to the request the
//! terminal sent are never an approval, and the request is reversed. The fake host here speaks
//! real ISO 8583 (`ascii87`) over TCP on 127.0.0.1 and answers reversals honestly, so the test
//! can see the reversal arrive.

mod common;

use iso8583::{ascii87, field, Message, Mti};
use kernels::{tag, tlv};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");

#[derive(Clone, Copy, Debug)]
enum Forgery {
    Honest,
    ArcDiffersFromDe39,
    Mti0810,
    Mti0410,
    AmountChanged,
    CurrencyChanged,
    WrongStan,
    UnknownResponseCode,
    Garbage,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn echo(req: &Message, mti: Mti) -> Message {
    let mut r = Message::new(mti);
    for f in [field::PAN, field::PROCESSING_CODE, field::AMOUNT, field::STAN, field::TERMINAL_ID, field::CURRENCY_CODE] {
        if let Some(v) = req.get(f) {
            r.set(f, v.to_vec());
        }
    }
    r.set_str(field::RESPONSE_CODE, "00");
    r
}

/// The answer the fake host sends to a 0200.
fn answer_0200(req: &Message, forgery: Forgery) -> Vec<u8> {
    let mut r = echo(req, Mti::FINANCIAL_RESPONSE);
    r.set_str(field::AUTH_ID_RESPONSE, "FORGED").set_str(field::RRN, "000000000001");
    let arc: &[u8] = if matches!(forgery, Forgery::ArcDiffersFromDe39) { b"05" } else { b"00" };
    let mut iad = vec![0x5A; 8];
    iad.extend_from_slice(arc);
    r.set(field::ICC_DATA, tlv::Builder::new().put(tag::ISSUER_AUTH_DATA, &iad).build());
    match forgery {
        Forgery::Honest | Forgery::ArcDiffersFromDe39 => {}
        Forgery::Mti0810 => r.mti = Mti::NETWORK_MANAGEMENT_RESPONSE,
        Forgery::Mti0410 => r.mti = Mti::REVERSAL_RESPONSE,
        Forgery::AmountChanged => {
            r.set_str(field::AMOUNT, "000000000001");
        }
        Forgery::CurrencyChanged => {
            r.set_str(field::CURRENCY_CODE, "840");
        }
        Forgery::WrongStan => {
            let stan: u32 = req.get_str(field::STAN).and_then(|s| s.parse().ok()).unwrap_or(0);
            r.set_str(field::STAN, &format!("{:06}", (stan + 1) % 1_000_000));
        }
        Forgery::UnknownResponseCode => {
            r.set_str(field::RESPONSE_CODE, "Z9");
            r.remove(field::ICC_DATA);
        }
        Forgery::Garbage => return b"\x00\x0bNOT ISO8583".to_vec(),
    }
    ascii87().pack_framed(&r).expect("pack")
}

/// Serves one terminal connection after another until `deadline`; reports each request MTI.
fn fake_host(forgery: Forgery, seen: mpsc::Sender<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            while let Some(body) = read_frame(&mut s) {
                let Ok(req) = ascii87().unpack(&body) else { break };
                let _ = seen.send(req.mti.to_string());
                let wire = match req.mti.as_str() {
                    "0200" => answer_0200(&req, forgery),
                    "0400" | "0401" => ascii87().pack_framed(&echo(&req, Mti::REVERSAL_RESPONSE)).unwrap(),
                    "0800" => {
                        let mut r = echo(&req, Mti::NETWORK_MANAGEMENT_RESPONSE);
                        r.set(field::NETWORK_MANAGEMENT_CODE, req.get(field::NETWORK_MANAGEMENT_CODE).unwrap_or(b"001").to_vec());
                        ascii87().pack_framed(&r).unwrap()
                    }
                    _ => break,
                };
                if s.write_all(&wire).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

fn pay_against(forgery: Forgery) -> (Value, i32, Vec<String>, Vec<Value>) {
    pay_against_with(forgery, true)
}

/// `keyless`: the terminal is configured `mac = false` for this host; else the shipped keyed
/// configuration (MAC on every message, keys provisioned against the pinned acquirer key).
fn pay_against_with(forgery: Forgery, keyless: bool) -> (Value, i32, Vec<String>, Vec<Value>) {
    // A directory of its own per call: tests run in parallel and two of them pay against the
    // same forgery (one keyed, one not).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("shanfu-forged-{}-{forgery:?}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (tx, rx) = mpsc::channel();
    let addr = fake_host(forgery, tx);
    let run = |args: &[&str]| Command::new(BIN).args(args).arg("--data").arg(&dir).stdin(Stdio::null()).output().expect("run shanfu");
    // This fake host has no keys: the terminal is configured `mac = false` for it, so what is
    // tested here is the answer check itself (tests/keyed_link.rs: the same forgeries with MAC on).
    let cfg = if keyless { common::keyless_config(&dir.join("cfg")) } else { std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config")) };
    let out = run(&[
        "pay",
        "20.00",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--reader",
        "virtual:unionpay-phone",
        "--host",
        &addr,
        "--timeout-ms",
        "2000",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let journal = run(&["journal", "export", "--format", "json"]);
    let journal: Value = serde_json::from_slice(&journal.stdout).unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    let seen: Vec<String> = rx.try_iter().collect();
    (v, out.status.code().unwrap_or(-1), seen, journal.as_array().cloned().unwrap_or_default())
}

/// With the shipped (keyed) configuration, a host without the acquirer's signing key cannot even
/// be provisioned: whatever it answers — a good-looking 00 included — nothing is sent, nothing
/// approved (issue 12). With a real acquirer behind a forger: tests/keyed_link.rs.
#[test]
fn a_keyed_terminal_gives_a_host_without_the_keys_nothing_whatever_it_answers() {
    for forgery in [Forgery::Honest, Forgery::UnknownResponseCode, Forgery::Garbage] {
        let (v, code, seen, journal) = pay_against_with(forgery, false);
        assert_ne!(v["outcome"], "APPROVED", "{forgery:?}: {v}");
        assert_eq!(code, 1, "{forgery:?}: {v}");
        assert!(!seen.iter().any(|m| m == "0200"), "{forgery:?}: no request reached the fake host: {seen:?}");
        assert_eq!(v["stan"], Value::Null, "{forgery:?}: {v}");
        assert_eq!(journal[0]["state"], "COMPLETED", "{forgery:?}: closed, nothing to reverse");
    }
}

#[test]
fn an_honest_answer_is_approved_and_nothing_is_reversed() {
    let (v, code, seen, journal) = pay_against(Forgery::Honest);
    assert_eq!((v["outcome"].as_str(), code), (Some("APPROVED"), 0), "{v}");
    assert_eq!(v["arpc"], "RECEIVED", "{v}");
    assert_eq!(seen, vec!["0800", "0200"], "sign-on, then the request");
    assert_eq!(journal[0]["state"], "COMPLETED");
    assert_eq!(journal[0]["issuer_auth_data"], "5A5A5A5A5A5A5A5A3030");
}

#[test]
fn forged_or_foreign_answers_are_not_approved_and_are_reversed() {
    for forgery in [
        Forgery::ArcDiffersFromDe39,
        Forgery::Mti0810,
        Forgery::Mti0410,
        Forgery::AmountChanged,
        Forgery::CurrencyChanged,
        Forgery::WrongStan,
        Forgery::UnknownResponseCode,
        Forgery::Garbage,
    ] {
        let (v, code, seen, journal) = pay_against(forgery);
        assert_ne!(v["outcome"], "APPROVED", "{forgery:?}: {v}");
        assert_eq!(code, 1, "{forgery:?}: {v}");
        assert!(v["reason"].as_str().unwrap_or("").contains("reversed"), "{forgery:?}: {v}");
        // The reversal reached the host (0400 after the 0200) and was acknowledged.
        assert_eq!(seen.iter().find(|m| *m != "0800").map(String::as_str), Some("0200"), "{forgery:?}: {seen:?}");
        assert!(seen.iter().any(|m| m == "0400" || m == "0401"), "{forgery:?}: no reversal sent: {seen:?}");
        assert_eq!(journal.len(), 1, "{forgery:?}");
        assert_eq!(journal[0]["state"], "REVERSED", "{forgery:?}: {}", journal[0]);
        assert_ne!(journal[0]["outcome"], "APPROVED", "{forgery:?}");
    }
}
