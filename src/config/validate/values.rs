//! Reading one value at its key: one of a list, a TLS mode, a URL, HOST:PORT, a credential, a
//! `${...}` expansion, a needed secret, a duration or a count, each problem at its place.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use url::Url;

use super::Validator;
use crate::config::secret::{ExpandError, expand};
use crate::config::{Credential, SmtpTls};
use crate::credential::Secret;
use crate::duration::{format_duration, parse_duration};
use crate::text::nearest;

/// The fewest characters a bearer token (admin, report, heartbeat) may have.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

const TLS_MODES: &[&str] = &["none", "starttls", "tls"];

impl Validator<'_> {
    pub(super) fn one_of(
        &mut self,
        key: &str,
        value: &Spanned<String>,
        allowed: &[&str],
    ) -> Option<String> {
        let text = value.get_ref();
        if allowed.contains(&text.as_str()) {
            return Some(text.clone());
        }
        let hint = nearest(text, allowed.iter().copied())
            .map(|suggestion| format!("did you mean \"{suggestion}\"? "))
            .unwrap_or_default();
        self.problems.at(
            value.span(),
            format!(
                "unknown {key} \"{text}\" ({hint}allowed: {})",
                allowed.join(", ")
            ),
        );
        None
    }

    pub(super) fn tls(&mut self, raw: Option<&Spanned<String>>) -> Option<SmtpTls> {
        let Some(raw) = raw else {
            return Some(SmtpTls::StartTls);
        };
        match self.one_of("tls", raw, TLS_MODES)?.as_str() {
            "none" => Some(SmtpTls::None),
            "tls" => Some(SmtpTls::Tls),
            _ => Some(SmtpTls::StartTls),
        }
    }

    pub(super) fn url(&mut self, key: &str, raw: &Spanned<String>) -> Option<Url> {
        let text = self.expand(key, raw)?;
        match Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(url) => {
                self.problems.at(
                    raw.span(),
                    format!(
                        "{key} must be an http:// or https:// URL with a host, not \"{}\"",
                        url.scheme()
                    ),
                );
                None
            }
            Err(error) => {
                self.problems.at(
                    raw.span(),
                    format!(
                        "{key} \"{}\" is not a URL: {error} (e.g. \"https://api.example.com\")",
                        raw.get_ref()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn host_port(&mut self, key: &str, raw: &Spanned<String>) -> Option<(String, u16)> {
        let text = self.expand(key, raw)?;
        self.host_port_text(key, &text, raw.span())
    }

    pub(super) fn host_port_text(
        &mut self,
        key: &str,
        text: &str,
        span: Range<usize>,
    ) -> Option<(String, u16)> {
        let parsed = text.rsplit_once(':').and_then(|(host, port)| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port.parse::<u16>().ok().filter(|port| *port != 0)?;
            (!host.is_empty()).then(|| (host.to_string(), port))
        });
        if parsed.is_none() {
            self.problems.at(
                span,
                format!("{key} \"{text}\" is not HOST:PORT (e.g. \"smtp.example.com:587\")"),
            );
        }
        parsed
    }

    pub(super) fn credential(
        &mut self,
        key: &'static str,
        raw: Option<&Spanned<String>>,
    ) -> Credential {
        let Some(raw) = raw else {
            return Credential::Missing {
                key,
                variable: None,
            };
        };
        match expand(raw.get_ref(), self.environment) {
            Ok(value) if value.is_empty() => Credential::Missing {
                key,
                variable: None,
            },
            Ok(value) => Credential::Set(Secret::new(value)),
            // An unset credential is not a config error: the check fails with reason `auth`.
            Err(ExpandError::Unset(variable)) => Credential::Missing {
                key,
                variable: Some(variable),
            },
            Err(error) => {
                self.problems.at(raw.span(), format!("{key}: {error}"));
                Credential::Missing {
                    key,
                    variable: None,
                }
            }
        }
    }

    pub(super) fn expand(&mut self, key: &str, raw: &Spanned<String>) -> Option<String> {
        match expand(raw.get_ref(), self.environment) {
            Ok(value) => Some(value),
            Err(error) => {
                self.problems.at(raw.span(), format!("{key}: {error}"));
                None
            }
        }
    }

    /// A secret the daemon cannot do without once it is written (a heartbeat's token, a report
    /// token, a channel's password): unset or empty is a problem here, where `run` would
    /// otherwise go on without it. `needed_for` says what it is for.
    pub(super) fn needed_secret(
        &mut self,
        key: &str,
        raw: &Spanned<String>,
        needed_for: &str,
    ) -> Option<Secret> {
        match expand(raw.get_ref(), self.environment) {
            Ok(value) if !value.is_empty() => Some(Secret::new(value)),
            Ok(_) => {
                self.problems.at(
                    raw.span(),
                    format!("{key} is empty: {needed_for}; set it or remove the key"),
                );
                None
            }
            Err(error) => {
                self.problems.at(
                    raw.span(),
                    format!("{key}: {error}; {needed_for}: set it or remove the key"),
                );
                None
            }
        }
    }

    /// `token` (the value of bearer-token `key`, written at `span`) when it is long enough
    /// not to be guessed: at least [`MIN_TOKEN_CHARS`] characters.
    pub(super) fn strong_token(
        &mut self,
        key: &str,
        span: Range<usize>,
        token: Secret,
    ) -> Option<Secret> {
        let length = token.expose().chars().count();
        if length >= MIN_TOKEN_CHARS {
            return Some(token);
        }
        self.problems.at(
            span,
            format!(
                "{key} is {length} characters long: a bearer token needs at least {MIN_TOKEN_CHARS} so it cannot be guessed; make one with `openssl rand -hex 24`"
            ),
        );
        None
    }

    pub(super) fn duration(
        &mut self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        let Some(raw) = raw else {
            return default;
        };
        let limit = crate::config::duration_limit(key);
        match parse_duration(raw.get_ref()) {
            Ok(duration) if duration.is_zero() && !zero_ok => {
                self.problems
                    .at(raw.span(), format!("{key} must be longer than 0s"));
                default
            }
            Ok(duration) if duration > limit => {
                self.problems.at(
                    raw.span(),
                    format!(
                        "{key} is {}, the longest allowed is {}",
                        raw.get_ref(),
                        format_duration(limit)
                    ),
                );
                default
            }
            Ok(duration) => duration,
            Err(why) => {
                self.problems.at(raw.span(), format!("{key}: {why}"));
                default
            }
        }
    }

    pub(super) fn count(&mut self, key: &str, raw: Option<&Spanned<i64>>, default: u32) -> u32 {
        let Some(raw) = raw else {
            return default;
        };
        let limit = crate::config::count_limit(key);
        match u32::try_from(*raw.get_ref()) {
            Ok(value) if (1..=limit).contains(&value) => value,
            _ => {
                self.problems.at(
                    raw.span(),
                    format!(
                        "{key} is {}, allowed is a whole number from 1 to {limit}",
                        raw.get_ref(),
                    ),
                );
                default
            }
        }
    }
}
