//! Reads the services' series into one gathering per family, a block of services at a time so
//! a block's series stay in the core's cache while every family reads them; which numbers
//! each family has for a service is decided here.

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::sync::Arc;

use super::family::{FAMILIES, Family};
use super::gathered::{Gathered, Lines};
use super::sample::HISTOGRAM_LINES;
use crate::metrics::histogram::LatencyHistogram;
use crate::metrics::operations::{Operations, TrafficSeries};
use crate::metrics::service::{ServiceSeries, Source, TIMED_OUTCOMES};
use crate::metrics::{DURATION_BUCKETS, HeldServices, OUTCOME_LABELS, STATE_LABELS};

/// Says, for services taken in name order, whether each is in a sorted set, by walking the
/// set alongside them (no look-up per service).
struct Members<'a> {
    names: Peekable<std::collections::btree_set::Iter<'a, String>>,
}

impl<'a> Members<'a> {
    fn of(set: &'a BTreeSet<String>) -> Self {
        Self {
            names: set.iter().peekable(),
        }
    }

    /// Whether `name` is in the set; `name` must not come before the last one asked about.
    fn contains(&mut self, name: &str) -> bool {
        while self
            .names
            .next_if(|member| member.as_str() < name)
            .is_some()
        {}
        self.names
            .next_if(|member| member.as_str() == name)
            .is_some()
    }
}

/// How many services are written family by family before the next ones: their series (a
/// kilobyte or so each) stay in the core's cache while every family reads them, and each
/// family's text is written as one run. Writing every service's lines into all 22 texts at
/// once (22 places in memory at a time, per thread) took twice as long for 10,000 services.
const BLOCK: usize = 128;

/// Reads every per-service family's numbers for `services` (sorted by name, all of them held
/// by `held` or not) into `gathered`, one per family in the order they are exposed.
pub(crate) fn gather_run(
    services: &[&ServiceSeries],
    held: &HeldServices,
    gathered: &mut [Gathered; FAMILIES],
    operations: &mut Vec<Option<Arc<Operations>>>,
) {
    // Each service's operations as they are now, read once: the lines are gathered and then
    // written from the same list, whatever a reload does meanwhile.
    operations.clear();
    operations.extend(services.iter().map(|service| {
        (service.carries_traffic()
            || service.has_caller_outcomes()
            || service.has_operation_states())
        .then(|| service.operations())
    }));
    for family in gathered.iter_mut() {
        family.clear();
    }
    let mut maintenance = Members::of(&held.maintenance);
    let mut silenced = Members::of(&held.silenced);
    let mut holds = Vec::with_capacity(BLOCK);
    for (number, block) in services.chunks(BLOCK).enumerate() {
        let first = number * BLOCK;
        holds.clear();
        holds.extend(block.iter().map(|service| Holds {
            maintenance: maintenance.contains(service.name()),
            silenced: silenced.contains(service.name()),
        }));
        std::hint::black_box(
            block
                .iter()
                .map(|service| service.warm())
                .fold(0, u64::wrapping_add),
        );
        for (family, gathered) in Family::ALL.into_iter().zip(gathered.iter_mut()) {
            let block_operations = operations.get(first..).unwrap_or_default();
            for ((service, holds), operations) in block.iter().zip(&holds).zip(block_operations) {
                let before = gathered.values.len();
                // Each service's lines start with its own name.
                gathered.label(0);
                write_family(gathered, family, service, *holds, operations.as_deref());
                let count = gathered.values.len() - before;
                gathered
                    .counts
                    .push(u16::try_from(count).unwrap_or(u16::MAX));
            }
        }
    }
}

/// Whether a service is held by a maintenance window or a silence.
#[derive(Clone, Copy)]
struct Holds {
    maintenance: bool,
    silenced: bool,
}

/// One service's lines of one family.
fn write_family(
    w: &mut impl Lines,
    family: Family,
    service: &ServiceSeries,
    holds: Holds,
    operations: Option<&Operations>,
) {
    match family {
        Family::BreakerState => {
            let current = service.state_index();
            for state in 0..STATE_LABELS.len() {
                w.int(state, u64::from(state == current));
            }
            // Operations with a breaker of their own (`breakers = "per_operation"`).
            let states = operations
                .filter(|_| service.has_operation_states())
                .into_iter()
                .flat_map(Operations::states);
            for (operation, current) in states.enumerate() {
                let Some(current) = current else { continue };
                w.label(u8::try_from(operation + 1).unwrap_or(u8::MAX));
                for state in 0..STATE_LABELS.len() {
                    w.int(state, u64::from(state == current));
                }
            }
        }
        Family::Calls => {
            for (outcome, count) in service.calls().into_iter().enumerate() {
                w.int(outcome, count);
            }
            let first = Source::Traffic.index() * OUTCOME_LABELS.len();
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                for (outcome, count) in traffic.calls.iter().enumerate() {
                    w.int(first + outcome, count.get());
                }
            }
        }
        Family::CallDuration => {
            for (outcome, (_, histogram)) in service.histograms().enumerate() {
                // The checks' success histogram is always there (the slow-provider rule reads
                // it); a failure or timeout histogram appears with its first observation. A
                // healthy service has none, and they are two thirds of its lines.
                histogram_lines(w, outcome * HISTOGRAM_LINES, histogram, outcome > 0);
            }
            let first = Source::Traffic.index() * TIMED_OUTCOMES.len();
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                for (outcome, histogram) in traffic.durations.iter().enumerate() {
                    // Real traffic's histograms appear with their first call, operation by
                    // operation.
                    histogram_lines(w, (first + outcome) * HISTOGRAM_LINES, histogram, true);
                }
            }
        }
        Family::SlowCalls => {
            w.int(Source::Check.index(), service.slow_calls());
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                w.int(Source::Traffic.index(), traffic.slow.get());
            }
        }
        Family::StateTransitions => {
            for (pair, count) in service.transitions().into_iter().enumerate() {
                w.int(pair, count);
            }
        }
        Family::ConsecutiveFailures => w.int(0, service.consecutive_failures()),
        Family::FailureThreshold => w.int(0, service.failure_threshold()),
        Family::Timeout => w.float(0, service.timeout_seconds()),
        Family::ResetTimeout => w.float(0, service.reset_timeout_seconds()),
        Family::NextAttempt => w.float(0, service.next_attempt()),
        Family::ProbeSuccess => w.int(0, service.probe_success()),
        Family::ProbeLastRun => w.float(0, service.probe_last_run()),
        Family::ProbeInterval => w.float(0, service.probe_interval()),
        Family::ProbeHttpStatus => w.int(0, service.probe_http_status()),
        Family::ProbePhase => {
            for (phase, seconds) in service.phases().into_iter().enumerate() {
                w.float(phase, seconds);
            }
        }
        Family::Maintenance => w.int(0, u64::from(holds.maintenance)),
        Family::Silenced => w.int(0, u64::from(holds.silenced)),
        Family::TlsNotAfter => {
            if service.tls_not_after() > 0.0 {
                w.float(0, service.tls_not_after());
            }
        }
        Family::HeartbeatLast => {
            if service.is_heartbeat() {
                w.float(0, service.heartbeat_last());
            }
        }
        Family::ProbeFailures => {
            for (reason, count) in service.probe_failures().into_iter().enumerate() {
                w.int(reason, count);
            }
        }
        Family::MissedTicks => w.int(0, service.missed_ticks()),
        Family::SkippedForTraffic => w.int(0, service.skipped_for_traffic()),
        Family::CallerOutcomes => {
            let Some(operations) = operations.filter(|_| service.has_caller_outcomes()) else {
                return;
            };
            for (operation, counts) in operations.caller_counts().enumerate() {
                let Some(counts) = counts else { continue };
                w.label(u8::try_from(operation + 1).unwrap_or(u8::MAX));
                for (kind, count) in counts.into_iter().enumerate() {
                    if count > 0 {
                        w.int(kind, count);
                    }
                }
            }
        }
    }
}

/// The real-traffic series of a service that carries traffic, each with its label piece
/// number (1 + its operation's place).
fn traffic_of<'o>(
    service: &ServiceSeries,
    operations: Option<&'o Operations>,
) -> impl Iterator<Item = (u8, &'o TrafficSeries)> {
    operations
        .filter(|_| service.carries_traffic())
        .into_iter()
        .flat_map(Operations::all_traffic)
        .enumerate()
        .map(|(index, series)| (u8::try_from(index + 1).unwrap_or(u8::MAX), series))
}

/// One histogram's lines from sample `first` on: the buckets, `+Inf`, the sum and the count;
/// none when `only_if_observed` and it has no observation.
fn histogram_lines(
    w: &mut impl Lines,
    first: usize,
    histogram: &LatencyHistogram,
    only_if_observed: bool,
) {
    let reading = histogram.read();
    if only_if_observed && reading.count == 0 {
        return;
    }
    let buckets = reading.cumulative.into_iter().chain([reading.count]);
    for (bucket, count) in buckets.enumerate() {
        w.int(first + bucket, count);
    }
    let sum = first + DURATION_BUCKETS.len() + 1;
    w.float(sum, reading.sum);
    w.int(sum + 1, reading.count);
}
