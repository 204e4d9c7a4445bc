//! Call counters striped across cache lines, so threads calling one breaker at once do not
//! fight over a single line (the idea of Java's `LongAdder`), yet never lose a count.
//!
//! A thread that owns a stripe (one of the first threads to count, while it lives) is its only
//! writer and adds with a plain load and store, no locked instruction; every other thread adds
//! atomically to the shared half of a stripe picked round-robin.

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

type Set = [AtomicU64; COUNTERS];

/// One stripe, alone on its cache line pair (128 bytes covers adjacent-line prefetching): the
/// counts of the thread that owns it, written by that thread alone, and the counts other
/// threads add atomically.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    owned: Set,
    shared: Set,
}

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
    /// The sums at the last [`clear`](Self::clear), taken off every total: an owned stripe has
    /// one writer, so no other thread may zero it.
    cleared: Set,
}

/// Which stripes threads own, a bit each (stripes `0..stripe_count()`).
static OWNED_STRIPES: AtomicUsize = AtomicUsize::new(0);
static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);

/// A thread's place in every breaker's stripes: an owned stripe's index (below
/// [`MAX_STRIPES`]), or [`MAX_STRIPES`] plus the round-robin pick of a shared one. An owned
/// stripe is handed back when its thread ends.
struct ThreadSlot(usize);

impl ThreadSlot {
    fn claim() -> Self {
        let owned = OWNED_STRIPES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
            let free = (!taken).trailing_zeros() as usize;
            (free < stripe_count()).then(|| taken | (1 << free))
        });
        match owned {
            Ok(taken) => ThreadSlot((!taken).trailing_zeros() as usize),
            Err(_) => {
                ThreadSlot(MAX_STRIPES + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % MAX_STRIPES)
            }
        }
    }

    /// The slot of a thread whose own slot is gone (counting from a late thread destructor).
    const SHARED: usize = MAX_STRIPES;
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        if self.0 < MAX_STRIPES {
            // Release: the next owner sees every count this thread wrote.
            OWNED_STRIPES.fetch_and(!(1 << self.0), Ordering::Release);
        }
    }
}

thread_local! {
    static THREAD_SLOT: ThreadSlot = ThreadSlot::claim();
}

#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT
        .try_with(|slot| slot.0)
        .unwrap_or(ThreadSlot::SHARED)
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self::with_stripes(stripe_count())
    }

    /// Counters with `stripes` stripes, a power of two.
    fn with_stripes(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
            cleared: Set::default(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        let slot = thread_slot();
        if let Some(stripe) = self.stripes.get(slot) {
            // This thread owns the stripe (slots below the stripe count are owned ones): it
            // is the only writer, so a plain load and store cannot lose a count.
            let count = &stripe.owned[counter.index()];
            count.store(
                count.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            return;
        }
        // The stripe count is a power of two; `get` keeps this panic-free anyway.
        let stripe = slot & (self.stripes.len().wrapping_sub(1));
        if let Some(stripe) = self.stripes.get(stripe) {
            stripe.shared[counter.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sum(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .flat_map(|stripe| [&stripe.owned, &stripe.shared])
            .map(|set| set[counter.index()].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    pub(crate) fn totals(&self) -> Totals {
        // The mark first: the sums read after it include every count it was taken from.
        let cleared: [u64; COUNTERS] =
            std::array::from_fn(|i| self.cleared[i].load(Ordering::Acquire));
        let total = |counter: Counter| -> u64 {
            self.sum(counter).saturating_sub(cleared[counter.index()])
        };
        Totals {
            success: total(Counter::Success),
            failure: total(Counter::Failure),
            timeout: total(Counter::Timeout),
            rejected: total(Counter::Rejected),
            ignored: total(Counter::Ignored),
            slow: total(Counter::Slow),
            cancelled: total(Counter::Cancelled),
        }
    }

    pub(crate) fn clear(&self) {
        for counter in [
            Counter::Success,
            Counter::Failure,
            Counter::Timeout,
            Counter::Rejected,
            Counter::Ignored,
            Counter::Slow,
            Counter::Cancelled,
        ] {
            self.cleared[counter.index()].store(self.sum(counter), Ordering::Release);
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

    #[test]
    fn clearing_takes_off_counts_made_by_threads_gone_or_running() {
        let counters = Arc::new(Counters::new());
        let elsewhere = Arc::clone(&counters);
        std::thread::spawn(move || {
            for _ in 0..5 {
                elsewhere.add(Counter::Success);
            }
        })
        .join()
        .expect("counting thread panicked");
        counters.add(Counter::Failure);
        assert_eq!(
            (counters.totals().success, counters.totals().failure),
            (5, 1)
        );
        counters.clear();
        assert_eq!(counters.totals(), Totals::default());
        counters.add(Counter::Success);
        assert_eq!(
            counters.totals().success,
            1,
            "counting goes on after a clear"
        );
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
