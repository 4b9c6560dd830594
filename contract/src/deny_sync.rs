//! The deny-list download of a transit gate (docs/gate.md "Deny list sync"): a 0800 with DE 70
//! = [`crate::network::DENY_LIST`] asks, the 0810 answers one chunk of the list in DE 62.
//!
//! The acquirer numbers every change of its list (one card added or removed: the version goes
//! up by one). A gate that holds version `have` asks for what changed since; the acquirer
//! answers a **delta** (`from` = have → `to`), the **full** list at `to` (a gate with nothing,
//! or too far behind), or **current** (nothing changed). DE 62 holds at most 999 characters, so
//! a list is cut into chunks of [`PER_CHUNK`] entries; the gate asks chunk 1, 2, … of the same
//! `to` until it has them all, then applies them at once.

/// Entries per chunk: 27 characters of header, then 65 per entry, within DE 62's 999.
pub const PER_CHUNK: usize = 14;

/// DE 62 of the 0800: `have` (10 digits) ‖ `at` (10 digits: the `to` of chunk 0's answer, 0 for
/// chunk 0) ‖ `chunk` (3 digits, from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub have: u64,
    pub at: u64,
    pub chunk: u16,
}

/// What a chunk's list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Delta,
    /// The gate's version is the acquirer's: nothing to apply.
    Current,
}

/// DE 62 of the 0810: kind (`F` / `D` / `N`) ‖ from (10) ‖ to (10) ‖ chunk (3) ‖ chunks (3) ‖
/// entries, each `+` or `-` and 64 hex digits (a full list has only `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub kind: Kind,
    pub from: u64,
    pub to: u64,
    pub chunk: u16,
    pub chunks: u16,
    /// (added, key).
    pub entries: Vec<(bool, [u8; 32])>,
}

const MAX_VERSION: u64 = 9_999_999_999;

fn num(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

impl Request {
    /// `None` for versions above 10 digits or a chunk above 999.
    pub fn to_de62(&self) -> Option<String> {
        (self.have <= MAX_VERSION && self.at <= MAX_VERSION && self.chunk <= 999).then(|| format!("{:010}{:010}{:03}", self.have, self.at, self.chunk))
    }

    pub fn parse_de62(s: &str) -> Option<Request> {
        if s.len() != 23 || !s.is_ascii() {
            return None;
        }
        Some(Request { have: num(&s[..10])?, at: num(&s[10..20])?, chunk: u16::try_from(num(&s[20..])?).ok()? })
    }
}

impl Chunk {
    /// `None` when it does not fit (too many entries, versions above 10 digits).
    pub fn to_de62(&self) -> Option<String> {
        if self.entries.len() > PER_CHUNK || self.from > MAX_VERSION || self.to > MAX_VERSION || self.chunk > 999 || self.chunks > 999 {
            return None;
        }
        let k = match self.kind {
            Kind::Full => 'F',
            Kind::Delta => 'D',
            Kind::Current => 'N',
        };
        let mut s = format!("{k}{:010}{:010}{:03}{:03}", self.from, self.to, self.chunk, self.chunks);
        for (add, key) in &self.entries {
            s.push(if *add { '+' } else { '-' });
            s.push_str(&hex::encode_upper(key));
        }
        Some(s)
    }

    pub fn parse_de62(s: &str) -> Option<Chunk> {
        if s.len() < 27 || !s.is_ascii() {
            return None;
        }
        let kind = match &s[..1] {
            "F" => Kind::Full,
            "D" => Kind::Delta,
            "N" => Kind::Current,
            _ => return None,
        };
        let rest = &s[27..];
        if rest.len() % 65 != 0 || rest.len() / 65 > PER_CHUNK {
            return None;
        }
        let entries = rest
            .as_bytes()
            .chunks(65)
            .map(|e| {
                let add = match e[0] {
                    b'+' => true,
                    b'-' if kind == Kind::Delta => false,
                    _ => return None,
                };
                let key: [u8; 32] = hex::decode(&e[1..]).ok()?.try_into().ok()?;
                Some((add, key))
            })
            .collect::<Option<Vec<_>>>()?;
        let chunk = Chunk {
            kind,
            from: num(&s[1..11])?,
            to: num(&s[11..21])?,
            chunk: u16::try_from(num(&s[21..24])?).ok()?,
            chunks: u16::try_from(num(&s[24..27])?).ok()?,
            entries,
        };
        (chunk.chunk < chunk.chunks.max(1)).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let r = Request { have: 12, at: 40, chunk: 2 };
        assert_eq!(r.to_de62().as_deref(), Some("00000000120000000040002"));
        assert_eq!(Request::parse_de62("00000000120000000040002"), Some(r));
        assert_eq!(Request { have: MAX_VERSION + 1, at: 0, chunk: 0 }.to_de62(), None);
        for bad in ["", "0000000012000000004000", "000000001200000000400x2", "0000000012000000004000２"] {
            assert_eq!(Request::parse_de62(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chunks_round_trip_and_fit_de62() {
        let full = Chunk { kind: Kind::Full, from: 0, to: 7, chunk: 0, chunks: 1, entries: (0..PER_CHUNK as u8).map(|i| (true, [i; 32])).collect() };
        let s = full.to_de62().unwrap();
        assert!(s.len() <= 999, "{}", s.len());
        assert_eq!(Chunk::parse_de62(&s), Some(full.clone()));
        let delta = Chunk { kind: Kind::Delta, from: 7, to: 9, chunk: 0, chunks: 1, entries: vec![(true, [1; 32]), (false, [2; 32])] };
        assert_eq!(Chunk::parse_de62(&delta.to_de62().unwrap()), Some(delta));
        let mut too_many = full.clone();
        too_many.entries.push((true, [9; 32]));
        assert_eq!(too_many.to_de62(), None);
        // A removal in a full list, a chunk past the count, a cut entry: refused.
        assert_eq!(Chunk::parse_de62(&s.replacen('+', "-", 1)), None);
        assert_eq!(Chunk::parse_de62(&s.replacen("000001", "001001", 1)), None);
        assert_eq!(Chunk::parse_de62(&s[..s.len() - 1]), None);
        let current = Chunk { kind: Kind::Current, from: 9, to: 9, chunk: 0, chunks: 1, entries: vec![] };
        assert_eq!(Chunk::parse_de62(&current.to_de62().unwrap()), Some(current));
    }
}
