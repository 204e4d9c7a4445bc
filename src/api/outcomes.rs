//! The outcome API: an application that calls a provider itself reports how its calls went,
//! `POST /api/v1/circuit-breakers/:service/outcomes` with a batch of
//! `{"outcome", "durationMs", "reason"}`, and each one feeds the service's breaker as real
//! traffic (`source="traffic"`). Reports need a report token (the service's own or the
//! daemon-wide one), never the admin token. A batch is checked whole before any of it counts.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::breakers::find;
use super::token::presents;
use super::{ApiError, AppState};
use crate::breaker::{Outcome, State as BreakerState};
use crate::metrics::Source;
use crate::probe::{FailureReason, ProbeError};

/// The most outcomes one report may carry.
pub const MAX_OUTCOMES: usize = 500;
/// The largest report body, in bytes.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// The longest duration a reported call may have taken, in milliseconds (one hour).
pub const MAX_DURATION_MS: f64 = 3_600_000.0;

/// One reported call, checked.
#[derive(Debug)]
struct Reported {
    outcome: Outcome,
    duration: std::time::Duration,
    reason: Option<FailureReason>,
}

/// What a report did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportAnswer {
    service: String,
    /// Outcomes the breaker took.
    accepted: usize,
    /// Outcomes it did not take: it was open (or half-open with its trials under way).
    rejected: usize,
    /// The breaker's state after the report.
    state: BreakerState,
}

/// `POST /api/v1/circuit-breakers/:serviceName/outcomes`.
pub(crate) async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let service = find(&state, &name)?;
    let Some(token) = service
        .config
        .report_token
        .clone()
        .or_else(|| state.report_token())
    else {
        return Err(ApiError::ReportsDisabled(name));
    };
    if !presents(&headers, &token) {
        return Err(ApiError::WrongReportToken);
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "a report is at most {MAX_REPORT_BYTES} bytes; send more reports"
            ))
        } else {
            ApiError::BadRequest(format!("cannot read the report: {}", rejection.body_text()))
        }
    })?;
    let batch = parse(&body)?;
    let (mut accepted, mut rejected) = (0, 0);
    for call in batch {
        let Ok(permit) = service.breaker.acquire_tagged(Source::Traffic.tag()) else {
            rejected += 1;
            continue;
        };
        accepted += 1;
        match call.outcome {
            Outcome::Failure | Outcome::Timeout => {
                let reason = call.reason.unwrap_or(match call.outcome {
                    Outcome::Timeout => FailureReason::Timeout,
                    _ => FailureReason::HttpStatus,
                });
                let failure = ProbeError::new(
                    reason,
                    format!(
                        "{reason} after {} ms (reported by the application)",
                        call.duration.as_millis()
                    ),
                );
                service.note_failure(&failure);
                permit.record_measured(call.outcome, call.duration, Some(&failure));
            }
            outcome => permit.record_measured(outcome, call.duration, None),
        }
    }
    let answer = ReportAnswer {
        service: name,
        accepted,
        rejected,
        state: service.breaker.state(),
    };
    Ok(Json(answer).into_response())
}

/// The batch in `body`: a JSON array of outcomes (or one outcome alone), each checked.
fn parse(body: &[u8]) -> Result<Vec<Reported>, ApiError> {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "a report is at most {MAX_REPORT_BYTES} bytes; send more reports"
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("malformed JSON body: {error}")))?;
    let items = match value {
        Value::Array(items) => items,
        item @ Value::Object(_) => vec![item],
        _ => {
            return Err(ApiError::BadRequest(
                "send a JSON array of outcomes: [{\"outcome\": \"success\", \"durationMs\": 812}]"
                    .into(),
            ));
        }
    };
    if items.is_empty() || items.len() > MAX_OUTCOMES {
        return Err(ApiError::BadRequest(format!(
            "a report carries {} outcomes, allowed is 1 to {MAX_OUTCOMES}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            reported(item).map_err(|problem| ApiError::BadRequest(format!("[{index}]{problem}")))
        })
        .collect()
}

/// One outcome, or what is wrong with it (starting with the field's path).
fn reported(item: &Value) -> Result<Reported, String> {
    let Value::Object(fields) = item else {
        return Err(": each outcome is an object".into());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !matches!(key.as_str(), "outcome" | "durationMs" | "reason"))
    {
        return Err(format!(
            ".{unknown}: unknown field; allowed are outcome, durationMs and reason"
        ));
    }
    let outcome = match fields.get("outcome").and_then(Value::as_str) {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        Some("timeout") => Outcome::Timeout,
        Some("ignored") => Outcome::Ignored,
        _ => {
            return Err(
                ".outcome: required, one of \"success\", \"failure\", \"timeout\", \"ignored\""
                    .into(),
            );
        }
    };
    let millis = match fields.get("durationMs") {
        None => 0.0,
        Some(value) => value
            .as_f64()
            .filter(|millis| (0.0..=MAX_DURATION_MS).contains(millis))
            .ok_or_else(|| {
                format!(".durationMs: a number of milliseconds from 0 to {MAX_DURATION_MS}")
            })?,
    };
    let reason = match fields.get("reason") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_str()
                .and_then(|text| {
                    FailureReason::ALL
                        .into_iter()
                        .find(|reason| reason.as_str() == text)
                })
                .ok_or_else(|| {
                    let allowed: Vec<&str> = FailureReason::ALL
                        .iter()
                        .map(|reason| reason.as_str())
                        .collect();
                    format!(".reason: one of {}", allowed.join(", "))
                })?,
        ),
    };
    Ok(Reported {
        outcome,
        duration: std::time::Duration::from_secs_f64(millis / 1000.0),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(ApiError::BadRequest(problem)) => problem,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_batch_is_checked_whole_and_problems_name_their_place() {
        let batch = parse(
            br#"[{"outcome":"success","durationMs":812},{"outcome":"failure","durationMs":3.5,"reason":"throttled"}]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].reason, Some(FailureReason::Throttled));
        assert_eq!(batch[0].duration.as_millis(), 812);
        assert_eq!(parse(br#"{"outcome":"timeout"}"#).unwrap().len(), 1);
        assert!(
            problem(r#"[{"outcome":"success"},{"outcome":"meh"}]"#).starts_with("[1].outcome:")
        );
        assert!(
            problem(r#"[{"outcome":"success","durationMs":-1}]"#).starts_with("[0].durationMs:")
        );
        assert!(
            problem(r#"[{"outcome":"success","durationMs":1e12}]"#).starts_with("[0].durationMs:")
        );
        assert!(problem(r#"[{"outcome":"failure","reason":"gremlins"}]"#).contains("throttled"));
        assert!(problem(r#"[{"outcome":"success","detail":"x"}]"#).starts_with("[0].detail:"));
        assert!(problem("[]").contains("allowed is 1 to 500"));
        assert!(problem("7").starts_with("send a JSON array"));
        let many = format!("[{}]", vec![r#"{"outcome":"success"}"#; 501].join(","));
        assert!(problem(&many).contains("501 outcomes"));
    }
}
