//! The answers the proxy gives itself, without the provider's: the seed's JSON with
//! `"success": false` (503 with `Retry-After` while the breaker is open, 504 at the timeout),
//! 502 when the provider cannot be reached, 503 when breakerd itself runs short, and
//! 400/404/408 for requests it will not forward or whose body the client broke.
//! Each carries `x-breakerd-answer`, so an application can tell them from the provider's own.

use std::time::SystemTime;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::body::ClientFault;
use super::route::Refusal;
use crate::breaker::{OpenError, TimeoutError};
use crate::outcome::ProbeError;

/// The header that marks an answer as the proxy's own, and which one.
pub const ANSWER_HEADER: &str = "x-breakerd-answer";

/// The header on an answer that came from the service's `fallback` (its value: the fallback
/// service's name), because the service named in the path refused the call.
pub const FALLBACK_HEADER: &str = "x-breakerd-fallback";

/// 503: the breaker is open (or half-open with its trial slots taken).
pub(crate) fn open(error: &OpenError) -> Response {
    let mut response = with_success_false(StatusCode::SERVICE_UNAVAILABLE, error, "open");
    let retry_after = match error.next_attempt() {
        Some(next) => seconds_until(next).max(1),
        // Half-open: a trial is under way and decides within the call's timeout.
        None if error.state() == crate::breaker::State::HalfOpen => 1,
        None => return response,
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// 504: the provider did not answer within the service's timeout.
pub(crate) fn timeout(error: &TimeoutError) -> Response {
    with_success_false(StatusCode::GATEWAY_TIMEOUT, error, "timeout")
}

/// 502: the provider could not be reached, or broke the connection.
pub(crate) fn unreachable(service: &str, failure: &ProbeError) -> Response {
    let body = json!({
        "success": false,
        "message": format!("Circuit breaker {service}: the provider could not be reached ({})", failure.reason),
        "service": service,
        "reason": failure.reason.as_str(),
    });
    marked(StatusCode::BAD_GATEWAY, body, "unreachable")
}

/// 408: the client stopped sending its body before the timeout.
pub(crate) fn client_stalled(service: &str) -> Response {
    let body = json!({
        "success": false,
        "message": format!("the request body for {service} stopped arriving; the provider was not blamed"),
        "service": service,
    });
    marked(StatusCode::REQUEST_TIMEOUT, body, "client_timeout")
}

/// 400: the client's request body failed on its way in (malformed framing, or an upload
/// broken off, when the connection closes after this answer, if anyone is left to read it).
pub(crate) fn client_fault(service: &str, fault: ClientFault) -> Response {
    let body = json!({
        "success": false,
        "message": format!("the request body for {service} could not be read: {}; the provider was not blamed", fault.describe()),
        "service": service,
    });
    let mut response = marked(StatusCode::BAD_REQUEST, body, "client_fault");
    if fault == ClientFault::Gone {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// 503: breakerd itself ran short (out of file descriptors) and could not try the provider.
pub(crate) fn local(service: &str, reason: &'static str) -> Response {
    let body = json!({
        "success": false,
        "message": format!("Circuit breaker {service}: breakerd could not make the call ({reason}); the provider was not blamed"),
        "service": service,
        "reason": reason,
    });
    marked(StatusCode::SERVICE_UNAVAILABLE, body, "local")
}

/// 400 or 404: a request the proxy does not forward.
pub(crate) fn refused(refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
        Refusal::NotFound(message) => (StatusCode::NOT_FOUND, message),
    };
    marked(
        status,
        json!({ "success": false, "message": message }),
        "refused",
    )
}

fn with_success_false(
    status: StatusCode,
    error: &impl serde::Serialize,
    kind: &'static str,
) -> Response {
    let mut body = serde_json::to_value(error).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut body {
        map.insert("success".into(), Value::Bool(false));
    }
    marked(status, body, kind)
}

fn marked(status: StatusCode, body: Value, kind: &'static str) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(ANSWER_HEADER, HeaderValue::from_static(kind));
    response
}

/// Seconds from now until `next`, rounded up (for `Retry-After`).
fn seconds_until(next: SystemTime) -> u64 {
    next.duration_since(crate::wall::now()).map_or(1, |wait| {
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    })
}
