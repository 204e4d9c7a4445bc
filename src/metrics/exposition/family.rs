//! The per-service families: each one's name, type and help, in the order they are written,
//! and its `# HELP`/`# TYPE` (and OpenMetrics `# UNIT`) header in either text format.

use crate::metrics::text::Text;

/// The two text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: counters declared by their `_total` name, no `# UNIT`.
    Prometheus,
    /// OpenMetrics 1.0: counters declared without `_total`, `# UNIT` for units.
    OpenMetrics,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

/// The per-service families, in the order they are written.
#[derive(Clone, Copy)]
pub(super) enum Family {
    BreakerState,
    Calls,
    CallDuration,
    SlowCalls,
    StateTransitions,
    ConsecutiveFailures,
    FailureThreshold,
    Timeout,
    ResetTimeout,
    NextAttempt,
    ProbeSuccess,
    ProbeLastRun,
    ProbeInterval,
    ProbeHttpStatus,
    ProbePhase,
    Maintenance,
    Silenced,
    TlsNotAfter,
    HeartbeatLast,
    ProbeFailures,
    MissedTicks,
    SkippedForTraffic,
    CallerOutcomes,
}

impl Family {
    /// Every family, in the order they are written.
    pub(super) const ALL: [Family; FAMILIES] = [
        Family::BreakerState,
        Family::Calls,
        Family::CallDuration,
        Family::SlowCalls,
        Family::StateTransitions,
        Family::ConsecutiveFailures,
        Family::FailureThreshold,
        Family::Timeout,
        Family::ResetTimeout,
        Family::NextAttempt,
        Family::ProbeSuccess,
        Family::ProbeLastRun,
        Family::ProbeInterval,
        Family::ProbeHttpStatus,
        Family::ProbePhase,
        Family::Maintenance,
        Family::Silenced,
        Family::TlsNotAfter,
        Family::HeartbeatLast,
        Family::ProbeFailures,
        Family::MissedTicks,
        Family::SkippedForTraffic,
        Family::CallerOutcomes,
    ];
}

/// How many per-service families there are.
pub(crate) const FAMILIES: usize = 23;

/// Each family's name, type and help, in [`Family`] order.
pub(super) const SHAPES: [(&str, Kind, &str); FAMILIES] = [
    (
        "breakerd_breaker_state",
        Kind::Gauge,
        "Circuit breaker state: 1 for the current state, 0 for the others.",
    ),
    (
        "breakerd_calls",
        Kind::Counter,
        "Calls through the breaker, by outcome.",
    ),
    (
        "breakerd_call_duration_seconds",
        Kind::Histogram,
        "Latency of calls that ran (rejected calls have none).",
    ),
    (
        "breakerd_slow_calls",
        Kind::Counter,
        "Calls slower than slow_call.",
    ),
    (
        "breakerd_state_transitions",
        Kind::Counter,
        "Breaker state changes.",
    ),
    (
        "breakerd_consecutive_failures",
        Kind::Gauge,
        "Failures in a row right now.",
    ),
    (
        "breakerd_failure_threshold",
        Kind::Gauge,
        "Configured consecutive failures that open the breaker.",
    ),
    (
        "breakerd_timeout_seconds",
        Kind::Gauge,
        "Configured call timeout.",
    ),
    (
        "breakerd_reset_timeout_seconds",
        Kind::Gauge,
        "Configured time an open breaker waits before a trial call.",
    ),
    (
        "breakerd_next_attempt_timestamp_seconds",
        Kind::Gauge,
        "When an open breaker admits its next trial call (Unix time); 0 when not open.",
    ),
    (
        "breakerd_probe_success",
        Kind::Gauge,
        "1 if the last synthetic check succeeded.",
    ),
    (
        "breakerd_probe_last_run_timestamp_seconds",
        Kind::Gauge,
        "When the schedule last ran the synthetic check, rejected by an open breaker or not (Unix time).",
    ),
    (
        "breakerd_probe_interval_seconds",
        Kind::Gauge,
        "Time between two scheduled checks (for cron, between the next two).",
    ),
    (
        "breakerd_probe_http_status_code",
        Kind::Gauge,
        "The HTTP status of the last check's answer (0 when none came: not HTTP, or no answer).",
    ),
    (
        "breakerd_probe_phase_seconds",
        Kind::Gauge,
        "Where the last HTTP check's time went: dns, connect (TCP), tls (the handshake), first_byte, body; 0 for a reused connection's dns, connect and tls, and for checks that are not HTTP.",
    ),
    (
        "breakerd_maintenance",
        Kind::Gauge,
        "1 while a [[maintenance]] window covers the service: checks run, pages are held.",
    ),
    (
        "breakerd_silenced",
        Kind::Gauge,
        "1 while a silence made through the API covers the service: pages are held.",
    ),
    (
        "breakerd_tls_cert_not_after_timestamp_seconds",
        Kind::Gauge,
        "When the certificate the service's HTTPS server last presented expires (Unix time).",
    ),
    (
        "breakerd_heartbeat_last_timestamp_seconds",
        Kind::Gauge,
        "When a heartbeat service last received a beat (Unix time; 0 before the first).",
    ),
    (
        "breakerd_probe_failures",
        Kind::Counter,
        "Failed synthetic checks, by reason.",
    ),
    (
        "breakerd_probe_missed_ticks",
        Kind::Counter,
        "Scheduled checks skipped because the previous one was still running.",
    ),
    (
        "breakerd_probe_skipped_for_traffic",
        Kind::Counter,
        "Scheduled checks skipped because real traffic had judged the provider within the last period (checks = \"when_idle\").",
    ),
    (
        "breakerd_caller_outcomes",
        Kind::Counter,
        "Answers that were the caller's or the customer's own outcome (never counted against the provider), by operation and kind; a series appears with its first.",
    ),
];

/// `# HELP`, `# TYPE` (and `# UNIT` in OpenMetrics) of a family.
pub(super) fn header(out: &mut Text, format: Format, (name, kind, help): (&str, Kind, &str)) {
    let total = if kind == Kind::Counter && format == Format::Prometheus {
        "_total"
    } else {
        ""
    };
    for (tag, text) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
        for piece in [tag, name, total, " ", text, "\n"] {
            out.put_slice(piece.as_bytes());
        }
    }
    if format == Format::OpenMetrics && name.ends_with("_seconds") {
        for piece in ["# UNIT ", name, " seconds\n"] {
            out.put_slice(piece.as_bytes());
        }
    }
}
