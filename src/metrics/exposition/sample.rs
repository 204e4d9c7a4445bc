//! The fixed parts of every sample line, built once: per family, each line's head
//! (`name{service="`) and tail (`",le="0.5"} `) around the service's label, and the room a
//! family's text needs for a number of services.

use std::sync::LazyLock;

use super::family::{FAMILIES, Family, SHAPES};
use crate::metrics::service::{PHASES, Source, TIMED_OUTCOMES};
use crate::metrics::text::{CHUNK, Padded};
use crate::metrics::{DURATION_BUCKETS, OUTCOME_LABELS, STATE_LABELS, TRANSITION_LABELS};
use crate::outcome::CallerKind;
use crate::outcome::FailureReason;

/// Le labels of the histogram buckets, written once.
const LE_LABELS: [&str; DURATION_BUCKETS.len()] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0",
    "60.0",
];

/// Sample lines of one latency histogram: the buckets, `+Inf`, `_sum` and `_count`.
pub(super) const HISTOGRAM_LINES: usize = DURATION_BUCKETS.len() + 3;

/// The fixed parts of one sample line: the service's label value goes between them, the
/// number after.
pub(super) struct Sample {
    /// `name_suffix{service="`.
    pub(super) head: Padded,
    /// `",label="value"} `.
    pub(super) tail: Padded,
    /// The tail, then `0` and the end of the line: the most common integer line.
    pub(super) tail_zero: Padded,
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

/// Every family's sample lines, indexed as the writer reads them.
pub(super) static SAMPLES: LazyLock<[Vec<Sample>; FAMILIES]> = LazyLock::new(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_match_the_buckets() {
        for (label, bound) in LE_LABELS.iter().zip(DURATION_BUCKETS) {
            assert_eq!(label.parse::<f64>().ok(), Some(bound));
        }
    }
}
