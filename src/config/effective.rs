//! The effective config as TOML: every default filled in, every secret shown as `<redacted>`
//! (and an unset credential as the variable it waits for), for `breakerd check --print` and for
//! the reload log's list of what changed.

use std::fmt::Write as _;

use crate::text::toml_string as quoted;

use super::{
    Check, Config, Credential, NotifyOn, Schedule, Secret, ServiceConfig, SmtpCheck, SmtpServer,
    WindowTimes, format_duration,
};

/// How a bearer token (admin, report, heartbeat) is shown: long enough that the printed
/// config, read back, passes `check`'s length rule.
const REDACTED_TOKEN: &str = "<redacted bearer token>";

fn credential(value: &Credential) -> String {
    match value {
        Credential::Set(_) => quoted("<redacted>"),
        Credential::Missing {
            variable: Some(variable),
            ..
        } => quoted(&format!("<unset: variable {variable}>")),
        Credential::Missing { variable: None, .. } => quoted("<not configured>"),
    }
}

pub(crate) fn notify(list: &[NotifyOn]) -> String {
    let names: Vec<String> = list
        .iter()
        .filter_map(|value| {
            NotifyOn::ALL
                .iter()
                .find(|(_, known)| known == value)
                .map(|(name, _)| quoted(name))
        })
        .collect();
    format!("[{}]", names.join(", "))
}

pub(crate) fn smtp(out: &mut String, check: &SmtpCheck) {
    let server = match &check.server {
        SmtpServer::Address { host, port } => quoted(&format!("{host}:{port}")),
        SmtpServer::Missing { variable } => quoted(&format!("<unset: variable {variable}>")),
    };
    let _ = writeln!(
        out,
        "server = {server}\ntls = {}",
        quoted(check.tls.as_str())
    );
    if let Some((username, password)) = &check.credentials {
        let _ = writeln!(
            out,
            "username = {}\npassword = {}",
            credential(username),
            credential(password)
        );
    }
}

/// A provider check's keys: environment, base URL, credentials, settings.
fn provider(out: &mut String, check: &crate::provider::ProviderCheck) {
    let _ = writeln!(
        out,
        "environment = {}\nbase_url = {}",
        quoted(check.environment.as_str()),
        quoted(&redacted_url(&check.base_url))
    );
    for (key, value) in check.provider.credentials.iter().zip(&check.credentials) {
        let _ = writeln!(out, "{} = {}", key.key, credential(value));
    }
    let settings = &check.settings;
    if let Some(floor) = settings.min_balance {
        let _ = writeln!(out, "min_balance = {floor}");
    }
    if check.provider.settings.contains(&"api_version") {
        let version = settings
            .api_version
            .as_deref()
            .unwrap_or(crate::provider::WHATSAPP_API_VERSION);
        let _ = writeln!(out, "api_version = {}", quoted(version));
    }
    if let Some(quality) = &settings.min_quality {
        let _ = writeln!(out, "min_quality = {}", quoted(quality));
    }
    if !settings.failing_statuses.is_empty() {
        let statuses: Vec<String> = settings
            .failing_statuses
            .iter()
            .map(|s| quoted(s))
            .collect();
        let _ = writeln!(out, "failing_statuses = [{}]", statuses.join(", "));
    }
    if let Some(ipn_id) = &settings.ipn_id {
        let _ = writeln!(out, "ipn_id = {}", quoted(ipn_id));
    }
}

/// `url` without anything that may hold a secret: user, password and query string.
fn redacted_url(url: &super::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("redacted"));
    }
    shown.to_string()
}

/// The effective config of `config` as TOML text.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let server = &config.server;
    let _ = writeln!(
        out,
        "[server]\nlisten = {}\nadmin_token = {}\nslow_call = {}\nshutdown_grace = {}\nmax_connections = {}\nheader_read_timeout = {}\nidle_timeout = {}",
        quoted(&server.listen.to_string()),
        quoted(if server.admin_token.is_some() {
            REDACTED_TOKEN
        } else {
            "<unset: admin routes off>"
        }),
        quoted(&format_duration(server.slow_call)),
        quoted(&format_duration(server.shutdown_grace)),
        server.max_connections,
        quoted(&format_duration(server.header_read_timeout)),
        quoted(&format_duration(server.idle_timeout)),
    );
    if let Some(proxy) = server.proxy_listen {
        let _ = writeln!(out, "proxy_listen = {}", quoted(&proxy.to_string()));
        let _ = writeln!(
            out,
            "proxy_pool_idle = {}",
            quoted(&format_duration(server.proxy_pool_idle))
        );
    }
    if server.report_token.is_some() {
        let _ = writeln!(out, "report_token = {}", quoted(REDACTED_TOKEN));
    }
    if let Some(shard) = server.shard {
        let _ = writeln!(out, "shard = {}", quoted(&shard.to_string()));
    }
    let _ = writeln!(out, "check_threads = {}", server.check_threads);
    if !server.connectivity.is_empty() {
        let targets: Vec<String> = server
            .connectivity
            .iter()
            .map(|target| quoted(&target.to_string()))
            .collect();
        let _ = writeln!(out, "connectivity = [{}]", targets.join(", "));
    }
    for service in &config.services {
        let _ = writeln!(out, "\n[services.{}]", service.name);
        service_table(&mut out, service);
        operations(&mut out, service);
        rules(&mut out, service);
    }
    let alerts = &config.alerts;
    let _ = writeln!(
        out,
        "\n[alerts]\nstate_dir = {}\nnotify_on = {}\nmin_interval = {}\nreminder_every = {}\nqueue_size = {}\nmax_attempts = {}",
        quoted(&alerts.state_dir.display().to_string()),
        notify(&alerts.notify_on),
        quoted(&format_duration(alerts.min_interval)),
        quoted(
            &alerts
                .reminder_every
                .map_or_else(|| "0s".to_string(), format_duration)
        ),
        alerts.queue_size,
        alerts.max_attempts
    );
    if let Some(wait) = alerts.group_wait {
        let _ = writeln!(out, "group_wait = {}", quoted(&format_duration(wait)));
    }
    for channel in &alerts.channels {
        let _ = write!(out, "\n{}", channel.render());
    }
    for window in &config.maintenance {
        let _ = writeln!(out, "\n[[maintenance]]");
        if let Some(services) = &window.services {
            let names: Vec<String> = services.iter().map(|name| quoted(name)).collect();
            let _ = writeln!(out, "services = [{}]", names.join(", "));
        }
        match &window.when {
            WindowTimes::Recurring {
                expression,
                duration,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "schedule = {}\nduration = {}",
                    quoted(expression),
                    quoted(&format_duration(*duration))
                );
            }
            WindowTimes::Once { start, end } => {
                let _ = writeln!(
                    out,
                    "start = {}\nend = {}",
                    quoted(&crate::wall::rfc3339(*start)),
                    quoted(&crate::wall::rfc3339(*end))
                );
            }
        }
        let _ = writeln!(out, "reason = {}", quoted(&window.reason));
    }
    out
}

/// The keys of one `[services.NAME]` table, one `key = value` line each.
fn service_table(out: &mut String, service: &ServiceConfig) {
    let policy = &service.policy;
    let (label, kind) = match &service.check {
        Check::Http(_) | Check::Tcp(_) | Check::Dns(_) | Check::Heartbeat(_) => {
            ("kind", service.check.kind())
        }
        _ => ("preset", service.check.kind()),
    };
    let _ = writeln!(out, "{label} = {}", quoted(kind));
    match &service.check {
        Check::Provider(c) => provider(out, c),
        Check::Smtp(c) => smtp(out, c),
        Check::Http(c) => {
            let _ = writeln!(
                out,
                "url = {}\nmethod = {}",
                quoted(&redacted_url(&c.url)),
                quoted(&c.method)
            );
            if !c.expect_status.is_empty() {
                let codes: Vec<String> = c.expect_status.iter().map(u16::to_string).collect();
                let _ = writeln!(out, "expect_status = [{}]", codes.join(", "));
            }
            redacted_headers(out, &c.headers);
            if let Some(upstream) = &service.upstream {
                let _ = writeln!(out, "upstream = {}", quoted(&redacted_url(upstream)));
            }
        }
        Check::Tcp(c) => {
            let _ = writeln!(out, "address = {}", quoted(&c.address));
        }
        Check::Dns(c) => {
            let _ = writeln!(
                out,
                "name = {}\nrecord = {}",
                quoted(&c.name),
                quoted(c.record.as_str())
            );
            if let Some(server) = c.server {
                let _ = writeln!(out, "server = {}", quoted(&server.to_string()));
            }
            if !c.expect.is_empty() {
                let values: Vec<String> = c.expect.iter().map(|v| quoted(v)).collect();
                let _ = writeln!(out, "expect = [{}]", values.join(", "));
            }
        }
        Check::Heartbeat(c) => {
            let _ = writeln!(
                out,
                "token = {}\ngrace = {}",
                quoted(REDACTED_TOKEN),
                quoted(&format_duration(c.grace))
            );
        }
    }
    match (&service.check, &service.schedule) {
        // A heartbeat's schedule is how often its gap is checked; `every` is the gap.
        (Check::Heartbeat(c), _) => {
            let _ = writeln!(out, "every = {}", quoted(&format_duration(c.every)));
        }
        (_, Schedule::Every(period)) => {
            let _ = writeln!(out, "every = {}", quoted(&format_duration(*period)));
        }
        (_, Schedule::Cron { expression, .. }) => {
            let _ = writeln!(out, "schedule = {}", quoted(expression));
        }
    }
    let _ = writeln!(
        out,
        "failure_threshold = {}\ntimeout = {}\nreset_timeout = {}\nhalf_open_max_calls = {}\nsuccess_threshold = {}",
        policy.failure_threshold,
        quoted(&format_duration(policy.timeout)),
        quoted(&format_duration(policy.reset_timeout)),
        policy.half_open_max_calls,
        policy.success_threshold
    );
    if let Some(slow) = policy.slow_call_duration {
        let _ = writeln!(out, "slow_call = {}", quoted(&format_duration(slow)));
    }
    if let Some(window) = &policy.window {
        let _ = writeln!(
            out,
            "window_size = {}\nminimum_calls = {}",
            window.size, window.minimum_calls
        );
        if let Some(rate) = window.failure_rate_threshold {
            let _ = writeln!(out, "failure_rate_threshold = {rate}");
        }
        if let Some(rate) = window.slow_call_rate_threshold {
            let _ = writeln!(out, "slow_call_rate_threshold = {rate}");
        }
    }
    if let Some(backoff) = &policy.backoff {
        let _ = writeln!(
            out,
            "backoff_multiplier = {}\nbackoff_max = {}\nbackoff_jitter = {}",
            backoff.multiplier,
            quoted(&format_duration(backoff.max)),
            backoff.jitter
        );
    }
    let _ = writeln!(out, "checks = {}", quoted(service.checks.as_str()));
    if service.report_token.is_some() {
        let _ = writeln!(out, "report_token = {}", quoted(REDACTED_TOKEN));
    }
    if service.disabled {
        let _ = writeln!(out, "disabled = true");
    }
    if service.reuse_connections {
        let _ = writeln!(out, "reuse_connections = true");
    }
    if let Some(ca) = &service.ca {
        let _ = writeln!(out, "ca_file = {}", quoted(&ca.path));
    }
    if let Some(list) = &service.notify_on {
        let _ = writeln!(out, "notify_on = {}", notify(list));
    }
    if !service.depends_on.is_empty() {
        let names: Vec<String> = service.depends_on.iter().map(|name| quoted(name)).collect();
        let _ = writeln!(out, "depends_on = [{}]", names.join(", "));
    }
    if let Some(bulkhead) = &service.bulkhead {
        let _ = writeln!(
            out,
            "max_concurrent = {}\nmax_wait = {}",
            bulkhead.max_concurrent,
            quoted(&format_duration(bulkhead.max_wait))
        );
    }
    if let Some(fallback) = &service.fallback {
        let _ = writeln!(out, "fallback = {}", quoted(fallback));
    }
    let _ = writeln!(out, "breakers = {}", quoted(service.breakers.as_str()));
}

/// An `http` service's own operations as the tables they were written as, and for a service
/// with a breaker per operation, which operations have one.
fn operations(out: &mut String, service: &ServiceConfig) {
    for operation in &service.operations {
        let _ = writeln!(
            out,
            "\n[[services.{}.operations]]\nname = {}\npath = {}",
            service.name,
            quoted(&operation.name),
            quoted(operation.path.as_str())
        );
    }
    if service.breakers == crate::config::BreakerScope::PerOperation {
        let mut names: Vec<String> = service
            .operations
            .iter()
            .map(|operation| operation.name.to_string())
            .collect();
        if let Some(check) = service.check.provider() {
            names.extend(
                check
                    .provider
                    .operation_names()
                    .into_iter()
                    .filter(|name| *name != crate::provider::OTHER)
                    .map(str::to_string),
            );
        }
        let _ = writeln!(
            out,
            "\n# A breaker per operation: {}; any other call and the check of none go through {}'s own.",
            names.join(", "),
            service.name
        );
    }
}

/// What changed between two versions of a service, for the reload log: one
/// `key old → new` entry per changed key, secrets named but never shown.
pub fn service_changes(old: &ServiceConfig, new: &ServiceConfig) -> Vec<String> {
    fn lines(service: &ServiceConfig) -> Vec<(String, String)> {
        let mut out = String::new();
        service_table(&mut out, service);
        out.lines()
            .filter_map(|line| line.split_once(" = "))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }
    let (before, after) = (lines(old), lines(new));
    let value = |lines: &[(String, String)], key: &str| {
        lines.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let keys = before.iter().chain(after.iter()).map(|(k, _)| k);
    let mut seen = std::collections::BTreeSet::new();
    let mut changes = Vec::new();
    for key in keys {
        if !seen.insert(key.clone()) {
            continue;
        }
        let (was, is) = (value(&before, key), value(&after, key));
        if was == is {
            continue;
        }
        let secret = [&was, &is]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| v.contains("<redacted>")));
        changes.push(match (was, is) {
            _ if secret => format!("{key} changed"),
            (Some(was), Some(is)) => format!("{key} {was} → {is}"),
            (None, Some(is)) => format!("{key} set to {is}"),
            (Some(was), None) => format!("{key} {was} removed"),
            (None, None) => continue,
        });
    }
    if old.rules != new.rules {
        let written = |rules: &[crate::provider::rules::Rule]| -> Vec<String> {
            rules.iter().map(|rule| rule.to_toml("rules")).collect()
        };
        changes.push(if written(&old.rules) == written(&new.rules) {
            "rules: the same rules, moved in the file".to_string()
        } else {
            format!(
                "rules: {} of the service's own → {}",
                old.rules.len(),
                new.rules.len()
            )
        });
    }
    if changes.is_empty() && old != new {
        changes.push("a secret or a request detail changed (values not shown)".to_string());
    }
    changes
}

/// The service's rules in the order they are tried: its own as the tables they were written
/// as, then, as comments, those of its provider's settings, its provider's built-in list and
/// the defaults (`breakerd explain` shows which one decides an answer).
fn rules(out: &mut String, service: &ServiceConfig) {
    let table = format!("services.{}.rules", service.name);
    for rule in &service.rules {
        let _ = write!(out, "\n# {}\n{}", rule.origin, rule.to_toml(&table));
    }
    let provider = service.check.provider();
    let settings = provider
        .map(|check| (check.provider.settings_rules)(&check.settings))
        .unwrap_or_default();
    let builtin = provider.map_or(&[][..], |check| check.provider.rules());
    let _ = writeln!(
        out,
        "\n# Then, in this order (the first rule that matches an answer decides):"
    );
    for rule in settings
        .iter()
        .chain(builtin)
        .chain(crate::provider::default_rules())
    {
        let _ = writeln!(out, "# {}: {}", rule.origin, rule.summary());
    }
}

/// `headers = { Name = "<redacted>", ... }`: the names, never the values.
pub(crate) fn redacted_headers(out: &mut String, headers: &[(String, Secret)]) {
    if headers.is_empty() {
        return;
    }
    let names: Vec<String> = headers
        .iter()
        .map(|(name, _)| format!("{name} = {}", quoted("<redacted>")))
        .collect();
    let _ = writeln!(out, "headers = {{ {} }}", names.join(", "));
}
