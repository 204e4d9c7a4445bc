//! Whether a proxied call may go to a service now: its breaker's permit first (an open
//! breaker answers at once, without waiting for a slot), then a slot under its
//! `max_concurrent`. A call refused here was never sent, so it may go to the service's
//! `fallback` instead.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::answer;
use crate::breaker::{OpenError, OwnedPermit};
use crate::bulkhead::{Full, Slot};
use crate::metrics::Source;
use crate::provider::Operation;
use crate::registry::Service;

/// A call let through: its operation, its breaker permit and its slot (if the service has a
/// cap).
pub(crate) struct Admitted {
    pub(crate) operation: Operation,
    pub(crate) permit: OwnedPermit,
    pub(crate) slot: Option<Slot>,
}

/// Why a call was not let through.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The breaker refused it: open, forced open, or half-open with its trials under way.
    Open(OpenError),
    /// `max_concurrent` calls were in flight and none finished within `max_wait`.
    Full(Full),
}

impl Refused {
    /// The proxy's own answer to the caller: 503 with the seed's JSON.
    pub(crate) fn answer(&self, service: &str) -> Response {
        match self {
            Refused::Open(open) => answer::open(open),
            Refused::Full(full) => at_capacity(service, full),
        }
    }
}

/// Lets a call of `method` on `path` (below the base URL) through to `service`, or says why not.
pub(crate) async fn admit(
    service: &Arc<Service>,
    method: &str,
    path: &str,
) -> Result<Admitted, Refused> {
    let operation = service.judge.operation(method, path);
    let permit = service
        .breaker_for(operation.index)
        .acquire_owned(Source::traffic(operation.index))
        .map_err(Refused::Open)?;
    let slot = match service.bulkhead() {
        // Waiting for a slot holds the permit (a half-open trial waits for its slot too);
        // given up, the permit leaves the breaker as it was.
        Some(bulkhead) => Some(bulkhead.enter().await.map_err(Refused::Full)?),
        None => None,
    };
    Ok(Admitted {
        operation,
        permit,
        slot,
    })
}

/// 503: the service's `max_concurrent` calls are in flight. Never the provider's failure.
fn at_capacity(service: &str, full: &Full) -> Response {
    let waited = if full.waited.is_zero() {
        String::new()
    } else {
        format!(" and none finished within {} ms", full.waited.as_millis())
    };
    let body = json!({
        "success": false,
        "message": format!(
            "Circuit breaker {service} is at capacity: {} calls are in flight, its max_concurrent{waited}; try again shortly (the provider was not blamed)",
            full.max_concurrent
        ),
        "circuitBreakerOpen": false,
        "service": service,
        "reason": "capacity",
        "maxConcurrent": full.max_concurrent,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(answer::ANSWER_HEADER, HeaderValue::from_static("capacity"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
