//! The file as written: serde structs that only check types and keep each value's place in the
//! file, so validation can point at it. Unknown keys are found, all at once, by `keys`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<Spanned<String>>,
    pub(crate) admin_token: Option<Spanned<String>>,
    pub(crate) slow_call: Option<Spanned<String>>,
    pub(crate) shutdown_grace: Option<Spanned<String>>,
    pub(crate) max_connections: Option<Spanned<i64>>,
    pub(crate) header_read_timeout: Option<Spanned<String>>,
    pub(crate) idle_timeout: Option<Spanned<String>>,
    pub(crate) proxy_listen: Option<Spanned<String>>,
    pub(crate) proxy_pool_idle: Option<Spanned<String>>,
    pub(crate) report_token: Option<Spanned<String>>,
    pub(crate) connectivity: Option<RawList>,
    pub(crate) shard: Option<Spanned<String>>,
    pub(crate) check_threads: Option<Spanned<i64>>,
}

/// `[services.NAME]`: every key any preset or kind takes; validation checks which apply.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawService {
    pub(crate) preset: Option<Spanned<String>>,
    pub(crate) kind: Option<Spanned<String>>,

    pub(crate) every: Option<Spanned<String>>,
    pub(crate) schedule: Option<Spanned<String>>,

    pub(crate) failure_threshold: Option<Spanned<i64>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) reset_timeout: Option<Spanned<String>>,
    pub(crate) half_open_max_calls: Option<Spanned<i64>>,
    pub(crate) success_threshold: Option<Spanned<i64>>,
    pub(crate) slow_call: Option<Spanned<String>>,
    pub(crate) window_size: Option<Spanned<i64>>,
    pub(crate) minimum_calls: Option<Spanned<i64>>,
    pub(crate) failure_rate_threshold: Option<Spanned<f64>>,
    pub(crate) slow_call_rate_threshold: Option<Spanned<f64>>,
    pub(crate) backoff_multiplier: Option<Spanned<f64>>,
    pub(crate) backoff_max: Option<Spanned<String>>,
    pub(crate) backoff_jitter: Option<Spanned<f64>>,

    pub(crate) base_url: Option<Spanned<String>>,
    pub(crate) consumer_key: Option<Spanned<String>>,
    pub(crate) consumer_secret: Option<Spanned<String>>,
    pub(crate) username: Option<Spanned<String>>,
    pub(crate) api_key: Option<Spanned<String>>,
    pub(crate) min_balance: Option<Spanned<f64>>,
    pub(crate) phone_number_id: Option<Spanned<String>>,
    pub(crate) access_token: Option<Spanned<String>>,
    pub(crate) api_version: Option<Spanned<String>>,
    pub(crate) environment: Option<Spanned<String>>,
    pub(crate) ipn_id: Option<Spanned<String>>,
    pub(crate) min_quality: Option<Spanned<String>>,
    pub(crate) failing_statuses: Option<RawList>,

    pub(crate) server: Option<Spanned<String>>,
    pub(crate) tls: Option<Spanned<String>>,
    pub(crate) password: Option<Spanned<String>>,

    pub(crate) url: Option<Spanned<String>>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(crate) body: Option<Spanned<String>>,
    pub(crate) expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(crate) body_contains: Option<Spanned<String>>,
    pub(crate) json_field: Option<Spanned<String>>,
    pub(crate) json_equals: Option<Spanned<toml::Value>>,

    pub(crate) address: Option<Spanned<String>>,
    pub(crate) upstream: Option<Spanned<String>>,

    pub(crate) token: Option<Spanned<String>>,
    pub(crate) grace: Option<Spanned<String>>,
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) reuse_connections: Option<Spanned<bool>>,
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) record: Option<Spanned<String>>,
    pub(crate) expect: Option<RawList>,

    pub(crate) notify_on: Option<RawList>,
    pub(crate) checks: Option<Spanned<String>>,
    pub(crate) report_token: Option<Spanned<String>>,
    pub(crate) disabled: Option<Spanned<bool>>,
    pub(crate) depends_on: Option<RawList>,
    pub(crate) max_concurrent: Option<Spanned<i64>>,
    pub(crate) max_wait: Option<Spanned<String>>,
    pub(crate) fallback: Option<Spanned<String>>,
    /// `[[services.NAME.rules]]`.
    pub(crate) rules: Option<Spanned<Vec<Spanned<crate::provider::rules::RawRule>>>>,
    /// `per_service` or `per_operation`.
    pub(crate) breakers: Option<Spanned<String>>,
    /// `[[services.NAME.operations]]`.
    pub(crate) operations: Option<Spanned<Vec<Spanned<RawOperation>>>>,
}

/// One `[[services.NAME.operations]]` entry (unknown keys are found by `keys`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawOperation {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) path: Option<Spanned<String>>,
}

impl RawService {
    /// The text value of a provider's credential or setting `key`.
    pub(crate) fn text_key(&self, key: &str) -> Option<&Spanned<String>> {
        match key {
            "consumer_key" => self.consumer_key.as_ref(),
            "consumer_secret" => self.consumer_secret.as_ref(),
            "username" => self.username.as_ref(),
            "api_key" => self.api_key.as_ref(),
            "phone_number_id" => self.phone_number_id.as_ref(),
            "access_token" => self.access_token.as_ref(),
            "api_version" => self.api_version.as_ref(),
            "ipn_id" => self.ipn_id.as_ref(),
            "min_quality" => self.min_quality.as_ref(),
            _ => None,
        }
    }

    /// The number value of a provider's setting `key`.
    pub(crate) fn number_key(&self, key: &str) -> Option<&Spanned<f64>> {
        match key {
            "min_balance" => self.min_balance.as_ref(),
            _ => None,
        }
    }

    /// The list value of a provider's setting `key`.
    pub(crate) fn list_key(&self, key: &str) -> Option<&RawList> {
        match key {
            "failing_statuses" => self.failing_statuses.as_ref(),
            _ => None,
        }
    }

    /// The check-specific keys present, with their places, for the does-it-apply check.
    pub(crate) fn check_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
            value.as_ref().map(Spanned::span)
        }
        [
            ("base_url", span(&self.base_url)),
            ("consumer_key", span(&self.consumer_key)),
            ("consumer_secret", span(&self.consumer_secret)),
            ("username", span(&self.username)),
            ("api_key", span(&self.api_key)),
            ("min_balance", span(&self.min_balance)),
            ("phone_number_id", span(&self.phone_number_id)),
            ("access_token", span(&self.access_token)),
            ("api_version", span(&self.api_version)),
            ("environment", span(&self.environment)),
            ("ipn_id", span(&self.ipn_id)),
            ("min_quality", span(&self.min_quality)),
            ("failing_statuses", span(&self.failing_statuses)),
            ("rules", span(&self.rules)),
            ("operations", span(&self.operations)),
            ("server", span(&self.server)),
            ("tls", span(&self.tls)),
            ("password", span(&self.password)),
            ("url", span(&self.url)),
            ("method", span(&self.method)),
            ("headers", span(&self.headers)),
            ("body", span(&self.body)),
            ("expect_status", span(&self.expect_status)),
            ("body_contains", span(&self.body_contains)),
            ("json_field", span(&self.json_field)),
            ("json_equals", span(&self.json_equals)),
            ("address", span(&self.address)),
            ("upstream", span(&self.upstream)),
            ("token", span(&self.token)),
            ("ca_file", span(&self.ca_file)),
            ("reuse_connections", span(&self.reuse_connections)),
            ("name", span(&self.name)),
            ("record", span(&self.record)),
            ("expect", span(&self.expect)),
            ("grace", span(&self.grace)),
        ]
        .into_iter()
        .filter_map(|(key, span)| span.map(|span| (key, span)))
        .collect()
    }
}

/// A list of strings with its place.
pub(crate) type RawList = Spanned<Vec<Spanned<String>>>;

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawAlerts {
    pub(crate) state_dir: Option<Spanned<String>>,
    pub(crate) notify_on: Option<RawList>,
    pub(crate) min_interval: Option<Spanned<String>>,
    pub(crate) reminder_every: Option<Spanned<String>>,
    pub(crate) group_wait: Option<Spanned<String>>,
    pub(crate) queue_size: Option<Spanned<i64>>,
    pub(crate) max_attempts: Option<Spanned<i64>>,
    pub(crate) dashboard_url: Option<Spanned<String>>,
    pub(crate) api_url: Option<Spanned<String>>,
    pub(crate) runbook_url: Option<Spanned<String>>,
}

/// `[[maintenance]]`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawMaintenance {
    pub(crate) services: Option<RawList>,
    pub(crate) schedule: Option<Spanned<String>>,
    pub(crate) duration: Option<Spanned<String>>,
    pub(crate) start: Option<Spanned<String>>,
    pub(crate) end: Option<Spanned<String>>,
    pub(crate) reason: Option<Spanned<String>>,
}
