//! The seed's read-only routes: every breaker's stats, one breaker's stats, the health
//! summary and the performance metrics.

use std::collections::BTreeMap;

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
    /// Its cap on proxied calls (`max_concurrent`), with the calls in flight under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    bulkhead: Option<BulkheadStats>,
    /// Where the proxy sends the calls its breaker refuses (`fallback`), and how many went.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<FallbackStats>,
    /// With `breakers = "per_operation"`, each operation's breaker, by operation; the
    /// service's own (above) takes the calls of no operation.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    operations: BTreeMap<String, OperationStats>,
}

/// A service's cap on proxied calls, and its use.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkheadStats {
    max_concurrent: u32,
    max_wait_ms: u64,
    in_flight: u64,
    /// Calls refused 503 (`capacity`) so far.
    rejections: u64,
}

/// A service's fallback, and the calls sent to it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FallbackStats {
    service: String,
    /// Calls this service's breaker refused that went to the fallback's upstream so far.
    calls: u64,
}

pub(crate) fn bulkhead_stats(service: &Service) -> Option<BulkheadStats> {
    let config = service.bulkhead()?.config();
    let series = service.metrics.proxy();
    Some(BulkheadStats {
        max_concurrent: config.max_concurrent,
        max_wait_ms: u64::try_from(config.max_wait.as_millis()).unwrap_or(u64::MAX),
        in_flight: series.in_flight_now(),
        rejections: series.capacity_rejections(),
    })
}

pub(crate) fn fallback_stats(service: &Service) -> Option<FallbackStats> {
    let fallback = service.config.fallback.as_deref()?;
    Some(FallbackStats {
        service: fallback.to_string(),
        calls: service.metrics.proxy().fallback_calls(fallback),
    })
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
        bulkhead: bulkhead_stats(service),
        fallback: fallback_stats(service),
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
