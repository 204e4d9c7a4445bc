//! `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does), the classic
//! Prometheus text format otherwise. Rendered on the blocking pool: for 10,000 services it is
//! tens of megabytes of text, and neither the API nor the checks must wait for it. The
//! answer is sent in the pieces it was written in, never copied into one buffer.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

use super::{ApiError, AppState};
use crate::metrics::{Format, OPENMETRICS_TEXT, PROMETHEUS_TEXT};

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let rendered = tokio::task::spawn_blocking(move || {
        for service in state.registry().iter() {
            service.refresh_gauges();
        }
        if wants_openmetrics {
            (
                OPENMETRICS_TEXT,
                state.metrics.exposition(Format::OpenMetrics),
            )
        } else {
            (
                PROMETHEUS_TEXT,
                state.metrics.exposition(Format::Prometheus),
            )
        }
    })
    .await;
    let (content_type, exposition) =
        rendered.map_err(|failure| ApiError::Internal(format!("rendering /metrics: {failure}")))?;
    let length = exposition.len();
    let pieces = exposition
        .into_pieces()
        .into_iter()
        .map(|piece| Ok::<_, Infallible>(Bytes::from_owner(piece)));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(futures_util::stream::iter(pieces)),
    ))
}
