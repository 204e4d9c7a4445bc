//! The PagerDuty channel (`[[alerts.pagerduty]]`): each page becomes an event of PagerDuty's
//! Events API v2 — `trigger` while the service is in trouble, `resolve` once it recovered —
//! with the outage's own `dedup_key`, so one outage is one incident (kept across restarts: the
//! key is made of the service and the outage's start, which the state directory keeps).

mod event;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::kind::{Boxed, BuildContext, Channel, ChannelKind};
use crate::alert::failure::{DeliveryError, judge_status};
use crate::alert::page::Page;
use crate::config::raw::RawList;
use crate::config::validate::alerts::ChannelTable;
use crate::config::{
    ChannelConfig, ChannelFilter, ChannelSettings, DEFAULT_CHANNEL_TIMEOUT, Secret, Url,
    format_duration, toml_string,
};

/// Where events go unless `url` says otherwise.
const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty's severities.
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// `[[alerts.pagerduty]]`.
pub(super) const KIND: ChannelKind = ChannelKind {
    key: "pagerduty",
    many: true,
    keys: crate::config::keys::fields_of::<RawPagerDuty>,
    validate,
    build,
};

/// `[[alerts.pagerduty]]` as written.
#[derive(Debug, Deserialize)]
struct RawPagerDuty {
    routing_key: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    notify_on: Option<RawList>,
    services: Option<RawList>,
}

/// One PagerDuty service integration's settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PagerDutySettings {
    /// The channel's name (the `channel` label).
    pub(crate) name: String,
    /// The integration's routing key (a secret: it lets anyone open incidents).
    pub(crate) routing_key: Secret,
    /// The Events API v2 endpoint.
    pub(crate) url: Url,
    /// The events' severity.
    pub(crate) severity: String,
    /// Time one attempt may take.
    pub(crate) timeout: Duration,
    /// Which pages it takes.
    pub(crate) filter: ChannelFilter,
}

impl ChannelSettings for PagerDutySettings {
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
            "[[alerts.pagerduty]]\nname = {}\nrouting_key = {}\nurl = {}\nseverity = {}\ntimeout = {}\n",
            toml_string(&self.name),
            toml_string("<redacted>"),
            toml_string(self.url.as_str()),
            toml_string(&self.severity),
            toml_string(&format_duration(self.timeout))
        )
    }
}

fn validate(
    table: &mut ChannelTable<'_, '_>,
    value: Spanned<DeValue<'_>>,
) -> Option<ChannelConfig> {
    let raw: RawPagerDuty = table.read(value)?;
    let name = table.name(raw.name.as_ref());
    let Some(routing_key) = &raw.routing_key else {
        let at = table.table();
        table.problem(
            at,
            "alerts.pagerduty needs `routing_key`: the integration key of an Events API v2 integration, e.g. \"${PAGERDUTY_ROUTING_KEY}\"",
        );
        return None;
    };
    let routing_key = table.needed_secret(
        "routing_key",
        routing_key,
        "PagerDuty takes events only with it",
    )?;
    let url = match &raw.url {
        Some(url) => table.url("url", url)?,
        None => Url::parse(EVENTS_URL).ok()?,
    };
    let severity = match &raw.severity {
        Some(severity) => table.one_of("severity", severity, SEVERITIES)?,
        None => "critical".to_string(),
    };
    let timeout = table.duration(
        "timeout",
        raw.timeout.as_ref(),
        DEFAULT_CHANNEL_TIMEOUT,
        false,
    );
    let filter = table.filter(raw.notify_on.as_ref(), raw.services.as_ref());
    Some(ChannelConfig::new(PagerDutySettings {
        name,
        routing_key,
        url,
        severity,
        timeout,
        filter,
    }))
}

fn build(config: &ChannelConfig, context: &BuildContext) -> Result<Arc<dyn Channel>, String> {
    let settings = config
        .settings_as::<PagerDutySettings>()
        .ok_or("not a PagerDuty channel's settings")?;
    Ok(Arc::new(PagerDutyChannel {
        settings: settings.clone(),
        client: context.transport.alerts().clone(),
        api_url: context.api_url.clone(),
        max_attempts: context.max_attempts,
    }))
}

#[derive(Debug)]
struct PagerDutyChannel {
    settings: PagerDutySettings,
    client: reqwest::Client,
    /// The API's base URL, for the events' `client_url`.
    api_url: Option<Url>,
    max_attempts: u32,
}

impl PagerDutyChannel {
    /// Sends the page's events: one per service (a grouped page holds several).
    async fn send(&self, page: &Page<'_>) -> Result<(), DeliveryError> {
        let pages: Vec<&Page<'_>> = if page.members.is_empty() {
            vec![page]
        } else {
            page.members.iter().collect()
        };
        for page in pages {
            let body = event::of(
                page,
                &self.settings.routing_key,
                &self.settings.severity,
                self.api_url.as_ref(),
            );
            self.post(body.to_string()).await?;
        }
        Ok(())
    }

    async fn post(&self, body: String) -> Result<(), DeliveryError> {
        let host = self
            .settings
            .url
            .host_str()
            .unwrap_or("pagerduty")
            .to_string();
        let response = self
            .client
            .request(Method::POST, self.settings.url.clone())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| {
                DeliveryError::retryable(format!("{host}: {}", error.without_url()))
            })?;
        let status = response.status();
        let retry_after = crate::alert::failure::retry_after(response.headers());
        judge_status(status, &host).map_err(|mut failure| {
            failure.retry_after = retry_after;
            failure
        })
    }
}

impl Channel for PagerDutyChannel {
    fn settings(&self) -> &dyn ChannelSettings {
        &self.settings
    }

    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    fn deliver<'a>(&'a self, page: &'a Page<'a>) -> Boxed<'a, Result<(), DeliveryError>> {
        Box::pin(self.send(page))
    }

    fn same_as(&self, other: &dyn Channel) -> bool {
        other
            .as_any()
            .downcast_ref::<PagerDutyChannel>()
            .is_some_and(|other| {
                self.settings == other.settings
                    && self.api_url == other.api_url
                    && self.max_attempts == other.max_attempts
            })
    }
}
