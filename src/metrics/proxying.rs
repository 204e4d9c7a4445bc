//! The proxy's own series for one service, beside its breaker's: calls in flight against its
//! `max_concurrent`, calls refused for want of a slot, and calls sent to (or refused by) its
//! `fallback`, by pair. Written only for services that have a cap or have fallen back, so the
//! 10,000 checked endpoints of a large config carry none.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What became of a call the proxy sent towards a service's fallback: the `outcome` label of
/// `breakerd_fallback_calls_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackOutcome {
    /// The fallback's breaker let it through: it went to the fallback's upstream.
    Sent,
    /// The fallback's breaker (or cap) refused it too: the caller got the primary's refusal.
    Refused,
}

impl FallbackOutcome {
    const ALL: [FallbackOutcome; 2] = [FallbackOutcome::Sent, FallbackOutcome::Refused];

    fn as_str(self) -> &'static str {
        match self {
            FallbackOutcome::Sent => "sent",
            FallbackOutcome::Refused => "refused",
        }
    }
}

/// One service's proxy series (shared by every version of the service across reloads).
#[derive(Debug, Default)]
pub struct ProxySeries {
    in_flight: AtomicI64,
    /// The cap in force; 0 when the service has none.
    max_concurrent: AtomicU32,
    capacity_rejections: AtomicU64,
    /// By fallback service: calls sent, calls refused.
    fallbacks: RwLock<BTreeMap<String, Arc<[AtomicU64; 2]>>>,
}

impl ProxySeries {
    /// The cap in force (`None`: no `max_concurrent`).
    pub fn set_max_concurrent(&self, limit: Option<u32>) {
        self.max_concurrent
            .store(limit.unwrap_or(0), Ordering::Relaxed);
    }

    /// One call more (`1`) or less (`-1`) in flight under the cap.
    pub fn in_flight(&self, change: i64) {
        self.in_flight.fetch_add(change, Ordering::Relaxed);
    }

    /// Calls in flight under the cap now.
    pub fn in_flight_now(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0).unsigned_abs()
    }

    /// Counts a call refused for want of a slot.
    pub fn capacity_rejected(&self) {
        self.capacity_rejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls refused for want of a slot so far.
    pub fn capacity_rejections(&self) -> u64 {
        self.capacity_rejections.load(Ordering::Relaxed)
    }

    /// Makes the series of the pair with `fallback` exist (at 0 until a call goes there), so
    /// rules and panels see the pair from start-up.
    pub fn set_fallback(&self, fallback: Option<&str>) {
        if let Some(fallback) = fallback {
            self.fallbacks
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(fallback.to_string())
                .or_default();
        }
    }

    /// Counts a call this service refused that went towards `fallback`, and what became of it.
    pub fn fell_back(&self, fallback: &str, outcome: FallbackOutcome) {
        let index = usize::from(outcome == FallbackOutcome::Refused);
        let known = self
            .fallbacks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(fallback)
            .cloned();
        let counts = known.unwrap_or_else(|| {
            Arc::clone(
                self.fallbacks
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(fallback.to_string())
                    .or_default(),
            )
        });
        counts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls sent to `fallback` so far (refused ones not included).
    pub fn fallback_calls(&self, fallback: &str) -> u64 {
        self.fallbacks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(fallback)
            .map_or(0, |counts| counts[0].load(Ordering::Relaxed))
    }

    /// Whether this service has anything to write.
    fn shown(&self) -> bool {
        self.max_concurrent.load(Ordering::Relaxed) > 0
            || self.in_flight.load(Ordering::Relaxed) != 0
            || self.capacity_rejections.load(Ordering::Relaxed) > 0
    }
}

/// A gauge family: its name, its help, and how it reads a service's series.
type GaugeFamily = (&'static str, &'static str, fn(&ProxySeries) -> i64);

/// Every service's proxy series, by name, written on each scrape.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyCollector {
    pub(crate) services: Arc<RwLock<BTreeMap<String, Arc<ProxySeries>>>>,
}

impl Collector for ProxyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let services = self.services.read().unwrap_or_else(PoisonError::into_inner);
        let capped: Vec<(&String, &Arc<ProxySeries>)> = services
            .iter()
            .filter(|(_, series)| series.shown())
            .collect();
        let gauges: [GaugeFamily; 2] = [
            (
                "bulkhead_in_flight",
                "Proxied calls in flight to the service under its max_concurrent",
                |series| series.in_flight.load(Ordering::Relaxed),
            ),
            (
                "bulkhead_max_concurrent",
                "The service's max_concurrent: proxied calls in flight at most (0: no cap)",
                |series| i64::from(series.max_concurrent.load(Ordering::Relaxed)),
            ),
        ];
        for (name, help, read) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (service, series) in &capped {
                let labels = [("service", service.as_str())];
                ConstGauge::new(read(series)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "bulkhead_rejections",
            "Proxied calls refused 503 (reason capacity) because max_concurrent calls were in flight and no slot came free within max_wait; never counted against the provider",
            None,
            MetricType::Counter,
        )?;
        for (service, series) in &capped {
            let labels = [("service", service.as_str())];
            ConstCounter::new(series.capacity_rejections.load(Ordering::Relaxed))
                .encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "fallback_calls",
            "Calls the service's breaker refused that the proxy sent towards its fallback (outcome sent: through the fallback's breaker to its upstream; refused: the fallback refused them too)",
            None,
            MetricType::Counter,
        )?;
        for (service, series) in services.iter() {
            let fallbacks = series
                .fallbacks
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            for (fallback, counts) in fallbacks.iter() {
                for outcome in FallbackOutcome::ALL {
                    let labels = [
                        ("service", service.as_str()),
                        ("fallback", fallback.as_str()),
                        ("outcome", outcome.as_str()),
                    ];
                    let count = counts[usize::from(outcome == FallbackOutcome::Refused)]
                        .load(Ordering::Relaxed);
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
