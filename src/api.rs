//! The HTTP API: Prometheus exposition on `/metrics`, the seed's JSON routes under `/api/v1`,
//! and the admin routes behind a bearer token. [`router`] builds the routes apart from serving
//! them, so tests call it directly.

mod admin;
mod breakers;
mod error;
mod exposition;
mod status;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{get, post};

pub use admin::{MAX_DELAY_MS, MAX_ITERATIONS, MAX_TEST_BREAKERS, TEST_BREAKER_TIMEOUT};
pub use error::ApiError;

use crate::breaker::Breaker;
use crate::config::Secret;
use crate::history::History;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Asks the daemon to reload its config file; the reply is the applied changes, or every
/// problem of the file (which then changed nothing).
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<Vec<String>, Vec<String>>>;

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The running services; replaced as a whole on reload.
    pub registry: RwLock<Arc<Registry>>,
    /// The metric families.
    pub metrics: Arc<Metrics>,
    /// The admin bearer token; admin routes are off without one.
    pub admin_token: RwLock<Option<Secret>>,
    /// Where reload requests go; `None` when the daemon has no config file to reload.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// Breakers made by the simulate-* test routes, apart from the real ones.
    pub test_breakers: Mutex<BTreeMap<String, Breaker>>,
    /// When the daemon started.
    pub started: SystemTime,
    /// Recent transitions and alert deliveries per service.
    pub history: Arc<History>,
}

impl Shared {
    /// State for a fixed set of services (no reload).
    pub fn new(registry: Registry, metrics: Arc<Metrics>, admin_token: Option<Secret>) -> Self {
        Self {
            registry: RwLock::new(Arc::new(registry)),
            metrics,
            admin_token: RwLock::new(admin_token),
            reload: None,
            test_breakers: Mutex::default(),
            started: SystemTime::now(),
            history: Arc::default(),
        }
    }

    /// The running services.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The admin token.
    pub fn admin_token(&self) -> Option<Secret> {
        self.admin_token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The handlers' state.
pub type AppState = Arc<Shared>;

/// Every route, with the body limit and the admin guard.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route(
            "/api/v1/circuit-breakers/{serviceName}/reset",
            post(admin::reset),
        )
        .route("/api/v1/circuit-breakers/reset-all", post(admin::reset_all))
        .route(
            "/api/v1/test-circuit-breaker/simulate-failure",
            post(admin::simulate_failure),
        )
        .route(
            "/api/v1/test-circuit-breaker/simulate-timeout",
            post(admin::simulate_timeout),
        )
        .route(
            "/api/v1/test-circuit-breaker/test-external-services",
            post(admin::test_external_services),
        )
        .route("/-/reload", post(admin::reload))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin::guard));
    Router::new()
        .route("/", get(status::page))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/openapi.json", get(status::openapi))
        .route("/api/v1/status/stream", get(status::stream))
        .route("/metrics", get(exposition::metrics))
        .route("/api/v1/circuit-breakers", get(breakers::all))
        .route("/api/v1/circuit-breakers/health", get(breakers::health))
        .route(
            "/api/v1/circuit-breakers/metrics",
            get(breakers::performance),
        )
        .route("/api/v1/circuit-breakers/{serviceName}", get(breakers::one))
        .route(
            "/api/v1/circuit-breakers/{serviceName}/events",
            get(breakers::events),
        )
        .merge(admin)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("{method} {}", uri.path()))
}
