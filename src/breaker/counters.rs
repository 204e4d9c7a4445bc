//! Call counters striped across cache lines, so threads calling one breaker at once do not
//! fight over a single line (the idea of Java's `LongAdder`), yet never lose a count.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per breaker; a power of two so that picking one is a mask.
const STRIPES: usize = 8;

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
    /// This thread's stripe, handed out round-robin on first use.
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        let mut value = slot.get();
        if value == usize::MAX {
            value = NEXT_THREAD_SLOT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            slot.set(value);
        }
        value
    })
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        // `thread_slot` is below STRIPES by construction; `get` keeps this panic-free anyway.
        if let Some(stripe) = self.stripes.get(thread_slot()) {
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
    fn no_count_is_lost_across_threads() {
        let counters = Arc::new(Counters::new());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let counters = Arc::clone(&counters);
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
