//! Writes the per-service families in the Prometheus text format or in OpenMetrics. Every
//! sample line is a pre-built head (`name{service="`), the service's escaped name, a pre-built
//! tail (`",le="0.5"} `) and one number, each copied in whole chunks. Services go in blocks
//! of [`BLOCK`]: a block's series are read into the cache at once, then each family's lines
//! of the block are written as one run into that family's own buffer, so no buffer grows to
//! the size of the whole answer (for 10,000 services that is tens of megabytes).

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::sync::LazyLock;

use super::service::{PHASES, ServiceSeries, Source, TIMED_OUTCOMES};
use super::text::{CHUNK, Padded, Text, float_line, int_line};
use super::{DURATION_BUCKETS, OUTCOME_LABELS, STATE_LABELS, TRANSITION_LABELS};
use std::sync::Arc;

use super::operations::{Operations, TrafficSeries};
use crate::outcome::CallerKind;
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
    CallerOutcomes,
}

impl Family {
    /// Every family, in the order they are written.
    const ALL: [Family; FAMILIES] = [
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
    (
        "breakerd_caller_outcomes",
        Kind::Counter,
        "Answers that were the caller's or the customer's own outcome (never counted against the provider), by operation and kind; a series appears with its first.",
    ),
];

/// The fixed parts of one sample line: the service's label value goes between them, the
/// number after.
struct Sample {
    /// `name_suffix{service="`.
    head: Padded,
    /// `",label="value"} `.
    tail: Padded,
    /// The tail, then `0` and the end of the line: the most common integer line.
    tail_zero: Padded,
}

impl Sample {
    /// The line of `family` (with `suffix`: `_total`, `_bucket`…) whose further labels are
    /// `labels` (`[("le", "0.5")]`).
    fn new(family: Family, suffix: &str, labels: &[(&str, &str)]) -> Self {
        let name = SHAPES[family as usize].0;
        let head = format!("{name}{suffix}{{service=\"");
        let mut tail = String::from("\"");
        for (key, value) in labels {
            tail.push_str(&format!(",{key}=\"{value}\""));
        }
        tail.push_str("} ");
        Self {
            head: Padded::new(head.as_bytes()),
            tail_zero: Padded::new(format!("{tail}0\n").as_bytes()),
            tail: Padded::new(tail.as_bytes()),
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
        each(
            Family::CallerOutcomes,
            "_total",
            "kind",
            &CallerKind::ALL.map(CallerKind::as_str),
        ),
    ]
});

/// Writes one family's lines.
struct LineWriter {
    samples: &'static [Sample],
    floats: ryu::Buffer,
}

impl LineWriter {
    /// Writes line `index` up to its number: the head, the service's `label` and the tail
    /// (with `0` and the newline when `zero`). False when there is no such line.
    #[inline(always)]
    fn begin(&mut self, out: &mut Text, label: &Padded, index: usize, zero: bool) -> bool {
        let Some(sample) = self.samples.get(index) else {
            return false;
        };
        out.put_padded(&sample.head);
        out.put_padded(label);
        out.put_padded(if zero {
            &sample.tail_zero
        } else {
            &sample.tail
        });
        true
    }

    fn int(&mut self, out: &mut Text, label: &Padded, index: usize, value: u64) {
        if value == 0 {
            self.begin(out, label, index, true);
            return;
        }
        let mut number = [0; 2 * CHUNK];
        let length = int_line(value, &mut number);
        if self.begin(out, label, index, false) {
            out.put(&number, length);
        }
    }

    fn float(&mut self, out: &mut Text, label: &Padded, index: usize, value: f64) {
        let mut number = [0; 2 * CHUNK];
        let length = float_line(value, &mut number, &mut self.floats);
        if self.begin(out, label, index, false) {
            out.put(&number, length);
        }
    }

    /// Writes a gathered line: `sample` (the high bit marks a float) and its value.
    fn line(&mut self, out: &mut Text, label: &Padded, sample: u8, value: u64) {
        let index = usize::from(sample & !Gathered::FLOAT);
        if sample & Gathered::FLOAT == 0 {
            self.int(out, label, index, value);
        } else {
            self.float(out, label, index, f64::from_bits(value));
        }
    }
}

/// Where a family's lines for one service go, as `write_family` reads them.
trait Lines {
    /// The label piece of the lines that follow: 0 the service's name, 1 + N the service's
    /// name and operation N (`mpesa",operation="stk_push`).
    fn label(&mut self, label: u8);
    fn int(&mut self, index: usize, value: u64);
    fn float(&mut self, index: usize, value: f64);
}

/// What one family's lines of a run of services are written from: per service how many lines
/// it has, per line which sample it is (the high bit set for a float) and its number (a
/// float's bits). Two gatherings that are equal write the same text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Gathered {
    counts: Vec<u16>,
    samples: Vec<u8>,
    /// Where the label piece changes (see [`Lines::label`]): from that line on, that label; 0
    /// (the service's name) before the first. Most families of most services have none.
    labels: Vec<(u32, u8)>,
    values: Vec<u64>,
    /// The label piece of the next line.
    current: u8,
}

impl Gathered {
    /// Marks a float in `samples`.
    const FLOAT: u8 = 0x80;

    fn clear(&mut self) {
        self.counts.clear();
        self.samples.clear();
        self.labels.clear();
        self.values.clear();
        self.current = 0;
    }

    /// The sample byte of line `index` (no family has 128 lines per service).
    fn sample(index: usize, float: bool) -> u8 {
        let index = u8::try_from(index).unwrap_or(Self::FLOAT - 1) & !Self::FLOAT;
        if float { index | Self::FLOAT } else { index }
    }
}

impl Lines for Gathered {
    fn label(&mut self, label: u8) {
        if label != self.current {
            let line = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
            self.labels.push((line, label));
            self.current = label;
        }
    }

    fn int(&mut self, index: usize, value: u64) {
        self.samples.push(Self::sample(index, false));
        self.values.push(value);
    }

    fn float(&mut self, index: usize, value: f64) {
        self.samples.push(Self::sample(index, true));
        self.values.push(value.to_bits());
    }
}

/// What one service's lines of a family take at most, besides the label in each: `(bytes,
/// lines)`. Numbers are counted at their longest.
fn per_service(samples: &[Sample]) -> (usize, usize) {
    let longest_number = 24 + 1;
    let bytes = samples
        .iter()
        .map(|sample| sample.head.len + sample.tail.len + longest_number)
        .sum();
    (bytes, samples.len())
}

/// `# HELP`, `# TYPE` (and `# UNIT` in OpenMetrics) of a family.
fn header(out: &mut Text, format: Format, (name, kind, help): (&str, Kind, &str)) {
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

/// Room enough in each family's text for `services` services whose names are at most 64
/// characters (config names are): every line the family can have, each as long as it can be,
/// and a chunk past the end. Asked for at once, the texts never grow by copying (which left
/// as much again of the process's memory in use after a scrape of 10,000 services); the room
/// no line reaches is never touched, so it costs no memory. A longer name makes its own room.
pub(crate) fn room_for(services: usize) -> [usize; FAMILIES] {
    /// The longest label value of a config name.
    const LONGEST_NAME: usize = 64;
    let mut room = [0; FAMILIES];
    for ((room, samples), shape) in room.iter_mut().zip(SAMPLES.iter()).zip(SHAPES) {
        let (bytes, lines) = per_service(samples);
        *room = 1024 + shape.2.len() + (bytes + lines * LONGEST_NAME) * services + CHUNK;
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

/// How many services are written family by family before the next ones: their series (a
/// kilobyte or so each) stay in the core's cache while every family reads them, and each
/// family's text is written as one run. Writing every service's lines into all 22 texts at
/// once (22 places in memory at a time, per thread) took twice as long for 10,000 services.
const BLOCK: usize = 128;

/// Reads every per-service family's numbers for `services` (sorted by name, all of them held
/// by `held` or not) into `gathered`, one per family in the order they are exposed.
pub(crate) fn gather_run(
    services: &[&ServiceSeries],
    held: &super::HeldServices,
    gathered: &mut [Gathered; FAMILIES],
    operations: &mut Vec<Option<Arc<Operations>>>,
) {
    // Each service's operations as they are now, read once: the lines are gathered and then
    // written from the same list, whatever a reload does meanwhile.
    operations.clear();
    operations.extend(services.iter().map(|service| {
        (service.carries_traffic() || service.has_caller_outcomes()).then(|| service.operations())
    }));
    for family in gathered.iter_mut() {
        family.clear();
    }
    let mut maintenance = Members::of(&held.maintenance);
    let mut silenced = Members::of(&held.silenced);
    let mut holds = Vec::with_capacity(BLOCK);
    for (number, block) in services.chunks(BLOCK).enumerate() {
        let first = number * BLOCK;
        holds.clear();
        holds.extend(block.iter().map(|service| Holds {
            maintenance: maintenance.contains(service.name()),
            silenced: silenced.contains(service.name()),
        }));
        std::hint::black_box(
            block
                .iter()
                .map(|service| service.warm())
                .fold(0, u64::wrapping_add),
        );
        for (family, gathered) in Family::ALL.into_iter().zip(gathered.iter_mut()) {
            let block_operations = operations.get(first..).unwrap_or_default();
            for ((service, holds), operations) in block.iter().zip(&holds).zip(block_operations) {
                let before = gathered.values.len();
                // Each service's lines start with its own name.
                gathered.label(0);
                write_family(gathered, family, service, *holds, operations.as_deref());
                let count = gathered.values.len() - before;
                gathered
                    .counts
                    .push(u16::try_from(count).unwrap_or(u16::MAX));
            }
        }
    }
}

/// Writes the `index`th per-service family's text for `services` from what [`gather_run`]
/// read for them into the empty `out`; with `headers`, it starts with the
/// family's `# HELP` and `# TYPE` (a run that continues another has none).
pub(crate) fn write_gathered(
    format: Format,
    index: usize,
    services: &[&ServiceSeries],
    operations: &[Option<Arc<Operations>>],
    gathered: &Gathered,
    headers: bool,
    out: &mut Text,
) {
    let (Some(samples), Some(shape)) = (SAMPLES.get(index), SHAPES.get(index)) else {
        return;
    };
    if headers {
        header(out, format, *shape);
    }
    let longest_line = samples
        .iter()
        .map(|sample| sample.head.len + sample.tail.len + 25)
        .max()
        .unwrap_or(0);
    let mut writer = LineWriter {
        samples,
        floats: ryu::Buffer::new(),
    };
    let mut start = 0;
    let no_operations = Operations::default();
    let mut changes = gathered.labels.iter().peekable();
    for ((service, count), service_operations) in
        services.iter().zip(&gathered.counts).zip(operations)
    {
        let end = (start + usize::from(*count)).min(gathered.values.len());
        let samples = &gathered.samples[start..end];
        let values = &gathered.values[start..end];
        let first = start;
        start = end;
        // The label changes within this service's lines (each service starts with its name).
        let mut here = Vec::new();
        while let Some((line, label)) = changes.next_if(|(line, _)| (*line as usize) < end) {
            here.push((*line as usize - first, *label));
        }
        if here.iter().all(|(_, label)| *label == 0) {
            let label = service.label();
            // Room for this service's lines only: the room is zeroed as it is made, and the
            // room for a whole run's longest possible lines is several times what they take.
            out.make_room(values.len() * (longest_line + label.len));
            for (sample, value) in samples.iter().zip(values) {
                writer.line(out, label, *sample, *value);
            }
            continue;
        }
        let operations = service_operations.as_deref().unwrap_or(&no_operations);
        let longest_label = (0..operations.names().len())
            .filter_map(|index| operations.label(index))
            .map(|label| label.len)
            .max()
            .unwrap_or(0)
            .max(service.label().len);
        out.make_room(values.len() * (longest_line + longest_label));
        let mut here = here.into_iter().peekable();
        let mut label = service.label();
        for (line, (sample, value)) in samples.iter().zip(values).enumerate() {
            while let Some((_, piece)) = here.next_if(|(at, _)| *at <= line) {
                label = match piece.checked_sub(1) {
                    None => service.label(),
                    Some(index) => operations
                        .label(usize::from(index))
                        .unwrap_or_else(|| service.label()),
                };
            }
            writer.line(out, label, *sample, *value);
        }
    }
}

/// Whether a service is held by a maintenance window or a silence.
#[derive(Clone, Copy)]
struct Holds {
    maintenance: bool,
    silenced: bool,
}

/// One service's lines of one family.
fn write_family(
    w: &mut impl Lines,
    family: Family,
    service: &ServiceSeries,
    holds: Holds,
    operations: Option<&Operations>,
) {
    match family {
        Family::BreakerState => {
            let current = service.state_index();
            for state in 0..STATE_LABELS.len() {
                w.int(state, u64::from(state == current));
            }
        }
        Family::Calls => {
            for (outcome, count) in service.calls().into_iter().enumerate() {
                w.int(outcome, count);
            }
            let first = Source::Traffic.index() * OUTCOME_LABELS.len();
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                for (outcome, count) in traffic.calls.iter().enumerate() {
                    w.int(first + outcome, count.get());
                }
            }
        }
        Family::CallDuration => {
            for (outcome, (_, histogram)) in service.histograms().enumerate() {
                // The checks' success histogram is always there (the slow-provider rule reads
                // it); a failure or timeout histogram appears with its first observation. A
                // healthy service has none, and they are two thirds of its lines.
                histogram_lines(w, outcome * HISTOGRAM_LINES, histogram, outcome > 0);
            }
            let first = Source::Traffic.index() * TIMED_OUTCOMES.len();
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                for (outcome, histogram) in traffic.durations.iter().enumerate() {
                    // Real traffic's histograms appear with their first call, operation by
                    // operation.
                    histogram_lines(w, (first + outcome) * HISTOGRAM_LINES, histogram, true);
                }
            }
        }
        Family::SlowCalls => {
            w.int(Source::Check.index(), service.slow_calls());
            for (operation, traffic) in traffic_of(service, operations) {
                w.label(operation);
                w.int(Source::Traffic.index(), traffic.slow.get());
            }
        }
        Family::StateTransitions => {
            for (pair, count) in service.transitions().into_iter().enumerate() {
                w.int(pair, count);
            }
        }
        Family::ConsecutiveFailures => w.int(0, service.consecutive_failures()),
        Family::FailureThreshold => w.int(0, service.failure_threshold()),
        Family::Timeout => w.float(0, service.timeout_seconds()),
        Family::ResetTimeout => w.float(0, service.reset_timeout_seconds()),
        Family::NextAttempt => w.float(0, service.next_attempt()),
        Family::ProbeSuccess => w.int(0, service.probe_success()),
        Family::ProbeLastRun => w.float(0, service.probe_last_run()),
        Family::ProbeInterval => w.float(0, service.probe_interval()),
        Family::ProbeHttpStatus => w.int(0, service.probe_http_status()),
        Family::ProbePhase => {
            for (phase, seconds) in service.phases().into_iter().enumerate() {
                w.float(phase, seconds);
            }
        }
        Family::Maintenance => w.int(0, u64::from(holds.maintenance)),
        Family::Silenced => w.int(0, u64::from(holds.silenced)),
        Family::TlsNotAfter => {
            if service.tls_not_after() > 0.0 {
                w.float(0, service.tls_not_after());
            }
        }
        Family::HeartbeatLast => {
            if service.is_heartbeat() {
                w.float(0, service.heartbeat_last());
            }
        }
        Family::ProbeFailures => {
            for (reason, count) in service.probe_failures().into_iter().enumerate() {
                w.int(reason, count);
            }
        }
        Family::MissedTicks => w.int(0, service.missed_ticks()),
        Family::SkippedForTraffic => w.int(0, service.skipped_for_traffic()),
        Family::CallerOutcomes => {
            let Some(operations) = operations.filter(|_| service.has_caller_outcomes()) else {
                return;
            };
            for (operation, counts) in operations.caller_counts().enumerate() {
                let Some(counts) = counts else { continue };
                w.label(u8::try_from(operation + 1).unwrap_or(u8::MAX));
                for (kind, count) in counts.into_iter().enumerate() {
                    if count > 0 {
                        w.int(kind, count);
                    }
                }
            }
        }
    }
}

/// The real-traffic series of a service that carries traffic, each with its label piece
/// number (1 + its operation's place).
fn traffic_of<'o>(
    service: &ServiceSeries,
    operations: Option<&'o Operations>,
) -> impl Iterator<Item = (u8, &'o TrafficSeries)> {
    operations
        .filter(|_| service.carries_traffic())
        .into_iter()
        .flat_map(Operations::all_traffic)
        .enumerate()
        .map(|(index, series)| (u8::try_from(index + 1).unwrap_or(u8::MAX), series))
}

/// One histogram's lines from sample `first` on: the buckets, `+Inf`, the sum and the count;
/// none when `only_if_observed` and it has no observation.
fn histogram_lines(
    w: &mut impl Lines,
    first: usize,
    histogram: &super::histogram::LatencyHistogram,
    only_if_observed: bool,
) {
    let reading = histogram.read();
    if only_if_observed && reading.count == 0 {
        return;
    }
    let buckets = reading.cumulative.into_iter().chain([reading.count]);
    for (bucket, count) in buckets.enumerate() {
        w.int(first + bucket, count);
    }
    let sum = first + DURATION_BUCKETS.len() + 1;
    w.float(sum, reading.sum);
    w.int(sum + 1, reading.count);
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
    fn every_line_of_a_service_can_be_named_in_a_gathering() {
        for samples in SAMPLES.iter() {
            assert!(samples.len() < usize::from(Gathered::FLOAT));
        }
    }
}
