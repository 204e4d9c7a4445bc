//! `/api/v1/silences`: list (open to all, as the status page shows them), make and end
//! (admin). The alert stage owns the silences; these handlers check the request and ask it.

use std::time::SystemTime;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::alert::{
    MAX_COMMENT_CHARS, MAX_SILENCE, MAX_SILENCES, NewSilence, Silence, SilenceError,
};

/// `POST /api/v1/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceRequest {
    /// The services to silence.
    services: Vec<String>,
    /// When it ends (RFC 3339) …
    until: Option<String>,
    /// … or how long it lasts (`2h`).
    #[serde(rename = "for")]
    lasting: Option<String>,
    /// Why: required, shown wherever the silence is.
    comment: String,
}

/// The answer of the list.
#[derive(Debug, Serialize)]
pub(crate) struct SilenceList {
    silences: Vec<Silence>,
}

/// `GET /api/v1/silences`: the active silences, oldest first.
pub(crate) async fn list(State(state): State<AppState>) -> Json<SilenceList> {
    let now = crate::wall::now();
    Json(SilenceList {
        silences: state
            .quiet()
            .silences
            .iter()
            .filter(|silence| now < silence.until)
            .cloned()
            .collect(),
    })
}

/// `POST /api/v1/silences`: makes a silence; 201 with it.
pub(crate) async fn create(
    State(state): State<AppState>,
    body: Result<Json<SilenceRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let Json(request) = body?;
    let new = check(&state, request, crate::wall::now())?;
    let silencer = silencer(&state)?;
    let silence = silencer.silence(new).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// `DELETE /api/v1/silences/{id}`: ends a silence; answers it.
pub(crate) async fn end(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Silence>, ApiError> {
    let silencer = silencer(&state)?;
    let silence = silencer.unsilence(id).await.map_err(refused)?;
    Ok(Json(silence))
}

fn silencer(state: &AppState) -> Result<crate::alert::Silencer, ApiError> {
    state
        .silencer()
        .ok_or_else(|| ApiError::Unavailable("silences need the daemon's alert stage".to_string()))
}

fn refused(why: SilenceError) -> ApiError {
    match why {
        SilenceError::Full => ApiError::Unavailable(why.to_string()),
        SilenceError::Unknown(_) => ApiError::NotFound(why.to_string()),
        SilenceError::Storage(_) => ApiError::Internal(why.to_string()),
    }
}

/// The request checked against the running services and the bounds.
fn check(
    state: &AppState,
    request: SilenceRequest,
    now: SystemTime,
) -> Result<NewSilence, ApiError> {
    if request.services.is_empty() {
        return Err(ApiError::BadRequest(
            "services: name at least one service to silence".to_string(),
        ));
    }
    let registry = state.registry();
    let known = registry.names();
    let unknown: Vec<&String> = request
        .services
        .iter()
        .filter(|name| !known.iter().any(|known| known == *name))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "services: unknown {} (known services: {})",
            unknown
                .iter()
                .map(|name| format!("\"{name}\""))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )));
    }
    let comment = request.comment.trim().to_string();
    if comment.is_empty() {
        return Err(ApiError::BadRequest(
            "comment: say why the services are silenced (it is shown wherever the silence is)"
                .to_string(),
        ));
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::BadRequest(format!(
            "comment: at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let until = match (&request.until, &request.lasting) {
        (Some(until), None) => chrono::DateTime::parse_from_rfc3339(until)
            .map(SystemTime::from)
            .map_err(|why| {
                ApiError::BadRequest(format!(
                    "until: \"{until}\" is not an RFC 3339 time ({why}); e.g. \"2026-12-01T22:00:00+03:00\""
                ))
            })?,
        (None, Some(lasting)) => {
            let length = crate::config::parse_duration(lasting)
                .map_err(|why| ApiError::BadRequest(format!("for: {why}")))?;
            now + length
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either `until` (RFC 3339) or `for` (a duration such as \"2h\")".to_string(),
            ));
        }
    };
    let length = until.duration_since(now).unwrap_or_default();
    if length.is_zero() {
        return Err(ApiError::BadRequest(
            "the silence would already be over: `until` must be in the future".to_string(),
        ));
    }
    if length > MAX_SILENCE {
        return Err(ApiError::BadRequest(format!(
            "a silence lasts at most {} (this one: {}); at most {MAX_SILENCES} are active at once",
            crate::config::format_duration(MAX_SILENCE),
            crate::wall::span(length)
        )));
    }
    let mut services = request.services;
    services.sort();
    services.dedup();
    Ok(NewSilence {
        services,
        until,
        comment,
    })
}
