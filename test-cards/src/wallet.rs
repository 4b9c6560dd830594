//! The phone wallet (or plastic card) as a card: it answers C-APDUs with R-APDUs the way a
//! qVSDC / qPBOC application does — PPSE, SELECT, GPO (the card decides TC / ARQC / AAC and signs
//! fDDA data), READ RECORD, GET DATA — and keeps the CDCVM state of the phone.

use crate::issuers::{self, Issuer};
use crate::pki::{self, RsaKeyPair};
use crate::profile::{CardProfile, FddaVersion, FingerprintState, Form, IadFormat, Profile, ProfileError};
use kernels::apdu::{ins, sw, CApdu, RApdu, PPSE_NAME};
use kernels::cryptogram::{self, CryptogramMethod};
use kernels::dol::Dol;
use kernels::tag;
use kernels::tlv::{Builder, Tag};
use kernels::types::{digits, Amount, CryptogramType, Ctq, Ttq};
use sha1::{Digest, Sha1};

/// One card application of the wallet, personalised.
pub struct CardApp {
    pub profile: CardProfile,
    aid: Vec<u8>,
    pan_cn: Vec<u8>,
    pdol: Dol,
    aip: Vec<u8>,
    issuer: Issuer,
    icc_key: RsaKeyPair,
    /// (SFI, record number, record bytes).
    records: Vec<(u8, u8, Vec<u8>)>,
    afl: Vec<u8>,
    pub atc: u16,
    pub offline_balance: Option<u64>,
    pub priority: Option<u8>,
}

/// What the wallet did on its last GPO, for tests and the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastTxn {
    pub cryptogram: CryptogramType,
    pub cdcvm: bool,
    pub atc: u16,
    pub amount: u64,
}

/// A phone wallet or a plastic card.
pub struct Wallet {
    pub form: Form,
    fingerprint: FingerprintState,
    ppse_sw: Option<u16>,
    /// Raw bytes appended in the PPSE's BF0C (profile `ppse_extra_entries`).
    ppse_extra: Vec<u8>,
    pub cards: Vec<CardApp>,
    selected: Option<usize>,
    /// The phone is showing "confirm with your fingerprint" after a See Phone answer.
    pub prompt_shown: bool,
    pub last: Option<LastTxn>,
    /// The city transport card (T-Union purse), if the wallet carries one.
    purse: Option<crate::purse::PurseCard>,
    /// The last SELECT chose the purse: its commands go to it.
    purse_selected: bool,
    /// Express transit switched off by the holder: the purse does not answer its SELECT.
    transit_off: bool,
}

fn hex_field(name: &str, field: &str, v: &str) -> Result<Vec<u8>, ProfileError> {
    hex::decode(v).map_err(|e| ProfileError::Field { name: name.into(), field: field.into(), problem: e.to_string() })
}

fn sw_field(name: &str, field: &str, v: &Option<String>) -> Result<Option<u16>, ProfileError> {
    v.as_deref()
        .map(|s| u16::from_str_radix(s, 16).map_err(|e| ProfileError::Field { name: name.into(), field: field.into(), problem: e.to_string() }))
        .transpose()
}

/// PAN digits as cn (F-padded to whole bytes).
fn pan_to_cn(pan: &str) -> Vec<u8> {
    let mut s = pan.to_string();
    if s.len() % 2 == 1 {
        s.push('F');
    }
    hex::decode(s).unwrap_or_default()
}

impl CardApp {
    fn personalise(name: &str, p: &CardProfile, issuers: &[Issuer]) -> Result<CardApp, ProfileError> {
        let field = |f: &str, problem: String| ProfileError::Field { name: name.into(), field: f.into(), problem };
        if p.pan.len() < 12 || p.pan.len() > 19 || !p.pan.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field("pan", "a PAN has 12 to 19 digits".into()));
        }
        let aid = hex_field(name, "aid", &p.aid)?;
        let pdol = Dol::parse(&hex_field(name, "pdol", &p.pdol)?).map_err(|e| field("pdol", e.to_string()))?;
        let aip = hex_field(name, "aip", &p.aip)?;
        if aip.len() != 2 {
            return Err(field("aip", "AIP is 2 bytes".into()));
        }
        let issuer = issuers::for_pan(issuers, &p.pan).cloned().ok_or_else(|| field("pan", "no test issuer in keys/issuers.toml covers this PAN".into()))?;
        let pki_err = |source| ProfileError::Pki { name: name.into(), source };
        let ca = pki::key(&p.keys.ca).map_err(pki_err)?;
        let issuer_key = pki::key(&p.keys.issuer).map_err(pki_err)?;
        let icc_key = pki::key(&p.keys.icc).map_err(pki_err)?;
        let ca_index = hex_field(name, "keys.ca_index", &p.keys.ca_index)?;
        let mmyy = |f: &str, v: &str| -> Result<[u8; 2], ProfileError> { hex_field(name, f, v)?.try_into().map_err(|_| field(f, "MMYY is 2 bytes".into())) };
        let pan_cn = pan_to_cn(&p.pan);
        let date = |f: &str, v: &str| -> Result<Vec<u8>, ProfileError> {
            let b = hex_field(name, f, v)?;
            (b.len() == 3).then_some(b).ok_or_else(|| field(f, "dates are YYMMDD".into()))
        };

        // Record 1 (SFI 1): static application data, signed through the ICC certificate.
        let expiry = date("expiry", &p.expiry)?;
        let mut r1 = Builder::new()
            .put(tag::PAN, &pan_cn)
            .put_opt(tag::EXPIRY_DATE, (!p.behaviour.omit_expiry).then_some(expiry.as_slice()))
            .put(tag::ISSUER_COUNTRY, &[0x01, 0x56])
            .put(tag::AUC, &[0xFF, 0x00])
            .put(tag::APP_VERSION_CARD, &[0x00, 0x30])
            .put(tag::SDA_TAG_LIST, &[0x82]);
        if let Some(e) = &p.effective {
            r1 = r1.put(tag::EFFECTIVE_DATE, &date("effective", e)?);
        }
        let r1 = r1.wrap(tag::RECORD_TEMPLATE);
        let r1_value = &r1[2..];
        let mut static_data = r1_value.to_vec();
        // A proprietary record (SFI 11) listed for ODA counts whole (Book 3 §10.3).
        let proprietary = p.behaviour.proprietary_record.as_deref().map(|r| hex_field(name, "behaviour.proprietary_record", r)).transpose()?;
        if let (Some(r), true) = (&proprietary, p.behaviour.proprietary_record_oda) {
            static_data.extend_from_slice(r);
        }
        static_data.extend_from_slice(&aip);
        let serial: [u8; 3] = match &p.keys.issuer_cert_serial {
            Some(v) => {
                hex_field(name, "keys.issuer_cert_serial", v)?.try_into().map_err(|_| field("keys.issuer_cert_serial", "a serial number is 3 bytes".into()))?
            }
            None => [0, 0, 1],
        };
        let cert_pan = match &p.keys.icc_cert_pan {
            Some(v) if v.len() >= 12 && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) => pan_to_cn(v),
            Some(_) => return Err(field("keys.icc_cert_pan", "a PAN has 12 to 19 digits".into())),
            None => pan_cn.clone(),
        };

        // Issuer id: the leftmost 8 digits of the PAN (Book 2 §5.3 Table 6).
        let issuer_id: [u8; 4] = pan_cn[..4].try_into().map_err(|_| field("pan", "too short".into()))?;
        let (mut ipk_cert, ipk_rem) =
            pki::issuer_certificate(&ca, &issuer_key, issuer_id, mmyy("keys.issuer_cert_expiry", &p.keys.issuer_cert_expiry)?, serial).map_err(pki_err)?;
        let (mut icc_cert, icc_rem) =
            pki::icc_certificate(&issuer_key, &icc_key, &cert_pan, mmyy("keys.icc_cert_expiry", &p.keys.icc_cert_expiry)?, [0, 0, 1], &static_data)
                .map_err(pki_err)?;
        // Failure switches: one flipped byte and the certificate no longer opens.
        for (on, cert) in [(p.behaviour.corrupt_issuer_cert, &mut ipk_cert), (p.behaviour.corrupt_icc_cert, &mut icc_cert)] {
            if let (true, Some(b)) = (on, cert.get_mut(20)) {
                *b ^= 0x5A;
            }
        }
        let r2 = Builder::new()
            .put(tag::CA_PK_INDEX, &ca_index)
            .put(tag::ISSUER_PK_CERT, &ipk_cert)
            .put_opt(tag::ISSUER_PK_REMAINDER, ipk_rem.as_deref())
            .put(tag::ISSUER_PK_EXPONENT, &issuer_key.exponent())
            .wrap(tag::RECORD_TEMPLATE);
        let mut r3 =
            Builder::new().put(tag::ICC_PK_CERT, &icc_cert).put_opt(tag::ICC_PK_REMAINDER, icc_rem.as_deref()).put(tag::ICC_PK_EXPONENT, &icc_key.exponent());
        if let Some(par) = &p.par {
            if par.len() != 29 {
                return Err(field("par", "a PAR has 29 characters".into()));
            }
            r3 = r3.put(tag::PAR, par.as_bytes());
        }
        let r3 = r3.wrap(tag::RECORD_TEMPLATE);
        Ok(CardApp {
            profile: p.clone(),
            aid,
            pan_cn,
            pdol,
            aip,
            issuer,
            icc_key,
            records: [vec![(1, 1, r1), (1, 2, r2), (1, 3, r3)], proprietary.iter().map(|r| (11, 1, r.clone())).collect()].concat(),
            afl: match proprietary {
                Some(_) => vec![0x08, 1, 3, 1, 11 << 3, 1, 1, u8::from(p.behaviour.proprietary_record_oda)],
                None => vec![0x08, 1, 3, 1],
            },
            atc: p.atc,
            offline_balance: p.offline_balance,
            priority: p.priority,
        })
    }

    /// Token or card PAN, digits.
    pub fn pan(&self) -> &str {
        &self.profile.pan
    }

    fn track2(&self) -> Vec<u8> {
        // PAN ‖ D ‖ YYMM ‖ service code 201 (international, IC) ‖ discretionary data, F-padded.
        let yymm = &self.profile.expiry[..4];
        pan_to_cn(&format!("{}D{}2010000000000", self.profile.pan, yymm))
    }

    fn fci(&self) -> Vec<u8> {
        let mut a5 = Builder::new().put(tag::APPLICATION_LABEL, self.profile.label.as_bytes());
        if let Some(p) = self.priority {
            a5 = a5.put(tag::PRIORITY, &[p]);
        }
        let a5 = a5.put(tag::PDOL, &self.pdol.encode()).put(tag::LANGUAGE_PREFERENCE, b"zhen").wrap(tag::FCI_PROPRIETARY);
        Builder::new().put(tag::DF_NAME, &self.aid).raw(&a5).wrap(tag::FCI_TEMPLATE)
    }
}

impl Wallet {
    /// Personalises every card of a profile (certificates are computed here from the test PKI).
    pub fn from_profile(name: &str, p: &Profile) -> Result<Wallet, ProfileError> {
        let issuers = issuers::builtin().map_err(|e| ProfileError::Field { name: name.into(), field: "issuers".into(), problem: e.to_string() })?;
        let cards = p.cards.iter().map(|c| CardApp::personalise(name, c, &issuers)).collect::<Result<Vec<_>, _>>()?;
        Ok(Wallet {
            form: p.form,
            fingerprint: p.fingerprint,
            ppse_sw: sw_field(name, "ppse_sw", &p.ppse_sw)?,
            ppse_extra: p.ppse_extra_entries.as_deref().map(|h| hex_field(name, "ppse_extra_entries", h)).transpose()?.unwrap_or_default(),
            cards,
            selected: None,
            prompt_shown: false,
            last: None,
            purse: match &p.transit {
                Some(t) => {
                    let keys = crate::purse::TransitKeys::builtin().map_err(|e| ProfileError::Field {
                        name: name.into(),
                        field: "transit".into(),
                        problem: e.to_string(),
                    })?;
                    Some(crate::purse::PurseCard::new(crate::purse::PurseProfile::test_card(t.serial, t.balance), &keys))
                }
                None => None,
            },
            purse_selected: false,
            transit_off: false,
        })
    }

    /// Loads a built-in profile (or a file) and personalises it.
    pub fn load(name: &str) -> Result<Wallet, ProfileError> {
        Wallet::from_profile(name, &Profile::load(name)?)
    }

    /// The holder touches the fingerprint sensor (consumer-device CVM). Plastic cards have none.
    pub fn give_fingerprint(&mut self) -> bool {
        if self.form != Form::Phone {
            return false;
        }
        self.fingerprint = FingerprintState::Given;
        self.prompt_shown = false;
        true
    }

    pub fn fingerprint_given(&self) -> bool {
        self.fingerprint == FingerprintState::Given
    }

    /// The holder picks another card of the wallet as the one to pay with (it gets priority 1,
    /// the others keep their order behind it).
    pub fn choose_card(&mut self, index: usize) -> bool {
        if index >= self.cards.len() {
            return false;
        }
        let mut order: Vec<usize> = (0..self.cards.len()).filter(|&i| i != index).collect();
        order.sort_by_key(|&i| self.cards[i].priority.unwrap_or(15));
        self.cards[index].priority = Some(1);
        for (n, i) in order.into_iter().enumerate() {
            self.cards[i].priority = Some((n as u8 + 2).min(15));
        }
        true
    }

    /// Field off / card removed: the application is deselected.
    pub fn power_off(&mut self) {
        self.selected = None;
        self.purse_selected = false;
        if let Some(p) = &mut self.purse {
            p.power_off();
        }
    }

    /// The holder switches express transit on or off (off: the gate sees only the bank cards).
    /// `false` when the wallet has no transport card.
    pub fn set_transit(&mut self, on: bool) -> bool {
        self.transit_off = !on;
        self.purse.is_some()
    }

    /// The wallet's transit purse (balance, trip record), if it has one.
    pub fn purse(&self) -> Option<&crate::purse::PurseCard> {
        self.purse.as_ref()
    }

    /// One C-APDU in, one R-APDU out — never a panic, whatever the bytes.
    pub fn transmit(&mut self, c: &[u8]) -> Vec<u8> {
        let r = match CApdu::parse(c) {
            Some(c) => self.process(&c),
            None => RApdu::sw(sw::WRONG_LENGTH),
        };
        r.to_bytes()
    }

    fn process(&mut self, c: &CApdu) -> RApdu {
        // Express transit: a SELECT of the T-Union AID reaches the purse without the holder.
        if c.cla == 0x00 && c.ins == ins::SELECT && c.p1 == 0x04 {
            self.purse_selected = self.purse.is_some() && !self.transit_off && c.data == kernels::purse::AID;
        }
        if self.purse_selected {
            if let Some(p) = &mut self.purse {
                return p.process(c);
            }
        }
        match (c.cla, c.ins) {
            (0x00, ins::SELECT) if c.p1 == 0x04 => self.select(&c.data),
            (0x80, ins::GET_PROCESSING_OPTIONS) => self.gpo(&c.data),
            (0x00, ins::READ_RECORD) => self.read_record(c.p1, c.p2),
            (0x80, ins::GET_DATA) => self.get_data(Tag(u32::from(c.p1) << 8 | u32::from(c.p2))),
            (0x00 | 0x80, _) => RApdu::sw(sw::INS_NOT_SUPPORTED),
            _ => RApdu::sw(sw::CLA_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, name: &[u8]) -> RApdu {
        if name == PPSE_NAME {
            self.selected = None;
            if let Some(s) = self.ppse_sw {
                return RApdu::sw(s);
            }
            let mut dir = Builder::new();
            let extra = self.ppse_extra.clone();
            for card in &self.cards {
                let mut e = Builder::new().put(tag::AID_CARD, &card.aid).put(tag::APPLICATION_LABEL, card.profile.label.as_bytes());
                if let Some(p) = card.priority {
                    e = e.put(tag::PRIORITY, &[p]);
                }
                if let Some(k) = card.profile.kernel_id.as_deref().and_then(|k| hex::decode(k).ok()) {
                    e = e.put(tag::KERNEL_IDENTIFIER, &k);
                }
                dir = dir.raw(&e.wrap(tag::DIRECTORY_ENTRY));
            }
            dir = dir.raw(&extra);
            let a5 = Builder::new().raw(&dir.wrap(tag::FCI_ISSUER_DISCRETIONARY)).wrap(tag::FCI_PROPRIETARY);
            let fci = Builder::new().put(tag::DF_NAME, PPSE_NAME).raw(&a5).wrap(tag::FCI_TEMPLATE);
            return RApdu::new(fci, sw::OK);
        }
        match self.cards.iter().position(|c| c.aid == name) {
            Some(i) => {
                self.selected = Some(i);
                RApdu::new(self.cards[i].fci(), sw::OK)
            }
            None => RApdu::sw(sw::FILE_NOT_FOUND),
        }
    }

    fn read_record(&self, rec: u8, p2: u8) -> RApdu {
        let Some(card) = self.selected.and_then(|i| self.cards.get(i)) else {
            return RApdu::sw(sw::CONDITIONS_OF_USE_NOT_SATISFIED);
        };
        if p2 & 0x07 != 0x04 {
            return RApdu::sw(sw::WRONG_P1P2);
        }
        let sfi = p2 >> 3;
        match card.records.iter().find(|(s, r, _)| *s == sfi && *r == rec) {
            Some((_, _, data)) => RApdu::new(data.clone(), sw::OK),
            None => RApdu::sw(sw::RECORD_NOT_FOUND),
        }
    }

    fn get_data(&self, t: Tag) -> RApdu {
        let Some(card) = self.selected.and_then(|i| self.cards.get(i)) else {
            return RApdu::sw(sw::CONDITIONS_OF_USE_NOT_SATISFIED);
        };
        let v = match t {
            t if t == tag::ATC => card.atc.to_be_bytes().to_vec(),
            t if t == tag::AVAILABLE_OFFLINE_AMOUNT || t == tag::EC_BALANCE => match card.offline_balance {
                Some(b) => Amount(b).to_n12().to_vec(),
                None => return RApdu::sw(sw::REFERENCED_DATA_NOT_FOUND),
            },
            _ => return RApdu::sw(sw::REFERENCED_DATA_NOT_FOUND),
        };
        RApdu::new(kernels::tlv::encode(t, &v), sw::OK)
    }

    /// GET PROCESSING OPTIONS: the card's risk management and CVM decision, the cryptogram, and
    /// for an offline approval the fDDA signature (C-3 / C-7 card behaviour).
    fn gpo(&mut self, data: &[u8]) -> RApdu {
        let Some(idx) = self.selected else {
            return RApdu::sw(sw::CONDITIONS_OF_USE_NOT_SATISFIED);
        };
        let form = self.form;
        let fingerprint = self.fingerprint;
        let card = &mut self.cards[idx];
        if let Some(s) = card.profile.behaviour.gpo_sw.as_deref().and_then(|s| u16::from_str_radix(s, 16).ok()) {
            return RApdu::sw(s);
        }
        // 83 L ‖ PDOL related data, exactly as long as the PDOL asks.
        let pdol_data = match data {
            [0x83, l, rest @ ..] if usize::from(*l) == rest.len() => rest,
            _ => return RApdu::sw(sw::WRONG_LENGTH),
        };
        let Some(fields) = card.pdol.split(pdol_data) else {
            return RApdu::sw(sw::WRONG_LENGTH);
        };
        let term = |t: Tag| fields.iter().find(|(x, _)| *x == t).map(|(_, v)| v.to_vec());
        let ttq = term(tag::TTQ).and_then(|v| Ttq::from_slice(&v)).unwrap_or_default();
        let amount = term(tag::AMOUNT_AUTHORISED).and_then(|v| Amount::from_bcd(&v)).unwrap_or_default();
        let un = term(tag::UNPREDICTABLE_NUMBER).unwrap_or_else(|| vec![0; 4]);
        let currency = term(tag::TXN_CURRENCY).unwrap_or_else(|| vec![0; 2]);

        // Cardholder verification the card asks for.
        let mut ctq = hex::decode(&card.profile.ctq).ok().and_then(|v| Ctq::from_slice(&v)).unwrap_or_default();
        let phone_cdcvm = form == Form::Phone && card.profile.cdcvm;
        let mut cdcvm = false;
        if phone_cdcvm && fingerprint == FingerprintState::Given {
            // The holder verified on the phone: the wallet says so whatever the amount.
            ctq.set_cdcvm_performed(true);
            cdcvm = true;
        } else if ttq.cvm_required() {
            if phone_cdcvm && ttq.cdcvm_supported() {
                // Locked phone above the CVM limit: "See Phone" (6986), holder confirms, taps again.
                self.prompt_shown = true;
                return RApdu::sw(sw::SEE_PHONE);
            } else if ttq.online_pin_supported() {
                ctq.set_online_pin_required(true);
            } else if ttq.signature_supported() {
                ctq.set_signature_required(true);
            }
        }

        // Card risk management: the card decides the cryptogram.
        let covered = card.offline_balance.is_none_or(|b| amount.0 <= b);
        let ctype = if card.profile.behaviour.decline {
            CryptogramType::Aac
        } else if card.profile.offline_capable && !ttq.online_cryptogram_required() && !ctq.online_pin_required() && covered && currency == [0x01, 0x56] {
            CryptogramType::Tc
        } else if ttq.offline_only() {
            CryptogramType::Aac
        } else {
            CryptogramType::Arqc
        };
        card.atc = card.atc.wrapping_add(1);
        let atc = card.atc.to_be_bytes();
        if ctype == CryptogramType::Tc {
            if let Some(b) = card.offline_balance.as_mut() {
                *b -= amount.0;
            }
        }

        // Issuer Application Data with the CVR; the AC type sits in CVR byte 2.
        let format = card.profile.iad_format.unwrap_or(match card.issuer.method {
            CryptogramMethod::VisaCvn10 => IadFormat::Visa0,
            CryptogramMethod::EmvCsk => IadFormat::UnionPay,
        });
        let iad = issuer_application_data(format, ctype);
        let trailer = match card.issuer.method {
            CryptogramMethod::VisaCvn10 => iad[3..7].to_vec(),
            CryptogramMethod::EmvCsk => iad.clone(),
        };
        let aip = card.aip.clone();
        let ac_data = cryptogram::ac_input(
            |t| {
                if t == tag::AIP {
                    Some(aip.clone())
                } else if t == tag::ATC {
                    Some(atc.to_vec())
                } else {
                    term(t)
                }
            },
            &trailer,
        );
        let pan_digits = digits(&card.pan_cn);
        let ac = cryptogram::generate_ac(card.issuer.method, &card.issuer.imk_ac, &pan_digits, card.profile.psn, atc, &ac_data);

        // 9F69: fDDA version 01 ‖ card unpredictable number ‖ CTQ.
        let card_un: [u8; 4] = {
            let h = Sha1::new().chain_update(&card.pan_cn).chain_update(atc).chain_update(&un).finalize();
            [h[0], h[1], h[2], h[3]]
        };
        let fdda_version = card.profile.fdda_version;
        let mut cad = vec![match fdda_version {
            FddaVersion::V00 => 0x00,
            FddaVersion::V01 => 0x01,
        }];
        cad.extend_from_slice(&card_un);
        cad.extend_from_slice(&ctq.0);

        let mut resp = Builder::new()
            .put(tag::AIP, &card.aip)
            .put(tag::AFL, &card.afl)
            .put(tag::ATC, &atc)
            .put(tag::APPLICATION_CRYPTOGRAM, &ac)
            .put(tag::ISSUER_APP_DATA, &iad)
            .put(tag::TRACK2_EQUIVALENT, &card.track2())
            .put(tag::PAN_SEQUENCE, &[card.profile.psn])
            .put(tag::CTQ, &ctq.0)
            .put(tag::CARD_AUTH_RELATED_DATA, &cad);
        if card.profile.send_cid {
            resp = resp.put(tag::CID, &[ctype.cid()]);
        }
        if let Some(ff) = card.profile.form_factor.as_deref().and_then(|f| hex::decode(f).ok()) {
            resp = resp.put(tag::FORM_FACTOR, &ff);
        }
        if let Some(b) = card.offline_balance {
            resp = resp.put(tag::AVAILABLE_OFFLINE_AMOUNT, &Amount(b).to_n12());
        }
        // fDDA: sign UN ‖ amount ‖ currency ‖ 9F69 on the offline path when the AIP offers DDA.
        if ctype == CryptogramType::Tc && card.aip[0] & 0x20 != 0 {
            // Version 00 signs the unpredictable number only; 01 also amount, currency, 9F69.
            let mut tdd = un.clone();
            if fdda_version == FddaVersion::V01 {
                tdd.extend(term(tag::AMOUNT_AUTHORISED).unwrap_or_else(|| vec![0; 6]));
                tdd.extend_from_slice(&currency);
                tdd.extend_from_slice(&cad);
            }
            let idn = Sha1::new().chain_update(b"IDN").chain_update(&card.pan_cn).chain_update(atc).finalize();
            match pki::sign_dynamic_data(&card.icc_key, &idn[..8], &tdd) {
                Ok(mut sdad) => {
                    if card.profile.behaviour.corrupt_sdad {
                        let n = sdad.len();
                        sdad[n / 2] ^= 0x5A;
                    }
                    resp = resp.put(tag::SDAD, &sdad);
                }
                Err(_) => return RApdu::sw(0x6F00),
            }
        }
        if cdcvm {
            // One verification pays once.
            self.fingerprint = FingerprintState::None;
        }
        self.last = Some(LastTxn { cryptogram: ctype, cdcvm, atc: card.atc, amount: amount.0 });
        RApdu::new(resp.wrap(tag::RESPONSE_FORMAT_2), sw::OK)
    }
}

/// The Issuer Application Data of `format` with the cryptogram type in its CVR, bits b6-b5 of
/// CVR byte 2 (byte 1 in Visa format 2, whose CVR has no length byte): see `kernels::iad`.
fn issuer_application_data(format: IadFormat, ctype: CryptogramType) -> Vec<u8> {
    let ac = (ctype.cid() >> 6) << 4;
    match format {
        IadFormat::Visa0 => vec![0x06, 0x01, 0x0A, 0x03, ac, 0x00, 0x00],
        IadFormat::Visa1 => vec![0x06, 0x01, 0x11, 0x03, ac, 0x00, 0x00],
        IadFormat::Visa3 => vec![0x06, 0x01, 0x12, 0x03, ac, 0x00, 0x00],
        IadFormat::Visa2 => {
            let mut v = vec![0x1F, 0x22, 0x01, ac, 0x00, 0x00, 0x00, 0x00, 0x00];
            v.resize(32, 0x00);
            v
        }
        IadFormat::UnionPay => vec![0x07, 0x01, 0x01, 0x03, ac, 0x00, 0x00, 0x01],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::tlv;

    fn gpo_cmd(ttq: [u8; 4], amount: u64) -> Vec<u8> {
        // PDOL of the built-in profiles: 9F66 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37.
        let mut d = ttq.to_vec();
        d.extend(Amount(amount).to_n12());
        d.extend([0; 6]);
        d.extend([0x01, 0x56]);
        d.extend([0; 5]);
        d.extend([0x01, 0x56]);
        d.extend([0x26, 0x11, 0x25, 0x00]);
        d.extend([1, 2, 3, 4]);
        CApdu::gpo(&d).to_bytes()
    }

    fn select(w: &mut Wallet, aid: &str) {
        let r = w.transmit(&CApdu::select(&hex::decode(aid).unwrap()).to_bytes());
        assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    }

    #[test]
    fn locked_phone_answers_see_phone_above_cvm_limit_then_cdcvm_after_fingerprint() {
        let mut w = Wallet::load("unionpay-phone").unwrap();
        select(&mut w, "A000000333010101");
        let r = w.transmit(&gpo_cmd([0x26, 0xC0, 0x40, 0x80], 50_000));
        assert_eq!(r, vec![0x69, 0x86]);
        assert!(w.prompt_shown);
        assert!(w.give_fingerprint());
        let r = w.transmit(&gpo_cmd([0x26, 0xC0, 0x40, 0x80], 50_000));
        let ctq = tlv::find(&r[..r.len() - 2], tag::CTQ).unwrap().unwrap();
        assert_eq!(ctq[1] & 0x80, 0x80, "CDCVM performed");
        // One verification pays once.
        assert!(!w.fingerprint_given());
        assert_eq!(w.last.as_ref().map(|l| l.cryptogram), Some(CryptogramType::Arqc));
    }

    #[test]
    fn iad_layouts_carry_the_cryptogram_type_where_the_terminal_reads_it() {
        use kernels::iad::{cryptogram_type, IadScheme};
        for ct in [CryptogramType::Aac, CryptogramType::Tc, CryptogramType::Arqc] {
            for f in [IadFormat::Visa0, IadFormat::Visa1, IadFormat::Visa2, IadFormat::Visa3] {
                assert_eq!(cryptogram_type(IadScheme::Visa, &issuer_application_data(f, ct)), Some(ct), "{f:?}");
            }
            assert_eq!(cryptogram_type(IadScheme::UnionPay, &issuer_application_data(IadFormat::UnionPay, ct)), Some(ct));
        }
        assert_eq!(issuer_application_data(IadFormat::Visa2, CryptogramType::Tc).len(), 32);
    }

    #[test]
    fn conformance_knobs_shape_the_card() {
        let mut p = Profile::load("unionpay-transit").unwrap();
        p.ppse_extra_entries = Some("61054F03A00000".into());
        p.cards[0].send_cid = false;
        p.cards[0].fdda_version = FddaVersion::V00;
        p.cards[0].behaviour.omit_expiry = true;
        p.cards[0].behaviour.proprietary_record = Some("DF01021234".into());
        let mut w = Wallet::from_profile("t", &p).unwrap();
        let ppse = w.transmit(&CApdu::select(PPSE_NAME).to_bytes());
        assert!(hex::encode_upper(&ppse).contains("61054F03A000009000"), "extra entry appended at the end of BF0C");
        select(&mut w, "A000000333010101");
        let r = w.transmit(&gpo_cmd([0x26, 0x00, 0x40, 0x80], 1000));
        let data = &r[..r.len() - 2];
        assert_eq!(tlv::find(data, tag::CID).unwrap(), None);
        assert_eq!(tlv::find(data, tag::CARD_AUTH_RELATED_DATA).unwrap().and_then(|c| c.first().copied()), Some(0x00));
        assert_eq!(tlv::find(data, tag::AFL).unwrap().unwrap(), &[0x08, 1, 3, 1, 0x58, 1, 1, 0][..]);
        let rec = w.transmit(&CApdu::read_record(11, 1).to_bytes());
        assert_eq!(rec, hex::decode("DF010212349000").unwrap());
        let r1 = w.transmit(&CApdu::read_record(1, 1).to_bytes());
        assert_eq!(tlv::find(&r1[2..r1.len() - 2], tag::EXPIRY_DATE).unwrap(), None, "5F24 left out");
        // A serial that is not 3 bytes is refused.
        p.cards[0].keys.issuer_cert_serial = Some("A1".into());
        assert!(Wallet::from_profile("t", &p).is_err());
    }

    #[test]
    fn plastic_has_no_fingerprint_sensor() {
        let mut w = Wallet::load("unionpay-plastic").unwrap();
        assert!(!w.give_fingerprint());
    }

    #[test]
    fn arqc_verifies_with_the_issuer_master_key_of_issuers_toml() {
        let mut w = Wallet::load("unionpay-phone").unwrap();
        select(&mut w, "A000000333010101");
        let cmd = gpo_cmd([0x26, 0x80, 0x40, 0x80], 1000);
        let r = w.transmit(&cmd);
        let data = &r[..r.len() - 2];
        let get = |t| tlv::find(data, t).unwrap().unwrap().to_vec();
        let iss = issuers::builtin().unwrap();
        let issuer = issuers::for_pan(&iss, "6235880000000017").unwrap();
        let pdol = Dol::parse(&hex::decode("9F66049F02069F03069F1A0295055F2A029A039C019F3704").unwrap()).unwrap();
        let pdol_data = &cmd[7..cmd.len() - 1];
        let fields = pdol.split(pdol_data).unwrap();
        let input = cryptogram::ac_input(
            |t| {
                if t == tag::AIP || t == tag::ATC {
                    Some(get(t))
                } else {
                    fields.iter().find(|(x, _)| *x == t).map(|(_, v)| v.to_vec())
                }
            },
            &get(tag::ISSUER_APP_DATA),
        );
        let atc: [u8; 2] = get(tag::ATC).try_into().unwrap();
        let ac = cryptogram::generate_ac(issuer.method, &issuer.imk_ac, "6235880000000017", 0, atc, &input);
        assert_eq!(get(tag::APPLICATION_CRYPTOGRAM), ac.to_vec());
    }

    #[test]
    fn choosing_a_card_gives_it_priority_one() {
        let mut w = Wallet::load("unionpay-phone-8cards").unwrap();
        assert!(w.choose_card(6));
        assert_eq!(w.cards[6].priority, Some(1));
        let mut p: Vec<_> = w.cards.iter().map(|c| c.priority.unwrap()).collect();
        p.sort();
        assert_eq!(p, (1..=8).collect::<Vec<u8>>());
        assert!(!w.choose_card(8));
    }

    #[test]
    fn every_builtin_profile_personalises() {
        for (name, _) in crate::profile::BUILTIN {
            Wallet::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_commands_never_panic(cmds in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60), 1..10)) {
            let mut w = Wallet::load("unionpay-transit").unwrap();
            select(&mut w, "A000000333010101");
            for c in cmds {
                let r = w.transmit(&c);
                proptest::prop_assert!(r.len() >= 2);
            }
        }
    }
}
