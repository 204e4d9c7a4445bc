//! The Alertmanager channel keeps Alertmanager in step with breakerd's outages: one alert per
//! service in an outage, posted to `/api/v2/alerts` as soon as an outage starts or ends and
//! re-posted every `resend_every` — a firing alert with `endsAt` ahead, so it stays firing
//! while breakerd runs; an ended one with `endsAt` at its end, for `resolve_for`, so every
//! Alertmanager hears of it. It reads the outages the alert stage publishes instead of keeping
//! a copy, so a reload or a restart loses nothing, and it never resolves an alert on shutdown
//! (the `BreakerdDown` rule covers a breakerd that is gone). The labels are the same on every
//! replica, so Alertmanager deduplicates replicas into one notification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use super::failure::{DeliveryError, judge_status};
use super::notification::alert_labels;
use super::outage::Outage;
use super::{OutageView, Shared};
use crate::config::{AlertmanagerConfig, Url};
use crate::history::DeliveryRecord;
use crate::metrics::{AlertOutcome, AttemptOutcome};
use crate::probe::HttpClient;
use crate::wall::{rfc3339, span};

/// One configured Alertmanager.
#[derive(Debug)]
pub(crate) struct AlertmanagerChannel {
    pub(crate) config: AlertmanagerConfig,
    client: HttpClient,
    /// The API's base URL, for `generatorURL`.
    api_url: Option<Url>,
    /// Attempts at one change before it is counted as failed (it keeps being re-sent).
    max_attempts: u32,
}

/// What Alertmanager was last told of one service: the outage's start, and its end once over.
type Told = (SystemTime, Option<SystemTime>);

impl AlertmanagerChannel {
    pub(crate) fn new(
        config: AlertmanagerConfig,
        client: HttpClient,
        api_url: Option<Url>,
        max_attempts: u32,
    ) -> Self {
        Self {
            config,
            client,
            api_url,
            max_attempts,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether `other` posts the same way.
    pub(crate) fn same_as(&self, other: &AlertmanagerChannel) -> bool {
        self.config == other.config
            && self.api_url == other.api_url
            && self.max_attempts == other.max_attempts
    }

    /// The outages this channel reports at `now`: every ongoing one that has been paged, and
    /// those that ended within `resolve_for`.
    fn reported<'a>(
        &self,
        outages: &'a OutageView,
        now: SystemTime,
    ) -> BTreeMap<&'a str, &'a Outage> {
        outages
            .iter()
            .filter(|(service, _)| {
                self.config
                    .services
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|s| s == *service))
            })
            // An outage whose page is held (maintenance, a silence, its upstream's outage)
            // reaches Alertmanager when the page goes out, as on every other channel.
            .filter(|(_, outage)| !outage.held)
            .filter(|(_, outage)| {
                outage.ended_at.is_none_or(|ended| {
                    now.duration_since(ended).unwrap_or_default() <= self.config.resolve_for
                })
            })
            .map(|(service, outage)| (service.as_str(), &**outage))
            .collect()
    }

    fn alert_json(&self, service: &str, outage: &Outage, now: SystemTime) -> Value {
        let ends_at = outage
            .ended_at
            .unwrap_or(now + self.config.resend_every * 3);
        let mut description = format!(
            "{service} has been failing since {} ({})",
            rfc3339(outage.started_at),
            span(
                outage
                    .ended_at
                    .unwrap_or(now)
                    .duration_since(outage.started_at)
                    .unwrap_or_default()
            )
        );
        if let Some(cause) = &outage.cause {
            description.push_str(&format!(": {cause}"));
        }
        description.push_str(&format!(". Opened by {}", outage.opened_by));
        match outage.failed_trials {
            0 => description.push('.'),
            1 => description.push_str("; 1 trial call failed since."),
            n => description.push_str(&format!("; {n} trial calls failed since.")),
        }
        let mut annotations = json!({
            "summary": format!("Circuit breaker {service} is {}", outage.state),
            "description": description,
        });
        // The configured runbook, else the one this daemon serves, where alerts.api_url says
        // how people reach it.
        let runbook = self.config.runbook_url.clone().or_else(|| {
            self.api_url.as_ref().map(|base| {
                format!(
                    "{}/runbook#breaker-open",
                    base.as_str().trim_end_matches('/')
                )
            })
        });
        if let Some(url) = runbook {
            annotations["runbook_url"] = json!(url);
        }
        // The operation and what the provider itself said, for routing and for the reader.
        if let Some(cause) = &outage.cause {
            for (key, value) in [
                ("operation", &cause.said.operation),
                ("provider_code", &cause.said.code),
                ("provider_message", &cause.said.message),
            ] {
                if let Some(value) = value {
                    annotations[key] = json!(value);
                }
            }
        }
        let mut alert = json!({
            "labels": alert_labels(service, &self.config.severity),
            "annotations": annotations,
            "startsAt": rfc3339(outage.started_at),
            "endsAt": rfc3339(ends_at),
        });
        if let Some(base) = &self.api_url {
            alert["generatorURL"] = json!(format!(
                "{}/api/v1/circuit-breakers/{service}",
                base.as_str().trim_end_matches('/')
            ));
        }
        alert
    }

    async fn post(&self, alerts: Vec<Value>) -> Result<(), DeliveryError> {
        let base = self.config.url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/api/v2/alerts"))
            .map_err(|error| DeliveryError::permanent(format!("bad Alertmanager URL: {error}")))?;
        let host = url.host_str().unwrap_or("alertmanager").to_string();
        let request = self
            .client
            .request(Method::POST, &url)
            .header("Content-Type", "application/json")
            .body(Value::Array(alerts).to_string())
            .send();
        let response = match tokio::time::timeout(self.config.timeout, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return Err(DeliveryError::retryable(format!(
                    "{host}: {}",
                    error.without_url()
                )));
            }
            Err(_) => {
                return Err(DeliveryError::retryable(format!(
                    "{host}: no answer within {} ms",
                    self.config.timeout.as_millis()
                )));
            }
        };
        judge_status(response.status(), &host)
    }
}

/// Keeps one Alertmanager in step with `outages` until `stop` turns true. Steps, in a loop:
/// 1. work out the alerts to report and which changed since Alertmanager last heard;
/// 2. post them all when something changed or a re-send is due; count the attempt;
/// 3. wait for a change of the outages or the channel, the next re-send or a retry.
pub(crate) async fn run(
    mut channel: watch::Receiver<Arc<AlertmanagerChannel>>,
    mut outages: watch::Receiver<Arc<OutageView>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let name = channel.borrow().name().to_string();
    let mut told: BTreeMap<String, Told> = BTreeMap::new();
    // Right away at start: after a restart Alertmanager hears at once that alerts still fire.
    let mut due = Instant::now();
    let mut failures: u32 = 0;
    let mut jitter = crate::breaker::Jitter::new();
    loop {
        let current = Arc::clone(&*channel.borrow_and_update());
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
                    due = Instant::now() + current.config.resend_every;
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
                    let retry = super::delivery::backoff(
                        failures.saturating_add(1),
                        jitter.next_fraction(),
                    );
                    due = Instant::now() + retry.min(current.config.resend_every);
                }
            }
        } else if reported.is_empty() {
            due = Instant::now() + current.config.resend_every;
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
