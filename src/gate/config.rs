//! `config/gate.toml`: the gate, its fares and the operator's policy (docs/gate.md). Every bad
//! value is an error naming the field.

use super::aggregate::Limits;
use super::decision::OnlinePolicy;
use super::fare::FareTable;
use kernels::types::Amount;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in copy, used when the configuration directory has no gate.toml.
pub const BUILTIN: &str = include_str!("../../config/gate.toml");

/// Which way passengers go through the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Entry,
    Exit,
    Both,
}

/// What amount the card is asked to authorize at the tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelAmount {
    Fare,
    Nominal,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateToml {
    gate: GateSection,
    fare: FareSection,
    aggregation: AggregationSection,
    deny_list: DenySection,
    transit: Option<TransitSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitSection {
    psam_key_file: String,
    psam_terminal_id: String,
    issuers: Vec<String>,
    transfer_window_minutes: i64,
    max_trip_minutes: i64,
}

/// Where the PSAM's purchase key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsamKeys {
    /// `builtin-test`: the TEST ONLY transit keys compiled into a simulators build.
    BuiltinTest,
    /// A key file (relative paths from the configuration directory).
    File(std::path::PathBuf),
}

/// The city transport card (T-Union purse) at this gate: `[transit]` of gate.toml.
#[derive(Debug, Clone)]
pub struct TransitConfig {
    pub psam_keys: PsamKeys,
    /// The PSAM's terminal number, 12 hex digits.
    pub psam_terminal_id: String,
    /// Issuer ids (EF 15, 8 bytes) of the cities' cards this gate takes.
    pub issuers: Vec<[u8; 8]>,
    pub transfer_window_minutes: i64,
    pub max_trip_minutes: i64,
    /// The gate's station as the card's trip record numbers it (`station` "LLSS").
    pub station: kernels::purse::Station,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateSection {
    gate_id: String,
    station: String,
    direction: Direction,
    online: OnlinePolicy,
    anti_passback_s: u64,
    kernel_amount: KernelAmount,
    nominal_amount: String,
    ttq: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FareSection {
    flat: Option<String>,
    zones: Option<ZonesSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZonesSection {
    by_zones: Vec<String>,
    stations: BTreeMap<String, u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregationSection {
    cumulative_spend_limit: String,
    max_travel_time_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenySection {
    key: String,
    #[serde(default = "default_sync_s")]
    sync_s: u64,
}

fn default_sync_s() -> u64 {
    60
}

/// The gate's configuration, checked.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub gate_id: String,
    pub station: String,
    pub direction: Direction,
    pub online: OnlinePolicy,
    pub anti_passback_s: u64,
    pub kernel_amount: KernelAmount,
    pub nominal_amount: Amount,
    /// The gate's Terminal Transaction Qualifiers (9F66) for every AID: a transit reader has no
    /// PIN pad and takes no signature (DIGEST: TTQ byte 1 b3 / b2 off).
    pub ttq: Option<kernels::types::Ttq>,
    pub fare: FareTable,
    pub aggregation: Limits,
    /// The city transport card, when the gate takes it.
    pub transit: Option<TransitConfig>,
    /// The deny-list HMAC key (never logged: `Debug` of the config shows its length only).
    pub deny_key: DenyKey,
    /// How often the gate asks the acquirer for its deny list (`deny_list.sync_s`), seconds.
    pub deny_sync_s: u64,
}

/// The deny-list key; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DenyKey(pub Vec<u8>);

impl std::fmt::Debug for DenyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DenyKey({} bytes)", self.0.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateConfigError {
    #[error("gate.toml: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("gate.toml: {field}: {why}")]
    Field { field: &'static str, why: String },
}

fn field(field: &'static str, why: impl Into<String>) -> GateConfigError {
    GateConfigError::Field { field, why: why.into() }
}

impl GateConfig {
    /// `DIR/gate.toml` when the configuration directory has one, else the built-in copy.
    pub fn load(dir: Option<&std::path::Path>, exponent: u32) -> Result<GateConfig, GateConfigError> {
        match dir.map(|d| d.join("gate.toml")).filter(|p| p.exists()) {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| field("gate.toml", format!("{}: {e}", p.display())))?;
                GateConfig::parse(&text, exponent)
            }
            None => GateConfig::parse(BUILTIN, exponent),
        }
    }

    /// Parses and checks gate.toml; `exponent` is the currency's (config/terminal.toml).
    pub fn parse(text: &str, exponent: u32) -> Result<GateConfig, GateConfigError> {
        let t: GateToml = toml::from_str(text)?;
        let amount = |name: &'static str, s: &str| Amount::parse(s, exponent).map_err(|e| field(name, e.to_string()));
        let g = t.gate;
        if g.gate_id.is_empty() || g.gate_id.len() > 8 || !g.gate_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(field("gate.gate_id", "1 to 8 letters or digits (it goes in DE 41)"));
        }
        if g.station.is_empty() {
            return Err(field("gate.station", "empty"));
        }
        let fare = match (t.fare.flat, t.fare.zones) {
            (Some(f), None) => FareTable::Flat(amount("fare.flat", &f)?),
            (None, Some(z)) => {
                if z.by_zones.is_empty() {
                    return Err(field("fare.zones.by_zones", "at least one fare"));
                }
                let by_zones = z.by_zones.iter().map(|s| amount("fare.zones.by_zones", s)).collect::<Result<Vec<_>, _>>()?;
                if !z.stations.contains_key(&g.station) {
                    return Err(field("fare.zones.stations", format!("the gate's own station {:?} is in no zone", g.station)));
                }
                FareTable::Zones { zone_of: z.stations, by_zones }
            }
            (Some(_), Some(_)) => return Err(field("fare", "either `flat` or `[fare.zones]`, not both")),
            (None, None) => return Err(field("fare", "`flat` or `[fare.zones]` is needed")),
        };
        if !fare.charged_at_exit() && g.direction == Direction::Exit {
            return Err(field("gate.direction", "a flat-fare gate charges at entry: \"entry\" or \"both\""));
        }
        let key = hex::decode(t.deny_list.key.trim()).map_err(|_| field("deny_list.key", "hex"))?;
        if key.len() < 16 {
            return Err(field("deny_list.key", "at least 16 bytes"));
        }
        if t.deny_list.sync_s == 0 {
            return Err(field("deny_list.sync_s", "must be more than 0"));
        }
        let aggregation = Limits {
            cumulative_spend_limit: amount("aggregation.cumulative_spend_limit", &t.aggregation.cumulative_spend_limit)?,
            max_travel_time_s: t.aggregation.max_travel_time_s,
        };
        if aggregation.max_travel_time_s == 0 {
            return Err(field("aggregation.max_travel_time_s", "must be more than 0"));
        }
        if aggregation.cumulative_spend_limit < fare.max_fare() {
            return Err(field("aggregation.cumulative_spend_limit", "below the highest fare: every tap would be an authorization of its own"));
        }
        let transit = match t.transit {
            None => None,
            Some(tr) => {
                if g.direction == Direction::Both {
                    return Err(field(
                        "gate.direction",
                        "a gate that takes transport cards is either \"entry\" or \"exit\" (the card's trip record says which way it went)",
                    ));
                }
                let digits = |s: &str| s.parse::<u8>().ok();
                let station = match (g.station.len(), g.station.get(..2).and_then(digits), g.station.get(2..).and_then(digits)) {
                    (4, Some(line), Some(station)) => kernels::purse::Station { line, station },
                    _ => return Err(field("gate.station", "a gate that takes transport cards needs a station code \"LLSS\" (line, station: 4 digits)")),
                };
                let issuers = tr
                    .issuers
                    .iter()
                    .map(|h| {
                        hex::decode(h)
                            .ok()
                            .and_then(|v| <[u8; 8]>::try_from(v).ok())
                            .ok_or_else(|| field("transit.issuers", format!("{h:?} is not 8 bytes of hex")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if hex::decode(&tr.psam_terminal_id).map(|v| v.len()) != Ok(6) {
                    return Err(field("transit.psam_terminal_id", "12 hex digits"));
                }
                if tr.transfer_window_minutes < 0 || tr.max_trip_minutes <= 0 {
                    return Err(field("transit.max_trip_minutes", "minutes must be positive"));
                }
                let psam_keys = if tr.psam_key_file == "builtin-test" { PsamKeys::BuiltinTest } else { PsamKeys::File(tr.psam_key_file.into()) };
                Some(TransitConfig {
                    psam_keys,
                    psam_terminal_id: tr.psam_terminal_id,
                    issuers,
                    transfer_window_minutes: tr.transfer_window_minutes,
                    max_trip_minutes: tr.max_trip_minutes,
                    station,
                })
            }
        };
        let ttq = match &g.ttq {
            None => None,
            Some(h) => Some(hex::decode(h).ok().and_then(|b| kernels::types::Ttq::from_slice(&b)).ok_or_else(|| field("gate.ttq", "4 bytes of hex"))?),
        };
        if ttq.as_ref().is_some_and(|t| t.online_pin_supported() || t.signature_supported()) {
            return Err(field("gate.ttq", "a gate has no PIN pad and takes no signature: byte 1 bits 3 and 2 must be off"));
        }
        Ok(GateConfig {
            ttq,
            transit,
            gate_id: g.gate_id,
            station: g.station,
            direction: g.direction,
            online: g.online,
            anti_passback_s: g.anti_passback_s,
            kernel_amount: g.kernel_amount,
            nominal_amount: amount("gate.nominal_amount", &g.nominal_amount)?,
            fare,
            aggregation,
            deny_key: DenyKey(key),
            deny_sync_s: t.deny_list.sync_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_loads() {
        let c = GateConfig::parse(BUILTIN, 2).unwrap();
        assert_eq!(c.fare, FareTable::Flat(Amount(200)));
        assert_eq!((c.direction, c.online, c.anti_passback_s), (Direction::Entry, OnlinePolicy::Defer, 30));
        assert_eq!(c.aggregation.cumulative_spend_limit, Amount(2000));
        assert!(!format!("{c:?}").contains("7368616e"), "the deny key is not in Debug");
    }

    fn with(from: &str, to: &str) -> Result<GateConfig, GateConfigError> {
        assert!(BUILTIN.contains(from), "{from}");
        GateConfig::parse(&BUILTIN.replacen(from, to, 1), 2)
    }

    #[test]
    fn zone_fares_load_and_need_the_gates_station() {
        let zones = "# [fare.zones]\n# by_zones = [\"3.00\", \"4.00\", \"5.00\"]     # fare by the number of zone boundaries crossed\n# stations = { \"0101\" = 1, \"0102\" = 1, \"0201\" = 2, \"0301\" = 3 }";
        let on: String = zones.lines().map(|l| l.strip_prefix("# ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
        let c = GateConfig::parse(&BUILTIN.replace("flat = \"2.00\"", "").replace(zones, &on), 2).unwrap();
        assert_eq!(c.fare.journey(Some("0101"), "0301"), Ok(Amount(500)));
        let err = GateConfig::parse(&BUILTIN.replace("flat = \"2.00\"", "").replace(zones, &on).replace("\"0101\" = 1, ", ""), 2).unwrap_err();
        assert!(err.to_string().contains("fare.zones.stations"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (from, to, want) in [
            ("flat = \"2.00\"", "flat = \"2.001\"", "fare.flat"),
            ("flat = \"2.00\"", "", "fare"),
            ("gate_id = \"G0101E01\"", "gate_id = \"GATE 0101 EAST\"", "gate.gate_id"),
            ("online = \"defer\"", "online = \"maybe\"", "online"),
            ("direction = \"entry\"", "direction = \"exit\"", "gate.direction"),
            ("max_travel_time_s = 7200", "max_travel_time_s = 0", "aggregation.max_travel_time_s"),
            ("cumulative_spend_limit = \"20.00\"", "cumulative_spend_limit = \"1.00\"", "aggregation.cumulative_spend_limit"),
            ("key = \"7368", "key = \"zz68", "deny_list.key"),
            ("ttq = \"20004080\"", "ttq = \"26004080\"", "gate.ttq"),
            ("ttq = \"20004080\"", "ttq = \"2000\"", "gate.ttq"),
            ("anti_passback_s = 30", "anti_passback_s = 30\ncolour = \"red\"", "colour"),
        ] {
            let err = with(from, to).unwrap_err().to_string();
            assert!(err.contains(want), "{from} → {to}: {err}");
        }
    }
}
