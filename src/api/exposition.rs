//! `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does), the classic
//! Prometheus text format otherwise. Rendered on the blocking pool: for 10,000 services it is
//! tens of megabytes of text, and the checks on the async workers must not wait for it.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

use super::{ApiError, AppState};
use crate::metrics::{OPENMETRICS_TEXT, PROMETHEUS_TEXT};

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
            (OPENMETRICS_TEXT, state.metrics.render_openmetrics())
        } else {
            (PROMETHEUS_TEXT, state.metrics.render_prometheus_text())
        }
    })
    .await;
    let (content_type, body) =
        rendered.map_err(|failure| ApiError::Internal(format!("rendering /metrics: {failure}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], body))
}
