//! Admin routes: the bearer-token guard (constant-time), reset, force-open and disable, and the
//! seed's test routes.
//! Every input is bounded, so no request can tie the daemon up.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::breakers::{ServiceStats, all_stats, find, service_stats};
use super::throttle::Presenter;
use super::token::presents;
use super::{ApiError, AppState};
use crate::breaker::{Breaker, BreakerError, State as BreakerState, Stats};
use crate::outcome::ProbeError;

/// The most synthetic calls one simulate-failure request may make.
pub const MAX_ITERATIONS: u32 = 100;
/// The longest delay one simulate-timeout request may ask for, in milliseconds.
pub const MAX_DELAY_MS: u64 = 30_000;
/// The timeout of the test breakers (a delay above it times out).
pub const TEST_BREAKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Test breakers kept at once; beyond this the alphabetically first is dropped.
pub const MAX_TEST_BREAKERS: usize = 32;

/// Lets a request through only with `Authorization: Bearer <admin_token>`.
pub(crate) async fn guard(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = state.admin_token() else {
        return Err(ApiError::AdminDisabled);
    };
    let presenter = Presenter::of(request.extensions());
    let accepted = presents(request.headers(), &token);
    state
        .throttle
        .settle(&presenter, accepted, &state.metrics, ApiError::Unauthorized)?;
    Ok(next.run(request).await)
}

/// Applies a by-hand control to `name`'s breaker, and to each of its operations' (the
/// service as a whole); answers its new stats.
fn by_hand(
    state: &AppState,
    name: &str,
    control: fn(&Breaker),
) -> Result<Json<ServiceStats>, ApiError> {
    let service = find(state, name)?;
    control(&service.breaker);
    for operation in service.operation_breakers.iter() {
        control(&operation.breaker);
    }
    Ok(Json(service_stats(
        &service,
        &state.outages(),
        &state.quiet(),
    )))
}

/// `POST .../reset`: closes the breaker and clears its counts (undoes force-open and disable).
pub(crate) async fn reset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStats>, ApiError> {
    by_hand(&state, &name, Breaker::reset)
}

/// `POST .../force-open`: every call is rejected (checks and proxied calls) until `/reset`.
pub(crate) async fn force_open(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStats>, ApiError> {
    by_hand(&state, &name, Breaker::force_open)
}

/// `POST .../disable`: every call goes through and is counted, nothing trips the breaker,
/// until `/reset`.
pub(crate) async fn disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStats>, ApiError> {
    by_hand(&state, &name, Breaker::disable)
}

pub(crate) async fn reset_all(
    State(state): State<AppState>,
) -> Json<BTreeMap<String, ServiceStats>> {
    for service in state.registry().iter() {
        service.breaker.reset();
        for operation in service.operation_breakers.iter() {
            operation.breaker.reset();
        }
    }
    Json(all_stats(&state))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SimulateFailure {
    service_name: String,
    #[serde(default = "yes")]
    should_fail: bool,
    #[serde(default = "one")]
    iterations: u32,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallResult {
    iteration: u32,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    state: BreakerState,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SimulationReport {
    service_name: String,
    results: Vec<CallResult>,
    final_state: BreakerState,
    stats: Stats,
}

/// Runs `iterations` synthetic calls through the test breaker `serviceName` (never a real
/// service's breaker), failing them when `shouldFail`.
pub(crate) async fn simulate_failure(
    State(state): State<AppState>,
    body: Result<Json<SimulateFailure>, JsonRejection>,
) -> Result<Json<SimulationReport>, ApiError> {
    let Json(request) = body?;
    check_test_name(&request.service_name)?;
    if request.iterations == 0 || request.iterations > MAX_ITERATIONS {
        return Err(ApiError::BadRequest(format!(
            "iterations is {}, allowed is 1 to {MAX_ITERATIONS}",
            request.iterations
        )));
    }
    let breaker = test_breaker(&state, &request.service_name)?;
    let mut results = Vec::new();
    for iteration in 1..=request.iterations {
        let fail = request.should_fail;
        let outcome = breaker
            .call(|| async move {
                if fail {
                    Err(ProbeError::new(
                        crate::outcome::FailureReason::HttpStatus,
                        "simulated failure",
                    ))
                } else {
                    Ok(())
                }
            })
            .await;
        results.push(CallResult {
            iteration,
            success: outcome.is_ok(),
            error: outcome.err().map(|error| error_json(&error)),
            state: breaker.state(),
        });
    }
    Ok(Json(SimulationReport {
        service_name: request.service_name,
        results,
        final_state: breaker.state(),
        stats: breaker.stats(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SimulateTimeout {
    service_name: String,
    delay: u64,
}

/// One call that sleeps `delay` ms through the test breaker `serviceName`; past the test
/// breakers' 5 s timeout it returns the seed's timeout error.
pub(crate) async fn simulate_timeout(
    State(state): State<AppState>,
    body: Result<Json<SimulateTimeout>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body?;
    check_test_name(&request.service_name)?;
    if request.delay > MAX_DELAY_MS {
        return Err(ApiError::BadRequest(format!(
            "delay is {} ms, allowed is 0 to {MAX_DELAY_MS} ms",
            request.delay
        )));
    }
    let breaker = test_breaker(&state, &request.service_name)?;
    let delay = Duration::from_millis(request.delay);
    let outcome = breaker
        .call(|| async move {
            tokio::time::sleep(delay).await;
            Ok::<(), ProbeError>(())
        })
        .await;
    Ok(Json(json!({
        "serviceName": request.service_name,
        "delay": request.delay,
        "timeoutMs": TEST_BREAKER_TIMEOUT.as_millis() as u64,
        "timedOut": outcome.as_ref().is_err_and(|error| error.is_timeout()),
        "error": outcome.err().map(|error| error_json(&error)),
        "state": breaker.state(),
        "stats": breaker.stats(),
    })))
}

/// `POST /-/reload`: reloads the config file; a bad edit changes nothing and is answered with
/// every problem, as `breakerd check` prints them.
pub(crate) async fn reload(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(requests) = &state.reload else {
        return Err(ApiError::BadRequest(
            "this daemon was not started from a config file".to_string(),
        ));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    requests
        .send(reply)
        .await
        .map_err(|_| ApiError::Internal("the reloader has stopped".to_string()))?;
    match answer.await {
        Ok(Ok(changes)) => Ok(Json(json!({ "reloaded": true, "changes": changes }))),
        Ok(Err(problems)) => Err(ApiError::InvalidConfig(problems)),
        Err(_) => Err(ApiError::Internal(
            "the reloader dropped the request".to_string(),
        )),
    }
}

/// Runs every configured check once, now, straight to the provider (not through the breaker,
/// which is left as it is), and returns each result.
pub(crate) async fn test_external_services(
    State(state): State<AppState>,
) -> Json<BTreeMap<String, Value>> {
    let mut runs = JoinSet::new();
    for service in state.registry().iter() {
        let service = Arc::clone(service);
        runs.spawn(async move {
            let _one_at_a_time = service.run_lock.lock().await;
            let started = tokio::time::Instant::now();
            let timeout = service.config.policy.timeout;
            let result = tokio::time::timeout(timeout, service.probe.run()).await;
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            let report = match result {
                Ok(Ok(success)) => {
                    json!({ "ok": true, "durationMs": duration_ms, "note": success.note })
                }
                Ok(Err(failure)) => json!({
                    "ok": false,
                    "durationMs": duration_ms,
                    "reason": failure.reason,
                    "detail": failure.detail,
                }),
                Err(_) => json!({
                    "ok": false,
                    "durationMs": duration_ms,
                    "reason": "timeout",
                    "detail": format!("no answer within {} ms", timeout.as_millis()),
                }),
            };
            let mut report = report;
            report["kind"] = json!(service.probe.kind());
            report["breakerState"] = json!(service.breaker.state());
            (service.name().to_string(), report)
        });
    }
    let mut results = BTreeMap::new();
    while let Some(joined) = runs.join_next().await {
        match joined {
            Ok((name, report)) => {
                results.insert(name, report);
            }
            Err(error) => tracing::error!("a test check task failed: {error}"),
        }
    }
    Json(results)
}

fn error_json<E: std::fmt::Display>(error: &BreakerError<E>) -> Value {
    serde_json::to_value(error).unwrap_or_else(|_| json!({ "message": error.to_string() }))
}

fn check_test_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        return Ok(());
    }
    Err(ApiError::BadRequest(
        "serviceName must be 1 to 64 letters, digits, '-', '_' or '.'".to_string(),
    ))
}

/// The test breaker of `name`, made on first use with the seed's payment settings but a 5 s
/// timeout; at most [`MAX_TEST_BREAKERS`] are kept.
fn test_breaker(state: &AppState, name: &str) -> Result<Breaker, ApiError> {
    let mut breakers = state
        .test_breakers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(breaker) = breakers.get(name) {
        return Ok(breaker.clone());
    }
    if breakers.len() >= MAX_TEST_BREAKERS
        && let Some(oldest) = breakers.keys().next().cloned()
    {
        breakers.remove(&oldest);
    }
    let breaker = Breaker::builder(name)
        .failure_threshold(3)
        .timeout(TEST_BREAKER_TIMEOUT)
        .reset_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| ApiError::Internal(format!("test breaker policy: {error}")))?;
    breakers.insert(name.to_string(), breaker.clone());
    Ok(breaker)
}
