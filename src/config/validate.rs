//! Turns the raw file into a [`Config`]: applies defaults, resolves secrets, and reports every
//! problem at its place in the file, with what is allowed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
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
use super::raw::{RawAlerts, RawList, RawServer, RawService};
use super::secret::{Environment, ExpandError, Secret, expand};
use super::{
    AfricasTalkingCheck, AlertmanagerConfig, AlertsConfig, ChannelFilter, Check, Checks, Config,
    Credential, DEFAULT_CHANNEL_TIMEOUT, DEFAULT_EVERY, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_RESEND_EVERY, DEFAULT_RESOLVE_FOR,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_SLOW_CALL, EmailConfig, HttpCheck, NotifyOn, OAuthCheck,
    Schedule, ServerConfig, ServiceConfig, SmtpCheck, SmtpServer, SmtpTls, TcpCheck, WebhookConfig,
    WebhookFormat, WhatsAppCheck,
};
use crate::breaker::{Backoff, Policy, PolicyError, SlidingWindow};

pub(crate) const PRESETS: &[&str] = &[
    "mpesa",
    "pesapal",
    "kcb",
    "africastalking",
    "whatsapp",
    "smtp",
];
pub(crate) const KINDS: &[&str] = &["http", "smtp", "tcp"];
const TLS_MODES: &[&str] = &["none", "starttls", "tls"];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const WEBHOOK_FORMATS: &[&str] = &["breakerd", "slack", "alertmanager"];
const MAX_NAME_LEN: usize = 64;
/// Names that would collide with the API's fixed routes under `/api/v1/circuit-breakers/`.
const RESERVED_NAMES: &[&str] = &["health", "metrics", "reset-all"];
/// Calls a sliding window remembers when only its thresholds are given.
const DEFAULT_WINDOW_SIZE: u32 = 20;
/// Calls that must be in the window before its rates count, when not given.
const DEFAULT_MINIMUM_CALLS: u32 = 10;
const DEFAULT_WHATSAPP_API_VERSION: &str = "v21.0";

/// The keys each preset or kind takes, beyond the schedule and breaker keys every service has.
pub(crate) fn check_keys(preset_or_kind: &str) -> &'static [&'static str] {
    match preset_or_kind {
        "mpesa" | "pesapal" | "kcb" => &["base_url", "consumer_key", "consumer_secret"],
        "africastalking" => &["base_url", "username", "api_key", "min_balance"],
        "whatsapp" => &["base_url", "api_version", "phone_number_id", "access_token"],
        "smtp" => &["server", "tls", "username", "password"],
        "http" => &[
            "url",
            "method",
            "headers",
            "body",
            "expect_status",
            "body_contains",
            "json_field",
            "json_equals",
            "upstream",
        ],
        "tcp" => &["address"],
        _ => &[],
    }
}

/// The sandbox host of each HTTP preset.
fn default_base_url(preset: &str) -> &'static str {
    match preset {
        "mpesa" => "https://sandbox.safaricom.co.ke",
        "pesapal" => "https://cybqa.pesapal.com/pesapalv3",
        "kcb" => "https://uat.buni.kcbgroup.com",
        "africastalking" => "https://api.sandbox.africastalking.com",
        "whatsapp" => "https://graph.facebook.com",
        _ => "",
    }
}

/// The seed's thresholds per provider family: (failure threshold, timeout, reset timeout).
fn default_policy(preset_or_kind: &str) -> Policy {
    let (failures, timeout, reset) = match preset_or_kind {
        "mpesa" | "pesapal" | "kcb" => (3, 30, 120),
        "africastalking" => (5, 10, 60),
        "smtp" | "whatsapp" => (5, 15, 60),
        _ => (5, 10, 60),
    };
    Policy {
        failure_threshold: failures,
        timeout: Duration::from_secs(timeout),
        reset_timeout: Duration::from_secs(reset),
        ..Policy::default()
    }
}

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
    let server = validator.server(raw.server);
    if !raw.has_services {
        // An empty or truncated file must never replace a running config with nothing.
        validator.problems.at(
            0..0,
            "no services are configured: add at least one [services.NAME] table (see the bundled alerts.toml)",
        );
    }
    let mut services = Vec::new();
    for (name, service) in raw.services {
        if let Some(service) = validator.service(name, service) {
            services.push(service);
        }
    }
    let alerts = validator.alerts(raw.alerts, &services);
    validator.problems.into_result(Config {
        server,
        services,
        alerts,
    })
}

/// The file's sections, each read on its own so that a wrong type in one service does not hide
/// the problems of the others.
struct Sections {
    server: Option<Spanned<RawServer>>,
    services: Vec<(Spanned<String>, Spanned<RawService>)>,
    has_services: bool,
    alerts: Option<Spanned<RawAlerts>>,
}

fn sections(document: DeTable<'_>, problems: &mut Problems<'_>) -> Sections {
    let mut sections = Sections {
        server: None,
        services: Vec::new(),
        has_services: false,
        alerts: None,
    };
    for (key, value) in document {
        match key.get_ref().as_ref() {
            "server" => sections.server = typed(value, problems),
            "alerts" => sections.alerts = typed(value, problems),
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

/// The fields of a cron schedule, in order, with what each allows.
const CRON_FIELDS: &[(&str, &str)] = &[
    ("seconds", "0-59"),
    ("minutes", "0-59"),
    ("hours", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "1-7 (1 is Sunday) or SUN-SAT"),
    ("year", "1970-2099"),
];

/// Where in a cron schedule the cron crate's complaint is (a byte offset into it) and a
/// one-line message naming the field and what it allows.
fn cron_problem(expression: &str) -> (usize, String) {
    const SHAPE: &str = "six fields, seconds first, and an optional year, e.g. \"0 */5 * * * *\"";
    let fields: Vec<(usize, &str)> = expression
        .split_whitespace()
        .map(|field| {
            (
                field.as_ptr() as usize - expression.as_ptr() as usize,
                field,
            )
        })
        .collect();
    if !(6..=7).contains(&fields.len()) {
        return (
            0,
            format!(
                "bad cron schedule \"{expression}\": it has {} fields; write {SHAPE}",
                fields.len()
            ),
        );
    }
    for (index, (offset, field)) in fields.iter().enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|other| if other == index { *field } else { "*" })
            .collect();
        if cron::Schedule::from_str(&alone.join(" ")).is_err() {
            let (name, allowed) = CRON_FIELDS[index];
            return (
                *offset,
                format!(
                    "bad cron schedule: the {name} field \"{field}\" is not valid ({name}: {allowed}; \
                     each field is *, a value, a list a,b, a range a-b or a step */n)"
                ),
            );
        }
    }
    let why = cron::Schedule::from_str(expression)
        .err()
        .map(|error| cron_reason(&error.to_string(), expression))
        .unwrap_or_default();
    (
        0,
        format!("bad cron schedule \"{expression}\"{why}; write {SHAPE}"),
    )
}

/// The cron crate's message without the copy of the expression and the caret line it adds.
fn cron_reason(message: &str, expression: &str) -> String {
    let reason: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != expression.trim() && !line.starts_with('^'))
        .collect();
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {}", reason.join(" "))
    }
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
            proxy_listen: raw
                .proxy_listen
                .as_ref()
                .and_then(|listen| self.listen_address("server.proxy_listen", listen)),
            report_token: raw
                .report_token
                .as_ref()
                .and_then(|token| self.secret("server.report_token", token)),
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
        let allowed = check_keys(&kind);
        for (key, span) in raw.check_keys() {
            if !allowed.contains(&key) {
                let label = if raw.preset.is_some() {
                    "preset"
                } else {
                    "kind"
                };
                self.problems.at(
                    span,
                    format!(
                        "`{key}` does not apply to {label} {kind} (its keys: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let schedule = self.schedule(&raw);
        let policy = self.policy(&raw, &kind, table_span.clone());
        let check = self.check(&raw, &kind, table_span);
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
        let report_token = raw
            .report_token
            .as_ref()
            .and_then(|token| self.secret("report_token", token));
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
            disabled: raw
                .disabled
                .as_ref()
                .is_some_and(|disabled| *disabled.get_ref()),
        })
    }

    fn problems_len(&self) -> usize {
        self.problems.count()
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
    ) -> Option<String> {
        match (&raw.preset, &raw.kind) {
            (Some(_), Some(kind)) => {
                self.problems
                    .at(kind.span(), "set either `preset` or `kind`, not both");
                None
            }
            (Some(preset), None) => self.one_of("preset", preset, PRESETS),
            (None, Some(kind)) => self.one_of("kind", kind, KINDS),
            (None, None) => {
                self.problems.at(
                    table_span,
                    format!(
                        "service {name} needs `preset` ({}) or `kind` ({})",
                        PRESETS.join(", "),
                        KINDS.join(", ")
                    ),
                );
                None
            }
        }
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
            (None, Some(expression)) => match cron::Schedule::from_str(expression.get_ref()) {
                Ok(schedule) => Schedule::Cron {
                    expression: expression.get_ref().clone(),
                    schedule: Box::new(schedule),
                },
                Err(_) => {
                    let (offset, message) = cron_problem(expression.get_ref());
                    // The value's span starts at its opening quote.
                    let start = expression.span().start + 1 + offset;
                    self.problems.at(start..start, message);
                    Schedule::Every(DEFAULT_EVERY)
                }
            },
            (None, None) => Schedule::Every(DEFAULT_EVERY),
        }
    }

    fn policy(&mut self, raw: &RawService, kind: &str, table_span: Range<usize>) -> Policy {
        let defaults = default_policy(kind);
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
            self.problems.at(span, policy_error_message(&error));
        }
        policy
    }

    fn check(&mut self, raw: &RawService, kind: &str, table_span: Range<usize>) -> Option<Check> {
        match kind {
            "mpesa" | "pesapal" | "kcb" => {
                let check = OAuthCheck {
                    base_url: self.base_url(raw, kind)?,
                    consumer_key: self.credential("consumer_key", raw.consumer_key.as_ref()),
                    consumer_secret: self
                        .credential("consumer_secret", raw.consumer_secret.as_ref()),
                };
                Some(match kind {
                    "mpesa" => Check::Mpesa(check),
                    "pesapal" => Check::Pesapal(check),
                    _ => Check::Kcb(check),
                })
            }
            "africastalking" => Some(Check::AfricasTalking(AfricasTalkingCheck {
                base_url: self.base_url(raw, kind)?,
                username: self.credential("username", raw.username.as_ref()),
                api_key: self.credential("api_key", raw.api_key.as_ref()),
                min_balance: raw.min_balance.as_ref().and_then(|balance| {
                    let value = *balance.get_ref();
                    if value.is_finite() {
                        return Some(value);
                    }
                    self.problems.at(
                        balance.span(),
                        format!("min_balance is {value}, allowed is a finite number"),
                    );
                    None
                }),
            })),
            "whatsapp" => Some(Check::WhatsApp(WhatsAppCheck {
                base_url: self.base_url(raw, kind)?,
                api_version: raw.api_version.as_ref().map_or_else(
                    || DEFAULT_WHATSAPP_API_VERSION.to_string(),
                    |v| v.get_ref().clone(),
                ),
                phone_number_id: self.credential("phone_number_id", raw.phone_number_id.as_ref()),
                access_token: self.credential("access_token", raw.access_token.as_ref()),
            })),
            "smtp" => {
                let Some(server) = &raw.server else {
                    self.problems
                        .at(table_span, "an smtp check needs `server` (HOST:PORT)");
                    return None;
                };
                let credentials = match (&raw.username, &raw.password) {
                    (None, None) => None,
                    (username, password) => Some((
                        self.credential("username", username.as_ref()),
                        self.credential("password", password.as_ref()),
                    )),
                };
                // Like a credential, an unset server variable fails the check, not the config.
                let server = match expand(server.get_ref(), self.environment) {
                    Err(ExpandError::Unset(variable)) => SmtpServer::Missing { variable },
                    _ => {
                        let (host, port) = self.host_port("server", server)?;
                        SmtpServer::Address { host, port }
                    }
                };
                Some(Check::Smtp(SmtpCheck {
                    server,
                    tls: self.tls(raw.tls.as_ref())?,
                    credentials,
                }))
            }
            "http" => self.http(raw, table_span).map(Check::Http),
            "tcp" => {
                let Some(address) = &raw.address else {
                    self.problems
                        .at(table_span, "a tcp check needs `address` (HOST:PORT)");
                    return None;
                };
                let expanded = self.expand("address", address)?;
                self.host_port_text("address", &expanded, address.span())?;
                Some(Check::Tcp(TcpCheck { address: expanded }))
            }
            _ => None,
        }
    }

    fn http(&mut self, raw: &RawService, table_span: Range<usize>) -> Option<HttpCheck> {
        let Some(url) = &raw.url else {
            self.problems.at(table_span, "an http check needs `url`");
            return None;
        };
        let url = self.url("url", url)?;
        let method = match &raw.method {
            Some(method) => {
                let upper = method.get_ref().to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    self.problems.at(
                        method.span(),
                        format!(
                            "unknown method \"{}\" (allowed: {})",
                            method.get_ref(),
                            METHODS.join(", ")
                        ),
                    );
                    return None;
                }
                upper
            }
            None => "GET".to_string(),
        };
        let mut headers = Vec::new();
        if let Some(raw_headers) = &raw.headers {
            for (name, value) in raw_headers.get_ref() {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    self.problems.at(
                        value.span(),
                        format!("header name \"{name}\" is not a valid HTTP header name"),
                    );
                    continue;
                }
                if let Some(value) = self.expand(&format!("headers.{name}"), value) {
                    headers.push((name.clone(), Secret::new(value)));
                }
            }
        }
        let mut expect_status = Vec::new();
        if let Some(codes) = &raw.expect_status {
            for code in codes.get_ref() {
                match u16::try_from(*code.get_ref()) {
                    Ok(status) if (100..=599).contains(&status) => expect_status.push(status),
                    _ => self.problems.at(
                        code.span(),
                        format!(
                            "expect_status {} is not an HTTP status code (100 to 599)",
                            code.get_ref()
                        ),
                    ),
                }
            }
        }
        let json_equals = match &raw.json_equals {
            Some(value) => {
                if raw.json_field.is_none() {
                    self.problems.at(
                        value.span(),
                        "`json_equals` needs `json_field` to say which field",
                    );
                }
                serde_json::to_value(value.get_ref()).ok()
            }
            None => None,
        };
        Some(HttpCheck {
            method,
            url,
            headers,
            body: raw.body.as_ref().and_then(|body| self.expand("body", body)),
            expect_status,
            body_contains: raw
                .body_contains
                .as_ref()
                .map(|text| text.get_ref().clone()),
            json_field: raw.json_field.as_ref().map(|field| field.get_ref().clone()),
            json_equals,
        })
    }

    fn alerts(
        &mut self,
        raw: Option<Spanned<RawAlerts>>,
        services: &[ServiceConfig],
    ) -> AlertsConfig {
        let Some(raw) = raw.map(Spanned::into_inner) else {
            return AlertsConfig::default();
        };
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
        let email = raw.email.as_ref().and_then(|email| {
            let email = email.get_ref();
            let (host, port) = self.host_port("alerts.email.server", &email.server)?;
            let credentials = match (&email.username, &email.password) {
                (None, None) => None,
                (username, password) => Some((
                    self.credential("username", username.as_ref()),
                    self.credential("password", password.as_ref()),
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
                },
                from: email.from.get_ref().clone(),
                to,
                timeout,
                filter,
            })
        });
        let queue_size = match &raw.queue_size {
            Some(size) => match usize::try_from(*size.get_ref()) {
                Ok(size) if (1..=super::MAX_QUEUE_SIZE).contains(&size) => size,
                _ => {
                    self.problems.at(
                        size.span(),
                        format!(
                            "alerts.queue_size is {}, allowed is 1 to {}",
                            size.get_ref(),
                            super::MAX_QUEUE_SIZE
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

    fn notify_list(&mut self, raw: Option<&RawList>) -> Option<Vec<NotifyOn>> {
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

    fn service_list(&mut self, raw: Option<&RawList>, names: &[&str]) -> Option<Vec<String>> {
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

    fn base_url(&mut self, raw: &RawService, preset: &str) -> Option<Url> {
        match &raw.base_url {
            Some(url) => self.url("base_url", url),
            None => Url::parse(default_base_url(preset)).ok(),
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

    fn host_port_text(
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

    /// A token that may be unset: an unset variable or an empty value means none.
    fn secret(&mut self, key: &str, raw: &Spanned<String>) -> Option<Secret> {
        match expand(raw.get_ref(), self.environment) {
            Ok(value) if !value.is_empty() => Some(Secret::new(value)),
            Ok(_) | Err(ExpandError::Unset(_)) => None,
            Err(error) => {
                self.problems.at(raw.span(), format!("{key}: {error}"));
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

/// The key a policy problem is about, for its place in the file.
fn policy_error_span(error: &PolicyError, raw: &RawService) -> Option<Range<usize>> {
    fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
        value.as_ref().map(Spanned::span)
    }
    let field = match error {
        PolicyError::Zero { field } | PolicyError::TooLarge { field, .. } => *field,
        PolicyError::ZeroDuration { field }
        | PolicyError::TooLong { field }
        | PolicyError::BadPercentage { field, .. } => *field,
        PolicyError::MinimumAboveSize { .. } => "window.minimum_calls",
        PolicyError::WindowWithoutThreshold => "window.size",
        PolicyError::SlowRateWithoutDuration => "window.slow_call_rate_threshold",
        PolicyError::BadMultiplier(_) => "backoff.multiplier",
        PolicyError::BadJitter(_) => "backoff.jitter",
        PolicyError::MaxBelowResetTimeout { .. } => "backoff.max",
        PolicyError::NeedsNewBreaker => return None,
    };
    match field {
        "failure_threshold" => span(&raw.failure_threshold),
        "half_open_max_calls" => span(&raw.half_open_max_calls),
        "success_threshold" => span(&raw.success_threshold),
        "timeout" => span(&raw.timeout),
        "reset_timeout" => span(&raw.reset_timeout),
        "window.size" => span(&raw.window_size).or_else(|| span(&raw.minimum_calls)),
        "window.minimum_calls" => span(&raw.minimum_calls),
        "window.failure_rate_threshold" => span(&raw.failure_rate_threshold),
        "window.slow_call_rate_threshold" => span(&raw.slow_call_rate_threshold),
        "backoff.multiplier" => span(&raw.backoff_multiplier),
        "backoff.jitter" => span(&raw.backoff_jitter),
        "backoff.max" => span(&raw.backoff_max),
        _ => None,
    }
}

/// The breaker's message with its field names spelled as config keys.
fn policy_error_message(error: &PolicyError) -> String {
    let renames: BTreeMap<&str, &str> = [
        ("window.size", "window_size"),
        ("window.minimum_calls", "minimum_calls"),
        ("window.failure_rate_threshold", "failure_rate_threshold"),
        (
            "window.slow_call_rate_threshold",
            "slow_call_rate_threshold",
        ),
        ("slow_call_duration", "slow_call"),
        ("backoff.multiplier", "backoff_multiplier"),
        ("backoff.jitter", "backoff_jitter"),
        ("backoff.max", "backoff_max"),
        ("window needs", "a window needs"),
    ]
    .into_iter()
    .collect();
    let mut message = error.to_string();
    for (from, to) in renames {
        message = message.replace(from, to);
    }
    message
}
