//! The alert stage: one task, above reloads, that every breaker's transitions reach once and in
//! order. It books outages, keeps each service's state on disk, turns pages into notifications
//! written to the outbox and queued on every direct channel that takes them, and publishes the
//! outages that the Alertmanager channels and the API read. A reload changes its channels and
//! rules in place: outages in progress, the Alertmanager alerts and every timer stay.

mod channels;
mod guard;
mod handle;
mod holds;
mod notices;
mod persist;
mod settings;
#[cfg(test)]
mod testing;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

use super::connectivity::Reachability;
use super::grouping::Grouping;
use super::outage::{Change, Ledger, Outage};
use super::quiet::{self, Hold, QuietView};
use super::silences::Silences;
use super::store::Store;
use super::{OutageView, Shared};
use crate::breaker::{Transition, TransitionReason};
use crate::config::ConnectivityTarget;
use crate::outcome::Cause;
use crate::tasks::{self, TaskKind};

use channels::Slot;
use guard::Guard;
use handle::Command;
pub use handle::Silencer;
pub(crate) use handle::{AlertStage, Restored, StageEvent};
use settings::Settings;
pub(crate) use settings::StagePlan;

/// Changes booked in one round before the outages are published again.
const EVENT_BATCH: usize = 256;
/// How long the outage of a service removed from the config stays published, ended.
const DEPARTED_FOR: Duration = Duration::from_secs(86_400);

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
            Command::Forget(name) => {
                // The service's own breaker and its operations' (`name/operation`).
                let units: Vec<String> = self
                    .ledgers
                    .keys()
                    .chain(self.breakers.keys())
                    .filter(|unit| crate::unit::service_of(unit) == name)
                    .cloned()
                    .chain([name.clone()])
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for service in units {
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
            // Its operations' breakers (`breakers = "per_operation"`) wait on it too.
            let operations: Vec<String> = self
                .ledgers
                .keys()
                .filter(|unit| {
                    crate::unit::operation_of(unit).is_some()
                        && crate::unit::service_of(unit) == dependant
                })
                .cloned()
                .collect();
            for operation in operations {
                self.refresh_holds(&operation).await;
            }
        }
        if self
            .settings
            .connectivity
            .contains(&ConnectivityTarget::Service(service.clone()))
        {
            self.update_connectivity().await;
        }
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
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
