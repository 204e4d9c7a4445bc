//! The webhook channel (`[[alerts.webhook]]`): POSTs each page as JSON in breakerd's, Slack's
//! or Alertmanager's shape, optionally signed with HMAC-SHA256 over the body so a receiver can
//! verify the sender.

mod format;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::Deserialize;
use sha2::Sha256;
use toml::Spanned;
use toml::de::DeValue;

use super::kind::{Boxed, BuildContext, Channel, ChannelKind};
use crate::alert::failure::{DeliveryError, judge_status};
use crate::alert::page::Page;
use crate::config::raw::RawList;
use crate::config::validate::alerts::ChannelTable;
use crate::config::{
    ChannelConfig, ChannelFilter, ChannelSettings, DEFAULT_CHANNEL_TIMEOUT, Secret, Url,
    format_duration, render_headers, toml_string,
};

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Breakerd-Signature";

/// The body shapes, as `format` names them.
const FORMATS: &[&str] = &["breakerd", "slack", "alertmanager"];

/// `[[alerts.webhook]]`.
pub(super) const KIND: ChannelKind = ChannelKind {
    key: "webhook",
    many: true,
    keys: crate::config::keys::fields_of::<RawWebhook>,
    validate,
    build,
};

/// `[[alerts.webhook]]` as written.
#[derive(Debug, Deserialize)]
struct RawWebhook {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    timeout: Option<Spanned<String>>,
    notify_on: Option<RawList>,
    services: Option<RawList>,
}

/// The body a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WebhookFormat {
    /// breakerd's own JSON: the notification with the page's title, summary and advice.
    Breakerd,
    /// A Slack-compatible incoming-webhook message.
    Slack,
    /// Alertmanager's webhook format (version "4").
    Alertmanager,
}

/// One webhook receiver's settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WebhookSettings {
    /// The channel's name (the `channel` label).
    pub(crate) name: String,
    /// Where to POST; a secret, as incoming-webhook URLs usually are.
    pub(crate) url: Secret,
    /// The URL's host, for logs.
    pub(crate) host: String,
    /// The body's shape.
    pub(crate) format: WebhookFormat,
    /// HMAC-SHA256 key of the `X-Breakerd-Signature` header.
    pub(crate) secret: Option<Secret>,
    /// Extra headers.
    pub(crate) headers: Vec<(String, Secret)>,
    /// Time one attempt may take.
    pub(crate) timeout: Duration,
    /// Which pages it takes.
    pub(crate) filter: ChannelFilter,
}

impl ChannelSettings for WebhookSettings {
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
        let format = match self.format {
            WebhookFormat::Breakerd => "breakerd",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Alertmanager => "alertmanager",
        };
        let mut out = format!(
            "[[alerts.webhook]]\nname = {}\nurl = {}\n# url host: {}\ntimeout = {}\nformat = {}\n",
            toml_string(&self.name),
            toml_string("<redacted>"),
            self.host,
            toml_string(&format_duration(self.timeout)),
            toml_string(format)
        );
        render_headers(&mut out, &self.headers);
        if self.secret.is_some() {
            out.push_str(&format!("secret = {}\n", toml_string("<redacted>")));
        }
        out
    }
}

fn validate(
    table: &mut ChannelTable<'_, '_>,
    value: Spanned<DeValue<'_>>,
) -> Option<ChannelConfig> {
    let hook: RawWebhook = table.read(value)?;
    let name = table.name(hook.name.as_ref());
    let url = table.url("url", &hook.url)?;
    let format = match &hook.format {
        None => WebhookFormat::Breakerd,
        Some(format) => match table.one_of("format", format, FORMATS)?.as_str() {
            "slack" => WebhookFormat::Slack,
            "alertmanager" => WebhookFormat::Alertmanager,
            _ => WebhookFormat::Breakerd,
        },
    };
    let secret = hook
        .secret
        .as_ref()
        .and_then(|secret| table.expand("secret", secret))
        .map(Secret::new);
    let mut headers = Vec::new();
    if let Some(raw_headers) = &hook.headers {
        for (header, value) in raw_headers.get_ref() {
            if let Some(value) = table.expand(&format!("headers.{header}"), value) {
                headers.push((header.clone(), Secret::new(value)));
            }
        }
    }
    let timeout = table.duration(
        "timeout",
        hook.timeout.as_ref(),
        DEFAULT_CHANNEL_TIMEOUT,
        false,
    );
    let filter = table.filter(hook.notify_on.as_ref(), hook.services.as_ref());
    Some(ChannelConfig::new(WebhookSettings {
        name,
        host: url.host_str().unwrap_or("webhook").to_string(),
        url: Secret::new(url.to_string()),
        format,
        secret,
        headers,
        timeout,
        filter,
    }))
}

fn build(config: &ChannelConfig, context: &BuildContext) -> Result<Arc<dyn Channel>, String> {
    let settings = config
        .settings_as::<WebhookSettings>()
        .ok_or("not a webhook's settings")?;
    Ok(Arc::new(WebhookChannel {
        settings: settings.clone(),
        client: context.transport.alerts().clone(),
        max_attempts: context.max_attempts,
    }))
}

#[derive(Debug)]
struct WebhookChannel {
    settings: WebhookSettings,
    client: reqwest::Client,
    max_attempts: u32,
}

impl WebhookChannel {
    fn body(&self, page: &Page<'_>) -> Vec<u8> {
        let value = match self.settings.format {
            WebhookFormat::Breakerd => format::breakerd(page),
            WebhookFormat::Slack => format::slack(page),
            WebhookFormat::Alertmanager => format::alertmanager(page),
        };
        value.to_string().into_bytes()
    }

    async fn send(&self, page: &Page<'_>) -> Result<(), DeliveryError> {
        let settings = &self.settings;
        let url = Url::parse(settings.url.expose())
            .map_err(|error| DeliveryError::permanent(format!("bad webhook URL: {error}")))?;
        let body = self.body(page);
        let mut request = self
            .client
            .request(Method::POST, url.clone())
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("breakerd/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(secret) = &settings.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret.expose().as_bytes(), &body));
        }
        for (name, value) in &settings.headers {
            request = request.header(name.as_str(), value.expose());
        }
        let response = request.body(body).send().await.map_err(|error| {
            DeliveryError::retryable(format!("{}: {}", settings.host, error.without_url()))
        })?;
        judge_status(response.status(), &settings.host)
    }
}

impl Channel for WebhookChannel {
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
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_rfc_4231_test_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
