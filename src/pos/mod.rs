//! The cashier's screen (`shanfu pos`, `shanfu demo`): ratatui on top of [`crate::terminal::Terminal`].
//! No EMV here — the screen asks the till for sales, refunds, voids and settlement, and shows
//! what comes back. Card operations run on a worker thread so the screen stays live (countdown,
//! clock, the demo phone's keys).
//!
//! Laid out like gitui:
//! - [`app`]: the state ([`App`]), key dispatch, worker events;
//! - [`keys`]: the one key table (context, key, action, hint) that drives the handlers, the
//!   hint line and the help screen;
//! - [`screens`]: one module per screen (sale, busy, outcome, receipt/detail, history,
//!   settlement, help), each with its drawing and the handlers of its actions;
//! - [`worker`]: the thread that runs sales, refunds, voids and settlement on the till;
//! - [`view`]: the frame (title, status bar, hint line, confirmation) around the screen.
//!
//! Every text comes from [`crate::text`] in the configured language. All of it is plain
//! functions of the state, so tests drive it on ratatui's TestBackend with a real till.

pub mod app;
pub mod keys;
pub mod pinpad;
pub mod screens;
pub mod view;
pub mod worker;

pub use app::{App, Banner, BannerKind, Busy, Confirm, Screen, Stage};
pub use worker::Undo;

/// The phone wallet in the cashier's hand (`demo`, training mode): the simulator's, when built.
#[cfg(feature = "simulators")]
pub use reader_drivers::virtual_reader::PhoneInHand as DemoPhone;

/// A product build has no demo phone: a type with no values, so `App::phone` is always `None`.
#[cfg(not(feature = "simulators"))]
pub enum DemoPhone {}

#[cfg(not(feature = "simulators"))]
impl DemoPhone {
    pub fn tap(&self) {
        match *self {}
    }
    pub fn fingerprint(&self) -> bool {
        match *self {}
    }
    pub fn choose_card(&self, _index: usize) -> bool {
        match *self {}
    }
    pub fn view(&self) -> reader_drivers::PhoneView {
        match *self {}
    }
}

use reader_drivers::Reader;
use std::time::Duration;

/// A reader the worker thread can own.
pub type SendReader = Box<dyn Reader + Send>;

/// Runs the cashier screen on the real terminal until the cashier quits. ratatui's `init`
/// installs a panic hook that restores the terminal; `restore` runs on every exit path.
pub fn run(app: &mut App) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    let mut term = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may be on already: give the terminal back before reporting.
            ratatui::restore();
            return Err(e.into());
        }
    };
    let res = (|| -> anyhow::Result<()> {
        while !app.quit {
            app.poll();
            if app.quit {
                // A worker panicked: its hook gave the terminal back already; draw nothing more.
                break;
            }
            term.draw(|f| view::draw(f, app))?;
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => app.on_key(k),
                    _ => {}
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    res?;
    match &app.fatal {
        Some(why) => anyhow::bail!("internal error in the cashier screen: {why}; every transaction is in the journal — restart shanfu"),
        None => Ok(()),
    }
}

#[cfg(all(test, feature = "simulators"))]
mod tests;
