//! One service's series: atomic counters and gauges plus the latency histograms, held
//! together so recording touches no map and a scrape reads them in a fixed order. Real
//! traffic is counted by operation ([`Operations`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use super::cell::{Counter, FloatGauge, Gauge};
use super::histogram::LatencyHistogram;
use super::operations::Operations;
use super::text::{Padded, escape_label_value};
use super::{TRANSITION_LABELS, outcome_index, unix_seconds};
use crate::breaker::{CallTag, Outcome, State};
use crate::outcome::{CallerKind, FailureReason};

/// The `phase` label values of `breakerd_probe_phase_seconds`, in order.
pub(crate) const PHASES: [&str; 5] = crate::outcome::Phases::LABELS;

/// The `outcome` values that have a latency histogram (rejected calls take no time).
pub(crate) const TIMED_OUTCOMES: [&str; 3] = ["success", "failure", "timeout"];

/// Where a call came from: the `source` label of the call metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A scheduled synthetic check.
    Check,
    /// A real call: proxied, or reported by an application.
    Traffic,
}

impl Source {
    /// Both, in the order they are written.
    pub const ALL: [Source; 2] = [Source::Check, Source::Traffic];

    /// The label value: `check` or `traffic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Check => "check",
            Source::Traffic => "traffic",
        }
    }

    /// The breaker tag that marks calls from this source (real traffic of the first
    /// operation; see [`Source::traffic`]).
    pub fn tag(self) -> CallTag {
        match self {
            Source::Check => CallTag::DEFAULT,
            Source::Traffic => CallTag(1),
        }
    }

    /// The breaker tag of a real call of operation `index` (its place in the service's
    /// catalogue).
    pub fn traffic(index: u8) -> CallTag {
        CallTag(index.saturating_add(1))
    }

    /// The source a breaker tag names: 0 is a check, any other is real traffic.
    pub fn of(tag: CallTag) -> Source {
        if tag == CallTag::DEFAULT {
            Source::Check
        } else {
            Source::Traffic
        }
    }

    /// The operation a real call's tag names.
    pub fn operation_of(tag: CallTag) -> Option<usize> {
        (tag != CallTag::DEFAULT).then(|| usize::from(tag.0 - 1))
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Source::Check => 0,
            Source::Traffic => 1,
        }
    }
}

/// The next series' id.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The operations of every service that has none of its own (shared: 10,000 checked endpoints
/// need no list each).
static NO_OPERATIONS: std::sync::LazyLock<Arc<Operations>> = std::sync::LazyLock::new(Arc::default);

#[derive(Debug)]
pub(crate) struct ServiceSeries {
    /// Which series this is, and in which shape: no two series made by this process have the
    /// same, and a series whose operations change takes a new one.
    id: AtomicU64,
    name: String,
    /// The name escaped for a label value, padded for the exposition's copies.
    label: Padded,
    state: Gauge,
    /// The checks' calls, by outcome.
    calls: [Counter; 4],
    durations: [LatencyHistogram; 3],
    slow_calls: Counter,
    /// Whether real traffic can reach this service (its `source="traffic"` series are written).
    carries_traffic: AtomicBool,
    /// Its operations: real traffic and caller outcomes by operation.
    operations: RwLock<Arc<Operations>>,
    /// Whether any answer was the caller's own outcome (a scrape reads the operations for
    /// their counts only then).
    has_caller_outcomes: AtomicBool,
    /// Whether some operation has a breaker of its own (its state is written by operation).
    has_operation_states: AtomicBool,
    transitions: [Counter; TRANSITION_LABELS.len()],
    consecutive_failures: Gauge,
    failure_threshold: Gauge,
    timeout: FloatGauge,
    reset_timeout: FloatGauge,
    next_attempt: FloatGauge,
    probe_success: Gauge,
    probe_last_run: FloatGauge,
    probe_interval: FloatGauge,
    probe_http_status: Gauge,
    /// The end of the validity of the last certificate a check saw (0: none seen).
    tls_not_after: FloatGauge,
    /// The phases of the last HTTP check: dns, connect, tls, first_byte, body.
    phases: [FloatGauge; PHASES.len()],
    /// Whether the service is a heartbeat (its last beat is exported).
    is_heartbeat: AtomicBool,
    heartbeat_last: FloatGauge,
    probe_failures: [Counter; FailureReason::ALL.len()],
    missed_ticks: Counter,
    skipped_for_traffic: Counter,
}

impl ServiceSeries {
    pub(crate) fn new(
        name: &str,
        failure_threshold: u32,
        timeout: Duration,
        reset_timeout: Duration,
    ) -> Self {
        let series = Self {
            id: AtomicU64::new(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            name: name.to_string(),
            label: Padded::new(escape_label_value(name).as_bytes()),
            state: Gauge::default(),
            calls: Default::default(),
            durations: Default::default(),
            slow_calls: Default::default(),
            carries_traffic: AtomicBool::new(false),
            operations: RwLock::new(Arc::clone(&NO_OPERATIONS)),
            has_caller_outcomes: AtomicBool::new(false),
            has_operation_states: AtomicBool::new(false),
            transitions: Default::default(),
            consecutive_failures: Gauge::default(),
            failure_threshold: Gauge::default(),
            timeout: FloatGauge::default(),
            reset_timeout: FloatGauge::default(),
            next_attempt: FloatGauge::default(),
            probe_success: Gauge::default(),
            probe_last_run: FloatGauge::default(),
            probe_interval: FloatGauge::default(),
            probe_http_status: Gauge::default(),
            tls_not_after: FloatGauge::default(),
            phases: Default::default(),
            is_heartbeat: AtomicBool::new(false),
            heartbeat_last: FloatGauge::default(),
            probe_failures: Default::default(),
            missed_ticks: Counter::default(),
            skipped_for_traffic: Counter::default(),
        };
        series.failure_threshold.set(i64::from(failure_threshold));
        series.timeout.set(timeout.as_secs_f64());
        series.reset_timeout.set(reset_timeout.as_secs_f64());
        series
    }

    pub(crate) fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    /// The service's operations as they are now.
    pub(crate) fn operations(&self) -> Arc<Operations> {
        Arc::clone(
            &self
                .operations
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Sets the operations (`names`, catalogue order) and whether real traffic reaches the
    /// service; a change of shape takes a new id, so no memo of the old text is sent again.
    fn shape(&self, names: Option<&[Arc<str>]>, carries_traffic: bool) {
        let mut operations = self
            .operations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let names: Vec<Arc<str>> = match names {
            Some(names) => names.to_vec(),
            None if operations.names().is_empty() => vec![Arc::from(crate::provider::OTHER)],
            None => operations.names().to_vec(),
        };
        if operations.is(&names, carries_traffic) {
            return;
        }
        // A service with no operations of its own and no real traffic has no series by
        // operation at all (10,000 checked endpoints keep none).
        let plain = names.len() == 1 && &*names[0] == crate::provider::OTHER;
        if plain && !carries_traffic {
            if !operations.names().is_empty() {
                *operations = Arc::clone(&NO_OPERATIONS);
                self.carries_traffic.store(false, Ordering::Relaxed);
                self.id
                    .store(NEXT_ID.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            }
            return;
        }
        *operations = Arc::new(Operations::new(
            &self.name,
            &names,
            carries_traffic,
            &operations,
        ));
        self.carries_traffic
            .store(carries_traffic, Ordering::Relaxed);
        self.id
            .store(NEXT_ID.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Reads every cell once (their sum means nothing), so a scrape that calls this for a
    /// block of services before writing them waits for the memory of all of them at once
    /// rather than for each cache line in turn as the lines are written.
    pub(crate) fn warm(&self) -> u64 {
        let cells = self
            .calls
            .iter()
            .chain([&self.slow_calls])
            .chain(&self.transitions)
            .chain(&self.probe_failures)
            .map(Counter::get);
        let histograms = self.durations.iter().map(LatencyHistogram::warm);
        let gauges = [&self.state, &self.consecutive_failures, &self.probe_success]
            .map(|gauge| gauge.get().unsigned_abs());
        let floats = [&self.timeout, &self.probe_last_run, &self.tls_not_after]
            .into_iter()
            .chain(&self.phases)
            .map(|gauge| gauge.get().to_bits());
        cells
            .chain(histograms)
            .chain(gauges)
            .chain(floats)
            .chain([u64::from(self.carries_traffic.load(Ordering::Relaxed))])
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn label(&self) -> &Padded {
        &self.label
    }

    pub(crate) fn state_index(&self) -> usize {
        usize::try_from(self.state.get()).unwrap_or(0)
    }

    /// Whether any answer was the caller's own outcome.
    pub(crate) fn has_caller_outcomes(&self) -> bool {
        self.has_caller_outcomes.load(Ordering::Relaxed)
    }

    /// Whether some operation has a breaker of its own.
    pub(crate) fn has_operation_states(&self) -> bool {
        self.has_operation_states.load(Ordering::Relaxed)
    }

    /// Whether real traffic reaches the service (its traffic series are written).
    pub(crate) fn carries_traffic(&self) -> bool {
        self.carries_traffic.load(Ordering::Relaxed)
    }

    /// The checks' calls by outcome.
    pub(crate) fn calls(&self) -> [u64; 4] {
        self.calls.each_ref().map(Counter::get)
    }

    /// The checks' latency histograms, by timed outcome.
    pub(crate) fn histograms(&self) -> impl Iterator<Item = (&'static str, &LatencyHistogram)> {
        TIMED_OUTCOMES.into_iter().zip(self.durations.iter())
    }

    /// The checks' slow calls.
    pub(crate) fn slow_calls(&self) -> u64 {
        self.slow_calls.get()
    }

    pub(crate) fn transitions(&self) -> [u64; TRANSITION_LABELS.len()] {
        self.transitions.each_ref().map(Counter::get)
    }

    pub(crate) fn consecutive_failures(&self) -> u64 {
        u64::try_from(self.consecutive_failures.get()).unwrap_or(0)
    }

    pub(crate) fn failure_threshold(&self) -> u64 {
        u64::try_from(self.failure_threshold.get()).unwrap_or(0)
    }

    pub(crate) fn timeout_seconds(&self) -> f64 {
        self.timeout.get()
    }

    pub(crate) fn reset_timeout_seconds(&self) -> f64 {
        self.reset_timeout.get()
    }

    pub(crate) fn next_attempt(&self) -> f64 {
        self.next_attempt.get()
    }

    pub(crate) fn probe_success(&self) -> u64 {
        u64::try_from(self.probe_success.get()).unwrap_or(0)
    }

    pub(crate) fn probe_last_run(&self) -> f64 {
        self.probe_last_run.get()
    }

    pub(crate) fn probe_interval(&self) -> f64 {
        self.probe_interval.get()
    }

    pub(crate) fn probe_http_status(&self) -> u64 {
        u64::try_from(self.probe_http_status.get()).unwrap_or(0)
    }

    pub(crate) fn phases(&self) -> [f64; PHASES.len()] {
        self.phases.each_ref().map(FloatGauge::get)
    }

    pub(crate) fn tls_not_after(&self) -> f64 {
        self.tls_not_after.get()
    }

    pub(crate) fn is_heartbeat(&self) -> bool {
        self.is_heartbeat.load(Ordering::Relaxed)
    }

    pub(crate) fn heartbeat_last(&self) -> f64 {
        self.heartbeat_last.get()
    }

    pub(crate) fn probe_failures(&self) -> [u64; FailureReason::ALL.len()] {
        self.probe_failures.each_ref().map(Counter::get)
    }

    pub(crate) fn missed_ticks(&self) -> u64 {
        self.missed_ticks.get()
    }

    pub(crate) fn skipped_for_traffic(&self) -> u64 {
        self.skipped_for_traffic.get()
    }
}

/// One service's metric handles: cheap to clone, recording is a few atomic operations.
#[derive(Clone, Debug)]
pub struct ServiceMetrics {
    pub(crate) series: Arc<ServiceSeries>,
    /// What the proxy counts of its own for the service (its cap, its fallback).
    proxy: Arc<super::proxying::ProxySeries>,
}

impl ServiceMetrics {
    /// The handles of one service, with every known label combination at zero and the
    /// configured values set; not exported until [`super::Metrics::adopt`] takes them.
    pub fn new(
        name: &str,
        failure_threshold: u32,
        timeout: Duration,
        reset_timeout: Duration,
    ) -> Self {
        Self {
            series: Arc::new(ServiceSeries::new(
                name,
                failure_threshold,
                timeout,
                reset_timeout,
            )),
            proxy: Arc::default(),
        }
    }

    /// What the proxy counts of its own for the service: calls in flight under its cap,
    /// refused for capacity, sent to its fallback.
    pub fn proxy(&self) -> &Arc<super::proxying::ProxySeries> {
        &self.proxy
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        self.series.name()
    }

    /// Counts one call of the breaker's `tag` (a check, or real traffic of an operation) and
    /// its latency.
    pub fn call(&self, tag: CallTag, outcome: Outcome, duration: Option<Duration>, slow: bool) {
        if let Some(operation) = Source::operation_of(tag) {
            let operations = self
                .series
                .operations
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(traffic) = operations.traffic(operation) {
                traffic.record(outcome, duration, slow);
            }
            return;
        }
        let Some(index) = outcome_index(outcome) else {
            return;
        };
        self.series.calls[index].inc();
        if let (Some(duration), Some(histogram)) = (duration, self.series.durations.get(index)) {
            histogram.observe(duration.as_secs_f64());
        }
        if slow {
            self.series.slow_calls.inc();
        }
    }

    /// Counts an answer that was the caller's own outcome, on operation `index`.
    pub fn caller_outcome(&self, operation: usize, kind: CallerKind) {
        self.series.operations().caller_outcome(operation, kind);
        self.series
            .has_caller_outcomes
            .store(true, Ordering::Relaxed);
    }

    /// Says whether real traffic can reach the service, so its `source="traffic"` series
    /// exist (at zero) or not.
    pub fn set_carries_traffic(&self, carries: bool) {
        self.series.shape(None, carries);
    }

    /// Sets the service's operations (catalogue order, `other` last): its traffic series are
    /// written by operation.
    pub fn set_operations(&self, names: &[Arc<str>]) {
        let carries = self.series.carries_traffic();
        self.series.shape(Some(names), carries);
    }

    /// Sets the state gauges and the next attempt.
    pub fn set_state(&self, state: State, next_attempt: Option<SystemTime>) {
        let index = state_label_index(state);
        self.series.state.set(i64::try_from(index).unwrap_or(0));
        self.series
            .next_attempt
            .set(next_attempt.map_or(0.0, unix_seconds));
    }

    /// Sets the state gauge of operation `index`'s own breaker (`breakers =
    /// "per_operation"`): written with an `operation` label beside the service's.
    pub fn set_operation_state(&self, index: usize, state: State) {
        self.series
            .operations()
            .set_state(index, state_label_index(state));
        self.series
            .has_operation_states
            .store(true, Ordering::Relaxed);
    }

    /// Counts a change of state.
    pub fn transition(&self, from: State, to: State) {
        let pair = (
            super::STATE_LABELS[state_label_index(from)],
            super::STATE_LABELS[state_label_index(to)],
        );
        if let Some(index) = TRANSITION_LABELS.iter().position(|known| *known == pair) {
            self.series.transitions[index].inc();
        }
    }

    /// Sets the consecutive-failures gauge.
    pub fn set_consecutive_failures(&self, count: u32) {
        self.series.consecutive_failures.set(i64::from(count));
    }

    /// Records a check that ran: success, or failure with its reason.
    pub fn probe(&self, failure: Option<FailureReason>, at: SystemTime) {
        self.series.probe_success.set(i64::from(failure.is_none()));
        self.series.probe_last_run.set(unix_seconds(at));
        if let Some(reason) = failure
            && let Some(index) = FailureReason::ALL.iter().position(|known| *known == reason)
        {
            self.series.probe_failures[index].inc();
        }
    }

    /// Records where the last HTTP check's time went.
    pub fn probe_phases(&self, phases: &crate::outcome::Phases) {
        for (gauge, took) in self.series.phases.iter().zip(phases.durations()) {
            gauge.set(took.as_secs_f64());
        }
    }

    /// Records the end of the validity of the certificate a check saw.
    pub fn tls_not_after(&self, not_after: SystemTime) {
        self.series.tls_not_after.set(unix_seconds(not_after));
    }

    /// Records the HTTP status of the last check's answer (0 when none came).
    pub fn probe_http_status(&self, status: Option<u16>) {
        self.series
            .probe_http_status
            .set(i64::from(status.unwrap_or(0)));
    }

    /// Records a scheduled check that the breaker rejected: the schedule ran, the provider
    /// was not asked, so the last result stands.
    pub fn probe_scheduled(&self, at: SystemTime) {
        self.series.probe_last_run.set(unix_seconds(at));
    }

    /// Sets the configured values (after a reload changed them).
    pub fn set_policy(&self, failure_threshold: u32, timeout: Duration, reset_timeout: Duration) {
        self.series
            .failure_threshold
            .set(i64::from(failure_threshold));
        self.series.timeout.set(timeout.as_secs_f64());
        self.series.reset_timeout.set(reset_timeout.as_secs_f64());
    }

    /// Marks the service as a heartbeat (or not), so its last beat is exported.
    pub fn set_heartbeat(&self, is_heartbeat: bool) {
        self.series
            .is_heartbeat
            .store(is_heartbeat, Ordering::Relaxed);
    }

    /// Records when the last heartbeat came.
    pub fn heartbeat_seen(&self, at: SystemTime) {
        self.series.heartbeat_last.set(unix_seconds(at));
    }

    /// Sets the time between two scheduled checks (rules use it to spot a stale check).
    pub fn set_probe_interval(&self, interval: Duration) {
        self.series.probe_interval.set(interval.as_secs_f64());
    }

    /// Counts scheduled checks skipped because the previous one was still running.
    pub fn missed_ticks(&self, count: u64) {
        self.series.missed_ticks.inc_by(count);
    }

    /// Counts a scheduled check skipped because real traffic had judged the provider within
    /// the last period (`checks = "when_idle"`).
    pub fn skipped_for_traffic(&self) {
        self.series.skipped_for_traffic.inc();
    }
}

/// The metric's state label for a breaker state: forced open counts as open, disabled as
/// closed (calls pass).
fn state_label_index(state: State) -> usize {
    match state {
        State::Closed | State::Disabled => 0,
        State::Open | State::ForcedOpen => 1,
        State::HalfOpen => 2,
    }
}
