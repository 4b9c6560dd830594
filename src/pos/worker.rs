//! The worker: one thread per operation runs a sale, refund, void or settlement on the
//! [`Terminal`](crate::terminal::Terminal) so the screen stays live (countdown, clock, the demo
//! phone's keys). It reports progress and the result on a channel the screen polls.

use super::SendReader;
use crate::journal::TxnRecord;
use crate::online::SettleReport;
use crate::terminal::service::{Progress, SaleRequest, SaleResult, Terminal as Pos};
use kernels::types::Amount;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

/// Money going back to the customer: asked before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    Refund,
    Void,
}

/// What the worker is asked to do.
pub enum Job {
    /// A sale on this reader (the worker owns it until the sale ends).
    Sale(Amount, SendReader),
    /// Refund or void of a journal transaction.
    Undo(Undo, u64),
    Settle,
}

/// What an operation ended with.
pub enum Done {
    Sale(Box<anyhow::Result<SaleResult>>, SendReader),
    Undo(Undo, u64, Box<anyhow::Result<TxnRecord>>),
    Settle(anyhow::Result<SettleReport>),
    /// The operation panicked (a bug): the screen gives the terminal back and stops.
    Panicked(String, Option<SendReader>),
}

pub enum Event {
    Progress(Progress),
    Done(Box<Done>),
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

/// Starts `job` on its own thread; its progress and result come on the returned channel.
pub fn start(pos: Arc<Pos>, job: Job) -> Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let catch = |f: &mut dyn FnMut() -> Done| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let done = match job {
            Job::Sale(amount, mut reader) => {
                let progress_tx = tx.clone();
                let mut progress = move |p: Progress| {
                    let _ = progress_tx.send(Event::Progress(p));
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pos.sale(&SaleRequest { amount, ..Default::default() }, reader.as_mut(), &mut progress)
                }));
                match r {
                    Ok(r) => Done::Sale(Box::new(r), reader),
                    Err(p) => Done::Panicked(panic_text(p.as_ref()), Some(reader)),
                }
            }
            Job::Undo(what, id) => catch(&mut || {
                Done::Undo(
                    what,
                    id,
                    Box::new(match what {
                        Undo::Refund => pos.refund(id),
                        Undo::Void => pos.void(id),
                    }),
                )
            })
            .unwrap_or_else(|p| Done::Panicked(panic_text(p.as_ref()), None)),
            Job::Settle => catch(&mut || Done::Settle(pos.settle())).unwrap_or_else(|p| Done::Panicked(panic_text(p.as_ref()), None)),
        };
        let _ = tx.send(Event::Done(Box::new(done)));
    });
    rx
}
