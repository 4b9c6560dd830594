//! Issue 13 §4: the flows of a shop day run through the binary with TRACE logs, in text and in
//! JSON — phone taps online (with and without CDCVM), a PIN card, an offline approval and its
//! advice, a refund, Visa, a recorded session, settlement, journal views and exports — and no
//! full PAN (so no track 2 either), no PIN and no key from the key files appears in any log,
//! output, receipt, export, recording or database file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shanfu");
const HOLDER_PIN: &str = "123456";

/// Every PAN the test cards and the acquirer's seed hold (card, token and funding PANs).
fn all_pans() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = vec![std::fs::read_to_string(root.join("config/acquirer.toml")).expect("seed")];
    for e in std::fs::read_dir(root.join("test-cards/profiles")).expect("profiles").flatten() {
        texts.push(std::fs::read_to_string(e.path()).expect("profile"));
    }
    let mut pans: Vec<String> = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim().trim_matches('"');
            (matches!(k.trim(), "pan" | "funding_pan" | "token") && (12..=19).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.to_string())
        })
        .collect();
    pans.sort();
    pans.dedup();
    assert!(pans.len() > 20, "the PANs of the profiles and the seed: {pans:?}");
    pans
}

/// Whether `needle` occurs in `hay` as a token of its own: not inside a longer run of letters
/// or digits (a PIN's six digits inside a timestamp are not the PIN).
fn has_token(hay: &[u8], needle: &[u8]) -> bool {
    let alnum = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    hay.windows(needle.len()).enumerate().any(|(i, w)| w == needle && !alnum(i.checked_sub(1).and_then(|j| hay.get(j))) && !alnum(hay.get(i + needle.len())))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs `shanfu --data DATA --log-format FORMAT ARGS` at TRACE with `stdin`; returns what it
/// printed (stdout and stderr) and its exit code.
fn run(data: &Path, format: &str, args: &[&str], stdin: &str) -> (String, i32) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["--log-format", format])
        .args(args)
        .env("SHANFU_LOG", "trace")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shanfu");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr), out.status.code().unwrap_or(-1))
}

fn shop_day(format: &str) {
    let data = std::env::temp_dir().join(format!("shanfu-leaks-{}-{format}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("scratch");
    let recording = data.join("session.rec");
    let rec = recording.to_str().expect("utf-8 path");
    let mut printed = String::new();
    let mut ran = |args: &[&str], stdin: &str, want: i32| {
        let (text, code) = run(&data, format, args, stdin);
        assert_eq!(code, want, "shanfu {args:?}: {}", text.lines().rev().take(5).collect::<Vec<_>>().join("\n"));
        // SHANFU_LOG=trace: every event is written (the project's own go down to DEBUG).
        assert!(text.contains("DEBUG") || args[0] == "journal", "verbose logs on for {args:?}");
        printed += &text;
    };
    let e = ["--host", "embedded", "--json"];
    ran(&[&["pay", "50.00", "--reader", "virtual:unionpay-phone", "--fingerprint"][..], &e[..]].concat(), "", 0);
    ran(&[&["pay", "500.00", "--reader", "virtual:unionpay-phone", "--fingerprint"][..], &e[..]].concat(), "", 0);
    ran(&[&["pay", "500.00", "--reader", "virtual:unionpay-plastic", "--pin-stdin"][..], &e[..]].concat(), &format!("{HOLDER_PIN}\n"), 0);
    ran(&[&["pay", "10.00", "--reader", "virtual:unionpay-transit"][..], &e[..]].concat(), "", 0);
    ran(&[&["pay", "20.00", "--type", "refund", "--reader", "virtual:unionpay-phone", "--fingerprint"][..], &e[..]].concat(), "", 0);
    ran(&[&["pay", "30.00", "--reader", "virtual:visa-phone", "--fingerprint", "--record", rec][..], &e[..]].concat(), "", 0);
    ran(&["replay", rec, "--json"], "", 0);
    ran(&["settle", "--host", "embedded", "--json"], "", 0);
    ran(&["journal", "list"], "", 0);
    ran(&["journal", "show", "1"], "", 0);
    ran(&["journal", "export", "--format", "csv"], "", 0);
    ran(&["journal", "export", "--format", "json"], "", 0);
    assert!(printed.contains("APPROVED"), "the flows ran");

    let stored = common::files(&data);
    // Key material: every key file's content, as stored and as hex, must appear nowhere else.
    let keys: Vec<(PathBuf, Vec<Vec<u8>>)> = stored
        .iter()
        .filter(|(p, b)| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.ends_with(".key") || name.contains("tmk") || name == "admin.token") && b.len() >= 16
        })
        .map(|(p, b)| {
            let text = String::from_utf8_lossy(b).trim().to_string();
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            (p.clone(), vec![text.clone().into_bytes(), text.to_uppercase().into_bytes(), hex.clone().into_bytes(), hex.to_uppercase().into_bytes()])
        })
        .collect();
    assert!(keys.len() >= 3, "the key files were found: {:?}", keys.iter().map(|k| &k.0).collect::<Vec<_>>());

    let mut places: Vec<(String, &[u8])> = vec![("output and logs".into(), printed.as_bytes())];
    for (p, b) in &stored {
        places.push((p.display().to_string(), b));
    }
    for (place, bytes) in &places {
        for pan in all_pans() {
            assert!(!contains(bytes, pan.as_bytes()), "{format}: PAN {}…{} in clear in {place}", &pan[..6], &pan[pan.len() - 4..]);
        }
        assert!(!has_token(bytes, HOLDER_PIN.as_bytes()), "{format}: the PIN in {place}");
        for (key_file, forms) in &keys {
            if Path::new(place) == key_file.as_path() {
                continue;
            }
            for f in forms {
                assert!(!contains(bytes, f), "{format}: the key of {} in {place}", key_file.display());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn no_card_number_pin_or_key_in_text_trace_logs_outputs_or_files() {
    shop_day("text");
}

#[test]
fn no_card_number_pin_or_key_in_json_trace_logs_outputs_or_files() {
    shop_day("json");
}
