//! The Alertmanager channel (`[[alerts.alertmanager]]`) keeps Alertmanager in step with
//! breakerd's outages: one alert per service in an outage, posted to `/api/v2/alerts` as soon
//! as an outage starts or ends and re-posted every `resend_every` — a firing alert with
//! `endsAt` ahead, so it stays firing while breakerd runs; an ended one with `endsAt` at its
//! end, for `resolve_for`, so every Alertmanager hears of it. It reads the outages the alert
//! stage publishes instead of keeping a copy, so a reload or a restart loses nothing, and it
//! never resolves an alert on shutdown (the `BreakerdDown` rule covers a breakerd that is
//! gone). The labels are the same on every replica, so Alertmanager deduplicates replicas.

mod follow;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;
use toml::de::DeValue;

use super::kind::{Boxed, BuildContext, Channel, ChannelKind, Follow};
use crate::alert::OutageView;
use crate::alert::failure::{DeliveryError, judge_status};
use crate::alert::notification::{Notification, NotificationKind, OutageInfo};
use crate::alert::outage::Outage;
use crate::alert::page::Page;
use crate::breaker::State;
use crate::config::raw::RawList;
use crate::config::validate::alerts::ChannelTable;
use crate::config::{
    ChannelConfig, ChannelFilter, ChannelSettings, DEFAULT_CHANNEL_TIMEOUT, DEFAULT_RESEND_EVERY,
    DEFAULT_RESOLVE_FOR, Url, format_duration, toml_string,
};
use crate::wall::rfc3339;

/// `[[alerts.alertmanager]]`.
pub(super) const KIND: ChannelKind = ChannelKind {
    key: "alertmanager",
    many: true,
    keys: crate::config::keys::fields_of::<RawAlertmanager>,
    validate,
    build,
};

/// `[[alerts.alertmanager]]` as written.
#[derive(Debug, Deserialize)]
struct RawAlertmanager {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    resend_every: Option<Spanned<String>>,
    resolve_for: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    runbook_url: Option<Spanned<String>>,
    services: Option<RawList>,
}

/// One Alertmanager's settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AlertmanagerSettings {
    /// The channel's name (the `channel` label).
    pub(crate) name: String,
    /// Its base URL.
    pub(crate) url: Url,
    /// Time one attempt may take.
    pub(crate) timeout: Duration,
    /// How often firing alerts are re-sent.
    pub(crate) resend_every: Duration,
    /// How long a resolved alert keeps being re-sent.
    pub(crate) resolve_for: Duration,
    /// The `severity` label.
    pub(crate) severity: String,
    /// The `runbook_url` annotation (default: the page's runbook link).
    pub(crate) runbook_url: Option<String>,
    /// Only these services (default: all); every change is told.
    pub(crate) filter: ChannelFilter,
}

impl ChannelSettings for AlertmanagerSettings {
    fn kind(&self) -> &'static str {
        KIND.key
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> &ChannelFilter {
        &self.filter
    }

    fn render(&self) -> String {
        format!(
            "[[alerts.alertmanager]]\nname = {}\nurl = {}\nresend_every = {}\nresolve_for = {}\nseverity = {}\n",
            toml_string(&self.name),
            toml_string(self.url.as_str()),
            toml_string(&format_duration(self.resend_every)),
            toml_string(&format_duration(self.resolve_for)),
            toml_string(&self.severity)
        )
    }
}

fn validate(
    table: &mut ChannelTable<'_, '_>,
    value: Spanned<DeValue<'_>>,
) -> Option<ChannelConfig> {
    let am: RawAlertmanager = table.read(value)?;
    let name = table.name(am.name.as_ref());
    let url = table.url("url", &am.url)?;
    let timeout = table.duration(
        "timeout",
        am.timeout.as_ref(),
        DEFAULT_CHANNEL_TIMEOUT,
        false,
    );
    let resend_every = table.duration(
        "resend_every",
        am.resend_every.as_ref(),
        DEFAULT_RESEND_EVERY,
        false,
    );
    let resolve_for = table.duration(
        "resolve_for",
        am.resolve_for.as_ref(),
        DEFAULT_RESOLVE_FOR,
        true,
    );
    let filter = table.filter(None, am.services.as_ref());
    Some(ChannelConfig::new(AlertmanagerSettings {
        name,
        url,
        timeout,
        resend_every,
        resolve_for,
        severity: am
            .severity
            .as_ref()
            .map_or_else(|| "critical".to_string(), |s| s.get_ref().clone()),
        runbook_url: am.runbook_url.as_ref().map(|url| url.get_ref().clone()),
        filter,
    }))
}

fn build(config: &ChannelConfig, context: &BuildContext) -> Result<Arc<dyn Channel>, String> {
    let settings = config
        .settings_as::<AlertmanagerSettings>()
        .ok_or("not an Alertmanager's settings")?;
    Ok(Arc::new(AlertmanagerChannel {
        settings: settings.clone(),
        client: context.transport.alerts().clone(),
        api_url: context.api_url.clone(),
        runbook_url: context.runbook_url.clone(),
        providers: Arc::clone(&context.providers),
        max_attempts: context.max_attempts,
    }))
}

/// One configured Alertmanager.
#[derive(Clone, Debug)]
struct AlertmanagerChannel {
    settings: AlertmanagerSettings,
    client: reqwest::Client,
    /// The API's base URL, for `generatorURL`.
    api_url: Option<Url>,
    /// The runbook pages link to.
    runbook_url: Option<String>,
    /// Each service's provider name, for the pages' titles.
    providers: Arc<BTreeMap<String, String>>,
    /// Attempts at one change before it is counted as failed (it keeps being re-sent).
    max_attempts: u32,
}

impl AlertmanagerChannel {
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
                self.settings
                    .filter
                    .services
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|s| s == *service))
            })
            // An outage whose page is held (maintenance, a silence, its upstream's outage)
            // reaches Alertmanager when the page goes out, as on every other channel.
            .filter(|(_, outage)| !outage.held)
            .filter(|(_, outage)| {
                outage.ended_at.is_none_or(|ended| {
                    now.duration_since(ended).unwrap_or_default() <= self.settings.resolve_for
                })
            })
            .map(|(service, outage)| (service.as_str(), &**outage))
            .collect()
    }

    /// The outage as a notification, for its page.
    fn notification(&self, service: &str, outage: &Outage, now: SystemTime) -> Notification {
        let at = outage.ended_at.unwrap_or(now);
        Notification {
            id: 0,
            kind: NotificationKind::Transition,
            service: service.to_string(),
            from: if outage.ended_at.is_some() {
                State::HalfOpen
            } else {
                State::Closed
            },
            to: if outage.ended_at.is_some() {
                State::Closed
            } else {
                outage.state
            },
            reason: outage.opened_by.to_string(),
            at,
            at_unix_ms: crate::wall::unix_millis(at),
            consecutive_failures: 0,
            last_failure: None,
            cause: outage.cause.clone(),
            outage: Some(OutageInfo {
                started_at: outage.started_at,
                ended_at: outage.ended_at,
                failed_trials: outage.failed_trials,
            }),
            next_attempt: None,
            changes: 1,
            dashboard_url: None,
            api_url: None,
            provider: self.providers.get(service).cloned(),
            runbook_url: self.runbook_url.clone(),
            dependants: Vec::new(),
            group: Vec::new(),
        }
    }

    fn alert_json(&self, service: &str, outage: &Outage, now: SystemTime) -> Value {
        let ends_at = outage
            .ended_at
            .unwrap_or(now + self.settings.resend_every * 3);
        let notification = self.notification(service, outage, now);
        let page = Page::of(&notification);
        let mut annotations = json!({
            "summary": page.title,
            "description": format!("{} Opened by {}.", page.summary, outage.opened_by),
        });
        if let Some(advice) = page.what_to_do {
            annotations["what_to_do"] = json!(advice);
        }
        // The configured runbook, else the page's (this daemon's own, where alerts.api_url
        // says how people reach it).
        if let Some(url) = self
            .settings
            .runbook_url
            .clone()
            .or(page.runbook_url.clone())
        {
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
            "labels": alert_labels(service, &self.settings.severity),
            "annotations": annotations,
            "startsAt": rfc3339(outage.started_at),
            "endsAt": rfc3339(ends_at),
        });
        if let Some(base) = &self.api_url {
            alert["generatorURL"] = json!(format!(
                "{}/api/v1/circuit-breakers/{}",
                base.as_str().trim_end_matches('/'),
                crate::unit::service_of(service)
            ));
        }
        alert
    }

    async fn post(&self, alerts: Vec<Value>) -> Result<(), DeliveryError> {
        let base = self.settings.url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/api/v2/alerts"))
            .map_err(|error| DeliveryError::permanent(format!("bad Alertmanager URL: {error}")))?;
        let host = url.host_str().unwrap_or("alertmanager").to_string();
        let request = self
            .client
            .request(Method::POST, url.clone())
            .header("Content-Type", "application/json")
            .body(Value::Array(alerts).to_string())
            .send();
        let response = match tokio::time::timeout(self.settings.timeout, request).await {
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
                    self.settings.timeout.as_millis()
                )));
            }
        };
        judge_status(response.status(), &host)
    }
}

impl Channel for AlertmanagerChannel {
    fn settings(&self) -> &dyn ChannelSettings {
        &self.settings
    }

    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    fn deliver<'a>(&'a self, _page: &'a Page<'a>) -> Boxed<'a, Result<(), DeliveryError>> {
        // Never queued to: it follows the outages (see `follow`).
        Box::pin(async {
            Err(DeliveryError::permanent(
                "Alertmanager takes outages, not pages",
            ))
        })
    }

    fn follow(&self) -> Option<Follow> {
        Some(|channel, outages, shared, stop| Box::pin(follow::run(channel, outages, shared, stop)))
    }

    fn same_as(&self, other: &dyn Channel) -> bool {
        other
            .as_any()
            .downcast_ref::<AlertmanagerChannel>()
            .is_some_and(|other| {
                self.settings == other.settings
                    && self.api_url == other.api_url
                    && self.runbook_url == other.runbook_url
                    && self.providers == other.providers
                    && self.max_attempts == other.max_attempts
            })
    }
}

/// The labels every replica gives a service's alert (no host name: replicas agree, so
/// Alertmanager deduplicates them).
/// An operation's breaker (`mpesa/b2c`) is labelled by its service and its operation, so
/// routes by service take it.
pub(crate) fn alert_labels(service: &str, severity: &str) -> Value {
    let mut labels = json!({
        "alertname": "CircuitBreakerOpen",
        "service": crate::unit::service_of(service),
        "severity": severity,
    });
    if let Some(operation) = crate::unit::operation_of(service) {
        labels["operation"] = json!(operation);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::alert_labels;

    #[test]
    fn an_operations_alert_is_labelled_by_its_service_and_operation() {
        assert_eq!(
            alert_labels("mpesa", "critical"),
            serde_json::json!({"alertname": "CircuitBreakerOpen", "service": "mpesa", "severity": "critical"})
        );
        assert_eq!(
            alert_labels("mpesa/b2c", "critical"),
            serde_json::json!({
                "alertname": "CircuitBreakerOpen",
                "service": "mpesa",
                "operation": "b2c",
                "severity": "critical",
            })
        );
    }
}
