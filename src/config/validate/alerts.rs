//! `[alerts]` and its channels: webhooks, email, Alertmanager.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::Validator;
use crate::config::raw::{RawAlerts, RawList};
use crate::config::{
    AlertmanagerConfig, AlertsConfig, ChannelFilter, Credential, DEFAULT_CHANNEL_TIMEOUT,
    DEFAULT_RESEND_EVERY, DEFAULT_RESOLVE_FOR, EmailConfig, NotifyOn, Secret, ServiceConfig,
    SmtpCheck, SmtpServer, WebhookConfig, WebhookFormat,
};

const WEBHOOK_FORMATS: &[&str] = &["breakerd", "slack", "alertmanager"];

impl Validator<'_> {
    /// The email channel's `username` or `password`: both or neither, and set. A channel
    /// that cannot log in would only fail at 3 a.m., so an unset one is a problem now.
    fn channel_login(
        &mut self,
        table: std::ops::Range<usize>,
        key: &'static str,
        raw: Option<&Spanned<String>>,
    ) -> Credential {
        let missing = Credential::Missing {
            key,
            variable: None,
        };
        let Some(raw) = raw else {
            self.problems.at(
                table,
                format!(
                    "alerts.email needs `{key}` too: give both username and password, or neither"
                ),
            );
            return missing;
        };
        self.needed_secret(
            &format!("alerts.email.{key}"),
            raw,
            "the email channel logs in with it",
        )
        .map_or(missing, Credential::Set)
    }

    pub(super) fn alerts(
        &mut self,
        raw: Option<Spanned<RawAlerts>>,
        services: &[ServiceConfig],
    ) -> AlertsConfig {
        // Where a state_dir the daemon cannot use is reported: its key, else `[alerts]`, else
        // the top of the file (the default is in use).
        let state_dir_at = raw.as_ref().map_or(0..0, |table| {
            table
                .get_ref()
                .state_dir
                .as_ref()
                .map_or_else(|| table.span(), Spanned::span)
        });
        let config = match raw {
            Some(raw) => self.alerts_table(raw.into_inner(), services),
            None => AlertsConfig::default(),
        };
        if let Err(why) = self.environment.state_dir(&config.state_dir) {
            self.problems.at(
                state_dir_at,
                format!(
                    "alerts.state_dir {}: {why}; breakerd keeps breakers, outages and unsent pages there (set it to a directory breakerd can write)",
                    config.state_dir.display()
                ),
            );
        }
        config
    }

    fn alerts_table(&mut self, raw: RawAlerts, services: &[ServiceConfig]) -> AlertsConfig {
        let defaults = AlertsConfig::default();
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        let mut used_names: Vec<String> = Vec::new();
        let mut webhooks = Vec::new();
        for (index, hook) in raw.webhook.iter().enumerate() {
            let hook = hook.get_ref();
            let name = self.channel_name(hook.name.as_ref(), "webhook", index, &mut used_names);
            let Some(url) = self.url("alerts.webhook.url", &hook.url) else {
                continue;
            };
            let format = match &hook.format {
                None => WebhookFormat::Breakerd,
                Some(format) => match self
                    .one_of("webhook format", format, WEBHOOK_FORMATS)
                    .as_deref()
                {
                    Some("slack") => WebhookFormat::Slack,
                    Some("alertmanager") => WebhookFormat::Alertmanager,
                    Some(_) => WebhookFormat::Breakerd,
                    None => continue,
                },
            };
            let secret = hook
                .secret
                .as_ref()
                .and_then(|secret| self.expand("alerts.webhook.secret", secret))
                .map(Secret::new);
            let mut headers = Vec::new();
            if let Some(raw_headers) = &hook.headers {
                for (header, value) in raw_headers.get_ref() {
                    if let Some(value) =
                        self.expand(&format!("alerts.webhook.headers.{header}"), value)
                    {
                        headers.push((header.clone(), Secret::new(value)));
                    }
                }
            }
            webhooks.push(WebhookConfig {
                name,
                host: url.host_str().unwrap_or("webhook").to_string(),
                url: Secret::new(url.to_string()),
                format,
                secret,
                headers,
                timeout: self.duration(
                    "alerts.webhook.timeout",
                    hook.timeout.as_ref(),
                    DEFAULT_CHANNEL_TIMEOUT,
                    false,
                ),
                filter: ChannelFilter {
                    notify_on: self.notify_list(hook.notify_on.as_ref()),
                    services: self.service_list(hook.services.as_ref(), &names),
                },
            });
        }
        let mut alertmanagers = Vec::new();
        for (index, am) in raw.alertmanager.iter().enumerate() {
            let am = am.get_ref();
            let name = self.channel_name(am.name.as_ref(), "alertmanager", index, &mut used_names);
            let Some(url) = self.url("alerts.alertmanager.url", &am.url) else {
                continue;
            };
            alertmanagers.push(AlertmanagerConfig {
                name,
                url,
                timeout: self.duration(
                    "alerts.alertmanager.timeout",
                    am.timeout.as_ref(),
                    DEFAULT_CHANNEL_TIMEOUT,
                    false,
                ),
                resend_every: self.duration(
                    "alerts.alertmanager.resend_every",
                    am.resend_every.as_ref(),
                    DEFAULT_RESEND_EVERY,
                    false,
                ),
                resolve_for: self.duration(
                    "alerts.alertmanager.resolve_for",
                    am.resolve_for.as_ref(),
                    DEFAULT_RESOLVE_FOR,
                    true,
                ),
                severity: am
                    .severity
                    .as_ref()
                    .map_or_else(|| "critical".to_string(), |s| s.get_ref().clone()),
                runbook_url: am.runbook_url.as_ref().map(|url| url.get_ref().clone()),
                services: self.service_list(am.services.as_ref(), &names),
            });
        }
        let email = raw.email.as_ref().and_then(|spanned| {
            let email = spanned.get_ref();
            let (host, port) = self.host_port("alerts.email.server", &email.server)?;
            let credentials = match (&email.username, &email.password) {
                (None, None) => None,
                (username, password) => Some((
                    self.channel_login(spanned.span(), "username", username.as_ref()),
                    self.channel_login(spanned.span(), "password", password.as_ref()),
                )),
            };
            let mut to = Vec::new();
            for address in email.to.get_ref() {
                if self.mailbox("alerts.email.to", address) {
                    to.push(address.get_ref().clone());
                }
            }
            if to.is_empty() {
                self.problems.at(
                    email.to.span(),
                    "alerts.email.to needs at least one address",
                );
            }
            let from_ok = self.mailbox("alerts.email.from", &email.from);
            let tls = self.tls(email.tls.as_ref())?;
            let timeout = self.duration(
                "alerts.email.timeout",
                email.timeout.as_ref(),
                DEFAULT_CHANNEL_TIMEOUT,
                false,
            );
            let filter = ChannelFilter {
                notify_on: self.notify_list(email.notify_on.as_ref()),
                services: self.service_list(email.services.as_ref(), &names),
            };
            from_ok.then(|| EmailConfig {
                smtp: SmtpCheck {
                    server: SmtpServer::Address { host, port },
                    tls,
                    credentials,
                    ca: None,
                },
                from: email.from.get_ref().clone(),
                to,
                timeout,
                filter,
            })
        });
        let queue_size = match &raw.queue_size {
            Some(size) => match usize::try_from(*size.get_ref()) {
                Ok(size) if (1..=crate::config::MAX_QUEUE_SIZE).contains(&size) => size,
                _ => {
                    self.problems.at(
                        size.span(),
                        format!(
                            "alerts.queue_size is {}, allowed is 1 to {}",
                            size.get_ref(),
                            crate::config::MAX_QUEUE_SIZE
                        ),
                    );
                    defaults.queue_size
                }
            },
            None => defaults.queue_size,
        };
        let reminder = self.duration(
            "alerts.reminder_every",
            raw.reminder_every.as_ref(),
            Duration::ZERO,
            true,
        );
        AlertsConfig {
            state_dir: raw
                .state_dir
                .as_ref()
                .and_then(|dir| self.expand("alerts.state_dir", dir))
                .map_or(defaults.state_dir, PathBuf::from),
            notify_on: self
                .notify_list(raw.notify_on.as_ref())
                .unwrap_or(defaults.notify_on),
            min_interval: self.duration(
                "alerts.min_interval",
                raw.min_interval.as_ref(),
                defaults.min_interval,
                true,
            ),
            reminder_every: (!reminder.is_zero()).then_some(reminder),
            group_wait: Some(self.duration(
                "alerts.group_wait",
                raw.group_wait.as_ref(),
                Duration::ZERO,
                true,
            ))
            .filter(|wait| !wait.is_zero()),
            queue_size,
            max_attempts: self.count(
                "alerts.max_attempts",
                raw.max_attempts.as_ref(),
                defaults.max_attempts,
            ),
            dashboard_url: raw
                .dashboard_url
                .as_ref()
                .and_then(|url| self.url("alerts.dashboard_url", url)),
            api_url: raw
                .api_url
                .as_ref()
                .and_then(|url| self.url("alerts.api_url", url)),
            webhooks,
            email,
            alertmanagers,
        }
    }

    /// A channel's name: as given, or the kind numbered from the second one on.
    fn channel_name(
        &mut self,
        raw: Option<&Spanned<String>>,
        kind: &str,
        index: usize,
        used: &mut Vec<String>,
    ) -> String {
        let name = match raw {
            Some(name) => name.get_ref().clone(),
            None if index == 0 => kind.to_string(),
            None => format!("{kind}-{}", index + 1),
        };
        if let Some(raw) = raw
            && (used.contains(&name) || name.is_empty())
        {
            self.problems.at(
                raw.span(),
                format!("alert channel name \"{name}\" is empty or used twice"),
            );
        }
        used.push(name.clone());
        name
    }

    pub(super) fn notify_list(&mut self, raw: Option<&RawList>) -> Option<Vec<NotifyOn>> {
        let raw = raw?;
        let allowed: Vec<&str> = NotifyOn::ALL.iter().map(|(name, _)| *name).collect();
        let mut list = Vec::new();
        for item in raw.get_ref() {
            if let Some(name) = self.one_of("notify_on value", item, &allowed)
                && let Some((_, value)) = NotifyOn::ALL.iter().find(|(known, _)| *known == name)
            {
                list.push(*value);
            }
        }
        Some(list)
    }

    pub(super) fn service_list(
        &mut self,
        raw: Option<&RawList>,
        names: &[&str],
    ) -> Option<Vec<String>> {
        let raw = raw?;
        let mut list = Vec::new();
        for item in raw.get_ref() {
            if let Some(name) = self.one_of("service", item, names) {
                list.push(name);
            }
        }
        Some(list)
    }

    fn mailbox(&mut self, key: &str, address: &Spanned<String>) -> bool {
        let text = address.get_ref();
        let valid = text.parse::<lettre::message::Mailbox>().is_ok();
        if !valid {
            self.problems.at(
                address.span(),
                format!("{key} \"{text}\" is not an email address (e.g. \"oncall@example.com\" or \"On call <oncall@example.com>\")"),
            );
        }
        valid
    }
}
