//! The length of each open period: the reset timeout, grown by the backoff's multiplier for
//! every reopening in a row, capped, and shortened by jitter.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use super::policy::Backoff;

/// A small xorshift generator for jitter; seeded from the standard library's per-process
/// random keys, so no extra dependency and no two breakers share a sequence.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        Self(RandomState::new().hash_one(0u8) | 1)
    }

    /// A fraction in `[0, 1)`.
    pub(crate) fn next_fraction(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The open period after `reopenings` reopenings in a row (0 for a breaker that just tripped
/// from closed).
pub(crate) fn open_period(
    reset_timeout: Duration,
    backoff: Option<&Backoff>,
    reopenings: u32,
    jitter: &mut Jitter,
) -> Duration {
    let Some(backoff) = backoff else {
        return reset_timeout;
    };
    let exponent = i32::try_from(reopenings).unwrap_or(i32::MAX);
    let grown = reset_timeout.as_secs_f64() * backoff.multiplier.powi(exponent);
    let capped = grown.min(backoff.max.as_secs_f64());
    let shortened = capped * (1.0 - backoff.jitter * jitter.next_fraction());
    Duration::try_from_secs_f64(shortened).unwrap_or(backoff.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(jitter: f64) -> Backoff {
        Backoff {
            multiplier: 2.0,
            max: Duration::from_secs(300),
            jitter,
        }
    }

    #[test]
    fn without_backoff_every_period_is_the_reset_timeout() {
        let mut jitter = Jitter::new();
        for reopenings in [0, 1, 50] {
            assert_eq!(
                open_period(Duration::from_secs(60), None, reopenings, &mut jitter),
                Duration::from_secs(60)
            );
        }
    }

    #[test]
    fn periods_grow_by_the_multiplier_up_to_the_cap() {
        let mut jitter = Jitter::new();
        let periods: Vec<u64> = (0..6)
            .map(|n| {
                open_period(Duration::from_secs(60), Some(&backoff(0.0)), n, &mut jitter).as_secs()
            })
            .collect();
        assert_eq!(periods, vec![60, 120, 240, 300, 300, 300]);
        let huge = open_period(
            Duration::from_secs(60),
            Some(&backoff(0.0)),
            u32::MAX,
            &mut jitter,
        );
        assert_eq!(huge, Duration::from_secs(300));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let mut jitter = Jitter::new();
        let periods: Vec<Duration> = (0..200)
            .map(|_| {
                open_period(
                    Duration::from_secs(100),
                    Some(&backoff(0.25)),
                    0,
                    &mut jitter,
                )
            })
            .collect();
        assert!(
            periods
                .iter()
                .all(|p| *p > Duration::from_secs(75) && *p <= Duration::from_secs(100))
        );
        let distinct: std::collections::HashSet<_> = periods.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter produced only {} distinct periods",
            distinct.len()
        );
    }
}
