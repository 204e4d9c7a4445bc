//! The seed's read-only routes: every breaker's stats, one breaker's stats, the health
//! summary and the performance metrics.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::operations::{OperationStats, operation_stats};
use super::{ApiError, AppState};
use crate::alert::{OutageInfo, OutageView};
use crate::breaker::{State as BreakerState, Stats};
use crate::outcome::Cause;
use crate::registry::{CheckRecord, Percentiles, Service};

/// One service's stats: the breaker's (the seed's fields first) and its check's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceStats {
    #[serde(flatten)]
    breaker: Stats,
    kind: &'static str,
    schedule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_check: Option<CheckRecord>,
    /// The last real failure (never a rejection by the breaker): what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    /// The outage in progress, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    outage: Option<OutageInfo>,
    /// Why its pages are held now (maintenance, a silence, an upstream's outage); absent when
    /// they go out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held: Vec<crate::alert::Hold>,
    /// With `breakers = "per_operation"`, each operation's breaker, by operation; the
    /// service's own (above) takes the calls of no operation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    operations: BTreeMap<String, OperationStats>,
}

/// The outage `service` is in, if any.
pub(crate) fn ongoing_outage(outages: &OutageView, service: &str) -> Option<OutageInfo> {
    outages
        .get(service)
        .filter(|outage| outage.is_ongoing())
        .map(|outage| outage.info())
}

pub(crate) fn service_stats(
    service: &Service,
    outages: &OutageView,
    quiet: &crate::alert::QuietView,
) -> ServiceStats {
    let breaker = service.breaker.stats();
    // The stage books outages a moment after the breaker moves: trust the breaker's state.
    let outage = crate::alert::in_outage(breaker.state)
        .then(|| ongoing_outage(outages, service.name()))
        .flatten();
    ServiceStats {
        breaker,
        kind: service.probe.kind(),
        schedule: service.schedule_text(),
        last_check: service.last_check(),
        cause: service.last_failure(),
        outage,
        held: quiet.of(service.name()).to_vec(),
        operations: operation_stats(service, outages),
    }
}

pub(crate) fn all_stats(state: &AppState) -> BTreeMap<String, ServiceStats> {
    let (outages, quiet) = (state.outages(), state.quiet());
    state
        .registry()
        .iter()
        .map(|service| {
            (
                service.name().to_string(),
                service_stats(service, &outages, &quiet),
            )
        })
        .collect()
}

pub(crate) fn find(state: &AppState, name: &str) -> Result<std::sync::Arc<Service>, ApiError> {
    let registry = state.registry();
    registry
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::UnknownService {
            name: name.to_string(),
            known: registry.names(),
        })
}

/// The header that says which shard answered (`1/3`), on a sharded replica.
pub const SHARD_HEADER: &str = "x-breakerd-shard";

pub(crate) async fn all(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let body = Json(all_stats(&state));
    match state.shard() {
        Some(shard) => ([(SHARD_HEADER, shard.to_string())], body).into_response(),
        None => body.into_response(),
    }
}

pub(crate) async fn one(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStats>, ApiError> {
    let service = find(&state, &name)?;
    Ok(Json(service_stats(
        &service,
        &state.outages(),
        &state.quiet(),
    )))
}

/// The service's recent transitions and alert deliveries.
pub(crate) async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<crate::history::ServiceEvents>, ApiError> {
    find(&state, &name)?;
    Ok(Json(state.history.events(&name)))
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateCounts {
    closed: usize,
    open: usize,
    half_open: usize,
    forced_open: usize,
    disabled: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// `healthy` (every breaker closed), `degraded` (some open or half-open) or `unhealthy`
    /// (every breaker open).
    status: &'static str,
    services: usize,
    states: StateCounts,
    open_services: Vec<String>,
    half_open_services: Vec<String>,
    /// Operations' breakers (`mpesa/b2c`) that are open or half-open: the service is
    /// degraded, its other operations still served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    troubled_operations: Vec<String>,
    /// Every service in an outage, with why.
    problems: Vec<Problem>,
    uptime_seconds: u64,
    timestamp: String,
}

/// A service in an outage, and why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Problem {
    service: String,
    state: BreakerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    outage: Option<OutageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let mut counts = StateCounts::default();
    let mut open_services = Vec::new();
    let mut half_open_services = Vec::new();
    let mut problems = Vec::new();
    let outages = state.outages();
    let mut troubled_operations = Vec::new();
    for service in state.registry().iter() {
        for (_, operation) in operation_stats(service, &outages) {
            if crate::alert::in_outage(operation.state()) {
                problems.push(Problem {
                    service: operation.unit().to_string(),
                    state: operation.state(),
                    outage: ongoing_outage(&outages, operation.unit()),
                    cause: service.last_failure(),
                });
            }
            if operation.state() != BreakerState::Closed
                && operation.state() != BreakerState::Disabled
            {
                troubled_operations.push(operation.unit().to_string());
            }
        }
        let breaker_state = service.breaker.state();
        if crate::alert::in_outage(breaker_state) {
            problems.push(Problem {
                service: service.name().to_string(),
                state: breaker_state,
                outage: ongoing_outage(&outages, service.name()),
                cause: service.last_failure(),
            });
        }
        match breaker_state {
            BreakerState::Closed => counts.closed += 1,
            BreakerState::Open => {
                counts.open += 1;
                open_services.push(service.name().to_string());
            }
            BreakerState::ForcedOpen => {
                counts.forced_open += 1;
                open_services.push(service.name().to_string());
            }
            BreakerState::HalfOpen => {
                counts.half_open += 1;
                half_open_services.push(service.name().to_string());
            }
            BreakerState::Disabled => counts.disabled += 1,
        }
    }
    let total = state.registry().len();
    let status = if total > 0 && open_services.len() == total {
        "unhealthy"
    } else if open_services.is_empty()
        && half_open_services.is_empty()
        && troubled_operations.is_empty()
    {
        "healthy"
    } else {
        "degraded"
    };
    let now = SystemTime::now();
    Json(Health {
        status,
        services: total,
        states: counts,
        open_services,
        half_open_services,
        troubled_operations,
        problems,
        uptime_seconds: now
            .duration_since(state.started)
            .map_or(0, |up| up.as_secs()),
        timestamp: humantime::format_rfc3339_millis(now).to_string(),
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Performance {
    state: BreakerState,
    total_calls: u64,
    successes: u64,
    failures: u64,
    /// Failed calls over calls that ran, in percent.
    failure_rate: f64,
    timeouts: u64,
    rejections: u64,
    slow_calls: u64,
    /// Percentiles of recent checks that ran (a service's, not an operation's).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<Percentiles>,
    /// With `breakers = "per_operation"`, each operation's breaker, by operation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    operations: BTreeMap<String, Performance>,
}

impl Performance {
    /// The calls `stats` counted.
    fn of(stats: &Stats) -> Self {
        let ran = stats.success_count + stats.failure_count;
        let failure_rate = if ran == 0 {
            0.0
        } else {
            stats.failure_count as f64 * 100.0 / ran as f64
        };
        Self {
            state: stats.state,
            total_calls: stats.total_calls,
            successes: stats.success_count,
            failures: stats.failure_count,
            failure_rate,
            timeouts: stats.timeouts,
            rejections: stats.rejections,
            slow_calls: stats.slow_calls,
            latency_ms: None,
            operations: BTreeMap::new(),
        }
    }
}

pub(crate) async fn performance(
    State(state): State<AppState>,
) -> Json<BTreeMap<String, Performance>> {
    let report = state
        .registry()
        .iter()
        .map(|service| {
            let performance = Performance {
                latency_ms: Some(service.latency()),
                operations: service
                    .operation_breakers
                    .iter()
                    .map(|operation| {
                        let stats = operation.breaker.stats();
                        (operation.operation.to_string(), Performance::of(&stats))
                    })
                    .collect(),
                ..Performance::of(&service.breaker.stats())
            };
            (service.name().to_string(), performance)
        })
        .collect();
    Json(report)
}
