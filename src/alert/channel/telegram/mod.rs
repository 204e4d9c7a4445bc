//! The Telegram channel (`[[alerts.telegram]]`): each page as a plain-text message sent by a
//! bot (`sendMessage`) to one chat. The bot token is part of the request's path, so no error
//! ever carries the URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use toml::Spanned;
use toml::de::DeValue;

use super::kind::{Boxed, BuildContext, Channel, ChannelKind};
use crate::alert::failure::{DeliveryError, retry_after};
use crate::alert::page::Page;
use crate::config::raw::RawList;
use crate::config::validate::alerts::ChannelTable;
use crate::config::{
    ChannelConfig, ChannelFilter, ChannelSettings, DEFAULT_CHANNEL_TIMEOUT, Secret, Url,
    format_duration, toml_string,
};

/// The Bot API unless `api_url` says otherwise (a local Bot API server, say).
const API_URL: &str = "https://api.telegram.org";
/// The longest message text Telegram takes, in characters.
const MAX_TEXT_CHARS: usize = 4096;
/// The most of an error answer read for its description.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// `[[alerts.telegram]]`.
pub(super) const KIND: ChannelKind = ChannelKind {
    key: "telegram",
    many: true,
    keys: crate::config::keys::fields_of::<RawTelegram>,
    validate,
    build,
};

/// `[[alerts.telegram]]` as written.
#[derive(Debug, Deserialize)]
struct RawTelegram {
    bot_token: Option<Spanned<String>>,
    chat_id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    notify_on: Option<RawList>,
    services: Option<RawList>,
}

/// One bot and chat.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TelegramSettings {
    /// The channel's name (the `channel` label).
    pub(crate) name: String,
    /// The bot's token (a secret: it is the bot).
    pub(crate) bot_token: Secret,
    /// The chat: its id (`-1001234567890`) or a channel's `@username`.
    pub(crate) chat_id: String,
    /// The Bot API's base URL.
    pub(crate) api_url: Url,
    /// Time one attempt may take.
    pub(crate) timeout: Duration,
    /// Which pages it takes.
    pub(crate) filter: ChannelFilter,
}

impl ChannelSettings for TelegramSettings {
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
            "[[alerts.telegram]]\nname = {}\nbot_token = {}\nchat_id = {}\napi_url = {}\ntimeout = {}\n",
            toml_string(&self.name),
            toml_string("<redacted>"),
            toml_string(&self.chat_id),
            toml_string(self.api_url.as_str()),
            toml_string(&format_duration(self.timeout))
        )
    }
}

fn validate(
    table: &mut ChannelTable<'_, '_>,
    value: Spanned<DeValue<'_>>,
) -> Option<ChannelConfig> {
    let raw: RawTelegram = table.read(value)?;
    let name = table.name(raw.name.as_ref());
    let at = table.table();
    let (Some(token), Some(chat)) = (&raw.bot_token, &raw.chat_id) else {
        table.problem(
            at,
            "alerts.telegram needs `bot_token` (from @BotFather, e.g. \"${TELEGRAM_BOT_TOKEN}\") and `chat_id` (the chat's id, e.g. \"-1001234567890\", or a channel's \"@name\")",
        );
        return None;
    };
    let bot_token = table.needed_secret("bot_token", token, "the bot sends with it")?;
    let chat_id = table.expand("chat_id", chat)?;
    if chat_id.is_empty() {
        table.problem(chat.span(), "alerts.telegram.chat_id is empty");
        return None;
    }
    let api_url = match &raw.api_url {
        Some(url) => table.url("api_url", url)?,
        None => Url::parse(API_URL).ok()?,
    };
    let timeout = table.duration(
        "timeout",
        raw.timeout.as_ref(),
        DEFAULT_CHANNEL_TIMEOUT,
        false,
    );
    let filter = table.filter(raw.notify_on.as_ref(), raw.services.as_ref());
    Some(ChannelConfig::new(TelegramSettings {
        name,
        bot_token,
        chat_id,
        api_url,
        timeout,
        filter,
    }))
}

fn build(config: &ChannelConfig, context: &BuildContext) -> Result<Arc<dyn Channel>, String> {
    let settings = config
        .settings_as::<TelegramSettings>()
        .ok_or("not a Telegram channel's settings")?;
    Ok(Arc::new(TelegramChannel {
        settings: settings.clone(),
        client: context.transport.alerts().clone(),
        max_attempts: context.max_attempts,
    }))
}

#[derive(Debug)]
struct TelegramChannel {
    settings: TelegramSettings,
    client: reqwest::Client,
    max_attempts: u32,
}

/// The message's text: the page as plain text, cut to what Telegram takes.
fn text(page: &Page<'_>) -> String {
    let full = page.text();
    if full.chars().count() <= MAX_TEXT_CHARS {
        return full;
    }
    let mut cut: String = full.chars().take(MAX_TEXT_CHARS - 1).collect();
    cut.push('…');
    cut
}

impl TelegramChannel {
    async fn send(&self, page: &Page<'_>) -> Result<(), DeliveryError> {
        let settings = &self.settings;
        let host = settings
            .api_url
            .host_str()
            .unwrap_or("telegram")
            .to_string();
        let url = Url::parse(&format!(
            "{}/bot{}/sendMessage",
            settings.api_url.as_str().trim_end_matches('/'),
            settings.bot_token.expose()
        ))
        .map_err(|_| DeliveryError::permanent("the bot token does not fit in a URL"))?;
        let body = json!({
            "chat_id": settings.chat_id,
            "text": text(page),
            "link_preview_options": { "is_disabled": true },
        });
        let response = self
            .client
            .request(Method::POST, url.clone())
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            // Never the URL: it holds the token.
            .map_err(|error| {
                DeliveryError::retryable(format!("{host}: {}", error.without_url()))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let waited = retry_after(response.headers());
        let answer = crate::alert::failure::read_capped(response, MAX_ANSWER_BYTES).await;
        let parsed: Value = serde_json::from_slice(&answer).unwrap_or_default();
        let description = parsed["description"]
            .as_str()
            .map(|text| text.replace(settings.bot_token.expose(), "<redacted>"))
            .unwrap_or_default();
        let asked = parsed["parameters"]["retry_after"]
            .as_u64()
            .map(Duration::from_secs)
            .or(waited);
        let message = format!("{host} answered HTTP {}: {description}", status.as_u16());
        let mut failure = if status.is_server_error() || status.as_u16() == 429 {
            DeliveryError::retryable(message)
        } else {
            // 400 (chat not found, message too long), 401 (bad token), 403 (blocked, not a
            // member): the same request would fail again.
            DeliveryError::permanent(message)
        };
        failure.retry_after = asked;
        Err(failure)
    }
}

impl Channel for TelegramChannel {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notification::{Notification, sample};

    #[test]
    fn a_message_is_cut_to_what_telegram_takes() {
        let notification = sample();
        let short = text(&Page::of(&notification));
        assert!(short.starts_with("M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push\n"));
        let long = Notification {
            reason: "r".repeat(10_000),
            ..sample()
        };
        let cut = text(&Page::of(&long));
        assert_eq!(cut.chars().count(), MAX_TEXT_CHARS);
        assert!(cut.ends_with('…'));
    }
}
