//! The outcome API: an application that calls a provider itself reports how its calls went,
//! `POST /api/v1/circuit-breakers/:service/outcomes` with a batch of verdicts
//! (`{"outcome", "durationMs", "reason"}`) or of the answers themselves
//! (`{"method", "path", "status", "body", "headers", "durationMs"}`), which breakerd judges
//! with the service's rules exactly as the proxy would. Each feeds the service's breaker as
//! real traffic (`source="traffic"`, by operation). Reports need a report token (the service's
//! own or the daemon-wide one), never the admin token. A batch is checked whole before any of
//! it counts. An outcome that names a trial `permit` (see [`super::trial`]) settles that
//! permit's half-open slot instead of asking the breaker for leave again.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::breakers::find;
use super::throttle::Presenter;
use super::trial::{Gate, check_report_token};
use super::{ApiError, AppState};
use crate::breaker::{Outcome, OwnedPermit, State as BreakerState};
use crate::metrics::Source;
use crate::outcome::{FailureReason, ProbeError, Said};
use crate::provider::{Head, MAX_JUDGED_BODY};
use crate::registry::{Service, Settled};

/// The most outcomes one report may carry.
pub const MAX_OUTCOMES: usize = 500;
/// The largest report body, in bytes (answers may carry the start of their bodies).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// The longest duration a reported call may have taken, in milliseconds (one hour).
pub const MAX_DURATION_MS: f64 = 3_600_000.0;
/// The most headers a reported answer may carry.
pub const MAX_REPORTED_HEADERS: usize = 32;
/// The longest method, path or header a reported answer may carry, in bytes.
const MAX_FIELD_BYTES: usize = 2048;
/// The longest trial permit id a report may name, in bytes.
const MAX_PERMIT_BYTES: usize = 64;
/// The longest operation name a verdict may carry, in bytes.
const MAX_OPERATION_BYTES: usize = 64;

/// One reported call, checked.
#[derive(Debug)]
struct Reported {
    duration: std::time::Duration,
    what: What,
    /// The trial permit the call was made under (`POST .../trials`), if any.
    permit: Option<String>,
}

/// What the application reported of a call.
#[derive(Debug)]
enum What {
    /// Its own verdict.
    Verdict {
        outcome: Outcome,
        reason: Option<FailureReason>,
        /// The operation it was (`breakers = "per_operation"`: its breaker takes it); `None`
        /// for none in particular (`other`).
        operation: Option<String>,
    },
    /// The provider's answer, for breakerd to judge.
    Answer {
        method: String,
        path: String,
        status: u16,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    },
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
    /// For each reported answer, how the service's rules judged it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    judged: Vec<Judged>,
}

/// How one reported answer was judged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Judged {
    /// Its place in the batch.
    index: usize,
    /// Its operation.
    operation: String,
    /// `success`, `failure`, `throttled`, `balance`, `auth`, `account` or `caller`.
    class: &'static str,
    /// The failure reason or the caller's outcome kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The rule that decided.
    rule: String,
    /// What it means, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
}

/// `POST /api/v1/circuit-breakers/:serviceName/outcomes`.
pub(crate) async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    presenter: Presenter,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let service = find(&state, &name)?;
    check_report_token(&state, &service, &headers, &presenter)?;
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
    known_operations(&service, &batch)?;
    let (mut accepted, mut rejected) = (0, 0);
    let mut judged = Vec::new();
    for (index, call) in batch.into_iter().enumerate() {
        let held = call
            .permit
            .as_deref()
            .and_then(|id| state.trials.take(&name, id));
        let taken = match call.what {
            What::Verdict {
                outcome,
                reason,
                operation,
            } => record_verdict(
                &service,
                held,
                outcome,
                reason,
                call.duration,
                operation.as_deref(),
            ),
            What::Answer {
                method,
                path,
                status,
                headers,
                body,
            } => {
                let path = service.judge.relative_path(&path).to_string();
                let operation = service.judge.operation(&method, &path);
                let head = Head {
                    operation: &operation.name,
                    method: &method,
                    path: &path,
                    status,
                    headers: &headers,
                };
                let mut judgement = service.judge.judge(&head, body.as_deref());
                judged.push(Judged {
                    index,
                    operation: operation.name.to_string(),
                    class: judgement.verdict.class(),
                    reason: match judgement.verdict {
                        crate::outcome::Verdict::Success => None,
                        crate::outcome::Verdict::Failure(reason) => Some(reason.to_string()),
                        crate::outcome::Verdict::Caller(kind) => Some(kind.to_string()),
                    },
                    rule: judgement.rule.to_string(),
                    detail: service.probe.redact_text(&judgement.detail),
                });
                match Gate::admit(
                    service.breaker_for(operation.index),
                    held,
                    Source::traffic(operation.index),
                ) {
                    None => false,
                    Some(permit) => {
                        if !judgement.detail.is_empty() {
                            judgement.detail.push_str(" (reported by the application)");
                        }
                        match service.settle(&judgement, &[]) {
                            Settled::Success => {
                                permit.record_measured(Outcome::Success, call.duration, None)
                            }
                            Settled::Ignored => {
                                permit.record_measured(Outcome::Ignored, call.duration, None)
                            }
                            Settled::Failure(failure) => permit.record_measured(
                                Outcome::Failure,
                                call.duration,
                                Some(&failure),
                            ),
                        }
                        true
                    }
                }
            }
        };
        if taken {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    let answer = ReportAnswer {
        service: name,
        accepted,
        rejected,
        state: service.breaker.state(),
        judged,
    };
    Ok(Json(answer).into_response())
}

/// Says which verdict of `batch` names an operation `service`'s catalogue does not have.
fn known_operations(service: &Service, batch: &[Reported]) -> Result<(), ApiError> {
    let names = service.judge.operation_names();
    for (index, call) in batch.iter().enumerate() {
        if let What::Verdict {
            operation: Some(operation),
            ..
        } = &call.what
            && !names.iter().any(|name| **name == **operation)
        {
            let known: Vec<&str> = names.iter().map(|name| &**name).collect();
            return Err(ApiError::BadRequest(format!(
                "[{index}].operation: {} has no operation \"{operation}\" (its operations: {})",
                service.name(),
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Feeds an application's own verdict to the breaker of its operation (the service's own for
/// none); false when the breaker did not take it.
fn record_verdict(
    service: &Service,
    held: Option<OwnedPermit>,
    outcome: Outcome,
    reason: Option<FailureReason>,
    duration: std::time::Duration,
    operation: Option<&str>,
) -> bool {
    let operation = service
        .judge
        .named(operation.unwrap_or(crate::provider::OTHER));
    let Some(permit) = Gate::admit(
        service.breaker_for(operation.index),
        held,
        Source::traffic(operation.index),
    ) else {
        return false;
    };
    match outcome {
        Outcome::Failure | Outcome::Timeout => {
            let reason = reason.unwrap_or(match outcome {
                Outcome::Timeout => FailureReason::Timeout,
                _ => FailureReason::HttpStatus,
            });
            let failure = ProbeError::new(
                reason,
                format!(
                    "{reason} after {} ms (reported by the application)",
                    duration.as_millis()
                ),
            )
            .saying(Said {
                operation: Some(operation.name.to_string()),
                code: None,
                message: None,
            });
            service.note_failure(&failure);
            permit.record_measured(outcome, duration, Some(&failure));
        }
        outcome => permit.record_measured(outcome, duration, None),
    }
    true
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
    let is_answer = fields.contains_key("status");
    let allowed: &[&str] = if is_answer {
        &[
            "method",
            "path",
            "status",
            "body",
            "headers",
            "durationMs",
            "permit",
        ]
    } else {
        &["outcome", "durationMs", "reason", "operation", "permit"]
    };
    if let Some(unknown) = fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(format!(
            ".{unknown}: unknown field; allowed are {} (a verdict) or method, path, status, body, headers and durationMs (an answer), and permit",
            "outcome, durationMs, reason and operation"
        ));
    }
    let millis = match fields.get("durationMs") {
        None => 0.0,
        Some(value) => value
            .as_f64()
            .filter(|millis| (0.0..=MAX_DURATION_MS).contains(millis))
            .ok_or_else(|| {
                format!(".durationMs: a number of milliseconds from 0 to {MAX_DURATION_MS}")
            })?,
    };
    let duration = std::time::Duration::from_secs_f64(millis / 1000.0);
    let permit = match fields.get("permit") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_PERMIT_BYTES => {
            Some(id.clone())
        }
        Some(_) => {
            return Err(format!(
                ".permit: the id a trial permit was given with, a string of at most {MAX_PERMIT_BYTES} bytes"
            ));
        }
    };
    let what = if is_answer {
        answer(fields)?
    } else {
        verdict(fields)?
    };
    Ok(Reported {
        duration,
        what,
        permit,
    })
}

/// An application's own verdict.
fn verdict(fields: &serde_json::Map<String, Value>) -> Result<What, String> {
    let outcome = match fields.get("outcome").and_then(Value::as_str) {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        Some("timeout") => Outcome::Timeout,
        Some("ignored") => Outcome::Ignored,
        _ => {
            return Err(
                ".outcome: required, one of \"success\", \"failure\", \"timeout\", \"ignored\" (or send the answer: method, path, status, body)"
                    .into(),
            );
        }
    };
    let reason =
        match fields.get("reason") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_str().and_then(FailureReason::parse).ok_or_else(
                || {
                    let allowed: Vec<&str> = FailureReason::ALL
                        .iter()
                        .map(|reason| reason.as_str())
                        .collect();
                    format!(".reason: one of {}", allowed.join(", "))
                },
            )?),
        };
    let operation = match fields.get("operation") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_str()
                .filter(|name| !name.is_empty() && name.len() <= MAX_OPERATION_BYTES)
                .ok_or_else(|| {
                    format!(
                        ".operation: an operation of the service's catalogue, 1 to {MAX_OPERATION_BYTES} bytes (e.g. \"b2c\")"
                    )
                })?
                .to_string(),
        ),
    };
    Ok(What::Verdict {
        outcome,
        reason,
        operation,
    })
}

/// A provider's answer, to be judged.
fn answer(fields: &serde_json::Map<String, Value>) -> Result<What, String> {
    let text = |key: &str| -> Result<String, String> {
        match fields.get(key).and_then(Value::as_str) {
            Some(text) if !text.is_empty() && text.len() <= MAX_FIELD_BYTES => Ok(text.to_string()),
            _ => Err(format!(
                ".{key}: required, a string of 1 to {MAX_FIELD_BYTES} bytes (e.g. \"{}\")",
                if key == "method" {
                    "POST"
                } else {
                    "/mpesa/stkpushquery/v1/query"
                }
            )),
        }
    };
    let method = text("method")?;
    if !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(".method: \"{method}\" is not an HTTP method"));
    }
    let path = text("path")?;
    let status = fields
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|status| u16::try_from(status).ok())
        .filter(|status| (100..=599).contains(status))
        .ok_or_else(|| ".status: the answer's HTTP status, 100 to 599".to_string())?;
    let body = match fields.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.as_bytes().to_vec()),
        Some(value @ (Value::Object(_) | Value::Array(_))) => {
            Some(serde_json::to_vec(value).unwrap_or_default())
        }
        Some(_) => {
            return Err(".body: the start of the answer's body, as a string (or its JSON)".into());
        }
    };
    if body
        .as_ref()
        .is_some_and(|body| body.len() > MAX_JUDGED_BODY)
    {
        return Err(format!(
            ".body: at most {MAX_JUDGED_BODY} bytes; send the start of the body (the rules read no further)"
        ));
    }
    let headers = match fields.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) if map.len() <= MAX_REPORTED_HEADERS => map
            .iter()
            .map(|(name, value)| match value.as_str() {
                Some(value) if name.len() + value.len() <= MAX_FIELD_BYTES => {
                    Ok((name.to_ascii_lowercase(), value.to_string()))
                }
                _ => Err(format!(
                    ".headers.{name}: a string of at most {MAX_FIELD_BYTES} bytes"
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(format!(
                ".headers: an object of at most {MAX_REPORTED_HEADERS} names and string values"
            ));
        }
    };
    Ok(What::Answer {
        method,
        path,
        status,
        headers,
        body,
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
        assert!(matches!(
            batch[1].what,
            What::Verdict {
                reason: Some(FailureReason::Throttled),
                ..
            }
        ));
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

    #[test]
    fn answers_are_checked_field_by_field() {
        let batch = parse(
            br#"[{"method":"POST","path":"/mpesa/stkpushquery/v1/query","status":500,"body":"{\"errorCode\":\"500.001.1001\"}","headers":{"Retry-After":"30"},"durationMs":120}]"#,
        )
        .unwrap();
        let What::Answer {
            status,
            headers,
            body,
            ..
        } = &batch[0].what
        else {
            panic!("an answer")
        };
        assert_eq!(*status, 500);
        assert_eq!(headers, &[("retry-after".to_string(), "30".to_string())]);
        assert!(body.as_ref().is_some_and(|body| body.starts_with(b"{")));
        assert!(problem(r#"[{"method":"POST","status":200}]"#).starts_with("[0].path:"));
        assert!(
            problem(r#"[{"method":"POST","path":"/x","status":99}]"#).starts_with("[0].status:")
        );
        assert!(
            problem(r#"[{"method":"P O","path":"/x","status":200}]"#).starts_with("[0].method:")
        );
        let long = format!(
            r#"[{{"method":"GET","path":"/x","status":200,"body":"{}"}}]"#,
            "a".repeat(MAX_JUDGED_BODY + 1)
        );
        assert!(problem(&long).starts_with("[0].body: at most 65536 bytes"));
        assert!(
            problem(r#"[{"method":"GET","path":"/x","status":200,"outcome":"success"}]"#)
                .starts_with("[0].outcome: unknown field")
        );
    }
}
