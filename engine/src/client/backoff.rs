//! Reconnect delays: exponential backoff with full jitter, capped (sans-IO: no clock, no socket).
//!
//! The delay before attempt `n` (0 for the first attempt after a connection is lost) is drawn
//! uniformly from `[0, min(cap, base * 2^n)]` ("full jitter"). A fleet of clients that lose
//! their server at the same instant therefore spread their reconnects over the whole window
//! instead of arriving together (Dorado's fixed 2 s retry is the storm this avoids).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait between reconnect attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The window of the first attempt after a connection is lost.
    pub base: Duration,
    /// The largest window.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The window (upper bound of the delay) for attempt `attempt` (0-based).
    pub fn window(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A delay for attempt `attempt`, drawn uniformly from `[0, window(attempt)]`.
    pub fn delay(&self, attempt: u32, rng: &mut Jitter) -> Duration {
        let window = self.window(attempt).as_nanos().min(u64::MAX as u128) as u64;
        if window == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.below(window + 1))
    }
}

/// A small pseudo-random generator for jitter (SplitMix64), seeded per shard and client from
/// the process's hash keys, so that clients and processes draw different delays.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with a fresh random seed, mixed with `salt`.
    pub fn new(salt: u64) -> Jitter {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        Jitter::seeded(h.finish())
    }

    /// A generator with a fixed seed (reproducible sequences, for tests).
    pub fn seeded(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniform in `[0, n)` (`n > 0`), without modulo bias worth noticing (Lemire's
    /// multiply-shift).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_window_doubles_per_attempt_up_to_the_cap() {
        let b = Backoff {
            base: ms(100),
            cap: ms(1000),
        };
        let windows: Vec<_> = (0..6).map(|a| b.window(a)).collect();
        assert_eq!(
            windows,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(
            b.window(u32::MAX),
            ms(1000),
            "huge attempt counts do not overflow"
        );
    }

    #[test]
    fn delays_stay_inside_the_window_and_cover_it() {
        let b = Backoff {
            base: ms(100),
            cap: ms(1000),
        };
        let mut rng = Jitter::seeded(7);
        let delays: Vec<_> = (0..10_000).map(|_| b.delay(0, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= ms(100)));
        // Full jitter: every tenth of the window is hit, none by more than twice its share.
        let mut buckets = [0u32; 10];
        for d in &delays {
            buckets[((d.as_nanos() * 10 / ms(100).as_nanos()) as usize).min(9)] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 500 && n < 2000), "{buckets:?}");
    }

    #[test]
    fn generators_with_fresh_seeds_draw_different_sequences() {
        let a: Vec<_> = {
            let mut r = Jitter::new(1);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<_> = {
            let mut r = Jitter::new(1);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn a_zero_base_means_no_delay() {
        let b = Backoff {
            base: Duration::ZERO,
            cap: ms(10),
        };
        assert_eq!(b.delay(3, &mut Jitter::seeded(1)), Duration::ZERO);
    }
}
