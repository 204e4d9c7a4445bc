//! The webhook channel: POSTs JSON in breakerd's, Slack's or Alertmanager's shape, optionally
//! signed with HMAC-SHA256 over the body so a receiver can verify the sender.

use hmac::{Hmac, Mac};
use reqwest::Method;
use sha2::Sha256;

use super::failure::{DeliveryError, judge_status};
use super::notification::Notification;
use crate::config::{Url, WebhookConfig, WebhookFormat};
use crate::probe::HttpClient;

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Breakerd-Signature";

#[derive(Debug)]
pub(crate) struct WebhookChannel {
    pub(crate) config: WebhookConfig,
    client: HttpClient,
}

impl WebhookChannel {
    pub(crate) fn new(config: WebhookConfig, client: HttpClient) -> Self {
        Self { config, client }
    }

    pub(crate) fn body(&self, notification: &Notification) -> Vec<u8> {
        let value = match self.config.format {
            WebhookFormat::Breakerd => serde_json::to_value(notification).unwrap_or_default(),
            WebhookFormat::Slack => notification.slack_json(),
            WebhookFormat::Alertmanager => notification.alertmanager_webhook_json(),
        };
        value.to_string().into_bytes()
    }

    pub(crate) async fn deliver(&self, notification: &Notification) -> Result<(), DeliveryError> {
        let url = Url::parse(self.config.url.expose())
            .map_err(|error| DeliveryError::permanent(format!("bad webhook URL: {error}")))?;
        let body = self.body(notification);
        let mut request = self
            .client
            .request(Method::POST, &url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("breakerd/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(secret) = &self.config.secret {
            request = request.header(SIGNATURE_HEADER, sign(secret.expose().as_bytes(), &body));
        }
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.expose());
        }
        let response = request.body(body).send().await.map_err(|error| {
            DeliveryError::retryable(format!("{}: {}", self.config.host, error.without_url()))
        })?;
        judge_status(response.status(), &self.config.host)
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
