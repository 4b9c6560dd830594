//! A T-Union transit purse applet (PBOC e-purse with the CAPP composite purchase), the card side of
//! `kernels::purse`: SELECT, READ BINARY EF 15, READ RECORD of the EF 1A trip record, GET BALANCE,
//! INITIALIZE FOR (CAPP) PURCHASE, UPDATE CAPP DATA CACHE, DEBIT FOR (CAPP) PURCHASE (checks MAC1,
//! answers TAC and MAC2), GET TRANSACTION PROVE (the proof of its last debit, for a gate that lost
//! the DEBIT answer). TEST KEYS ONLY (`keys/transit.toml`).
//!
//! Not wired into the phone wallet yet: the wallet (or a test) calls [`PurseCard::process`] /
//! [`PurseCard::transmit`] for the commands it routes to the purse's AID.

use kernels::apdu::{sw as iso, CApdu, RApdu};
use kernels::purse::crypto::{self, Key16};
use kernels::purse::{ins, sfi, sw, DebitProof, InitResponse, PublicInfo, PurchaseType, PurseDateTime, TripRecord, AID};
use kernels::tag;
use kernels::tlv::{Builder, Tag};
use serde::Deserialize;

/// The built-in transit key file text (TEST ONLY).
pub const TRANSIT_TOML: &str = include_str!("../keys/transit.toml");

/// The transit test keys of `keys/transit.toml`.
#[derive(Clone, PartialEq, Eq)]
pub struct TransitKeys {
    pub key_index: u8,
    pub key_version: u8,
    pub algorithm: u8,
    pub purchase_master: Key16,
    pub tac_master: Key16,
}

impl std::fmt::Debug for TransitKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never printed, not even test keys.
        f.debug_struct("TransitKeys").field("key_index", &self.key_index).field("key_version", &self.key_version).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeysFile {
    purchase: PurchaseToml,
    tac: TacToml,
}

#[derive(Deserialize)]
struct PurchaseToml {
    key_index: u8,
    key_version: u8,
    algorithm: u8,
    master_key: String,
}

#[derive(Deserialize)]
struct TacToml {
    master_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TransitKeyError {
    #[error("transit key file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("transit key file: {0} is not 16 bytes of hex")]
    Key(&'static str),
}

fn key16(s: &str, what: &'static str) -> Result<Key16, TransitKeyError> {
    hex::decode(s).ok().and_then(|v| v.try_into().ok()).ok_or(TransitKeyError::Key(what))
}

impl TransitKeys {
    pub fn parse(text: &str) -> Result<TransitKeys, TransitKeyError> {
        let f: KeysFile = toml::from_str(text)?;
        Ok(TransitKeys {
            key_index: f.purchase.key_index,
            key_version: f.purchase.key_version,
            algorithm: f.purchase.algorithm,
            purchase_master: key16(&f.purchase.master_key, "purchase.master_key")?,
            tac_master: key16(&f.tac.master_key, "tac.master_key")?,
        })
    }

    pub fn builtin() -> Result<TransitKeys, TransitKeyError> {
        TransitKeys::parse(TRANSIT_TOML)
    }

    /// The TAC key of one card, as the back office derives it to check a TAC.
    pub fn card_tac_key(&self, card: &PublicInfo) -> Key16 {
        crypto::card_key(&self.tac_master, &crypto::issuer_factor(&card.issuer_id), &card.serial())
    }
}

/// How a purse card is personalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurseProfile {
    pub public: PublicInfo,
    /// Balance, fen.
    pub balance: u32,
    /// The next offline transaction counter.
    pub offline_atc: u16,
    /// The trip record, `None` for a card never used at a gate (READ RECORD → `6A83`).
    pub trip: Option<TripRecord>,
    /// The application answers SELECT with `6283`.
    pub blocked: bool,
    /// Seed of the card's pseudo-random numbers (deterministic for tests).
    pub random_seed: u32,
}

impl PurseProfile {
    /// A valid test card of issuer `03113100…01`, city code 3100, 2024-01-01 to 2034-12-31.
    pub fn test_card(serial_tail: u32, balance: u32) -> PurseProfile {
        let tail = kernels::types::to_bcd(u64::from(serial_tail), 4);
        let mut app_serial = [0x31, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
        app_serial[6..].copy_from_slice(&tail);
        PurseProfile {
            public: PublicInfo {
                issuer_id: [0x03, 0x11, 0x31, 0x00, 0x00, 0x00, 0x00, 0x01],
                app_type: 0x02,
                app_version: 0x01,
                app_serial,
                start: kernels::purse::PurseDate([0x20, 0x24, 0x01, 0x01]),
                expiry: kernels::purse::PurseDate([0x20, 0x34, 0x12, 0x31]),
                issuer_data: [0, 0],
            },
            balance,
            offline_atc: 1,
            trip: None,
            blocked: false,
            random_seed: serial_tail ^ 0x5A5A_5A5A,
        }
    }
}

/// The purchase INITIALIZE opened.
#[derive(Debug, Clone, Copy)]
struct Session {
    kind: PurchaseType,
    amount: u32,
    terminal_id: [u8; 6],
    random: [u8; 4],
    atc: u16,
}

/// The card's memory of its last debit, for GET TRANSACTION PROVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastDebit {
    pub kind: PurchaseType,
    pub offline_atc: u16,
    pub amount: u32,
    pub proof: DebitProof,
}

/// A T-Union purse card.
#[derive(Debug, Clone)]
pub struct PurseCard {
    profile: PurseProfile,
    key_index: u8,
    key_version: u8,
    algorithm: u8,
    dpk: Key16,
    dtk: Key16,
    balance: u32,
    atc: u16,
    trip: Option<TripRecord>,
    rng: u32,
    selected: bool,
    session: Option<Session>,
    /// UPDATE CAPP DATA CACHE wrote here; DEBIT commits it.
    cache: Option<TripRecord>,
    last: Option<LastDebit>,
}

fn le_fit(data: Vec<u8>, le: Option<u8>) -> RApdu {
    match le {
        Some(n) if n != 0 && usize::from(n) < data.len() => RApdu::new(data[..usize::from(n)].to_vec(), iso::OK),
        _ => RApdu::new(data, iso::OK),
    }
}

impl PurseCard {
    /// Personalises a card: its DPK and DTK are diversified from the test masters.
    pub fn new(profile: PurseProfile, keys: &TransitKeys) -> PurseCard {
        let f1 = crypto::issuer_factor(&profile.public.issuer_id);
        let serial = profile.public.serial();
        PurseCard {
            key_index: keys.key_index,
            key_version: keys.key_version,
            algorithm: keys.algorithm,
            dpk: crypto::card_key(&keys.purchase_master, &f1, &serial),
            dtk: crypto::card_key(&keys.tac_master, &f1, &serial),
            balance: profile.balance,
            atc: profile.offline_atc,
            trip: profile.trip.clone(),
            rng: profile.random_seed,
            selected: false,
            session: None,
            cache: None,
            last: None,
            profile,
        }
    }

    pub fn public_info(&self) -> &PublicInfo {
        &self.profile.public
    }
    pub fn balance(&self) -> u32 {
        self.balance
    }
    /// The offline ATC the next purchase will use.
    pub fn offline_atc(&self) -> u16 {
        self.atc
    }
    pub fn trip(&self) -> Option<&TripRecord> {
        self.trip.as_ref()
    }
    pub fn last_debit(&self) -> Option<LastDebit> {
        self.last
    }
    /// Tops the purse up (a load at a ticket machine, outside this simulator's commands).
    pub fn top_up(&mut self, fen: u32) {
        self.balance = self.balance.saturating_add(fen);
    }

    /// The field goes away: the selection, the open purchase and the uncommitted cache are lost;
    /// balance, counter, trip record and the last debit's proof are non-volatile.
    pub fn power_off(&mut self) {
        self.selected = false;
        self.session = None;
        self.cache = None;
    }

    /// One C-APDU in, one R-APDU out — never a panic, whatever the bytes.
    pub fn transmit(&mut self, c: &[u8]) -> Vec<u8> {
        match CApdu::parse(c) {
            Some(c) => self.process(&c),
            None => RApdu::sw(iso::WRONG_LENGTH),
        }
        .to_bytes()
    }

    pub fn process(&mut self, c: &CApdu) -> RApdu {
        if (c.cla, c.ins, c.p1) == (0x00, kernels::apdu::ins::SELECT, 0x04) {
            return self.select(&c.data);
        }
        if !self.selected {
            return RApdu::sw(iso::CONDITIONS_OF_USE_NOT_SATISFIED);
        }
        match (c.cla, c.ins) {
            (0x00, ins::READ_BINARY) => self.read_binary(c),
            (0x00, ins::READ_RECORD) => self.read_record(c),
            (0x80, ins::GET_BALANCE) if (c.p1, c.p2) == (0x00, 0x02) => RApdu::new(self.balance.to_be_bytes().to_vec(), iso::OK),
            (0x80, ins::GET_BALANCE) => RApdu::sw(iso::WRONG_P1P2),
            (0x80, ins::INITIALIZE) => self.initialize(c),
            (0x80, ins::UPDATE_CAPP_DATA_CACHE) => self.update_cache(c),
            (0x80, ins::DEBIT) => self.debit(c),
            (0x80, ins::GET_TRANSACTION_PROVE) => self.prove(c),
            (0x00 | 0x80, _) => RApdu::sw(iso::INS_NOT_SUPPORTED),
            _ => RApdu::sw(iso::CLA_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, name: &[u8]) -> RApdu {
        self.session = None;
        self.cache = None;
        if name != AID {
            self.selected = false;
            return RApdu::sw(iso::FILE_NOT_FOUND);
        }
        if self.profile.blocked {
            self.selected = false;
            return RApdu::sw(sw::APPLICATION_BLOCKED);
        }
        self.selected = true;
        // FCI: DF name, and the public information as issuer discretionary data (9F0C), where
        // transit.md says the card number is found.
        let a5 = Builder::new().put(Tag(0x9F0C), &self.profile.public.to_bytes()).wrap(tag::FCI_PROPRIETARY);
        RApdu::new(Builder::new().put(tag::DF_NAME, &AID).raw(&a5).wrap(tag::FCI_TEMPLATE), iso::OK)
    }

    fn read_binary(&self, c: &CApdu) -> RApdu {
        if c.p1 & 0x80 == 0 || c.p1 & 0x1F != sfi::PUBLIC_INFO {
            return RApdu::sw(iso::FILE_NOT_FOUND);
        }
        let data = self.profile.public.to_bytes();
        match data.get(usize::from(c.p2)..) {
            Some(rest) => le_fit(rest.to_vec(), c.le),
            None => RApdu::sw(iso::WRONG_P1P2),
        }
    }

    fn read_record(&self, c: &CApdu) -> RApdu {
        if c.p2 != (sfi::TRIP << 3) | 4 {
            return RApdu::sw(iso::FILE_NOT_FOUND);
        }
        match (&self.trip, c.p1 == TripRecord::RECORD_ID) {
            (Some(t), true) => RApdu::new(t.to_bytes(), iso::OK),
            _ => RApdu::sw(iso::RECORD_NOT_FOUND),
        }
    }

    fn next_random(&mut self) -> [u8; 4] {
        // xorshift32: deterministic, never zero for a non-zero seed.
        let mut x = if self.rng == 0 { 0x1234_5678 } else { self.rng };
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x.to_be_bytes()
    }

    fn initialize(&mut self, c: &CApdu) -> RApdu {
        self.session = None;
        self.cache = None;
        let kind = match (c.p1, c.p2) {
            (0x01, 0x02) => PurchaseType::Purchase,
            (0x03, 0x02) => PurchaseType::Capp,
            _ => return RApdu::sw(iso::WRONG_P1P2),
        };
        let Ok::<[u8; 11], _>(d) = c.data.as_slice().try_into() else { return RApdu::sw(iso::WRONG_LENGTH) };
        if d[0] != self.key_index {
            return RApdu::sw(sw::KEY_INDEX_NOT_SUPPORTED);
        }
        let amount = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
        if amount > self.balance {
            return RApdu::sw(sw::INSUFFICIENT_BALANCE);
        }
        let mut terminal_id = [0u8; 6];
        terminal_id.copy_from_slice(&d[5..]);
        let random = self.next_random();
        self.session = Some(Session { kind, amount, terminal_id, random, atc: self.atc });
        let r =
            InitResponse { balance: self.balance, offline_atc: self.atc, overdraft_limit: 0, key_version: self.key_version, algorithm: self.algorithm, random };
        RApdu::new(r.to_bytes(), iso::OK)
    }

    fn update_cache(&mut self, c: &CApdu) -> RApdu {
        match self.session {
            Some(Session { kind: PurchaseType::Capp, .. }) => {}
            _ => return RApdu::sw(iso::CONDITIONS_OF_USE_NOT_SATISFIED),
        }
        if c.p2 != sfi::TRIP << 3 {
            return RApdu::sw(iso::FILE_NOT_FOUND);
        }
        if c.p1 != TripRecord::RECORD_ID {
            return RApdu::sw(iso::RECORD_NOT_FOUND);
        }
        match TripRecord::parse(&c.data) {
            Ok(t) if c.data.len() == TripRecord::LEN => {
                self.cache = Some(t);
                RApdu::sw(iso::OK)
            }
            _ => RApdu::sw(iso::WRONG_LENGTH),
        }
    }

    fn debit(&mut self, c: &CApdu) -> RApdu {
        if (c.p1, c.p2) != (0x01, 0x00) {
            return RApdu::sw(iso::WRONG_P1P2);
        }
        let Some(s) = self.session.take() else { return RApdu::sw(iso::CONDITIONS_OF_USE_NOT_SATISFIED) };
        let Ok::<[u8; 15], _>(d) = c.data.as_slice().try_into() else { return RApdu::sw(iso::WRONG_LENGTH) };
        let ttsn = [d[0], d[1], d[2], d[3]];
        let Ok(when) = PurseDateTime::parse([d[4], d[5], d[6], d[7], d[8], d[9], d[10]], "DEBIT date-time") else {
            return RApdu::sw(iso::WRONG_LENGTH);
        };
        let mac1 = [d[11], d[12], d[13], d[14]];
        let sk = crypto::session_key(&self.dpk, s.random, s.atc, ttsn);
        if crypto::mac1(&sk, s.amount, s.kind, s.terminal_id, when) != mac1 {
            self.cache = None;
            return RApdu::sw(sw::MAC_ERROR);
        }
        // Commit: balance, counter and the cached record change together.
        self.balance -= s.amount.min(self.balance);
        self.atc = self.atc.wrapping_add(1);
        if let Some(t) = self.cache.take() {
            self.trip = Some(t);
        }
        let proof = DebitProof { tac: crypto::tac(&self.dtk, s.amount, s.kind, s.terminal_id, ttsn, when), mac2: crypto::mac2(&sk, s.amount) };
        self.last = Some(LastDebit { kind: s.kind, offline_atc: s.atc, amount: s.amount, proof });
        RApdu::new(proof.to_bytes(), iso::OK)
    }

    fn prove(&self, c: &CApdu) -> RApdu {
        let Ok::<[u8; 2], _>(atc) = c.data.as_slice().try_into() else { return RApdu::sw(iso::WRONG_LENGTH) };
        let atc = u16::from_be_bytes(atc);
        match self.last {
            Some(l) if l.offline_atc == atc && l.kind.code() == c.p2 => RApdu::new(l.proof.to_bytes(), iso::OK),
            _ => RApdu::sw(sw::PROOF_NOT_AVAILABLE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::purse::{self as p, crypto, Station, TripState};

    const TID: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

    fn card(balance: u32) -> PurseCard {
        let mut c = PurseCard::new(PurseProfile::test_card(12345678, balance), &TransitKeys::builtin().unwrap());
        assert!(c.process(&p::select()).is_ok());
        c
    }

    fn when() -> PurseDateTime {
        PurseDateTime::new(2026, 12, 5, 8, 30, 0).unwrap()
    }

    /// What a PSAM would compute, from the masters (the test plays both sides).
    fn mac1_for(c: &PurseCard, init: &InitResponse, amount: u32, ttsn: [u8; 4]) -> [u8; 4] {
        let keys = TransitKeys::builtin().unwrap();
        let info = c.public_info();
        let dpk = crypto::card_key(&keys.purchase_master, &crypto::issuer_factor(&info.issuer_id), &info.serial());
        let sk = crypto::session_key(&dpk, init.random, init.offline_atc, ttsn);
        crypto::mac1(&sk, amount, PurchaseType::Capp, TID, when())
    }

    #[test]
    fn keys_load_and_never_print() {
        let k = TransitKeys::builtin().unwrap();
        assert_eq!((k.key_index, k.key_version, k.algorithm), (1, 1, 0));
        assert!(k.purchase_master.iter().chain(&k.tac_master).all(|b| b.count_ones() % 2 == 1), "odd parity");
        let shown = format!("{k:?}");
        assert!(!shown.contains(&format!("{:?}", k.purchase_master)) && !shown.contains(&format!("{:?}", k.tac_master)));
        assert!(!shown.to_uppercase().contains("0EF1E691"));
        assert!(TransitKeys::parse("[purchase]\nkey_index=1\nkey_version=1\nalgorithm=0\nmaster_key=\"00\"\n[tac]\nmaster_key=\"00\"").is_err());
    }

    #[test]
    fn select_read_and_balance() {
        let mut c = PurseCard::new(PurseProfile::test_card(12345678, 1000), &TransitKeys::builtin().unwrap());
        assert_eq!(c.process(&p::get_balance()).sw, iso::CONDITIONS_OF_USE_NOT_SATISFIED, "nothing before SELECT");
        let fci = c.process(&p::select());
        assert_eq!(p::parse_select(&fci), Ok(()));
        assert_eq!(kernels::tlv::find(&fci.data, Tag(0x9F0C)).unwrap(), Some(c.public_info().to_bytes().as_slice()));
        let info = p::parse_public_info(&c.process(&p::read_public_info())).unwrap();
        assert_eq!(info.card_number(), "31000000000012345678");
        assert_eq!(p::parse_balance(&c.process(&p::get_balance())), Ok(1000));
        assert_eq!(p::parse_trip_record(&c.process(&p::read_trip_record())), Ok(TripRecord::blank()));
        assert_eq!(c.process(&p::read_binary(sfi::CARDHOLDER, 0)).sw, iso::FILE_NOT_FOUND);
        assert_eq!(c.process(&CApdu::select(&[0xA0, 0, 0, 3, 0x33, 1, 1, 1])).sw, iso::FILE_NOT_FOUND);
    }

    #[test]
    fn purchase_commits_balance_counter_and_record_together() {
        let mut c = card(1000);
        let init = p::parse_initialize(&c.process(&p::initialize(PurchaseType::Capp, 1, 300, TID))).unwrap();
        assert_eq!((init.balance, init.offline_atc, init.key_version), (1000, 1, 1));
        let rec = TripRecord { state: TripState::In, entry: Station { line: 1, station: 2 }, entry_time: when(), ..TripRecord::blank() };
        assert!(c.process(&p::update_capp_data_cache(&rec)).is_ok());
        assert_eq!(c.trip(), None, "cached, not yet written");
        let ttsn = [0, 0, 0, 9];
        let proof = p::parse_debit(&c.process(&p::debit(ttsn, when(), mac1_for(&c, &init, 300, ttsn)))).unwrap();
        assert_eq!((c.balance(), c.offline_atc(), c.trip()), (700, 2, Some(&rec)));
        let keys = TransitKeys::builtin().unwrap();
        assert_eq!(proof.tac, crypto::tac(&keys.card_tac_key(c.public_info()), 300, PurchaseType::Capp, TID, ttsn, when()));
        // The proof is there for the ATC the debit used, and only for it.
        assert_eq!(p::parse_transaction_prove(&c.process(&p::get_transaction_prove(PurchaseType::Capp, 1))), Ok(Some(proof)));
        assert_eq!(p::parse_transaction_prove(&c.process(&p::get_transaction_prove(PurchaseType::Capp, 2))), Ok(None));
        assert_eq!(p::parse_transaction_prove(&c.process(&p::get_transaction_prove(PurchaseType::Purchase, 1))), Ok(None));
        // A DEBIT without a new INITIALIZE is refused.
        assert_eq!(c.process(&p::debit(ttsn, when(), [0; 4])).sw, iso::CONDITIONS_OF_USE_NOT_SATISFIED);
    }

    #[test]
    fn wrong_mac1_changes_nothing() {
        let mut c = card(1000);
        let init = p::parse_initialize(&c.process(&p::initialize(PurchaseType::Capp, 1, 300, TID))).unwrap();
        let rec = TripRecord { state: TripState::In, ..TripRecord::blank() };
        assert!(c.process(&p::update_capp_data_cache(&rec)).is_ok());
        let mut mac = mac1_for(&c, &init, 300, [0, 0, 0, 9]);
        mac[0] ^= 1;
        assert_eq!(c.process(&p::debit([0, 0, 0, 9], when(), mac)).sw, sw::MAC_ERROR);
        assert_eq!((c.balance(), c.offline_atc(), c.trip(), c.last_debit()), (1000, 1, None, None));
    }

    #[test]
    fn refusals() {
        let mut c = card(100);
        assert_eq!(c.process(&p::initialize(PurchaseType::Capp, 1, 101, TID)).sw, sw::INSUFFICIENT_BALANCE);
        assert_eq!(c.process(&p::initialize(PurchaseType::Capp, 2, 1, TID)).sw, sw::KEY_INDEX_NOT_SUPPORTED);
        assert_eq!(c.process(&p::update_capp_data_cache(&TripRecord::blank())).sw, iso::CONDITIONS_OF_USE_NOT_SATISFIED);
        // A plain purchase session cannot write the CAPP cache.
        assert!(c.process(&p::initialize(PurchaseType::Purchase, 1, 1, TID)).is_ok());
        assert_eq!(c.process(&p::update_capp_data_cache(&TripRecord::blank())).sw, iso::CONDITIONS_OF_USE_NOT_SATISFIED);
        let mut blocked = PurseProfile::test_card(1, 100);
        blocked.blocked = true;
        let mut b = PurseCard::new(blocked, &TransitKeys::builtin().unwrap());
        assert_eq!(b.process(&p::select()).sw, sw::APPLICATION_BLOCKED);
    }

    #[test]
    fn power_off_drops_the_open_purchase() {
        let mut c = card(1000);
        let init = p::parse_initialize(&c.process(&p::initialize(PurchaseType::Capp, 1, 300, TID))).unwrap();
        c.power_off();
        assert!(c.process(&p::select()).is_ok());
        assert_eq!(c.process(&p::debit([0, 0, 0, 9], when(), mac1_for(&c, &init, 300, [0, 0, 0, 9]))).sw, iso::CONDITIONS_OF_USE_NOT_SATISFIED);
        assert_eq!(c.balance(), 1000);
    }

    #[test]
    fn random_numbers_differ_between_purchases() {
        let mut c = card(1000);
        let a = p::parse_initialize(&c.process(&p::initialize(PurchaseType::Capp, 1, 0, TID))).unwrap();
        let b = p::parse_initialize(&c.process(&p::initialize(PurchaseType::Capp, 1, 0, TID))).unwrap();
        assert_ne!(a.random, b.random);
    }

    #[test]
    fn garbage_never_panics() {
        let mut c = card(1000);
        for bytes in [
            &[][..],
            &[0x80],
            &[0x80, 0x54, 0x01, 0x00, 0x02, 0x00],
            &[0x80, 0x50, 0x03, 0x02, 0x01, 0x01],
            &[0x80, 0x5A, 0, 9, 1, 1],
            &[0x00, 0xB0, 0x95, 0x40, 0x00],
            &[0x80, 0xDC, 1, 0xD0, 1, 0],
        ] {
            let r = RApdu::parse(&c.transmit(bytes)).unwrap();
            assert_ne!(r.sw, iso::OK, "{bytes:02X?}");
        }
    }
}
