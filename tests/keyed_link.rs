//! Issue 12 through the binary: online PIN (right, wrong, tries exceeded, none), the keyed host
//! link (provisioning, sign-on, rotation, a wrong acquirer key refused), and a man in the middle
//! between the terminal and a real `shanfu acquirer` process who forges or alters answers and
//! requests — over real TCP on 127.0.0.1. The PINs never appear in any output, log or file.

mod common;

use iso8583::{ascii87, field, Message, Mti};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");
const PLASTIC: &str = "6225000000000019";
const HOLDER_PIN: &str = "123456";
const WRONG_PIN: &str = "918273";
/// The phone token's funding account (config/acquirer.toml).
const PHONE_FUNDING: &str = "6222020000000015";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shanfu-keyed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `shanfu --data DATA ARGS` with `stdin`, TRACE logs in text: (stdout, stderr, exit code).
fn shanfu(data: &Path, args: &[&str], stdin: &str) -> (String, String, i32) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("SHANFU_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shanfu");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code().unwrap_or(-1))
}

fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    common::files(dir).into_iter().flat_map(|(_, b)| b).collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A `shanfu acquirer` process on 127.0.0.1 (a free port), stopped by its pid on drop.
struct Acquirer {
    child: Child,
    addr: String,
    db: PathBuf,
}

impl Acquirer {
    fn start(dir: &Path, extra: &[&str]) -> Acquirer {
        let db = dir.join("acq");
        let mut child = Command::new(BIN)
            .args(["acquirer", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start acquirer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("acquirer said {line:?}")).to_string();
        Acquirer { child, addr, db }
    }

    fn balance(&self, pan: &str) -> i64 {
        let out = Command::new(BIN).args(["acquirer", "--db"]).arg(&self.db).args(["account", "balance", pan]).output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        s.trim().strip_prefix("ok ").and_then(|b| b.parse().ok()).unwrap_or_else(|| panic!("balance: {s}"))
    }
}

impl Drop for Acquirer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn online_pin_right_wrong_tries_exceeded_and_none_and_the_pin_is_never_written() {
    let data = scratch("pin");
    let pay = |stdin: &str, pin_stdin: bool| {
        let mut args = vec!["pay", "500.00", "--reader", "virtual:unionpay-plastic", "--host", "embedded", "--json"];
        if pin_stdin {
            args.push("--pin-stdin");
        }
        let (out, err, _) = shanfu(&data, &args, stdin);
        (last_json(&out), out, err)
    };
    let mut texts = String::new();
    let (v, out, err) = pay(&format!("{HOLDER_PIN}\n"), true);
    texts += &(out + &err);
    assert_eq!((v["outcome"].as_str(), v["cvm"].as_str(), v["response_code"].as_str()), (Some("APPROVED"), Some("ONLINE_PIN"), Some("00")), "{v}");
    let id = v["journal_id"].as_u64().unwrap().to_string();
    let (rec, _, _) = shanfu(&data, &["journal", "show", &id], "");
    assert!(rec.contains("\"pin_sent\": true"), "the approval carried the PIN block (receipt: PIN verified): {rec}");
    let (bal, _, _) = shanfu(&data, &["acquirer", "account", "balance", PLASTIC], "");
    assert_eq!(bal.trim(), "ok 250000", "3000.00 − 500.00");

    for (i, want) in ["55", "55", "75"].iter().enumerate() {
        let (v, out, err) = pay(&format!("{WRONG_PIN}\n"), true);
        texts += &(out + &err);
        assert_eq!((v["outcome"].as_str(), v["response_code"].as_str()), (Some("ONLINE_DECLINED"), Some(*want)), "wrong PIN {}: {v}", i + 1);
    }
    // Locked: the right PIN no longer helps.
    let (v, out, err) = pay(&format!("{HOLDER_PIN}\n"), true);
    texts += &(out + &err);
    assert_eq!(v["response_code"].as_str(), Some("75"), "{v}");
    // No PIN: an empty line (cancel), and no PIN pad at all: nothing sent.
    let (v, out, err) = pay("\n", true);
    texts += &(out + &err);
    assert_eq!(
        (v["outcome"].as_str(), v["disposition"]["reason"].as_str(), v["online"].as_bool()),
        (Some("DECLINED"), Some("PIN_NOT_ENTERED"), Some(false)),
        "{v}"
    );
    let (v, _, _) = pay("", false);
    assert_eq!(v["disposition"]["reason"].as_str(), Some("ONLINE_PIN_UNAVAILABLE"), "{v}");
    let (bal, _, _) = shanfu(&data, &["acquirer", "account", "balance", PLASTIC], "");
    assert_eq!(bal.trim(), "ok 250000", "declines moved nothing");

    let (export, _, _) = shanfu(&data, &["journal", "export", "--format", "json"], "");
    texts += &export;
    for pin in [HOLDER_PIN, WRONG_PIN] {
        assert!(!texts.contains(pin), "a PIN appears in an output or log");
        assert!(!contains(&all_bytes(&data), pin), "a PIN appears in a file under the data directory");
    }
    // Card data at rest: neither the journal nor the acquirer database holds the PAN in clear.
    assert!(!contains(&all_bytes(&data.join("journal")), PLASTIC), "PAN in clear in the journal");
    assert!(!contains(&all_bytes(&data.join("acquirer")), PLASTIC), "PAN in clear in the acquirer database");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn provisioning_sign_on_rotation_over_tcp_and_a_wrong_acquirer_key_is_refused() {
    let dir = scratch("provision");
    let acq = Acquirer::start(&dir, &[]);
    let data = dir.join("term");
    let (out, err, code) = shanfu(&data, &["keys", "provision", "--host", &acq.addr, "--json"], "");
    assert_eq!(code, 0, "{out} {err}");
    let first = last_json(&out);
    assert!(first["tmk_kcv"].as_str().is_some_and(|k| k.len() == 6), "{first}");
    let (out, _, code) = shanfu(&data, &["keys", "rotate", "--host", &acq.addr, "--json"], "");
    assert_eq!(code, 0);
    let second = last_json(&out);
    assert_ne!(first["mac_key_kcv"], second["mac_key_kcv"], "every sign-on brings new working keys");
    assert_ne!(first["pin_key_kcv"], second["pin_key_kcv"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ks = data.join("keystore");
        let tmk = std::fs::read_dir(&ks).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("tmk-")).expect("tmk file");
        assert_eq!(tmk.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777, 0o700);
    }
    let (out, err, _) = shanfu(&data, &["pay", "28.00", "--reader", "virtual:unionpay-phone", "--host", &acq.addr, "--json"], "");
    let v = last_json(&out);
    assert_eq!(v["outcome"].as_str(), Some("APPROVED"), "{v} {err}");
    assert!(v.get("link").is_none(), "the keyed link is not reported unauthenticated: {v}");
    // The signing key in the log is never the key itself, nor the TMK.
    let tmk_hex = std::fs::read_to_string(
        std::fs::read_dir(data.join("keystore")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("tmk-")).unwrap().path(),
    )
    .unwrap();
    assert!(!err.to_uppercase().contains(&tmk_hex.trim().to_uppercase()), "the TMK appears in the log");
    drop(acq);

    // An acquirer that signs with another key than the pinned one: refused, nothing sent.
    let other = dir.join("other.key");
    std::fs::write(&other, "1111111111111111111111111111111111111111111111111111111111111111").unwrap();
    let impostor = Acquirer::start(&dir.join("impostor"), &["--signing-key", other.to_str().unwrap()]);
    let fresh = dir.join("fresh");
    let (out, err, code) = shanfu(&fresh, &["keys", "provision", "--host", &impostor.addr], "");
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("refused the acquirer's answer"), "{err}");
    let (out, _, _) = shanfu(&fresh, &["pay", "28.00", "--reader", "virtual:unionpay-phone", "--host", &impostor.addr, "--json"], "");
    let v = last_json(&out);
    assert_eq!((v["outcome"].as_str(), v["online"].as_bool(), v["stan"].as_str()), (Some("DECLINED"), Some(true), None), "not sent: {v}");
    assert_eq!(impostor.balance(PHONE_FUNDING), 1_000_000, "nothing charged");
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Attack {
    /// The answer replaced by a good-looking 00 without a MAC.
    Plain00,
    /// The answer replaced by a 00 MAC'd under a key the attacker made up.
    OwnKey00,
    /// The real answer with its authorization code changed.
    AlteredAnswer,
    /// The request's amount changed on the way to the acquirer.
    AlteredRequest,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn write_frame(s: &mut TcpStream, body: &[u8]) -> bool {
    let mut f = (body.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    s.write_all(&f).is_ok()
}

/// A proxy on 127.0.0.1 that passes frames both ways and applies `attack` to 0200 / 0210.
fn mitm(upstream: String, attack: Attack) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..8 {
            let Ok((mut term, _)) = l.accept() else { return };
            let up = upstream.clone();
            std::thread::spawn(move || {
                let Ok(mut acq) = TcpStream::connect(&up) else { return };
                let _ = term.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = acq.set_read_timeout(Some(Duration::from_secs(20)));
                while let Some(mut req) = read_frame(&mut term) {
                    let m = ascii87().unpack(&req).ok();
                    let sale = m.as_ref().is_some_and(|m| m.mti == Mti::FINANCIAL_REQUEST);
                    if sale && attack == Attack::AlteredRequest {
                        let mut m = m.clone().unwrap();
                        m.set_str(field::AMOUNT, "000000000001");
                        req = ascii87().pack(&m).unwrap();
                    }
                    if !write_frame(&mut acq, &req) {
                        return;
                    }
                    let Some(mut ans) = read_frame(&mut acq) else { return };
                    if sale {
                        let real = ascii87().unpack(&ans).unwrap();
                        ans = match attack {
                            Attack::Plain00 | Attack::OwnKey00 => {
                                let mut f = Message::new(Mti::FINANCIAL_RESPONSE);
                                for fl in [
                                    field::PAN,
                                    field::PROCESSING_CODE,
                                    field::AMOUNT,
                                    field::STAN,
                                    field::TERMINAL_ID,
                                    field::CURRENCY_CODE,
                                    field::RRN,
                                    field::ICC_DATA,
                                ] {
                                    if let Some(v) = real.get(fl) {
                                        f.set(fl, v.to_vec());
                                    }
                                }
                                f.set_str(field::RESPONSE_CODE, "00").set_str(field::AUTH_ID_RESPONSE, "FORGED");
                                if attack == Attack::Plain00 {
                                    ascii87().pack(&f).unwrap()
                                } else {
                                    host_contract::link::pack_with_mac(ascii87(), &f, &shanfu_keys::AesKey::new([7; 16])).unwrap()
                                }
                            }
                            Attack::AlteredAnswer => {
                                let mut f = real.clone();
                                f.set_str(field::AUTH_ID_RESPONSE, "ALTERD");
                                ascii87().pack(&f).unwrap()
                            }
                            Attack::AlteredRequest => ans,
                        };
                    }
                    if !write_frame(&mut term, &ans) {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_man_in_the_middle_cannot_approve_a_sale_nor_alter_one_and_balances_hold() {
    let dir = scratch("mitm");
    let acq = Acquirer::start(&dir, &[]);
    let before = acq.balance(PHONE_FUNDING);
    for attack in [Attack::Plain00, Attack::OwnKey00, Attack::AlteredAnswer, Attack::AlteredRequest] {
        let proxy = mitm(acq.addr.clone(), attack);
        let data = dir.join(format!("{attack:?}"));
        let (out, err, _) = shanfu(&data, &["pay", "20.00", "--reader", "virtual:unionpay-phone", "--host", &proxy, "--timeout-ms", "3000", "--json"], "");
        let v = last_json(&out);
        assert_ne!(v["outcome"].as_str(), Some("APPROVED"), "{attack:?}: {v}\n{err}");
        // Whatever came back cannot be trusted as this request's approval: rejected (a forged or
        // altered answer fails its MAC; the acquirer's 63 to the altered request echoes the
        // altered amount) and the sale reversed at the acquirer.
        assert_eq!(v["disposition"]["reason"].as_str(), Some("HOST_ANSWER_REJECTED"), "{attack:?}: {v}");
        let (j, _, _) = shanfu(&data, &["journal", "export", "--format", "json"], "");
        let j: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(j[0]["state"].as_str(), Some("REVERSED"), "{attack:?}: the sale was reversed: {j}");
        assert_eq!(acq.balance(PHONE_FUNDING), before, "{attack:?}: the account is as before");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_bcd87_wire_with_a_tpdu_carries_the_same_keys_and_mac() {
    let dir = scratch("bcd87");
    let acq = Acquirer::start(&dir, &[]);
    let cfg = dir.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    let host = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/host.toml")).unwrap();
    std::fs::write(cfg.join("host.toml"), host.replace("wire = \"ascii87\"", "wire = \"bcd87\"")).unwrap();
    let data = dir.join("term");
    let (out, err, _) =
        shanfu(&data, &["--config", cfg.to_str().unwrap(), "pay", "28.00", "--reader", "virtual:unionpay-phone", "--host", &acq.addr, "--json"], "");
    let v = last_json(&out);
    assert_eq!((v["outcome"].as_str(), v["response_code"].as_str()), (Some("APPROVED"), Some("00")), "{v}\n{err}");
    assert_eq!(acq.balance(PHONE_FUNDING), 1_000_000 - 2800);
    // The same terminal's settlement over bcd87 reconciles.
    let (out, _, code) = shanfu(&data, &["--config", cfg.to_str().unwrap(), "settle", "--host", &acq.addr, "--json"], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(last_json(&out)["reconciled"].as_bool(), Some(true), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The TMK file of the terminal with the wrong permissions is a key that may have leaked: it is
/// not used, a new one is provisioned (owner-only). The acquirer's local master key replaced
/// (its stored TMKs no longer unwrap): the sign-on is answered 63 and the terminal provisions
/// again by itself. The acquirer refuses to start with an `lmk.key` others can read.
#[test]
fn exposed_or_lost_key_files_are_never_used_and_the_link_heals_by_provisioning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("keyfiles");
    let data = dir.join("term");
    let tmk_file = || std::fs::read_dir(data.join("keystore")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("tmk-")).unwrap().path();
    let pay = |acq: &Acquirer| {
        let (out, err, _) = shanfu(&data, &["pay", "28.00", "--reader", "virtual:unionpay-phone", "--host", &acq.addr, "--json"], "");
        let v = last_json(&out);
        assert_eq!(v["outcome"].as_str(), Some("APPROVED"), "{v} {err}");
    };
    let acq = Acquirer::start(&dir, &[]);
    pay(&acq);
    let first = std::fs::read_to_string(tmk_file()).unwrap();
    std::fs::set_permissions(tmk_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    pay(&acq);
    let second = std::fs::read_to_string(tmk_file()).unwrap();
    assert_ne!(first, second, "an exposed TMK is replaced");
    assert_eq!(std::fs::metadata(tmk_file()).unwrap().permissions().mode() & 0o777, 0o600);
    drop(acq);

    let lmk = dir.join("acq/keystore/lmk.key");
    std::fs::write(&lmk, "000102030405060708090A0B0C0D0E0F").unwrap();
    let acq = Acquirer::start(&dir, &[]);
    pay(&acq);
    assert_ne!(std::fs::read_to_string(tmk_file()).unwrap(), second, "provisioned again under the new lmk");
    assert_eq!(acq.balance(PHONE_FUNDING), 1_000_000 - 3 * 2800);
    drop(acq);

    std::fs::set_permissions(&lmk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN).args(["acquirer", "--listen", "127.0.0.1:0", "--db"]).arg(dir.join("acq")).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("readable by others"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host configured `mac = false` (a third-party tool on `--mac off`): the text report says the
/// link is unauthenticated; a card that asks for online PIN is declined by the terminal before
/// any PIN is asked or anything sent — there is no PIN key to carry it.
#[test]
fn a_keyless_host_is_reported_unauthenticated_and_never_gets_a_pin() {
    let dir = scratch("keyless");
    let acq = Acquirer::start(&dir, &["--mac", "off"]);
    let cfg = common::keyless_config(&dir);
    let data = dir.join("term");
    let cfg = cfg.to_str().unwrap();
    let (out, err, code) = shanfu(&data, &["--config", cfg, "pay", "28.00", "--reader", "virtual:unionpay-phone", "--host", &acq.addr], "");
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("APPROVED") && out.contains("link    : UNAUTHENTICATED"), "{out}");
    let (out, err, _) = shanfu(
        &data,
        &["--config", cfg, "pay", "500.00", "--reader", "virtual:unionpay-plastic", "--host", &acq.addr, "--pin-stdin", "--json"],
        &format!("{HOLDER_PIN}\n"),
    );
    let v = last_json(&out);
    assert_eq!((v["disposition"]["kind"].as_str(), v["disposition"]["reason"].as_str()), (Some("DECLINED_BY_TERMINAL"), Some("ONLINE_PIN_UNAVAILABLE")), "{v}");
    assert!(v["stan"].is_null() && v["reason"].as_str().is_some_and(|r| r.contains("mac = false")), "nothing sent: {v}");
    assert!(!err.contains(HOLDER_PIN) && !contains(&all_bytes(&data), HOLDER_PIN), "the PIN is nowhere");
    assert_eq!(acq.balance(PLASTIC), 300_000, "nothing charged");
    let _ = std::fs::remove_dir_all(&dir);
}
