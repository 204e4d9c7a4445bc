//! Owns the running services — each one's breaker and scheduler — the one transition pump that
//! forwards every breaker's changes, and the alert stage, and applies a new config to them: unchanged services run on untouched, changed
//! ones keep their breaker's state and counts (a breaker that must be rebuilt takes over its
//! predecessor's state), removed ones stop and are forgotten, new ones start. It publishes the
//! one snapshot the API reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::alert::{AlertStage, Restored, StagePlan};
use crate::api::Published;
use crate::breaker::{PolicyError, State, TransitionBus};
use crate::check_threads::CheckThreads;
use crate::config::{Config, ServiceConfig, service_changes};
use crate::history::History;
use crate::metrics::Metrics;
use crate::probe::HttpClient;
use crate::pump::Pump;
use crate::registry::{
    BuildError, Registry, Service, ServiceBuildError, carries_traffic, effective_policy,
};
use crate::scheduler;
use crate::tasks::{StopSwitch, Stopping};

/// How long a replaced service's running check may take to finish before it is cancelled.
const REPLACE_GRACE: Duration = Duration::from_secs(2);

/// A task and the switch that stops it.
#[derive(Debug)]
struct Task {
    stop: StopSwitch,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn(start: impl FnOnce(Stopping) -> JoinHandle<()>) -> Self {
        let (stop, stopping) = StopSwitch::new();
        Self {
            stop,
            handle: start(stopping),
        }
    }

    /// Asks it to stop; it gets until `deadline`, then is cancelled. Returns whether it was.
    async fn stop(self, deadline: tokio::time::Instant) -> bool {
        self.stop.stop();
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
    /// Runs the checks; replaced whenever the service's config changes.
    scheduler: Option<Task>,
    /// The spread slot of a scheduler not started yet: schedulers start only once the pump
    /// knows the service, so no transition goes unforwarded.
    pending_schedule: Option<(usize, usize)>,
}

impl Running {
    /// Stops the checks, then has the pump forward what the breaker already did.
    async fn stop(self, pump: &Pump, deadline: tokio::time::Instant) {
        if let Some(scheduler) = self.scheduler {
            scheduler.stop(deadline).await;
        }
        pump.retire(&self.service, deadline).await;
    }
}

/// A new config, built: everything in it that could fail has been made.
#[derive(Debug)]
struct Plan {
    config: Config,
    /// Running services the new config no longer has.
    removed: Vec<String>,
    /// One per service of `config`, in its order.
    steps: Vec<Step>,
    stage: StagePlan,
}

/// What a reload does to one service of the new config.
#[derive(Debug)]
enum Step {
    /// Unchanged: runs on untouched.
    Keep(String),
    /// New.
    Add(Box<Service>),
    /// Changed; the same breaker takes the new settings. With what changed, in words.
    Retune(Box<Service>, String),
    /// Changed so that a new breaker takes over the running one's state.
    Replace(Box<Service>, String),
}

/// A config the running daemon cannot take: what is wrong, every problem one line. Nothing
/// running was changed.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) problems: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Supervisor {
    /// The config in force, without its services: each running service holds its own (kept
    /// twice, 10,000 services' configs cost some 15 MB more). The same one the published
    /// snapshot carries.
    config: Arc<Config>,
    client: HttpClient,
    metrics: Arc<Metrics>,
    running: BTreeMap<String, Running>,
    /// Forwards every breaker's transitions to the alert stage.
    pump: Pump,
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
        let bus = TransitionBus::new();
        let Built { services, stage } = build(&config, &client, Some(&bus))
            .map_err(|refused| anyhow::anyhow!("{}", refused.problems.join("\n")))?;
        for service in &services {
            metrics.adopt(&service.metrics);
        }
        let registry = Registry::from_services(services.into_iter().map(Arc::new));
        let (stage, mut restored) =
            AlertStage::start(&config, stage, Arc::clone(&metrics), Arc::clone(&history)).await?;
        let pump = Pump::start(bus, history, stage.intake(), Arc::clone(&metrics));
        let config = Arc::new(without_services(config));
        let (published, _) = watch::channel(Arc::new(Published {
            registry: Arc::default(),
            config: Arc::clone(&config),
        }));
        let mut supervisor = Self {
            config,
            client,
            metrics,
            running: BTreeMap::new(),
            pump,
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
            for operation in service.operation_breakers.iter() {
                if let Some(kept) = restored.remove(operation.breaker.name()) {
                    operation.breaker.restore(&kept.breaker);
                }
            }
            supervisor.launch(Arc::clone(service), slot, count);
        }
        supervisor.hold_disabled(&BTreeSet::new());
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

    /// The config in force, its services left out (each running service holds its own).
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
            config: Arc::clone(&self.config),
        }));
    }

    /// Introduces `service` to the transition pump; its scheduler waits for
    /// [`Self::start_schedulers`].
    fn launch(&mut self, service: Arc<Service>, slot: usize, slots: usize) {
        // Before any check can run: the pump knows whose changes it forwards.
        self.pump.serve(&service);
        let running = Running {
            service,
            scheduler: None,
            pending_schedule: Some((slot, slots)),
        };
        self.running
            .insert(running.service.name().to_string(), running);
    }

    /// Applies `disabled = true`: at start (`was_disabled` empty) and when a reload sets or
    /// clears it (`was_disabled`: the services the config before it disabled). A breaker the
    /// key disabled is reset when the key goes; one an operator disabled or reset by hand is
    /// left alone while the key does not change.
    fn hold_disabled(&self, was_disabled: &BTreeSet<String>) {
        for running in self.running.values() {
            let service = &running.service;
            let wanted = service.config.disabled;
            let was = was_disabled.contains(service.name());
            let is_disabled = service.breaker.state() == State::Disabled;
            match (wanted, was) {
                (true, false) if !is_disabled => {
                    service.breaker.disable();
                    for operation in service.operation_breakers.iter() {
                        operation.breaker.disable();
                    }
                }
                (false, true) if is_disabled => {
                    service.breaker.reset();
                    for operation in service.operation_breakers.iter() {
                        operation.breaker.reset();
                    }
                }
                _ => {}
            }
        }
    }

    /// The running services their config disables.
    fn disabled_by_config(&self) -> BTreeSet<String> {
        self.running
            .iter()
            .filter(|(_, running)| running.service.config.disabled)
            .map(|(name, _)| name.clone())
            .collect()
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

    /// Applies `next`: builds everything that can fail first ([`Self::plan`]), then swaps it
    /// in. Returns what changed, one line each; a refused config changed nothing.
    pub(crate) async fn apply(&mut self, next: Config) -> Result<Vec<String>, Refused> {
        let plan = self.plan(next)?;
        Ok(self.swap(plan).await)
    }

    /// Builds, from `next`, every new or changed service (breaker, probe, TLS roots, rules)
    /// and every alert channel, without touching what runs. Every problem is said.
    fn plan(&self, next: Config) -> Result<Plan, Refused> {
        let next = sharded(next, self.shard);
        let mut problems = Vec::new();
        let mut steps = Vec::with_capacity(next.services.len());
        for wanted in &next.services {
            let built = match self.running.get(&wanted.name) {
                None => Service::on_bus(
                    wanted.clone(),
                    &next.server,
                    self.client.clone(),
                    Some(self.pump.bus()),
                )
                .map(|service| Step::Add(Box::new(service))),
                Some(current) => self.plan_change(&current.service, wanted, &next),
            };
            match built {
                Ok(step) => steps.push(step),
                Err(error) => problems.push(ServiceBuildError::of(&wanted.name, error).to_string()),
            }
        }
        let stage = StagePlan::build(&next, self.client.transport())
            .map_err(|why| problems.push(format!("alerts: {why}")));
        match stage {
            Ok(stage) if problems.is_empty() => {
                let removed = self
                    .running
                    .keys()
                    .filter(|name| next.service(name).is_none())
                    .cloned()
                    .collect();
                Ok(Plan {
                    config: next,
                    removed,
                    steps,
                    stage,
                })
            }
            _ => Err(Refused { problems }),
        }
    }

    /// What becomes of running `old` under `wanted`.
    fn plan_change(
        &self,
        old: &Service,
        wanted: &ServiceConfig,
        next: &Config,
    ) -> Result<Step, BuildError> {
        let policy = effective_policy(wanted, next.server.slow_call);
        if old.config == *wanted && old.breaker.policy() == policy {
            return Ok(Step::Keep(wanted.name.clone()));
        }
        let what = match service_changes(&old.config, wanted) {
            // The same table with a different policy: the server-wide slow_call changed.
            keys if keys.is_empty() => "slow_call (from server.slow_call)".to_string(),
            keys => keys.join(", "),
        };
        match Service::reconfigured(old, wanted.clone(), &next.server, self.client.clone()) {
            Ok(service) => Ok(Step::Retune(Box::new(service), what)),
            Err(BuildError::Policy(PolicyError::NeedsNewBreaker)) => Service::on_bus(
                wanted.clone(),
                &next.server,
                self.client.clone(),
                Some(self.pump.bus()),
            )
            .map(|service| Step::Replace(Box::new(service), what)),
            Err(error) => Err(error),
        }
    }

    /// Puts a built plan in force; nothing here can fail. Removed services stop, new ones
    /// start, changed ones take their new settings (keeping their breaker's state and counts),
    /// the alert stage takes its channels, and one new snapshot is published.
    async fn swap(&mut self, plan: Plan) -> Vec<String> {
        let Plan {
            config: next,
            removed,
            steps,
            stage,
        } = plan;
        let was_disabled = self.disabled_by_config();
        let mut changes = Vec::new();
        let grace = || tokio::time::Instant::now() + REPLACE_GRACE;
        for name in removed {
            if let Some(running) = self.running.remove(&name) {
                running.stop(&self.pump, grace()).await;
            }
            self.metrics.remove_service(&name);
            self.stage.forget(&name).await;
            changes.push(format!("{name}: removed"));
        }
        let count = steps.len();
        for (slot, step) in steps.into_iter().enumerate() {
            match step {
                Step::Keep(name) => {
                    if let Some(current) = self.running.get(&name) {
                        let service = &current.service;
                        service
                            .metrics
                            .set_carries_traffic(carries_traffic(&service.config, &next.server));
                    }
                }
                Step::Add(service) => {
                    changes.push(format!("{}: added", service.name()));
                    self.metrics.adopt(&service.metrics);
                    self.launch(Arc::new(*service), slot, count);
                }
                Step::Retune(service, what) => {
                    let name = service.name().to_string();
                    let Some(current) = self.running.get_mut(&name) else {
                        continue;
                    };
                    changes.push(format!(
                        "{name}: changed: {what} (breaker state and counts kept)"
                    ));
                    // Same breaker: the pump keeps forwarding; only the checks restart.
                    if let Some(scheduler) = current.scheduler.take() {
                        scheduler.stop(grace()).await;
                    }
                    service.take_over(&current.service, &next.server);
                    current.service = Arc::new(*service);
                    self.pump.serve(&current.service);
                    current.pending_schedule = Some((slot, count));
                }
                Step::Replace(service, what) => {
                    let name = service.name().to_string();
                    warn!(service = %name, "sliding window, backoff or operations' breakers changed: a new breaker takes over the old one's state");
                    changes.push(format!(
                        "{name}: changed: {what} (new sliding window, backoff or operations' breakers: new breakers, state kept)"
                    ));
                    if let Some(running) = self.running.remove(&name) {
                        let old = Arc::clone(&running.service);
                        running.stop(&self.pump, grace()).await;
                        service.restore(&old.breaker.snapshot(), old.last_failure());
                        // The operations both have keep their breakers' state; the outages of
                        // those that lost their breaker end with it.
                        for before in old.operation_breakers.iter() {
                            match service
                                .operation_breakers
                                .iter()
                                .find(|operation| operation.operation == before.operation)
                            {
                                Some(operation) => {
                                    operation.breaker.restore(&before.breaker.snapshot());
                                }
                                None => self.stage.forget(before.breaker.name()).await,
                            }
                        }
                    }
                    self.metrics.adopt(&service.metrics);
                    self.launch(Arc::new(*service), slot, count);
                }
            }
        }
        self.hold_disabled(&was_disabled);
        if next.alerts != self.config.alerts {
            changes.push("alerts: changed".to_string());
        }
        if let Err(stopped) = self.stage.reconfigure(stage).await {
            error!("alert settings not applied: {stopped}; the services run, nothing is paged");
        }
        self.config = Arc::new(without_services(next));
        self.start_schedulers();
        self.publish();
        changes
    }

    /// Stops every check, then the pump (once it has forwarded every change), then hands the
    /// breakers' last state to the alert stage and stops it; running checks and queued alerts
    /// get until `deadline`.
    pub(crate) async fn shutdown(self, deadline: tokio::time::Instant) -> usize {
        let mut cancelled = 0;
        let mut schedulers = Vec::new();
        let mut last = Vec::new();
        for (name, running) in self.running {
            if let Some(scheduler) = running.scheduler {
                scheduler.stop.stop();
                schedulers.push(scheduler);
            }
            last.push((name, running.service));
        }
        // Checks finish before the transitions drain.
        for task in schedulers {
            cancelled += usize::from(task.stop(deadline).await);
        }
        cancelled += usize::from(self.pump.stop(deadline).await);
        let last = last
            .into_iter()
            .flat_map(|(name, service)| {
                let kept = Restored {
                    breaker: service.breaker.snapshot(),
                    last_failure: service.last_failure(),
                };
                // Each operation's breaker is kept under its own name (`mpesa/b2c`).
                let operations: Vec<(String, Restored)> = service
                    .operation_breakers
                    .iter()
                    .map(|operation| {
                        let kept = Restored {
                            breaker: operation.breaker.snapshot(),
                            last_failure: service.last_failure(),
                        };
                        (operation.breaker.name().to_string(), kept)
                    })
                    .collect();
                std::iter::once((name, kept)).chain(operations)
            })
            .collect();
        self.stage.shutdown(last, deadline).await;
        info!(cancelled_tasks = cancelled, "services stopped");
        cancelled
    }
}

/// Everything a config asks for, built and not started.
#[derive(Debug)]
pub(crate) struct Built {
    services: Vec<Service>,
    stage: StagePlan,
}

/// Builds every service (its breaker on `bus`, when given) and every alert channel of `config`,
/// as a start does; every problem, one line each. Nothing starts, listens or sends:
/// `breakerd check` runs this too.
pub(crate) fn build(
    config: &Config,
    client: &HttpClient,
    bus: Option<&TransitionBus>,
) -> Result<Built, Refused> {
    let mut problems = Vec::new();
    let mut services = Vec::with_capacity(config.services.len());
    for wanted in &config.services {
        match Service::on_bus(wanted.clone(), &config.server, client.clone(), bus) {
            Ok(service) => services.push(service),
            Err(error) => problems.push(ServiceBuildError::of(&wanted.name, error).to_string()),
        }
    }
    let stage = StagePlan::build(config, client.transport())
        .map_err(|why| problems.push(format!("alerts: {why}")));
    match stage {
        Ok(stage) if problems.is_empty() => Ok(Built { services, stage }),
        _ => Err(Refused { problems }),
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

/// `config` with no services: what the supervisor keeps of it once each service holds its own.
fn without_services(config: Config) -> Config {
    Config {
        services: Vec::new(),
        ..config
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
