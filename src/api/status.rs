//! The live status page at `/` — one self-contained HTML page (no external requests) that
//! follows `/api/v1/status/stream` (server-sent events) and redraws as breakers change.

mod outages;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{ApiError, AppState};
use crate::breaker::Outcome;
use crate::registry::Service;

/// How often the stream sends a fresh snapshot.
pub(crate) const STREAM_INTERVAL: Duration = Duration::from_secs(1);
/// Clients that follow the status stream at once; more are answered 503.
pub const MAX_STREAM_CLIENTS: usize = 64;
/// A snapshot younger than this is sent again rather than built anew.
const SNAPSHOT_REUSE: Duration = Duration::from_millis(900);
/// Checks per service drawn in the latency chart.
const CHART_POINTS: usize = 40;
/// Transitions listed under the services.
const RECENT_TRANSITIONS: usize = 20;
/// Outages listed under the services.
const RECENT_OUTAGES: usize = 20;

const PAGE: &str = include_str!("status.html");

pub(crate) async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus {
    name: String,
    kind: &'static str,
    state: crate::breaker::State,
    /// Since when it has been in this state (RFC 3339).
    since: String,
    next_attempt: Option<String>,
    failure_count: u64,
    consecutive_failures: u32,
    failure_threshold: u32,
    success_ratio: f64,
    p95_ms: f64,
    /// Its `slow_call` (milliseconds), when it has one.
    slow_call_ms: Option<f64>,
    /// Its p95 latency is over its `slow_call`.
    slow: bool,
    /// Durations of recent checks, oldest first (milliseconds; rejected checks are left out).
    recent_ms: Vec<f64>,
    last_check: Option<crate::registry::CheckRecord>,
    /// The last real failure (never a rejection): what is wrong while the breaker is open.
    cause: Option<crate::outcome::Cause>,
    /// The outage in progress, if any.
    outage: Option<crate::alert::OutageInfo>,
    /// Why its pages are held now (empty: they go out).
    held: Vec<crate::alert::Hold>,
    /// Its cap on proxied calls and the calls in flight under it.
    bulkhead: Option<super::breakers::BulkheadStats>,
    /// Its fallback and the calls sent there.
    fallback: Option<super::breakers::FallbackStats>,
    /// With `breakers = "per_operation"`, each operation's breaker, by operation.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    operations: std::collections::BTreeMap<String, super::operations::OperationStats>,
}

/// One change of state, as the page lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TransitionLine {
    service: String,
    from: crate::breaker::State,
    to: crate::breaker::State,
    reason: String,
    at: String,
}

/// Everything the page draws.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Snapshot {
    generated_at: String,
    /// `healthy`, `degraded` or `unhealthy`, as `/api/v1/circuit-breakers/health` says.
    health: super::health::Status,
    /// The services that keep it from `healthy` without being in an outage, and why.
    concerns: Vec<super::health::Concern>,
    services: Vec<ServiceStatus>,
    /// The latest outages, the latest started first, each with its changes of state.
    outages: Vec<outages::OutageLine>,
    /// The latest changes of state, newest first.
    transitions: Vec<TransitionLine>,
    /// Active silences.
    silences: Vec<crate::alert::Silence>,
    /// The kinds of state file breakerd cannot write now (the banner), each with its path
    /// and error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    state_faults: Vec<crate::metrics::state_faults::StateFault>,
    /// Set while the connectivity guard says breakerd is offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    offline: Option<crate::alert::Offline>,
    /// The shard this replica runs (`1/3`), when sharded.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

fn service_status(
    service: &Service,
    started: SystemTime,
    outages: &crate::alert::OutageView,
    quiet: &crate::alert::QuietView,
) -> ServiceStatus {
    let stats = service.breaker.stats();
    let since = stats
        .last_state_change
        .as_ref()
        .map_or(started, |change| change.at_wall);
    let recent: Vec<f64> = service
        .recent_checks()
        .iter()
        .filter(|check| check.outcome != Outcome::Rejected)
        .map(|check| check.duration_ms)
        .collect();
    let skip = recent.len().saturating_sub(CHART_POINTS);
    let p95_ms = service.latency().p95;
    let slow_call_ms = service
        .slow_call()
        .map(|slow_call| slow_call.as_secs_f64() * 1000.0);
    ServiceStatus {
        name: service.name().to_string(),
        kind: service.probe.kind(),
        state: stats.state,
        since: rfc3339(since),
        next_attempt: stats.next_attempt.map(rfc3339),
        failure_count: stats.failure_count,
        consecutive_failures: stats.consecutive_failures,
        failure_threshold: stats.failure_threshold,
        success_ratio: stats.uptime,
        p95_ms,
        slow_call_ms,
        slow: slow_call_ms.is_some_and(|slow_call| p95_ms > slow_call),
        recent_ms: recent[skip..].to_vec(),
        last_check: service.last_check(),
        cause: service.last_failure(),
        outage: crate::alert::in_outage(stats.state)
            .then(|| super::breakers::ongoing_outage(outages, service.name()))
            .flatten(),
        held: quiet.of(service.name()).to_vec(),
        bulkhead: super::breakers::bulkhead_stats(service),
        fallback: super::breakers::fallback_stats(service),
        operations: super::operations::operation_stats(service, outages),
    }
}

pub(crate) fn snapshot(state: &AppState) -> Snapshot {
    let registry = state.registry();
    let (booked, quiet) = (state.outages(), state.quiet());
    let services: Vec<ServiceStatus> = registry
        .iter()
        .map(|service| service_status(service, state.started, &booked, &quiet))
        .collect();
    // The services' own breakers and their operations' (`mpesa/b2c`).
    let names: Vec<&str> = registry
        .iter()
        .flat_map(|service| {
            std::iter::once(service.name()).chain(
                service
                    .operation_breakers
                    .iter()
                    .map(|operation| operation.breaker.name()),
            )
        })
        .collect();
    let now = SystemTime::now();
    let outages = outages::lines(
        state
            .history
            .recent_outages(names.iter().copied(), RECENT_OUTAGES),
        &booked,
        &names,
        now,
        RECENT_OUTAGES,
    );
    let transitions: Vec<TransitionLine> = state
        .history
        .recent_transitions(names.iter().copied(), RECENT_TRANSITIONS)
        .into_iter()
        .map(|event| TransitionLine {
            service: event.service.to_string(),
            from: event.from,
            to: event.to,
            reason: event.reason.to_string(),
            at: rfc3339(event.at_wall),
        })
        .collect();
    let overall = super::health::overall(&registry);
    Snapshot {
        generated_at: rfc3339(now),
        health: overall.status,
        concerns: overall.concerns,
        services,
        outages,
        transitions,
        silences: quiet.silences.clone(),
        state_faults: state.metrics.state_faults().current(),
        offline: quiet.offline.clone(),
        shard: state.shard().map(|shard| shard.to_string()),
    }
}

/// The status snapshot as JSON, built at most once per [`SNAPSHOT_REUSE`] however many
/// clients ask, and a cap on the clients that follow the stream.
#[derive(Debug)]
pub(crate) struct StatusFeed {
    latest: tokio::sync::Mutex<Option<(Instant, Arc<str>)>>,
    clients: Arc<Semaphore>,
}

impl Default for StatusFeed {
    fn default() -> Self {
        Self {
            latest: tokio::sync::Mutex::default(),
            clients: Arc::new(Semaphore::new(MAX_STREAM_CLIENTS)),
        }
    }
}

impl StatusFeed {
    /// The latest snapshot's JSON: one that is fresh enough, or a new one.
    async fn json(&self, state: &AppState) -> Arc<str> {
        let mut latest = self.latest.lock().await;
        if let Some((at, json)) = &*latest
            && at.elapsed() < SNAPSHOT_REUSE
        {
            return Arc::clone(json);
        }
        let json: Arc<str> = serde_json::to_string(&snapshot(state))
            .unwrap_or_else(|_| "{}".to_string())
            .into();
        *latest = Some((Instant::now(), Arc::clone(&json)));
        json
    }
}

pub(crate) async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let json = state.status_feed.json(&state).await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}

pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Ok(client) = Arc::clone(&state.status_feed.clients).try_acquire_owned() else {
        return Err(ApiError::Unavailable(format!(
            "{MAX_STREAM_CLIENTS} clients follow the status stream, the most served at once; close one, or poll GET /api/v1/status"
        )));
    };
    let ticks = tokio::time::interval(STREAM_INTERVAL);
    let stopping = state.stopping.clone();
    let events = futures_util::stream::unfold(
        (state, ticks, client, stopping),
        |(state, mut ticks, client, mut stopping)| async move {
            // The daemon stopping ends the stream, so its connection can close.
            let stopped = tokio::select! {
                _ = ticks.tick() => false,
                () = daemon_stops(&mut stopping) => true,
            };
            if stopped {
                return None;
            }
            let json = state.status_feed.json(&state).await;
            Some((
                Ok(Event::default().event("status").data(&*json)),
                (state, ticks, client, stopping),
            ))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Resolves when the daemon stops; never for state with no daemon behind it.
async fn daemon_stops(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `GET /api/v1/openapi.json`: the OpenAPI 3 document of every route.
pub(crate) async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
