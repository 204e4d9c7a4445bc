//! A service's series by operation: for real traffic, calls, latency and slow calls per
//! operation of its catalogue (`operation` label, bounded by the catalogue); for every answer
//! that was the caller's own outcome, a count per operation and kind. Each operation's label
//! piece (`mpesa",operation="stk_push`) is built once, so the exposition copies it like a
//! service's name.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use super::cell::Counter;
use super::histogram::LatencyHistogram;
use super::outcome_index;
use super::text::{Padded, escape_label_value};
use crate::breaker::Outcome;
use crate::outcome::CallerKind;

/// The most operations a service's series keep: the rest count as the last one.
pub(crate) const MAX_OPERATIONS: usize = 64;

/// One operation's real-traffic series.
#[derive(Debug, Default)]
pub(crate) struct TrafficSeries {
    /// By outcome: success, failure, timeout, rejected.
    pub(crate) calls: [Counter; 4],
    /// By timed outcome: success, failure, timeout.
    pub(crate) durations: [LatencyHistogram; 3],
    pub(crate) slow: Counter,
}

/// The operations of a service as its series know them.
#[derive(Debug, Default)]
pub(crate) struct Operations {
    names: Vec<Arc<str>>,
    /// `service",operation="name`, escaped and padded.
    labels: Vec<Padded>,
    /// One per operation while real traffic can reach the service; empty otherwise.
    traffic: Vec<Arc<TrafficSeries>>,
    /// Caller outcomes per operation, by kind; made at the first one.
    caller: Vec<Arc<OnceLock<[Counter; CallerKind::ALL.len()]>>>,
    /// Each operation's breaker state label index (`breakers = "per_operation"`);
    /// [`NO_BREAKER`] for an operation without a breaker of its own.
    states: Vec<AtomicU8>,
}

/// The state of an operation that has no breaker of its own.
const NO_BREAKER: u8 = u8::MAX;

impl Operations {
    /// The operations `names` of service `service`, keeping the series of `previous` for the
    /// names it shares; traffic series only when `carries_traffic`.
    pub(crate) fn new(
        service: &str,
        names: &[Arc<str>],
        carries_traffic: bool,
        previous: &Operations,
    ) -> Self {
        let names: Vec<Arc<str>> = names.iter().take(MAX_OPERATIONS).cloned().collect();
        let escaped = escape_label_value(service);
        let labels = names
            .iter()
            .map(|name| {
                let piece = format!("{escaped}\",operation=\"{}", escape_label_value(name));
                Padded::new(piece.as_bytes())
            })
            .collect();
        let kept = |name: &Arc<str>| previous.names.iter().position(|known| known == name);
        let traffic = if carries_traffic {
            names
                .iter()
                .map(|name| {
                    kept(name)
                        .and_then(|index| previous.traffic.get(index))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        } else {
            Vec::new()
        };
        let caller = names
            .iter()
            .map(|name| {
                kept(name)
                    .and_then(|index| previous.caller.get(index))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let states = names.iter().map(|_| AtomicU8::new(NO_BREAKER)).collect();
        Self {
            names,
            labels,
            traffic,
            caller,
            states,
        }
    }

    /// Sets the state label index of operation `index`'s own breaker.
    pub(crate) fn set_state(&self, index: usize, state: usize) {
        if let Some(slot) = self.states.get(index) {
            slot.store(u8::try_from(state).unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Each operation's breaker state label index, `None` for one without a breaker.
    pub(crate) fn states(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.states
            .iter()
            .map(|slot| match slot.load(Ordering::Relaxed) {
                NO_BREAKER => None,
                state => Some(usize::from(state)),
            })
    }

    /// Whether these are the operations `names`, traffic series as `carries_traffic` says.
    pub(crate) fn is(&self, names: &[Arc<str>], carries_traffic: bool) -> bool {
        self.names.len() == names.len().min(MAX_OPERATIONS)
            && self.names.iter().zip(names).all(|(a, b)| a == b)
            && self.traffic.is_empty() != carries_traffic
    }

    pub(crate) fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    pub(crate) fn label(&self, index: usize) -> Option<&Padded> {
        self.labels.get(index)
    }

    /// The traffic series of operation `index` (the last one for an index past the end).
    pub(crate) fn traffic(&self, index: usize) -> Option<&TrafficSeries> {
        self.traffic
            .get(index.min(self.traffic.len().saturating_sub(1)))
            .map(|series| &**series)
    }

    /// Every operation's traffic series, in catalogue order (none when no traffic reaches).
    pub(crate) fn all_traffic(&self) -> impl Iterator<Item = &TrafficSeries> {
        self.traffic.iter().map(|series| &**series)
    }

    /// Counts a caller outcome of `kind` on operation `index`.
    pub(crate) fn caller_outcome(&self, index: usize, kind: CallerKind) {
        let Some(slot) = self
            .caller
            .get(index.min(self.caller.len().saturating_sub(1)))
        else {
            return;
        };
        let counters = slot.get_or_init(Default::default);
        if let Some(position) = CallerKind::ALL.iter().position(|known| *known == kind) {
            counters[position].inc();
        }
    }

    /// The caller-outcome counts of each operation (`None`: none yet), in catalogue order.
    pub(crate) fn caller_counts(
        &self,
    ) -> impl Iterator<Item = Option<[u64; CallerKind::ALL.len()]>> + '_ {
        self.caller.iter().map(|slot| {
            slot.get()
                .map(|counters| counters.each_ref().map(Counter::get))
        })
    }
}

impl TrafficSeries {
    /// Counts one call and its latency.
    pub(crate) fn record(
        &self,
        outcome: Outcome,
        duration: Option<std::time::Duration>,
        slow: bool,
    ) {
        let Some(index) = outcome_index(outcome) else {
            return;
        };
        self.calls[index].inc();
        if let (Some(duration), Some(histogram)) = (duration, self.durations.get(index)) {
            histogram.observe(duration.as_secs_f64());
        }
        if slow {
            self.slow.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Arc<str>> {
        list.iter().map(|name| Arc::from(*name)).collect()
    }

    #[test]
    fn series_are_kept_across_a_change_for_the_names_that_stay() {
        let first = Operations::new(
            "mpesa",
            &names(&["stk_push", "other"]),
            true,
            &Operations::default(),
        );
        first.traffic(0).unwrap().calls[0].inc();
        first.caller_outcome(1, CallerKind::Pending);
        let second = Operations::new("mpesa", &names(&["b2c", "stk_push", "other"]), true, &first);
        assert_eq!(
            second.traffic(1).unwrap().calls[0].get(),
            1,
            "stk_push kept"
        );
        assert_eq!(second.traffic(0).unwrap().calls[0].get(), 0, "b2c is new");
        let counts: Vec<_> = second.caller_counts().collect();
        assert_eq!(counts[0], None);
        assert_eq!(counts[2].map(|c| c[0]), Some(1), "other's pending kept");
        assert!(second.is(&names(&["b2c", "stk_push", "other"]), true));
        assert!(!second.is(&names(&["b2c", "stk_push", "other"]), false));
        assert_eq!(
            std::str::from_utf8(&second.label(0).unwrap().bytes_for_test()).unwrap(),
            "mpesa\",operation=\"b2c"
        );
        let quiet = Operations::new("mpesa", &names(&["other"]), false, &second);
        assert!(
            quiet.traffic(0).is_none(),
            "no traffic series without traffic"
        );
        assert_eq!(quiet.traffic(99).map(|_| ()), None);
        assert_eq!(
            second.traffic(99).map(|s| s.calls[0].get()),
            Some(0),
            "past the end: the last"
        );
    }
}
