//! Replays a recorded card session (DESIGN.md §5.3): each C-APDU is answered with the next
//! recorded R-APDU when CLA INS P1 P2 match; differences in the command data are reported.

use crate::{air, Reader, ReaderError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Terminal inputs that make a session deterministic (any may be absent: config applies).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScriptTerminal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// YYMMDD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// HHMMSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpredictable_number: Option<String>,
    /// Unpredictable numbers of the taps after the first (two-tap flows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpredictable_numbers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttq: Option<String>,
}

/// One exchange, hex.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    pub c: String,
    pub r: String,
    /// Tap number (1-based); absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<u32>,
}

/// A recorded session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    /// Recorded without `--reveal`: card data (PAN, track data) masked, so a replay cannot
    /// reproduce signatures over it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
    #[serde(default)]
    pub terminal: ScriptTerminal,
    pub exchanges: Vec<Exchange>,
}

/// A difference between the recorded and the replayed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub index: usize,
    pub expected: String,
    pub actual: String,
}

/// Reader over a script.
pub struct ReplayReader {
    script: Script,
    next: usize,
    tap: u32,
    in_field: bool,
    pub differences: Vec<Difference>,
    air: Duration,
}

impl ReplayReader {
    pub fn new(script: Script) -> Self {
        ReplayReader { script, next: 0, tap: 0, in_field: false, differences: vec![], air: Duration::ZERO }
    }
    /// Exchanges the terminal did not ask for.
    pub fn unused(&self) -> usize {
        self.script.exchanges.len() - self.next
    }
}

fn header(b: &[u8]) -> Option<&[u8]> {
    b.get(..4)
}

impl Reader for ReplayReader {
    fn name(&self) -> String {
        format!("replay:{}", self.script.name)
    }
    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        if self.next >= self.script.exchanges.len() {
            return Err(ReaderError::NoCard(timeout));
        }
        self.tap += 1;
        self.in_field = true;
        self.air = Duration::ZERO;
        Ok(())
    }
    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let Some(x) = self.script.exchanges.get(self.next) else {
            return Err(ReaderError::CardRemoved);
        };
        if !self.in_field || x.tap.unwrap_or(1) != self.tap {
            // The recorded card left the field here.
            self.in_field = false;
            return Err(ReaderError::CardRemoved);
        }
        let c = hex::decode(&x.c).map_err(|e| ReaderError::Transmission(format!("script exchange {}: c: {e}", self.next)))?;
        let r = hex::decode(&x.r).map_err(|e| ReaderError::Transmission(format!("script exchange {}: r: {e}", self.next)))?;
        if header(&c) != header(capdu) {
            return Err(ReaderError::Transmission(format!(
                "replay diverged at exchange {}: recorded {} but terminal sent {}",
                self.next,
                hex::encode_upper(header(&c).unwrap_or(&c)),
                hex::encode_upper(header(capdu).unwrap_or(capdu))
            )));
        }
        if c != capdu {
            self.differences.push(Difference { index: self.next, expected: x.c.to_uppercase(), actual: hex::encode_upper(capdu) });
        }
        self.next += 1;
        self.air += air::exchange(capdu.len(), r.len());
        Ok(r)
    }
    fn wait_for_removal(&mut self, _: Duration) -> Result<(), ReaderError> {
        self.in_field = false;
        Ok(())
    }
    fn air_time(&self) -> Option<Duration> {
        Some(self.air)
    }
}
