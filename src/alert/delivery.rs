//! Delivery to one direct channel (email or webhook): its own queue and task, so a channel
//! that is down delays no other; notifications in the order they were made; retries with
//! exponential backoff and jitter on connection errors, timeouts and 5xx, never on a 4xx; every
//! attempt counted at once, so a channel in trouble shows before its retries run out. The task
//! reads its channel's settings anew for every attempt, so a reload changes them in place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::Shared;
use super::email::EmailChannel;
use super::failure::DeliveryError;
use super::notification::Notification;
use super::webhook::WebhookChannel;
use crate::config::{ChannelFilter, NotifyOn};
use crate::history::DeliveryRecord;
use crate::metrics::{AlertOutcome, AttemptOutcome};
use crate::tasks::{self, TaskKind};

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How a direct channel sends.
#[derive(Debug)]
pub(crate) enum Transport {
    Webhook(Box<WebhookChannel>),
    Email(Box<EmailChannel>),
    /// For tests: panics on notifications of this service, takes the others.
    #[cfg(test)]
    PanicsOn(String),
}

/// One configured email or webhook channel, as its delivery task uses it.
#[derive(Debug)]
pub(crate) struct DirectChannel {
    pub(crate) transport: Transport,
    /// Attempts before a notification is given up.
    pub(crate) max_attempts: u32,
}

impl DirectChannel {
    pub(crate) fn name(&self) -> &str {
        match &self.transport {
            Transport::Webhook(channel) => &channel.config.name,
            Transport::Email(_) => "email",
            #[cfg(test)]
            Transport::PanicsOn(_) => "test",
        }
    }

    fn timeout(&self) -> Duration {
        match &self.transport {
            Transport::Webhook(channel) => channel.config.timeout,
            Transport::Email(channel) => channel.config.timeout,
            #[cfg(test)]
            Transport::PanicsOn(_) => Duration::from_secs(1),
        }
    }

    fn filter(&self) -> &ChannelFilter {
        match &self.transport {
            Transport::Webhook(channel) => &channel.config.filter,
            Transport::Email(channel) => &channel.config.filter,
            #[cfg(test)]
            Transport::PanicsOn(_) => {
                static ALL: ChannelFilter = ChannelFilter {
                    notify_on: None,
                    services: None,
                };
                &ALL
            }
        }
    }

    /// Whether it takes a notification of `service` of class `class`.
    pub(crate) fn takes(&self, service: &str, class: NotifyOn) -> bool {
        let filter = self.filter();
        filter
            .notify_on
            .as_ref()
            .is_none_or(|list| list.contains(&class))
            && filter
                .services
                .as_ref()
                .is_none_or(|list| list.iter().any(|s| s == service))
    }

    /// Whether it takes a notice about breakerd itself (offline, online again) of `class`:
    /// its `services` do not narrow those.
    pub(crate) fn takes_notice(&self, class: NotifyOn) -> bool {
        self.filter()
            .notify_on
            .as_ref()
            .is_none_or(|list| list.contains(&class))
    }

    /// Whether `other` sends the same way (a reload that changed nothing here).
    pub(crate) fn same_as(&self, other: &DirectChannel) -> bool {
        self.max_attempts == other.max_attempts
            && match (&self.transport, &other.transport) {
                (Transport::Webhook(a), Transport::Webhook(b)) => a.config == b.config,
                (Transport::Email(a), Transport::Email(b)) => a.config == b.config,
                _ => false,
            }
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let attempt = async {
            match &self.transport {
                Transport::Webhook(channel) => channel.deliver(notification).await,
                Transport::Email(channel) => channel.deliver(notification).await,
                #[cfg(test)]
                Transport::PanicsOn(service) => {
                    assert_ne!(&notification.service, service, "a bug in a channel");
                    Ok(())
                }
            }
        };
        match tokio::time::timeout(self.timeout(), attempt).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::retryable(format!(
                "no answer within {} ms",
                self.timeout().as_millis()
            ))),
        }
    }
}

/// A notification to deliver, with its outbox file.
#[derive(Debug)]
pub(crate) struct Job {
    /// The outbox file; `None` when it could not be written.
    pub(crate) path: Option<PathBuf>,
    pub(crate) notification: Notification,
}

/// The wait before attempt `attempt` (2 for the first retry): exponential, capped, and
/// shortened by up to a fifth at random so retries of many notifications spread out.
pub(crate) fn backoff(attempt: u32, random_fraction: f64) -> Duration {
    let exponent = i32::try_from(attempt.saturating_sub(2)).unwrap_or(i32::MAX);
    let base = (FIRST_BACKOFF.as_secs_f64() * 2f64.powi(exponent)).min(MAX_BACKOFF.as_secs_f64());
    Duration::from_secs_f64(base * (1.0 - 0.2 * random_fraction.clamp(0.0, 1.0)))
}

/// How one job's delivery ended: counted, kept in the history, logged, and its outbox file
/// removed (sent) or moved to `dead/` (failed, dropped) — all in one place.
pub(crate) fn finish(
    shared: &Shared,
    channel: &str,
    job: &Job,
    outcome: AlertOutcome,
    attempts: u32,
    error: Option<&str>,
) {
    let notification = &job.notification;
    if let Some(path) = &job.path {
        match outcome {
            AlertOutcome::Sent => shared.outbox.remove(path),
            AlertOutcome::Failed | AlertOutcome::Dropped => shared.outbox.bury(path),
        }
    }
    shared.metrics.alert(channel, outcome);
    let now = crate::wall::now();
    if outcome == AlertOutcome::Sent {
        shared.metrics.alert_delivered(channel, now);
    }
    let record = DeliveryRecord {
        notification: notification.id,
        subject: notification.subject(),
        channel: channel.to_string(),
        outcome,
        attempts,
        error: error.map(str::to_string),
        at: crate::wall::rfc3339(now),
    };
    for service in notification.services() {
        shared.history.delivery(service, record.clone());
    }
    let service = &notification.service;
    match (outcome, error) {
        (AlertOutcome::Sent, _) => info!(
            channel,
            service = %service,
            attempts,
            "alert sent: {}",
            notification.subject()
        ),
        (AlertOutcome::Failed, error) => error!(
            channel,
            service = %service,
            attempts,
            "alert not delivered, kept in dead/: {}",
            error.unwrap_or("gave up")
        ),
        (AlertOutcome::Dropped, error) => error!(
            channel,
            service = %service,
            "alert dropped, kept in dead/: {}",
            error.unwrap_or("the channel's queue is full")
        ),
    }
}

/// Delivers the channel's jobs one after another until its queue closes (the daemon stops, or
/// a reload removed the channel) and is empty.
pub(crate) async fn run(
    channel: watch::Receiver<Arc<DirectChannel>>,
    mut queue: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
) {
    let name = channel.borrow().name().to_string();
    let mut jitter = crate::breaker::Jitter::new();
    while let Some(job) = queue.recv().await {
        shared.metrics.alert_queue_depth(&name, -1);
        let mut attempt = 1;
        loop {
            let current = Arc::clone(&*channel.borrow());
            let attempt_result = tasks::guard(
                &shared.metrics,
                TaskKind::AlertDelivery,
                &name,
                current.deliver(&job.notification),
            )
            .await;
            let result = attempt_result.unwrap_or_else(|| {
                Err(DeliveryError::permanent(
                    "the delivery panicked (a bug; see the log)",
                ))
            });
            let outcome = match result {
                Ok(()) => AttemptOutcome::Ok,
                Err(_) => AttemptOutcome::Failed,
            };
            shared.metrics.alert_attempt(&name, outcome);
            match result {
                Ok(()) => {
                    finish(&shared, &name, &job, AlertOutcome::Sent, attempt, None);
                    break;
                }
                Err(failure) if !failure.retryable || attempt >= current.max_attempts => {
                    finish(
                        &shared,
                        &name,
                        &job,
                        AlertOutcome::Failed,
                        attempt,
                        Some(&failure.message),
                    );
                    break;
                }
                Err(failure) => {
                    attempt += 1;
                    let wait = backoff(attempt, jitter.next_fraction());
                    warn!(
                        channel = %name,
                        service = %job.notification.service,
                        attempt,
                        wait_ms = wait.as_millis(),
                        "alert delivery failed, will retry: {}",
                        failure.message
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_shortens() {
        let waits: Vec<u128> = (2..=10)
            .map(|attempt| backoff(attempt, 0.0).as_millis())
            .collect();
        assert_eq!(
            waits,
            vec![500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        assert_eq!(backoff(2, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(u32::MAX, 0.5), Duration::from_secs(54));
    }

    fn scratch(label: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("breakerd-delivery-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn a_channel_that_panics_on_one_notification_counts_it_and_delivers_the_next() {
        let dir = scratch("panic");
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let history = Arc::new(crate::history::History::default());
        let shared = Arc::new(Shared {
            outbox: super::super::outbox::Outbox::open(&dir).unwrap(),
            metrics: Arc::clone(&metrics),
            history: Arc::clone(&history),
        });
        let channel = Arc::new(DirectChannel {
            transport: Transport::PanicsOn("mpesa".into()),
            max_attempts: 3,
        });
        metrics.register_alert_channel("test");
        let (_keep, settings) = watch::channel(channel);
        let (queue, jobs) = mpsc::channel(4);
        for service in ["mpesa", "kcb"] {
            let notification = Notification {
                service: service.into(),
                ..super::super::notification::sample()
            };
            queue
                .try_send(Job {
                    path: None,
                    notification,
                })
                .unwrap();
        }
        drop(queue);
        run(settings, jobs, Arc::clone(&shared)).await;
        let text = metrics.render_prometheus_text();
        for series in [
            "breakerd_task_panics_total{task=\"alert_delivery\"} 1",
            "breakerd_alerts_total{channel=\"test\",outcome=\"failed\"} 1",
            "breakerd_alerts_total{channel=\"test\",outcome=\"sent\"} 1",
            "breakerd_alert_attempts_total{channel=\"test\",outcome=\"failed\"} 1",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
        let kcb = history.events("kcb").deliveries;
        assert_eq!(kcb.len(), 1, "the next notification is delivered");
        let mpesa = history.events("mpesa").deliveries;
        assert_eq!(
            mpesa[0].error.as_deref(),
            Some("the delivery panicked (a bug; see the log)")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
