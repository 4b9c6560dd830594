//! The transaction types the terminal runs — purchase, refund, cash, purchase with cashback —
//! and what each changes: Transaction Type 9C and Amount, Other 9F03 in the kernel's data (PDOL),
//! the ISO 8583 processing code (DE 3), and the floor limit the Entry Point applies.

use crate::journal::TxnKind;
use kernels::config::EntryPointConfig;
use kernels::types::Amount;
use serde::{Deserialize, Serialize};

/// One transaction type. Amount, Authorised (9F02) is always the total the card is asked for:
/// for purchase with cashback it includes the cashback, which also goes alone in Amount, Other
/// 9F03 (EMV Book 3 Annex A1; C-3 §5.4.2.1: "purchase with cashback requires 9F03").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TxnType {
    #[default]
    Purchase,
    Refund,
    Cash,
    /// Purchase with cashback.
    Cashback,
}

impl TxnType {
    /// Transaction Type 9C (ISO 8583 processing code positions 1-2, EMV Book 3 Annex A1):
    /// 00 goods and services, 01 cash, 09 purchase with cashback, 20 refund.
    pub fn code_9c(self) -> u8 {
        match self {
            TxnType::Purchase => 0x00,
            TxnType::Cash => 0x01,
            TxnType::Cashback => 0x09,
            TxnType::Refund => 0x20,
        }
    }

    /// ISO 8583 DE 3 of the request (the contract's table: 9C ‖ from-account 00 ‖ to-account 00).
    pub fn processing_code(self) -> &'static str {
        use host_contract::processing as p;
        match self {
            TxnType::Purchase => p::PURCHASE,
            TxnType::Cash => p::CASH,
            TxnType::Cashback => p::CASHBACK,
            TxnType::Refund => p::REFUND,
        }
    }

    /// The journal's kind of this transaction.
    pub fn kind(self) -> TxnKind {
        match self {
            TxnType::Purchase => TxnKind::Purchase,
            TxnType::Cash => TxnKind::Cash,
            TxnType::Cashback => TxnKind::Cashback,
            TxnType::Refund => TxnKind::Refund,
        }
    }

    /// Cash and refunds are never approved offline: the reader floor limit is zero for them, so
    /// pre-processing asks the card for an online cryptogram (Book B §3.1.1.6 with a zero limit;
    /// scheme rules for cash and refunds — unverified, no clause in our digest states it).
    pub fn online_only(self) -> bool {
        matches!(self, TxnType::Cash | TxnType::Refund)
    }

    /// The Entry Point configuration for this type: for an online-only type every combination's
    /// reader floor limit is zero (the CVM and transaction limits are unchanged).
    pub fn ep_config(self, cfg: &EntryPointConfig) -> EntryPointConfig {
        let mut c = cfg.clone();
        if self.online_only() {
            for k in &mut c.combinations {
                k.floor_limit = Some(Amount(0));
            }
        }
        c
    }

    /// Checks the amounts of a transaction of this type: Amount, Other only for purchase with
    /// cashback (required there, not zero, and part of the total: 9F03 ≤ 9F02).
    pub fn check_amounts(self, amount: Amount, amount_other: Option<Amount>) -> Result<(), String> {
        match (self, amount_other) {
            (TxnType::Cashback, None) => Err("purchase with cashback needs the cashback amount (Amount, Other 9F03)".into()),
            (TxnType::Cashback, Some(o)) if o.0 == 0 => Err("the cashback amount (Amount, Other 9F03) is zero".into()),
            (TxnType::Cashback, Some(o)) if o > amount => {
                Err("the cashback amount (Amount, Other 9F03) is more than the total (Amount, Authorised 9F02), which includes it".into())
            }
            (TxnType::Cashback, Some(_)) => Ok(()),
            (t, Some(_)) => Err(format!("Amount, Other (9F03) is for purchase with cashback only, not {}", t.name())),
            (_, None) => Ok(()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TxnType::Purchase => "purchase",
            TxnType::Refund => "refund",
            TxnType::Cash => "cash",
            TxnType::Cashback => "cashback",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_9c_and_de3() {
        for (t, c, pc) in
            [(TxnType::Purchase, 0x00, "000000"), (TxnType::Cash, 0x01, "010000"), (TxnType::Cashback, 0x09, "090000"), (TxnType::Refund, 0x20, "200000")]
        {
            assert_eq!((t.code_9c(), t.processing_code()), (c, pc), "{t:?}");
            assert_eq!(format!("{:02X}", t.code_9c()), &pc[..2]);
        }
    }

    #[test]
    fn cashback_amounts_are_checked() {
        let a = Amount(5000);
        assert!(TxnType::Cashback.check_amounts(a, Some(Amount(2000))).is_ok());
        assert!(TxnType::Cashback.check_amounts(a, Some(Amount(5000))).is_ok());
        assert!(TxnType::Cashback.check_amounts(a, Some(Amount(5001))).unwrap_err().contains("more than the total"));
        assert!(TxnType::Cashback.check_amounts(a, None).is_err());
        assert!(TxnType::Cashback.check_amounts(a, Some(Amount(0))).is_err());
        assert!(TxnType::Purchase.check_amounts(a, Some(Amount(1))).unwrap_err().contains("not purchase"));
        assert!(TxnType::Refund.check_amounts(a, None).is_ok());
    }

    #[test]
    fn cash_and_refund_have_a_zero_floor_limit_others_keep_theirs() {
        let s = crate::settings::Settings::load(None).unwrap();
        for t in [TxnType::Cash, TxnType::Refund] {
            assert!(t.ep_config(&s.ep).combinations.iter().all(|c| c.floor_limit == Some(Amount(0))), "{t:?}");
        }
        for t in [TxnType::Purchase, TxnType::Cashback] {
            let c = t.ep_config(&s.ep);
            assert_eq!(c.combinations.iter().map(|c| c.floor_limit).collect::<Vec<_>>(), s.ep.combinations.iter().map(|c| c.floor_limit).collect::<Vec<_>>());
        }
    }
}
