//! The alert stage: one task, above reloads, that every breaker's transitions reach once and in
//! order. It books outages, keeps each service's state on disk, turns pages into notifications
//! written to the outbox and queued on every direct channel that takes them, and publishes the
//! outages that the Alertmanager channels and the API read. A reload changes its channels and
//! rules in place: outages in progress, the Alertmanager alerts and every timer stay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use super::channel::{self, BuildContext, Channel};
use super::connectivity::{self, GUARD_TIMEOUT, Reachability};
use super::delivery::{self, Job};
use super::grouping::Grouping;
use super::notification::{Notification, NotificationKind, OutageInfo};
use super::outage::{Change, ClockPair, Ledger, Outage, Page, Rules};
use super::outbox::Outbox;
use super::quiet::{self, Facts, Hold, QuietView};
use super::silences::{NewSilence, Silence, SilenceError, Silences};
use super::store::{ServiceRecord, Store};
use super::{OutageView, Shared};
use crate::breaker::{Snapshot, Transition, TransitionReason};
use crate::config::{AlertsConfig, Config, ConnectivityTarget, MaintenanceWindow};
use crate::history::History;
use crate::metrics::{AlertOutcome, Metrics};
use crate::outcome::Cause;
use crate::probe::HttpClient;
use crate::tasks::{self, TaskKind};

/// Changes booked in one round before the outages are published again.
const EVENT_BATCH: usize = 256;
/// How long the outage of a service removed from the config stays published, ended.
const DEPARTED_FOR: Duration = Duration::from_secs(86_400);

/// A breaker's change of state, as its service's transition pump forwards it.
#[derive(Debug)]
pub(crate) struct StageEvent {
    pub(crate) transition: Transition,
    /// The service's last real failure when the pump received the change.
    pub(crate) cause: Option<Cause>,
    /// The breaker right after the change, to keep on disk.
    pub(crate) breaker: Snapshot,
}

/// What a previous run (or the stage's latest news) has of a service's breaker.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Restored {
    pub(crate) breaker: Snapshot,
    pub(crate) last_failure: Option<Cause>,
}

/// What the stage takes from a config.
#[derive(Clone, Debug)]
struct Settings {
    alerts: AlertsConfig,
    rules: BTreeMap<String, Rules>,
    windows: Vec<MaintenanceWindow>,
    /// Each service's upstreams (`depends_on`), for services that name any.
    depends_on: BTreeMap<String, Vec<String>>,
    /// The connectivity guard's targets.
    connectivity: Vec<ConnectivityTarget>,
    /// Each service's provider name for people, for services with a preset.
    providers: Arc<BTreeMap<String, String>>,
}

impl Settings {
    fn of(config: &Config) -> Self {
        let alerts = config.alerts.clone();
        let rules = config
            .services
            .iter()
            .map(|service| {
                let rules = Rules {
                    notify_on: service
                        .notify_on
                        .clone()
                        .unwrap_or_else(|| alerts.notify_on.clone()),
                    min_interval: alerts.min_interval,
                    reminder_every: alerts.reminder_every,
                };
                (service.name.clone(), rules)
            })
            .collect();
        let depends_on = config
            .services
            .iter()
            .filter(|service| !service.depends_on.is_empty())
            .map(|service| (service.name.clone(), service.depends_on.clone()))
            .collect();
        let providers = config
            .services
            .iter()
            .filter_map(|service| {
                let provider = service.check.provider()?;
                Some((service.name.clone(), provider.provider.title.to_string()))
            })
            .collect();
        Self {
            alerts,
            rules,
            windows: config.maintenance.clone(),
            depends_on,
            connectivity: config.server.connectivity.clone(),
            providers: Arc::new(providers),
        }
    }

    fn rules(&self, service: &str) -> Rules {
        self.rules.get(service).cloned().unwrap_or_else(|| Rules {
            notify_on: self.alerts.notify_on.clone(),
            min_interval: self.alerts.min_interval,
            reminder_every: self.alerts.reminder_every,
        })
    }
}

/// What a config asks of the stage, channels included, built before anything running changes:
/// taking it in cannot fail.
pub(crate) struct StagePlan {
    settings: Settings,
    channels: Vec<Arc<dyn Channel>>,
}

impl std::fmt::Debug for StagePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagePlan")
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl StagePlan {
    /// Builds the settings and every channel of `config`; a channel that cannot be built
    /// (an SMTP transport refusing its TLS roots) is the error, and nothing has changed.
    pub(crate) fn build(config: &Config, client: &HttpClient) -> Result<Self, String> {
        let settings = Settings::of(config);
        let context = BuildContext {
            client: client.clone(),
            max_attempts: settings.alerts.max_attempts,
            api_url: settings.alerts.api_url.clone(),
            runbook_url: settings.alerts.runbook(),
            providers: Arc::clone(&settings.providers),
        };
        let channels = channel::build_all(&settings.alerts, &context)?;
        Ok(Self { settings, channels })
    }
}

/// The alert stage has stopped (it failed; the log says why).
#[derive(Debug, thiserror::Error)]
#[error("the alert stage has stopped")]
pub(crate) struct StageStopped;

enum Command {
    Reconfigure(Box<StagePlan>, oneshot::Sender<()>),
    Forget(String),
    Silence(NewSilence, oneshot::Sender<Result<Silence, SilenceError>>),
    Unsilence(String, oneshot::Sender<Result<Silence, SilenceError>>),
    Shutdown {
        last: Vec<(String, Restored)>,
        deadline: Instant,
        done: oneshot::Sender<()>,
    },
}

/// The handle of the running stage.
#[derive(Debug)]
pub(crate) struct AlertStage {
    intake: mpsc::Sender<StageEvent>,
    commands: mpsc::Sender<Command>,
    outages: watch::Receiver<Arc<OutageView>>,
    quiet: watch::Receiver<Arc<QuietView>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Reconfigure(..) => "Reconfigure",
            Command::Forget(_) => "Forget",
            Command::Silence(..) => "Silence",
            Command::Unsilence(..) => "Unsilence",
            Command::Shutdown { .. } => "Shutdown",
        })
    }
}

impl AlertStage {
    /// Reads what `state_dir` kept (breakers, outages, pending notifications), starts the
    /// channels of `config` and the stage. Returns the breakers to restore, by service.
    pub(crate) async fn start(
        config: &Config,
        plan: StagePlan,
        metrics: Arc<Metrics>,
        history: Arc<History>,
    ) -> anyhow::Result<(Self, BTreeMap<String, Restored>)> {
        let state_dir = &config.alerts.state_dir;
        let cannot = || {
            format!(
                "cannot keep state in {} (set alerts.state_dir to a writable directory)",
                state_dir.display()
            )
        };
        let (store, mut records) = Store::open(state_dir, Arc::clone(&metrics))
            .await
            .with_context(cannot)?;
        let outbox = {
            let dir = state_dir.clone();
            tokio::task::spawn_blocking(move || Outbox::open(&dir))
                .await
                .context("opening the outbox")?
                .with_context(cannot)?
        };
        let gone: Vec<String> = records
            .keys()
            .filter(|name| !plan.settings.rules.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            info!(service = %name, "forgetting the kept state of a service that is no longer configured");
            records.remove(&name);
            store.forget(&name);
        }
        let clock = ClockPair::now();
        let mut ledgers = BTreeMap::new();
        let mut breakers = BTreeMap::new();
        for (name, record) in records {
            ledgers.insert(name.clone(), Ledger::restore(record.ledger, &clock));
            breakers.insert(
                name,
                Restored {
                    breaker: record.breaker,
                    last_failure: record.last_failure,
                },
            );
        }
        let next_id = {
            let outbox = outbox.clone();
            tokio::task::spawn_blocking(move || outbox.first_id())
                .await
                .context("reading the outbox")?
        };
        let shared = Arc::new(Shared {
            outbox,
            metrics,
            history,
        });
        let (view, outages) = watch::channel(Arc::new(OutageView::new()));
        let (quiet_view, quiet) = watch::channel(Arc::new(QuietView::default()));
        let (stop, _) = watch::channel(false);
        let silences = Silences::open(state_dir).await;
        let mut stage = Stage {
            settings: Settings {
                alerts: AlertsConfig::default(),
                rules: BTreeMap::new(),
                windows: Vec::new(),
                depends_on: BTreeMap::new(),
                connectivity: Vec::new(),
                providers: Arc::default(),
            },
            ledgers,
            breakers: breakers.clone(),
            store,
            shared,
            channels: BTreeMap::new(),
            retired: Vec::new(),
            departed: BTreeMap::new(),
            next_id,
            view,
            stop,
            silences,
            quiet_view,
            next_quiet_change: None,
            guard: None,
            reachability: mpsc::channel(4),
            tcp_reachable: None,
            offline: None,
            verifying: std::collections::BTreeSet::new(),
            verifying_until: None,
            holds: BTreeMap::new(),
            holds_changed: true,
            grouping: Grouping::default(),
        };
        stage.publish();
        stage.reconfigure(plan);
        stage.resend_outbox().await;
        // Outages whose pages were held when breakerd stopped page now if the hold is over.
        stage.refresh_all_holds().await;
        stage.publish();
        let restored_outages = stage
            .ledgers
            .values()
            .filter(|ledger| ledger.outage().is_some_and(|o| o.is_ongoing()))
            .count();
        if restored_outages > 0 {
            info!(
                outages = restored_outages,
                "outages in progress were restored from the state directory; they are not paged again"
            );
        }
        let (intake, events) = mpsc::channel(config.alerts.queue_size);
        let (commands, orders) = mpsc::channel(16);
        let task = tokio::spawn(stage.run(events, orders));
        Ok((
            Self {
                intake,
                commands,
                outages,
                quiet,
                task,
            },
            breakers,
        ))
    }

    /// Where transition pumps send.
    pub(crate) fn intake(&self) -> mpsc::Sender<StageEvent> {
        self.intake.clone()
    }

    /// The outages, as they change.
    pub(crate) fn outages(&self) -> watch::Receiver<Arc<OutageView>> {
        self.outages.clone()
    }

    /// Which services' pages are held, and the active silences, as they change.
    pub(crate) fn quiet(&self) -> watch::Receiver<Arc<QuietView>> {
        self.quiet.clone()
    }

    /// What makes and ends silences (for the API).
    pub(crate) fn silencer(&self) -> Silencer {
        Silencer {
            commands: self.commands.clone(),
        }
    }

    /// Takes in a plan built from a new config, in place.
    pub(crate) async fn reconfigure(&self, plan: StagePlan) -> Result<(), StageStopped> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Reconfigure(Box::new(plan), reply);
        self.commands
            .send(command)
            .await
            .map_err(|_| StageStopped)?;
        answer.await.map_err(|_| StageStopped)
    }

    /// Forgets a service removed from the config: its outage, its kept state.
    pub(crate) async fn forget(&self, service: &str) {
        let _ = self
            .commands
            .send(Command::Forget(service.to_string()))
            .await;
    }

    /// Takes the breakers' last state, writes everything down, and stops: queued notifications
    /// get until `deadline`, and whatever is left stays in the outbox for the next start.
    pub(crate) async fn shutdown(self, last: Vec<(String, Restored)>, deadline: Instant) {
        let (done, finished) = oneshot::channel();
        let command = Command::Shutdown {
            last,
            deadline,
            done,
        };
        if self.commands.send(command).await.is_ok() {
            let _ = finished.await;
        }
        drop(self.intake);
        if let Err(failure) = self.task.await {
            error!("the alert stage failed: {failure}");
        }
    }
}

/// Makes and ends silences through the stage, which owns them.
#[derive(Clone, Debug)]
pub struct Silencer {
    commands: mpsc::Sender<Command>,
}

impl Silencer {
    /// Makes a silence (written down before this returns).
    pub(crate) async fn silence(&self, new: NewSilence) -> Result<Silence, SilenceError> {
        self.ask(|reply| Command::Silence(new, reply)).await
    }

    /// Ends the silence `id`.
    pub(crate) async fn unsilence(&self, id: String) -> Result<Silence, SilenceError> {
        self.ask(|reply| Command::Unsilence(id, reply)).await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<Silence, SilenceError>>) -> Command,
    ) -> Result<Silence, SilenceError> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(command(reply)).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> SilenceError {
    SilenceError::Storage("the alert stage has stopped".to_string())
}

/// A running channel: the channel its task reads, its queue (channels that take pages), its
/// task.
struct Slot {
    channel: watch::Sender<Arc<dyn Channel>>,
    queue: Option<mpsc::Sender<Job>>,
    task: JoinHandle<()>,
}

/// Brings running `slots` in line with `wanted`: an unchanged channel runs on untouched, a
/// changed one of the same kind takes its new settings in place, a new one (or one whose kind
/// changed) is started by `start`. Returns the slots of channels no longer running.
fn reconcile(
    slots: &mut BTreeMap<String, Slot>,
    wanted: Vec<Arc<dyn Channel>>,
    mut start: impl FnMut(Arc<dyn Channel>) -> Slot,
) -> Vec<Slot> {
    let wanted: BTreeMap<String, Arc<dyn Channel>> = wanted
        .into_iter()
        .map(|channel| (channel.name().to_string(), channel))
        .collect();
    let mut removed = Vec::new();
    let gone: Vec<String> = slots
        .iter()
        .filter(|(name, slot)| {
            wanted.get(*name).is_none_or(|channel| {
                channel.settings().kind() != slot.channel.borrow().settings().kind()
            })
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in gone {
        if let Some(slot) = slots.remove(&name) {
            info!(channel = %name, "alert channel removed");
            removed.push(slot);
        }
    }
    for (name, channel) in wanted {
        match slots.get(&name) {
            Some(slot) if slot.channel.borrow().same_as(&*channel) => {}
            Some(slot) => {
                info!(channel = %name, "alert channel changed in place");
                slot.channel.send_replace(channel);
            }
            None => {
                slots.insert(name, start(channel));
            }
        }
    }
    removed
}

struct Stage {
    settings: Settings,
    ledgers: BTreeMap<String, Ledger>,
    /// Each service's breaker as last heard of, to write down with its ledger.
    breakers: BTreeMap<String, Restored>,
    store: Store,
    shared: Arc<Shared>,
    /// Every channel, by name.
    channels: BTreeMap<String, Slot>,
    /// Delivery tasks of removed channels, finishing their queues.
    retired: Vec<JoinHandle<()>>,
    /// The last outages of services removed from the config, published (as ended) for a day
    /// so that Alertmanager resolves their alerts.
    departed: BTreeMap<String, Arc<Outage>>,
    next_id: u64,
    view: watch::Sender<Arc<OutageView>>,
    stop: watch::Sender<bool>,
    silences: Silences,
    quiet_view: watch::Sender<Arc<QuietView>>,
    /// When a maintenance window next opens or closes, or a silence ends.
    next_quiet_change: Option<Instant>,
    /// The connectivity guard's probe, while it has `tcp://` targets.
    guard: Option<Guard>,
    /// Where the guard's probes report, and where the stage reads them.
    reachability: (mpsc::Sender<Reachability>, mpsc::Receiver<Reachability>),
    /// Whether a `tcp://` target answered the last look (`None`: none yet, or none configured).
    tcp_reachable: Option<Reachability>,
    /// Since when breakerd has been offline, and why.
    offline: Option<super::quiet::Offline>,
    /// Services whose outage has just started and waits for the guard's answer before paging.
    verifying: std::collections::BTreeSet<String>,
    /// When waiting for the guard gives up.
    verifying_until: Option<Instant>,
    /// The holds on each held service, as last applied: what the API and `/metrics` are shown.
    holds: BTreeMap<String, Vec<Hold>>,
    /// Whether holds or silences changed since they were last published.
    holds_changed: bool,
    /// Outage starts and ends waiting out `alerts.group_wait`.
    grouping: Grouping,
}

/// The running probe of the connectivity guard.
struct Guard {
    targets: Vec<ConnectivityTarget>,
    ask: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

/// The cause worth telling with `transition`: the last real failure when failures moved the
/// breaker, none when a person or a timer did.
fn cause_of(transition: &Transition, cause: Option<Cause>) -> Option<Cause> {
    match transition.reason {
        TransitionReason::ConsecutiveFailures { .. }
        | TransitionReason::FailureRate { .. }
        | TransitionReason::TrialFailed => cause,
        _ => None,
    }
}

impl Stage {
    /// Steps, in a loop: 1. take a command (after every change forwarded before it: a
    /// service's last changes come before it is forgotten, every change before the shutdown),
    /// or a batch of changes, or the timers that are due; 2. publish the outages once.
    async fn run(
        mut self,
        mut intake: mpsc::Receiver<StageEvent>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    self.take_queued(&mut intake, usize::MAX).await;
                    if let Command::Shutdown { last, deadline, done } = command {
                        self.publish();
                        self.finish(last, deadline).await;
                        let _ = done.send(());
                        return;
                    }
                    let metrics = Arc::clone(&self.shared.metrics);
                    tasks::guard(&metrics, TaskKind::AlertStage, "a command", self.on_command(command))
                        .await;
                }
                Some(found) = self.reachability.1.recv() => {
                    let metrics = Arc::clone(&self.shared.metrics);
                    tasks::guard(&metrics, TaskKind::AlertStage, "connectivity", self.on_reachability(found))
                        .await;
                }
                Some(event) = intake.recv() => {
                    self.on_event(event).await;
                    self.take_queued(&mut intake, EVENT_BATCH).await;
                }
                _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    let metrics = Arc::clone(&self.shared.metrics);
                    tasks::guard(&metrics, TaskKind::AlertStage, "the timers", self.on_timers())
                        .await;
                }
            }
            let metrics = Arc::clone(&self.shared.metrics);
            tasks::guard(&metrics, TaskKind::AlertStage, "publishing", async {
                self.publish();
            })
            .await;
        }
    }

    /// Books up to `most` changes already queued.
    async fn take_queued(&mut self, intake: &mut mpsc::Receiver<StageEvent>, most: usize) {
        for _ in 0..most {
            let Ok(event) = intake.try_recv() else { return };
            self.on_event(event).await;
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.ledgers
            .values()
            .filter_map(Ledger::next_deadline)
            .chain(self.next_quiet_change)
            .chain(self.verifying_until)
            .chain(self.grouping.next_due())
            .min()
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Reconfigure(plan, reply) => {
                self.reconfigure(*plan);
                let _ = reply.send(());
                self.refresh_all_holds().await;
            }
            Command::Silence(new, reply) => {
                let made = self.silences.create(new, crate::wall::now()).await;
                if let Ok(silence) = &made {
                    info!(
                        id = %silence.id,
                        services = %silence.services.join(", "),
                        until = %crate::wall::rfc3339(silence.until),
                        comment = %silence.comment,
                        "silence made"
                    );
                }
                let _ = reply.send(made);
                self.refresh_all_holds().await;
            }
            Command::Unsilence(id, reply) => {
                let ended = self.silences.end(&id).await;
                if let Ok(silence) = &ended {
                    info!(id = %silence.id, services = %silence.services.join(", "), "silence ended");
                }
                let _ = reply.send(ended);
                self.refresh_all_holds().await;
            }
            Command::Forget(service) => {
                // Its outage ends with it: Alertmanager hears so at once.
                if let Some(outage) = self
                    .ledgers
                    .remove(&service)
                    .and_then(|ledger| ledger.close(crate::wall::now()))
                {
                    self.departed.insert(service.clone(), Arc::new(outage));
                }
                self.breakers.remove(&service);
                self.holds_changed |= self.holds.remove(&service).is_some();
                self.store.forget(&service);
            }
            Command::Shutdown { .. } => {}
        }
    }

    /// Books one change; a panic while booking it is logged and counted, and the stage goes
    /// on with the next.
    async fn on_event(&mut self, event: StageEvent) {
        let metrics = Arc::clone(&self.shared.metrics);
        let context = event.transition.service.to_string();
        tasks::guard(&metrics, TaskKind::AlertStage, &context, self.book(event)).await;
    }

    /// Steps: 1. book the change; 2. write the service's state down; 3. send the page, if the
    /// change made one.
    async fn book(&mut self, event: StageEvent) {
        let service = event.transition.service.to_string();
        let change = Change::of(
            &event.transition,
            cause_of(&event.transition, event.cause.clone()),
        );
        self.breakers.insert(
            service.clone(),
            Restored {
                breaker: event.breaker,
                last_failure: event.cause,
            },
        );
        let rules = self.settings.rules(&service);
        let starts_outage = super::in_outage(change.to)
            && !self
                .ledgers
                .get(&service)
                .and_then(Ledger::outage)
                .is_some_and(Outage::is_ongoing);
        if starts_outage && self.offline.is_none() {
            self.verify_connectivity(&service);
        }
        self.ledgers.entry(service.clone()).or_default();
        self.refresh_holds(&service).await;
        let page = self.ledgers.entry(service.clone()).or_default().on_change(
            change,
            &rules,
            Instant::now(),
        );
        self.save(&service);
        if let Some(page) = page {
            self.send(&service, page).await;
        }
        // Its outage starting or ending holds or frees the pages of what depends on it.
        for dependant in quiet::dependants(&self.settings.depends_on, &service) {
            self.refresh_holds(&dependant).await;
        }
        if self
            .settings
            .connectivity
            .contains(&ConnectivityTarget::Service(service.clone()))
        {
            self.update_connectivity().await;
        }
    }

    /// Holds `service`'s opening page until the guard has looked again, when it has `tcp://`
    /// targets: a provider that seems down may only mean breakerd is offline.
    fn verify_connectivity(&mut self, service: &str) {
        let Some(guard) = &self.guard else { return };
        self.verifying.insert(service.to_string());
        // A look already asked for answers this one too.
        let _ = guard.ask.try_send(());
        if self.verifying_until.is_none() {
            self.verifying_until = Some(Instant::now() + GUARD_TIMEOUT + Duration::from_secs(2));
        }
    }

    /// What the guard's probe found.
    async fn on_reachability(&mut self, found: Reachability) {
        self.tcp_reachable = Some(found);
        let was_verifying = !std::mem::take(&mut self.verifying).is_empty();
        self.verifying_until = None;
        // Going offline or online refreshes every hold; so must an answer someone waited for.
        if !self.update_connectivity().await && was_verifying {
            self.refresh_all_holds().await;
        }
    }

    /// Whether any guard target answers: a `tcp://` target at the last look (one not looked at
    /// yet counts as answering), or a named service not in an outage. Always, without a guard.
    fn reachable(&self) -> bool {
        let targets = &self.settings.connectivity;
        if targets.is_empty() {
            return true;
        }
        let tcp = targets
            .iter()
            .any(|target| matches!(target, ConnectivityTarget::Tcp { .. }))
            && self
                .tcp_reachable
                .as_ref()
                .is_none_or(|found| found.reachable);
        tcp || targets.iter().any(|target| match target {
            ConnectivityTarget::Service(name) => !self
                .ledgers
                .get(name)
                .and_then(Ledger::outage)
                .is_some_and(Outage::is_ongoing),
            ConnectivityTarget::Tcp { .. } => false,
        })
    }

    /// Goes offline or online as the guard says: one notice each way, and holds for every
    /// service while offline. Says whether it went either way.
    async fn update_connectivity(&mut self) -> bool {
        let reachable = self.reachable();
        match (&self.offline, reachable) {
            (None, false) => {
                let mut failures: Vec<String> = self
                    .tcp_reachable
                    .as_ref()
                    .map(|found| found.failures.clone())
                    .unwrap_or_default();
                failures.extend(
                    self.settings
                        .connectivity
                        .iter()
                        .filter(|target| matches!(target, ConnectivityTarget::Service(_)))
                        .map(|target| format!("{target}: in an outage")),
                );
                let offline = super::quiet::Offline {
                    since: crate::wall::now(),
                    failures,
                };
                warn!(
                    "breakerd is offline: no connectivity target answers ({}); provider pages are held",
                    offline.failures.join("; ")
                );
                self.shared.metrics.set_offline(true);
                let notice = self.notice(NotificationKind::Offline, &offline, None);
                self.offline = Some(offline);
                self.send_notice(notice).await;
                self.refresh_all_holds().await;
                true
            }
            (Some(offline), true) => {
                let offline = offline.clone();
                info!("breakerd is online again: a connectivity target answers");
                self.shared.metrics.set_offline(false);
                self.offline = None;
                let notice =
                    self.notice(NotificationKind::Online, &offline, Some(crate::wall::now()));
                self.send_notice(notice).await;
                self.refresh_all_holds().await;
                true
            }
            _ => false,
        }
    }

    /// A notice about breakerd itself (offline, online again).
    fn notice(
        &mut self,
        kind: NotificationKind,
        offline: &super::quiet::Offline,
        ended_at: Option<std::time::SystemTime>,
    ) -> Notification {
        let id = self.next_id;
        self.next_id += 1;
        let at = ended_at.unwrap_or(offline.since);
        let (from, to) = match kind {
            NotificationKind::Offline => {
                (crate::breaker::State::Closed, crate::breaker::State::Open)
            }
            _ => (crate::breaker::State::Open, crate::breaker::State::Closed),
        };
        Notification {
            id,
            kind,
            service: "breakerd".to_string(),
            from,
            to,
            reason: format!(
                "no connectivity target answers: {}",
                offline.failures.join("; ")
            ),
            at,
            at_unix_ms: crate::wall::unix_millis(at),
            consecutive_failures: 0,
            last_failure: None,
            cause: None,
            outage: Some(OutageInfo {
                started_at: offline.since,
                ended_at,
                failed_trials: 0,
            }),
            next_attempt: None,
            changes: 1,
            dashboard_url: self
                .settings
                .alerts
                .dashboard_url
                .as_ref()
                .map(ToString::to_string),
            api_url: None,
            provider: None,
            runbook_url: self.settings.alerts.runbook(),
            dependants: Vec::new(),
            group: Vec::new(),
        }
    }

    /// Sends a notice about breakerd itself on every direct channel that takes outage pages,
    /// whatever services it is narrowed to.
    async fn send_notice(&mut self, notification: Notification) {
        let class = if notification.is_problem() {
            crate::config::NotifyOn::Open
        } else {
            crate::config::NotifyOn::Closed
        };
        let channels: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, slot)| slot.queue.is_some() && slot.channel.borrow().takes_notice(class))
            .map(|(name, _)| name.clone())
            .collect();
        self.deliver(&channels, &notification).await;
    }

    /// The holds on each of `services` at `now`.
    fn holds_at<'s>(
        &self,
        services: impl IntoIterator<Item = &'s str>,
        now: std::time::SystemTime,
    ) -> Vec<(&'s str, Vec<Hold>)> {
        let silences: Vec<&Silence> = self.silences.active(now).collect();
        let in_outage = |name: &str| {
            self.ledgers
                .get(name)
                .and_then(Ledger::outage)
                .is_some_and(Outage::is_ongoing)
        };
        let facts = Facts::new(
            &self.settings.windows,
            &silences,
            &self.settings.depends_on,
            &in_outage,
            now,
        );
        services
            .into_iter()
            .map(|service| {
                let mut holds = facts.holds(service);
                if let Some(offline) = &self.offline {
                    holds.push(Hold::Offline {
                        since: offline.since,
                    });
                } else if self.verifying.contains(service) {
                    holds.push(Hold::CheckingConnectivity);
                }
                (service, holds)
            })
            .collect()
    }

    /// The holds on `service` now.
    fn holds_of(&self, service: &str, now: std::time::SystemTime) -> Vec<Hold> {
        self.holds_at([service], now)
            .pop()
            .map(|(_, holds)| holds)
            .unwrap_or_default()
    }

    /// Holds or frees `service`'s pages as its holds say; a hold that ends tells on-call what
    /// changed meanwhile.
    async fn refresh_holds(&mut self, service: &str) {
        let holds = self.holds_of(service, crate::wall::now());
        self.apply_holds(service, holds).await;
    }

    /// Holds or frees `service`'s pages as `holds` say.
    async fn apply_holds(&mut self, service: &str, holds: Vec<Hold>) {
        let rules = self.settings.rules(service);
        let Some(ledger) = self.ledgers.get_mut(service) else {
            return;
        };
        let page = ledger.set_quiet(!holds.is_empty(), &rules, Instant::now());
        // Maintenance, silences and dependencies are logged and kept per service; being
        // offline is logged once for all, and the guard's look takes a moment only.
        let announced = |holds: &[Hold]| {
            holds
                .iter()
                .find(|hold| !matches!(hold, Hold::Offline { .. } | Hold::CheckingConnectivity))
                .cloned()
        };
        let before = self.holds.get(service).and_then(|held| announced(held));
        let record = |held: bool, why: String| crate::history::HoldRecord {
            held,
            why,
            at: crate::wall::rfc3339(crate::wall::now()),
        };
        match (before, announced(&holds)) {
            (None, Some(hold)) => {
                let why = describe(&hold);
                info!(service = %service, hold = hold.kind(), "pages are held: {why}");
                self.shared.history.hold(service, record(true, why));
            }
            (Some(_), None) => {
                info!(service = %service, "pages are no longer held");
                self.shared
                    .history
                    .hold(service, record(false, String::new()));
            }
            _ => {}
        }
        let unchanged = match self.holds.get(service) {
            Some(held) => *held == holds,
            None => holds.is_empty(),
        };
        if !unchanged {
            self.holds_changed = true;
            if holds.is_empty() {
                self.holds.remove(service);
            } else {
                self.holds.insert(service.to_string(), holds);
            }
        }
        if let Some(page) = page {
            self.save(service);
            self.send(service, page).await;
        }
    }

    /// Drops expired silences and refreshes every service's holds; notes when they next
    /// change by the clock.
    async fn refresh_all_holds(&mut self) {
        let now = crate::wall::now();
        self.silences.expire(now).await;
        // Silences may have been made, ended or dropped.
        self.holds_changed = true;
        let all: Vec<(String, Vec<Hold>)> = self
            .holds_at(self.settings.rules.keys().map(String::as_str), now)
            .into_iter()
            .map(|(service, holds)| (service.to_string(), holds))
            .collect();
        for (service, holds) in all {
            // A service with no hold and no history needs no ledger (the stage's timers look at
            // every ledger on every turn).
            if holds.is_empty() && !self.ledgers.contains_key(&service) {
                continue;
            }
            self.ledgers.entry(service.clone()).or_default();
            self.apply_holds(&service, holds).await;
        }
        let silences: Vec<&Silence> = self.silences.active(now).collect();
        let next = Facts::new(
            &self.settings.windows,
            &silences,
            &self.settings.depends_on,
            &|_| false,
            now,
        )
        .next_change();
        self.next_quiet_change = next.map(|at| {
            Instant::now() + at.duration_since(now).unwrap_or_default() + Duration::from_millis(1)
        });
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        if self.verifying_until.is_some_and(|at| at <= now) {
            // The guard did not answer: page rather than stay silent.
            warn!("the connectivity guard did not answer in time; held pages go out");
            self.verifying.clear();
            self.verifying_until = None;
            self.refresh_all_holds().await;
        }
        if self.next_quiet_change.is_some_and(|at| at <= now) {
            self.refresh_all_holds().await;
        }
        for group in self.grouping.take_due(Some(now)) {
            self.send_group(group).await;
        }
        let wall = crate::wall::now();
        let due: Vec<String> = self
            .ledgers
            .iter()
            .filter(|(_, ledger)| ledger.next_deadline().is_some_and(|at| at <= now))
            .map(|(service, _)| service.clone())
            .collect();
        for service in due {
            let rules = self.settings.rules(&service);
            let pages = match self.ledgers.get_mut(&service) {
                Some(ledger) => ledger.on_timer(&rules, now, wall),
                None => continue,
            };
            self.save(&service);
            for page in pages {
                self.send(&service, page).await;
            }
        }
    }

    /// Writes `service`'s breaker and ledger down (soon, off the runtime).
    fn save(&self, service: &str) {
        let (Some(restored), Some(ledger)) =
            (self.breakers.get(service), self.ledgers.get(service))
        else {
            return;
        };
        self.store.save(
            service,
            ServiceRecord {
                breaker: restored.breaker.clone(),
                last_failure: restored.last_failure.clone(),
                ledger: ledger.record(&ClockPair::now()),
            },
        );
    }

    /// Publishes every service's outage, if any changed.
    fn publish(&mut self) {
        let now = crate::wall::now();
        self.departed.retain(|service, outage| {
            let ended = outage.ended_at.unwrap_or(now);
            !self.ledgers.contains_key(service)
                && now.duration_since(ended).unwrap_or_default() < DEPARTED_FOR
        });
        let mut view: OutageView = self.departed.clone();
        view.extend(self.ledgers.iter().filter_map(|(service, ledger)| {
            ledger
                .outage()
                .map(|outage| (service.clone(), Arc::new(outage.clone())))
        }));
        self.view.send_if_modified(|current| {
            if **current == view {
                return false;
            }
            *current = Arc::new(view);
            true
        });
        if !std::mem::take(&mut self.holds_changed) {
            return;
        }
        let quiet = QuietView {
            holds: self.holds.clone(),
            silences: self.silences.active(now).cloned().collect(),
            offline: self.offline.clone(),
        };
        let metrics = &self.shared.metrics;
        self.quiet_view.send_if_modified(|current| {
            if **current == quiet {
                return false;
            }
            let held = |kind: &str| {
                quiet
                    .holds
                    .iter()
                    .filter(|(_, holds)| holds.iter().any(|hold| hold.kind() == kind))
                    .map(|(service, _)| service.clone())
                    .collect()
            };
            metrics.set_held(crate::metrics::HeldServices {
                maintenance: held("maintenance"),
                silenced: held("silenced"),
            });
            *current = Arc::new(quiet);
            true
        });
    }

    fn notification(&mut self, service: &str, page: Page) -> Notification {
        let id = self.next_id;
        self.next_id += 1;
        let alerts = &self.settings.alerts;
        let change = page.change;
        Notification {
            id,
            kind: page.kind,
            service: service.to_string(),
            from: change.from,
            to: change.to,
            reason: change.reason.to_string(),
            at: change.at,
            at_unix_ms: crate::wall::unix_millis(change.at),
            consecutive_failures: change.consecutive_failures,
            last_failure: change.cause.as_ref().map(ToString::to_string),
            cause: change.cause,
            outage: page.outage,
            next_attempt: change.next_attempt,
            changes: page.changes,
            dashboard_url: alerts.dashboard_url.as_ref().map(ToString::to_string),
            api_url: alerts.api_url.as_ref().map(|base| {
                format!(
                    "{}/api/v1/circuit-breakers/{service}",
                    base.as_str().trim_end_matches('/')
                )
            }),
            provider: self.settings.providers.get(service).cloned(),
            runbook_url: alerts.runbook(),
            dependants: quiet::dependants(&self.settings.depends_on, service),
            group: Vec::new(),
        }
    }

    /// Writes the notification to the outbox for each direct channel that takes it, then
    /// queues it there.
    async fn send(&mut self, service: &str, page: Page) {
        let (service, page) = match self.settings.alerts.group_wait {
            Some(wait) => match self.grouping.add(service, page, Instant::now() + wait) {
                Some(alone) => alone,
                None => return,
            },
            None => (service.to_string(), page),
        };
        let service = service.as_str();
        let class = page.class;
        let notification = self.notification(service, page);
        let channels: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, slot)| slot.queue.is_some() && slot.channel.borrow().takes(service, class))
            .map(|(name, _)| name.clone())
            .collect();
        self.deliver(&channels, &notification).await;
    }

    /// Sends pages that waited out the group wait: each channel gets one notification listing
    /// every service it takes (or the one, alone).
    async fn send_group(&mut self, pages: Vec<(String, Page)>) {
        let mut members: Vec<(crate::config::NotifyOn, Notification)> = pages
            .into_iter()
            .map(|(service, page)| (page.class, self.notification(&service, page)))
            .collect();
        members.sort_by(|(_, a), (_, b)| a.service.cmp(&b.service));
        // Channels that take the same services get the same notification.
        let mut by_members: BTreeMap<Vec<u64>, Vec<String>> = BTreeMap::new();
        for (name, slot) in self
            .channels
            .iter()
            .filter(|(_, slot)| slot.queue.is_some())
        {
            let channel = slot.channel.borrow();
            let ids: Vec<u64> = members
                .iter()
                .filter(|(class, member)| channel.takes(&member.service, *class))
                .map(|(_, member)| member.id)
                .collect();
            if !ids.is_empty() {
                by_members.entry(ids).or_default().push(name.clone());
            }
        }
        for (ids, channels) in by_members {
            let chosen: Vec<Notification> = members
                .iter()
                .filter(|(_, member)| ids.contains(&member.id))
                .map(|(_, member)| member.clone())
                .collect();
            let notification = match chosen.len() {
                1 => chosen.into_iter().next(),
                _ => {
                    let id = self.next_id;
                    self.next_id += 1;
                    Notification::grouped(id, chosen)
                }
            };
            if let Some(notification) = notification {
                self.deliver(&channels, &notification).await;
            }
        }
    }

    /// Writes `notification` to the outbox for each of `channels`, then queues it there.
    async fn deliver(&mut self, channels: &[String], notification: &Notification) {
        for name in channels {
            let Some(slot) = self.channels.get(name) else {
                continue;
            };
            let outbox = self.shared.outbox.clone();
            let channel = name.clone();
            let kept = notification.clone();
            let written = tokio::task::spawn_blocking(move || outbox.put(&channel, &kept)).await;
            let path = match written {
                Ok(Ok(path)) => Some(path),
                Ok(Err(failure)) => {
                    // Not written down: still send it; it just would not survive a restart.
                    error!(channel = %name, "cannot write the notification to the outbox: {failure}");
                    None
                }
                Err(failure) => {
                    error!(channel = %name, "cannot write the notification to the outbox: {failure}");
                    None
                }
            };
            let Some(queue) = &slot.queue else { continue };
            enqueue(
                &self.shared,
                name,
                queue,
                Job {
                    path,
                    notification: notification.clone(),
                },
            );
        }
    }

    /// Queues what the outbox kept from the last run on the channel of the same name; a kept
    /// notification of a channel no longer configured goes to `dead/`.
    async fn resend_outbox(&self) {
        let outbox = self.shared.outbox.clone();
        let pending = tokio::task::spawn_blocking(move || outbox.pending())
            .await
            .unwrap_or_default();
        if !pending.is_empty() {
            info!(
                pending = pending.len(),
                "sending notifications kept in the outbox from the last run"
            );
        }
        for (path, entry) in pending {
            let job = Job {
                path: Some(path),
                notification: entry.notification,
            };
            match self
                .channels
                .get(&entry.channel)
                .and_then(|slot| slot.queue.as_ref())
            {
                Some(queue) => enqueue(&self.shared, &entry.channel, queue, job),
                None => delivery::finish(
                    &self.shared,
                    &entry.channel,
                    &job,
                    AlertOutcome::Dropped,
                    0,
                    Some("the channel is no longer configured"),
                ),
            }
        }
    }

    /// Takes new settings: rules at once (reminders follow a new interval), channels in place —
    /// an unchanged channel keeps running untouched, a changed one takes its new settings for
    /// its next attempt, a removed one finishes its queue, a new one starts.
    fn reconfigure(&mut self, plan: StagePlan) {
        let StagePlan { settings, channels } = plan;
        let now = Instant::now();
        for (service, ledger) in &mut self.ledgers {
            ledger.retune(&self.settings.rules(service), &settings.rules(service), now);
        }
        let shared = Arc::clone(&self.shared);
        let queue_size = settings.alerts.queue_size;
        let (view, stop) = (&self.view, &self.stop);
        let removed = reconcile(&mut self.channels, channels, |channel| {
            shared.metrics.register_alert_channel(channel.name());
            let name = channel.name().to_string();
            let follow = channel.follow();
            let (sender, receiver) = watch::channel(channel);
            match follow {
                // A channel that follows the outages is told the whole state each time: a
                // restart of its task loses nothing.
                Some(follow) => {
                    let (outages, stopping, shared) =
                        (view.subscribe(), stop.subscribe(), Arc::clone(&shared));
                    let metrics = Arc::clone(&shared.metrics);
                    Slot {
                        channel: sender,
                        queue: None,
                        task: tasks::keep(TaskKind::Alertmanager, name, metrics, move || {
                            follow(
                                receiver.clone(),
                                outages.clone(),
                                Arc::clone(&shared),
                                stopping.clone(),
                            )
                        }),
                    }
                }
                None => {
                    let (queue, jobs) = mpsc::channel(queue_size);
                    Slot {
                        channel: sender,
                        queue: Some(queue),
                        task: tokio::spawn(delivery::run(receiver, jobs, Arc::clone(&shared))),
                    }
                }
            }
        });
        for slot in removed {
            match slot.queue {
                // A removed channel that takes pages finishes what it has queued.
                Some(_) => self.retired.push(slot.task),
                // One that follows the outages has told them all; nothing is left to finish.
                None => slot.task.abort(),
            }
        }
        self.restart_guard(&settings.connectivity);
        self.settings = settings;
    }

    /// Starts, restarts or stops the guard's probe for `targets` (only when they changed).
    fn restart_guard(&mut self, targets: &[ConnectivityTarget]) {
        if self
            .guard
            .as_ref()
            .is_some_and(|guard| guard.targets == targets)
        {
            return;
        }
        if let Some(old) = self.guard.take() {
            old.task.abort();
        }
        self.tcp_reachable = None;
        if !targets
            .iter()
            .any(|target| matches!(target, ConnectivityTarget::Tcp { .. }))
        {
            return;
        }
        let (ask, asked) = mpsc::channel(1);
        let task = tokio::spawn(connectivity::run(
            targets.to_vec(),
            asked,
            self.reachability.0.clone(),
            self.stop.subscribe(),
        ));
        self.guard = Some(Guard {
            targets: targets.to_vec(),
            ask,
            task,
        });
    }

    /// Writes the breakers' last state and everything else down, stops the channels (queued
    /// notifications get until `deadline`) and the writer.
    async fn finish(mut self, last: Vec<(String, Restored)>, deadline: Instant) {
        // Grouped pages waiting out the wait go now, rather than be lost with the process.
        for group in self.grouping.take_due(None) {
            self.send_group(group).await;
        }
        for (service, restored) in last {
            // Only what a restart would otherwise lose: a breaker that never left closed
            // with no failures in a row needs no file.
            let pristine = restored.breaker.state == crate::breaker::State::Closed
                && restored.breaker.consecutive_failures == 0
                && restored.breaker.last_change.is_none();
            let known = self.breakers.get(&service);
            if known == Some(&restored) || (pristine && known.is_none()) {
                continue;
            }
            self.ledgers.entry(service.clone()).or_default();
            self.breakers.insert(service.clone(), restored);
            self.save(&service);
        }
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.retired);
        tasks.extend(self.channels.into_values().map(|slot| slot.task));
        self.store.close().await;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                warn!(
                    "an alert channel did not finish in time; what it had left stays in the outbox"
                );
            }
        }
    }
}

/// Queues a notification on a channel; a full queue drops it (counted, logged, kept in
/// `dead/`) rather than making the stage wait.
fn enqueue(shared: &Shared, channel: &str, queue: &mpsc::Sender<Job>, job: Job) {
    match queue.try_send(job) {
        Ok(()) => shared.metrics.alert_queue_depth(channel, 1),
        Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
            delivery::finish(
                shared,
                channel,
                &job,
                AlertOutcome::Dropped,
                0,
                Some("the channel's queue is full"),
            );
        }
    }
}

/// A hold in words, for logs.
fn describe(hold: &Hold) -> String {
    match hold {
        Hold::Maintenance { reason, until } => {
            format!(
                "maintenance ({reason}) until {}",
                crate::wall::rfc3339(*until)
            )
        }
        Hold::Silenced { comment, until, .. } => {
            format!(
                "silenced ({comment}) until {}",
                crate::wall::rfc3339(*until)
            )
        }
        Hold::Dependency { upstream } => {
            format!("{upstream}, which it depends on, is in an outage")
        }
        Hold::Offline { since } => format!(
            "breakerd is offline (no connectivity target answers) since {}",
            crate::wall::rfc3339(*since)
        ),
        Hold::CheckingConnectivity => {
            "an outage starts: the connectivity guard looks whether breakerd is offline".to_string()
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
