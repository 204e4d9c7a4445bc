//! Every metric name breakerd exports, and the only place they are written. Callers get a
//! [`ServiceMetrics`] handle per service (resolved once, so recording a call is a few atomic
//! operations) and never touch a metric family directly. Per-service families are stored in
//! plain atomic cells and written by a dedicated writer (10,000 services in tens of
//! milliseconds); process-wide families go through prometheus-client's registry.

mod cell;
mod exposition;
mod histogram;
mod memo;
mod operations;
mod proxying;
mod service;
pub mod state_faults;
mod text;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::breaker::Outcome;
use exposition::FAMILIES;
pub use exposition::Format;
pub use memo::Piece;
use memo::{MAX_RUNS, Memos, RunMemo, Scratch, write_run};
pub use proxying::{FallbackOutcome, ProxySeries};
use service::ServiceSeries;
pub use service::{ServiceMetrics, Source};
use text::Text;

/// Latency buckets, 5 ms to 60 s.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// The `state` label values.
pub const STATE_LABELS: [&str; 3] = ["closed", "open", "half_open"];
/// The `outcome` label values of `breakerd_calls_total`.
pub const OUTCOME_LABELS: [&str; 4] = ["success", "failure", "timeout", "rejected"];
/// The place of `outcome` among the `outcome` labels; `None` for an ignored result, which is
/// not a provider outcome (the breaker's stats count it).
pub(crate) fn outcome_index(outcome: Outcome) -> Option<usize> {
    match outcome {
        Outcome::Success => Some(0),
        Outcome::Failure => Some(1),
        Outcome::Timeout => Some(2),
        Outcome::Rejected => Some(3),
        Outcome::Ignored => None,
    }
}
/// How a notification's delivery to one channel ended: the `outcome` label of
/// `breakerd_alerts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    /// Delivered.
    Sent,
    /// Given up (a permanent error, or every attempt used).
    Failed,
    /// Never attempted: the channel's queue was full, or the channel was gone.
    Dropped,
}

impl AlertOutcome {
    /// Every value, for series that start at zero.
    pub const ALL: [AlertOutcome; 3] = [
        AlertOutcome::Sent,
        AlertOutcome::Failed,
        AlertOutcome::Dropped,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertOutcome::Sent => "sent",
            AlertOutcome::Failed => "failed",
            AlertOutcome::Dropped => "dropped",
        }
    }
}

/// How one delivery attempt went: the `outcome` label of `breakerd_alert_attempts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The channel took it.
    Ok,
    /// It did not (it may be retried).
    Failed,
}

impl AttemptOutcome {
    /// Every value, for series that start at zero.
    pub const ALL: [AttemptOutcome; 2] = [AttemptOutcome::Ok, AttemptOutcome::Failed];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Failed => "failed",
        }
    }
}
/// The `(from, to)` pairs of `breakerd_state_transitions_total` present from start-up.
pub const TRANSITION_LABELS: [(&str, &str); 5] = [
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
    ("open", "closed"),
];
/// The `reason` of `breakerd_proxy_local_errors_total` when breakerd ran out of file
/// descriptors (EMFILE, ENFILE).
pub const PROXY_DESCRIPTORS: &str = "descriptors";
/// The `reason` of `breakerd_proxy_local_errors_total` when the proxy was already forwarding
/// as many calls as its share of the descriptors allows.
pub const PROXY_CAPACITY: &str = "capacity";
/// The token-guarded routes whose `breakerd_auth_failures_total` exists from start-up (the
/// other admin routes appear with their first failure).
pub const AUTH_ROUTES: [&str; 3] = [
    "/api/v1/circuit-breakers/{serviceName}/outcomes",
    "/api/v1/heartbeat/{serviceName}",
    "/api/v1/circuit-breakers/{serviceName}/reset",
];
/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcomeLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: String,
    shards: String,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    /// Per-service series, by service name (the order they are written in).
    services: RwLock<BTreeMap<String, Arc<ServiceSeries>>>,
    /// Process-wide families.
    registry: Registry,
    alerts: Family<ChannelOutcomeLabels, Counter>,
    alert_attempts: Family<ChannelOutcomeLabels, Counter>,
    alert_queue_depth: Family<ChannelLabel, Gauge>,
    alert_last_success: Family<ChannelLabel, FloatGauge>,
    reload_successful: Gauge,
    reload_success_time: FloatGauge,
    task_panics: Family<TaskLabel, Counter>,
    transitions_folded: Counter,
    connections_open: Gauge,
    connections_refused: Counter,
    accept_errors: Counter,
    proxy_local_errors: Family<ReasonLabel, Counter>,
    auth_failures: Family<RouteLabel, Counter>,
    /// Failed writes of the state files, and the current fault of each kind.
    state_faults: state_faults::StateFaults,
    offline: Gauge,
    shard: Family<ShardLabels, Gauge>,
    /// What the last exposition was written from, and its texts.
    memos: Memos,
    /// Services whose pages are held, and why (as the alert stage last published).
    held: RwLock<Arc<HeldServices>>,
    /// The proxy's own series of each service (written by a collector on each scrape).
    proxying: proxying::ProxyCollector,
}

/// Which services a maintenance window or a silence covers now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldServices {
    /// Services in a maintenance window.
    pub maintenance: std::collections::BTreeSet<String>,
    /// Services under a silence.
    pub silenced: std::collections::BTreeSet<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the process-wide families under the `breakerd_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("breakerd");
        let alerts: Family<ChannelOutcomeLabels, Counter> = Family::default();
        let reload_successful = Gauge::default();
        let reload_success_time = FloatGauge::default();
        registry.register(
            "alerts",
            "Alert notifications, by channel and outcome",
            alerts.clone(),
        );
        let alert_attempts: Family<ChannelOutcomeLabels, Counter> = Family::default();
        registry.register(
            "alert_attempts",
            "Alert delivery attempts, by channel and outcome (ok, failed); retries included",
            alert_attempts.clone(),
        );
        let alert_queue_depth: Family<ChannelLabel, Gauge> = Family::default();
        registry.register(
            "alert_queue_depth",
            "Notifications waiting in a channel's queue",
            alert_queue_depth.clone(),
        );
        let alert_last_success: Family<ChannelLabel, FloatGauge> = Family::default();
        registry.register_with_unit(
            "alert_last_success_timestamp",
            "When a channel last delivered a notification (Unix time)",
            Unit::Seconds,
            alert_last_success.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            reload_successful.clone(),
        );
        registry.register_with_unit(
            "config_last_reload_success_timestamp",
            "Timestamp of the last successful configuration reload",
            Unit::Seconds,
            reload_success_time.clone(),
        );
        let task_panics: Family<TaskLabel, Counter> = Family::default();
        for kind in crate::tasks::kind::TaskKind::ALL {
            drop(task_panics.get_or_create(&TaskLabel {
                task: kind.as_str().to_string(),
            }));
        }
        registry.register(
            "task_panics",
            "Long-lived tasks that panicked (each was logged and started again, or went on with its next step)",
            task_panics.clone(),
        );
        let transitions_folded = Counter::default();
        registry.register(
            "transitions_folded",
            "Breaker transitions folded into their neighbours on the way to the alert stage, which had fallen behind (each fold is logged; outage edges are kept)",
            transitions_folded.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "http_connections",
            "Inbound HTTP connections open now",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Inbound HTTP connections closed at once because server.max_connections were open",
            connections_refused.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "http_accept_errors",
            "Inbound HTTP connections that could not be accepted (breakerd out of file descriptors, most likely); logged now and then",
            accept_errors.clone(),
        );
        let proxy_local_errors: Family<ReasonLabel, Counter> = Family::default();
        for reason in [PROXY_DESCRIPTORS, PROXY_CAPACITY] {
            drop(proxy_local_errors.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            }));
        }
        registry.register(
            "proxy_local_errors",
            "Proxied calls breakerd could not make for want of its own resources (reason descriptors: out of file descriptors; capacity: the proxy's share of them in use); never counted against the provider",
            proxy_local_errors.clone(),
        );
        let auth_failures: Family<RouteLabel, Counter> = Family::default();
        for route in AUTH_ROUTES {
            drop(auth_failures.get_or_create(&RouteLabel {
                route: route.to_string(),
            }));
        }
        registry.register(
            "auth_failures",
            "Requests to a token-guarded route with a wrong or missing bearer token, by route (20 a minute from one address get it answered 429 for a minute)",
            auth_failures.clone(),
        );
        let state_faults = state_faults::StateFaults::registered(&mut registry);
        let offline = Gauge::default();
        registry.register(
            "offline",
            "1 while the connectivity guard (server.connectivity) reaches none of its targets: provider pages are held",
            offline.clone(),
        );
        let shard: Family<ShardLabels, Gauge> = Family::default();
        registry.register(
            "shard_info",
            "The shard this replica runs (shard of shards, from 0; 0 of 1 when not sharded); always 1",
            shard.clone(),
        );
        let build_info: Family<VersionLabel, Gauge> = Family::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "breakerd's version; always 1", build_info);
        let proxying = proxying::ProxyCollector::default();
        registry.register_collector(Box::new(proxying.clone()));
        Self {
            services: RwLock::default(),
            registry,
            alerts,
            alert_attempts,
            alert_queue_depth,
            alert_last_success,
            reload_successful,
            reload_success_time,
            task_panics,
            transitions_folded,
            connections_open,
            connections_refused,
            accept_errors,
            proxy_local_errors,
            auth_failures,
            state_faults,
            offline,
            shard,
            memos: Memos::default(),
            held: RwLock::default(),
            proxying,
        }
    }

    /// The handles of one service, with every known label combination at zero and the
    /// configured values set. A service registered again replaces the old series.
    pub fn service(
        &self,
        name: &str,
        failure_threshold: u32,
        timeout: Duration,
        reset_timeout: Duration,
    ) -> ServiceMetrics {
        let handles = ServiceMetrics::new(name, failure_threshold, timeout, reset_timeout);
        self.adopt(&handles);
        handles
    }

    /// Exports the series of `handles` under its service's name, replacing any series that
    /// name had.
    pub fn adopt(&self, handles: &ServiceMetrics) {
        self.services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handles.name().to_string(), Arc::clone(&handles.series));
        self.proxying
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handles.name().to_string(), Arc::clone(handles.proxy()));
    }

    /// Removes every series of `name` (a service gone from the config).
    pub fn remove_service(&self, name: &str) {
        self.services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        self.proxying
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Which services are in maintenance or silenced now (`breakerd_maintenance`,
    /// `breakerd_silenced`).
    pub fn set_held(&self, held: HeldServices) {
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(held);
    }

    /// The shard this replica runs (`breakerd_shard_info`).
    pub fn set_shard(&self, shard: Option<crate::config::Shard>) {
        let (index, count) = shard.map_or((0, 1), |shard| (shard.index(), shard.count()));
        let labels = ShardLabels {
            shard: index.to_string(),
            shards: count.to_string(),
        };
        if self.shard.get(&labels).is_none() {
            self.shard.clear();
            self.shard.get_or_create(&labels).set(1);
        }
    }

    /// Whether the connectivity guard says breakerd is offline (`breakerd_offline`).
    pub fn set_offline(&self, offline: bool) {
        self.offline.set(i64::from(offline));
    }

    /// Creates the alert series of `channel` at zero.
    pub fn register_alert_channel(&self, channel: &str) {
        let labels = |outcome: &str| ChannelOutcomeLabels {
            channel: channel.to_string(),
            outcome: outcome.to_string(),
        };
        for outcome in AlertOutcome::ALL {
            drop(self.alerts.get_or_create(&labels(outcome.as_str())));
        }
        for outcome in AttemptOutcome::ALL {
            drop(self.alert_attempts.get_or_create(&labels(outcome.as_str())));
        }
        drop(self.alert_queue_depth.get_or_create(&ChannelLabel {
            channel: channel.to_string(),
        }));
    }

    /// Moves `channel`'s queue depth by `change`.
    pub fn alert_queue_depth(&self, channel: &str, change: i64) {
        self.alert_queue_depth
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .inc_by(change);
    }

    /// Records `channel`'s latest successful delivery.
    pub fn alert_delivered(&self, channel: &str, at: SystemTime) {
        self.alert_last_success
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .set(unix_seconds(at));
    }

    /// Counts one notification of `channel` that ended with `outcome`.
    pub fn alert(&self, channel: &str, outcome: AlertOutcome) {
        self.alerts
            .get_or_create(&ChannelOutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// Counts one delivery attempt on `channel`.
    pub fn alert_attempt(&self, channel: &str, outcome: AttemptOutcome) {
        self.alert_attempts
            .get_or_create(&ChannelOutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// Counts a panic of a long-lived task.
    pub fn task_panicked(&self, kind: crate::tasks::kind::TaskKind) {
        self.task_panics
            .get_or_create(&TaskLabel {
                task: kind.as_str().to_string(),
            })
            .inc();
    }

    /// Counts transitions folded on the transition bus.
    pub fn transitions_folded(&self, count: u64) {
        self.transitions_folded.inc_by(count);
    }

    /// Moves the count of open inbound connections by `change`.
    pub fn connection_opened(&self, change: i64) {
        self.connections_open.inc_by(change);
    }

    /// Counts an inbound connection closed at once, over the cap.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts an inbound connection that could not be accepted.
    pub fn accept_failed(&self) {
        self.accept_errors.inc();
    }

    /// Counts a proxied call breakerd could not make for want of its own resources.
    pub fn proxy_local_error(&self, reason: &str) {
        self.proxy_local_errors
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a wrong or missing bearer token on `route` (as declared).
    pub fn auth_failed(&self, route: &str) {
        self.auth_failures
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .inc();
    }

    /// Failed writes of breakerd's state files (`breakerd_state_write_errors_total`) and the
    /// current fault of each kind.
    pub fn state_faults(&self) -> &state_faults::StateFaults {
        &self.state_faults
    }

    /// Records a configuration (re)load attempt.
    pub fn config_loaded(&self, successful: bool) {
        self.reload_successful.set(i64::from(successful));
        if successful {
            self.reload_success_time
                .set(unix_seconds(crate::wall::now()));
        }
    }

    /// OpenMetrics text, as Prometheus prefers when it scrapes.
    pub fn render_openmetrics(&self) -> String {
        self.exposition(Format::OpenMetrics).into_string()
    }

    /// The classic Prometheus text format (0.0.4), for `curl` and `promtool check metrics`.
    pub fn render_prometheus_text(&self) -> String {
        self.exposition(Format::Prometheus).into_string()
    }

    /// The whole exposition in `format`, in pieces (one per per-service family, then the
    /// process-wide families) that a response sends one after the other.
    pub fn exposition(&self, format: Format) -> Exposition {
        let parts = {
            let services = self.services.read().unwrap_or_else(PoisonError::into_inner);
            let list: Vec<&ServiceSeries> = services.values().map(|series| &**series).collect();
            let held = Arc::clone(&self.held.read().unwrap_or_else(PoisonError::into_inner));
            let (workers, runs) = workers_and_runs(list.len());
            self.write_runs(format, &list, &held, workers, runs)
        };
        let mut process = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut process, &self.registry);
        let process = match format {
            Format::OpenMetrics => process,
            Format::Prometheus => to_prometheus_text(&process),
        };
        let mut pieces: Vec<Piece> = family_by_family(parts)
            .into_iter()
            .map(Piece::shared)
            .collect();
        pieces.push(Piece::owned(process.into_bytes()));
        Exposition { pieces }
    }

    /// The per-service families of `services` written in `runs` runs of consecutive services
    /// (1 to [`MAX_RUNS`]) by `workers` threads (this one and up to [`MAX_WORKERS`] - 1 more),
    /// each taking the next run as it finishes one: a thread that shares its core with a batch
    /// of checks writes fewer runs rather than holding the answer back. In run order.
    fn write_runs(
        &self,
        format: Format,
        services: &[&ServiceSeries],
        held: &HeldServices,
        workers: usize,
        runs: usize,
    ) -> Vec<[Arc<Text>; FAMILIES]> {
        let run_size = services.len().div_ceil(runs.clamp(1, MAX_RUNS)).max(1);
        let chunks: Vec<&[&ServiceSeries]> = services.chunks(run_size).collect();
        self.memos.forget_from(chunks.len().max(1));
        let next = AtomicUsize::new(0);
        let work = || {
            let mut written = Vec::new();
            let mut scratch = Scratch::default();
            loop {
                let run = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(run) else {
                    return written;
                };
                let mut memo: RunMemo = self.memos.take(run);
                let texts = write_run(format, chunk, held, run == 0, &mut memo, &mut scratch);
                self.memos.keep(run, memo);
                written.push((run, texts));
            }
        };
        let helpers = workers.clamp(1, MAX_WORKERS).min(chunks.len().max(1)) - 1;
        let mut written = std::thread::scope(|scope| {
            let spawned: Vec<_> = (0..helpers)
                .filter_map(|_| {
                    // No thread to be had: the others write its runs.
                    std::thread::Builder::new()
                        .name("metrics-writer".to_string())
                        .spawn_scoped(scope, work)
                        .ok()
                })
                .collect();
            let mut written = work();
            for helper in spawned {
                written.extend(
                    helper
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            written
        });
        written.sort_unstable_by_key(|(run, _)| *run);
        written.into_iter().map(|(_, texts)| texts).collect()
    }
}

/// The texts of the runs in the order they are exposed: family by family, each family's runs
/// in the order of their services.
fn family_by_family(runs: Vec<[Arc<Text>; FAMILIES]>) -> Vec<Arc<Text>> {
    let mut texts: Vec<_> = runs.into_iter().map(IntoIterator::into_iter).collect();
    let mut ordered = Vec::with_capacity(FAMILIES * texts.len());
    for _ in 0..FAMILIES {
        for texts in &mut texts {
            ordered.extend(texts.next());
        }
    }
    ordered
}

/// From how many services `/metrics` is written by several threads.
const PARALLEL_FROM: usize = 2_000;
/// About how many services one run holds when there are many.
const RUN_SERVICES: usize = 500;
/// The most threads that write one `/metrics` answer.
const MAX_WORKERS: usize = 4;
/// The cores this process may use, read once.
static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// How many threads write `/metrics` for `services` services, and in how many runs: one
/// thread and one run for fewer than [`PARALLEL_FROM`]; otherwise one thread per core (10,000
/// services take tens of milliseconds on one core) and runs of about [`RUN_SERVICES`].
fn workers_and_runs(services: usize) -> (usize, usize) {
    if services < PARALLEL_FROM {
        return (1, 1);
    }
    let cores = *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    (cores, services.div_ceil(RUN_SERVICES))
}

/// One rendering of `/metrics`, in pieces that are valid UTF-8 text each.
#[derive(Debug)]
pub struct Exposition {
    pieces: Vec<Piece>,
}

impl Exposition {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|piece| piece.as_ref().len()).sum()
    }

    /// Whether it is empty (it never is: the process-wide families are always there).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order.
    pub fn into_pieces(self) -> Vec<Piece> {
        self.pieces
    }

    /// The whole text in one string.
    pub fn into_string(self) -> String {
        let mut text = Vec::with_capacity(self.len());
        for piece in &self.pieces {
            text.extend_from_slice(piece.as_ref());
        }
        String::from_utf8(text)
            .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
    }
}

/// Rewrites prometheus-client's OpenMetrics text into the Prometheus text format: counter
/// families named by their `_total` samples, no `# UNIT` and `# EOF` lines.
fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub(crate) use crate::wall::unix_seconds;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{Outcome, State};
    use crate::metrics::Source;
    use crate::outcome::FailureReason;

    #[test]
    fn every_family_and_label_is_present_from_the_start() {
        let metrics = Metrics::new();
        let _mpesa = metrics.service(
            "mpesa",
            3,
            Duration::from_secs(30),
            Duration::from_secs(120),
        );
        metrics.register_alert_channel("webhook");
        metrics.config_loaded(true);
        let text = metrics.render_prometheus_text();
        for line in [
            "breakerd_breaker_state{service=\"mpesa\",state=\"closed\"} 1",
            "breakerd_breaker_state{service=\"mpesa\",state=\"open\"} 0",
            "breakerd_breaker_state{service=\"mpesa\",state=\"half_open\"} 0",
            "breakerd_calls_total{service=\"mpesa\",outcome=\"rejected\",source=\"check\"} 0",
            "breakerd_call_duration_seconds_bucket{service=\"mpesa\",outcome=\"success\",source=\"check\",le=\"0.005\"} 0",
            "breakerd_slow_calls_total{service=\"mpesa\",source=\"check\"} 0",
            "breakerd_state_transitions_total{service=\"mpesa\",from=\"closed\",to=\"open\"} 0",
            "breakerd_consecutive_failures{service=\"mpesa\"} 0",
            "breakerd_failure_threshold{service=\"mpesa\"} 3",
            "breakerd_timeout_seconds{service=\"mpesa\"} 30.0",
            "breakerd_reset_timeout_seconds{service=\"mpesa\"} 120.0",
            "breakerd_next_attempt_timestamp_seconds{service=\"mpesa\"} 0.0",
            "breakerd_probe_success{service=\"mpesa\"} 0",
            "breakerd_probe_last_run_timestamp_seconds{service=\"mpesa\"} 0.0",
            "breakerd_probe_failures_total{service=\"mpesa\",reason=\"auth\"} 0",
            "breakerd_alerts_total{channel=\"webhook\",outcome=\"dropped\"} 0",
            "breakerd_config_last_reload_successful 1",
            "breakerd_build_info{version=\"",
            "# TYPE breakerd_calls_total counter",
            "# HELP breakerd_calls_total Calls through the breaker, by outcome.",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        assert!(
            !text.contains("outcome=\"failure\",source=\"check\",le="),
            "a failure histogram appears with its first failure"
        );
        assert!(metrics.render_openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn an_exposition_written_in_parts_reads_as_one_written_whole() {
        let metrics = Metrics::new();
        for index in 0..25u64 {
            let series = numbered(&metrics, index);
            series.call(
                Source::Check.tag(),
                if index % 4 == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                Some(Duration::from_millis(index * 37)),
                false,
            );
            series.set_carries_traffic(index % 3 == 0);
        }
        metrics.set_held(HeldServices {
            maintenance: ["svc-03", "svc-20"].map(String::from).into(),
            silenced: ["svc-11"].map(String::from).into(),
        });
        let text = |workers: usize, runs: usize| {
            let written = render_runs(&metrics, Format::OpenMetrics, workers, runs);
            assert_eq!(written.len(), runs * FAMILIES);
            joined(&written)
        };
        let whole = text(1, 1);
        assert!(whole.contains("breakerd_maintenance{service=\"svc-20\"} 1"));
        assert_eq!(whole.matches("# TYPE breakerd_calls counter").count(), 1);
        for (workers, runs) in [(1, 5), (2, 2), (2, 7), (3, 25), (MAX_WORKERS, 13)] {
            assert_eq!(
                text(workers, runs),
                whole,
                "{runs} runs by {workers} threads"
            );
        }
    }

    #[test]
    fn a_family_whose_numbers_did_not_change_is_sent_again_and_one_that_did_is_rewritten() {
        let metrics = Metrics::new();
        let mut handles: Vec<ServiceMetrics> = (0..30u64)
            .map(|index| {
                let series = numbered(&metrics, index);
                series.call(
                    Source::Check.tag(),
                    Outcome::Success,
                    Some(Duration::from_millis(index)),
                    false,
                );
                series
            })
            .collect();
        let render = |metrics: &Metrics| render_runs(metrics, Format::Prometheus, 2, 4);
        let text = joined;
        let first = render(&metrics);
        let again = render(&metrics);
        assert!(
            first.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)),
            "nothing changed: every text is the one kept"
        );
        drop(first);
        // One change of each kind: a number, a float, a hold, a service gone and one new, a
        // service that now carries traffic (its lines change shape).
        handles[7].call(
            Source::Check.tag(),
            Outcome::Failure,
            Some(Duration::from_secs(2)),
            true,
        );
        handles[9].probe_phases(&crate::outcome::Phases {
            first_byte: Duration::from_micros(1250),
            ..crate::outcome::Phases::default()
        });
        handles[12].heartbeat_seen(SystemTime::UNIX_EPOCH + Duration::from_millis(1500));
        handles[12].set_heartbeat(true);
        handles[20].set_carries_traffic(true);
        metrics.remove_service("svc-25");
        handles.push(metrics.service("svc-25", 4, Duration::from_secs(5), Duration::from_secs(9)));
        metrics.set_held(HeldServices {
            maintenance: ["svc-03"].map(String::from).into(),
            silenced: std::collections::BTreeSet::new(),
        });
        let remembered = render(&metrics);
        let reused = remembered
            .iter()
            .zip(&again)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(
            reused > 0 && reused < remembered.len(),
            "{reused} of {} texts kept",
            remembered.len()
        );
        let holding = |texts: &[Arc<Text>], line: &str| {
            texts
                .iter()
                .position(|text| String::from_utf8_lossy(text.as_bytes()).contains(line))
        };
        let maintenance = holding(&remembered, "breakerd_maintenance{service=\"svc-03\"} 1");
        assert!(maintenance.is_some_and(|at| !Arc::ptr_eq(&remembered[at], &again[at])));
        metrics.memos.forget_from(0);
        let afresh = render(&metrics);
        assert_eq!(text(&remembered), text(&afresh), "as if written afresh");
        for line in [
            "breakerd_failure_threshold{service=\"svc-25\"} 4",
            "breakerd_heartbeat_last_timestamp_seconds{service=\"svc-12\"} 1.5",
            "breakerd_probe_phase_seconds{service=\"svc-09\",phase=\"first_byte\"} 0.00125",
            "breakerd_calls_total{service=\"svc-20\",operation=\"other\",outcome=\"success\",source=\"traffic\"} 0",
            "breakerd_call_duration_seconds_count{service=\"svc-07\",outcome=\"failure\",source=\"check\"} 1",
        ] {
            assert!(text(&remembered).contains(line), "missing {line}");
        }
        let other_format = render_runs(&metrics, Format::OpenMetrics, 2, 4);
        metrics.memos.forget_from(0);
        assert_eq!(
            text(&other_format),
            text(&render_runs(&metrics, Format::OpenMetrics, 2, 4)),
            "a scrape in the other format writes every text again"
        );
    }

    /// Service `svc-NN`: 3 failures open it, 30 s timeout, 120 s reset.
    fn numbered(metrics: &Metrics, index: u64) -> ServiceMetrics {
        metrics.service(
            &format!("svc-{index:02}"),
            3,
            Duration::from_secs(30),
            Duration::from_secs(120),
        )
    }

    /// Every service's families in `format`, written in `runs` runs by `workers` threads, in
    /// the order they are exposed.
    fn render_runs(
        metrics: &Metrics,
        format: Format,
        workers: usize,
        runs: usize,
    ) -> Vec<Arc<Text>> {
        let services = metrics
            .services
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let list: Vec<&ServiceSeries> = services.values().map(|series| &**series).collect();
        let held = metrics.held.read().unwrap_or_else(PoisonError::into_inner);
        family_by_family(metrics.write_runs(format, &list, &held, workers, runs))
    }

    fn joined(texts: &[Arc<Text>]) -> String {
        let whole: Vec<u8> = texts
            .iter()
            .flat_map(|text| text.as_bytes().to_vec())
            .collect();
        String::from_utf8(whole).unwrap_or_default()
    }

    #[test]
    fn the_room_asked_for_holds_every_line_a_family_can_have() {
        let metrics = Metrics::new();
        for letter in ['a', 'b', 'c'] {
            let name: String = std::iter::repeat_n(letter, 64).collect();
            let series = metrics.service(&name, u32::MAX, Duration::MAX, Duration::MAX);
            series.set_carries_traffic(true);
            series.set_heartbeat(true);
            series.heartbeat_seen(
                SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
            );
            series.tls_not_after(
                SystemTime::UNIX_EPOCH + Duration::from_nanos(1_800_000_000_987_654_321),
            );
            for source in Source::ALL {
                for outcome in [Outcome::Success, Outcome::Failure, Outcome::Timeout] {
                    series.call(
                        source.tag(),
                        outcome,
                        Some(Duration::from_nanos(123_456_789)),
                        true,
                    );
                }
            }
            series.missed_ticks(u64::MAX - 1);
        }
        let room = exposition::room_for(3);
        let pieces = metrics.exposition(Format::OpenMetrics).into_pieces();
        for (family, (piece, room)) in pieces.iter().zip(room).enumerate() {
            assert!(
                piece.as_ref().len() <= room,
                "family {family}: {} bytes, room for {room}",
                piece.as_ref().len()
            );
        }
    }

    #[test]
    fn recording_moves_the_right_series_and_removal_drops_them() {
        let metrics = Metrics::new();
        let kcb = metrics.service("kcb", 3, Duration::from_secs(30), Duration::from_secs(120));
        kcb.call(
            Source::Check.tag(),
            Outcome::Timeout,
            Some(Duration::from_secs(30)),
            true,
        );
        kcb.call(Source::Check.tag(), Outcome::Rejected, None, false);
        kcb.set_carries_traffic(true);
        kcb.call(
            Source::Traffic.tag(),
            Outcome::Success,
            Some(Duration::from_millis(80)),
            false,
        );
        kcb.set_state(
            State::Open,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        );
        kcb.transition(State::Closed, State::Open);
        kcb.probe(
            Some(FailureReason::Timeout),
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        );
        let text = metrics.render_prometheus_text();
        for line in [
            "breakerd_calls_total{service=\"kcb\",outcome=\"timeout\",source=\"check\"} 1",
            "breakerd_calls_total{service=\"kcb\",outcome=\"rejected\",source=\"check\"} 1",
            "breakerd_calls_total{service=\"kcb\",operation=\"other\",outcome=\"success\",source=\"traffic\"} 1",
            "breakerd_calls_total{service=\"kcb\",operation=\"other\",outcome=\"timeout\",source=\"traffic\"} 0",
            "breakerd_call_duration_seconds_bucket{service=\"kcb\",outcome=\"timeout\",source=\"check\",le=\"30.0\"} 1",
            "breakerd_call_duration_seconds_bucket{service=\"kcb\",outcome=\"timeout\",source=\"check\",le=\"10.0\"} 0",
            "breakerd_call_duration_seconds_bucket{service=\"kcb\",operation=\"other\",outcome=\"success\",source=\"traffic\",le=\"0.1\"} 1",
            "breakerd_call_duration_seconds_count{service=\"kcb\",outcome=\"timeout\",source=\"check\"} 1",
            "breakerd_call_duration_seconds_bucket{service=\"kcb\",outcome=\"success\",source=\"check\",le=\"+Inf\"} 0",
            "breakerd_slow_calls_total{service=\"kcb\",source=\"check\"} 1",
            "breakerd_slow_calls_total{service=\"kcb\",operation=\"other\",source=\"traffic\"} 0",
            "breakerd_breaker_state{service=\"kcb\",state=\"open\"} 1",
            "breakerd_breaker_state{service=\"kcb\",state=\"closed\"} 0",
            "breakerd_next_attempt_timestamp_seconds{service=\"kcb\"} 1700000000.0",
            "breakerd_state_transitions_total{service=\"kcb\",from=\"closed\",to=\"open\"} 1",
            "breakerd_probe_failures_total{service=\"kcb\",reason=\"timeout\"} 1",
            "breakerd_probe_last_run_timestamp_seconds{service=\"kcb\"} 5.0",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(!text.contains("outcome=\"failure\",source=\"check\",le="));
        metrics.remove_service("kcb");
        assert!(!metrics.render_prometheus_text().contains("service=\"kcb\""));
    }
}
