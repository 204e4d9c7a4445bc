//! Owns the running services — each one's breaker, scheduler and transition pump — and the
//! alert stage, and applies a new config to them: unchanged services run on untouched, changed
//! ones keep their breaker's state and counts (a breaker that must be rebuilt takes over its
//! predecessor's state), removed ones stop and are forgotten, new ones start. It publishes the
//! one snapshot the API reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alert::{AlertStage, Restored, StageEvent};
use crate::api::Published;
use crate::breaker::{PolicyError, State, Transition};
use crate::check_threads::CheckThreads;
use crate::config::{Config, service_changes};
use crate::history::History;
use crate::metrics::Metrics;
use crate::observe;
use crate::probe::HttpClient;
use crate::registry::{Registry, Service, carries_traffic, effective_policy};
use crate::scheduler;
use crate::tasks::{self, TaskKind};

/// How long a replaced service's running check may take to finish before it is cancelled.
const REPLACE_GRACE: Duration = Duration::from_secs(2);

/// A task and the switch that stops it.
#[derive(Debug)]
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn(start: impl FnOnce(watch::Receiver<bool>) -> JoinHandle<()>) -> Self {
        let (stop, stopping) = watch::channel(false);
        Self {
            stop,
            handle: start(stopping),
        }
    }

    /// Asks it to stop; it gets until `deadline`, then is cancelled. Returns whether it was.
    async fn stop(self, deadline: tokio::time::Instant) -> bool {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout_at(deadline, &mut handle)
            .await
            .is_err()
        {
            handle.abort();
            return true;
        }
        false
    }
}

#[derive(Debug)]
struct Running {
    service: Arc<Service>,
    /// Logs, counts and forwards the breaker's transitions; lives as long as the breaker.
    pump: Task,
    /// Runs the checks; replaced whenever the service's config changes.
    scheduler: Option<Task>,
    /// The spread slot of a scheduler not started yet: schedulers start only once everything
    /// that listens to the breaker is subscribed, so no transition is missed.
    pending_schedule: Option<(usize, usize)>,
}

#[derive(Debug)]
pub(crate) struct Supervisor {
    config: Config,
    client: HttpClient,
    metrics: Arc<Metrics>,
    history: Arc<History>,
    running: BTreeMap<String, Running>,
    stage: AlertStage,
    published: watch::Sender<Arc<Published>>,
    /// The shard `--shard` chose, over any `server.shard` in the file.
    shard: Option<crate::config::Shard>,
    /// Where the checks run.
    check_threads: CheckThreads,
}

impl Supervisor {
    /// Starts the alert stage (reading what `state_dir` kept), builds every service, puts each
    /// breaker back where the last run left it, and starts the checks.
    pub(crate) async fn start(
        config: Config,
        shard: Option<crate::config::Shard>,
        client: HttpClient,
        metrics: Arc<Metrics>,
        history: Arc<History>,
    ) -> anyhow::Result<Self> {
        let config = sharded(config, shard);
        let check_threads = CheckThreads::start(config.server.check_threads)
            .context("starting the check threads")?;
        let (stage, mut restored) =
            AlertStage::start(&config, &client, Arc::clone(&metrics), Arc::clone(&history)).await?;
        let registry = Registry::build(&config, &client, &metrics)?;
        let (published, _) = watch::channel(Arc::new(Published::default()));
        let mut supervisor = Self {
            config,
            client,
            metrics,
            history,
            running: BTreeMap::new(),
            stage,
            published,
            shard,
            check_threads,
        };
        let count = registry.len();
        for (slot, service) in registry.iter().enumerate() {
            if let Some(kept) = restored.remove(service.name()) {
                restore(service, &kept);
            }
            supervisor.launch(Arc::clone(service), slot, count);
        }
        supervisor.hold_disabled(None);
        supervisor.start_schedulers();
        supervisor.publish();
        Ok(supervisor)
    }

    /// What the API reads.
    pub(crate) fn published(&self) -> watch::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// What the alert stage publishes (outages, holds, silences) and its silencer.
    pub(crate) fn alert_feeds(&self) -> crate::alert::AlertFeeds {
        crate::alert::AlertFeeds {
            outages: self.stage.outages(),
            quiet: self.stage.quiet(),
            silencer: Some(self.stage.silencer()),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    fn publish(&self) {
        self.metrics.set_shard(self.config.server.shard);
        let registry = Registry::from_services(
            self.running
                .values()
                .map(|running| Arc::clone(&running.service)),
        );
        self.published.send_replace(Arc::new(Published {
            registry: Arc::new(registry),
            admin_token: self.config.server.admin_token.clone(),
            report_token: self.config.server.report_token.clone(),
            shard: self.config.server.shard,
        }));
    }

    /// Subscribes the transition pump to `service`; its scheduler waits for
    /// [`Self::start_schedulers`].
    fn launch(&mut self, service: Arc<Service>, slot: usize, slots: usize) {
        let pump = {
            let service = Arc::clone(&service);
            let history = Arc::clone(&self.history);
            let stage = self.stage.intake();
            let metrics = Arc::clone(&self.metrics);
            // Subscribed now, before any check can run: a change made before the pump task
            // first runs (a breaker opening at once under load) is not lost. A restarted pump
            // subscribes afresh.
            let mut first = Some(service.breaker.subscribe());
            Task::spawn(|stopping| {
                let context = service.name().to_string();
                tasks::keep(TaskKind::TransitionPump, context, metrics, move || {
                    let events = first.take().unwrap_or_else(|| service.breaker.subscribe());
                    pump_transitions(
                        Arc::clone(&service),
                        events,
                        Arc::clone(&history),
                        stage.clone(),
                        stopping.clone(),
                    )
                })
            })
        };
        let running = Running {
            service,
            pump,
            scheduler: None,
            pending_schedule: Some((slot, slots)),
        };
        self.running
            .insert(running.service.name().to_string(), running);
    }

    /// Applies `disabled = true`: at start (`previous` is `None`) and when a reload sets or
    /// clears it. A breaker the key disabled is reset when the key goes; one an operator
    /// disabled or reset by hand is left alone while the key does not change.
    fn hold_disabled(&self, previous: Option<&Config>) {
        for running in self.running.values() {
            let service = &running.service;
            let wanted = service.config.disabled;
            let was = previous
                .and_then(|config| config.service(service.name()))
                .map(|config| config.disabled);
            let is_disabled = service.breaker.state() == State::Disabled;
            match (wanted, was) {
                (true, None | Some(false)) if !is_disabled => service.breaker.disable(),
                (false, Some(true)) if is_disabled => service.breaker.reset(),
                _ => {}
            }
        }
    }

    fn start_schedulers(&mut self) {
        for running in self.running.values_mut() {
            if let Some((slot, slots)) = running.pending_schedule.take() {
                let service = Arc::clone(&running.service);
                let metrics = Arc::clone(&self.metrics);
                let on = self.check_threads.for_service(service.name());
                running.scheduler = Some(Task::spawn(|stopping| {
                    scheduler::spawn(on, service, slot, slots, stopping, metrics)
                }));
            }
        }
    }

    /// Applies `next`; returns what changed, one line each.
    pub(crate) async fn apply(&mut self, next: Config) -> anyhow::Result<Vec<String>> {
        let next = sharded(next, self.shard);
        let mut changes = Vec::new();
        let grace = || tokio::time::Instant::now() + REPLACE_GRACE;
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| next.service(name).is_none())
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = self.running.remove(&name) {
                if let Some(scheduler) = running.scheduler {
                    scheduler.stop(grace()).await;
                }
                running.pump.stop(grace()).await;
            }
            self.metrics.remove_service(&name);
            self.stage.forget(&name).await;
            changes.push(format!("{name}: removed"));
        }
        let count = next.services.len();
        for (slot, wanted) in next.services.iter().enumerate() {
            let policy = effective_policy(wanted, next.server.slow_call);
            let Some(current) = self.running.get_mut(&wanted.name) else {
                let built = Service::new(
                    wanted.clone(),
                    &next.server,
                    self.client.clone(),
                    &self.metrics,
                )?;
                self.launch(Arc::new(built), slot, count);
                changes.push(format!("{}: added", wanted.name));
                continue;
            };
            let old = Arc::clone(&current.service);
            old.metrics
                .set_carries_traffic(carries_traffic(wanted, &next.server));
            if old.config == *wanted && old.breaker.policy() == policy {
                continue;
            }
            let what = match service_changes(&old.config, wanted) {
                // The same table with a different policy: the server-wide slow_call changed.
                keys if keys.is_empty() => "slow_call (from server.slow_call)".to_string(),
                keys => keys.join(", "),
            };
            match old.breaker.update_policy(&policy) {
                Ok(()) => {
                    changes.push(format!(
                        "{}: changed: {what} (breaker state and counts kept)",
                        wanted.name
                    ));
                    // Same breaker: the pump keeps forwarding; only the checks restart.
                    if let Some(scheduler) = current.scheduler.take() {
                        scheduler.stop(grace()).await;
                    }
                    current.service = Arc::new(Service::reconfigured(
                        &old,
                        wanted.clone(),
                        old.breaker.clone(),
                        self.client.clone(),
                    ));
                    current.pending_schedule = Some((slot, count));
                }
                Err(PolicyError::NeedsNewBreaker) => {
                    warn!(service = %wanted.name, "sliding window or backoff changed: a new breaker takes over the old one's state");
                    changes.push(format!(
                        "{}: changed: {what} (new sliding window or backoff: a new breaker, state kept)",
                        wanted.name
                    ));
                    let replacement = Service::new(
                        wanted.clone(),
                        &next.server,
                        self.client.clone(),
                        &self.metrics,
                    )?;
                    if let Some(running) = self.running.remove(&wanted.name) {
                        if let Some(scheduler) = running.scheduler {
                            scheduler.stop(grace()).await;
                        }
                        running.pump.stop(grace()).await;
                    }
                    replacement.restore(&old.breaker.snapshot(), old.last_failure());
                    self.launch(Arc::new(replacement), slot, count);
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.hold_disabled(Some(&self.config));
        if next.alerts != self.config.alerts {
            changes.push("alerts: changed".to_string());
        }
        self.stage
            .reconfigure(&next)
            .await
            .map_err(|why| anyhow::anyhow!("{why}"))?;
        self.config = next;
        self.start_schedulers();
        self.publish();
        Ok(changes)
    }

    /// Stops every check, then every pump, then hands the breakers' last state to the alert
    /// stage and stops it; running checks and queued alerts get until `deadline`.
    pub(crate) async fn shutdown(self, deadline: tokio::time::Instant) -> usize {
        let mut cancelled = 0;
        let mut pumps = Vec::new();
        let mut last = Vec::new();
        for (name, running) in self.running {
            if let Some(scheduler) = running.scheduler {
                let _ = scheduler.stop.send(true);
                pumps.push(scheduler);
            }
            pumps.push(running.pump);
            last.push((name, running.service));
        }
        // Schedulers were pushed before their pump: checks finish before transitions drain.
        for task in pumps {
            cancelled += usize::from(task.stop(deadline).await);
        }
        let last = last
            .into_iter()
            .map(|(name, service)| {
                let kept = Restored {
                    breaker: service.breaker.snapshot(),
                    last_failure: service.last_failure(),
                };
                (name, kept)
            })
            .collect();
        self.stage.shutdown(last, deadline).await;
        info!(cancelled_tasks = cancelled, "services stopped");
        cancelled
    }
}

/// Puts a freshly built service's breaker where the last run left it, and says so.
fn restore(service: &Service, kept: &Restored) {
    let state = service.restore(&kept.breaker, kept.last_failure.clone());
    if state != State::Closed {
        let next_attempt = service.breaker.next_attempt().map(crate::wall::rfc3339);
        info!(
            service = service.name(),
            state = state.as_str(),
            next_attempt,
            "breaker restored from the state directory: {} is {state}",
            service.name()
        );
    }
}

/// `config` as this replica runs it: the services of its shard, said in the log.
fn sharded(config: Config, chosen: Option<crate::config::Shard>) -> Config {
    let all = config.services.len();
    let config = config.sharded(chosen);
    if let Some(shard) = config.server.shard {
        info!(
            shard = %shard,
            services = config.services.len(),
            configured = all,
            "running the services of shard {shard} only"
        );
    }
    config
}

/// Logs, counts and remembers every transition of one service's breaker, and forwards it to
/// the alert stage with the service's last failure and the breaker's state to keep.
async fn pump_transitions(
    service: Arc<Service>,
    mut events: broadcast::Receiver<Transition>,
    history: Arc<History>,
    stage: mpsc::Sender<StageEvent>,
    mut stopping: watch::Receiver<bool>,
) {
    {
        let forward = |event: Transition| {
            observe::transition(&service.metrics, &event);
            history.transition(&event);
            StageEvent {
                transition: event,
                cause: service.last_failure(),
                breaker: service.breaker.snapshot(),
            }
        };
        let mut stage_gone = false;
        loop {
            let received = tokio::select! {
                biased;
                received = events.recv() => Some(received),
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let Some(received) = received else {
                // Forward what already happened before stopping.
                while let Ok(event) = events.try_recv() {
                    let _ = stage.send(forward(event)).await;
                }
                return;
            };
            match received {
                Ok(event) => {
                    // Logs and metrics go on even if the alert stage is gone.
                    if stage.send(forward(event)).await.is_err() && !stage_gone {
                        stage_gone = true;
                        warn!(
                            service = service.name(),
                            "the alert stage has stopped; changes are logged but not paged"
                        );
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    warn!(
                        service = service.name(),
                        missed,
                        "transition pump fell behind; some changes were not logged or paged"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
