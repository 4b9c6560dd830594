//! The result of `pay` / `replay` as the JSON object of DESIGN.md §4 and as text for people.

use crate::redact;
use crate::terminal::disposition::{self, Disposition};
use crate::terminal::TapResult;
use kernels::entry_point::EntryPoint;
use kernels::outcome::{Cvm, OdaResult};
use kernels::tag;
use kernels::tlv;
use kernels::types::Amount;
use serde::Serialize;

/// DESIGN.md §4 `pay --json` object (plus detail fields).
#[derive(Debug, Clone, Serialize)]
pub struct PayReport {
    /// The contract name of the disposition (DESIGN.md §4): always `disposition.outcome_name()`.
    pub outcome: &'static str,
    /// How the transaction ended, typed.
    pub disposition: Disposition,
    pub reason: String,
    pub kernel: Option<String>,
    pub aid: Option<String>,
    pub label: Option<String>,
    pub pan_masked: Option<String>,
    pub online: bool,
    pub response_code: Option<String>,
    pub auth_code: Option<String>,
    /// NO_CVM, CDCVM, SIGNATURE, ONLINE_PIN.
    pub cvm: Cvm,
    pub oda: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oda_error: Option<String>,
    pub stan: Option<String>,
    pub amount: String,
    pub currency: String,
    pub taps: u32,
    pub card_in_field_ms: f64,
    pub tap_ms: f64,
    pub total_ms: f64,
    pub cryptogram_type: Option<String>,
    pub cryptogram: Option<String>,
    pub atc: Option<u16>,
    pub tvr: String,
    pub ui_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_offline_amount: Option<String>,
    /// Authorization data for the host: the data record without PAN and track 2 (field 55).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icc_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub par: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    /// Issuer authentication data check: VERIFIED, FAILED, PRESENT, MISSING, ARC_MISMATCH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arpc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<u64>,
    /// "UNAUTHENTICATED" when the request went over a host link configured `mac = false` (no
    /// keys, no MAC: the answer could have come from anyone); absent on the keyed link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replay_differences: Vec<reader_drivers::replay::Difference>,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// The data record without the tags that travel elsewhere (PAN in field 2, track 2 in 35).
pub fn icc_data(record: &[u8]) -> Vec<u8> {
    let mut b = tlv::Builder::new();
    let _ = tlv::walk_primitives(record, &mut |t| {
        if !tag::is_sensitive(t.tag) && t.tag != tag::EXPIRY_DATE {
            b = std::mem::take(&mut b).put(t.tag, t.value);
        }
    });
    b.build()
}

impl PayReport {
    pub fn new(ep: &EntryPoint, r: &TapResult, exponent: u8, currency: &str) -> PayReport {
        let s = ep.summary();
        let o = &r.outcome;
        let exp = u32::from(exponent);
        // An online request stays "authorization ready" until the host answers.
        let d = disposition::after_tap(o, r.reader_error.as_ref(), r.refused_before_tap.then(|| ep.transaction().amount))
            .unwrap_or(Disposition::AuthorizationReady);
        PayReport {
            outcome: d.outcome_name(),
            disposition: d,
            reason: o.reason.clone(),
            kernel: s.kernel.map(|k| k.name().to_string()),
            aid: s.aid.as_ref().map(hex::encode_upper),
            label: s.label.clone(),
            pan_masked: s.pan.as_deref().map(redact::pan),
            online: false,
            response_code: None,
            auth_code: None,
            cvm: o.cvm,
            oda: s.oda.unwrap_or(OdaResult::NotPerformed).name().into(),
            oda_error: s.oda_error.clone(),
            stan: None,
            amount: ep.transaction().amount.display(exp),
            currency: currency.into(),
            taps: r.taps,
            card_in_field_ms: ms(r.card_in_field),
            tap_ms: ms(r.tap_wall),
            total_ms: ms(r.total),
            cryptogram_type: s.cryptogram_type.map(|c| c.name().to_string()),
            cryptogram: s.cryptogram.as_ref().map(hex::encode_upper),
            atc: s.atc,
            tvr: hex::encode_upper(s.tvr.0),
            ui_message: o.ui_on_outcome.as_ref().map(|u| u.message.text().to_string()),
            available_offline_amount: s.offline_balance.map(|b| Amount(b).display(exp)),
            icc_data: o.data_record.as_deref().map(|d| hex::encode_upper(icc_data(d))),
            par: s.par.clone(),
            reader_error: r.reader_error.as_ref().map(|e| e.to_string()),
            rrn: None,
            arpc: None,
            journal_id: None,
            link: None,
            replay_differences: vec![],
        }
    }

    /// Sets how the transaction ended (and the contract name with it).
    pub fn set(&mut self, d: Disposition) {
        self.disposition = d;
        self.outcome = d.outcome_name();
    }

    /// Exit code of DESIGN.md §4: 0 approved (or authorization data ready), 1 not approved.
    pub fn exit_code(&self) -> i32 {
        self.disposition.exit_code()
    }

    /// Text for a person at a terminal.
    pub fn text(&self, symbol: &str) -> String {
        let mut s = format!("{}  {}{}\n", self.outcome, symbol, self.amount);
        if let Some(m) = &self.ui_message {
            s += &format!("  display : {m}\n");
        }
        s += &format!("  reason  : {}\n", self.reason);
        if self.link.is_some() {
            s += "  link    : UNAUTHENTICATED — host configured mac = false: the answer could have come from anyone\n";
        }
        if let (Some(k), Some(a)) = (&self.kernel, &self.aid) {
            s += &format!("  card    : {} {}  AID {a}  kernel {k}\n", self.label.as_deref().unwrap_or(""), self.pan_masked.as_deref().unwrap_or("-"));
        }
        s += &format!("  cvm {}  oda {}  tvr {}\n", self.cvm.name(), self.oda, self.tvr);
        if let (Some(t), Some(c)) = (&self.cryptogram_type, &self.cryptogram) {
            s += &format!("  {t} {c}  ATC {}\n", self.atc.unwrap_or(0));
        }
        if let Some(b) = &self.available_offline_amount {
            s += &format!("  available offline: {symbol}{b}\n");
        }
        s += &format!(
            "  taps {}  air time at 106 kbit/s {:.1} ms  tap (wall) {:.1} ms  total {:.1} ms\n",
            self.taps, self.card_in_field_ms, self.tap_ms, self.total_ms
        );
        s
    }
}
