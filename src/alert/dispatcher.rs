//! The dispatcher: turns transitions into notifications. It decides which changes notify
//! (per service, then per channel), summarises a service's changes that come within the
//! minimum interval of its last notification ("flapping"), sends reminders while a breaker
//! stays open, writes each notification to the outbox and queues it on every channel that
//! takes it — without ever blocking a breaker or a check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{error, warn};

use super::Shared;
use super::delivery::{Channel, Job};
use super::notification::{Notification, NotificationKind};
use crate::breaker::{State, Transition};
use crate::config::{AlertsConfig, NotifyOn, Url};
use crate::registry::Service;

/// A transition with the service's own notify list.
#[derive(Debug)]
pub(crate) struct Event {
    transition: Transition,
    notify_on: Vec<NotifyOn>,
}

type Queues = Vec<(Arc<Channel>, mpsc::Sender<Job>)>;

/// Forwards one breaker's transitions to the dispatcher. A breaker never waits for this:
/// transitions reach it through a broadcast channel, and one that falls behind is counted
/// as dropped on every channel and logged.
pub(crate) fn forward(
    service: Arc<Service>,
    intake: mpsc::Sender<Event>,
    config: &AlertsConfig,
    mut stopping: watch::Receiver<bool>,
    shared: Arc<Shared>,
    queues: &Queues,
) -> JoinHandle<()> {
    let mut events = service.breaker.subscribe();
    let notify_on = service
        .config
        .notify_on
        .clone()
        .unwrap_or_else(|| config.notify_on.clone());
    let channel_names: Vec<String> = queues
        .iter()
        .map(|(channel, _)| channel.name().to_string())
        .collect();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                received = events.recv() => received,
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            match received {
                Ok(transition) => {
                    let event = Event {
                        transition,
                        notify_on: notify_on.clone(),
                    };
                    if intake.send(event).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    for name in &channel_names {
                        shared.metrics.alert(name, "dropped");
                    }
                    error!(
                        service = service.name(),
                        missed, "alert dispatcher fell behind; transitions dropped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// Queues a notification already in the outbox; a full queue drops it (counted, logged, and
/// kept in `dead/`).
pub(crate) fn enqueue(
    shared: &Shared,
    queue: &mpsc::Sender<Job>,
    channel: &str,
    path: Option<PathBuf>,
    notification: Notification,
) {
    let service = notification.service.clone();
    match queue.try_send(Job { path, notification }) {
        Ok(()) => shared.metrics.alert_queue_depth(channel, 1),
        Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
            if let Some(path) = &job.path {
                shared.outbox.bury(path);
            }
            shared.metrics.alert(channel, "dropped");
            shared
                .history
                .delivery(&job.notification, channel, "dropped", 0, Some("queue full"));
            error!(channel, service = %service, "alert queue full: notification dropped (kept in dead/)");
        }
    }
}

/// Re-posts Alertmanager's firing and recently resolved alerts every `every`.
pub(crate) fn keep_alertmanager_current(
    channel: Arc<Channel>,
    every: Duration,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Channel::Alertmanager(alertmanager) = &*channel else {
            return;
        };
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            if let Err(failure) = alertmanager.resend().await {
                warn!(
                    channel = channel.name(),
                    "re-sending alerts to Alertmanager failed: {}", failure.message
                );
            }
        }
    })
}

/// Per-service bookkeeping.
#[derive(Debug, Default)]
struct ServiceState {
    last_sent: Option<Instant>,
    /// Changes held back since the last notification.
    held: Vec<Transition>,
    summary_due: Option<Instant>,
    /// The last change seen (for reminders).
    latest: Option<Transition>,
    next_reminder: Option<Instant>,
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    queues: Queues,
    min_interval: Duration,
    reminder_every: Option<Duration>,
    dashboard_url: Option<String>,
    api_url: Option<Url>,
    next_id: u64,
    services: BTreeMap<String, ServiceState>,
}

impl Dispatcher {
    pub(crate) fn new(
        config: &AlertsConfig,
        shared: Arc<Shared>,
        queues: Queues,
        first_id: u64,
    ) -> Self {
        Self {
            shared,
            queues,
            min_interval: config.min_interval,
            reminder_every: config.reminder_every,
            dashboard_url: config.dashboard_url.as_ref().map(ToString::to_string),
            api_url: config.api_url.clone(),
            next_id: first_id,
            services: BTreeMap::new(),
        }
    }

    /// Handles transitions and timers until stopped; then drops the queues so the delivery
    /// tasks drain and end.
    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut stopping: watch::Receiver<bool>,
    ) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => return,
                },
                _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => self.on_timers(),
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.services
            .values()
            .flat_map(|state| [state.summary_due, state.next_reminder])
            .flatten()
            .min()
    }

    /// Steps: 1. remember the change (for reminders); 2. drop it if the service does not
    /// notify on it; 3. hold it if the service notified less than `min_interval` ago;
    /// 4. otherwise notify now.
    fn on_event(&mut self, event: Event) {
        let now = Instant::now();
        let transition = event.transition;
        let service = transition.service.to_string();
        let reminder_every = self.reminder_every;
        let state = self.services.entry(service.clone()).or_default();
        state.latest = Some(transition.clone());
        state.next_reminder = match (transition.to.is_open(), reminder_every) {
            (true, Some(every)) => state.next_reminder.or(Some(now + every)),
            _ => None,
        };
        if !event.notify_on.contains(&NotifyOn::of(transition.to)) {
            return;
        }
        if let Some(last) = state.last_sent
            && now.duration_since(last) < self.min_interval
        {
            state.summary_due = Some(last + self.min_interval);
            state.held.push(transition);
            return;
        }
        state.last_sent = Some(now);
        let notification = self.notification(&transition, NotificationKind::Transition, 1);
        self.send(notification);
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for state in self.services.values_mut() {
            if state.summary_due.is_some_and(|at| at <= now) {
                state.summary_due = None;
                let held = std::mem::take(&mut state.held);
                if let (Some(first), Some(last)) = (held.first(), held.last()) {
                    let mut summary = last.clone();
                    summary.from = first.from;
                    state.last_sent = Some(now);
                    due.push((
                        summary,
                        NotificationKind::Flapping,
                        u32::try_from(held.len()).unwrap_or(u32::MAX),
                    ));
                }
            }
            if state.next_reminder.is_some_and(|at| at <= now) {
                match (&state.latest, self.reminder_every) {
                    (Some(latest), Some(every)) if latest.to.is_open() => {
                        state.next_reminder = Some(now + every);
                        due.push((latest.clone(), NotificationKind::Reminder, 0));
                    }
                    _ => state.next_reminder = None,
                }
            }
        }
        for (transition, kind, changes) in due {
            let notification = self.notification(&transition, kind, changes);
            self.send(notification);
        }
    }

    fn notification(
        &mut self,
        transition: &Transition,
        kind: NotificationKind,
        changes: u32,
    ) -> Notification {
        let id = self.next_id;
        self.next_id += 1;
        let service = transition.service.to_string();
        Notification {
            id,
            kind,
            from: transition.from.as_str().to_string(),
            to: transition.to.as_str().to_string(),
            reason: transition.reason.to_string(),
            at: humantime::format_rfc3339_millis(transition.at_wall).to_string(),
            at_unix_ms: transition
                .at_wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| {
                    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
                }),
            consecutive_failures: transition.consecutive_failures,
            last_failure: transition.last_failure.clone(),
            next_attempt: transition
                .next_attempt
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            changes,
            dashboard_url: self.dashboard_url.clone(),
            api_url: self.api_url.as_ref().map(|base| {
                format!(
                    "{}/api/v1/circuit-breakers/{service}",
                    base.as_str().trim_end_matches('/')
                )
            }),
            service,
        }
    }

    /// Writes the notification to the outbox for each channel that takes it, then queues it.
    fn send(&self, notification: Notification) {
        let to = state_of(&notification.to);
        for (channel, queue) in &self.queues {
            if !takes(channel, &notification.service, to) {
                continue;
            }
            let name = channel.name();
            let path = match self.shared.outbox.put(name, &notification) {
                Ok(path) => Some(path),
                Err(failure) => {
                    // Not written down: still send it; it just would not survive a restart.
                    error!(
                        channel = name,
                        "cannot write the notification to the outbox: {failure}"
                    );
                    None
                }
            };
            enqueue(&self.shared, queue, name, path, notification.clone());
        }
    }
}

/// Whether `channel` takes a change of `service` into `to`.
fn takes(channel: &Channel, service: &str, to: NotifyOn) -> bool {
    let (notify_on, services) = match channel {
        Channel::Webhook(webhook) => (
            webhook.config.filter.notify_on.as_ref(),
            webhook.config.filter.services.as_ref(),
        ),
        Channel::Email(email) => (
            email.config.filter.notify_on.as_ref(),
            email.config.filter.services.as_ref(),
        ),
        Channel::Alertmanager(am) => (None, am.config.services.as_ref()),
    };
    notify_on.is_none_or(|list| list.contains(&to))
        && services.is_none_or(|list| list.iter().any(|s| s == service))
}

fn state_of(name: &str) -> NotifyOn {
    let state = match name {
        "OPEN" => State::Open,
        "FORCED_OPEN" => State::ForcedOpen,
        "HALF_OPEN" => State::HalfOpen,
        "DISABLED" => State::Disabled,
        _ => State::Closed,
    };
    NotifyOn::of(state)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
