//! A queue of virtual cards for readers that serve one passenger after another (the transit
//! gate): each transaction the next holder in the list taps. A wallet named twice is the same
//! phone (its counters go on), so a double tap or a returning passenger is the same card.
//!
//! An entry is `PROFILE[+fingerprint][+remove=N][+tear=N]`: the holder confirms on the phone when
//! it asks, pulls the card away after N exchanges, or leaves while the card answers exchange N
//! (the card did the command, the reader never hears it: a torn transaction).

use crate::virtual_reader::{Holder, VirtualReader};
use crate::{Reader, ReaderError};
use std::collections::HashMap;
use std::time::Duration;
use test_cards::Wallet;

/// One holder in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub profile: String,
    pub fingerprint: bool,
    pub remove_after: Option<usize>,
    /// The card runs exchange N and leaves before its answer arrives (torn transaction).
    pub tear_at: Option<usize>,
}

impl QueueEntry {
    /// Parses `PROFILE[+fingerprint][+remove=N]`.
    pub fn parse(s: &str) -> Result<QueueEntry, ReaderError> {
        let mut parts = s.trim().split('+');
        let profile = parts.next().unwrap_or_default().trim().to_string();
        if profile.is_empty() {
            return Err(ReaderError::Unavailable(format!("virtual queue entry {s:?} names no profile")));
        }
        let mut e = QueueEntry { profile, fingerprint: false, remove_after: None, tear_at: None };
        for p in parts {
            match p.trim().split_once('=') {
                None if p.trim() == "fingerprint" => e.fingerprint = true,
                Some(("tear", n)) => {
                    e.tear_at = Some(n.parse().map_err(|_| ReaderError::Unavailable(format!("virtual queue entry {s:?}: tear=N needs a number")))?)
                }
                Some(("remove", n)) => {
                    e.remove_after = Some(n.parse().map_err(|_| ReaderError::Unavailable(format!("virtual queue entry {s:?}: remove=N needs a number")))?)
                }
                _ => return Err(ReaderError::Unavailable(format!("virtual queue entry {s:?}: unknown option {p:?} (fingerprint, remove=N, tear=N)"))),
            }
        }
        Ok(e)
    }
}

/// Holders tapping one after the other.
pub struct VirtualQueue {
    entries: Vec<QueueEntry>,
    /// One phone per profile name, kept across its taps.
    phones: HashMap<String, VirtualReader>,
    /// The entry of the current transaction (None before the first).
    at: Option<usize>,
}

impl VirtualQueue {
    /// Loads every profile up front, so a misspelt one is an error before the first passenger.
    pub fn new(entries: Vec<QueueEntry>) -> Result<VirtualQueue, ReaderError> {
        let mut phones = HashMap::new();
        for e in &entries {
            if !phones.contains_key(&e.profile) {
                let w = Wallet::load(&e.profile).map_err(|err| ReaderError::Unavailable(format!("virtual card {:?}: {err}", e.profile)))?;
                phones.insert(e.profile.clone(), VirtualReader::new(&e.profile, w, Holder::default()));
            }
        }
        Ok(VirtualQueue { entries, phones, at: None })
    }

    /// Parses a comma-separated list of entries and loads it.
    pub fn parse(list: &str) -> Result<VirtualQueue, ReaderError> {
        VirtualQueue::new(list.split(',').map(QueueEntry::parse).collect::<Result<_, _>>()?)
    }

    /// Holders still to come (the current one included).
    pub fn remaining(&self) -> usize {
        self.entries.len() - self.at.unwrap_or(0)
    }

    /// The wallet of a profile of the queue (to look at a purse balance or a token's counter).
    pub fn wallet(&self, profile: &str) -> Option<&Wallet> {
        self.phones.get(profile).map(|r| r.wallet())
    }

    fn current(&mut self) -> Option<&mut VirtualReader> {
        let e = self.entries.get(self.at?)?;
        self.phones.get_mut(&e.profile)
    }
}

impl Reader for VirtualQueue {
    fn name(&self) -> String {
        format!("virtual:{} holders", self.entries.len())
    }

    fn begin_transaction(&mut self) {
        let next = self.at.map_or(0, |i| i + 1);
        self.at = Some(next);
        if let Some(e) = self.entries.get(next).cloned() {
            if let Some(r) = self.phones.get_mut(&e.profile) {
                r.set_holder(Holder { fingerprint_on_prompt: e.fingerprint, remove_after: e.remove_after });
                r.set_tear_at(e.tear_at);
                r.begin_transaction();
            }
        }
    }

    fn wait_for_card(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        match self.current() {
            Some(r) => r.wait_for_card(timeout),
            None => Err(ReaderError::NoCard(timeout)),
        }
    }

    fn transmit_raw(&mut self, capdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        self.current().ok_or(ReaderError::CardRemoved)?.transmit_raw(capdu)
    }

    fn wait_for_removal(&mut self, timeout: Duration) -> Result<(), ReaderError> {
        match self.current() {
            Some(r) => r.wait_for_removal(timeout),
            None => Ok(()),
        }
    }

    fn air_time(&self) -> Option<Duration> {
        let e = self.entries.get(self.at?)?;
        self.phones.get(&e.profile)?.air_time()
    }
}
