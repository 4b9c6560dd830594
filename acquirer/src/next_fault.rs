//! One-shot faults set over the admin port (`faults delay=MS drop close code=XX`, `faults
//! clear`): they hit the next transaction request only (0100 / 0200 / 0220 / 0400 / 0500 —
//! never network management), so a test can lose or delay one answer and see the terminal's
//! reversal (0400) answered normally.

/// What happens to the next transaction request's answer. The request itself is always
/// processed (a debit is posted even when its answer is lost).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextFault {
    /// Write the answer this many ms late.
    pub delay_ms: Option<u64>,
    /// Never answer.
    pub drop: bool,
    /// Close the connection instead of answering.
    pub close: bool,
    /// Answer with this DE 39 instead of the issuer's decision.
    pub code: Option<String>,
}

impl NextFault {
    /// Parses the words after `faults`. `Ok(None)` for `clear`.
    pub fn parse(words: &[&str]) -> Result<Option<NextFault>, String> {
        if words == ["clear"] {
            return Ok(None);
        }
        if words.is_empty() {
            return Err("expected `faults [delay=MS] [drop] [close] [code=XX]` or `faults clear`".into());
        }
        let mut f = NextFault::default();
        for w in words {
            match w.split_once('=') {
                Some(("delay", ms)) => f.delay_ms = Some(ms.parse().map_err(|_| format!("delay={ms}: not a number of milliseconds"))?),
                Some(("code", c)) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphanumeric()) => f.code = Some(c.to_string()),
                Some(("code", c)) => return Err(format!("code={c}: DE 39 is two letters or digits")),
                None if *w == "drop" => f.drop = true,
                None if *w == "close" => f.close = true,
                _ => return Err(format!("unknown fault {w:?} (delay=MS, drop, close, code=XX)")),
            }
        }
        if f.drop && f.close {
            return Err("drop and close: the answer is either lost or the connection closed, not both".into());
        }
        Ok(Some(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_words_parse_and_bad_ones_are_refused() {
        assert_eq!(NextFault::parse(&["clear"]), Ok(None));
        let f = NextFault::parse(&["delay=1500", "code=Q7"]).unwrap().unwrap();
        assert_eq!((f.delay_ms, f.code.as_deref(), f.drop), (Some(1500), Some("Q7"), false));
        assert!(NextFault::parse(&["drop"]).unwrap().unwrap().drop);
        assert!(NextFault::parse(&["drop", "close"]).is_err());
        assert!(NextFault::parse(&["code=123"]).is_err());
        assert!(NextFault::parse(&["delay=soon"]).is_err());
        assert!(NextFault::parse(&["garble"]).is_err());
        assert!(NextFault::parse(&[]).is_err());
    }
}

#[cfg(test)]
mod admin_tests {
    use crate::{Acquirer, Faults, Seed};

    #[test]
    fn the_admin_line_sets_one_fault_for_the_next_request_only() {
        let dir = std::env::temp_dir().join(format!("shanfu-next-fault-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let acq = Acquirer::open(&dir, &Seed::builtin().unwrap(), Faults::default()).unwrap();
        assert_eq!(acq.admin_line("faults drop"), "ok");
        assert!(acq.take_next_fault().is_some_and(|f| f.drop));
        assert!(acq.take_next_fault().is_none(), "one shot");
        assert_eq!(acq.admin_line("faults delay=50 code=Q7"), "ok");
        assert_eq!(acq.admin_line("faults clear"), "ok");
        assert!(acq.take_next_fault().is_none());
        assert!(acq.admin_line("faults sometimes").starts_with("error: "));
        // `account block` reaches the funding account of a token.
        assert_eq!(acq.admin_line("account block 6235880000000017"), "ok");
        let funding = acq.token("6235880000000017").unwrap().unwrap().funding_pan;
        assert_eq!(acq.account(&funding).unwrap().unwrap().status, crate::seed::AccountStatus::Blocked);
        assert_eq!(acq.admin_line("account unblock 6235880000000017"), "ok");
        assert_eq!(acq.account(&funding).unwrap().unwrap().status, crate::seed::AccountStatus::Active);
        assert!(acq.admin_line("account block 1234").starts_with("error: "));
        drop(acq);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
