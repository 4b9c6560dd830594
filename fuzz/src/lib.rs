//! Fuzz targets of shanfu (issue 13 §3): each takes arbitrary bytes and must return without a
//! panic, a hang or an unbounded allocation, whatever the bytes.
//!
//! The same functions run two ways: under AFL++ (coverage-guided, `fuzz/afl`, driven by
//! `scripts/fuzz.sh`) and, over the committed corpora in `fuzz/corpus/TARGET/`, as a plain test
//! (`fuzz/tests/corpus.rs`) in every test run — so an input that once crashed stays fixed.

use std::sync::{Arc, Mutex, OnceLock};

use iso8583::{field, Message, Mti};
use kernels::apdu::RApdu;
use kernels::capk::{CapkFile, CapkStore, KeyMode};
use kernels::config::{Combination, EntryPointConfig, KernelId, TerminalData};
use kernels::dol::{DataStore, Dol};
use kernels::entry_point::{Action, EntryPoint, Event, Transaction};
use kernels::tlv::{self, Tag};
use kernels::types::{Amount, EmvDate, Ttq};

/// The host-answer validator of the terminal, compiled here from its source (pure: host
/// contract, ISO 8583 and TLV only) so fuzzing it does not build the whole terminal.
#[path = "../../src/terminal/answer.rs"]
#[allow(dead_code)]
mod answer;

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target: its name (the corpus folder, the AFL binary's argument) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("tlv", tlv_codec),
    ("dol", dol_builder),
    ("ppse", ppse_fci),
    ("cert", cert_recovery),
    ("iso8583_ascii87", iso8583_ascii87),
    ("iso8583_bcd87", iso8583_bcd87),
    ("acquirer", acquirer_request),
    ("host_answer", host_answer),
    ("card_apdu", card_apdu),
    ("kernel_c7", kernel_c7),
    ("kernel_c3", kernel_c3),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// BER-TLV: parse, validate, find, walk — and what parses re-encodes to a parse of the same.
pub fn tlv_codec(data: &[u8]) {
    let _ = tlv::validate(data);
    let _ = tlv::find(data, Tag(0x5A));
    let _ = tlv::walk_primitives(data, &mut |_| {});
    // The index answers what `find` answers, for every tag present.
    if let Ok(index) = tlv::Index::new(data) {
        let _ = tlv::walk_primitives(data, &mut |t| assert_eq!(Some(index.get(t.tag)), tlv::find(data, t.tag).ok(), "Index::get = find"));
    }
    if let Ok(items) = tlv::parse_all(data) {
        let mut b = tlv::Builder::new();
        for t in &items {
            b = b.put(t.tag, t.value);
        }
        let again = b.build();
        let reparsed = tlv::parse_all(&again).expect("what the builder wrote parses");
        assert_eq!(reparsed.len(), items.len(), "re-encoding keeps every object");
    }
}

/// DOL: a PDOL / CDOL from the card, built from terminal data: exactly the lengths it asks for.
pub fn dol_builder(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let (dol, values) = rest.split_at(rest.len().min(usize::from(n % 128)));
    if let Ok(d) = Dol::parse(dol) {
        let mut s = DataStore::new();
        for chunk in values.chunks(9) {
            if let Some((t, v)) = chunk.split_first() {
                s.set(Tag(0x9F00 | u32::from(*t)), v.to_vec());
            }
        }
        let built = d.build(&s);
        assert_eq!(built.len(), d.data_len(), "exactly the lengths the DOL asks for");
        assert!(d.split(&built).is_some(), "a DOL splits what it built");
    }
}

/// The PPSE's FCI (Book B §3.3.2): the directory entries a card offers.
pub fn ppse_fci(data: &[u8]) {
    if let Ok(entries) = kernels::entry_point::parse_ppse(data) {
        let combos = config(false).combinations;
        let ind: Vec<_> = combos.iter().map(|c| kernels::entry_point::preprocess(c, Amount(5_000), 2)).collect();
        let cands = kernels::entry_point::build_candidates(&entries, &combos, &ind);
        if let Some(i) = kernels::entry_point::select_candidate(&cands) {
            assert!(i < cands.len(), "the chosen candidate is one of the list");
        }
    }
}

/// Certificate recovery (Book 2 §6.3, §6.4): an issuer certificate and remainder from the card,
/// opened with each test CA key; what opens goes on to open an ICC certificate from the rest.
pub fn cert_recovery(data: &[u8]) {
    let capks = capks();
    let Some((&sel, rest)) = data.split_first() else { return };
    let Some(capk) = capks.iter().nth(usize::from(sel) % capks.len().max(1)) else { return };
    let n = capk.modulus.len();
    let (cert, rest) = rest.split_at(rest.len().min(n));
    let (remainder, rest) = rest.split_at(rest.len().min(usize::from(sel & 0x3F)));
    let pan = [0x62, 0x35, 0x88, 0x00, 0x00, 0x00, 0x00, 0x17];
    let date = EmvDate(261125);
    if let Ok(issuer) = kernels::oda::recover_issuer_key(capk, cert, Some(remainder), &[0x03], &pan, date) {
        let m = issuer.modulus.len();
        let (icc_cert, rest) = rest.split_at(rest.len().min(m));
        let _ = kernels::oda::recover_icc_key(&issuer, icc_cert, None, &[0x03], &pan, rest, date);
    }
}

/// ISO 8583 ascii87 (the terminal's link): unpack, and what unpacks packs again.
pub fn iso8583_ascii87(data: &[u8]) {
    if let Ok(m) = iso8583::ascii87().unpack(data) {
        let packed = iso8583::ascii87().pack(&m).expect("an unpacked message packs");
        assert_eq!(iso8583::ascii87().unpack(&packed).expect("repacked unpacks"), m);
    }
    let _ = iso8583::ascii87().unpack_framed(data);
}

/// ISO 8583 bcd87 with a TPDU (Chinese POS hosts).
pub fn iso8583_bcd87(data: &[u8]) {
    let _ = iso8583::bcd87().unpack_with_tpdu(data);
    if let Ok(m) = iso8583::bcd87().unpack(data) {
        let _ = iso8583::bcd87().pack(&m);
    }
}

/// The acquirer's request handler, as a connection without keys reaches it under `--mac off`
/// and with keys required (the link layer, registration, money rules, answers): any bytes.
pub fn acquirer_request(data: &[u8]) {
    static ACQ: OnceLock<Option<Arc<acquirer::Acquirer>>> = OnceLock::new();
    let acq = ACQ.get_or_init(|| {
        // tmpfs when there is one: the acquirer makes its records durable before answering.
        let base = if std::path::Path::new("/dev/shm").is_dir() { std::path::PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("shanfu-fuzz-acquirer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let seed = acquirer::Seed::builtin().ok()?;
        let acq = acquirer::Acquirer::open(&dir, &seed, acquirer::Faults::default()).ok()?;
        acq.set_mac_mode(acquirer::MacMode::Off);
        Some(Arc::new(acq))
    });
    let Some(acq) = acq else { return };
    let mut sess = acquirer::LinkSession::default();
    // The first byte picks one or two messages on the same connection.
    let (first, second) = match data.split_first() {
        Some((&k, rest)) if k & 1 == 1 && rest.len() >= 2 => rest.split_at(usize::from(k >> 1).min(rest.len())),
        _ => (data, &[][..]),
    };
    let _ = acq.handle_link(&mut sess, first);
    if !second.is_empty() {
        let _ = acq.handle_link(&mut sess, second);
    }
}

/// The terminal's check of a host answer against its request ([`answer::check`]).
pub fn host_answer(data: &[u8]) {
    static REQ: OnceLock<Message> = OnceLock::new();
    let req = REQ.get_or_init(|| {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set_str(field::PAN, "6235880000000017")
            .set_str(field::PROCESSING_CODE, "000000")
            .set_str(field::AMOUNT, "000000005000")
            .set_str(field::STAN, "000042")
            .set_str(field::TERMINAL_ID, "SHF00001")
            .set_str(field::CURRENCY_CODE, "156");
        m
    });
    if let Ok(resp) = iso8583::ascii87().unpack(data) {
        if let Ok(a) = answer::check(req, &resp) {
            // An accepted answer is the answer to this request.
            assert_eq!(resp.get(field::STAN), req.get(field::STAN));
            assert_eq!(resp.get(field::AMOUNT), req.get(field::AMOUNT));
            let _ = a.response_code.is_approved();
        }
    }
}

/// The card simulator's APDU handler: commands of one session, in sequence, on a wallet kept
/// across inputs (a long, hostile session), each command `len ‖ bytes`.
pub fn card_apdu(data: &[u8]) {
    static WALLET: OnceLock<Option<Mutex<test_cards::Wallet>>> = OnceLock::new();
    let Some(w) = WALLET.get_or_init(|| test_cards::Wallet::load("unionpay-phone").ok().map(Mutex::new)) else { return };
    let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
    for c in chunks(data) {
        let r = w.transmit(c);
        assert!(r.len() >= 2, "every answer carries a status word");
    }
}

/// The Entry Point and kernel C-7 against a hostile card: every card answer is `len ‖ bytes`.
pub fn kernel_c7(data: &[u8]) {
    hostile_card(data, KernelId::C7);
}

/// The Entry Point and kernel C-3 (Visa qVSDC) against a hostile card.
pub fn kernel_c3(data: &[u8]) {
    hostile_card(data, KernelId::C3);
}

/// Splits `data` into `len ‖ bytes` pieces, `len` two bytes big-endian (the last piece may be
/// short): how the card and kernel targets carry a sequence of APDUs.
pub fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let (c, r) = rest[2..].split_at(rest.len().saturating_sub(2).min(n));
        rest = r;
        Some(c)
    })
}

/// The inverse of [`chunks`], for seeds.
pub fn join_chunks<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        let n = u16::try_from(p.len()).unwrap_or(u16::MAX);
        out.extend(n.to_be_bytes());
        out.extend(&p[..usize::from(n)]);
    }
    out
}

/// A real session: the Entry Point and kernel against the card simulator's `profile`, every
/// (command, answer) exchanged — the seeds of the card and kernel targets.
pub fn session(profile: &str, kernel: KernelId, first: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(mut wallet) = test_cards::Wallet::load(profile) else { return vec![] };
    let mut cfg = config(first & 0x80 != 0);
    if kernel == KernelId::C3 {
        cfg.combinations.reverse();
    }
    let txn = Transaction {
        amount: Amount([0u64, 500, 5_000, 20_000, 50_000, 999_999, 1_000_001, 7][usize::from(first & 7)]),
        amount_other: None,
        txn_type: [0x00, 0x20, 0x01, 0x09][usize::from((first >> 3) & 3)],
        date: EmvDate(261125),
        time: [0x10, 0x30, 0x00],
        unpredictable_number: [0x12, 0x34, 0x56, 0x78],
    };
    let mut ep = EntryPoint::new(Arc::new(cfg), Arc::new(capks().clone()), txn);
    let mut out = Vec::new();
    let mut action = ep.start();
    for _ in 0..64 {
        action = match action {
            Action::Transmit(c) => {
                let cmd = c.to_bytes();
                let ans = wallet.transmit(&cmd);
                out.push((cmd, ans.clone()));
                match RApdu::parse(&ans) {
                    Some(r) => ep.handle(Event::Response(r)),
                    None => ep.handle(Event::CommError),
                }
            }
            Action::CardReadComplete(_) => ep.resume(),
            Action::Done(_) => break,
        };
    }
    out
}

const UP_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01];
const VISA_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];

fn config(online_only: bool) -> EntryPointConfig {
    let ttq = if online_only { [0x26, 0x80, 0x00, 0x80] } else { [0x26, 0x00, 0x00, 0x80] };
    let combo = |aid: &[u8], kernel| Combination {
        aid: aid.to_vec(),
        kernel,
        label: String::new(),
        txn_limit: Some(Amount(1_000_000)),
        floor_limit: Some(Amount(10_000)),
        terminal_floor_limit: None,
        cvm_limit: Some(Amount(30_000)),
        status_check: false,
        zero_amount_allowed: true,
        extended_selection: false,
        ttq: Some(Ttq(ttq)),
    };
    EntryPointConfig {
        terminal: TerminalData {
            country: [0x01, 0x56],
            currency: [0x01, 0x56],
            currency_exponent: 2,
            terminal_type: 0x22,
            capabilities: [0xE0, 0xE1, 0xC8],
            additional_capabilities: [0x60, 0, 0xF0, 0xA0, 0x01],
            terminal_id: "SHF00001".into(),
            merchant_name_location: "FUZZ".into(),
            online_capable: true,
        },
        combinations: vec![combo(UP_AID, KernelId::C7), combo(VISA_AID, KernelId::C3)],
    }
}

/// The project's test CA keys (config/capk.toml): certificates a hostile card sends are opened
/// with real keys, so recovery and the checks after it are reached.
fn capks() -> &'static CapkStore {
    static S: OnceLock<CapkStore> = OnceLock::new();
    S.get_or_init(|| {
        let file: Option<CapkFile> = toml::from_str(include_str!("../../config/capk.toml")).ok();
        file.and_then(|f| CapkStore::load_file(&f, KeyMode::Test).ok()).unwrap_or_else(|| CapkStore::load(&[], KeyMode::Test).expect("an empty store"))
    })
}

/// The first byte sets the amount (below the floor limit, above the CVM limit…) and whether the
/// terminal asks for an online cryptogram; the rest are the card's answers. The kernel `want`
/// is the one the configuration offers first, so both kernels are reached.
fn hostile_card(data: &[u8], want: KernelId) {
    let Some((&k, answers)) = data.split_first() else { return };
    let mut cfg = config(k & 0x80 != 0);
    if want == KernelId::C3 {
        cfg.combinations.reverse();
    }
    let amount = [0u64, 500, 5_000, 20_000, 50_000, 999_999, 1_000_001, 7][usize::from(k & 7)];
    let txn = Transaction {
        amount: Amount(amount),
        amount_other: None,
        txn_type: [0x00, 0x20, 0x01, 0x09][usize::from((k >> 3) & 3)],
        date: EmvDate(261125),
        time: [0x10, 0x30, 0x00],
        unpredictable_number: [0x12, 0x34, 0x56, 0x78],
    };
    static SHARED: OnceLock<Arc<CapkStore>> = OnceLock::new();
    let capks = SHARED.get_or_init(|| Arc::new(capks().clone())).clone();
    let mut ep = EntryPoint::new(Arc::new(cfg), capks, txn);
    let mut action = ep.start();
    let mut answers = chunks(answers);
    // Bounded: a card cannot keep the terminal talking for ever.
    for _ in 0..64 {
        action = match action {
            Action::Transmit(_) => match answers.next() {
                Some(b) => match RApdu::parse(b) {
                    Some(r) => ep.handle(Event::Response(r)),
                    None => ep.handle(Event::CommError),
                },
                None => ep.handle(Event::CardRemoved),
            },
            Action::CardReadComplete(_) => ep.resume(),
            Action::Done(_) => return,
        };
    }
    panic!("the Entry Point did not reach an outcome in 64 steps");
}
