//! `GET /-/healthy` and `GET /-/ready`, as Prometheus and Alertmanager have them, for container
//! and Kubernetes probes and `breakerd health`: plain text, no token, nothing computed.

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// Alive: the daemon answers HTTP.
pub(crate) async fn healthy() -> &'static str {
    "breakerd is Healthy.\n"
}

/// Ready: started (every service scheduled, listeners bound) and not stopping.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if *state.stopping.borrow() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "breakerd is shutting down.\n",
        )
    } else {
        (StatusCode::OK, "breakerd is Ready.\n")
    }
}
