//! The closed-loop transit purse: a T-Union (交通联合) city card as a PBOC electronic purse
//! (JR/T 0025 e-purse application, its "CAPP" composite purchase for transit, JT/T 978 for the
//! transport card files). Pure: command builders, response parsers and the data the gate reads
//! and writes. The cryptography is in [`crypto`], the gate's purse transaction in [`gate`].
//!
//! Sources and how sure we are:
//! - AID `A000000632010105`, GET BALANCE `80 5C 00 02 04`, EF 0x15 public information (30 bytes),
//!   the composite purchase order (read EF 15, INITIALIZE FOR CAPP PURCHASE, MAC1 from the PSAM,
//!   UPDATE CAPP DATA CACHE, DEBIT FOR CAPP PURCHASE `80 54 01 00 0F` → TAC + MAC2, SW `9302` MAC
//!   error, the torn "闪卡" case): public descriptions of gate readers (T-Union / Shanghai metro).
//! - INITIALIZE FOR PURCHASE response layout (balance 4, offline ATC 2, overdraft limit 3, key
//!   version 1, algorithm 1, random 4), DEBIT data (terminal transaction number 4, date 4, time 3,
//!   MAC1 4), GET TRANSACTION PROVE `80 5A`: the PBOC e-purse commands as commonly documented —
//!   **unverified** against the text of JR/T 0025 itself.
//! - EF 15 field layout and the trip record layout ([`TripRecord`]) below: **unverified**; the trip
//!   record is this project's own 32-byte layout (real cities use a 128-byte EF 0x1A record with a
//!   CRC32, each city its own fields).

pub mod crypto;
pub mod gate;

use crate::apdu::{CApdu, RApdu};
use crate::tag;
use crate::tlv;
use crate::types::from_bcd;

/// T-Union transit application AID (transit.md: "T-Union AID A000000632010105").
pub const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];

/// Short file identifiers of the purse application's files (JT/T 978 as a metro gate reader
/// defines them; unverified beyond that source).
pub mod sfi {
    /// Public information, 30 bytes, transparent.
    pub const PUBLIC_INFO: u8 = 0x15;
    /// Cardholder information, 55 bytes.
    pub const CARDHOLDER: u8 = 0x16;
    /// Management information, 60 bytes.
    pub const MANAGEMENT: u8 = 0x17;
    /// Composite (CAPP) transit record: where the gate keeps the tap state.
    pub const TRIP: u8 = 0x1A;
    /// Cyclic transit history, 48-byte records.
    pub const HISTORY: u8 = 0x1E;
}

/// Instruction bytes of the purse commands (CLA 80 unless said).
pub mod ins {
    pub const READ_BINARY: u8 = 0xB0;
    pub const READ_RECORD: u8 = 0xB2;
    pub const GET_BALANCE: u8 = 0x5C;
    pub const INITIALIZE: u8 = 0x50;
    pub const UPDATE_CAPP_DATA_CACHE: u8 = 0xDC;
    pub const DEBIT: u8 = 0x54;
    pub const GET_TRANSACTION_PROVE: u8 = 0x5A;
}

/// Status words of the e-purse (PBOC e-purse error codes as commonly documented; unverified).
pub mod sw {
    /// INITIALIZE: balance too low for the amount.
    pub const INSUFFICIENT_BALANCE: u16 = 0x9401;
    /// DEBIT: MAC1 wrong (transit.md: "SW 9302 = MAC error").
    pub const MAC_ERROR: u16 = 0x9302;
    /// INITIALIZE: the key index is not on the card.
    pub const KEY_INDEX_NOT_SUPPORTED: u16 = 0x9403;
    /// GET TRANSACTION PROVE: no proof for that transaction (it did not complete).
    pub const PROOF_NOT_AVAILABLE: u16 = 0x9406;
    /// The application is blocked (ISO 7816-4 "selected file invalidated").
    pub const APPLICATION_BLOCKED: u16 = 0x6283;
}

/// Transaction type identifier of a purse purchase (the byte in MAC1 / TAC data and in
/// GET TRANSACTION PROVE P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PurchaseType {
    /// `06`: plain e-purse purchase.
    Purchase,
    /// `09`: composite application (CAPP) purchase — transit.md step 3: "transaction type 09".
    Capp,
}

impl PurchaseType {
    pub fn code(self) -> u8 {
        match self {
            PurchaseType::Purchase => 0x06,
            PurchaseType::Capp => 0x09,
        }
    }
}

/// Why a purse response cannot be used. Never a panic: every field is length-checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurseError {
    #[error("{what}: card answered SW {sw:04X}")]
    Status { what: &'static str, sw: u16 },
    #[error("{what}: {got} bytes, expected {expected}")]
    Length { what: &'static str, got: usize, expected: usize },
    #[error("{what}: not BCD")]
    NotBcd { what: &'static str },
    #[error("FCI: {0}")]
    Fci(#[from] tlv::TlvError),
    #[error("FCI names application {0}, not the T-Union purse")]
    WrongAid(String),
    #[error("trip record: unknown state byte {0:02X}")]
    TripState(u8),
}

fn ok(r: &RApdu, what: &'static str) -> Result<(), PurseError> {
    if r.is_ok() {
        Ok(())
    } else {
        Err(PurseError::Status { what, sw: r.sw })
    }
}

fn exact<const N: usize>(b: &[u8], what: &'static str) -> Result<[u8; N], PurseError> {
    b.try_into().map_err(|_| PurseError::Length { what, got: b.len(), expected: N })
}

fn slice<const N: usize>(b: &[u8], at: usize, what: &'static str) -> Result<[u8; N], PurseError> {
    let s = b.get(at..at + N).ok_or(PurseError::Length { what, got: b.len(), expected: at + N })?;
    exact(s, what)
}

/// A calendar date `YYYYMMDD` as 4 bytes BCD (EF 15 validity, DEBIT transaction date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct PurseDate(pub [u8; 4]);

impl PurseDate {
    /// Checks that every nibble is a digit.
    pub fn parse(b: [u8; 4], what: &'static str) -> Result<PurseDate, PurseError> {
        from_bcd(&b).map(|_| PurseDate(b)).ok_or(PurseError::NotBcd { what })
    }
    fn num(self) -> u64 {
        from_bcd(&self.0).unwrap_or(0)
    }
    /// (year, month, day).
    pub fn ymd(self) -> (i64, i64, i64) {
        let n = self.num() as i64;
        (n / 10_000, (n / 100) % 100, n % 100)
    }
}

/// A local date and time `YYYYMMDDhhmmss`, 7 bytes BCD: what MAC1, TAC and the trip record carry
/// (transit.md step 3: "date-time (7)"). An input of the terminal, never read from a clock here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct PurseDateTime(pub [u8; 7]);

impl PurseDateTime {
    /// From components; `None` if out of range (seconds up to 59, a month's day up to 31).
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<PurseDateTime> {
        if year > 9999 || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let bcd = |v: u8| ((v / 10) << 4) | (v % 10);
        let y = u8::try_from(year / 100).ok()?;
        let yy = u8::try_from(year % 100).ok()?;
        Some(PurseDateTime([bcd(y), bcd(yy), bcd(month), bcd(day), bcd(hour), bcd(minute), bcd(second)]))
    }
    pub fn parse(b: [u8; 7], what: &'static str) -> Result<PurseDateTime, PurseError> {
        from_bcd(&b).map(|_| PurseDateTime(b)).ok_or(PurseError::NotBcd { what })
    }
    /// The all-zero value an unused record field holds.
    pub const NONE: PurseDateTime = PurseDateTime([0; 7]);
    pub fn is_none(self) -> bool {
        self == Self::NONE
    }
    /// The date half (4 bytes), as DEBIT and TAC carry it.
    pub fn date(self) -> [u8; 4] {
        [self.0[0], self.0[1], self.0[2], self.0[3]]
    }
    /// The time half `hhmmss` (3 bytes).
    pub fn time(self) -> [u8; 3] {
        [self.0[4], self.0[5], self.0[6]]
    }
    pub fn purse_date(self) -> PurseDate {
        PurseDate(self.date())
    }
    /// Minutes since 0000-03-01 (proleptic Gregorian), for time differences.
    fn minutes(self) -> i64 {
        let (y, m, d) = self.purse_date().ymd();
        let t = from_bcd(&self.time()).unwrap_or(0) as i64;
        let (hh, mm) = (t / 10_000, (t / 100) % 100);
        // Days from civil (H. Hinnant's algorithm), shifted so March is the first month.
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d - 1;
        days * 1440 + hh * 60 + mm
    }
    /// Whole minutes from `earlier` to `self` (negative if `earlier` is later).
    pub fn minutes_since(self, earlier: PurseDateTime) -> i64 {
        self.minutes() - earlier.minutes()
    }
}

/// The 8-byte card serial number the keys are diversified with: the rightmost 8 bytes of the
/// 10-byte application serial number of EF 15 (transit.md step 3: "application serial (8)").
/// `Debug` shows only its last 4 digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CardSerial(pub [u8; 8]);

impl std::fmt::Debug for CardSerial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardSerial(…{:02X}{:02X})", self.0[6], self.0[7])
    }
}

/// EF 0x15 public information, 30 bytes (JT/T 978 layout as commonly documented; unverified):
/// issuer id 8 | application type 1 | application version 1 | application serial number 10 (BCD;
/// its first two bytes are the city code) | start date 4 | expiry date 4 | issuer data 2.
/// `Debug` shows the card number masked like a PAN.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicInfo {
    pub issuer_id: [u8; 8],
    pub app_type: u8,
    pub app_version: u8,
    pub app_serial: [u8; 10],
    pub start: PurseDate,
    pub expiry: PurseDate,
    pub issuer_data: [u8; 2],
}

impl PublicInfo {
    pub const LEN: usize = 30;

    pub fn parse(b: &[u8]) -> Result<PublicInfo, PurseError> {
        const W: &str = "EF 15 public information";
        if b.len() < Self::LEN {
            return Err(PurseError::Length { what: W, got: b.len(), expected: Self::LEN });
        }
        Ok(PublicInfo {
            issuer_id: slice(b, 0, W)?,
            app_type: b[8],
            app_version: b[9],
            app_serial: slice(b, 10, W)?,
            start: PurseDate::parse(slice(b, 20, W)?, "EF 15 start date")?,
            expiry: PurseDate::parse(slice(b, 24, W)?, "EF 15 expiry date")?,
            issuer_data: slice(b, 28, W)?,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&self.issuer_id);
        v.push(self.app_type);
        v.push(self.app_version);
        v.extend_from_slice(&self.app_serial);
        v.extend_from_slice(&self.start.0);
        v.extend_from_slice(&self.expiry.0);
        v.extend_from_slice(&self.issuer_data);
        v
    }

    /// City code: the first 4 digits of the application serial number (unverified).
    pub fn city_code(&self) -> [u8; 2] {
        [self.app_serial[0], self.app_serial[1]]
    }

    /// The card number as digits, for the journal. Mask it for display like a PAN.
    pub fn card_number(&self) -> String {
        crate::types::digits(&self.app_serial)
    }

    /// The card number masked for logs and screens (first 6, last 4, like a PAN).
    pub fn masked_card_number(&self) -> String {
        crate::types::mask_pan(&self.card_number())
    }

    /// The serial the purse keys are diversified with.
    pub fn serial(&self) -> CardSerial {
        let mut s = [0u8; 8];
        s.copy_from_slice(&self.app_serial[2..]);
        CardSerial(s)
    }
}

impl std::fmt::Debug for PublicInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicInfo")
            .field("issuer_id", &hex::encode_upper(self.issuer_id))
            .field("app_type", &self.app_type)
            .field("card_number", &self.masked_card_number())
            .field("start", &self.start)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// A station as the trip record holds it: line and station number (one byte each; our layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Station {
    pub line: u8,
    pub station: u8,
}

/// Where a passenger is, as the card's trip record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TripState {
    /// No journey open (never used, or the last tap was an exit).
    Out,
    /// Tapped in at `entry`, not yet out.
    In,
}

/// The composite (CAPP) transit record the gate reads from EF 0x1A and writes through UPDATE
/// CAPP DATA CACHE (transit.md step 4 lists line, station, device, entry time, entry flag, in/out
/// state, transfer info). This project's own 32-byte layout — **unverified** against any city's:
/// record id 1 | state 1 (`00` out, `01` in) | entry line 1 | entry station 1 | entry device 6 |
/// entry time 7 | exit line 1 | exit station 1 | exit time 7 | last fare 4 (fen, big-endian) |
/// transfer flag 1 | RFU 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TripRecord {
    pub state: TripState,
    pub entry: Station,
    pub entry_device: [u8; 6],
    pub entry_time: PurseDateTime,
    pub exit: Station,
    pub exit_time: PurseDateTime,
    pub last_fare: u32,
    /// This journey began within the transfer window of the previous exit.
    pub transfer: bool,
}

impl TripRecord {
    pub const LEN: usize = 32;
    /// The record identifier of the transit application in EF 0x1A (our layout).
    pub const RECORD_ID: u8 = 0x01;

    /// The record of a card never used at a gate.
    pub fn blank() -> TripRecord {
        TripRecord {
            state: TripState::Out,
            entry: Station { line: 0, station: 0 },
            entry_device: [0; 6],
            entry_time: PurseDateTime::NONE,
            exit: Station { line: 0, station: 0 },
            exit_time: PurseDateTime::NONE,
            last_fare: 0,
            transfer: false,
        }
    }

    pub fn parse(b: &[u8]) -> Result<TripRecord, PurseError> {
        const W: &str = "EF 1A trip record";
        if b.len() < Self::LEN {
            return Err(PurseError::Length { what: W, got: b.len(), expected: Self::LEN });
        }
        let state = match b[1] {
            0x00 => TripState::Out,
            0x01 => TripState::In,
            x => return Err(PurseError::TripState(x)),
        };
        Ok(TripRecord {
            state,
            entry: Station { line: b[2], station: b[3] },
            entry_device: slice(b, 4, W)?,
            entry_time: PurseDateTime::parse(slice(b, 10, W)?, "trip entry time")?,
            exit: Station { line: b[17], station: b[18] },
            exit_time: PurseDateTime::parse(slice(b, 19, W)?, "trip exit time")?,
            last_fare: u32::from_be_bytes(slice(b, 26, W)?),
            transfer: b[30] != 0,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(Self::RECORD_ID);
        v.push(match self.state {
            TripState::Out => 0x00,
            TripState::In => 0x01,
        });
        v.extend([self.entry.line, self.entry.station]);
        v.extend_from_slice(&self.entry_device);
        v.extend_from_slice(&self.entry_time.0);
        v.extend([self.exit.line, self.exit.station]);
        v.extend_from_slice(&self.exit_time.0);
        v.extend_from_slice(&self.last_fare.to_be_bytes());
        v.push(u8::from(self.transfer));
        v.push(0);
        v
    }
}

/// SELECT the T-Union purse by its AID.
pub fn select() -> CApdu {
    CApdu::select(&AID)
}

/// Checks the SELECT answer: `9000` and, when the FCI names a DF, that it is the purse.
pub fn parse_select(r: &RApdu) -> Result<(), PurseError> {
    ok(r, "SELECT")?;
    match tlv::find(&r.data, tag::DF_NAME)? {
        Some(name) if name != AID => Err(PurseError::WrongAid(hex::encode_upper(name))),
        _ => Ok(()),
    }
}

/// READ BINARY by short file identifier (ISO 7816-4: P1 = `80 | SFI`, P2 = offset).
pub fn read_binary(sfi: u8, len: u8) -> CApdu {
    CApdu { cla: 0x00, ins: ins::READ_BINARY, p1: 0x80 | (sfi & 0x1F), p2: 0, data: vec![], le: Some(len) }
}

/// READ BINARY of EF 15 (public information, 30 bytes).
pub fn read_public_info() -> CApdu {
    read_binary(sfi::PUBLIC_INFO, PublicInfo::LEN as u8)
}

pub fn parse_public_info(r: &RApdu) -> Result<PublicInfo, PurseError> {
    ok(r, "READ BINARY EF 15")?;
    PublicInfo::parse(&r.data)
}

/// READ RECORD of the trip record by its identifier (P2 = SFI << 3 | 4, "P1 is the record number").
pub fn read_trip_record() -> CApdu {
    CApdu { cla: 0x00, ins: ins::READ_RECORD, p1: TripRecord::RECORD_ID, p2: (sfi::TRIP << 3) | 4, data: vec![], le: Some(0) }
}

/// The trip record, or a blank one when the card has none yet (`6A83` record not found).
pub fn parse_trip_record(r: &RApdu) -> Result<TripRecord, PurseError> {
    if r.sw == crate::apdu::sw::RECORD_NOT_FOUND {
        return Ok(TripRecord::blank());
    }
    ok(r, "READ RECORD EF 1A")?;
    TripRecord::parse(&r.data)
}

/// GET BALANCE `80 5C 00 02 04` (P2 `02` = e-purse).
pub fn get_balance() -> CApdu {
    CApdu { cla: 0x80, ins: ins::GET_BALANCE, p1: 0x00, p2: 0x02, data: vec![], le: Some(4) }
}

/// The 4-byte balance in fen.
pub fn parse_balance(r: &RApdu) -> Result<u32, PurseError> {
    ok(r, "GET BALANCE")?;
    Ok(u32::from_be_bytes(exact(&r.data, "GET BALANCE")?))
}

/// INITIALIZE FOR (CAPP) PURCHASE: `80 50 P1 02 0B` key index | amount (4, fen) | terminal id (6),
/// Le `0F`. P1 `01` purchase, `03` CAPP purchase; P2 `02` e-purse.
pub fn initialize(kind: PurchaseType, key_index: u8, amount: u32, terminal_id: [u8; 6]) -> CApdu {
    let mut data = vec![key_index];
    data.extend_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(&terminal_id);
    let p1 = match kind {
        PurchaseType::Purchase => 0x01,
        PurchaseType::Capp => 0x03,
    };
    CApdu { cla: 0x80, ins: ins::INITIALIZE, p1, p2: 0x02, data, le: Some(0x0F) }
}

/// The INITIALIZE FOR PURCHASE answer, 15 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitResponse {
    /// Balance before the purchase, fen.
    pub balance: u32,
    /// Offline transaction counter this purchase uses; the card steps it on a successful DEBIT.
    pub offline_atc: u16,
    /// Overdraft limit, fen (3 bytes on the card).
    pub overdraft_limit: u32,
    pub key_version: u8,
    /// Algorithm identifier (`00` = 3DES here; other values are refused, unverified).
    pub algorithm: u8,
    /// The card's pseudo-random number for the session key.
    pub random: [u8; 4],
}

impl InitResponse {
    pub const LEN: usize = 15;

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.balance.to_be_bytes().to_vec();
        v.extend_from_slice(&self.offline_atc.to_be_bytes());
        v.extend_from_slice(&self.overdraft_limit.to_be_bytes()[1..]);
        v.push(self.key_version);
        v.push(self.algorithm);
        v.extend_from_slice(&self.random);
        v
    }
}

/// Parses the INITIALIZE answer. `9401` (insufficient balance) comes back as a `Status` error.
pub fn parse_initialize(r: &RApdu) -> Result<InitResponse, PurseError> {
    const W: &str = "INITIALIZE FOR PURCHASE";
    ok(r, W)?;
    let b: [u8; 15] = exact(&r.data, W)?;
    Ok(InitResponse {
        balance: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        offline_atc: u16::from_be_bytes([b[4], b[5]]),
        overdraft_limit: u32::from_be_bytes([0, b[6], b[7], b[8]]),
        key_version: b[9],
        algorithm: b[10],
        random: [b[11], b[12], b[13], b[14]],
    })
}

/// UPDATE CAPP DATA CACHE: `80 DC` record id | `SFI << 3`, the whole record. The card keeps it in
/// a cache and writes it only when the DEBIT FOR CAPP PURCHASE that follows succeeds (transit.md
/// steps 4-5), so the record and the debit are one atomic change.
pub fn update_capp_data_cache(record: &TripRecord) -> CApdu {
    CApdu { cla: 0x80, ins: ins::UPDATE_CAPP_DATA_CACHE, p1: TripRecord::RECORD_ID, p2: sfi::TRIP << 3, data: record.to_bytes(), le: None }
}

pub fn parse_update(r: &RApdu) -> Result<(), PurseError> {
    ok(r, "UPDATE CAPP DATA CACHE")
}

/// DEBIT FOR (CAPP) PURCHASE `80 54 01 00 0F`: terminal transaction number (4) | date (4) |
/// time (3) | MAC1 (4), Le `08` (transit.md step 5).
pub fn debit(ttsn: [u8; 4], when: PurseDateTime, mac1: [u8; 4]) -> CApdu {
    let mut data = ttsn.to_vec();
    data.extend_from_slice(&when.date());
    data.extend_from_slice(&when.time());
    data.extend_from_slice(&mac1);
    CApdu { cla: 0x80, ins: ins::DEBIT, p1: 0x01, p2: 0x00, data, le: Some(0x08) }
}

/// The card's proof of a debit: TAC (for the back office) and MAC2 (for the PSAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebitProof {
    pub tac: [u8; 4],
    pub mac2: [u8; 4],
}

impl DebitProof {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.tac.to_vec();
        v.extend_from_slice(&self.mac2);
        v
    }
}

/// DEBIT answer: TAC (4) | MAC2 (4). `9302` (MAC1 wrong) comes back as a `Status` error.
pub fn parse_debit(r: &RApdu) -> Result<DebitProof, PurseError> {
    ok(r, "DEBIT FOR PURCHASE")?;
    let b: [u8; 8] = exact(&r.data, "DEBIT FOR PURCHASE")?;
    Ok(DebitProof { tac: [b[0], b[1], b[2], b[3]], mac2: [b[4], b[5], b[6], b[7]] })
}

/// GET TRANSACTION PROVE `80 5A 00 <type>` with the offline ATC of the transaction in doubt, Le
/// `08`: the card answers with the proof of that debit if it happened, `9406` if not.
pub fn get_transaction_prove(kind: PurchaseType, offline_atc: u16) -> CApdu {
    CApdu { cla: 0x80, ins: ins::GET_TRANSACTION_PROVE, p1: 0x00, p2: kind.code(), data: offline_atc.to_be_bytes().to_vec(), le: Some(0x08) }
}

/// GET TRANSACTION PROVE answer: `Some(proof)` (same layout as DEBIT's: TAC | MAC2 — the order is
/// unverified), `None` on `9406` (no such completed transaction).
pub fn parse_transaction_prove(r: &RApdu) -> Result<Option<DebitProof>, PurseError> {
    if r.sw == sw::PROOF_NOT_AVAILABLE {
        return Ok(None);
    }
    ok(r, "GET TRANSACTION PROVE")?;
    parse_debit(&RApdu::new(r.data.clone(), r.sw)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const EF15: &str = "0311310000000001"; // issuer id

    fn ef15() -> Vec<u8> {
        h(&format!("{EF15}0201{}{}{}0000", "31000000000012345678", "20240101", "20341231"))
    }

    #[test]
    fn command_bytes() {
        assert_eq!(hex::encode_upper(select().to_bytes()), "00A4040008A00000063201010500");
        assert_eq!(hex::encode_upper(read_public_info().to_bytes()), "00B095001E");
        assert_eq!(hex::encode_upper(read_trip_record().to_bytes()), "00B201D400");
        assert_eq!(hex::encode_upper(get_balance().to_bytes()), "805C000204");
        assert_eq!(
            hex::encode_upper(initialize(PurchaseType::Capp, 1, 200, h("112233445566").try_into().unwrap()).to_bytes()),
            "805003020B01000000C81122334455660F"
        );
        let when = PurseDateTime::new(2026, 12, 5, 8, 30, 0).unwrap();
        assert_eq!(hex::encode_upper(debit([0, 0, 0, 7], when, [1, 2, 3, 4]).to_bytes()), "805401000F00000007202612050830000102030408");
        assert_eq!(hex::encode_upper(get_transaction_prove(PurchaseType::Capp, 0x0102).to_bytes()), "805A000902010208");
        let rec = update_capp_data_cache(&TripRecord::blank());
        assert_eq!((rec.cla, rec.ins, rec.p1, rec.p2, rec.data.len()), (0x80, 0xDC, 0x01, 0xD0, 32));
    }

    #[test]
    fn public_info_parses_and_round_trips() {
        let p = PublicInfo::parse(&ef15()).unwrap();
        assert_eq!(p.issuer_id, h("0311310000000001").as_slice());
        assert_eq!((p.app_type, p.app_version), (0x02, 0x01));
        assert_eq!(p.card_number(), "31000000000012345678");
        assert_eq!(p.masked_card_number(), "310000**********5678");
        assert!(!format!("{p:?}").contains("0000000012345678") && format!("{p:?}").contains("310000**********5678"));
        assert_eq!(p.city_code(), [0x31, 0x00]);
        assert_eq!(p.serial(), CardSerial(h("0000000012345678").try_into().unwrap()));
        assert_eq!(format!("{:?}", p.serial()), "CardSerial(…5678)");
        assert_eq!(p.start, PurseDate([0x20, 0x24, 0x01, 0x01]));
        assert_eq!(p.to_bytes(), ef15());
        assert!(matches!(PublicInfo::parse(&ef15()[..29]), Err(PurseError::Length { .. })));
        let mut bad = ef15();
        bad[24] = 0x2A;
        assert_eq!(PublicInfo::parse(&bad), Err(PurseError::NotBcd { what: "EF 15 expiry date" }));
    }

    #[test]
    fn trip_record_round_trips_and_rejects_junk() {
        let r = TripRecord {
            state: TripState::In,
            entry: Station { line: 2, station: 17 },
            entry_device: [1, 2, 3, 4, 5, 6],
            entry_time: PurseDateTime::new(2026, 12, 5, 8, 0, 0).unwrap(),
            exit: Station { line: 0, station: 0 },
            exit_time: PurseDateTime::NONE,
            last_fare: 300,
            transfer: true,
        };
        assert_eq!(TripRecord::parse(&r.to_bytes()).unwrap(), r);
        let mut b = r.to_bytes();
        b[1] = 7;
        assert_eq!(TripRecord::parse(&b), Err(PurseError::TripState(7)));
        assert!(TripRecord::parse(&b[..31]).is_err());
        assert_eq!(parse_trip_record(&RApdu::sw(0x6A83)).unwrap(), TripRecord::blank());
        assert!(parse_trip_record(&RApdu::sw(0x6A82)).is_err());
    }

    #[test]
    fn initialize_response_layout() {
        let r = RApdu::new(h(&["000003E8", "0005", "000000", "01", "00", "11223344"].concat()), 0x9000);
        let i = parse_initialize(&r).unwrap();
        assert_eq!(i, InitResponse { balance: 1000, offline_atc: 5, overdraft_limit: 0, key_version: 1, algorithm: 0, random: [0x11, 0x22, 0x33, 0x44] });
        assert_eq!(i.to_bytes(), r.data);
        assert_eq!(parse_initialize(&RApdu::sw(sw::INSUFFICIENT_BALANCE)), Err(PurseError::Status { what: "INITIALIZE FOR PURCHASE", sw: 0x9401 }));
        assert!(matches!(parse_initialize(&RApdu::new(vec![0; 14], 0x9000)), Err(PurseError::Length { .. })));
    }

    #[test]
    fn debit_and_prove_answers() {
        let p = parse_debit(&RApdu::new(h("AABBCCDD11223344"), 0x9000)).unwrap();
        assert_eq!(p, DebitProof { tac: [0xAA, 0xBB, 0xCC, 0xDD], mac2: [0x11, 0x22, 0x33, 0x44] });
        assert_eq!(parse_debit(&RApdu::sw(sw::MAC_ERROR)), Err(PurseError::Status { what: "DEBIT FOR PURCHASE", sw: 0x9302 }));
        assert_eq!(parse_transaction_prove(&RApdu::new(p.to_bytes(), 0x9000)), Ok(Some(p)));
        assert_eq!(parse_transaction_prove(&RApdu::sw(0x9406)), Ok(None));
        assert!(parse_transaction_prove(&RApdu::new(vec![1], 0x9000)).is_err());
    }

    #[test]
    fn balance_and_select() {
        assert_eq!(parse_balance(&RApdu::new(vec![0, 0, 1, 0], 0x9000)), Ok(256));
        assert!(parse_balance(&RApdu::new(vec![0, 1, 0], 0x9000)).is_err());
        let fci = tlv::Builder::new().put(tag::DF_NAME, &AID).wrap(tag::FCI_TEMPLATE);
        assert_eq!(parse_select(&RApdu::new(fci, 0x9000)), Ok(()));
        let other = tlv::Builder::new().put(tag::DF_NAME, &[0xA0, 0, 0, 3, 0x33, 1, 1, 1]).wrap(tag::FCI_TEMPLATE);
        assert!(matches!(parse_select(&RApdu::new(other, 0x9000)), Err(PurseError::WrongAid(_))));
        assert!(matches!(parse_select(&RApdu::sw(0x6A82)), Err(PurseError::Status { .. })));
        assert!(matches!(parse_select(&RApdu::new(vec![0x6F, 0x05], 0x9000)), Err(PurseError::Fci(_))));
    }

    #[test]
    fn date_time_arithmetic() {
        let a = PurseDateTime::new(2024, 2, 28, 23, 50, 0).unwrap();
        let b = PurseDateTime::new(2024, 3, 1, 0, 10, 59).unwrap();
        assert_eq!(b.minutes_since(a), 24 * 60 + 20); // 2024 is a leap year
        assert_eq!(a.minutes_since(b), -(24 * 60 + 20));
        let c = PurseDateTime::new(2025, 1, 1, 0, 0, 0).unwrap();
        let d = PurseDateTime::new(2024, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(c.minutes_since(d), 1);
        assert_eq!(PurseDateTime::new(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(PurseDateTime::new(2026, 12, 5, 8, 30, 1).unwrap().0, [0x20, 0x26, 0x12, 0x05, 0x08, 0x30, 0x01]);
        assert!(PurseDateTime::parse([0x20, 0x2A, 0, 0, 0, 0, 0], "t").is_err());
    }
}
