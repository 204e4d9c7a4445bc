//! `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does), the classic
//! Prometheus text format otherwise.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

use super::AppState;
use crate::metrics::{OPENMETRICS_TEXT, PROMETHEUS_TEXT};

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> impl IntoResponse {
    for service in state.registry().iter() {
        service.refresh_gauges();
    }
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_TEXT)],
            state.metrics.render_openmetrics(),
        )
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            state.metrics.render_prometheus_text(),
        )
    }
}
