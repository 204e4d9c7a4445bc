//! The HTTP API: Prometheus exposition on `/metrics`, the seed's JSON routes under `/api/v1`,
//! and the admin routes behind a bearer token. [`router`] builds the routes apart from serving
//! them, so tests call it directly.

mod admin;
mod breakers;
mod error;
mod exposition;
mod health;
mod heartbeat;
mod liveness;
mod operations;
mod outcomes;
mod runbook;
mod silences;
mod status;
mod stream;
mod throttle;
mod token;
mod trial;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{delete, get, post};

pub use admin::{MAX_DELAY_MS, MAX_ITERATIONS, MAX_TEST_BREAKERS, TEST_BREAKER_TIMEOUT};
pub use breakers::SHARD_HEADER;
pub use error::ApiError;
pub use outcomes::{MAX_DURATION_MS, MAX_OUTCOMES, MAX_REPORT_BYTES, MAX_REPORTED_HEADERS};
pub use status::MAX_STREAM_CLIENTS;
pub use stream::MAX_STATE_STREAM_CLIENTS;
pub use trial::MAX_TRIAL_PERMITS;

use tokio::sync::watch;

use crate::alert::{AlertFeeds, OutageView, QuietView};
use crate::breaker::Breaker;
use crate::config::{Config, Secret};
use crate::history::History;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Asks the daemon to reload its config file; the reply is the applied changes, or every
/// problem of the file (which then changed nothing).
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<Vec<String>, Vec<String>>>;

/// The one snapshot of what runs, published whole by one swap at start and after every
/// reload, so the API, the status page and the proxy never see half of a change. (What the
/// alert stage keeps — outages, holds, silences — changes between reloads and is published by
/// the stage, in [`AlertFeeds`].)
#[derive(Debug)]
pub struct Published {
    /// The running services, each with its own settings.
    pub registry: Arc<Registry>,
    /// The config in force, its services left out (each running service holds its own):
    /// tokens, shard, listeners, alert settings.
    pub config: Arc<Config>,
}

impl Published {
    /// The admin bearer token; admin routes are off without one.
    pub fn admin_token(&self) -> Option<&Secret> {
        self.config.server.admin_token.as_ref()
    }

    /// The daemon-wide token applications report outcomes with (a service's own
    /// `report_token` also works for that service).
    pub fn report_token(&self) -> Option<&Secret> {
        self.config.server.report_token.as_ref()
    }

    /// The shard this replica runs, when sharded.
    pub fn shard(&self) -> Option<crate::config::Shard> {
        self.config.server.shard
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The services and the admin token, as last published.
    published: watch::Receiver<Arc<Published>>,
    /// What the alert stage publishes: outages, holds, silences; and its silencer.
    alerts: AlertFeeds,
    /// The metric families.
    pub metrics: Arc<Metrics>,
    /// Where reload requests go; `None` when the daemon has no config file to reload.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// Breakers made by the simulate-* test routes, apart from the real ones.
    pub test_breakers: Mutex<BTreeMap<String, Breaker>>,
    /// When the daemon started.
    pub started: SystemTime,
    /// Recent transitions and alert deliveries per service.
    pub history: Arc<History>,
    /// The status page's snapshot, shared by its clients.
    pub(crate) status_feed: status::StatusFeed,
    /// Failed bearer tokens by client address.
    pub(crate) throttle: throttle::Throttle,
    /// The cap on clients of the state stream.
    pub(crate) state_stream_clients: stream::StateStreamClients,
    /// Trial permits handed to clients and not yet settled.
    pub(crate) trials: trial::Trials,
    /// Turns true when the daemon stops: streams end, so connections can close.
    pub(crate) stopping: watch::Receiver<bool>,
}

impl Shared {
    /// State for a fixed set of services built from `config` (no reload, no outages).
    pub fn new(registry: Registry, metrics: Arc<Metrics>, config: Arc<Config>) -> Self {
        let (_, published) = watch::channel(Arc::new(Published {
            registry: Arc::new(registry),
            config,
        }));
        let (_, stopping) = watch::channel(false);
        Self::live(
            published,
            AlertFeeds::fixed(),
            metrics,
            Arc::default(),
            None,
            stopping,
        )
    }

    /// State that follows what the daemon publishes.
    pub(crate) fn live(
        published: watch::Receiver<Arc<Published>>,
        alerts: AlertFeeds,
        metrics: Arc<Metrics>,
        history: Arc<History>,
        reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            stopping,
            published,
            alerts,
            metrics,
            reload,
            test_breakers: Mutex::default(),
            started: crate::wall::now(),
            history,
            status_feed: status::StatusFeed::default(),
            throttle: throttle::Throttle::default(),
            state_stream_clients: stream::StateStreamClients::default(),
            trials: trial::Trials::default(),
        }
    }

    /// What the daemon publishes, as it changes (for the proxy).
    pub fn published(&self) -> watch::Receiver<Arc<Published>> {
        self.published.clone()
    }

    /// The daemon-wide report token.
    pub fn report_token(&self) -> Option<Secret> {
        self.published.borrow().report_token().cloned()
    }

    /// The running services.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.published.borrow().registry)
    }

    /// The shard this replica runs, when sharded.
    pub fn shard(&self) -> Option<crate::config::Shard> {
        self.published.borrow().shard()
    }

    /// The admin token.
    pub fn admin_token(&self) -> Option<Secret> {
        self.published.borrow().admin_token().cloned()
    }

    /// Every service's current outage, or the last one that ended.
    pub fn outages(&self) -> Arc<OutageView> {
        Arc::clone(&self.alerts.outages.borrow())
    }

    /// Which services' pages are held, and the active silences.
    pub fn quiet(&self) -> Arc<QuietView> {
        Arc::clone(&self.alerts.quiet.borrow())
    }

    /// Makes and ends silences, when the daemon's alert stage runs.
    pub fn silencer(&self) -> Option<crate::alert::Silencer> {
        self.alerts.silencer.clone()
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
        .route(
            "/api/v1/circuit-breakers/{serviceName}/force-open",
            post(admin::force_open),
        )
        .route(
            "/api/v1/circuit-breakers/{serviceName}/disable",
            post(admin::disable),
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
        .route("/api/v1/silences", post(silences::create))
        .route("/api/v1/silences/{id}", delete(silences::end))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin::guard));
    Router::new()
        .route("/-/healthy", get(liveness::healthy))
        .route("/runbook", get(runbook::page))
        .route("/-/ready", get(liveness::ready))
        .route("/", get(status::page))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/openapi.json", get(status::openapi))
        .route("/api/v1/status/stream", get(status::stream))
        .route("/metrics", get(exposition::metrics))
        .route("/api/v1/silences", get(silences::list))
        .route("/api/v1/circuit-breakers", get(breakers::all))
        .route("/api/v1/circuit-breakers/health", get(health::health))
        .route(
            "/api/v1/circuit-breakers/metrics",
            get(breakers::performance),
        )
        .route("/api/v1/circuit-breakers/stream", get(stream::stream))
        .route("/api/v1/circuit-breakers/{serviceName}", get(breakers::one))
        .route(
            "/api/v1/circuit-breakers/{serviceName}/trials",
            post(trial::ask),
        )
        .route(
            "/api/v1/circuit-breakers/{serviceName}/events",
            get(breakers::events),
        )
        .route(
            "/api/v1/heartbeat/{serviceName}",
            post(heartbeat::beat).layer(DefaultBodyLimit::max(heartbeat::MAX_HEARTBEAT_BYTES)),
        )
        .route(
            "/api/v1/heartbeat/{serviceName}",
            get(heartbeat::beat).layer(DefaultBodyLimit::max(heartbeat::MAX_HEARTBEAT_BYTES)),
        )
        .route(
            "/api/v1/circuit-breakers/{serviceName}/outcomes",
            post(outcomes::report).layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
        )
        .merge(admin)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("{method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} {}", uri.path()))
}
