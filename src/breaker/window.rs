//! The count-based sliding window of the last N call outcomes, kept without a lock: each slot
//! is swapped atomically and the running totals move by the difference between the old and the
//! new slot, so the totals always add up to what the slots hold once concurrent calls finish.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};

const RECORDED: u8 = 0b001;
const FAILED: u8 = 0b010;
const SLOW: u8 = 0b100;

/// Calls, failures and slow calls currently in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowTotals {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl WindowTotals {
    /// The failure rate in percent, or 0 with an empty window.
    pub(crate) fn failure_rate(&self) -> f64 {
        percent(self.failures, self.calls)
    }

    /// The slow-call rate in percent, or 0 with an empty window.
    pub(crate) fn slow_rate(&self) -> f64 {
        percent(self.slow, self.calls)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 * 100.0 / whole as f64
}

#[derive(Debug)]
pub(crate) struct Window {
    slots: Box<[AtomicU8]>,
    next: AtomicUsize,
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl Window {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            slots: (0..size.max(1)).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicUsize::new(0),
            calls: AtomicI64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    /// Records one outcome, pushing the oldest out once the window is full.
    pub(crate) fn record(&self, failed: bool, slow: bool) {
        let mut value = RECORDED;
        if failed {
            value |= FAILED;
        }
        if slow {
            value |= SLOW;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(slot) = self.slots.get(index) {
            let old = slot.swap(value, Ordering::AcqRel);
            self.apply(old, value);
        }
    }

    /// Empties the window (on closing, so an old outage does not count against a fresh start).
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            let old = slot.swap(0, Ordering::AcqRel);
            self.apply(old, 0);
        }
    }

    pub(crate) fn totals(&self) -> WindowTotals {
        let read = |total: &AtomicI64| total.load(Ordering::Acquire).max(0) as u64;
        WindowTotals {
            calls: read(&self.calls),
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    fn apply(&self, old: u8, new: u8) {
        let delta = |bit: u8| i64::from(new & bit != 0) - i64::from(old & bit != 0);
        for (bit, total) in [
            (RECORDED, &self.calls),
            (FAILED, &self.failures),
            (SLOW, &self.slow),
        ] {
            let change = delta(bit);
            if change != 0 {
                total.fetch_add(change, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_outcome_leaves_a_full_window() {
        let window = Window::new(3);
        window.record(true, false);
        window.record(false, true);
        window.record(false, false);
        assert_eq!(
            window.totals(),
            WindowTotals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        window.record(false, false);
        assert_eq!(
            window.totals(),
            WindowTotals {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
        assert!((window.totals().slow_rate() - 100.0 / 3.0).abs() < 1e-9);
        window.clear();
        assert_eq!(window.totals(), WindowTotals::default());
        assert_eq!(window.totals().failure_rate(), 0.0);
    }

    #[test]
    fn totals_match_slots_after_concurrent_records() {
        let window = std::sync::Arc::new(Window::new(64));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        window.record((i + n) % 2 == 0, i % 3 == 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("recording thread panicked");
        }
        let from_slots = window
            .slots
            .iter()
            .fold(WindowTotals::default(), |mut acc, slot| {
                let value = slot.load(Ordering::Acquire);
                acc.calls += u64::from(value & RECORDED != 0);
                acc.failures += u64::from(value & FAILED != 0);
                acc.slow += u64::from(value & SLOW != 0);
                acc
            });
        assert_eq!(window.totals(), from_slots);
        assert_eq!(from_slots.calls, 64);
    }
}
