//! Snapshot tests of every cashier screen, drawn by ratatui's TestBackend (80×24) from a real
//! till: journal on disk, embedded acquirer on 127.0.0.1, the demo phone as the reader. Values
//! that change from run to run (date and time, cryptogram, RRN) are masked in the snapshots.

use super::screens::sale::accept_amount_char;
use super::*;
use crate::journal::{Disposition, NotCompleted, TxnKind};
use crate::settings::Settings;
use crate::terminal::Terminal as Pos;
use host_contract::Lang;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use reader_drivers::virtual_reader::{Holder, PhoneInHand, VirtualReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Lab {
    app: App,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A till (English screens) with the demo phone as its reader.
fn lab(name: &str) -> Lab {
    lab_in(name, Lang::En)
}

fn lab_in(name: &str, lang: Lang) -> Lab {
    let phone = PhoneInHand::new("unionpay-phone", test_cards::Wallet::load("unionpay-phone").unwrap());
    lab_with(name, lang, Box::new(phone.reader()), Some(phone))
}

/// A till on `reader` in `lang`, as `shanfu pos` / `shanfu demo` build it (clock fixed).
fn lab_with(name: &str, lang: Lang, reader: SendReader, phone: Option<PhoneInHand>) -> Lab {
    let mut settings = Settings::load(None).unwrap();
    settings.lang = lang;
    lab_on(name, settings, reader, phone)
}

fn lab_on(name: &str, settings: Settings, reader: SendReader, phone: Option<PhoneInHand>) -> Lab {
    let dir = std::env::temp_dir().join(format!("shanfu-pos-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pos = Arc::new(Pos::open(settings, &dir, crate::terminal::HostChoice::Embedded).unwrap());
    let mut app = App::new(pos, reader, phone, dir.join("receipts"));
    app.clock = |_| "12:00:00 CST".into();
    Lab { app, dir }
}

impl Lab {
    fn keys(&mut self, keys: &str) {
        for c in keys.chars() {
            let code = match c {
                '\n' => KeyCode::Enter,
                '\x1b' => KeyCode::Esc,
                c => KeyCode::Char(c),
            };
            self.app.on_key(KeyEvent::from(code));
        }
    }

    /// Polls the worker until `done` holds (bounded).
    fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.app.poll();
            if done(&self.app) {
                return;
            }
            assert!(Instant::now() < deadline, "never reached: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn outcome(&mut self) {
        self.until("outcome", |a| a.screen == Screen::Outcome);
    }

    /// Enter on the outcome until the next sale (the outcome's hold time).
    fn next_sale(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.app.screen != Screen::Sale {
            assert!(Instant::now() < deadline, "no next sale: {:?}", self.app.screen);
            self.keys("\n");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A sale of `amount` paid with the demo phone.
    fn sale(&mut self, amount: &str) {
        self.keys(amount);
        self.keys("\n");
        self.app.phone.as_ref().unwrap().tap();
        self.outcome();
        self.next_sale();
    }

    /// The screen as text, volatile values masked.
    fn screen(&self) -> String {
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| view::draw(f, &self.app)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..buf.area.height {
            let mut skip = 0;
            for x in 0..buf.area.width {
                // A wide glyph (闪付) covers two cells; the second one is not printed.
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                if crate::text::width(sym) == 2 {
                    skip = 1;
                }
                text.push_str(sym);
            }
            text.push('\n');
        }
        let mask = |s: &mut String, v: &str| {
            if !v.is_empty() {
                *s = s.replace(v, &"#".repeat(v.chars().count()));
            }
        };
        for r in self.app.pos.journal.all().unwrap() {
            for (t, _) in &r.history {
                let when = crate::clock::format_local(&self.app.pos.settings.time_zone, *t);
                mask(&mut text, &when);
                mask(&mut text, &when[5..16]);
            }
            mask(&mut text, r.rrn.as_deref().unwrap_or(""));
            mask(&mut text, r.cryptogram.as_deref().unwrap_or(""));
        }
        text
    }
}

/// A host configured `mac = false` is named on every screen; the keyed link (the default) is not.
#[test]
fn an_unauthenticated_host_link_is_shown_on_the_screen() {
    let keyed = lab("link-keyed");
    assert!(!keyed.screen().contains("UNAUTHENTICATED"), "{}", keyed.screen());
    for (lang, says) in [(Lang::En, "UNAUTHENTICATED"), (Lang::ZhCn, "链路未认证")] {
        let mut settings = Settings::load(None).unwrap();
        settings.host.mac = false;
        settings.lang = lang;
        let phone = PhoneInHand::new("unionpay-phone", test_cards::Wallet::load("unionpay-phone").unwrap());
        let open = lab_on("link-open", settings, Box::new(phone.reader()), Some(phone));
        let title = open.screen().lines().next().unwrap_or("").to_string();
        assert!(title.contains(says), "{title}");
    }
}

#[test]
fn sale_screens_from_amount_entry_to_receipt() {
    let mut l = lab("sale");
    insta::assert_snapshot!("01_sale_empty", l.screen());
    l.keys("12.345");
    assert_eq!(l.app.amount, "12.34", "a third decimal is refused");
    insta::assert_snapshot!("02_sale_amount", l.screen());
    l.keys("\n");
    assert_eq!(l.app.screen, Screen::Busy);
    insta::assert_snapshot!("03_present_card", l.screen());
    l.app.phone.as_ref().unwrap().tap();
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().kind, BannerKind::Approved);
    insta::assert_snapshot!("04_outcome_approved", l.screen());
    l.keys("r");
    assert_eq!(l.app.screen, Screen::Receipt);
    insta::assert_snapshot!("05_receipt", l.screen());
    l.keys("e");
    let saved = std::fs::read_to_string(l.dir.join("receipts/receipt-1.txt")).unwrap();
    assert!(saved.contains("Verified by device") || saved.contains("No cardholder verification required"), "{saved}");
    assert!(saved.contains("623588******0017") && !saved.contains("6235880000000017"));
}

#[test]
fn see_phone_then_fingerprint_then_approved() {
    let mut l = lab("seephone");
    l.keys("400\n");
    l.app.phone.as_ref().unwrap().tap();
    // Settled: the phone has left the field and the terminal waits (120 s) for the second tap.
    l.until("see phone", |a| {
        matches!(a.busy, Some(Busy::Sale { stage: Stage::SeePhone, .. }))
            && a.countdown().is_some_and(|s| s > 60)
            && a.phone.as_ref().is_some_and(|p| !p.view().in_field)
    });
    insta::assert_snapshot!("06_see_phone", l.screen());
    l.keys("f");
    l.keys("t");
    l.outcome();
    let b = l.app.banner.clone().unwrap();
    assert_eq!((b.kind, b.reason.as_str()), (BannerKind::Approved, "Verified by device"));
}

#[test]
fn history_refund_void_and_settlement() {
    let mut l = lab("history");
    for amount in ["12.34\n", "56.78\n"] {
        l.keys(amount);
        l.app.phone.as_ref().unwrap().tap();
        l.outcome();
        l.keys("\n");
    }
    l.keys("h");
    assert_eq!(l.app.visible().len(), 2);
    insta::assert_snapshot!("07_history", l.screen());
    // Void the newest (56.78), refund the other.
    l.keys("v");
    assert!(l.app.confirm.as_ref().unwrap().question.starts_with("Void ¥56.78 of transaction 2"), "{:?}", l.app.confirm);
    insta::assert_snapshot!("07b_confirm_void", l.screen());
    l.keys("y");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().title, "VOIDED");
    // A voided sale cannot be refunded.
    l.keys("h");
    l.app.selected = l.app.visible().iter().position(|r| r.id == 2).unwrap();
    l.keys("ry");
    l.outcome();
    assert!(l.app.banner.as_ref().unwrap().reason.contains("voided"), "{:?}", l.app.banner);
    l.keys("h/12.34\n");
    assert_eq!(l.app.visible().len(), 1);
    l.keys("\n");
    assert_eq!(l.app.screen, Screen::Detail);
    insta::assert_snapshot!("08_detail", l.screen());
    // Any key but y: nothing happens.
    l.keys("rn");
    assert_eq!(l.app.screen, Screen::Detail);
    assert_eq!(l.app.pos.journal.all().unwrap().iter().filter(|r| r.kind == TxnKind::Refund).count(), 0);
    l.keys("ry");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().title, "APPROVED");
    // A second refund of the same sale is refused with the reason.
    l.keys("h/12.34\n");
    let first_sale = l.app.visible().iter().position(|r| r.kind == TxnKind::Purchase).unwrap();
    l.app.selected = first_sale;
    l.keys("ry");
    l.outcome();
    assert!(l.app.banner.as_ref().unwrap().reason.contains("already refunded"), "{:?}", l.app.banner);
    l.keys("\ns");
    assert_eq!(l.app.screen, Screen::Settlement);
    insta::assert_snapshot!("09_settlement", l.screen());
    l.keys("\n");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().title, "RECONCILED", "{:?}", l.app.banner);
}

#[test]
fn suspended_token_is_declined_with_a_reason_and_help_lists_the_keys() {
    let mut l = lab("suspended");
    let db = l.dir.join("acquirer");
    assert_eq!(crate::acquirer::admin_command(&db, "token suspend 6235880000000017").unwrap(), "ok");
    l.keys("50\n");
    l.app.phone.as_ref().unwrap().tap();
    l.outcome();
    let b = l.app.banner.clone().unwrap();
    assert_eq!(b.kind, BannerKind::Declined);
    assert!(b.reason.starts_with("Token suspended"), "{b:?}");
    insta::assert_snapshot!("10_outcome_declined", l.screen());
    l.keys("?");
    insta::assert_snapshot!("11_help", l.screen());
    l.keys("x");
    assert!(!l.app.help);
}

#[test]
fn amount_entry_rules() {
    assert!(accept_amount_char("", '1', 2));
    assert!(!accept_amount_char("0", '0', 2));
    assert!(accept_amount_char("1", '.', 2));
    assert!(!accept_amount_char("1.", '.', 2));
    assert!(!accept_amount_char("1.23", '4', 2));
    assert!(!accept_amount_char("1234567890", '1', 2));
    assert!(!accept_amount_char("1", 'x', 2));
}

#[test]
fn esc_while_waiting_for_the_card_cancels_without_a_charge() {
    let mut l = lab("cancel");
    l.keys("5\n");
    assert_eq!(l.app.screen, Screen::Busy);
    l.keys("\x1b");
    l.outcome();
    let b = l.app.banner.clone().unwrap();
    assert_eq!((b.kind, b.title.as_str()), (BannerKind::Info, "CANCELLED"), "{b:?}");
    let rec = l.app.pos.journal.all().unwrap();
    assert!(rec.iter().all(|r| !r.disposition.is_some_and(|d| d.is_approved()) && r.stan.is_none()), "{rec:?}");
}

#[test]
fn esc_during_the_see_phone_wait_ends_the_sale_cancelled() {
    let mut l = lab("cancel-seephone");
    l.keys("400\n");
    l.app.phone.as_ref().unwrap().tap();
    l.until("see phone", |a| matches!(a.busy, Some(Busy::Sale { stage: Stage::SeePhone, .. })));
    l.keys("\x1b");
    l.outcome();
    let b = l.app.banner.clone().unwrap();
    assert_eq!(b.title, "CANCELLED", "{b:?}");
    let rec = l.app.pos.journal.get(b.txn.unwrap()).unwrap();
    assert_eq!(rec.disposition, Some(Disposition::NotCompleted { reason: NotCompleted::Cancelled }), "{rec:?}");
    assert!(rec.stan.is_none(), "nothing went to the host");
}

/// Bug: `shanfu pos --reader virtual:PROFILE` paid once; every later sale said "no card
/// presented" (the virtual holder only tapped on the reader's first wait, ever).
#[test]
fn virtual_reader_pays_every_sale_not_only_the_first() {
    let wallet = test_cards::Wallet::load("unionpay-phone").unwrap();
    // As `shanfu pos --reader virtual:unionpay-phone` opens it (main.rs `open_reader`).
    let reader = VirtualReader::new("unionpay-phone", wallet, Holder { fingerprint_on_prompt: true, remove_after: None });
    let mut l = lab_with("virtual-pos", Lang::En, Box::new(reader), None);
    for (i, amount) in ["12.34\n", "5\n", "400\n"].into_iter().enumerate() {
        l.keys(amount);
        l.outcome();
        let b = l.app.banner.clone().unwrap();
        assert_eq!(b.kind, BannerKind::Approved, "sale {}: {b:?}", i + 1);
        l.next_sale();
    }
}

/// Bug: a tap on the idle sale screen (the demo phone's `t` with no sale waiting) was kept and
/// paid the next sale. A card counts only after the terminal asked for it.
#[test]
fn a_tap_before_the_terminal_asks_for_the_card_does_not_pay() {
    let mut l = lab("early-tap");
    l.keys("t");
    assert_eq!(l.app.screen, Screen::Sale);
    // Also a tap that reached the phone some other way before the sale (a stray one).
    l.app.phone.as_ref().unwrap().tap();
    l.keys("5\n");
    std::thread::sleep(Duration::from_millis(300));
    l.app.poll();
    assert_eq!(l.app.screen, Screen::Busy, "the sale must wait for a tap: {:?}", l.app.banner);
    assert!(l.app.waits_for_card());
    l.keys("\x1b");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().kind, BannerKind::Info, "{:?}", l.app.banner);
    assert!(l.app.pos.journal.all().unwrap().iter().all(|r| !r.disposition.is_some_and(|d| d.is_approved())));
    // The tap asked for still pays.
    l.next_sale();
    l.sale("6");
    assert!(l.app.pos.journal.all().unwrap().iter().any(|r| r.amount == 600 && r.disposition.is_some_and(|d| d.is_approved())));
}

/// Bug: a refunded sale still showed "APPROVED / Completed" in the history and its detail.
#[test]
fn refunded_and_voided_sales_show_as_such_in_history_and_detail() {
    let mut l = lab("undone");
    l.sale("12.34");
    l.sale("56.78");
    l.keys("h");
    l.keys("vy"); // the newest, 56.78 (#2)
    l.outcome();
    l.keys("h");
    l.app.selected = l.app.visible().iter().position(|r| r.id == 1).unwrap();
    l.keys("ry");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().kind, BannerKind::Approved, "{:?}", l.app.banner);
    l.keys("h");
    let s = l.screen();
    let row = |id: &str| s.lines().find(|line| line.trim_start_matches(['│', '▶', ' ']).starts_with(&format!("{id} "))).unwrap_or_default().to_string();
    assert!(row("1").contains("REFUNDED #3") && !row("1").contains("APPROVED"), "{s}");
    assert!(row("2").contains("VOIDED") && row("2").contains("Reversed"), "{s}");
    insta::assert_snapshot!("12_history_refunded_voided", s);
    l.app.selected = l.app.visible().iter().position(|r| r.id == 1).unwrap();
    l.keys("\n");
    assert_eq!(l.app.screen, Screen::Detail);
    let detail = l.app.receipt_text().unwrap();
    assert!(detail.contains("REFUNDED by transaction #3"), "{detail}");
}

/// Bug: the history's amount column cut large amounts (12 digits).
#[test]
fn history_amount_column_fits_the_largest_amount() {
    let mut l = lab("wide");
    // Above the contactless limit: refused before any card, but journaled with its amount.
    l.keys("9999999999.99\n");
    l.outcome();
    l.next_sale();
    l.keys("h");
    let s = l.screen();
    assert!(s.contains("9999999999.99"), "{s}");
}

/// The main screens in Simplified Chinese (the default of a CNY terminal): sale, payment,
/// outcome, receipt, history with a confirmation, settlement, help.
#[test]
fn main_screens_in_chinese() {
    let mut l = lab_in("zh", Lang::ZhCn);
    assert_eq!(l.app.lang, Lang::ZhCn);
    l.keys("12.34");
    insta::assert_snapshot!("zh_01_sale_amount", l.screen());
    l.keys("\n");
    insta::assert_snapshot!("zh_02_present_card", l.screen());
    l.app.phone.as_ref().unwrap().tap();
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().title, "交易成功");
    insta::assert_snapshot!("zh_03_outcome_approved", l.screen());
    l.keys("r");
    let receipt = l.screen();
    for label in ["商户编号", "终端编号", "日期时间", "卡号", "金额", "CST"] {
        assert!(receipt.contains(label), "{label}: {receipt}");
    }
    insta::assert_snapshot!("zh_04_receipt", receipt);
    l.keys("\x1b");
    l.next_sale();
    l.sale("56.78");
    l.keys("h");
    insta::assert_snapshot!("zh_05_history", l.screen());
    l.keys("v");
    insta::assert_snapshot!("zh_06_confirm_void", l.screen());
    l.keys("y");
    l.outcome();
    assert_eq!(l.app.banner.as_ref().unwrap().title, "已撤销");
    l.next_sale();
    l.keys("s");
    insta::assert_snapshot!("zh_07_settlement", l.screen());
    l.keys("?");
    insta::assert_snapshot!("zh_08_help", l.screen());
}

/// The help screen lists every hinted row of the key table, in English too.
#[test]
fn help_lists_every_key_of_the_table() {
    let mut l = lab("help");
    l.keys("?");
    let s = l.screen();
    for (heading, keys) in keys::help_lines(Lang::En) {
        assert!(s.contains(&heading), "{heading} missing:\n{s}");
        for k in keys {
            assert!(s.contains(&k), "{k} missing:\n{s}");
        }
    }
}

mod pin_pad {
    use super::*;
    use crate::terminal::pin::{PinEntry, PinPad, PinPrompt};
    use std::thread::JoinHandle;

    fn prompt(bypass: bool, timeout: Duration) -> PinPrompt {
        PinPrompt { amount: "¥500.00".into(), pan_masked: "622500******0019".into(), bypass_allowed: bypass, timeout }
    }

    /// The worker's side: asks this screen's PIN pad on a thread, as a sale does.
    fn ask(lab: &mut Lab, bypass: bool, timeout: Duration) -> JoinHandle<PinEntry> {
        let mut pad = lab.app.screen_pin_pad();
        let p = prompt(bypass, timeout);
        let h = std::thread::spawn(move || pad.enter(&p));
        lab.until("PIN screen", |a| a.pin.is_some());
        h
    }

    fn key(lab: &mut Lab, code: KeyCode) {
        lab.app.on_key(KeyEvent::from(code));
    }

    #[test]
    fn pin_screen_shows_dots_never_the_digits() {
        let mut lab = lab("pin-snap");
        let h = ask(&mut lab, false, Duration::from_secs(30));
        lab.keys("4711");
        let s = lab.screen();
        assert!(s.contains("••••") && !s.contains("•••••"), "{s}");
        assert!(!s.contains("4711") && !s.contains("b PIN bypass"), "{s}");
        assert!(s.contains("¥500.00") && s.contains("622500******0019"), "{s}");
        insta::assert_snapshot!("10_pin_entry", s);
        lab.keys("\x1b");
        assert!(matches!(h.join().unwrap(), PinEntry::Cancelled));
    }

    #[test]
    fn digits_and_enter_give_the_pin_backspace_corrects() {
        let mut lab = lab("pin-enter");
        let h = ask(&mut lab, false, Duration::from_secs(30));
        lab.keys("123");
        lab.keys("\n"); // 3 digits: Enter does nothing
        assert!(lab.app.pin.is_some());
        lab.keys("49");
        key(&mut lab, KeyCode::Backspace);
        assert_eq!(lab.app.pin.as_ref().map(|p| p.typed()), Some(4));
        lab.keys("56\n");
        assert!(lab.app.pin.is_none());
        match h.join().unwrap() {
            PinEntry::Entered(p) => assert_eq!(p.len(), 6),
            other => panic!("expected a PIN, got {other:?}"),
        }
    }

    #[test]
    fn more_than_12_digits_are_not_taken() {
        let mut lab = lab("pin-long");
        let h = ask(&mut lab, false, Duration::from_secs(30));
        lab.keys("12345678901234\n");
        match h.join().unwrap() {
            PinEntry::Entered(p) => assert_eq!(p.len(), 12),
            other => panic!("expected a PIN, got {other:?}"),
        }
    }

    #[test]
    fn esc_cancels() {
        let mut lab = lab("pin-esc");
        let h = ask(&mut lab, true, Duration::from_secs(30));
        lab.keys("12\x1b");
        assert!(lab.app.pin.is_none());
        assert!(matches!(h.join().unwrap(), PinEntry::Cancelled));
        // Ctrl-C cancels too; other chords type nothing.
        let h = ask(&mut lab, true, Duration::from_secs(30));
        lab.app.on_key(KeyEvent::new(KeyCode::Char('1'), ratatui::crossterm::event::KeyModifiers::ALT));
        lab.app.on_key(KeyEvent::new(KeyCode::Char('b'), ratatui::crossterm::event::KeyModifiers::CONTROL));
        assert_eq!(lab.app.pin.as_ref().map(|p| p.typed()), Some(0));
        lab.app.on_key(KeyEvent::new(KeyCode::Char('c'), ratatui::crossterm::event::KeyModifiers::CONTROL));
        assert!(lab.app.pin.is_none());
        assert!(matches!(h.join().unwrap(), PinEntry::Cancelled));
    }

    #[test]
    fn bypass_only_when_allowed() {
        let mut lab = lab("pin-bypass");
        let h = ask(&mut lab, false, Duration::from_secs(30));
        lab.keys("b");
        assert!(lab.app.pin.is_some(), "bypass not allowed: ignored");
        lab.keys("\x1b");
        assert!(matches!(h.join().unwrap(), PinEntry::Cancelled));
        let h = ask(&mut lab, true, Duration::from_secs(30));
        assert!(lab.screen().contains("b PIN bypass"));
        lab.keys("b");
        assert!(matches!(h.join().unwrap(), PinEntry::Bypassed));
    }

    #[test]
    fn no_key_within_the_timeout_times_out() {
        let mut lab = lab("pin-timeout");
        let h = ask(&mut lab, false, Duration::from_millis(200));
        lab.keys("12");
        lab.until("PIN timeout", |a| a.pin.is_none());
        assert!(matches!(h.join().unwrap(), PinEntry::TimedOut));
    }
}
