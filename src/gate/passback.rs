//! Anti-passback: the same card at the same gate within N seconds of an opening is refused, so
//! one card cannot let a second passenger through behind the first (transit operators' rule;
//! the window is the operator's setting, config/gate.toml `anti_passback_s`).

use super::deny::CardKey;
use super::UnixSeconds;
use std::collections::HashMap;

/// Openings of the last `window` seconds, per card.
#[derive(Debug, Clone)]
pub struct AntiPassback {
    window: u64,
    opened: HashMap<CardKey, UnixSeconds>,
}

impl AntiPassback {
    pub fn new(window_s: u64) -> AntiPassback {
        AntiPassback { window: window_s, opened: HashMap::new() }
    }

    /// `Err(seconds left)` when the card opened this gate less than the window ago. A clock that
    /// went backwards counts as "just now" (the safe side: refuse).
    pub fn check(&self, card: &CardKey, now: UnixSeconds) -> Result<(), u64> {
        match self.opened.get(card) {
            Some(&at) if self.window > 0 => {
                let since = now.saturating_sub(at);
                if now < at || since < self.window {
                    Err(self.window - since.min(self.window))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Records an opening; forgets openings older than the window so memory stays bounded by
    /// the taps of one window.
    pub fn opened(&mut self, card: CardKey, now: UnixSeconds) {
        let w = self.window;
        self.opened.retain(|_, at| now.saturating_sub(*at) < w);
        if w > 0 {
            self.opened.insert(card, now);
        }
    }

    pub fn len(&self) -> usize {
        self.opened.len()
    }

    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: u8) -> CardKey {
        CardKey([n; 32])
    }

    #[test]
    fn the_same_card_within_the_window_is_refused_with_the_seconds_left() {
        let mut p = AntiPassback::new(60);
        assert_eq!(p.check(&card(1), 1000), Ok(()));
        p.opened(card(1), 1000);
        assert_eq!(p.check(&card(1), 1000), Err(60));
        assert_eq!(p.check(&card(1), 1059), Err(1));
        assert_eq!(p.check(&card(1), 1060), Ok(()));
        assert_eq!(p.check(&card(2), 1001), Ok(()), "another card is not affected");
        assert_eq!(p.check(&card(1), 990), Err(60), "a clock that went back refuses");
    }

    #[test]
    fn old_openings_are_forgotten_and_a_zero_window_keeps_nothing() {
        let mut p = AntiPassback::new(10);
        for i in 0..100u8 {
            p.opened(card(i), u64::from(i) * 5);
        }
        assert!(p.len() <= 2, "only the last window's openings are kept, got {}", p.len());
        let mut off = AntiPassback::new(0);
        off.opened(card(1), 5);
        assert!(off.is_empty());
        assert_eq!(off.check(&card(1), 5), Ok(()));
    }
}
