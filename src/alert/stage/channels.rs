//! The stage's running channels: one slot each (its settings as they change, its queue, its
//! task), brought in line with a new config without touching unchanged ones, and the
//! dispatch of a notification to the outbox and the queues of the channels that take it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info};

use super::{Stage, StagePlan};
use crate::alert::Shared;
use crate::alert::channel::Channel;
use crate::alert::delivery::{self, Job};
use crate::alert::notification::Notification;
use crate::metrics::AlertOutcome;
use crate::statefs::StateFiles;
use crate::tasks::{self, TaskKind};

/// A running channel: the channel its task reads, its queue (channels that take pages), its
/// task.
pub(super) struct Slot {
    pub(super) channel: watch::Sender<Arc<dyn Channel>>,
    pub(super) queue: Option<mpsc::Sender<Job>>,
    pub(super) task: JoinHandle<()>,
}

/// Brings running `slots` in line with `wanted`: an unchanged channel runs on untouched, a
/// changed one of the same kind takes its new settings in place, a new one (or one whose kind
/// changed) is started by `start`. Returns the slots of channels no longer running.
pub(super) fn reconcile(
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

impl Stage {
    /// Sends a notice about breakerd itself on every direct channel that takes outage pages,
    /// whatever services it is narrowed to.
    pub(super) async fn send_notice(&mut self, notification: Notification) {
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

    /// Writes `notification` to the outbox for each of `channels`, then queues it there.
    pub(super) async fn deliver(&mut self, channels: &[String], notification: &Notification) {
        for name in channels {
            let Some(slot) = self.channels.get(name) else {
                continue;
            };
            let outbox = self.shared.outbox.clone();
            let channel = name.clone();
            let kept = notification.clone();
            let written = tokio::task::spawn_blocking(move || outbox.put(&channel, &kept)).await;
            let path = match written {
                Ok(Ok(path)) => {
                    self.shared
                        .metrics
                        .state_faults()
                        .written(StateFiles::Outbox, self.shared.outbox.folder());
                    Some(path)
                }
                Ok(Err(failure)) => {
                    // Not written down: still send it; it just would not survive a restart.
                    self.shared.metrics.state_faults().failed(
                        StateFiles::Outbox,
                        self.shared.outbox.folder(),
                        &failure,
                    );
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
    pub(super) async fn resend_outbox(&self) {
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
    pub(super) fn reconfigure(&mut self, plan: StagePlan) {
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
}

/// Queues a notification on a channel; a full queue drops it (counted, logged, kept in
/// `dead/`) rather than making the stage wait.
pub(super) fn enqueue(shared: &Shared, channel: &str, queue: &mpsc::Sender<Job>, job: Job) {
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
