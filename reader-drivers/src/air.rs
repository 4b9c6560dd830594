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
    fn long_responses_are_chained_and_acknowledged() {
        let one = exchange(5, 253);
        let chained = exchange(5, 254);
        // One more frame (PCB+CRC+1 byte) and an R(ACK) frame: ~0.8 ms more, not ~85 µs.
        assert!(chained - one > Duration::from_micros(600));
    }
}
