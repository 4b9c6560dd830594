//! The message contract between the shanfu terminal and an acquirer (docs/host.md), as code.
//!
//! The terminal and the acquirer simulator are separate systems: this crate is all they share
//! besides the ISO 8583 codec. One table of response codes (DE 39) with their meaning and the
//! texts a cashier or cardholder sees; the processing codes (DE 3) and entry mode (DE 22) of the
//! contract; the network management codes (DE 70) and the DE 60 formats of the sign-on answer
//! ([`SignOnPosition`]) and of the reconciliation ([`BatchNumber`]).

use serde::{Deserialize, Serialize};

/// Languages of the texts people read (screens, receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Lang {
    /// Simplified Chinese (the default for a CNY terminal).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

/// DE 39 response codes the contract defines (docs/host.md "Response codes"). A code outside
/// this table is not an answer the terminal can act on: it is treated as a malformed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResponseCode {
    /// 00 approved.
    Approved,
    /// 03 invalid merchant: DE 42 missing, or not the merchant the terminal is registered to.
    InvalidMerchant,
    /// 05 do not honour.
    DoNotHonour,
    /// 12 invalid transaction (a reversal of a settled sale, or of one refunded in part).
    InvalidTransaction,
    /// 13 invalid amount (e.g. a refund above what is left of its original).
    InvalidAmount,
    /// 14 invalid card number (unknown or deleted token).
    InvalidCard,
    /// 25 unable to locate the original (a refund's DE 37 names no approved sale).
    OriginalNotFound,
    /// 30 format error.
    FormatError,
    /// 51 insufficient funds.
    InsufficientFunds,
    /// 54 expired card.
    ExpiredCard,
    /// 55 incorrect PIN (online PIN verified by the issuer and wrong).
    IncorrectPin,
    /// 57 transaction not permitted to the card (token domain restriction).
    NotPermitted,
    /// 58 transaction not permitted to the terminal: DE 41 is not a registered terminal.
    TerminalNotPermitted,
    /// 62 restricted card (token suspended: lost phone).
    RestrictedCard,
    /// 63 security violation: a missing or wrong MAC, keys the host does not hold, a refused
    /// key exchange (issue 12; ISO 8583:1987 DE 39 table).
    SecurityViolation,
    /// 75 allowable number of PIN tries exceeded.
    PinTriesExceeded,
    /// 82 cryptogram (ARQC) verification failed.
    CryptogramFailed,
    /// 91 issuer or switch inoperative.
    IssuerUnavailable,
    /// 94 duplicate transmission (same STAN, different request).
    Duplicate,
    /// 95 reconciliation totals differ (0510).
    TotalsDiffer,
    /// 96 system malfunction.
    SystemError,
}

/// One row of the response-code table.
struct Row {
    rc: ResponseCode,
    code: &'static str,
    meaning: &'static str,
    en: &'static str,
    zh: &'static str,
}

/// The table (docs/host.md): code, meaning, cashier text in English and Simplified Chinese.
const TABLE: &[Row] = &[
    Row { rc: ResponseCode::Approved, code: "00", meaning: "approved", en: "Approved", zh: "交易成功" },
    Row {
        rc: ResponseCode::InvalidMerchant,
        code: "03",
        meaning: "invalid merchant",
        en: "Merchant not registered with the acquirer — not charged; call support",
        zh: "无效商户 — 未扣款，请联系收单机构",
    },
    Row {
        rc: ResponseCode::DoNotHonour, code: "05", meaning: "do not honour", en: "Declined by the issuer — ask for another card", zh: "发卡行拒绝 — 请换卡"
    },
    Row {
        rc: ResponseCode::InvalidTransaction,
        code: "12",
        meaning: "invalid transaction",
        en: "Not allowed for this transaction (already settled?) — not done",
        zh: "无效交易（已结算？）— 未处理",
    },
    Row {
        rc: ResponseCode::InvalidAmount,
        code: "13",
        meaning: "invalid amount",
        en: "Amount not allowed (more than the original left to refund?) — not done",
        zh: "金额无效（超过原交易可退金额？）— 未处理",
    },
    Row {
        rc: ResponseCode::InvalidCard,
        code: "14",
        meaning: "invalid card number (unknown or deleted token)",
        en: "Card not recognised — ask for another card",
        zh: "无效卡号 — 请换卡",
    },
    Row {
        rc: ResponseCode::OriginalNotFound,
        code: "25",
        meaning: "unable to locate the original transaction",
        en: "Original sale not found at the acquirer — not done",
        zh: "未找到原交易 — 未处理",
    },
    Row { rc: ResponseCode::FormatError, code: "30", meaning: "format error", en: "Host format error — not charged", zh: "报文格式错误 — 未扣款" },
    Row {
        rc: ResponseCode::InsufficientFunds,
        code: "51",
        meaning: "insufficient funds",
        en: "Insufficient funds — ask for another card",
        zh: "余额不足 — 请换卡",
    },
    Row { rc: ResponseCode::ExpiredCard, code: "54", meaning: "expired card", en: "Card expired — ask for another card", zh: "卡已过期 — 请换卡" },
    Row {
        rc: ResponseCode::IncorrectPin,
        code: "55",
        meaning: "incorrect PIN",
        en: "Incorrect PIN — not charged; the cardholder may try again",
        zh: "密码错误 — 未扣款，请重新输入",
    },
    Row {
        rc: ResponseCode::NotPermitted,
        code: "57",
        meaning: "transaction not permitted to the card",
        en: "Not permitted for this card — ask for another card",
        zh: "该卡不支持此交易 — 请换卡",
    },
    Row {
        rc: ResponseCode::TerminalNotPermitted,
        code: "58",
        meaning: "transaction not permitted to the terminal (not registered)",
        en: "Terminal not registered with the acquirer — not charged; call support",
        zh: "终端未登记 — 未扣款，请联系收单机构",
    },
    Row {
        rc: ResponseCode::RestrictedCard,
        code: "62",
        meaning: "restricted card (token suspended)",
        en: "Token suspended — the wallet card is blocked (lost phone?); ask for another card",
        zh: "卡片已挂失/暂停 — 请换卡",
    },
    Row {
        rc: ResponseCode::SecurityViolation,
        code: "63",
        meaning: "security violation (MAC or keys)",
        en: "Host link security check failed — not charged",
        zh: "安全校验失败 — 未扣款",
    },
    Row {
        rc: ResponseCode::PinTriesExceeded,
        code: "75",
        meaning: "PIN tries exceeded",
        en: "PIN tries exceeded — card locked for PIN; ask for another card",
        zh: "密码错误次数超限 — 请换卡",
    },
    Row {
        rc: ResponseCode::CryptogramFailed,
        code: "82",
        meaning: "cryptogram verification failed",
        en: "Card verification failed — try another card",
        zh: "卡片认证失败 — 请换卡",
    },
    Row {
        rc: ResponseCode::IssuerUnavailable,
        code: "91",
        meaning: "issuer or switch inoperative",
        en: "Issuer not available — not charged; try again later",
        zh: "发卡行无响应 — 未扣款，请稍后再试",
    },
    Row {
        rc: ResponseCode::Duplicate, code: "94", meaning: "duplicate transmission", en: "Duplicate request refused — not charged", zh: "重复交易 — 未扣款"
    },
    Row { rc: ResponseCode::TotalsDiffer, code: "95", meaning: "reconciliation totals differ", en: "Settlement totals differ", zh: "结算金额不符" },
    Row {
        rc: ResponseCode::SystemError,
        code: "96",
        meaning: "system malfunction",
        en: "Host error — not charged; try again",
        zh: "主机故障 — 未扣款，请重试",
    },
];

impl ResponseCode {
    /// Every code of the contract, in table order.
    pub fn all() -> impl Iterator<Item = ResponseCode> {
        TABLE.iter().map(|r| r.rc)
    }

    fn row(self) -> &'static Row {
        // The table is in declaration order (tested by `table_is_in_declaration_order`).
        &TABLE[self as usize]
    }

    /// The two characters of DE 39.
    pub fn code(self) -> &'static str {
        self.row().code
    }

    /// Parses DE 39; `None` for a code the contract does not define.
    pub fn from_code(code: &str) -> Option<ResponseCode> {
        TABLE.iter().find(|r| r.code == code).map(|r| r.rc)
    }

    /// What the code means (for logs and the journal).
    pub fn meaning(self) -> &'static str {
        self.row().meaning
    }

    /// What the cashier reads on the screen and the receipt.
    pub fn text(self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.row().en,
            Lang::ZhCn => self.row().zh,
        }
    }

    pub fn is_approved(self) -> bool {
        self == ResponseCode::Approved
    }

    /// After this answer to a reversal (0410) nothing is left to undo at the host: 00 reversed
    /// now, 25 the host never had the original (nothing was posted; it refuses the original
    /// if it comes late), 94 already reversed. Any other answer leaves the reversal owed.
    pub fn ends_reversal(self) -> bool {
        matches!(self, ResponseCode::Approved | ResponseCode::OriginalNotFound | ResponseCode::Duplicate)
    }

    /// The host did not process the request — its link check failed (63), the issuer or the
    /// host itself was down (91, 96) — so the same request may be sent again later and is still
    /// owed: a store-and-forward advice stays pending on these, it is not "delivered".
    pub fn is_not_processed(self) -> bool {
        matches!(self, ResponseCode::SecurityViolation | ResponseCode::IssuerUnavailable | ResponseCode::SystemError)
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The response MTI the contract expects for a request: function digit + 1, and a repeat
/// (origin 1) answered as the original (0401 → 0410, 0221 → 0230); `None` for a response or
/// function 9. ISO 8583:1987 MTI positions 3 and 4; docs/host.md "Messages".
pub fn response_mti(req: iso8583::Mti) -> Option<iso8583::Mti> {
    let d = *req.as_bytes();
    let function = d[2].checked_sub(b'0')?;
    if function % 2 != 0 || function >= 9 {
        return None;
    }
    iso8583::Mti::from_ascii([d[0], d[1], d[2] + 1, b'0'])
}

/// DE 3 processing codes of the contract.
pub mod processing {
    /// Goods and services (purchase).
    pub const PURCHASE: &str = "000000";
    /// Refund (credit to the card).
    pub const REFUND: &str = "200000";
    /// Cash (disbursement).
    pub const CASH: &str = "010000";
    /// Purchase with cashback (DE 4 is the total, cashback included).
    pub const CASHBACK: &str = "090000";
}

/// DE 22 POS entry mode: contactless EMV (07), PIN entry capability 1.
pub const ENTRY_MODE_CONTACTLESS: &str = "071";

/// DE 70 network management codes of the contract (0800 / 0810).
pub mod network {
    /// Sign-on: the 0810 carries DE 60 = [`super::SignOnPosition`].
    pub const SIGN_ON: &str = "001";
    /// Echo test: the 0810 carries no DE 60.
    pub const ECHO: &str = "301";
    /// Deny-list download (transit gates): DE 62 of the 0800 is a [`super::deny_sync::Request`],
    /// DE 62 of the 0810 a [`super::deny_sync::Chunk`]. The contract's own code (ISO 8583:1987
    /// leaves DE 70 values to the network; unverified against any scheme's table).
    pub const DENY_LIST: &str = "380";
    /// Terminal master key provisioning, first exchange: DE 63 of the 0800 is the hex of a
    /// `TerminalHello`, DE 63 of the 0810 the hex of the `AcquirerAnswer` (docs/keys.md,
    /// docs/host.md "Keys"). The contract's own code (unverified against any scheme's table).
    pub const PROVISION: &str = "170";
    /// Terminal master key provisioning, confirmation: DE 63 of the 0800 is the hex of a
    /// `TerminalConfirm`; the 0810 says 00 (stored) or 63.
    pub const PROVISION_CONFIRM: &str = "171";
}

pub mod link;

pub mod deny_sync;
pub mod transit;

/// Parses exactly `N` ASCII digits.
fn digits<const N: usize>(s: &str) -> Option<u32> {
    (s.len() == N && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A settlement batch number, 000001-999999 (docs/host.md "Batches"): DE 60 of a 0500 (and of
/// its 0510), and the second half of the sign-on DE 60. The acquirer keeps one open batch per
/// terminal; closing it opens [`BatchNumber::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BatchNumber(u32);

impl BatchNumber {
    /// The batch a terminal the acquirer has never settled starts with.
    pub const FIRST: BatchNumber = BatchNumber(1);
    /// The last number before the cycle starts again at [`BatchNumber::FIRST`].
    pub const MAX: u32 = 999_999;

    /// `None` outside 1..=999999.
    pub fn new(n: u32) -> Option<BatchNumber> {
        (1..=Self::MAX).contains(&n).then_some(BatchNumber(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The batch opened when this one closes (999999 → 000001).
    pub fn next(self) -> BatchNumber {
        BatchNumber(if self.0 >= Self::MAX { 1 } else { self.0 + 1 })
    }

    /// DE 60 of a 0500: six digits.
    pub fn to_de60(self) -> String {
        format!("{:06}", self.0)
    }

    /// DE 60 of a 0500: exactly six digits, not 000000.
    pub fn parse_de60(de60: &str) -> Option<BatchNumber> {
        digits::<6>(de60).and_then(BatchNumber::new)
    }
}

impl TryFrom<u32> for BatchNumber {
    type Error = String;
    fn try_from(n: u32) -> Result<BatchNumber, String> {
        BatchNumber::new(n).ok_or_else(|| format!("batch number {n} is not 1 to 999999"))
    }
}

impl From<BatchNumber> for u32 {
    fn from(b: BatchNumber) -> u32 {
        b.0
    }
}

impl std::fmt::Display for BatchNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// DE 60 of a sign-on 0810 (DE 70 = 001): where the acquirer says the terminal stands, so a
/// terminal whose journal was reset continues after its last STAN and settles the right batch.
/// 12 digits: last STAN the acquirer has seen from this terminal id (6, `000000` if none) ‖ the
/// terminal's open batch (6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignOnPosition {
    /// 0 = no request seen from this terminal id; else 1..=999999.
    pub last_stan: u32,
    pub batch: BatchNumber,
}

impl SignOnPosition {
    /// `last_stan` above 999999 is not representable: `None`.
    pub fn to_de60(&self) -> Option<String> {
        (self.last_stan <= 999_999).then(|| format!("{:06}{}", self.last_stan, self.batch.to_de60()))
    }

    /// Exactly 12 digits; the batch half must not be 000000.
    pub fn parse_de60(de60: &str) -> Option<SignOnPosition> {
        if de60.len() != 12 || !de60.is_ascii() {
            return None;
        }
        let (stan, batch) = de60.split_at(6);
        Some(SignOnPosition { last_stan: digits::<6>(stan)?, batch: BatchNumber::parse_de60(batch)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.rc as usize, i, "{:?}", row.rc);
        }
        assert_eq!(ResponseCode::SystemError as usize, TABLE.len() - 1);
    }

    #[test]
    fn every_variant_has_one_row_and_codes_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for row in TABLE {
            assert!(seen.insert(row.code), "code {} twice", row.code);
            assert_eq!(ResponseCode::from_code(row.code), Some(row.rc));
            assert_eq!(row.rc.code(), row.code);
            assert!(!row.rc.text(Lang::En).is_empty() && !row.rc.text(Lang::ZhCn).is_empty());
        }
        assert_eq!(ResponseCode::all().count(), TABLE.len());
    }

    #[test]
    fn response_mtis() {
        let m = |s: &str| s.parse::<iso8583::Mti>().unwrap();
        assert_eq!(response_mti(m("0200")), Some(m("0210")));
        assert_eq!(response_mti(m("0401")), Some(m("0410")));
        assert_eq!(response_mti(m("0221")), Some(m("0230")));
        assert_eq!(response_mti(m("0800")), Some(m("0810")));
        assert_eq!(response_mti(m("0210")), None);
        assert_eq!(response_mti(m("0290")), None);
    }

    #[test]
    fn batch_number_de60() {
        let b = BatchNumber::parse_de60("000042").unwrap();
        assert_eq!((b.get(), b.to_de60(), b.to_string()), (42, "000042".to_string(), "000042".to_string()));
        assert_eq!(b.next().get(), 43);
        assert_eq!(BatchNumber::new(999_999).unwrap().next(), BatchNumber::FIRST);
        assert_eq!(BatchNumber::FIRST.to_de60(), "000001");
        for bad in ["", "000000", "42", "0000042", "00004a", " 00042", "+00042", "９９９９９９"] {
            assert_eq!(BatchNumber::parse_de60(bad), None, "{bad:?}");
        }
        assert_eq!(BatchNumber::new(0), None);
        assert_eq!(BatchNumber::new(1_000_000), None);
        for n in [1, 7, 999_999] {
            let b = BatchNumber::new(n).unwrap();
            assert_eq!(BatchNumber::parse_de60(&b.to_de60()), Some(b));
        }
        assert!(BatchNumber::try_from(0).is_err());
    }

    #[test]
    fn sign_on_position_de60() {
        let p = SignOnPosition { last_stan: 123, batch: BatchNumber::new(7).unwrap() };
        assert_eq!(p.to_de60().as_deref(), Some("000123000007"));
        assert_eq!(SignOnPosition::parse_de60("000123000007"), Some(p));
        let none = SignOnPosition { last_stan: 0, batch: BatchNumber::FIRST };
        assert_eq!(none.to_de60().as_deref(), Some("000000000001"));
        assert_eq!(SignOnPosition::parse_de60("000000000001"), Some(none));
        assert_eq!(SignOnPosition::parse_de60("999999999999").map(|p| (p.last_stan, p.batch.get())), Some((999_999, 999_999)));
        for bad in ["", "000123", "000123000000", "00012300007", "0001230000071", "00012a000007", "000123 00007", "é00123000007"] {
            assert_eq!(SignOnPosition::parse_de60(bad), None, "{bad:?}");
        }
        assert_eq!(SignOnPosition { last_stan: 1_000_000, batch: BatchNumber::FIRST }.to_de60(), None);
    }

    #[test]
    fn unknown_codes_are_not_in_the_contract() {
        for c in ["", "0", "000", "99", "A1", "0O", " 0"] {
            assert_eq!(ResponseCode::from_code(c), None, "{c:?}");
        }
        assert!(ResponseCode::Approved.is_approved() && !ResponseCode::DoNotHonour.is_approved());
    }

    #[test]
    fn only_reversed_not_found_and_already_reversed_end_a_reversal() {
        let ends: Vec<&str> = ResponseCode::all().filter(|c| c.ends_reversal()).map(ResponseCode::code).collect();
        assert_eq!(ends, ["00", "25", "94"]);
    }
}
