//! Delivery to one channel that takes pages (every kind but Alertmanager): its own queue and
//! task, so a channel that is down delays no other; notifications in the order they were made;
//! retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx
//! (waiting at least as long as a receiver's `Retry-After` asks), never on another 4xx; every
//! attempt counted at once, so a channel in trouble shows before its retries run out. The task
//! reads its channel anew for every attempt, so a reload changes it in place. It knows
//! channels only by the [`Channel`] trait.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::Shared;
use super::channel::Channel;
use super::failure::DeliveryError;
use super::notification::Notification;
use super::page::Page;
use crate::history::DeliveryRecord;
use crate::metrics::{AlertOutcome, AttemptOutcome};
use crate::tasks::{self, TaskKind};

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured; a page whose receiver asks for more is given up (and
/// kept in `dead/`).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A notification to deliver, with its outbox file.
#[derive(Debug)]
pub(crate) struct Job {
    /// The outbox file; `None` when it could not be written.
    pub(crate) path: Option<PathBuf>,
    pub(crate) notification: Notification,
}

/// One attempt at `notification` on `channel`, cut at the channel's timeout.
async fn attempt_once(
    channel: &dyn Channel,
    notification: &Notification,
) -> Result<(), DeliveryError> {
    let page = Page::of(notification);
    let timeout = channel.timeout();
    match tokio::time::timeout(timeout, channel.deliver(&page)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::retryable(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
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
    let title = Page::of(notification).title;
    if let Some(path) = &job.path {
        // File system work, off the async runtime.
        let (outbox, path) = (shared.outbox.clone(), path.clone());
        drop(tokio::task::spawn_blocking(move || match outcome {
            AlertOutcome::Sent => outbox.remove(&path),
            AlertOutcome::Failed | AlertOutcome::Dropped => outbox.bury(&path),
        }));
    }
    shared.metrics.alert(channel, outcome);
    let now = crate::wall::now();
    if outcome == AlertOutcome::Sent {
        shared.metrics.alert_delivered(channel, now);
    }
    let record = DeliveryRecord {
        notification: notification.id,
        subject: title.clone(),
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
            "alert sent: {title}"
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
    channel: watch::Receiver<Arc<dyn Channel>>,
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
                attempt_once(&*current, &job.notification),
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
                Err(mut failure)
                    if failure
                        .retry_after
                        .is_some_and(|wait| wait > MAX_RETRY_AFTER) =>
                {
                    // Waiting that long would make the page news from the past; and trying
                    // sooner would only be refused again.
                    failure.message = format!(
                        "{}; it asks to wait {} s, longer than breakerd waits ({} s): given up",
                        failure.message,
                        failure.retry_after.unwrap_or_default().as_secs(),
                        MAX_RETRY_AFTER.as_secs()
                    );
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
                Err(failure) if !failure.retryable || attempt >= current.max_attempts() => {
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
                    let wait = backoff(attempt, jitter.next_fraction())
                        .max(failure.retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
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

    /// A channel that panics on pages of one service and takes the others.
    #[derive(Debug)]
    struct PanicsOn(String);

    #[derive(Debug, PartialEq)]
    struct NoSettings(crate::config::ChannelFilter);

    impl crate::config::ChannelSettings for NoSettings {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn name(&self) -> &str {
            "test"
        }
        fn filter(&self) -> &crate::config::ChannelFilter {
            &self.0
        }
        fn render(&self) -> String {
            String::new()
        }
    }

    static SETTINGS: std::sync::LazyLock<NoSettings> =
        std::sync::LazyLock::new(|| NoSettings(crate::config::ChannelFilter::default()));

    impl Channel for PanicsOn {
        fn settings(&self) -> &dyn crate::config::ChannelSettings {
            &*SETTINGS
        }
        fn max_attempts(&self) -> u32 {
            3
        }
        fn timeout(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn deliver<'a>(
            &'a self,
            page: &'a Page<'a>,
        ) -> super::super::channel::Boxed<'a, Result<(), DeliveryError>> {
            Box::pin(async move {
                assert_ne!(page.notification.service, self.0, "a bug in a channel");
                Ok(())
            })
        }
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
        let channel: Arc<dyn Channel> = Arc::new(PanicsOn("mpesa".into()));
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
