//! The atomic cells a service's series live in: a counter, an integer gauge and a float gauge,
//! each one relaxed atomic that inlines to a plain load or store (a scrape of 10,000 services
//! reads close to a million of them).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A count that only goes up.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn inc(&self) {
        self.inc_by(1);
    }

    #[inline]
    pub(crate) fn inc_by(&self, count: u64) {
        self.0.fetch_add(count, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An integer that is set.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub(crate) fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A float that is set (kept as its bits; 0.0 to start).
#[derive(Debug, Default)]
pub(crate) struct FloatGauge(AtomicU64);

impl FloatGauge {
    #[inline]
    pub(crate) fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_what_was_recorded() {
        let counter = Counter::default();
        counter.inc();
        counter.inc_by(41);
        assert_eq!(counter.get(), 42);
        let gauge = Gauge::default();
        gauge.set(-3);
        assert_eq!(gauge.get(), -3);
        let float = FloatGauge::default();
        assert_eq!(float.get(), 0.0);
        float.set(1_700_000_000.25);
        assert_eq!(float.get(), 1_700_000_000.25);
    }
}
