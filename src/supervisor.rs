//! Owns the running services — each one's breaker, scheduler and transition log — and the alert
//! machinery, and applies a new config to them: unchanged services run on untouched, changed
//! ones keep their breaker state and counts wherever the change allows, removed ones stop and
//! their series disappear, new ones start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alert::Alerts;
use crate::breaker::{PolicyError, Transition};
use crate::config::Config;
use crate::history::History;
use crate::metrics::Metrics;
use crate::observe;
use crate::probe::HttpClient;
use crate::registry::{Registry, Service, effective_policy};
use crate::scheduler;

/// How long a replaced service's running check may take to finish before it is cancelled.
const REPLACE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Running {
    service: Arc<Service>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The spread slot of a scheduler not started yet: schedulers start only once everything
    /// that listens to the breaker (log, alerts) is subscribed, so no transition is missed.
    pending_schedule: Option<(usize, usize)>,
}

impl Running {
    async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Supervisor {
    config: Config,
    client: HttpClient,
    metrics: Arc<Metrics>,
    history: Arc<History>,
    running: BTreeMap<String, Running>,
    alerts: Option<Alerts>,
}

impl Supervisor {
    pub(crate) fn start(
        config: Config,
        client: HttpClient,
        metrics: Arc<Metrics>,
        history: Arc<History>,
    ) -> anyhow::Result<Self> {
        let mut supervisor = Self {
            config: config.clone(),
            client,
            metrics,
            history,
            running: BTreeMap::new(),
            alerts: None,
        };
        let count = config.services.len();
        for (slot, service) in config.services.iter().enumerate() {
            let built = Service::new(
                service.clone(),
                config.server.slow_call,
                supervisor.client.clone(),
                &supervisor.metrics,
            )
            .with_context(|| format!("building the breaker of {}", service.name))?;
            supervisor.launch(Arc::new(built), slot, count);
        }
        supervisor.alerts = supervisor.start_alerts()?;
        supervisor.start_schedulers();
        Ok(supervisor)
    }

    /// The running services.
    pub(crate) fn registry(&self) -> Registry {
        Registry::from_services(
            self.running
                .values()
                .map(|running| Arc::clone(&running.service)),
        )
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Subscribes the transition log to `service`; its scheduler waits for
    /// [`Self::start_schedulers`].
    fn launch(&mut self, service: Arc<Service>, slot: usize, slots: usize) {
        let (stop, stopping) = watch::channel(false);
        let pump = pump_transitions(Arc::clone(&service), Arc::clone(&self.history), stopping);
        let running = Running {
            service,
            stop,
            tasks: vec![pump],
            pending_schedule: Some((slot, slots)),
        };
        self.running
            .insert(running.service.name().to_string(), running);
    }

    fn start_schedulers(&mut self) {
        for running in self.running.values_mut() {
            if let Some((slot, slots)) = running.pending_schedule.take() {
                let stopping = running.stop.subscribe();
                running.tasks.push(scheduler::spawn(
                    Arc::clone(&running.service),
                    slot,
                    slots,
                    stopping,
                ));
            }
        }
    }

    fn start_alerts(&self) -> anyhow::Result<Option<Alerts>> {
        if !self.config.alerts.has_channels() {
            return Ok(None);
        }
        let registry = self.registry();
        let alerts = Alerts::start(
            &self.config.alerts,
            &registry,
            &self.client,
            Arc::clone(&self.metrics),
            Arc::clone(&self.history),
        )?;
        Ok(Some(alerts))
    }

    /// Applies `next`; returns what changed, one line each.
    pub(crate) async fn apply(&mut self, next: Config) -> anyhow::Result<Vec<String>> {
        let mut changes = Vec::new();
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| next.service(name).is_none())
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.running.remove(&name) {
                running.stop(REPLACE_GRACE).await;
            }
            self.metrics.remove_service(&name);
            changes.push(format!("{name}: removed"));
        }
        let count = next.services.len();
        for (slot, wanted) in next.services.iter().enumerate() {
            let policy = effective_policy(wanted, next.server.slow_call);
            let Some(current) = self.running.get(&wanted.name) else {
                let built = Service::new(
                    wanted.clone(),
                    next.server.slow_call,
                    self.client.clone(),
                    &self.metrics,
                )?;
                self.launch(Arc::new(built), slot, count);
                changes.push(format!("{}: added", wanted.name));
                continue;
            };
            let old = Arc::clone(&current.service);
            if old.config == *wanted && old.breaker.policy() == policy {
                continue;
            }
            let replacement = match old.breaker.update_policy(&policy) {
                Ok(()) => {
                    changes.push(format!(
                        "{}: changed (breaker state and counts kept)",
                        wanted.name
                    ));
                    Service::reconfigured(
                        &old,
                        wanted.clone(),
                        old.breaker.clone(),
                        self.client.clone(),
                    )
                }
                Err(PolicyError::NeedsNewBreaker) => {
                    warn!(service = %wanted.name, "sliding window or backoff changed: the breaker starts afresh");
                    changes.push(format!(
                        "{}: changed (new sliding window or backoff: breaker reset)",
                        wanted.name
                    ));
                    Service::new(
                        wanted.clone(),
                        next.server.slow_call,
                        self.client.clone(),
                        &self.metrics,
                    )?
                }
                Err(error) => return Err(error.into()),
            };
            if let Some(running) = self.running.remove(&wanted.name) {
                running.stop(REPLACE_GRACE).await;
            }
            self.launch(Arc::new(replacement), slot, count);
        }
        let alerts_changed = next.alerts != self.config.alerts;
        if alerts_changed {
            changes.push("alerts: changed".to_string());
        }
        self.config = next;
        if alerts_changed || !changes.is_empty() {
            // Alert forwarders follow the breakers: restart them on any change.
            if let Some(alerts) = self.alerts.take() {
                alerts
                    .shutdown(tokio::time::Instant::now() + REPLACE_GRACE)
                    .await;
            }
            self.alerts = self.start_alerts()?;
        }
        self.start_schedulers();
        Ok(changes)
    }

    /// Stops every service and the alerts; running checks and queued alerts get until
    /// `deadline`.
    pub(crate) async fn shutdown(self, deadline: tokio::time::Instant) -> usize {
        for running in self.running.values() {
            let _ = running.stop.send(true);
        }
        if let Some(alerts) = self.alerts {
            alerts.shutdown(deadline).await;
        }
        let mut cancelled = 0;
        for running in self.running.into_values() {
            for mut task in running.tasks {
                if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                    task.abort();
                    cancelled += 1;
                }
            }
        }
        info!(cancelled_tasks = cancelled, "services stopped");
        cancelled
    }
}

/// Logs, counts and remembers every transition of one service's breaker.
fn pump_transitions(
    service: Arc<Service>,
    history: Arc<History>,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut events = service.breaker.subscribe();
    tokio::spawn(async move {
        let record = |event: &Transition| {
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
