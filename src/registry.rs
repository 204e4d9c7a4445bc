//! The running services: for each configured service its breaker, its probe, its metric
//! handles and its recent checks, built from a validated config.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use serde::Serialize;

use crate::breaker::{
    Breaker, CallRecord, Outcome, Policy, PolicyError, Snapshot, State, TransitionBus,
};
use crate::bulkhead::Bulkhead;
use crate::config::{BreakerScope, Config, Schedule, ServerConfig, ServiceConfig, format_duration};
use crate::metrics::{Metrics, ServiceMetrics, Source};
use crate::observe;
use crate::outcome::Verdict;
use crate::outcome::{Cause, FailureReason, ProbeError};
use crate::probe::{HttpClient, Probe};
use crate::provider::{CatalogueEntry, Judge, Judgement};
use crate::transport::upstream::Upstream;

mod operations;

pub use operations::{OperationBreaker, OperationBreakers};

/// Checks remembered per service, for latency percentiles and the last result.
pub const RECENT_CHECKS: usize = 120;
/// Transitions a breaker keeps for a subscriber that falls behind. Only the scheduler
/// subscribes, while its breaker is in an outage, to run the trial as soon as it half-opens;
/// when it falls behind it reads the state instead.
const EVENT_CAPACITY: usize = 4;

/// One check's result, as the API shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRecord {
    /// When it started.
    #[serde(serialize_with = "serialize_time")]
    pub at: SystemTime,
    /// `success`, `failure`, `timeout` or `rejected`.
    pub outcome: Outcome,
    /// How long it took, in milliseconds (0 when rejected).
    pub duration_ms: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// What happened, in words (shared with the checks before it that said the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Arc<str>>,
    /// A remark on a passed check (quality rating, balance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The HTTP status of the answer, for checks that got one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The certificate the server presented, for HTTPS checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::probe::CertificateInfo>,
    /// Where an HTTP check's time went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<crate::outcome::Phases>,
}

fn serialize_time<S: serde::Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_rfc3339_millis(*time).to_string())
}

/// What the charts and percentiles keep of each recent check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckSample {
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in milliseconds (0 when rejected).
    pub duration_ms: f64,
}

/// A service's recent checks: the last one in full, the others as samples (a full record is
/// ten times larger, and 10,000 services keep 120 each).
#[derive(Clone, Debug, Default)]
struct Recent {
    last: Option<CheckRecord>,
    samples: VecDeque<Sample>,
}

/// A [`CheckSample`] as kept: 8 bytes instead of 16. A check lasts at most an hour, which
/// `f32` milliseconds hold to a fraction of a millisecond (and a 300 ms check to a
/// nanosecond); 10,000 services keep 120 each.
#[derive(Clone, Copy, Debug)]
struct Sample {
    duration_ms: f32,
    outcome: Outcome,
}

impl Sample {
    fn of(check: &CheckRecord) -> Self {
        Self {
            // Rounding to the nearest f32 is the point.
            duration_ms: check.duration_ms as f32,
            outcome: check.outcome,
        }
    }

    fn duration_ms(self) -> f64 {
        f64::from(self.duration_ms)
    }
}

/// Latency percentiles of recent checks, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One configured service, running.
#[derive(Debug)]
pub struct Service {
    /// Its validated config.
    pub config: ServiceConfig,
    /// Its breaker: every call's, or with `breakers = "per_operation"` those of no operation
    /// of its catalogue (`other`) and a check of none.
    pub breaker: Breaker,
    /// With `breakers = "per_operation"`, a breaker per operation of its catalogue.
    pub operation_breakers: OperationBreakers,
    /// Its synthetic check.
    pub probe: Probe,
    /// How its answers are judged: its catalogue and rules, shared by the check, the proxy
    /// and the outcome API.
    pub judge: Judge,
    /// Its metric handles.
    pub metrics: ServiceMetrics,
    /// The slow-call threshold the outcome hook logs against (changes on reload).
    slow_call_ms: Arc<AtomicU64>,
    /// The last real failure; written before the breaker hears of it, so whoever receives the
    /// transition it causes reads it.
    last_failure: Arc<Mutex<Option<Cause>>>,
    recent: Mutex<Recent>,
    /// When real traffic last gave the breaker an outcome (for `checks = "when_idle"`).
    last_traffic: Arc<TrafficClock>,
    /// Held while a check runs, so scheduled and on-demand checks never overlap.
    pub run_lock: tokio::sync::Mutex<()>,
    /// What the proxy forwards its real calls with (trusting its `ca_file`).
    upstream: Option<Upstream>,
    /// Its cap on proxied calls in flight (`max_concurrent`), if any.
    bulkhead: Option<Arc<Bulkhead>>,
}

impl Service {
    /// The slow-call threshold in force (kept current across reloads), if any.
    pub fn slow_call(&self) -> Option<Duration> {
        match self.slow_call_ms.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        }
    }

    /// Builds the breaker (with the outcome hook that feeds metrics and the slow-call log),
    /// the probe and the metric handles of `config`. Nothing runs and nothing is exported
    /// until the caller starts it and [`Metrics::adopt`]s its handles.
    ///
    /// # Errors
    /// A policy the breaker refuses, or a `ca_file` TLS will not trust.
    pub fn new(
        config: ServiceConfig,
        server: &ServerConfig,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        Self::on_bus(config, server, client, None)
    }

    /// As [`Self::new`], with the breaker sending its transitions to `bus` when one is given.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn on_bus(
        config: ServiceConfig,
        server: &ServerConfig,
        client: HttpClient,
        bus: Option<&TransitionBus>,
    ) -> Result<Self, BuildError> {
        let client = client_for(&config, client)?;
        let slow_call = server.slow_call;
        let handles = ServiceMetrics::new(
            &config.name,
            config.policy.failure_threshold,
            config.policy.timeout,
            config.policy.reset_timeout,
        );
        handles.set_probe_interval(schedule_interval(&config.schedule));
        let judge = judge_of(&config);
        handles.set_operations(judge.operation_names());
        handles.set_carries_traffic(carries_traffic(&config, server));
        handles.set_heartbeat(matches!(config.check, crate::config::Check::Heartbeat(_)));
        let policy = effective_policy(&config, slow_call);
        let slow_call_ms = Arc::new(AtomicU64::new(slow_call_millis(&policy)));
        let hook_metrics = handles.clone();
        let hook_slow_call = Arc::clone(&slow_call_ms);
        let last_failure: Arc<Mutex<Option<Cause>>> = Arc::default();
        let hook_last_failure = Arc::clone(&last_failure);
        let last_traffic = Arc::new(TrafficClock::default());
        let hook_last_traffic = Arc::clone(&last_traffic);
        let hook = move |record: &CallRecord| {
            let slow_call = Duration::from_millis(hook_slow_call.load(Ordering::Relaxed));
            observe::call(&hook_metrics, record, slow_call);
            if Source::of(record.tag) == Source::Traffic
                && matches!(
                    record.outcome,
                    Outcome::Success | Outcome::Failure | Outcome::Timeout
                )
            {
                hook_last_traffic.touch();
            }
            // A timed-out check never returns its own error: the hook, which runs before
            // the breaker moves, records why.
            if record.outcome == Outcome::Timeout {
                let waited = record.duration.unwrap_or_default().as_millis();
                *lock(&hook_last_failure) = Some(Cause::plain(
                    FailureReason::Timeout,
                    format!("no answer within {waited} ms"),
                    crate::wall::now(),
                ));
            }
        };
        let operation_breakers = match config.breakers {
            BreakerScope::PerService => OperationBreakers::default(),
            BreakerScope::PerOperation => OperationBreakers::build(
                &config.name,
                catalogued(&judge),
                &policy,
                bus,
                EVENT_CAPACITY,
                &hook,
            )?,
        };
        let mut breaker = Breaker::builder(config.name.as_str())
            .policy(policy)
            .event_capacity(EVENT_CAPACITY);
        if let Some(bus) = bus {
            breaker = breaker.bus(bus);
        }
        let breaker = breaker.on_outcome(hook).build()?;
        handles.proxy().set_max_concurrent(bulkhead_limit(&config));
        handles.proxy().set_fallback(config.fallback.as_deref());
        Ok(Self {
            bulkhead: config
                .bulkhead
                .map(|cap| Arc::new(Bulkhead::new(cap, Arc::clone(handles.proxy())))),
            operation_breakers,
            upstream: Upstream::of(client.transport().proxy(), config.upstream.as_ref()),
            probe: Probe::new(config.check.clone(), client, judge.clone()),
            judge,
            config,
            breaker,
            metrics: handles,
            slow_call_ms,
            last_failure,
            recent: Mutex::default(),
            last_traffic,
            run_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The same service under a changed `config`, sharing `previous`'s breaker, series, last
    /// failure and traffic clock; `previous` runs on untouched until [`Self::take_over`].
    ///
    /// # Errors
    /// A policy `previous`'s breaker cannot take in place ([`PolicyError::NeedsNewBreaker`]:
    /// build a new service instead), or a `ca_file` TLS will not trust.
    pub fn reconfigured(
        previous: &Service,
        config: ServiceConfig,
        server: &ServerConfig,
        client: HttpClient,
    ) -> Result<Self, BuildError> {
        let policy = effective_policy(&config, server.slow_call);
        previous.breaker.check_policy(&policy)?;
        previous.operation_breakers.check_policy(&policy)?;
        let judge = judge_of(&config);
        let operations = match config.breakers {
            BreakerScope::PerService => &[][..],
            BreakerScope::PerOperation => catalogued(&judge),
        };
        if !previous.operation_breakers.are_of(operations) {
            // Other operations: a new service builds their breakers; the service's own keeps
            // its state (restored from `previous`).
            return Err(BuildError::Policy(PolicyError::NeedsNewBreaker));
        }
        let client = client_for(&config, client)?;
        let upstream = Upstream::of(client.transport().proxy(), config.upstream.as_ref());
        let mut probe = Probe::new(config.check.clone(), client, judge.clone());
        probe.keep_beats_of(&previous.probe);
        // Calls in flight keep their slots; a changed cap starts with fresh ones.
        let bulkhead = match (&previous.bulkhead, config.bulkhead) {
            (Some(kept), Some(cap)) if kept.config() == cap => Some(Arc::clone(kept)),
            (_, Some(cap)) => Some(Arc::new(Bulkhead::new(
                cap,
                Arc::clone(previous.metrics.proxy()),
            ))),
            (_, None) => None,
        };
        Ok(Self {
            bulkhead,
            upstream,
            probe,
            judge,
            config,
            breaker: previous.breaker.clone(),
            operation_breakers: previous.operation_breakers.clone(),
            metrics: previous.metrics.clone(),
            slow_call_ms: Arc::clone(&previous.slow_call_ms),
            last_failure: Arc::clone(&previous.last_failure),
            recent: Mutex::default(),
            last_traffic: Arc::clone(&previous.last_traffic),
            run_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Puts this service, built by [`Self::reconfigured`] from `previous`, in force: the
    /// shared breaker takes the new policy, the series the new configured values, and the
    /// recent checks carry over unless the check changed. Cannot fail: the build checked.
    pub fn take_over(&self, previous: &Service, server: &ServerConfig) {
        let policy = effective_policy(&self.config, server.slow_call);
        if let Err(refused) = self.breaker.update_policy(&policy) {
            // `reconfigured` asked the breaker first; only a bug gets here.
            tracing::error!(
                service = self.name(),
                "the new policy was not applied: {refused}"
            );
        }
        self.operation_breakers.update_policy(&policy);
        self.slow_call_ms
            .store(slow_call_millis(&policy), Ordering::Relaxed);
        let metrics = &self.metrics;
        metrics.set_policy(
            self.config.policy.failure_threshold,
            self.config.policy.timeout,
            self.config.policy.reset_timeout,
        );
        metrics.set_probe_interval(schedule_interval(&self.config.schedule));
        metrics.set_heartbeat(matches!(
            self.config.check,
            crate::config::Check::Heartbeat(_)
        ));
        metrics.set_operations(self.judge.operation_names());
        metrics.set_carries_traffic(carries_traffic(&self.config, server));
        metrics
            .proxy()
            .set_max_concurrent(bulkhead_limit(&self.config));
        metrics
            .proxy()
            .set_fallback(self.config.fallback.as_deref());
        if previous.config.check == self.config.check {
            *lock(&self.recent) = lock(&previous.recent).clone();
        }
    }

    /// The breaker calls of the operation at `index` of the catalogue go through: its own
    /// with `breakers = "per_operation"`, else (and for `other`) the service's.
    pub fn breaker_for(&self, index: u8) -> &Breaker {
        self.operation_breakers.get(index).unwrap_or(&self.breaker)
    }

    /// The breaker the synthetic check goes through: that of the operation it calls.
    pub fn check_breaker(&self) -> &Breaker {
        if self.operation_breakers.is_empty() {
            return &self.breaker;
        }
        let operation = match (self.judge.provider(), &self.config.check) {
            (Some(provider), _) => self.judge.named(provider.check_operation),
            (None, crate::config::Check::Http(http)) => self.judge.operation(
                http.method.as_str(),
                self.judge.relative_path(http.url.path()),
            ),
            (None, _) => return &self.breaker,
        };
        self.breaker_for(operation.index)
    }

    /// Where real calls go, with the client they go out with (the proxy's, trusting its
    /// `ca_file`), when it has an upstream.
    pub(crate) fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    /// Its cap on proxied calls in flight (`max_concurrent`), if any.
    pub fn bulkhead(&self) -> Option<&Bulkhead> {
        self.bulkhead.as_deref()
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Puts the breaker and the last failure where a previous run (or the service this one
    /// replaces) left them. Returns the breaker's state now.
    pub fn restore(&self, breaker: &Snapshot, last_failure: Option<Cause>) -> State {
        *lock(&self.last_failure) = last_failure;
        self.breaker.restore(breaker)
    }

    /// Records a real failure of the provider, before the breaker hears of it.
    pub fn note_failure(&self, error: &ProbeError) {
        *lock(&self.last_failure) = Some(Cause::of(error, crate::wall::now()));
    }

    /// Does what a judged answer asks before the breaker hears of it: counts a caller's own
    /// outcome, notes a failure (its texts freed of this service's secrets and of `secrets`,
    /// those a proxied request carried) and holds the next trial back as long as a throttling
    /// provider asked. Returns what to tell the breaker.
    pub fn settle(&self, judgement: &Judgement, secrets: &[String]) -> Settled {
        match judgement.verdict {
            Verdict::Success => Settled::Success,
            Verdict::Caller(kind) => {
                let operation = self.judge.named(&judgement.operation);
                self.metrics
                    .caller_outcome(usize::from(operation.index), kind);
                Settled::Ignored
            }
            Verdict::Failure(_) => {
                let mut failure = judgement.failure().unwrap_or_else(|| {
                    ProbeError::new(FailureReason::Body, judgement.detail.clone())
                });
                self.probe.redact(&mut failure, secrets);
                if let Some(wait) = failure.retry_after {
                    let operation = self.judge.named(&judgement.operation);
                    self.breaker_for(operation.index).defer_next_trial(wait);
                }
                self.note_failure(&failure);
                Settled::Failure(failure)
            }
        }
    }

    /// The last real failure (not a rejection by the breaker), if any since start.
    pub fn last_failure(&self) -> Option<Cause> {
        lock(&self.last_failure).clone()
    }

    /// Whether real traffic gave the breaker an outcome within the last `period`.
    pub fn traffic_within(&self, period: Duration) -> bool {
        self.last_traffic.within(period)
    }

    /// The time between two scheduled checks; for cron, between its next two times.
    pub fn check_period(&self) -> Duration {
        schedule_interval(&self.config.schedule)
    }

    /// The schedule in words: `every 30s` or the cron expression.
    pub fn schedule_text(&self) -> String {
        match &self.config.schedule {
            Schedule::Every(period) => format!("every {}", format_duration(*period)),
            Schedule::Cron { expression, .. } => format!("cron {expression}"),
        }
    }

    /// Remembers a check.
    pub fn remember(&self, mut record: CheckRecord) {
        let mut recent = lock(&self.recent);
        // A provider that stays down says the same thing check after check: keep it once.
        if let (Some(detail), Some(previous)) = (
            &record.detail,
            recent.last.as_ref().and_then(|last| last.detail.as_ref()),
        ) && detail == previous
        {
            record.detail = Some(Arc::clone(previous));
        }
        if recent.samples.len() == RECENT_CHECKS {
            recent.samples.pop_front();
        }
        recent.samples.push_back(Sample::of(&record));
        recent.last = Some(record);
    }

    /// The most recent check.
    pub fn last_check(&self) -> Option<CheckRecord> {
        lock(&self.recent).last.clone()
    }

    /// The outcome and duration of the recent checks, oldest first.
    pub fn recent_checks(&self) -> Vec<CheckSample> {
        lock(&self.recent)
            .samples
            .iter()
            .map(|sample| CheckSample {
                outcome: sample.outcome,
                duration_ms: sample.duration_ms(),
            })
            .collect()
    }

    /// Latency percentiles over the recent checks that ran.
    pub fn latency(&self) -> Percentiles {
        let mut durations: Vec<f64> = lock(&self.recent)
            .samples
            .iter()
            .filter(|check| check.outcome != Outcome::Rejected)
            .map(|check| check.duration_ms())
            .collect();
        durations.sort_by(f64::total_cmp);
        Percentiles {
            p50: percentile(&durations, 50.0),
            p95: percentile(&durations, 95.0),
            p99: percentile(&durations, 99.0),
        }
    }

    /// Refreshes the gauges that mirror the breaker's live state (called before a scrape).
    /// Reads the three without the breaker's lock: a scrape of 10,000 services does this
    /// 10,000 times.
    pub fn refresh_gauges(&self) {
        let state = self.breaker.state();
        let next_attempt = if state == State::Open {
            self.breaker.next_attempt()
        } else {
            None
        };
        self.metrics.set_state(state, next_attempt);
        self.metrics
            .set_consecutive_failures(self.breaker.consecutive_failures());
        for (index, operation) in self.operation_breakers.iter().enumerate() {
            self.metrics
                .set_operation_state(index, operation.breaker.state());
        }
    }
}

/// When real traffic last gave a breaker an outcome, on tokio's clock; written by the outcome
/// hook, read by the scheduler.
#[derive(Debug)]
struct TrafficClock {
    origin: Instant,
    /// Milliseconds after `origin`, plus one; 0 while no real call has finished.
    last: AtomicU64,
}

impl Default for TrafficClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl TrafficClock {
    fn touch(&self) {
        let millis = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(millis + 1, Ordering::Relaxed);
    }

    fn within(&self, period: Duration) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            last => {
                let at = self.origin + Duration::from_millis(last - 1);
                Instant::now().saturating_duration_since(at) < period
            }
        }
    }
}

/// What to tell a breaker about a judged answer (see [`Service::settle`]).
#[derive(Debug)]
pub enum Settled {
    /// The provider worked.
    Success,
    /// The caller's own outcome: nothing for the breaker.
    Ignored,
    /// Counts against the service.
    Failure(ProbeError),
}

/// The judge of a configured service: its provider's catalogue and rules (with those its
/// settings and values make), its own rules first.
pub fn judge_of(config: &ServiceConfig) -> Judge {
    match config.check.provider() {
        Some(check) => Judge::new(
            Some(check.provider),
            (check.provider.service_operations)(check),
            config.rules.clone(),
            (check.provider.settings_rules)(&check.settings),
            check.base_url.path(),
        ),
        None => Judge::new(
            None,
            config
                .operations
                .iter()
                .map(|operation| CatalogueEntry {
                    name: Arc::clone(&operation.name),
                    method: None,
                    path: operation.path.clone(),
                })
                .collect(),
            config.rules.clone(),
            Vec::new(),
            config
                .upstream
                .as_ref()
                .map_or("", |upstream| upstream.path()),
        ),
    }
}

/// The `max_concurrent` of `config`, if it has one.
fn bulkhead_limit(config: &ServiceConfig) -> Option<u32> {
    config.bulkhead.map(|cap| cap.max_concurrent)
}

/// The operations of `judge`'s catalogue that get a breaker of their own: all but `other`.
fn catalogued(judge: &Judge) -> &[Arc<str>] {
    let names = judge.operation_names();
    &names[..names.len().saturating_sub(1)]
}

/// Whether real calls can reach `service`: through the proxy (it has an upstream) or reported
/// by an application (a report token applies).
pub fn carries_traffic(service: &ServiceConfig, server: &ServerConfig) -> bool {
    (server.proxy_listen.is_some() && service.upstream.is_some())
        || service.report_token.is_some()
        || server.report_token.is_some()
}

/// The breaker policy of `config`, with the daemon-wide slow-call duration unless the service
/// sets its own. The daemon-wide `server.slow_call = "0s"` turns slow-call logging off.
pub fn effective_policy(config: &ServiceConfig, slow_call: Duration) -> Policy {
    let mut policy = config.policy.clone();
    if !slow_call.is_zero() {
        policy.slow_call_duration.get_or_insert(slow_call);
    }
    policy
}

fn slow_call_millis(policy: &Policy) -> u64 {
    policy
        .slow_call_duration
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time between two scheduled checks; for cron, between its next two times.
fn schedule_interval(schedule: &Schedule) -> Duration {
    match schedule {
        Schedule::Every(period) => *period,
        Schedule::Cron { schedule, .. } => {
            let mut upcoming = schedule.upcoming(chrono::Utc);
            match (upcoming.next(), upcoming.next()) {
                (Some(first), Some(second)) => (second - first).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared client, or one that also trusts the service's `ca_file`; keeping connections
/// only with `reuse_connections = true`.
fn client_for(config: &ServiceConfig, shared: HttpClient) -> Result<HttpClient, BuildError> {
    let client = match &config.ca {
        None => shared,
        Some(ca) => shared
            .trusting(ca.certificates.clone())
            .map_err(|refused| BuildError::CaFile {
                path: ca.path.clone(),
                reason: refused.to_string(),
            })?,
    };
    Ok(if config.reuse_connections {
        client
    } else {
        client.fresh_connections()
    })
}

/// The nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[f64], percent: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Why a service could not be built from its (validated) config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The breaker refused the policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// TLS would not trust the certificates of `ca_file`.
    #[error("ca_file {path}: TLS does not accept these certificates: {reason}")]
    CaFile {
        /// The file, as the config names it.
        path: String,
        /// What TLS said.
        reason: String,
    },
}

/// A service that could not be built, by name.
#[derive(Debug, thiserror::Error)]
#[error("services.{service}: {error}")]
pub struct ServiceBuildError {
    /// The service.
    pub service: String,
    /// Why.
    #[source]
    pub error: BuildError,
}

impl ServiceBuildError {
    /// `error`, of the service named `service`.
    pub fn of(service: &str, error: BuildError) -> Self {
        Self {
            service: service.to_string(),
            error,
        }
    }
}

/// Every running service, by name.
#[derive(Debug, Default)]
pub struct Registry {
    services: BTreeMap<String, Arc<Service>>,
}

impl Registry {
    /// Builds every service of `config` and exports their series.
    ///
    /// # Errors
    /// The first service that cannot be built, named.
    pub fn build(
        config: &Config,
        client: &HttpClient,
        metrics: &Metrics,
    ) -> Result<Self, ServiceBuildError> {
        let mut services = BTreeMap::new();
        for service in &config.services {
            let built = Service::new(service.clone(), &config.server, client.clone())
                .map_err(|error| ServiceBuildError::of(&service.name, error))?;
            services.insert(service.name.clone(), Arc::new(built));
        }
        for service in services.values() {
            metrics.adopt(&service.metrics);
        }
        Ok(Self { services })
    }

    /// A registry of these services.
    pub fn from_services(services: impl IntoIterator<Item = Arc<Service>>) -> Self {
        Self {
            services: services
                .into_iter()
                .map(|service| (service.name().to_string(), service))
                .collect(),
        }
    }

    /// The service named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Service>> {
        self.services.get(name)
    }

    /// Every service, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services.values()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }

    /// How many services there are.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 95.0), 95.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
