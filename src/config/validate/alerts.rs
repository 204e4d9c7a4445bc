//! `[alerts]`: its own keys, and each channel table handed to its kind (the kinds live under
//! `alert/channel/`, one folder each) through [`ChannelTable`], the validation a channel kind
//! may use.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::DeValue;

use super::Validator;
use super::sections::typed;
use crate::config::raw::{RawAlerts, RawList};
use crate::config::{
    AlertsConfig, ChannelConfig, ChannelFilter, NotifyOn, Secret, ServiceConfig, SmtpTls, Url,
};
use crate::text::nearest;

/// One `[alerts.KIND]` table as its channel kind validates it: the checks every channel may
/// use, each reporting its problem at the place in the file.
pub(crate) struct ChannelTable<'v, 'a> {
    validator: &'v mut Validator<'a>,
    /// `alerts.KIND`, for messages.
    prefix: String,
    kind: &'static str,
    /// The table's place in the file.
    span: Range<usize>,
    /// Its position among the tables of its kind.
    index: usize,
    used_names: &'v mut Vec<String>,
    services: &'v [&'v str],
}

impl ChannelTable<'_, '_> {
    /// The table read into the kind's raw keys; a type problem is reported at its key.
    pub(crate) fn read<T: DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        typed::<T>(value, &mut self.validator.problems).map(Spanned::into_inner)
    }

    /// `alerts.KIND.key`, as messages name a key.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    /// Reports `message` at `span` (use [`Self::table`] for the whole table).
    pub(crate) fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.validator.problems.at(span, message);
    }

    /// The table's place in the file.
    pub(crate) fn table(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The channel's name: as given, else the kind, numbered from the second table on;
    /// names are unique among every channel.
    pub(crate) fn name(&mut self, raw: Option<&Spanned<String>>) -> String {
        let name = match raw {
            Some(name) => name.get_ref().clone(),
            None if self.index == 0 => self.kind.to_string(),
            None => format!("{}-{}", self.kind, self.index + 1),
        };
        if self.used_names.contains(&name) || name.is_empty() {
            let at = raw.map_or_else(|| self.span.clone(), Spanned::span);
            self.validator.problems.at(
                at,
                format!(
                    "alert channel name \"{name}\" is empty or used twice (give each channel its own `name`)"
                ),
            );
        }
        self.used_names.push(name.clone());
        name
    }

    /// Which pages it takes: `notify_on` and `services`.
    pub(crate) fn filter(
        &mut self,
        notify_on: Option<&RawList>,
        services: Option<&RawList>,
    ) -> ChannelFilter {
        ChannelFilter {
            notify_on: self.validator.notify_list(notify_on),
            services: self.validator.service_list(services, self.services),
        }
    }

    /// A URL.
    pub(crate) fn url(&mut self, key: &str, raw: &Spanned<String>) -> Option<Url> {
        let key = self.key(key);
        self.validator.url(&key, raw)
    }

    /// A duration, `default` when not given; zero only where `zero_ok`.
    pub(crate) fn duration(
        &mut self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        let key = self.key(key);
        self.validator.duration(&key, raw, default, zero_ok)
    }

    /// A value with `${VAR}` / `${file:...}` expanded.
    pub(crate) fn expand(&mut self, key: &str, raw: &Spanned<String>) -> Option<String> {
        let key = self.key(key);
        self.validator.expand(&key, raw)
    }

    /// A secret the channel cannot work without: unset or empty is a problem.
    pub(crate) fn needed_secret(
        &mut self,
        key: &str,
        raw: &Spanned<String>,
        needed_for: &str,
    ) -> Option<Secret> {
        let key = self.key(key);
        self.validator.needed_secret(&key, raw, needed_for)
    }

    /// One of `allowed`.
    pub(crate) fn one_of(
        &mut self,
        key: &str,
        raw: &Spanned<String>,
        allowed: &[&str],
    ) -> Option<String> {
        let key = self.key(key);
        self.validator.one_of(&key, raw, allowed)
    }

    /// `HOST:PORT`.
    pub(crate) fn host_port(&mut self, key: &str, raw: &Spanned<String>) -> Option<(String, u16)> {
        let key = self.key(key);
        self.validator.host_port(&key, raw)
    }

    /// An SMTP `tls` setting (`none`, `starttls`, `tls`).
    pub(crate) fn smtp_tls(&mut self, raw: Option<&Spanned<String>>) -> Option<SmtpTls> {
        self.validator.tls(raw)
    }

    /// Whether `address` is an email address; a problem when not.
    pub(crate) fn mailbox(&mut self, key: &str, address: &Spanned<String>) -> bool {
        let key = self.key(key);
        self.validator.mailbox(&key, address)
    }
}

impl Validator<'_> {
    pub(super) fn alerts(
        &mut self,
        raw: Option<Spanned<RawAlerts>>,
        channels: Vec<(Spanned<String>, Spanned<DeValue<'_>>)>,
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
        let mut config = match raw {
            Some(raw) => self.alerts_table(raw.into_inner()),
            None => AlertsConfig::default(),
        };
        config.channels = self.channels(channels, services);
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

    fn alerts_table(&mut self, raw: RawAlerts) -> AlertsConfig {
        let defaults = AlertsConfig::default();
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
            runbook_url: raw
                .runbook_url
                .as_ref()
                .and_then(|url| self.url("alerts.runbook_url", url)),
            channels: Vec::new(),
        }
    }

    /// Each channel table, read by its kind; an unknown kind is a problem naming the nearest.
    fn channels(
        &mut self,
        tables: Vec<(Spanned<String>, Spanned<DeValue<'_>>)>,
        services: &[ServiceConfig],
    ) -> Vec<ChannelConfig> {
        let names: Vec<&str> = services
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        let mut used_names = Vec::new();
        let mut channels = Vec::new();
        for (key, value) in tables {
            let Some(kind) = crate::alert::channel::kind_of(key.get_ref()) else {
                let known: Vec<&str> = crate::alert::channel::KINDS
                    .iter()
                    .map(|kind| kind.key)
                    .collect();
                let hint = nearest(key.get_ref(), known.iter().copied())
                    .map(|near| format!("; did you mean `{near}`?"))
                    .unwrap_or_default();
                self.problems.at(
                    key.span(),
                    format!(
                        "unknown key `{}` in [alerts]{hint} (alert channels: {})",
                        key.get_ref(),
                        known.join(", ")
                    ),
                );
                continue;
            };
            let span = value.span();
            let entries = match value.into_inner() {
                DeValue::Array(entries) if kind.many => entries.into_iter().collect::<Vec<_>>(),
                DeValue::Table(table) => vec![Spanned::new(span, DeValue::Table(table))],
                _ if kind.many => {
                    self.problems.at(
                        span,
                        format!(
                            "alerts.{0} is a table per channel: [[alerts.{0}]]",
                            kind.key
                        ),
                    );
                    continue;
                }
                _ => {
                    self.problems.at(
                        span,
                        format!("alerts.{0} is one table: [alerts.{0}]", kind.key),
                    );
                    continue;
                }
            };
            for (index, entry) in entries.into_iter().enumerate() {
                if let DeValue::Table(table) = entry.get_ref() {
                    let place = if kind.many {
                        format!("[[alerts.{}]]", kind.key)
                    } else {
                        format!("[alerts.{}]", kind.key)
                    };
                    crate::config::keys::table_keys(
                        &mut self.problems,
                        table,
                        &place,
                        (kind.keys)(),
                    );
                }
                let mut table = ChannelTable {
                    prefix: format!("alerts.{}", kind.key),
                    kind: kind.key,
                    span: entry.span(),
                    index,
                    used_names: &mut used_names,
                    services: &names,
                    validator: self,
                };
                if let Some(channel) = (kind.validate)(&mut table, entry) {
                    channels.push(channel);
                }
            }
        }
        channels
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
