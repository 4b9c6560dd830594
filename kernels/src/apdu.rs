//! Command and response APDUs (ISO/IEC 7816-4; EMV Book 1 §11, Book 3 §6).

use std::fmt;

/// A command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct CApdu {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected length; `Some(0)` means "up to 256" (Le = 00).
    pub le: Option<u8>,
}

/// "2PAY.SYS.DDF01", the PPSE name (Book B §3.3.2.2).
pub const PPSE_NAME: &[u8] = b"2PAY.SYS.DDF01";

impl CApdu {
    /// SELECT by DF name, first or only occurrence.
    pub fn select(name: &[u8]) -> CApdu {
        CApdu { cla: 0x00, ins: ins::SELECT, p1: 0x04, p2: 0x00, data: name.to_vec(), le: Some(0) }
    }
    /// GET PROCESSING OPTIONS with PDOL related data wrapped in tag 83 (Book 3 §6.5.8).
    pub fn gpo(pdol_data: &[u8]) -> CApdu {
        let data = crate::tlv::encode(crate::tag::COMMAND_TEMPLATE, pdol_data);
        CApdu { cla: 0x80, ins: ins::GET_PROCESSING_OPTIONS, p1: 0, p2: 0, data, le: Some(0) }
    }
    /// READ RECORD: P1 record number, P2 = SFI << 3 | 4 (Book 3 §6.5.11).
    pub fn read_record(sfi: u8, record: u8) -> CApdu {
        CApdu { cla: 0x00, ins: ins::READ_RECORD, p1: record, p2: (sfi << 3) | 4, data: vec![], le: Some(0) }
    }
    /// GET DATA of a two-byte tag (Book 3 §6.5.7).
    pub fn get_data(tag: crate::tlv::Tag) -> CApdu {
        let [_, _, p1, p2] = tag.0.to_be_bytes();
        CApdu { cla: 0x80, ins: ins::GET_DATA, p1, p2, data: vec![], le: Some(0) }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.cla, self.ins, self.p1, self.p2];
        if !self.data.is_empty() {
            v.push(self.data.len() as u8);
            v.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            v.push(le);
        }
        v
    }

    /// Parses a short APDU (cases 1-4).
    pub fn parse(b: &[u8]) -> Option<CApdu> {
        let (hdr, rest) = (b.get(..4)?, &b[4..]);
        let (data, le) = match rest.len() {
            0 => (vec![], None),
            1 => (vec![], Some(rest[0])),
            n => {
                let lc = usize::from(rest[0]);
                if lc == 0 {
                    return None;
                }
                match n - 1 {
                    x if x == lc => (rest[1..].to_vec(), None),
                    x if x == lc + 1 => (rest[1..=lc].to_vec(), Some(rest[lc + 1])),
                    _ => return None,
                }
            }
        };
        Some(CApdu { cla: hdr[0], ins: hdr[1], p1: hdr[2], p2: hdr[3], data, le })
    }

    /// Name of the command for traces.
    pub fn name(&self) -> &'static str {
        match self.ins {
            ins::SELECT => "SELECT",
            ins::GET_PROCESSING_OPTIONS => "GET PROCESSING OPTIONS",
            ins::READ_RECORD => "READ RECORD",
            ins::GET_DATA => "GET DATA",
            ins::GENERATE_AC => "GENERATE AC",
            ins::GET_RESPONSE => "GET RESPONSE",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Debug for CApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), hex::encode_upper(self.to_bytes()))
    }
}

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_PROCESSING_OPTIONS: u8 = 0xA8;
    pub const READ_RECORD: u8 = 0xB2;
    pub const GET_DATA: u8 = 0xCA;
    pub const GENERATE_AC: u8 = 0xAE;
    pub const GET_RESPONSE: u8 = 0xC0;
}

/// A response APDU: data and the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct RApdu {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl RApdu {
    pub fn new(data: Vec<u8>, sw: u16) -> Self {
        RApdu { data, sw }
    }
    pub fn sw(sw: u16) -> Self {
        RApdu { data: vec![], sw }
    }
    pub fn parse(b: &[u8]) -> Option<RApdu> {
        if b.len() < 2 {
            return None;
        }
        let n = b.len() - 2;
        Some(RApdu { data: b[..n].to_vec(), sw: u16::from_be_bytes([b[n], b[n + 1]]) })
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.extend_from_slice(&self.sw.to_be_bytes());
        v
    }
    pub fn is_ok(&self) -> bool {
        self.sw == sw::OK
    }
}

impl fmt::Debug for RApdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{:04X}]", hex::encode_upper(&self.data), self.sw)
    }
}

/// Status words the kernels act on.
pub mod sw {
    pub const OK: u16 = 0x9000;
    /// C-3 §5.2.2.2: "conditions of use not satisfied" on GPO → Try Another Interface.
    pub const CONDITIONS_USE_NOT_SATISFIED_INTERFACE: u16 = 0x6984;
    /// Conditions of use not satisfied → Select Next.
    pub const CONDITIONS_OF_USE_NOT_SATISFIED: u16 = 0x6985;
    /// Command not allowed: the mobile wallet asks for "See Phone".
    pub const SEE_PHONE: u16 = 0x6986;
    pub const FILE_NOT_FOUND: u16 = 0x6A82;
    pub const RECORD_NOT_FOUND: u16 = 0x6A83;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
    pub const REFERENCED_DATA_NOT_FOUND: u16 = 0x6A88;
}

/// Meaning of a status word (ISO/IEC 7816-4 §5.1.3), for `decode` and logs.
pub fn sw_meaning(sw: u16) -> &'static str {
    match sw {
        0x9000 => "normal processing",
        0x6283 => "selected file invalidated (blocked)",
        0x6700 => "wrong length",
        0x6982 => "security status not satisfied",
        0x6983 => "authentication method blocked",
        0x6984 => "referenced data invalidated / conditions of use (try another interface)",
        0x6985 => "conditions of use not satisfied",
        0x6986 => "command not allowed (wallet: see phone)",
        0x6A81 => "function not supported",
        0x6A82 => "file or application not found",
        0x6A83 => "record not found",
        0x6A86 => "incorrect P1 P2",
        0x6A88 => "referenced data not found",
        0x6D00 => "instruction not supported",
        0x6E00 => "class not supported",
        s if s >> 8 == 0x61 => "more data available (GET RESPONSE)",
        s if s >> 8 == 0x6C => "wrong Le (retry with the length given)",
        s if s >> 8 == 0x63 => "warning: non-volatile memory changed",
        _ => "unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_ppse_bytes() {
        assert_eq!(hex::encode_upper(CApdu::select(PPSE_NAME).to_bytes()), "00A404000E325041592E5359532E444446303100");
    }

    #[test]
    fn read_record_p2_encodes_sfi() {
        assert_eq!(CApdu::read_record(3, 1).to_bytes(), vec![0x00, 0xB2, 0x01, 0x1C, 0x00]);
    }

    #[test]
    fn capdu_parse_roundtrip_cases() {
        for c in [CApdu::select(PPSE_NAME), CApdu::read_record(2, 3), CApdu::gpo(&[1, 2, 3])] {
            assert_eq!(CApdu::parse(&c.to_bytes()), Some(c));
        }
        assert_eq!(CApdu::parse(&[0, 0xA4]), None);
        assert_eq!(CApdu::parse(&[0, 0xA4, 4, 0, 5, 1]), None);
    }

    #[test]
    fn rapdu_splits_status_word() {
        let r = RApdu::parse(&[0x6F, 0x00, 0x90, 0x00]).unwrap();
        assert!(r.is_ok());
        assert_eq!(r.data, vec![0x6F, 0x00]);
        assert_eq!(RApdu::parse(&[0x90]), None);
    }
}
