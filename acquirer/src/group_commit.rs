//! Group commit (issue 13 §2): one fsync makes many requests' records durable, and each
//! request is still answered only after its own record is.
//!
//! A request that has written its records calls [`GroupCommit::wait`]. If no flush is running,
//! it becomes the leader: it flushes everything written so far — its own records and those of
//! every request that called before it — and wakes the others. If a flush is running, it waits:
//! that flush may have started before its records were written, so it is covered only by a
//! flush that started after it called (the next leader's). While one fsync runs, the requests
//! arriving meanwhile gather for the next one: under load the number of authorizations per
//! fsync grows by itself, with no timer and no batch size to tune.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

// Async waiters (the server) follow the durable ticket on a watch channel; threads wait on the
// condition variable. Either kind may lead a flush.

#[derive(Debug, Default)]
struct State {
    /// Tickets given so far: each caller's.
    called: u64,
    /// Every ticket up to this is durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
    /// The durable ticket, for waiters on the async runtime.
    durable_tx: tokio::sync::watch::Sender<u64>,
    /// Flushes that succeeded, and the tickets they made durable (for the bench report).
    flushes: AtomicU64,
    calls: AtomicU64,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::default(),
            done: Condvar::new(),
            durable_tx: tokio::sync::watch::channel(0).0,
            flushes: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ticket for what the caller wrote so far: durable once a flush that started after this
    /// call has finished.
    pub(crate) fn ticket(&self) -> u64 {
        let mut st = self.lock();
        st.called += 1;
        st.called
    }

    pub(crate) fn is_durable(&self, ticket: u64) -> bool {
        self.lock().durable >= ticket
    }

    /// Starts a flush if none is running: the ticket it will make durable.
    pub(crate) fn try_lead(&self) -> Option<u64> {
        let mut st = self.lock();
        (!st.flushing).then(|| {
            st.flushing = true;
            st.called
        })
    }

    /// Ends the flush [`GroupCommit::try_lead`] started; wakes every waiter.
    pub(crate) fn finish(&self, target: u64, flushed: bool) {
        let mut st = self.lock();
        st.flushing = false;
        if flushed {
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.calls.fetch_add(target.saturating_sub(st.durable), Ordering::Relaxed);
            st.durable = st.durable.max(target);
        }
        let durable = st.durable;
        drop(st);
        self.done.notify_all();
        self.durable_tx.send_replace(durable);
    }

    /// Runs the flush a [`GroupCommit::try_lead`] started and ends it, even if `flush` panics
    /// (then as failed): a flush that never ends would leave every later request waiting.
    pub(crate) fn lead<E>(&self, target: u64, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        struct Unfinished<'a>(&'a GroupCommit, u64, bool);
        impl Drop for Unfinished<'_> {
            fn drop(&mut self) {
                self.0.finish(self.1, self.2);
            }
        }
        let mut guard = Unfinished(self, target, false);
        let result = flush();
        guard.2 = result.is_ok();
        result
    }

    /// Follows the durable ticket (async waiters: see `Acquirer::durable`).
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable_tx.subscribe()
    }

    /// Returns once everything the caller wrote before calling is durable, by `flush` (run by
    /// one caller at a time). A failed flush is the leader's error; the callers it would have
    /// covered try again (one of them leads the next flush).
    pub(crate) fn wait<E>(&self, flush: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let ticket = self.ticket();
        loop {
            if self.is_durable(ticket) {
                return Ok(());
            }
            if let Some(target) = self.try_lead() {
                self.lead(target, &flush)?;
            }
            let mut st = self.lock();
            while st.durable < ticket && st.flushing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.durable >= ticket {
                return Ok(());
            }
        }
    }

    /// (flushes, tickets made durable) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.flushes.load(Ordering::Relaxed), self.calls.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_caller_flushes_once_per_call() {
        let g = GroupCommit::default();
        let n = AtomicU64::new(0);
        for _ in 0..3 {
            g.wait(|| {
                n.fetch_add(1, Ordering::Relaxed);
                Ok::<_, ()>(())
            })
            .unwrap();
        }
        assert_eq!(n.load(Ordering::Relaxed), 3);
        assert_eq!(g.counts(), (3, 3));
    }

    /// Writes made before a call are durable when it returns — never covered by a flush that
    /// started before them — and concurrent callers share flushes.
    #[test]
    fn concurrent_callers_share_flushes_and_each_waits_for_its_own_writes() {
        let g = Arc::new(GroupCommit::default());
        // "written" counts writes; a flush snapshots it as "durable".
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (g, written, durable, flushes, failed) = (g.clone(), written.clone(), durable.clone(), flushes.clone(), failed.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        g.wait(|| {
                            let snapshot = written.load(Ordering::SeqCst);
                            std::thread::sleep(Duration::from_micros(300));
                            durable.fetch_max(snapshot, Ordering::SeqCst);
                            flushes.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, ()>(())
                        })
                        .unwrap();
                        if durable.load(Ordering::SeqCst) < mine {
                            failed.store(true, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!failed.load(Ordering::SeqCst), "a call returned before its write was flushed");
        let f = flushes.load(Ordering::SeqCst);
        assert!(f < 800, "800 calls shared flushes: {f}");
        assert_eq!(g.counts(), (f, 800));
    }

    #[test]
    fn a_flush_that_panics_ends_its_lead_and_the_next_call_flushes() {
        let g = GroupCommit::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.wait(|| -> Result<(), ()> { panic!("disk driver") })));
        assert!(r.is_err());
        assert_eq!(g.wait(|| Ok::<_, ()>(())), Ok(()), "not stuck behind a flush that never ended");
        assert_eq!(g.counts(), (1, 2));
    }

    #[test]
    fn a_failed_flush_is_an_error_and_the_next_call_flushes_again() {
        let g = GroupCommit::default();
        assert_eq!(g.wait(|| Err("disk full")), Err("disk full"));
        assert_eq!(g.wait(|| Ok::<_, &str>(())), Ok(()));
        assert_eq!(g.counts(), (1, 2), "the second flush covered both calls");
    }
}
