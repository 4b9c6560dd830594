//! What one listener holds open (issue 13 §2): a connection cap kept below the process's
//! descriptor limit, an idle timeout, and who makes room when the cap is reached.
//!
//! A connection at the cap does not lock everyone else out: a new one takes the place of the
//! connection that has been quiet longest and has no request in hand (a terminal that loses
//! an idle connection connects again at its next transaction, its echo tells it so). Only when
//! every connection is busy is the new one refused. So idle connections, however many are
//! opened, never stop the acquirer answering the terminals that talk to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections held open at most (lowered further to what the descriptor limit allows).
    pub max_connections: usize,
    /// A connection with nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// A frame begun must be complete within this (a sender trickling a byte at a time).
    pub frame_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 4096, idle_timeout: Duration::from_secs(120), frame_timeout: Duration::from_secs(10) }
    }
}

/// Descriptors left for the database files, the listeners, the runtime and the logs.
const RESERVED_DESCRIPTORS: u64 = 32;

/// The cap `limits` asks for, lowered below the soft `RLIMIT_NOFILE` so accepting never runs
/// the process out of descriptors (at least 1).
pub fn effective_cap(max_connections: usize) -> usize {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 { rl.rlim_cur } else { libc::RLIM_INFINITY };
    cap_for(max_connections, soft)
}

fn cap_for(max_connections: usize, soft_nofile: u64) -> usize {
    let by_descriptors = usize::try_from(soft_nofile.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
    max_connections.min(by_descriptors).max(1)
}

/// One open connection as the registry sees it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Milliseconds since the registry started, at the last byte received.
    last_ms: AtomicU64,
    /// Requests in hand (being processed or their answers still to be written).
    busy: AtomicU32,
    /// Told when the connection must give its place up.
    evict: Notify,
}

impl Slot {
    /// Waits until this connection is evicted.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// The connections of one listener.
#[derive(Debug)]
pub(crate) struct Registry {
    cap: usize,
    epoch: Instant,
    slots: Mutex<(u64, HashMap<u64, Arc<Slot>>)>,
}

/// A connection's place in the registry; given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) slot: Arc<Slot>,
}

impl Place {
    /// Something was received.
    pub(crate) fn touch(&self) {
        self.slot.last_ms.store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// A request is in hand until the returned guard is dropped: not evicted meanwhile.
    pub(crate) fn busy(&self) -> Busy {
        self.slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.slot.clone())
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut g) = self.registry.slots.lock() {
            g.1.remove(&self.id);
        }
    }
}

/// See [`Place::busy`].
#[derive(Debug)]
pub(crate) struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Registry { cap: cap.max(1), epoch: Instant::now(), slots: Mutex::new((0, HashMap::new())) })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections held now.
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().map(|g| g.1.len()).unwrap_or(0)
    }

    /// A place for a new connection: free below the cap, else the place of the connection
    /// quiet longest with no request in hand (evicted); `None` when every connection is busy.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Place> {
        let mut g = self.slots.lock().ok()?;
        if g.1.len() >= self.cap && !Self::evict_idlest(&mut g.1) {
            return None;
        }
        g.0 += 1;
        let id = g.0;
        let slot = Arc::new(Slot { last_ms: AtomicU64::new(self.now_ms()), ..Slot::default() });
        g.1.insert(id, slot.clone());
        Some(Place { registry: self.clone(), id, slot })
    }

    /// Evicts the idlest connection with no request in hand (accepting failed for want of
    /// descriptors). Whether one was.
    pub(crate) fn make_room(&self) -> bool {
        self.slots.lock().map(|mut g| Self::evict_idlest(&mut g.1)).unwrap_or(false)
    }

    fn evict_idlest(slots: &mut HashMap<u64, Arc<Slot>>) -> bool {
        let idlest = slots
            .iter()
            .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, s)| (s.last_ms.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| slots.remove(&id)) {
            Some(s) => {
                // notify_one keeps the permit if the connection is not waiting right now.
                s.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(cap_for(4096, 128), 96);
        assert_eq!(cap_for(50, 128), 50);
        assert_eq!(cap_for(4096, 10), 1, "never zero");
        assert_eq!(cap_for(4096, libc::RLIM_INFINITY), 4096);
        assert!(effective_cap(usize::MAX) >= 1);
    }

    #[test]
    fn at_the_cap_the_idlest_connection_without_a_request_makes_room() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = r.admit().unwrap();
        assert_eq!(r.len(), 2);
        // a is idlest: it goes, c takes its place.
        let c = r.admit().unwrap();
        assert_eq!(r.len(), 2);
        assert!(a.slot.evict.notified().now_or_never_permit(), "a was told");
        // b and c busy: nobody can be evicted, the next is refused.
        let _bb = b.busy();
        let _cb = c.busy();
        assert!(r.admit().is_none());
        assert!(!r.make_room());
        drop(_bb);
        assert!(r.make_room(), "b has nothing in hand now");
        assert_eq!(r.len(), 1);
        // Dropping the evicted place does not remove anyone else.
        drop(a);
        drop(b);
        assert_eq!(r.len(), 1);
        drop(c);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_touched_connection_is_not_the_idlest() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = r.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        a.touch();
        let _c = r.admit().unwrap();
        assert!(b.slot.evict.notified().now_or_never_permit());
        assert!(!a.slot.evict.notified().now_or_never_permit());
    }

    /// Whether a `Notified` completes at once (a stored permit).
    trait NowOrNever {
        fn now_or_never_permit(self) -> bool;
    }

    impl NowOrNever for tokio::sync::futures::Notified<'_> {
        fn now_or_never_permit(self) -> bool {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(1), self).await.is_ok() })
        }
    }
}
