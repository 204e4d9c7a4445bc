//! A lock-free latency histogram with fixed buckets: an observation is a few relaxed atomic
//! operations, and a scrape reads the buckets without blocking recorders.

use std::sync::atomic::{AtomicU64, Ordering};

use super::DURATION_BUCKETS;

/// Counts per bucket (not cumulative), the count of all observations and their sum.
#[derive(Debug, Default)]
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    /// The sum's f64 bits.
    sum: AtomicU64,
}

/// A consistent-enough reading: cumulative bucket counts, then count and sum.
pub(crate) struct HistogramReading {
    pub(crate) cumulative: [u64; DURATION_BUCKETS.len()],
    pub(crate) count: u64,
    pub(crate) sum: f64,
}

impl LatencyHistogram {
    pub(crate) fn observe(&self, seconds: f64) {
        if let Some(index) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // The closure always returns Some, so this cannot fail.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }

    /// Reads every bucket (see `ServiceSeries::warm`).
    pub(crate) fn warm(&self) -> u64 {
        self.buckets
            .iter()
            .chain([&self.count])
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn read(&self) -> HistogramReading {
        let mut cumulative = [0u64; DURATION_BUCKETS.len()];
        let mut running = 0u64;
        for (slot, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            *slot = running;
        }
        // Read the count last and never below the buckets, so `+Inf` >= every bucket.
        let count = self.count.load(Ordering::Relaxed).max(running);
        HistogramReading {
            cumulative,
            count,
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let histogram = LatencyHistogram::default();
        for seconds in [0.001, 0.005, 0.3, 2.0, 120.0] {
            histogram.observe(seconds);
        }
        let reading = histogram.read();
        assert_eq!(reading.cumulative[0], 2, "0.001 and the bound 0.005 itself");
        assert_eq!(reading.cumulative[6], 3, "up to 0.5");
        assert_eq!(reading.cumulative[8], 4, "up to 2.5");
        assert_eq!(reading.cumulative[12], 4, "120 s is above the last bucket");
        assert_eq!(reading.count, 5);
        assert!((reading.sum - 122.306).abs() < 1e-9);
    }
}
