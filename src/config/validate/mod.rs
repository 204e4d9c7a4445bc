//! Turns the raw file into a [`Config`]: applies defaults, resolves secrets, and reports every
//! problem at its place in the file, with what is allowed.

use std::net::SocketAddr;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize as _;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use url::Url;

use super::duration::{format_duration, parse_duration};
use super::errors::{LoadError, Problems, nearest};
use super::keys::report_unknown;
use super::listen::resolve_listen;
use super::raw::{RawAlerts, RawList, RawMaintenance, RawServer, RawService};
use super::secret::{Environment, ExpandError, expand};
use super::{
    CaBundle, Check, Checks, Config, Credential, DEFAULT_EVERY, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_GRACE, DEFAULT_SLOW_CALL,
    Schedule, ServerConfig, ServiceConfig, SmtpTls,
};
use crate::breaker::{Backoff, Policy, PolicyError, PolicyField, SlidingWindow};
use crate::credential::Secret;

pub(crate) mod alerts;
mod checks;
mod http;
mod provider;
mod quiet;
mod schedule;

use super::kinds::{self, CheckKind};
use schedule::cron_problem;

const TLS_MODES: &[&str] = &["none", "starttls", "tls"];
const MAX_NAME_LEN: usize = 64;
/// Names that would collide with the API's fixed routes under `/api/v1/circuit-breakers/`.
const RESERVED_NAMES: &[&str] = &["health", "metrics", "reset-all"];
/// Calls a sliding window remembers when only its thresholds are given.
const DEFAULT_WINDOW_SIZE: u32 = 20;
/// Calls that must be in the window before its rates count, when not given.
const DEFAULT_MINIMUM_CALLS: u32 = 10;

pub(crate) fn validate(
    text: &str,
    path: &str,
    environment: &dyn Environment,
) -> Result<Config, LoadError> {
    let mut problems = Problems::new(path, text);
    let document = match DeTable::parse(text) {
        Ok(document) => document.into_inner(),
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            problems.at(span, explain_toml_error(error.message()));
            return Err(problems.into_error());
        }
    };
    report_unknown(&document, &mut problems);
    let raw = sections(document, &mut problems);
    let mut validator = Validator {
        problems,
        environment,
    };
    let connectivity = raw
        .server
        .as_ref()
        .and_then(|server| server.get_ref().connectivity.clone());
    let mut server = validator.server(raw.server);
    if !raw.has_services {
        // An empty or truncated file must never replace a running config with nothing.
        validator.problems.at(
            0..0,
            "no services are configured: add at least one [services.NAME] table (see the bundled alerts.toml)",
        );
    }
    let mut services = Vec::new();
    let mut depends_on: Vec<(String, RawList)> = Vec::new();
    for (name, service) in raw.services {
        if let Some(list) = &service.get_ref().depends_on {
            depends_on.push((name.get_ref().clone(), list.clone()));
        }
        if let Some(service) = validator.service(name, service) {
            services.push(service);
        }
    }
    // Sorted by name: one order everywhere, and `Config::service` finds a name by bisection.
    services.sort_by(|a, b| a.name.cmp(&b.name));
    validator.dependencies(&depends_on, &mut services);
    server.connectivity = validator.connectivity(connectivity.as_ref(), &services);
    let maintenance = validator.maintenance(raw.maintenance, &services);
    let alerts = validator.alerts(raw.alerts, raw.alert_channels, &services);
    for service in &mut services {
        if let Check::Heartbeat(heartbeat) = &mut service.check {
            heartbeat.state_file = alerts.state_dir.join("heartbeats").join(&service.name);
        }
    }
    validator.problems.into_result(Config {
        server,
        services,
        alerts,
        maintenance,
    })
}

/// The file's sections, each read on its own so that a wrong type in one service does not hide
/// the problems of the others.
struct Sections<'a> {
    server: Option<Spanned<RawServer>>,
    services: Vec<(Spanned<String>, Spanned<RawService>)>,
    has_services: bool,
    alerts: Option<Spanned<RawAlerts>>,
    /// `[alerts]`'s tables: one per channel kind, read by its kind.
    alert_channels: Vec<(Spanned<String>, Spanned<DeValue<'a>>)>,
    maintenance: Vec<Spanned<RawMaintenance>>,
}

fn sections<'a>(document: DeTable<'a>, problems: &mut Problems<'_>) -> Sections<'a> {
    let mut sections = Sections {
        server: None,
        services: Vec::new(),
        has_services: false,
        alerts: None,
        alert_channels: Vec::new(),
        maintenance: Vec::new(),
    };
    for (key, value) in document {
        match key.get_ref().as_ref() {
            "server" => sections.server = typed(value, problems),
            "alerts" => {
                let span = value.span();
                let value = match value.into_inner() {
                    DeValue::Table(table) => {
                        let mut own = DeTable::new();
                        for (key, entry) in table {
                            if super::keys::is_channel(entry.get_ref()) {
                                let key = Spanned::new(key.span(), key.into_inner().into_owned());
                                sections.alert_channels.push((key, entry));
                            } else {
                                own.insert(key, entry);
                            }
                        }
                        DeValue::Table(own)
                    }
                    other => other,
                };
                sections.alerts = typed(Spanned::new(span, value), problems);
            }
            "maintenance" => {
                let span = value.span();
                let DeValue::Array(entries) = value.into_inner() else {
                    problems.at(
                        span,
                        "`maintenance` must be a list of tables, one per window: [[maintenance]]",
                    );
                    continue;
                };
                sections.maintenance.extend(
                    entries
                        .into_iter()
                        .filter_map(|entry| typed(entry, problems)),
                );
            }
            "services" => {
                let span = value.span();
                let DeValue::Table(services) = value.into_inner() else {
                    problems.at(
                        span,
                        "`services` must be tables, one per service: [services.NAME]",
                    );
                    continue;
                };
                sections.has_services = !services.is_empty();
                for (name, service) in services {
                    let name = Spanned::new(name.span(), name.into_inner().into_owned());
                    if let Some(service) = typed(service, problems) {
                        sections.services.push((name, service));
                    }
                }
            }
            _ => {} // reported by `report_unknown`
        }
    }
    sections
}

/// One section read into its raw struct; a type problem is recorded at its place, with the key.
fn typed<T: serde::de::DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    problems: &mut Problems<'_>,
) -> Option<Spanned<T>> {
    let span = value.span();
    let keys: Vec<(Range<usize>, String)> = match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .map(|(key, value)| (value.span(), key.get_ref().to_string()))
            .collect(),
        _ => Vec::new(),
    };
    match Spanned::<T>::deserialize(ValueDeserializer::from(value)) {
        Ok(section) => Some(section),
        Err(error) => {
            let at = error.span().unwrap_or(span);
            let key = keys
                .iter()
                .find(|(value, _)| value.contains(&at.start))
                .map(|(_, key)| key.as_str());
            problems.at(at.clone(), explain_type_error(error.message(), key));
            None
        }
    }
}

/// serde's "invalid type: string \"three\", expected i64" in the words of a config file.
fn explain_type_error(message: &str, key: Option<&str>) -> String {
    let message = message.trim_end();
    let prefix = key.map(|key| format!("{key}: ")).unwrap_or_default();
    let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    else {
        return format!("{prefix}{message}");
    };
    let expected = match expected {
        "i64" | "u64" | "i32" | "u32" => "a whole number, e.g. 5",
        "f64" | "f32" => "a number, e.g. 0.5",
        "a string" => "a string in quotes",
        "a sequence" => "a list, e.g. [\"a\", \"b\"]",
        "a boolean" => "true or false",
        other if other.starts_with("struct ") || other == "a map" => "a table",
        other => other,
    };
    format!("{prefix}expected {expected}, found {found}")
}

/// toml's message, with what is allowed added where toml does not say it.
fn explain_toml_error(message: &str) -> String {
    let message = message.trim_end();
    if message.starts_with("duplicate key") {
        return format!("{message} (each service name and each key may appear only once)");
    }
    message.to_string()
}

struct Validator<'a> {
    problems: Problems<'a>,
    environment: &'a dyn Environment,
}

impl Validator<'_> {
    fn server(&mut self, raw: Option<Spanned<RawServer>>) -> ServerConfig {
        let raw = raw.map(Spanned::into_inner).unwrap_or_default();
        let listen = raw
            .listen
            .as_ref()
            .and_then(|listen| self.listen_address("server.listen", listen))
            .unwrap_or_else(fallback_listen);
        // An unset or empty token switches the admin routes off; that is not an error.
        let admin_token = raw.admin_token.as_ref().and_then(|token| {
            match expand(token.get_ref(), self.environment) {
                Ok(value) if !value.is_empty() => Some(Secret::new(value)),
                Ok(_) | Err(ExpandError::Unset(_)) => None,
                Err(error) => {
                    self.problems
                        .at(token.span(), format!("server.admin_token: {error}"));
                    None
                }
            }
        });
        ServerConfig {
            listen,
            admin_token,
            slow_call: self.duration(
                "server.slow_call",
                raw.slow_call.as_ref(),
                DEFAULT_SLOW_CALL,
                true,
            ),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_ref(),
                DEFAULT_SHUTDOWN_GRACE,
                false,
            ),
            max_connections: self.count(
                "server.max_connections",
                raw.max_connections.as_ref(),
                DEFAULT_MAX_CONNECTIONS,
            ),
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                raw.header_read_timeout.as_ref(),
                DEFAULT_HEADER_READ_TIMEOUT,
                false,
            ),
            idle_timeout: self.duration(
                "server.idle_timeout",
                raw.idle_timeout.as_ref(),
                DEFAULT_IDLE_TIMEOUT,
                false,
            ),
            proxy_listen: raw.proxy_listen.as_ref().and_then(|proxy| {
                let address = self.listen_address("server.proxy_listen", proxy)?;
                if clashes(address, listen) {
                    self.problems.at(
                        proxy.span(),
                        format!(
                            "server.proxy_listen {address} is where server.listen ({listen}) serves the API: give the proxy its own port, e.g. 127.0.0.1:9478"
                        ),
                    );
                    return None;
                }
                Some(address)
            }),
            report_token: raw
                .report_token
                .as_ref()
                .and_then(|token| {
                    self.needed_secret(
                        "server.report_token",
                        token,
                        "applications report outcomes with it",
                    )
                }),
            connectivity: Vec::new(),
            shard: raw.shard.as_ref().and_then(|shard| {
                shard
                    .get_ref()
                    .parse()
                    .map_err(|error: crate::config::ShardError| {
                        self.problems.at(shard.span(), format!("server.{error}"));
                    })
                    .ok()
            }),
            check_threads: self.count("server.check_threads", raw.check_threads.as_ref(), 1),
        }
    }

    fn listen_address(&mut self, key: &str, listen: &Spanned<String>) -> Option<SocketAddr> {
        resolve_listen(listen.get_ref())
            .map_err(|error| self.problems.at(listen.span(), format!("{key} {error}")))
            .ok()
    }

    fn service(
        &mut self,
        name: Spanned<String>,
        raw: Spanned<RawService>,
    ) -> Option<ServiceConfig> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let before = self.problems_len();
        self.service_name(&name);
        let kind = self.preset_or_kind(name.get_ref(), &raw, table_span.clone())?;
        for (key, span) in raw.check_keys() {
            if !kind.keys.contains(&key) {
                self.problems.at(
                    span,
                    format!(
                        "`{key}` does not apply to {} {} (its keys: {})",
                        kind.label(),
                        kind.name,
                        kind.keys.join(", ")
                    ),
                );
            }
        }
        let mut schedule = self.schedule(&raw);
        let policy = self.policy(&raw, kind, table_span.clone());
        let mut check = self.check(kind, &raw, table_span);
        let rules = self.rules(&raw, kind);
        if let Some(Check::Heartbeat(heartbeat)) = &check {
            schedule = Schedule::Every(heartbeat.check_period());
        }
        let notify_on = self.notify_list(raw.notify_on.as_ref());
        let upstream = match (&check, &raw.upstream) {
            (_, Some(upstream)) => self.url("upstream", upstream),
            (Some(check), None) => check.base_url().cloned(),
            (None, None) => None,
        };
        let checks = match &raw.checks {
            None => Checks::Always,
            Some(value) => match self
                .one_of("checks", value, &["always", "when_idle"])
                .as_deref()
            {
                Some("when_idle") => Checks::WhenIdle,
                _ => Checks::Always,
            },
        };
        let report_token = raw.report_token.as_ref().and_then(|token| {
            self.needed_secret(
                "report_token",
                token,
                "applications report this service's outcomes with it",
            )
        });
        let ca = raw.ca_file.as_ref().and_then(|file| self.ca_file(file));
        if let Some(Check::Smtp(smtp)) = &mut check {
            smtp.ca = ca.clone();
        }
        if self.problems_len() != before {
            return None;
        }
        Some(ServiceConfig {
            name: name.into_inner(),
            policy,
            schedule,
            check: check?,
            notify_on,
            upstream,
            checks,
            report_token,
            ca,
            depends_on: Vec::new(),
            rules,
            reuse_connections: raw
                .reuse_connections
                .as_ref()
                .is_some_and(|reuse| *reuse.get_ref()),
            disabled: raw
                .disabled
                .as_ref()
                .is_some_and(|disabled| *disabled.get_ref()),
        })
    }

    fn problems_len(&self) -> usize {
        self.problems.count()
    }

    /// A `ca_file`: PEM certificates, read now (at most 64 KiB, like a secret file).
    fn ca_file(&mut self, file: &Spanned<String>) -> Option<CaBundle> {
        let path = self.expand("ca_file", file)?;
        let pem = match self.environment.read_file(&path) {
            Ok(pem) => pem,
            Err(reason) => {
                self.problems.at(
                    file.span(),
                    format!("ca_file: cannot read {path}: {reason}"),
                );
                return None;
            }
        };
        use rustls::pki_types::pem::PemObject as _;
        let certificates: Result<Vec<rustls::pki_types::CertificateDer<'static>>, _> =
            rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
        match certificates {
            Ok(certificates) if !certificates.is_empty() => {
                // What TLS does with them when the service is built: refused here, not there.
                let mut roots = rustls::RootCertStore::empty();
                for (index, certificate) in certificates.iter().enumerate() {
                    if let Err(refused) = roots.add(certificate.clone()) {
                        self.problems.at(
                            file.span(),
                            format!(
                                "ca_file: certificate {} of {path} is not one TLS can trust: {refused}",
                                index + 1
                            ),
                        );
                        return None;
                    }
                }
                Some(CaBundle { path, certificates })
            }
            _ => {
                self.problems.at(
                    file.span(),
                    format!(
                        "ca_file: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                    ),
                );
                None
            }
        }
    }

    fn service_name(&mut self, name: &Spanned<String>) {
        let value = name.get_ref();
        let valid = !value.is_empty()
            && value.len() <= MAX_NAME_LEN
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            self.problems.at(
                name.span(),
                format!(
                    "service name \"{value}\" is not allowed: use 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
                ),
            );
        } else if RESERVED_NAMES.contains(&value.as_str()) {
            self.problems.at(
                name.span(),
                format!(
                    "service name \"{value}\" is reserved by the API (reserved: {}); choose another",
                    RESERVED_NAMES.join(", ")
                ),
            );
        }
    }

    fn preset_or_kind(
        &mut self,
        name: &str,
        raw: &RawService,
        table_span: Range<usize>,
    ) -> Option<&'static CheckKind> {
        let (presets, kinds) = (kinds::names(true), kinds::names(false));
        let (value, is_preset) = match (&raw.preset, &raw.kind) {
            (Some(_), Some(kind)) => {
                self.problems
                    .at(kind.span(), "set either `preset` or `kind`, not both");
                return None;
            }
            (Some(preset), None) => (self.one_of("preset", preset, &presets)?, true),
            (None, Some(kind)) => (self.one_of("kind", kind, &kinds)?, false),
            (None, None) => {
                self.problems.at(
                    table_span,
                    format!(
                        "service {name} needs `preset` ({}) or `kind` ({})",
                        presets.join(", "),
                        kinds.join(", ")
                    ),
                );
                return None;
            }
        };
        kinds::find(&value, is_preset)
    }

    fn one_of(&mut self, key: &str, value: &Spanned<String>, allowed: &[&str]) -> Option<String> {
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

    fn schedule(&mut self, raw: &RawService) -> Schedule {
        match (&raw.every, &raw.schedule) {
            (Some(_), Some(schedule)) => {
                self.problems.at(
                    schedule.span(),
                    "set either `every` or `schedule`, not both",
                );
                Schedule::Every(DEFAULT_EVERY)
            }
            (Some(every), None) => {
                Schedule::Every(self.duration("every", Some(every), DEFAULT_EVERY, false))
            }
            (None, Some(expression)) => match self.cron(expression) {
                Some(schedule) => Schedule::Cron {
                    expression: expression.get_ref().clone(),
                    schedule: Box::new(schedule),
                },
                None => Schedule::Every(DEFAULT_EVERY),
            },
            (None, None) => Schedule::Every(DEFAULT_EVERY),
        }
    }

    /// A cron schedule (seconds first); a problem points at the field that is wrong.
    fn cron(&mut self, expression: &Spanned<String>) -> Option<cron::Schedule> {
        match cron::Schedule::from_str(expression.get_ref()) {
            Ok(schedule) => Some(schedule),
            Err(_) => {
                let (offset, message) = cron_problem(expression.get_ref());
                // The value's span starts at its opening quote.
                let start = expression.span().start + 1 + offset;
                self.problems.at(start..start, message);
                None
            }
        }
    }

    fn policy(&mut self, raw: &RawService, kind: &CheckKind, table_span: Range<usize>) -> Policy {
        let defaults = kind.default_policy();
        let mut policy = Policy {
            failure_threshold: self.count(
                "failure_threshold",
                raw.failure_threshold.as_ref(),
                defaults.failure_threshold,
            ),
            timeout: self.duration("timeout", raw.timeout.as_ref(), defaults.timeout, false),
            reset_timeout: self.duration(
                "reset_timeout",
                raw.reset_timeout.as_ref(),
                defaults.reset_timeout,
                false,
            ),
            half_open_max_calls: self.count(
                "half_open_max_calls",
                raw.half_open_max_calls.as_ref(),
                defaults.half_open_max_calls,
            ),
            success_threshold: self.count(
                "success_threshold",
                raw.success_threshold.as_ref(),
                defaults.success_threshold,
            ),
            slow_call_duration: raw
                .slow_call
                .as_ref()
                .map(|slow| self.duration("slow_call", Some(slow), DEFAULT_SLOW_CALL, false)),
            window: None,
            backoff: None,
        };
        let windowed = raw.window_size.is_some()
            || raw.minimum_calls.is_some()
            || raw.failure_rate_threshold.is_some()
            || raw.slow_call_rate_threshold.is_some();
        if windowed {
            let size = self.count("window_size", raw.window_size.as_ref(), DEFAULT_WINDOW_SIZE);
            policy.window = Some(SlidingWindow {
                size,
                minimum_calls: self.count(
                    "minimum_calls",
                    raw.minimum_calls.as_ref(),
                    DEFAULT_MINIMUM_CALLS.min(size),
                ),
                failure_rate_threshold: raw
                    .failure_rate_threshold
                    .as_ref()
                    .map(|rate| *rate.get_ref()),
                slow_call_rate_threshold: raw
                    .slow_call_rate_threshold
                    .as_ref()
                    .map(|rate| *rate.get_ref()),
            });
            if raw.slow_call_rate_threshold.is_some() && policy.slow_call_duration.is_none() {
                // The daemon-wide slow_call applies; the breaker needs it spelled out.
                policy.slow_call_duration = Some(DEFAULT_SLOW_CALL);
            }
        }
        if raw.backoff_multiplier.is_some()
            || raw.backoff_max.is_some()
            || raw.backoff_jitter.is_some()
        {
            let multiplier = raw
                .backoff_multiplier
                .as_ref()
                .map_or(2.0, |m| *m.get_ref());
            let default_max = policy
                .reset_timeout
                .saturating_mul(8)
                .min(super::duration_limit("backoff_max"));
            policy.backoff = Some(Backoff {
                multiplier,
                max: self.duration("backoff_max", raw.backoff_max.as_ref(), default_max, false),
                jitter: raw.backoff_jitter.as_ref().map_or(0.0, |j| *j.get_ref()),
            });
        }
        if let Err(error) = policy.validate() {
            let span = policy_error_span(&error, raw).unwrap_or(table_span);
            self.problems.at(span, error.describe(config_key));
        }
        policy
    }

    fn tls(&mut self, raw: Option<&Spanned<String>>) -> Option<SmtpTls> {
        let Some(raw) = raw else {
            return Some(SmtpTls::StartTls);
        };
        match self.one_of("tls", raw, TLS_MODES)?.as_str() {
            "none" => Some(SmtpTls::None),
            "tls" => Some(SmtpTls::Tls),
            _ => Some(SmtpTls::StartTls),
        }
    }

    fn url(&mut self, key: &str, raw: &Spanned<String>) -> Option<Url> {
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

    fn host_port(&mut self, key: &str, raw: &Spanned<String>) -> Option<(String, u16)> {
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

    fn credential(&mut self, key: &'static str, raw: Option<&Spanned<String>>) -> Credential {
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

    fn expand(&mut self, key: &str, raw: &Spanned<String>) -> Option<String> {
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

    fn duration(
        &mut self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        let Some(raw) = raw else {
            return default;
        };
        let limit = super::duration_limit(key);
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

    fn count(&mut self, key: &str, raw: Option<&Spanned<i64>>, default: u32) -> u32 {
        let Some(raw) = raw else {
            return default;
        };
        let limit = super::count_limit(key);
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

fn fallback_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9477))
}

/// The config key of a policy setting.
fn config_key(field: PolicyField) -> &'static str {
    match field {
        PolicyField::FailureThreshold => "failure_threshold",
        PolicyField::HalfOpenMaxCalls => "half_open_max_calls",
        PolicyField::SuccessThreshold => "success_threshold",
        PolicyField::Timeout => "timeout",
        PolicyField::ResetTimeout => "reset_timeout",
        PolicyField::SlowCallDuration => "slow_call",
        PolicyField::WindowSize => "window_size",
        PolicyField::WindowMinimumCalls => "minimum_calls",
        PolicyField::WindowFailureRateThreshold => "failure_rate_threshold",
        PolicyField::WindowSlowCallRateThreshold => "slow_call_rate_threshold",
        PolicyField::BackoffMultiplier => "backoff_multiplier",
        PolicyField::BackoffJitter => "backoff_jitter",
        PolicyField::BackoffMax => "backoff_max",
    }
}

/// The place in the file of the key a policy problem is about.
fn policy_error_span(error: &PolicyError, raw: &RawService) -> Option<Range<usize>> {
    fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
        value.as_ref().map(Spanned::span)
    }
    match error.field()? {
        PolicyField::FailureThreshold => span(&raw.failure_threshold),
        PolicyField::HalfOpenMaxCalls => span(&raw.half_open_max_calls),
        PolicyField::SuccessThreshold => span(&raw.success_threshold),
        PolicyField::Timeout => span(&raw.timeout),
        PolicyField::ResetTimeout => span(&raw.reset_timeout),
        PolicyField::SlowCallDuration => span(&raw.slow_call),
        PolicyField::WindowSize => span(&raw.window_size).or_else(|| span(&raw.minimum_calls)),
        PolicyField::WindowMinimumCalls => span(&raw.minimum_calls),
        PolicyField::WindowFailureRateThreshold => span(&raw.failure_rate_threshold),
        PolicyField::WindowSlowCallRateThreshold => span(&raw.slow_call_rate_threshold),
        PolicyField::BackoffMultiplier => span(&raw.backoff_multiplier),
        PolicyField::BackoffJitter => span(&raw.backoff_jitter),
        PolicyField::BackoffMax => span(&raw.backoff_max),
    }
}

/// Whether two listening addresses would take the same socket: the same port (not 0, which
/// picks a free one) on the same address or where either is every address.
fn clashes(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
