//! Writes the per-service families in the Prometheus text format or in OpenMetrics. Every
//! sample line is a pre-built head (`name{service="`), the service's escaped name, a pre-built
//! tail (`",le="0.5"} `) and one number. Services are read once each, in name order, and each
//! family goes to its own buffer, so a scrape walks the series memory once and no buffer grows
//! to the size of the whole answer (for 10,000 services that is tens of megabytes).

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::sync::LazyLock;

use super::service::{PHASES, ServiceSeries, Source, TIMED_OUTCOMES};
use super::{DURATION_BUCKETS, OUTCOME_LABELS, STATE_LABELS, TRANSITION_LABELS};
use crate::probe::FailureReason;

/// The two text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
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

/// Sample lines of one latency histogram: the buckets, `+Inf`, `_sum` and `_count`.
const HISTOGRAM_LINES: usize = DURATION_BUCKETS.len() + 3;

/// The per-service families, in the order they are written.
#[derive(Clone, Copy)]
enum Family {
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
}

/// How many per-service families there are.
pub(crate) const FAMILIES: usize = 22;

/// Each family's name, type and help, in [`Family`] order.
const SHAPES: [(&str, Kind, &str); FAMILIES] = [
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
];

/// The name suffixes a sample line can have.
const SUFFIXES: [&str; 5] = ["", "_total", "_bucket", "_sum", "_count"];

/// The fixed parts of one sample line: the service's label value goes between them, the
/// number after.
struct Sample {
    /// `name_suffix{service="`.
    head: Box<[u8]>,
    /// Which head it is (lines of one service that share it copy it with the label once).
    head_id: usize,
    /// `",label="value"} `.
    tail: Box<[u8]>,
    /// The tail, then `0` and the end of the line: the most common integer line.
    tail_zero: Box<[u8]>,
}

impl Sample {
    /// The line of `family` (with `suffix`, one of [`SUFFIXES`]) whose further labels are
    /// `labels` (`[("le", "0.5")]`).
    fn new(family: Family, suffix: &str, labels: &[(&str, &str)]) -> Self {
        let name = SHAPES[family as usize].0;
        let suffix_id = SUFFIXES.iter().position(|known| *known == suffix);
        let head = format!("{name}{suffix}{{service=\"");
        let mut tail = String::from("\"");
        for (key, value) in labels {
            tail.push_str(&format!(",{key}=\"{value}\""));
        }
        tail.push_str("} ");
        Self {
            head: head.into_bytes().into(),
            head_id: family as usize * SUFFIXES.len() + suffix_id.unwrap_or(0),
            tail_zero: format!("{tail}0\n").into_bytes().into(),
            tail: tail.into_bytes().into(),
        }
    }
}

/// Every family's sample lines, indexed as the writer below reads them.
static SAMPLES: LazyLock<[Vec<Sample>; FAMILIES]> = LazyLock::new(|| {
    let one = |family: Family, suffix: &str| vec![Sample::new(family, suffix, &[])];
    let each = |family: Family, suffix: &str, key: &str, values: &[&str]| {
        values
            .iter()
            .map(|value| Sample::new(family, suffix, &[(key, value)]))
            .collect::<Vec<_>>()
    };
    let sources = Source::ALL.map(Source::as_str);
    let mut calls = Vec::new();
    let mut durations = Vec::new();
    for source in sources {
        for outcome in OUTCOME_LABELS {
            let labels = [("outcome", outcome), ("source", source)];
            calls.push(Sample::new(Family::Calls, "_total", &labels));
        }
        for outcome in TIMED_OUTCOMES {
            let labels = [("outcome", outcome), ("source", source)];
            let duration = Family::CallDuration;
            for le in LE_LABELS.iter().chain(&["+Inf"]) {
                let bucket = [labels[0], labels[1], ("le", le)];
                durations.push(Sample::new(duration, "_bucket", &bucket));
            }
            durations.push(Sample::new(duration, "_sum", &labels));
            durations.push(Sample::new(duration, "_count", &labels));
        }
    }
    let transitions = TRANSITION_LABELS
        .iter()
        .map(|(from, to)| {
            Sample::new(
                Family::StateTransitions,
                "_total",
                &[("from", from), ("to", to)],
            )
        })
        .collect();
    let reasons = FailureReason::ALL.map(FailureReason::as_str);
    [
        each(Family::BreakerState, "", "state", &STATE_LABELS),
        calls,
        durations,
        each(Family::SlowCalls, "_total", "source", &sources),
        transitions,
        one(Family::ConsecutiveFailures, ""),
        one(Family::FailureThreshold, ""),
        one(Family::Timeout, ""),
        one(Family::ResetTimeout, ""),
        one(Family::NextAttempt, ""),
        one(Family::ProbeSuccess, ""),
        one(Family::ProbeLastRun, ""),
        one(Family::ProbeInterval, ""),
        one(Family::ProbeHttpStatus, ""),
        each(Family::ProbePhase, "", "phase", &PHASES),
        one(Family::Maintenance, ""),
        one(Family::Silenced, ""),
        one(Family::TlsNotAfter, ""),
        one(Family::HeartbeatLast, ""),
        each(Family::ProbeFailures, "_total", "reason", &reasons),
        one(Family::MissedTicks, "_total"),
        one(Family::SkippedForTraffic, "_total"),
    ]
});

/// The families' texts while they are written.
struct Writer<'a> {
    texts: [Vec<u8>; FAMILIES],
    /// The service being written: its escaped name.
    label: &'a [u8],
    /// A head and the label, as the last line had them.
    prefix: Vec<u8>,
    /// Which head `prefix` holds (`usize::MAX`: none yet for this service).
    prefix_id: usize,
}

impl<'a> Writer<'a> {
    fn start_service(&mut self, label: &'a [u8]) {
        self.label = label;
        self.prefix_id = usize::MAX;
    }

    /// Starts a line of `family`'s sample `index` (its head and the label) and returns the
    /// sample. A family with one line per service copies its head and the label straight in;
    /// the others reuse `head ‖ label` from `prefix` while the head stays the same.
    fn begin(&mut self, family: Family, index: usize) -> Option<&'static Sample> {
        let samples = &SAMPLES[family as usize];
        let sample = samples.get(index)?;
        let out = &mut self.texts[family as usize];
        if samples.len() == 1 {
            out.extend_from_slice(&sample.head);
            out.extend_from_slice(self.label);
        } else {
            if self.prefix_id != sample.head_id {
                self.prefix.clear();
                self.prefix.extend_from_slice(&sample.head);
                self.prefix.extend_from_slice(self.label);
                self.prefix_id = sample.head_id;
            }
            out.extend_from_slice(&self.prefix);
        }
        Some(sample)
    }

    fn line(&mut self, family: Family, index: usize, value: &[u8]) {
        let Some(sample) = self.begin(family, index) else {
            return;
        };
        let out = &mut self.texts[family as usize];
        out.extend_from_slice(&sample.tail);
        out.extend_from_slice(value);
        out.push(b'\n');
    }

    fn int(&mut self, family: Family, index: usize, value: u64) {
        let Some(sample) = self.begin(family, index) else {
            return;
        };
        let out = &mut self.texts[family as usize];
        if value == 0 {
            out.extend_from_slice(&sample.tail_zero);
        } else {
            out.extend_from_slice(&sample.tail);
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            out.push(b'\n');
        }
    }

    fn float(&mut self, family: Family, index: usize, value: f64) {
        let mut text = FloatText::default();
        self.line(family, index, text.format(value));
    }
}

/// Formats a float as ryu does (`30.0`, `0.0123`, `1e-7`), whole numbers below 2^53 (timeouts,
/// intervals, zeros) through the integer formatter, which is several times faster.
#[derive(Default)]
struct FloatText {
    floats: ryu::Buffer,
    ints: itoa::Buffer,
    whole: [u8; 24],
}

impl FloatText {
    /// Below this, a whole float is an exact integer and ryu writes it as `N.0`.
    const WHOLE_LIMIT: f64 = 9_007_199_254_740_992.0;

    fn format(&mut self, value: f64) -> &[u8] {
        if value.fract() == 0.0 && value.abs() < Self::WHOLE_LIMIT && value.is_sign_positive() {
            // A positive whole number below 2^53 converts to u64 exactly.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let digits = self.ints.format(value as u64).as_bytes();
            let length = digits.len();
            self.whole[..length].copy_from_slice(digits);
            self.whole[length..length + 2].copy_from_slice(b".0");
            return &self.whole[..length + 2];
        }
        let text = if value.is_finite() {
            self.floats.format_finite(value)
        } else if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        text.as_bytes()
    }
}

/// `# HELP`, `# TYPE` (and `# UNIT` in OpenMetrics) of a family.
fn header(out: &mut Vec<u8>, format: Format, (name, kind, help): (&str, Kind, &str)) {
    let total = if kind == Kind::Counter && format == Format::Prometheus {
        "_total"
    } else {
        ""
    };
    for (tag, text) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
        for piece in [tag, name, total, " ", text, "\n"] {
            out.extend_from_slice(piece.as_bytes());
        }
    }
    if format == Format::OpenMetrics && name.ends_with("_seconds") {
        for piece in ["# UNIT ", name, " seconds\n"] {
            out.extend_from_slice(piece.as_bytes());
        }
    }
}

/// Room enough in each family's text for `services` services whose names are at most 64
/// characters (config names are): every line the family can have, each as long as it can be.
/// Asked for at once, the texts never grow by copying (which left as much again of the
/// process's memory in use after a scrape of 10,000 services); the room no line reaches is
/// never touched, so it costs no memory.
pub(crate) fn room_for(services: usize) -> [usize; FAMILIES] {
    /// The longest label value of a config name, and of a number.
    const LONGEST_NAME: usize = 64;
    const LONGEST_NUMBER: usize = 24;
    let mut room = [0; FAMILIES];
    for ((room, samples), shape) in room.iter_mut().zip(SAMPLES.iter()).zip(SHAPES) {
        let per_service: usize = samples
            .iter()
            .map(|sample| sample.head.len() + LONGEST_NAME + sample.tail.len() + LONGEST_NUMBER + 1)
            .sum();
        *room = 1024 + shape.2.len() + per_service * services;
    }
    room
}

/// Says, for services taken in name order, whether each is in a sorted set, by walking the
/// set alongside them (no look-up per service).
struct Members<'a> {
    names: Peekable<std::collections::btree_set::Iter<'a, String>>,
}

impl<'a> Members<'a> {
    fn of(set: &'a BTreeSet<String>) -> Self {
        Self {
            names: set.iter().peekable(),
        }
    }

    /// Whether `name` is in the set; `name` must not come before the last one asked about.
    fn contains(&mut self, name: &str) -> bool {
        while self
            .names
            .next_if(|member| member.as_str() < name)
            .is_some()
        {}
        self.names
            .next_if(|member| member.as_str() == name)
            .is_some()
    }
}

/// Every per-service family for `services` (sorted by name), one text per family in the order
/// they are exposed, each written into its empty buffer of `texts`; with `headers`, each text
/// starts with its family's `# HELP` and `# TYPE` (a part that continues another has none).
pub(crate) fn write_service_families(
    format: Format,
    services: &[&ServiceSeries],
    held: &super::HeldServices,
    mut texts: [Vec<u8>; FAMILIES],
    headers: bool,
) -> [Vec<u8>; FAMILIES] {
    if headers {
        for (text, shape) in texts.iter_mut().zip(SHAPES) {
            header(text, format, shape);
        }
    }
    let mut w = Writer {
        texts,
        label: b"",
        prefix: Vec::with_capacity(256),
        prefix_id: usize::MAX,
    };
    let mut maintenance = Members::of(&held.maintenance);
    let mut silenced = Members::of(&held.silenced);
    for (index, service) in services.iter().enumerate() {
        if let Some(next) = services.get(index + 1) {
            // Start loading the next service's series while this one is written: each is a
            // cache miss otherwise (the texts written in between push them out of the cache).
            std::hint::black_box(next.state_index());
        }
        write_service(&mut w, service);
        w.int(
            Family::Maintenance,
            0,
            u64::from(maintenance.contains(service.name())),
        );
        w.int(
            Family::Silenced,
            0,
            u64::from(silenced.contains(service.name())),
        );
    }
    w.texts
}

/// One service's lines in every family.
fn write_service<'a>(w: &mut Writer<'a>, service: &'a ServiceSeries) {
    w.start_service(service.label().as_bytes());
    let current = service.state_index();
    for state in 0..STATE_LABELS.len() {
        w.int(Family::BreakerState, state, u64::from(state == current));
    }
    for source in service.sources() {
        let index = source.index();
        for (outcome, count) in service.calls(*source).into_iter().enumerate() {
            w.int(Family::Calls, index * OUTCOME_LABELS.len() + outcome, count);
        }
        for (outcome, (_, histogram)) in service.histograms(*source).enumerate() {
            let first = (index * TIMED_OUTCOMES.len() + outcome) * HISTOGRAM_LINES;
            let reading = histogram.read();
            // The success histogram is always there (the slow-provider rule reads it); a
            // failure or timeout histogram appears with its first observation. A healthy
            // service has none, and they are two thirds of its lines.
            if outcome > 0 && reading.count == 0 {
                continue;
            }
            let buckets = reading.cumulative.into_iter().chain([reading.count]);
            for (bucket, count) in buckets.enumerate() {
                w.int(Family::CallDuration, first + bucket, count);
            }
            let sum = first + DURATION_BUCKETS.len() + 1;
            w.float(Family::CallDuration, sum, reading.sum);
            w.int(Family::CallDuration, sum + 1, reading.count);
        }
        w.int(Family::SlowCalls, index, service.slow_calls(*source));
    }
    for (pair, count) in service.transitions().into_iter().enumerate() {
        w.int(Family::StateTransitions, pair, count);
    }
    w.int(
        Family::ConsecutiveFailures,
        0,
        service.consecutive_failures(),
    );
    w.int(Family::FailureThreshold, 0, service.failure_threshold());
    w.float(Family::Timeout, 0, service.timeout_seconds());
    w.float(Family::ResetTimeout, 0, service.reset_timeout_seconds());
    w.float(Family::NextAttempt, 0, service.next_attempt());
    w.int(Family::ProbeSuccess, 0, service.probe_success());
    w.float(Family::ProbeLastRun, 0, service.probe_last_run());
    w.float(Family::ProbeInterval, 0, service.probe_interval());
    w.int(Family::ProbeHttpStatus, 0, service.probe_http_status());
    for (phase, seconds) in service.phases().into_iter().enumerate() {
        w.float(Family::ProbePhase, phase, seconds);
    }
    if service.tls_not_after() > 0.0 {
        w.float(Family::TlsNotAfter, 0, service.tls_not_after());
    }
    if service.is_heartbeat() {
        w.float(Family::HeartbeatLast, 0, service.heartbeat_last());
    }
    for (reason, count) in service.probe_failures().into_iter().enumerate() {
        w.int(Family::ProbeFailures, reason, count);
    }
    w.int(Family::MissedTicks, 0, service.missed_ticks());
    w.int(Family::SkippedForTraffic, 0, service.skipped_for_traffic());
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
    fn floats_read_as_ryu_writes_them() {
        for value in [
            0.0,
            -0.0,
            1.0,
            30.0,
            120.0,
            1_700_000_000.0,
            1_700_000_000.125,
            0.0123,
            1e-7,
            1e15,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e22,
            -30.0,
            -0.5,
        ] {
            let mut text = FloatText::default();
            let ours = String::from_utf8_lossy(text.format(value)).into_owned();
            assert_eq!(ours, ryu::Buffer::new().format_finite(value), "{value}");
        }
        let mut text = FloatText::default();
        assert_eq!(text.format(f64::NAN), b"NaN");
        assert_eq!(text.format(f64::INFINITY), b"+Inf");
        assert_eq!(text.format(f64::NEG_INFINITY), b"-Inf");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("mpesa"), "mpesa");
    }
}
