//! Every metric name breakerd exports, and the only place they are written. Callers get a
//! [`ServiceMetrics`] handle per service (resolved once, so recording a call is a few atomic
//! operations) and never touch a metric family directly.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::breaker::{Outcome, State};
use crate::probe::FailureReason;

/// Latency buckets, 5 ms to 60 s.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// The `state` label values.
pub const STATE_LABELS: [&str; 3] = ["closed", "open", "half_open"];
/// The `outcome` label values of `breakerd_calls_total`.
pub const OUTCOME_LABELS: [&str; 4] = ["success", "failure", "timeout", "rejected"];
/// The `outcome` label values of `breakerd_alerts_total`.
pub const ALERT_OUTCOME_LABELS: [&str; 3] = ["sent", "failed", "dropped"];
/// The `(from, to)` pairs of `breakerd_state_transitions_total` present from start-up.
pub const TRANSITION_LABELS: [(&str, &str); 5] = [
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
    ("open", "closed"),
];
/// Content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceStateLabels {
    service: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceOutcomeLabels {
    service: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    service: String,
    from: String,
    to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcomeLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// The metric families and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    breaker_state: Family<ServiceStateLabels, Gauge>,
    calls: Family<ServiceOutcomeLabels, Counter>,
    call_duration: Family<ServiceOutcomeLabels, Histogram>,
    slow_calls: Family<ServiceLabel, Counter>,
    transitions: Family<TransitionLabels, Counter>,
    consecutive_failures: Family<ServiceLabel, Gauge>,
    failure_threshold: Family<ServiceLabel, Gauge>,
    timeout: Family<ServiceLabel, FloatGauge>,
    reset_timeout: Family<ServiceLabel, FloatGauge>,
    next_attempt: Family<ServiceLabel, FloatGauge>,
    probe_success: Family<ServiceLabel, Gauge>,
    probe_last_run: Family<ServiceLabel, FloatGauge>,
    probe_failures: Family<ReasonLabels, Counter>,
    probe_missed_ticks: Family<ServiceLabel, Counter>,
    alerts: Family<ChannelOutcomeLabels, Counter>,
    reload_successful: Gauge,
    reload_success_time: FloatGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `breakerd_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("breakerd");
        let metrics = Self {
            breaker_state: Family::default(),
            calls: Family::default(),
            call_duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            slow_calls: Family::default(),
            transitions: Family::default(),
            consecutive_failures: Family::default(),
            failure_threshold: Family::default(),
            timeout: Family::default(),
            reset_timeout: Family::default(),
            next_attempt: Family::default(),
            probe_success: Family::default(),
            probe_last_run: Family::default(),
            probe_failures: Family::default(),
            probe_missed_ticks: Family::default(),
            alerts: Family::default(),
            reload_successful: Gauge::default(),
            reload_success_time: FloatGauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "breaker_state",
            "Circuit breaker state: 1 for the current state, 0 for the others",
            metrics.breaker_state.clone(),
        );
        registry.register(
            "calls",
            "Calls through the breaker, by outcome",
            metrics.calls.clone(),
        );
        registry.register_with_unit(
            "call_duration",
            "Latency of calls that ran (rejected calls have none)",
            Unit::Seconds,
            metrics.call_duration.clone(),
        );
        registry.register(
            "slow_calls",
            "Calls slower than slow_call",
            metrics.slow_calls.clone(),
        );
        registry.register(
            "state_transitions",
            "Breaker state changes",
            metrics.transitions.clone(),
        );
        registry.register(
            "consecutive_failures",
            "Failures in a row right now",
            metrics.consecutive_failures.clone(),
        );
        registry.register(
            "failure_threshold",
            "Configured consecutive failures that open the breaker",
            metrics.failure_threshold.clone(),
        );
        registry.register_with_unit(
            "timeout",
            "Configured call timeout",
            Unit::Seconds,
            metrics.timeout.clone(),
        );
        registry.register_with_unit(
            "reset_timeout",
            "Configured time an open breaker waits before a trial call",
            Unit::Seconds,
            metrics.reset_timeout.clone(),
        );
        registry.register_with_unit(
            "next_attempt_timestamp",
            "When an open breaker admits its next trial call (Unix time); 0 when not open",
            Unit::Seconds,
            metrics.next_attempt.clone(),
        );
        registry.register(
            "probe_success",
            "1 if the last synthetic check succeeded",
            metrics.probe_success.clone(),
        );
        registry.register_with_unit(
            "probe_last_run_timestamp",
            "When the last synthetic check ran (Unix time)",
            Unit::Seconds,
            metrics.probe_last_run.clone(),
        );
        registry.register(
            "probe_failures",
            "Failed synthetic checks, by reason",
            metrics.probe_failures.clone(),
        );
        registry.register(
            "probe_missed_ticks",
            "Scheduled checks skipped because the previous one was still running",
            metrics.probe_missed_ticks.clone(),
        );
        registry.register(
            "alerts",
            "Alert notifications, by channel and outcome",
            metrics.alerts.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "Whether the last configuration reload attempt was successful",
            metrics.reload_successful.clone(),
        );
        registry.register_with_unit(
            "config_last_reload_success_timestamp",
            "Timestamp of the last successful configuration reload",
            Unit::Seconds,
            metrics.reload_success_time.clone(),
        );
        let build_info: Family<VersionLabel, Gauge> = Family::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "breakerd's version; always 1", build_info);
        Self {
            registry,
            ..metrics
        }
    }

    /// The handles of one service, with every known label combination created at zero and
    /// the configured values set.
    pub fn service(
        &self,
        name: &str,
        failure_threshold: u32,
        timeout: Duration,
        reset_timeout: Duration,
    ) -> ServiceMetrics {
        let service = || ServiceLabel {
            service: name.to_string(),
        };
        let outcome = |outcome: &str| ServiceOutcomeLabels {
            service: name.to_string(),
            outcome: outcome.to_string(),
        };
        let handles = ServiceMetrics {
            state: STATE_LABELS.map(|state| {
                self.breaker_state
                    .get_or_create(&ServiceStateLabels {
                        service: name.to_string(),
                        state: state.to_string(),
                    })
                    .clone()
            }),
            calls: OUTCOME_LABELS.map(|label| self.calls.get_or_create(&outcome(label)).clone()),
            durations: ["success", "failure", "timeout"]
                .map(|label| self.call_duration.get_or_create(&outcome(label)).clone()),
            slow_calls: self.slow_calls.get_or_create(&service()).clone(),
            transitions: TRANSITION_LABELS.map(|(from, to)| {
                self.transitions
                    .get_or_create(&TransitionLabels {
                        service: name.to_string(),
                        from: from.to_string(),
                        to: to.to_string(),
                    })
                    .clone()
            }),
            consecutive_failures: self.consecutive_failures.get_or_create(&service()).clone(),
            next_attempt: self.next_attempt.get_or_create(&service()).clone(),
            probe_success: self.probe_success.get_or_create(&service()).clone(),
            probe_last_run: self.probe_last_run.get_or_create(&service()).clone(),
            probe_failures: FailureReason::ALL.map(|reason| {
                self.probe_failures
                    .get_or_create(&ReasonLabels {
                        service: name.to_string(),
                        reason: reason.as_str().to_string(),
                    })
                    .clone()
            }),
            missed_ticks: self.probe_missed_ticks.get_or_create(&service()).clone(),
            name: name.to_string(),
        };
        self.failure_threshold
            .get_or_create(&service())
            .set(i64::from(failure_threshold));
        self.timeout
            .get_or_create(&service())
            .set(timeout.as_secs_f64());
        self.reset_timeout
            .get_or_create(&service())
            .set(reset_timeout.as_secs_f64());
        handles.set_state(State::Closed, None);
        handles
    }

    /// Removes every series of `name` (a service gone from the config).
    pub fn remove_service(&self, name: &str) {
        let service = ServiceLabel {
            service: name.to_string(),
        };
        for state in STATE_LABELS {
            self.breaker_state.remove(&ServiceStateLabels {
                service: name.to_string(),
                state: state.to_string(),
            });
        }
        for outcome in OUTCOME_LABELS {
            let labels = ServiceOutcomeLabels {
                service: name.to_string(),
                outcome: outcome.to_string(),
            };
            self.calls.remove(&labels);
            self.call_duration.remove(&labels);
        }
        for (from, to) in TRANSITION_LABELS {
            self.transitions.remove(&TransitionLabels {
                service: name.to_string(),
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        for reason in FailureReason::ALL {
            self.probe_failures.remove(&ReasonLabels {
                service: name.to_string(),
                reason: reason.as_str().to_string(),
            });
        }
        for family in [&self.slow_calls, &self.probe_missed_ticks] {
            family.remove(&service);
        }
        for family in [
            &self.consecutive_failures,
            &self.failure_threshold,
            &self.probe_success,
        ] {
            family.remove(&service);
        }
        for family in [
            &self.timeout,
            &self.reset_timeout,
            &self.next_attempt,
            &self.probe_last_run,
        ] {
            family.remove(&service);
        }
    }

    /// Creates the alert series of `channel` at zero.
    pub fn register_alert_channel(&self, channel: &str) {
        for outcome in ALERT_OUTCOME_LABELS {
            let labels = ChannelOutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            };
            drop(self.alerts.get_or_create(&labels));
        }
    }

    /// Counts one notification of `channel` with `outcome` (`sent`, `failed`, `dropped`).
    pub fn alert(&self, channel: &str, outcome: &str) {
        self.alerts
            .get_or_create(&ChannelOutcomeLabels {
                channel: channel.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records a configuration (re)load attempt.
    pub fn config_loaded(&self, successful: bool) {
        self.reload_successful.set(i64::from(successful));
        if successful {
            self.reload_success_time
                .set(unix_seconds(SystemTime::now()));
        }
    }

    /// OpenMetrics text, as Prometheus prefers when it scrapes.
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for `curl` and `promtool check metrics`:
    /// the same samples, with counter families named by their `_total` samples and without
    /// OpenMetrics' `# UNIT` and `# EOF` lines.
    pub fn render_prometheus_text(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// Rewrites OpenMetrics text into the Prometheus text format.
fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(help) = help.take() {
                let text = help.split_once(' ').map_or("", |(_, text)| text);
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// One service's metric handles.
#[derive(Clone, Debug)]
pub struct ServiceMetrics {
    name: String,
    state: [Gauge; 3],
    calls: [Counter; 4],
    durations: [Histogram; 3],
    slow_calls: Counter,
    transitions: [Counter; 5],
    consecutive_failures: Gauge,
    next_attempt: FloatGauge,
    probe_success: Gauge,
    probe_last_run: FloatGauge,
    probe_failures: [Counter; 11],
    missed_ticks: Counter,
}

impl ServiceMetrics {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts one call and its latency.
    pub fn call(&self, outcome: Outcome, duration: Option<Duration>, slow: bool) {
        let index = match outcome {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Timeout => 2,
            Outcome::Rejected => 3,
            // Ignored results are not a provider outcome; the breaker's stats count them.
            Outcome::Ignored => return,
        };
        self.calls[index].inc();
        if let (Some(duration), Some(histogram)) = (duration, self.durations.get(index)) {
            histogram.observe(duration.as_secs_f64());
        }
        if slow {
            self.slow_calls.inc();
        }
    }

    /// Sets the state gauges and the next attempt.
    pub fn set_state(&self, state: State, next_attempt: Option<SystemTime>) {
        let current = state_label_index(state);
        for (index, gauge) in self.state.iter().enumerate() {
            gauge.set(i64::from(index == current));
        }
        self.next_attempt
            .set(next_attempt.map_or(0.0, unix_seconds));
    }

    /// Counts a change of state.
    pub fn transition(&self, from: State, to: State) {
        let pair = (
            STATE_LABELS[state_label_index(from)],
            STATE_LABELS[state_label_index(to)],
        );
        if let Some(index) = TRANSITION_LABELS.iter().position(|known| *known == pair) {
            self.transitions[index].inc();
        }
    }

    /// Sets the consecutive-failures gauge.
    pub fn set_consecutive_failures(&self, count: u32) {
        self.consecutive_failures.set(i64::from(count));
    }

    /// Records a check that ran: success, or failure with its reason.
    pub fn probe(&self, failure: Option<FailureReason>, at: SystemTime) {
        self.probe_success.set(i64::from(failure.is_none()));
        self.probe_last_run.set(unix_seconds(at));
        if let Some(reason) = failure
            && let Some(index) = FailureReason::ALL.iter().position(|known| *known == reason)
        {
            self.probe_failures[index].inc();
        }
    }

    /// Counts scheduled checks skipped because the previous one was still running.
    pub fn missed_ticks(&self, count: u64) {
        self.missed_ticks.inc_by(count);
    }
}

/// The metric's state label for a breaker state: forced open counts as open, disabled as
/// closed (calls pass).
fn state_label_index(state: State) -> usize {
    match state {
        State::Closed | State::Disabled => 0,
        State::Open | State::ForcedOpen => 1,
        State::HalfOpen => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_and_label_is_present_from_the_start() {
        let metrics = Metrics::new();
        let _mpesa = metrics.service(
            "mpesa",
            3,
            Duration::from_secs(30),
            Duration::from_secs(120),
        );
        metrics.register_alert_channel("webhook");
        metrics.config_loaded(true);
        let text = metrics.render_prometheus_text();
        for line in [
            "breakerd_breaker_state{service=\"mpesa\",state=\"closed\"} 1",
            "breakerd_breaker_state{service=\"mpesa\",state=\"open\"} 0",
            "breakerd_breaker_state{service=\"mpesa\",state=\"half_open\"} 0",
            "breakerd_calls_total{service=\"mpesa\",outcome=\"rejected\"} 0",
            "breakerd_call_duration_seconds_bucket{le=\"0.005\",service=\"mpesa\",outcome=\"success\"} 0",
            "breakerd_slow_calls_total{service=\"mpesa\"} 0",
            "breakerd_state_transitions_total{service=\"mpesa\",from=\"closed\",to=\"open\"} 0",
            "breakerd_consecutive_failures{service=\"mpesa\"} 0",
            "breakerd_failure_threshold{service=\"mpesa\"} 3",
            "breakerd_timeout_seconds{service=\"mpesa\"} 30.0",
            "breakerd_reset_timeout_seconds{service=\"mpesa\"} 120.0",
            "breakerd_next_attempt_timestamp_seconds{service=\"mpesa\"} 0.0",
            "breakerd_probe_success{service=\"mpesa\"} 0",
            "breakerd_probe_last_run_timestamp_seconds{service=\"mpesa\"} 0.0",
            "breakerd_probe_failures_total{service=\"mpesa\",reason=\"auth\"} 0",
            "breakerd_alerts_total{channel=\"webhook\",outcome=\"dropped\"} 0",
            "breakerd_config_last_reload_successful 1",
            "breakerd_build_info{version=\"",
            "# TYPE breakerd_calls_total counter",
            "# HELP breakerd_calls_total Calls through the breaker, by outcome.",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        assert!(metrics.render_openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn recording_moves_the_right_series_and_removal_drops_them() {
        let metrics = Metrics::new();
        let kcb = metrics.service("kcb", 3, Duration::from_secs(30), Duration::from_secs(120));
        kcb.call(Outcome::Timeout, Some(Duration::from_secs(30)), true);
        kcb.call(Outcome::Rejected, None, false);
        kcb.set_state(
            State::Open,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        );
        kcb.transition(State::Closed, State::Open);
        kcb.probe(
            Some(FailureReason::Timeout),
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        );
        let text = metrics.render_prometheus_text();
        for line in [
            "breakerd_calls_total{service=\"kcb\",outcome=\"timeout\"} 1",
            "breakerd_calls_total{service=\"kcb\",outcome=\"rejected\"} 1",
            "breakerd_call_duration_seconds_bucket{le=\"30.0\",service=\"kcb\",outcome=\"timeout\"} 1",
            "breakerd_call_duration_seconds_bucket{le=\"10.0\",service=\"kcb\",outcome=\"timeout\"} 0",
            "breakerd_slow_calls_total{service=\"kcb\"} 1",
            "breakerd_breaker_state{service=\"kcb\",state=\"open\"} 1",
            "breakerd_breaker_state{service=\"kcb\",state=\"closed\"} 0",
            "breakerd_next_attempt_timestamp_seconds{service=\"kcb\"} 1700000000.0",
            "breakerd_state_transitions_total{service=\"kcb\",from=\"closed\",to=\"open\"} 1",
            "breakerd_probe_failures_total{service=\"kcb\",reason=\"timeout\"} 1",
            "breakerd_probe_last_run_timestamp_seconds{service=\"kcb\"} 5.0",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        metrics.remove_service("kcb");
        assert!(!metrics.render_prometheus_text().contains("service=\"kcb\""));
    }
}
