//! Writes the per-service families in the Prometheus text format or in OpenMetrics, straight
//! into one buffer: each line is a few copies of pre-escaped pieces and one number, which is
//! what keeps `/metrics` for 1,000 services within a few milliseconds.

use super::service::ServiceSeries;
use super::{DURATION_BUCKETS, OUTCOME_LABELS, STATE_LABELS, TRANSITION_LABELS};
use crate::probe::FailureReason;

/// The two text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text 0.0.4: counters declared by their `_total` name, no `# UNIT`.
    Prometheus,
    /// OpenMetrics 1.0: counters declared without `_total`, `# UNIT` for units.
    OpenMetrics,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Le labels of the histogram buckets, written once.
const LE_LABELS: [&str; DURATION_BUCKETS.len()] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0",
    "60.0",
];

struct Writer<'a> {
    out: &'a mut String,
    format: Format,
    ints: itoa::Buffer,
    floats: ryu::Buffer,
}

impl Writer<'_> {
    /// `# HELP`, `# TYPE` (and `# UNIT` in OpenMetrics) for the family `name`.
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let counter_in_prometheus = kind == Kind::Counter && self.format == Format::Prometheus;
        for (tag, text) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
            self.out.push_str(tag);
            self.out.push_str(name);
            if counter_in_prometheus {
                self.out.push_str("_total");
            }
            self.out.push(' ');
            self.out.push_str(text);
            self.out.push('\n');
        }
        if self.format == Format::OpenMetrics && name.ends_with("_seconds") {
            self.out.push_str("# UNIT ");
            self.out.push_str(name);
            self.out.push_str(" seconds\n");
        }
    }

    /// `name{service="..."` — the caller adds any further labels, then [`Self::close_int`]
    /// or [`Self::close_float`].
    fn open(&mut self, name: &str, suffix: &str, service: &str) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push_str("{service=\"");
        self.out.push_str(service);
        self.out.push('"');
    }

    fn label(&mut self, key: &str, value: &str) {
        self.out.push(',');
        self.out.push_str(key);
        self.out.push_str("=\"");
        self.out.push_str(value);
        self.out.push('"');
    }

    fn close_int(&mut self, value: u64) {
        self.out.push_str("} ");
        self.out.push_str(self.ints.format(value));
        self.out.push('\n');
    }

    fn close_float(&mut self, value: f64) {
        self.out.push_str("} ");
        if value.is_finite() {
            self.out.push_str(self.floats.format_finite(value));
        } else if value.is_nan() {
            self.out.push_str("NaN");
        } else if value > 0.0 {
            self.out.push_str("+Inf");
        } else {
            self.out.push_str("-Inf");
        }
        self.out.push('\n');
    }

    /// A whole family with one integer sample per service (`_total` added for counters).
    fn ints(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        services: &[&ServiceSeries],
        value: fn(&ServiceSeries) -> u64,
    ) {
        self.family(name, kind, help);
        let suffix = if kind == Kind::Counter { "_total" } else { "" };
        for service in services {
            self.open(name, suffix, service.label());
            self.close_int(value(service));
        }
    }

    /// A whole gauge family with one float sample per service.
    fn floats(
        &mut self,
        name: &str,
        help: &str,
        services: &[&ServiceSeries],
        value: fn(&ServiceSeries) -> f64,
    ) {
        self.family(name, Kind::Gauge, help);
        for service in services {
            self.open(name, "", service.label());
            self.close_float(value(service));
        }
    }
}

/// Appends every per-service family for `services` (sorted by name) to `out`.
pub(crate) fn write_service_families(
    out: &mut String,
    format: Format,
    services: &[&ServiceSeries],
    held: &super::HeldServices,
) {
    let mut w = Writer {
        out,
        format,
        ints: itoa::Buffer::new(),
        floats: ryu::Buffer::new(),
    };

    w.family(
        "breakerd_breaker_state",
        Kind::Gauge,
        "Circuit breaker state: 1 for the current state, 0 for the others.",
    );
    for service in services {
        let current = service.state_index();
        for (index, state) in STATE_LABELS.iter().enumerate() {
            w.open("breakerd_breaker_state", "", service.label());
            w.label("state", state);
            w.close_int(u64::from(index == current));
        }
    }

    w.family(
        "breakerd_calls",
        Kind::Counter,
        "Calls through the breaker, by outcome.",
    );
    for service in services {
        for source in service.sources() {
            for (outcome, count) in OUTCOME_LABELS.iter().zip(service.calls(*source)) {
                w.open("breakerd_calls", "_total", service.label());
                w.label("outcome", outcome);
                w.label("source", source.as_str());
                w.close_int(count);
            }
        }
    }

    w.family(
        "breakerd_call_duration_seconds",
        Kind::Histogram,
        "Latency of calls that ran (rejected calls have none).",
    );
    for service in services {
        for source in service.sources() {
            let source_label = source.as_str();
            for (outcome, histogram) in service.histograms(*source) {
                let reading = histogram.read();
                for (le, count) in LE_LABELS.iter().zip(reading.cumulative) {
                    w.open("breakerd_call_duration_seconds", "_bucket", service.label());
                    w.label("outcome", outcome);
                    w.label("source", source_label);
                    w.label("le", le);
                    w.close_int(count);
                }
                w.open("breakerd_call_duration_seconds", "_bucket", service.label());
                w.label("outcome", outcome);
                w.label("source", source_label);
                w.label("le", "+Inf");
                w.close_int(reading.count);
                w.open("breakerd_call_duration_seconds", "_sum", service.label());
                w.label("outcome", outcome);
                w.label("source", source_label);
                w.close_float(reading.sum);
                w.open("breakerd_call_duration_seconds", "_count", service.label());
                w.label("outcome", outcome);
                w.label("source", source_label);
                w.close_int(reading.count);
            }
        }
    }

    w.family(
        "breakerd_slow_calls",
        Kind::Counter,
        "Calls slower than slow_call.",
    );
    for service in services {
        for source in service.sources() {
            w.open("breakerd_slow_calls", "_total", service.label());
            w.label("source", source.as_str());
            w.close_int(service.slow_calls(*source));
        }
    }

    w.family(
        "breakerd_state_transitions",
        Kind::Counter,
        "Breaker state changes.",
    );
    for service in services {
        for ((from, to), count) in TRANSITION_LABELS.iter().zip(service.transitions()) {
            w.open("breakerd_state_transitions", "_total", service.label());
            w.label("from", from);
            w.label("to", to);
            w.close_int(count);
        }
    }

    w.ints(
        "breakerd_consecutive_failures",
        Kind::Gauge,
        "Failures in a row right now.",
        services,
        ServiceSeries::consecutive_failures,
    );
    w.ints(
        "breakerd_failure_threshold",
        Kind::Gauge,
        "Configured consecutive failures that open the breaker.",
        services,
        ServiceSeries::failure_threshold,
    );
    w.floats(
        "breakerd_timeout_seconds",
        "Configured call timeout.",
        services,
        ServiceSeries::timeout_seconds,
    );
    w.floats(
        "breakerd_reset_timeout_seconds",
        "Configured time an open breaker waits before a trial call.",
        services,
        ServiceSeries::reset_timeout_seconds,
    );
    w.floats(
        "breakerd_next_attempt_timestamp_seconds",
        "When an open breaker admits its next trial call (Unix time); 0 when not open.",
        services,
        ServiceSeries::next_attempt,
    );
    w.ints(
        "breakerd_probe_success",
        Kind::Gauge,
        "1 if the last synthetic check succeeded.",
        services,
        ServiceSeries::probe_success,
    );
    w.floats(
        "breakerd_probe_last_run_timestamp_seconds",
        "When the schedule last ran the synthetic check, rejected by an open breaker or not (Unix time).",
        services,
        ServiceSeries::probe_last_run,
    );
    w.floats(
        "breakerd_probe_interval_seconds",
        "Time between two scheduled checks (for cron, between the next two).",
        services,
        ServiceSeries::probe_interval,
    );
    w.ints(
        "breakerd_probe_http_status_code",
        Kind::Gauge,
        "The HTTP status of the last check's answer (0 when none came: not HTTP, or no answer).",
        services,
        ServiceSeries::probe_http_status,
    );
    w.family(
        "breakerd_probe_phase_seconds",
        Kind::Gauge,
        "Where the last HTTP check's time went: dns, connect (TCP), tls (the handshake), first_byte, body; 0 for a reused connection's dns, connect and tls, and for checks that are not HTTP.",
    );
    for service in services {
        for (phase, seconds) in super::service::PHASES.iter().zip(service.phases()) {
            w.open("breakerd_probe_phase_seconds", "", service.label());
            w.label("phase", phase);
            w.close_float(seconds);
        }
    }
    for (name, help, set) in [
        (
            "breakerd_maintenance",
            "1 while a [[maintenance]] window covers the service: checks run, pages are held.",
            &held.maintenance,
        ),
        (
            "breakerd_silenced",
            "1 while a silence made through the API covers the service: pages are held.",
            &held.silenced,
        ),
    ] {
        w.family(name, Kind::Gauge, help);
        for service in services {
            w.open(name, "", service.label());
            w.close_int(u64::from(set.contains(service.name())));
        }
    }
    w.family(
        "breakerd_tls_cert_not_after_timestamp_seconds",
        Kind::Gauge,
        "When the certificate the service's HTTPS server last presented expires (Unix time).",
    );
    for service in services
        .iter()
        .filter(|service| service.tls_not_after() > 0.0)
    {
        w.open(
            "breakerd_tls_cert_not_after_timestamp_seconds",
            "",
            service.label(),
        );
        w.close_float(service.tls_not_after());
    }
    w.family(
        "breakerd_heartbeat_last_timestamp_seconds",
        Kind::Gauge,
        "When a heartbeat service last received a beat (Unix time; 0 before the first).",
    );
    for service in services.iter().filter(|service| service.is_heartbeat()) {
        w.open(
            "breakerd_heartbeat_last_timestamp_seconds",
            "",
            service.label(),
        );
        w.close_float(service.heartbeat_last());
    }

    w.family(
        "breakerd_probe_failures",
        Kind::Counter,
        "Failed synthetic checks, by reason.",
    );
    for service in services {
        for (reason, count) in FailureReason::ALL.iter().zip(service.probe_failures()) {
            w.open("breakerd_probe_failures", "_total", service.label());
            w.label("reason", reason.as_str());
            w.close_int(count);
        }
    }
    w.ints(
        "breakerd_probe_missed_ticks",
        Kind::Counter,
        "Scheduled checks skipped because the previous one was still running.",
        services,
        ServiceSeries::missed_ticks,
    );
    w.ints(
        "breakerd_probe_skipped_for_traffic",
        Kind::Counter,
        "Scheduled checks skipped because real traffic had judged the provider within the last period (checks = \"when_idle\").",
        services,
        ServiceSeries::skipped_for_traffic,
    );
}

/// Escapes a label value for the text formats (backslash, double quote, newline).
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_match_the_buckets() {
        for (label, bound) in LE_LABELS.iter().zip(DURATION_BUCKETS) {
            assert_eq!(label.parse::<f64>().ok(), Some(bound));
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("mpesa"), "mpesa");
    }
}
