//! One entry per check kind and preset: the keys it takes, its defaults (the seed's
//! thresholds) and which check it builds from the file. The HTTP presets come from the
//! provider modules (`src/provider/`); nothing else in the config keeps a list of them.

use std::sync::LazyLock;
use std::time::Duration;

use crate::breaker::Policy;
use crate::provider::{self, Provider};

/// Which check a kind builds from a service's table (validation builds it: `validate::checks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckBuilder {
    /// A provider's own check, from its preset.
    Provider,
    /// An SMTP server.
    Smtp,
    /// Any HTTP endpoint.
    Http,
    /// A TCP connect.
    Tcp,
    /// A DNS lookup.
    Dns,
    /// Beats the service sends.
    Heartbeat,
}

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
    /// Which check is built from the service's table.
    pub(crate) builder: CheckBuilder,
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
            builder: CheckBuilder::Provider,
        })
        .collect();
    kinds.extend([
        CheckKind {
            name: "smtp",
            is_preset: true,
            keys: smtp_keys.clone(),
            provider: None,
            thresholds: seconds(5, 15, 60),
            builder: CheckBuilder::Smtp,
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
                "operations",
            ],
            provider: None,
            thresholds: seconds(5, 10, 60),
            builder: CheckBuilder::Http,
        },
        CheckKind {
            name: "smtp",
            is_preset: false,
            keys: smtp_keys,
            provider: None,
            thresholds: seconds(5, 15, 60),
            builder: CheckBuilder::Smtp,
        },
        CheckKind {
            name: "tcp",
            is_preset: false,
            keys: vec!["address"],
            provider: None,
            thresholds: seconds(5, 10, 60),
            builder: CheckBuilder::Tcp,
        },
        CheckKind {
            name: "dns",
            is_preset: false,
            keys: vec!["name", "record", "server", "expect"],
            provider: None,
            thresholds: seconds(3, 5, 60),
            builder: CheckBuilder::Dns,
        },
        CheckKind {
            name: "heartbeat",
            is_preset: false,
            keys: vec!["token", "grace"],
            provider: None,
            // One missed beat is the outage; a trial a minute later sees whether beats resumed.
            thresholds: seconds(1, 10, 60),
            builder: CheckBuilder::Heartbeat,
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
}
