//! The Alertmanager task: keeps one Alertmanager in step with the published outages, posting
//! the whole set when something changes and again every `resend_every`, with retries that
//! carry every change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use super::AlertmanagerChannel;
use crate::alert::channel::Channel;
use crate::alert::{OutageView, Shared};
use crate::history::DeliveryRecord;
use crate::metrics::{AlertOutcome, AttemptOutcome};
use crate::wall::rfc3339;

/// What Alertmanager was last told of one service: the outage's start, and its end once over.
type Told = (SystemTime, Option<SystemTime>);

/// Keeps one Alertmanager in step with `outages` until `stop` turns true. Steps, in a loop:
/// 1. work out the alerts to report and which changed since Alertmanager last heard;
/// 2. post them all when something changed or a re-send is due; count the attempt;
/// 3. wait for a change of the outages or the channel, the next re-send or a retry.
pub(super) async fn run(
    mut channel: watch::Receiver<Arc<dyn Channel>>,
    mut outages: watch::Receiver<Arc<OutageView>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let name = channel.borrow().name().to_string();
    let this = |channel: &Arc<dyn Channel>| {
        channel
            .as_any()
            .downcast_ref::<AlertmanagerChannel>()
            .cloned()
    };
    let mut told: BTreeMap<String, Told> = BTreeMap::new();
    // Right away at start: after a restart Alertmanager hears at once that alerts still fire.
    let mut due = Instant::now();
    let mut failures: u32 = 0;
    let mut jitter = crate::breaker::Jitter::new();
    loop {
        let Some(current) = this(&channel.borrow_and_update()) else {
            // Not an Alertmanager's settings: a bug in the stage; nothing to follow.
            error!(channel = %name, "the Alertmanager task was given another kind's settings");
            return;
        };
        let view = Arc::clone(&*outages.borrow_and_update());
        let now = crate::wall::now();
        let reported = current.reported(&view, now);
        let changed: Vec<(&str, Told)> = reported
            .iter()
            .map(|(service, outage)| (*service, (outage.started_at, outage.ended_at)))
            .filter(|(service, state)| told.get(*service) != Some(state))
            .collect();
        // A change goes out at once, unless Alertmanager is failing: then retries keep their
        // backoff, and carry every change.
        let is_due = Instant::now() >= due;
        if !reported.is_empty() && (is_due || (!changed.is_empty() && failures == 0)) {
            let alerts = reported
                .iter()
                .map(|(service, outage)| current.alert_json(service, outage, now))
                .collect();
            match current.post(alerts).await {
                Ok(()) => {
                    shared.metrics.alert_attempt(&name, AttemptOutcome::Ok);
                    for (service, state) in &changed {
                        record(
                            &shared,
                            &name,
                            service,
                            *state,
                            AlertOutcome::Sent,
                            failures + 1,
                            None,
                        );
                        told.insert((*service).to_string(), *state);
                    }
                    if failures > 0 {
                        info!(channel = %name, "Alertmanager takes alerts again");
                    }
                    failures = 0;
                    due = Instant::now() + current.settings.resend_every;
                }
                Err(failure) => {
                    shared.metrics.alert_attempt(&name, AttemptOutcome::Failed);
                    failures = failures.saturating_add(1);
                    warn!(channel = %name, attempt = failures, "posting alerts to Alertmanager failed: {}", failure.message);
                    if failures == current.max_attempts || !failure.retryable {
                        for (service, state) in &changed {
                            record(
                                &shared,
                                &name,
                                service,
                                *state,
                                AlertOutcome::Failed,
                                failures,
                                Some(&failure.message),
                            );
                        }
                    }
                    let retry = crate::alert::delivery::backoff(
                        failures.saturating_add(1),
                        jitter.next_fraction(),
                    );
                    due = Instant::now() + retry.min(current.settings.resend_every);
                }
            }
        } else if reported.is_empty() {
            due = Instant::now() + current.settings.resend_every;
        }
        told.retain(|service, _| reported.contains_key(service.as_str()));
        tokio::select! {
            _ = sleep_until(due) => {}
            changed = outages.changed() => if changed.is_err() { return },
            changed = channel.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// One alert's change told to Alertmanager (or given up): counted and kept in the history.
fn record(
    shared: &Shared,
    channel: &str,
    service: &str,
    (started, ended): Told,
    outcome: AlertOutcome,
    attempts: u32,
    error: Option<&str>,
) {
    shared.metrics.alert(channel, outcome);
    let now = crate::wall::now();
    if outcome == AlertOutcome::Sent {
        shared.metrics.alert_delivered(channel, now);
    }
    let subject = match ended {
        None => format!("Alertmanager: {service} firing since {}", rfc3339(started)),
        Some(ended) => format!("Alertmanager: {service} resolved at {}", rfc3339(ended)),
    };
    if outcome == AlertOutcome::Failed {
        error!(
            channel,
            service,
            attempts,
            "{subject}: not delivered ({})",
            error.unwrap_or("gave up")
        );
    } else {
        info!(channel, service, "{subject}");
    }
    shared.history.delivery(
        service,
        DeliveryRecord {
            notification: 0,
            subject,
            channel: channel.to_string(),
            outcome,
            attempts,
            error: error.map(str::to_string),
            at: rfc3339(now),
        },
    );
}
