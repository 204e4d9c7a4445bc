//! The running stage's handle: where transitions go in, the commands it takes (reconfigure,
//! forget, silences, shutdown), and how it starts from what `state_dir` kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info};

use super::{Settings, Stage, StagePlan};
use crate::alert::grouping::Grouping;
use crate::alert::outage::{ClockPair, Ledger};
use crate::alert::outbox::Outbox;
use crate::alert::quiet::QuietView;
use crate::alert::silences::{NewSilence, Silence, SilenceError, Silences};
use crate::alert::store::Store;
use crate::alert::{OutageView, Shared};
use crate::breaker::{Snapshot, Transition};
use crate::config::{AlertsConfig, Config};
use crate::history::History;
use crate::metrics::Metrics;
use crate::outcome::Cause;

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

/// The alert stage has stopped (it failed; the log says why).
#[derive(Debug, thiserror::Error)]
#[error("the alert stage has stopped")]
pub(crate) struct StageStopped;

pub(super) enum Command {
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
    pub(super) intake: mpsc::Sender<StageEvent>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) outages: watch::Receiver<Arc<OutageView>>,
    pub(super) quiet: watch::Receiver<Arc<QuietView>>,
    pub(super) task: JoinHandle<()>,
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
            // An operation's breaker (`mpesa/b2c`) is kept while its service is configured.
            .filter(|name| {
                !plan
                    .settings
                    .rules
                    .contains_key(crate::unit::service_of(name))
            })
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
        let silences = Silences::open(state_dir, Arc::clone(&metrics)).await;
        let shared = Arc::new(Shared {
            outbox,
            metrics,
            history,
        });
        let (view, outages) = watch::channel(Arc::new(OutageView::new()));
        let (quiet_view, quiet) = watch::channel(Arc::new(QuietView::default()));
        let (stop, _) = watch::channel(false);
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

    pub(super) async fn ask(
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

pub(super) fn stopped() -> SilenceError {
    SilenceError::Storage("the alert stage has stopped".to_string())
}
