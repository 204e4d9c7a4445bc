//! One entry per check kind and preset: the keys it takes, its defaults (the seed's
//! thresholds) and how its check is built from the file. The HTTP presets come from the
//! provider modules (`src/provider/`); nothing else in the config keeps a list of them.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use super::Validator;
use crate::breaker::Policy;
use crate::config::raw::RawService;
use crate::config::secret::{ExpandError, expand};
use std::net::SocketAddr;

use crate::config::{
    Check, DEFAULT_EVERY, DnsCheck, DnsRecord, HeartbeatCheck, SmtpCheck, SmtpServer, TcpCheck,
};
use crate::provider::{self, Provider};

/// How late a heartbeat may be when `grace` is not set.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// A preset (a provider) or a kind (a check of the user's own).
pub(crate) struct CheckKind {
    /// `preset = NAME` or `kind = NAME`.
    pub(crate) name: &'static str,
    /// Written `preset = ...` (a provider) rather than `kind = ...`.
    pub(crate) is_preset: bool,
    /// The check's own keys, beyond the schedule and breaker keys every service takes.
    pub(crate) keys: Vec<&'static str>,
    /// The provider, for the HTTP presets.
    pub(crate) provider: Option<&'static Provider>,
    /// The seed's thresholds: failures that open, timeout and reset timeout.
    thresholds: (u32, Duration, Duration),
    /// Builds the check from the service's table; problems go to the validator.
    build: fn(&mut Validator<'_>, &RawService, &CheckKind, Range<usize>) -> Option<Check>,
}

const fn seconds(failures: u32, timeout: u64, reset: u64) -> (u32, Duration, Duration) {
    (
        failures,
        Duration::from_secs(timeout),
        Duration::from_secs(reset),
    )
}

/// Every preset and kind: the providers first, then the checks of the user's own.
static CHECK_KINDS: LazyLock<Vec<CheckKind>> = LazyLock::new(|| {
    let smtp_keys = vec!["server", "tls", "username", "password", "ca_file"];
    let mut kinds: Vec<CheckKind> = provider::PROVIDERS
        .iter()
        .map(|provider| CheckKind {
            name: provider.name,
            is_preset: true,
            keys: provider.keys(),
            provider: Some(*provider),
            thresholds: (
                provider.thresholds.failures,
                provider.thresholds.timeout,
                provider.thresholds.reset_timeout,
            ),
            build: |v, raw, kind, _| v.provider_check(raw, kind).map(Check::Provider),
        })
        .collect();
    kinds.extend([
        CheckKind {
            name: "smtp",
            is_preset: true,
            keys: smtp_keys.clone(),
            provider: None,
            thresholds: seconds(5, 15, 60),
            build: |v, raw, _, table| v.smtp(raw, table),
        },
        CheckKind {
            name: "http",
            is_preset: false,
            keys: vec![
                "url",
                "method",
                "headers",
                "body",
                "expect_status",
                "body_contains",
                "json_field",
                "json_equals",
                "upstream",
                "ca_file",
                "reuse_connections",
                "rules",
            ],
            provider: None,
            thresholds: seconds(5, 10, 60),
            build: |v, raw, _, table| v.http(raw, table).map(Check::Http),
        },
        CheckKind {
            name: "smtp",
            is_preset: false,
            keys: smtp_keys,
            provider: None,
            thresholds: seconds(5, 15, 60),
            build: |v, raw, _, table| v.smtp(raw, table),
        },
        CheckKind {
            name: "tcp",
            is_preset: false,
            keys: vec!["address"],
            provider: None,
            thresholds: seconds(5, 10, 60),
            build: |v, raw, _, table| v.tcp(raw, table),
        },
        CheckKind {
            name: "dns",
            is_preset: false,
            keys: vec!["name", "record", "server", "expect"],
            provider: None,
            thresholds: seconds(3, 5, 60),
            build: |v, raw, _, table| v.dns(raw, table),
        },
        CheckKind {
            name: "heartbeat",
            is_preset: false,
            keys: vec!["token", "grace"],
            provider: None,
            // One missed beat is the outage; a trial a minute later sees whether beats resumed.
            thresholds: seconds(1, 10, 60),
            build: |v, raw, _, table| v.heartbeat(raw, table),
        },
    ]);
    kinds
});

/// The preset (`preset = NAME`) or kind (`kind = NAME`) called `name`.
pub(crate) fn find(name: &str, is_preset: bool) -> Option<&'static CheckKind> {
    CHECK_KINDS
        .iter()
        .find(|kind| kind.name == name && kind.is_preset == is_preset)
}

/// The names written after `preset =` (or `kind =`), in table order.
pub(crate) fn names(presets: bool) -> Vec<&'static str> {
    CHECK_KINDS
        .iter()
        .filter(|kind| kind.is_preset == presets)
        .map(|kind| kind.name)
        .collect()
}

/// The keys some check takes (any preset or kind).
pub(crate) fn every_check_key() -> impl Iterator<Item = &'static str> {
    CHECK_KINDS
        .iter()
        .flat_map(|kind| kind.keys.iter().copied())
}

impl CheckKind {
    /// The breaker's policy when the file sets no threshold.
    pub(crate) fn default_policy(&self) -> Policy {
        let (failures, timeout, reset) = self.thresholds;
        Policy {
            failure_threshold: failures,
            timeout,
            reset_timeout: reset,
            ..Policy::default()
        }
    }

    /// `preset` or `kind`, as the file says it.
    pub(crate) fn label(&self) -> &'static str {
        if self.is_preset { "preset" } else { "kind" }
    }

    /// The operations a rule of this kind's services may name.
    pub(crate) fn operation_names(&self) -> Vec<&'static str> {
        match self.provider {
            Some(provider) => provider.operation_names(),
            None => vec![crate::provider::OTHER],
        }
    }

    pub(super) fn build(
        &self,
        validator: &mut Validator<'_>,
        raw: &RawService,
        table: Range<usize>,
    ) -> Option<Check> {
        (self.build)(validator, raw, self, table)
    }
}

impl Validator<'_> {
    fn smtp(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(server) = &raw.server else {
            self.problems
                .at(table, "an smtp check needs `server` (HOST:PORT)");
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
            ca: None,
        }))
    }

    fn heartbeat(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        if let Some(schedule) = &raw.schedule {
            self.problems.at(
                schedule.span(),
                "a heartbeat takes `every` (the longest expected gap between beats), not a cron `schedule`",
            );
            return None;
        }
        let Some(every) = &raw.every else {
            self.problems.at(
                table,
                "a heartbeat needs `every`: the longest expected gap between two beats, e.g. \"30m\"",
            );
            return None;
        };
        let Some(token) = &raw.token else {
            self.problems.at(
                table,
                "a heartbeat needs `token`: the bearer token its beats carry, e.g. \"${MPESA_CALLBACK_HEARTBEAT_TOKEN}\"",
            );
            return None;
        };
        let token = self.needed_secret(
            "token",
            token,
            "a heartbeat's beats prove who sent them with it",
        )?;
        Some(Check::Heartbeat(HeartbeatCheck {
            every: self.duration("every", Some(every), DEFAULT_EVERY, false),
            grace: self.duration("grace", raw.grace.as_ref(), DEFAULT_GRACE, true),
            token,
            // Set once `[alerts] state_dir` is known.
            state_file: PathBuf::new(),
        }))
    }

    fn dns(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(name) = &raw.name else {
            self.problems.at(
                table,
                "a dns check needs `name`: the host name to look up, e.g. \"api.safaricom.co.ke\"",
            );
            return None;
        };
        let record = match &raw.record {
            None => DnsRecord::A,
            Some(record) => {
                let allowed: Vec<&str> = DnsRecord::ALL.iter().map(|(name, _)| *name).collect();
                let text = self.one_of("record", record, &allowed)?;
                DnsRecord::ALL
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, record)| *record)?
            }
        };
        let server = match &raw.server {
            None => None,
            Some(server) => {
                let text = server.get_ref();
                let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
                    text.parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, 53))
                });
                if parsed.is_none() {
                    self.problems.at(
                        server.span(),
                        format!("server \"{text}\" is not an address: write IP or IP:PORT, e.g. \"1.1.1.1\" or \"127.0.0.1:5353\""),
                    );
                    return None;
                }
                parsed
            }
        };
        let expect = raw
            .expect
            .as_ref()
            .map(|list| {
                list.get_ref()
                    .iter()
                    .map(|value| value.get_ref().clone())
                    .collect()
            })
            .unwrap_or_default();
        Some(Check::Dns(DnsCheck {
            name: name.get_ref().trim_end_matches('.').to_string(),
            record,
            server,
            expect,
        }))
    }

    fn tcp(&mut self, raw: &RawService, table: Range<usize>) -> Option<Check> {
        let Some(address) = &raw.address else {
            self.problems
                .at(table, "a tcp check needs `address` (HOST:PORT)");
            return None;
        };
        let expanded = self.expand("address", address)?;
        self.host_port_text("address", &expanded, address.span())?;
        Some(Check::Tcp(TcpCheck { address: expanded }))
    }
}
