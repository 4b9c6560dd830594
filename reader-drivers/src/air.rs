//! Air time of an APDU exchange over ISO/IEC 14443-4 Type A at 106 kbit/s.
//!
//! Model (REFERENCE.md §4): one bit = 128 / 13.56 MHz ≈ 9.44 µs; one byte = 8 data bits + 1 parity
//! bit; each I-block carries PCB (1 byte) and CRC_A (2 bytes) plus start/end of frame (2 bits);
//! frames longer than FSD/FSC (256 bytes, so 253 bytes of INF) are chained, each chained block
//! acknowledged by an R(ACK) block (PCB + CRC); every frame is preceded by a minimum frame delay
//! time of 1172/fc ≈ 86 µs (ISO/IEC 14443-3 §6.2.1.1). Card and reader processing time are not air time.

use std::time::Duration;

const BIT_NS: f64 = 128.0 / 13.56e6 * 1e9;
const FDT_NS: f64 = 1172.0 / 13.56e6 * 1e9;
const MAX_INF: usize = 253;

fn frame_ns(inf: usize) -> f64 {
    ((inf + 3) * 9 + 2) as f64 * BIT_NS + FDT_NS
}

/// Air time of `len` bytes sent in one direction, with chaining and its acknowledgements.
fn direction_ns(len: usize) -> f64 {
    let blocks = len.div_ceil(MAX_INF).max(1);
    let mut t = 0.0;
    let mut left = len;
    for _ in 0..blocks {
        let n = left.min(MAX_INF);
        t += frame_ns(n);
        left -= n;
    }
    // Each chained block but the last is acknowledged by an R(ACK) of the other side.
    t + (blocks - 1) as f64 * frame_ns(0)
}

/// Air time of one command / response pair.
pub fn exchange(capdu_len: usize, rapdu_len: usize) -> Duration {
    Duration::from_nanos((direction_ns(capdu_len) + direction_ns(rapdu_len)) as u64)
}

/// ISO/IEC 14443 bit rates. After activation at 106 kbit/s, PPS (Type A) may raise the rate
/// both ways: fc/128, fc/64, fc/32, fc/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitRate {
    K106,
    K212,
    K424,
    K848,
}

impl BitRate {
    pub const ALL: [BitRate; 4] = [BitRate::K106, BitRate::K212, BitRate::K424, BitRate::K848];

    fn divisor(self) -> f64 {
        match self {
            BitRate::K106 => 1.0,
            BitRate::K212 => 2.0,
            BitRate::K424 => 4.0,
            BitRate::K848 => 8.0,
        }
    }

    pub fn kbit_s(self) -> u32 {
        (106.0 * self.divisor()) as u32
    }
}

/// Air time of one command / response pair at `rate`. Bits shrink with the rate; the frame delay
/// time is kept at its 106 kbit/s value (1172/fc), the conservative reading of ISO/IEC 14443-3
/// for the higher rates (unverified: the standard allows shorter FDTs there).
pub fn exchange_at(capdu_len: usize, rapdu_len: usize, rate: BitRate) -> Duration {
    let bits = |len: usize| direction_ns(len) - frame_delays(len) * FDT_NS;
    let ns = (bits(capdu_len) + bits(rapdu_len)) / rate.divisor() + (frame_delays(capdu_len) + frame_delays(rapdu_len)) * FDT_NS;
    Duration::from_nanos(ns as u64)
}

/// Frames (with their delay) of one direction: the blocks and the R(ACK)s of chaining.
fn frame_delays(len: usize) -> f64 {
    let blocks = len.div_ceil(MAX_INF).max(1);
    (2 * blocks - 1) as f64
}

/// Frames of a Type A activation at 106 kbit/s, before the first APDU: REQA (7-bit short frame)
/// / ATQA (2), per cascade level ANTICOLLISION (2) / UID CLn (5) and SELECT (9) / SAK (3),
/// RATS (4) / ATS (`ats_len` + CRC), and PPS (5) / PPS response (3) when the rate is raised
/// (ISO/IEC 14443-3 §6, 14443-4 §5). A 4-byte UID has one cascade level, a 7-byte UID (phones,
/// most cards) two.
pub fn activation(uid_len: usize, ats_len: usize, pps: bool) -> Duration {
    let short = (7 + 2) as f64 * BIT_NS + FDT_NS;
    let std_frame = |bytes: usize| (bytes * 9 + 2) as f64 * BIT_NS + FDT_NS;
    let levels = if uid_len > 4 { 2 } else { 1 };
    let mut ns = short + std_frame(2);
    for _ in 0..levels {
        ns += std_frame(2) + std_frame(5) + std_frame(9) + std_frame(3);
    }
    ns += std_frame(4) + std_frame(ats_len + 2);
    if pps {
        ns += std_frame(5) + std_frame(3);
    }
    Duration::from_nanos(ns as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_ppse_costs_a_few_milliseconds() {
        // 20-byte command, ~50-byte answer: (23+53)×9 bits ≈ 6.5 ms plus two frame delays.
        let t = exchange(20, 50).as_micros();
        assert!((6_500..=6_800).contains(&t), "{t}");
    }

    #[test]
    fn higher_rates_shrink_the_bits_not_the_frame_delays() {
        let at = |r| exchange_at(20, 200, r);
        assert_eq!(at(BitRate::K106), exchange(20, 200), "106 kbit/s is the base model");
        for w in BitRate::ALL.windows(2) {
            assert!(at(w[1]) < at(w[0]));
        }
        // Two frame delays (~173 µs) stay whatever the rate.
        let floor = Duration::from_nanos((2.0 * FDT_NS) as u64);
        assert!(at(BitRate::K848) > floor);
        assert!(at(BitRate::K848) < at(BitRate::K106) / 4);
    }

    #[test]
    fn activation_of_a_double_size_uid_with_pps() {
        let single = activation(4, 10, false);
        let double = activation(7, 10, false);
        let pps = activation(7, 10, true);
        assert!(double > single && pps > double);
        // 14 frames, ~64 bytes at 106 kbit/s: about 7 ms.
        assert!((5_000..=9_000).contains(&pps.as_micros()), "{pps:?}");
    }

    #[test]
    fn long_responses_are_chained_and_acknowledged() {
        let one = exchange(5, 253);
        let chained = exchange(5, 254);
        // One more frame (PCB+CRC+1 byte) and an R(ACK) frame: ~0.8 ms more, not ~85 µs.
        assert!(chained - one > Duration::from_micros(600));
    }
}
