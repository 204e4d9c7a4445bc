//! Alerts on state changes: a dispatcher fed by every breaker's transitions decides what
//! notifies (per service and per channel), damps flapping, sends reminders, keeps every
//! pending notification in an on-disk outbox, and hands it to one delivery task per channel
//! (one file each: email, webhook, Alertmanager).

mod alertmanager;
mod delivery;
mod dispatcher;
mod email;
mod notification;
mod outbox;
mod webhook;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use delivery::{FIRST_BACKOFF, MAX_BACKOFF};
pub use notification::{Notification, NotificationKind};
pub use webhook::{SIGNATURE_HEADER, sign};

use crate::config::AlertsConfig;
use crate::history::History;
use crate::metrics::Metrics;
use crate::probe::HttpClient;
use crate::registry::Registry;
use alertmanager::AlertmanagerChannel;
use delivery::{Channel, Job};
use email::EmailChannel;
use outbox::Outbox;
use webhook::WebhookChannel;

/// What the dispatcher and the delivery tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) outbox: Outbox,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) history: Arc<History>,
    pub(crate) max_attempts: u32,
}

/// The running alert machinery.
#[derive(Debug)]
pub struct Alerts {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Alerts {
    /// Starts the channels of `config` for every service of `registry`, first re-queueing what
    /// the outbox kept from a previous run.
    pub fn start(
        config: &AlertsConfig,
        registry: &Registry,
        client: &HttpClient,
        metrics: Arc<Metrics>,
        history: Arc<History>,
    ) -> anyhow::Result<Self> {
        let outbox = Outbox::open(&config.state_dir).with_context(|| {
            format!(
                "cannot create the alert outbox in {} (set alerts.state_dir to a writable directory)",
                config.state_dir.display()
            )
        })?;
        let shared = Arc::new(Shared {
            outbox,
            metrics,
            history,
            max_attempts: config.max_attempts,
        });
        let mut channels: Vec<Arc<Channel>> = Vec::new();
        for webhook in &config.webhooks {
            channels.push(Arc::new(Channel::Webhook(WebhookChannel::new(
                webhook.clone(),
                client.clone(),
            ))));
        }
        if let Some(email) = &config.email {
            let channel = EmailChannel::new(email.clone())
                .map_err(|why| anyhow::anyhow!("email channel: {why}"))?;
            channels.push(Arc::new(Channel::Email(channel)));
        }
        for am in &config.alertmanagers {
            channels.push(Arc::new(Channel::Alertmanager(AlertmanagerChannel::new(
                am.clone(),
                client.clone(),
            ))));
        }
        let (stop, stopping) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut queues = Vec::new();
        for channel in &channels {
            shared.metrics.register_alert_channel(channel.name());
            let (sender, receiver) = mpsc::channel::<Job>(config.queue_size);
            queues.push((Arc::clone(channel), sender));
            tasks.push(tokio::spawn(delivery::run(
                Arc::clone(channel),
                receiver,
                Arc::clone(&shared),
            )));
            if let Channel::Alertmanager(am) = &**channel {
                tasks.push(dispatcher::keep_alertmanager_current(
                    Arc::clone(channel),
                    am.config.resend_every,
                    stopping.clone(),
                ));
            }
        }
        let pending = shared.outbox.pending();
        if !pending.is_empty() {
            info!(
                pending = pending.len(),
                "sending notifications kept in the outbox from the last run"
            );
        }
        for (path, entry) in pending {
            match queues
                .iter()
                .find(|(channel, _)| channel.name() == entry.channel)
            {
                Some((_, queue)) => dispatcher::enqueue(
                    &shared,
                    queue,
                    &entry.channel,
                    Some(path),
                    entry.notification,
                ),
                None => {
                    warn!(channel = %entry.channel, "a kept notification's channel is no longer configured; moved to dead/");
                    shared.outbox.bury(&path);
                }
            }
        }
        let (intake, events) = mpsc::channel(config.queue_size);
        for service in registry.iter() {
            tasks.push(dispatcher::forward(
                Arc::clone(service),
                intake.clone(),
                config,
                stopping.clone(),
                Arc::clone(&shared),
                &queues,
            ));
        }
        drop(intake);
        let dispatcher = dispatcher::Dispatcher::new(
            config,
            Arc::clone(&shared),
            queues,
            shared.outbox.first_id(),
        );
        tasks.push(tokio::spawn(dispatcher.run(events, stopping)));
        Ok(Self { stop, tasks })
    }

    /// Stops taking transitions; the delivery tasks drain their queues until `deadline`, and
    /// whatever is left stays in the outbox for the next start.
    pub async fn shutdown(self, deadline: tokio::time::Instant) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
