//! `POST /api/v1/heartbeat/:service` (and `GET ...?token=` for cron jobs and curl): an
//! application says it is alive, each time the event it vouches for happens — an M-Pesa
//! callback arrived, a nightly job ran. A `{"outcome": "failure", "detail": "..."}` body reports
//! a failed run: it counts against the breaker at once, with its detail as the cause. A wrong
//! token is refused before anything counts.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::breakers::find;
use super::throttle::Presenter;
use super::token::{matches, presents};
use super::{ApiError, AppState};
use crate::breaker::{Outcome, State as BreakerState};
use crate::config::Check;
use crate::metrics::Source;
use crate::outcome::{FailureReason, ProbeError};
use crate::statefs::StateFiles;
use crate::wall::rfc3339;

/// The largest heartbeat body, in bytes.
pub(crate) const MAX_HEARTBEAT_BYTES: usize = 4 * 1024;
/// The longest failure detail kept, in characters.
const MAX_DETAIL_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Beat {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// What a beat did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BeatAnswer {
    service: String,
    /// When the beat was recorded.
    last_beat: String,
    /// `success` or `failure`, as reported.
    outcome: &'static str,
    /// The breaker's state after the beat.
    state: BreakerState,
}

/// `POST /api/v1/heartbeat/:serviceName` and `GET` with `?token=`.
pub(crate) async fn beat(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    presenter: Presenter,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<BeatAnswer>, ApiError> {
    let service = find(&state, &name)?;
    let Check::Heartbeat(check) = &service.config.check else {
        return Err(ApiError::BadRequest(format!(
            "{name} is a {} check, not a heartbeat (kind = \"heartbeat\")",
            service.config.check.kind()
        )));
    };
    let authorized = presents(&headers, &check.token)
        || query
            .get("token")
            .is_some_and(|token| matches(token, &check.token));
    state.throttle.settle(
        &presenter,
        authorized,
        &state.metrics,
        ApiError::WrongHeartbeatToken,
    )?;
    let body = body.map_err(|rejection| {
        ApiError::BadRequest(format!("cannot read the beat: {}", rejection.body_text()))
    })?;
    let reported = parse(&body)?;
    let Some(clock) = service.probe.heartbeat() else {
        return Err(ApiError::Internal(format!(
            "{name}: a heartbeat without a clock"
        )));
    };
    let (at, kept) = clock.beat().await;
    match kept {
        Some(Ok(())) => state
            .metrics
            .state_faults()
            .written(StateFiles::Heartbeats, clock.file()),
        Some(Err(failure)) => {
            state
                .metrics
                .state_faults()
                .failed(StateFiles::Heartbeats, clock.file(), &failure);
        }
        None => {}
    }
    service.metrics.heartbeat_seen(at);
    let outcome = match reported.outcome.as_deref() {
        Some("failure") => {
            let detail = reported
                .detail
                .as_deref()
                .map(clean)
                .filter(|detail| !detail.is_empty())
                .unwrap_or_else(|| "the application reported a failed run".to_string());
            let failure = ProbeError::new(FailureReason::Reported, detail);
            if let Ok(permit) = service.breaker.acquire_tagged(Source::Check.tag()) {
                service.note_failure(&failure);
                permit.record_measured(Outcome::Failure, std::time::Duration::ZERO, Some(&failure));
            }
            "failure"
        }
        _ => "success",
    };
    Ok(Json(BeatAnswer {
        service: name,
        last_beat: rfc3339(at),
        outcome,
        state: service.breaker.state(),
    }))
}

/// The optional body: empty, or `{"outcome": "success"|"failure", "detail": "..."}`.
fn parse(body: &[u8]) -> Result<Beat, ApiError> {
    if body.len() > MAX_HEARTBEAT_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "a heartbeat body is at most {MAX_HEARTBEAT_BYTES} bytes"
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Beat::default());
    }
    let beat: Beat = serde_json::from_slice(body).map_err(|error| {
        ApiError::BadRequest(format!(
            "a heartbeat body is {{\"outcome\": \"success\"|\"failure\", \"detail\": \"...\"}} or empty: {error}"
        ))
    })?;
    match beat.outcome.as_deref() {
        None | Some("success") | Some("failure") => Ok(beat),
        Some(other) => Err(ApiError::BadRequest(format!(
            "outcome \"{}\" is not success or failure",
            clean(other)
        ))),
    }
}

/// A detail fit for logs and pages: one line, printable, bounded.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}
