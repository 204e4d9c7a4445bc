//! Delivery to one channel: its own queue and task, so a channel that is down delays no other;
//! notifications in the order they were made; retries with exponential backoff and jitter on
//! connection errors, timeouts and 5xx, never on a 4xx.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::Shared;
use super::alertmanager::AlertmanagerChannel;
use super::email::EmailChannel;
use super::notification::Notification;
use super::webhook::WebhookChannel;

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why an attempt failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl DeliveryError {
    pub(crate) fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// One configured channel.
#[derive(Debug)]
pub(crate) enum Channel {
    Webhook(WebhookChannel),
    Email(EmailChannel),
    Alertmanager(AlertmanagerChannel),
}

impl Channel {
    pub(crate) fn name(&self) -> &str {
        match self {
            Channel::Webhook(channel) => &channel.config.name,
            Channel::Email(_) => "email",
            Channel::Alertmanager(channel) => &channel.config.name,
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Channel::Webhook(channel) => channel.config.timeout,
            Channel::Email(channel) => channel.config.timeout,
            Channel::Alertmanager(channel) => channel.config.timeout,
        }
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let attempt = async {
            match self {
                Channel::Webhook(channel) => channel.deliver(notification).await,
                Channel::Email(channel) => channel.deliver(notification).await,
                Channel::Alertmanager(channel) => channel.deliver(notification).await,
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

/// Delivers the channel's jobs one after another until its queue closes (the daemon stops)
/// and is empty.
pub(crate) async fn run(
    channel: Arc<Channel>,
    mut queue: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
) {
    let name = channel.name().to_string();
    let mut jitter = crate::breaker::Jitter::new();
    while let Some(job) = queue.recv().await {
        shared.metrics.alert_queue_depth(&name, -1);
        let mut attempt = 1;
        loop {
            match channel.deliver(&job.notification).await {
                Ok(()) => {
                    if let Some(path) = &job.path {
                        shared.outbox.remove(path);
                    }
                    shared.metrics.alert(&name, "sent");
                    shared.metrics.alert_delivered(&name, SystemTime::now());
                    shared
                        .history
                        .delivery(&job.notification, &name, "sent", attempt, None);
                    info!(
                        channel = %name,
                        service = %job.notification.service,
                        attempts = attempt,
                        "alert sent: {}",
                        job.notification.subject()
                    );
                    break;
                }
                Err(failure) if !failure.retryable || attempt >= shared.max_attempts => {
                    if let Some(path) = &job.path {
                        shared.outbox.bury(path);
                    }
                    shared.metrics.alert(&name, "failed");
                    shared.history.delivery(
                        &job.notification,
                        &name,
                        "failed",
                        attempt,
                        Some(&failure.message),
                    );
                    error!(
                        channel = %name,
                        service = %job.notification.service,
                        attempts = attempt,
                        "alert not delivered, kept in dead/: {}",
                        failure.message
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
}
