//! Wiring: builds the services, schedulers, event pumps and HTTP server from a config, and
//! shuts them down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alert::Alerts;
use crate::api::{self, Shared};
use crate::config::Config;
use crate::history::History;
use crate::metrics::Metrics;
use crate::observe;
use crate::probe::HttpClient;
use crate::registry::{Registry, Service};
use crate::scheduler;

/// A running daemon: its address, and a handle to stop it.
#[derive(Debug)]
pub struct RunningDaemon {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
    alerts: Option<Alerts>,
    grace: Duration,
}

/// Starts everything `config` describes and serves HTTP on `listen` (or the config's address).
pub async fn start(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<RunningDaemon> {
    let metrics = Arc::new(Metrics::new());
    let client = HttpClient::new().context("building the HTTP client")?;
    let registry =
        Arc::new(Registry::build(&config, &client, &metrics).context("building the breakers")?);
    metrics.config_loaded(true);
    let address = listen.unwrap_or(config.server.listen);
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} (set server.listen or --listen to a free address)")
    })?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    if config.server.admin_token.is_none() {
        info!("admin routes are off: no server.admin_token is set");
    }
    let history = Arc::new(History::default());
    let alerts = if config.alerts.has_channels() {
        Some(Alerts::start(
            &config.alerts,
            &registry,
            &client,
            Arc::clone(&metrics),
            Arc::clone(&history),
        )?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        registry: Arc::clone(&registry),
        metrics,
        admin_token: config.server.admin_token.clone(),
        test_breakers: Default::default(),
        started: SystemTime::now(),
        history: Arc::clone(&history),
    });
    let (stop, stopping) = watch::channel(false);
    let mut workers = Vec::new();
    let count = registry.len();
    for (slot, service) in registry.iter().enumerate() {
        workers.push(pump_transitions(
            Arc::clone(service),
            Arc::clone(&history),
            stopping.clone(),
        ));
        workers.push(scheduler::spawn(
            Arc::clone(service),
            slot,
            count,
            stopping.clone(),
        ));
    }
    let router = api::router(Arc::clone(&shared));
    let mut server_stopping = stopping.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_stopping.wait_for(|stop| *stop).await;
            })
            .await
    });
    info!(%address, services = count, "breakerd is serving /metrics and /api/v1");
    Ok(RunningDaemon {
        address,
        shared,
        stop,
        server,
        workers,
        alerts,
        grace: config.server.shutdown_grace,
    })
}

/// Logs, counts and remembers every transition of one service's breaker.
fn pump_transitions(
    service: Arc<Service>,
    history: Arc<History>,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut events = service.breaker.subscribe();
    tokio::spawn(async move {
        let record = |event: &crate::breaker::Transition| {
            observe::transition(&service.metrics, event);
            history.transition(event);
        };
        loop {
            let received = tokio::select! {
                biased;
                received = events.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => {
                    // Log what already happened before stopping.
                    while let Ok(event) = events.try_recv() {
                        record(&event);
                    }
                    return;
                }
            };
            match received {
                Ok(event) => record(&event),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(
                        service = service.name(),
                        missed, "transition log fell behind; some changes were not logged"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

impl RunningDaemon {
    /// The address it serves on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state (registry, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops taking requests and scheduling checks; running checks get the shutdown grace to
    /// finish, then are cancelled.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let grace = self.grace;
        let deadline = tokio::time::Instant::now() + grace;
        let mut server = self.server;
        let server_result = tokio::select! {
            joined = &mut server => Some(joined),
            _ = tokio::time::sleep_until(deadline) => None,
        };
        if let Some(alerts) = self.alerts {
            alerts.shutdown(deadline).await;
        }
        let mut cancelled = 0;
        for worker in self.workers {
            let mut worker = worker;
            if tokio::time::timeout_at(deadline, &mut worker)
                .await
                .is_err()
            {
                worker.abort();
                cancelled += 1;
            }
        }
        info!(cancelled_tasks = cancelled, "breakerd stopped");
        match server_result {
            Some(joined) => joined
                .context("the HTTP server task failed")?
                .context("the HTTP server failed"),
            None => {
                server.abort();
                warn!(
                    "open HTTP connections did not close within {} ms",
                    grace.as_millis()
                );
                Ok(())
            }
        }
    }
}

/// Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let daemon = start(config, listen).await?;
    shutdown_signal().await;
    info!("shutting down");
    daemon.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
