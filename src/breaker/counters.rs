//! Call counters striped across cache lines, so threads calling one breaker at once do not
//! fight over a single line (the idea of Java's `LongAdder`), yet never lose a count.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The most stripes a breaker has; a power of two, like every stripe count, so that picking
/// one is a mask.
const MAX_STRIPES: usize = 8;

/// Stripes per breaker: one for each thread that can run at once, twice over (a runtime's
/// workers plus the threads beside them), as a power of two, at most [`MAX_STRIPES`]. A stripe
/// is 128 bytes and 10,000 breakers have a set each; stripes no two running threads ever use
/// at once buy nothing.
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(MAX_STRIPES, NonZeroUsize::get);
        cpus.saturating_mul(2)
            .checked_next_power_of_two()
            .map_or(MAX_STRIPES, |count| count.min(MAX_STRIPES))
    })
}

/// The counters one call can touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Success,
    Failure,
    Timeout,
    Rejected,
    Ignored,
    Slow,
    Cancelled,
}

const COUNTERS: usize = 7;

impl Counter {
    #[inline]
    fn index(self) -> usize {
        match self {
            Counter::Success => 0,
            Counter::Failure => 1,
            Counter::Timeout => 2,
            Counter::Rejected => 3,
            Counter::Ignored => 4,
            Counter::Slow => 5,
            Counter::Cancelled => 6,
        }
    }
}

/// One stripe, alone on its cache line pair (128 bytes covers adjacent-line prefetching).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe([AtomicU64; COUNTERS]);

/// Totals read from all stripes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) success: u64,
    pub(crate) failure: u64,
    pub(crate) timeout: u64,
    pub(crate) rejected: u64,
    pub(crate) ignored: u64,
    pub(crate) slow: u64,
    pub(crate) cancelled: u64,
}

#[derive(Debug)]
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

static NEXT_THREAD_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe, handed out round-robin on first use (threads that start one after
    /// the other get different stripes).
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        let mut value = slot.get();
        if value == usize::MAX {
            value = NEXT_THREAD_SLOT.fetch_add(1, Ordering::Relaxed) % MAX_STRIPES;
            slot.set(value);
        }
        value
    })
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self::with_stripes(stripe_count())
    }

    /// Counters with `stripes` stripes, a power of two.
    fn with_stripes(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        // The stripe count is a power of two; `get` keeps this panic-free anyway.
        let stripe = thread_slot() & (self.stripes.len().wrapping_sub(1));
        if let Some(stripe) = self.stripes.get(stripe) {
            stripe.0[counter.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let sum = |counter: Counter| -> u64 {
            self.stripes
                .iter()
                .map(|stripe| stripe.0[counter.index()].load(Ordering::Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        Totals {
            success: sum(Counter::Success),
            failure: sum(Counter::Failure),
            timeout: sum(Counter::Timeout),
            rejected: sum(Counter::Rejected),
            ignored: sum(Counter::Ignored),
            slow: sum(Counter::Slow),
            cancelled: sum(Counter::Cancelled),
        }
    }

    pub(crate) fn clear(&self) {
        for stripe in self.stripes.iter() {
            for counter in &stripe.0 {
                counter.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn stripes_are_a_power_of_two_up_to_the_most() {
        let count = stripe_count();
        assert!(count.is_power_of_two() && count <= MAX_STRIPES, "{count}");
        assert!(
            count >= 2,
            "even one CPU has its thread and the one beside it"
        );
    }

    #[test]
    fn no_count_is_lost_across_threads() {
        for stripes in [1, 2, MAX_STRIPES] {
            let counters = Arc::new(Counters::with_stripes(stripes));
            count_on_twelve_threads(&counters);
        }
        count_on_twelve_threads(&Arc::new(Counters::new()));
    }

    fn count_on_twelve_threads(counters: &Arc<Counters>) {
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counters = Arc::clone(counters);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counters.add(Counter::Success);
                        counters.add(Counter::Slow);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread panicked");
        }
        let totals = counters.totals();
        assert_eq!(totals.success, 120_000);
        assert_eq!(totals.slow, 120_000);
        assert_eq!(totals.failure, 0);
        counters.clear();
        assert_eq!(counters.totals(), Totals::default());
    }
}
