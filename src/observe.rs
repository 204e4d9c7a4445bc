//! Notable events, each written to its log line and its metric in one place so the two never
//! disagree: every call's outcome (with the slow-call warning) and every change of state.

use std::time::Duration;

use tracing::{info, warn};

use crate::breaker::{CallRecord, Transition};
use crate::metrics::ServiceMetrics;
pub use crate::text::log_ms;

/// A call finished: count it, and warn when a real call was slow (a slow check is logged by
/// its scheduler, which knows where its time went).
pub fn call(metrics: &ServiceMetrics, record: &CallRecord, slow_call: Duration) {
    let source = crate::metrics::Source::of(record.tag);
    metrics.call(record.tag, record.outcome, record.duration, record.slow);
    if record.slow && source == crate::metrics::Source::Traffic {
        slow(
            metrics.name(),
            source,
            record.outcome,
            record.duration.unwrap_or_default(),
            slow_call,
            None,
        );
    }
}

/// Warns of a slow call: `slow call: mpesa took 1503 ms (over 1000 ms): dns 2, connect 40, ...`.
pub fn slow(
    service: &str,
    source: crate::metrics::Source,
    outcome: crate::breaker::Outcome,
    took: Duration,
    slow_call: Duration,
    phases: Option<&crate::outcome::Phases>,
) {
    let duration_ms = took.as_millis();
    let breakdown = phases
        .map(|phases| format!(": {}", phases.words()))
        .unwrap_or_default();
    warn!(
        service,
        source = source.as_str(),
        duration_ms,
        outcome = outcome.as_str(),
        slow_call_ms = slow_call.as_millis(),
        "slow call: {service} took {duration_ms} ms (over {} ms){breakdown}",
        slow_call.as_millis()
    );
}

/// A breaker changed state: count it, and log it with its context.
pub fn transition(metrics: &ServiceMetrics, event: &Transition) {
    metrics.transition(event.from, event.to);
    // Absent values are left out of the line, not logged as empty strings.
    let next_attempt = event
        .next_attempt
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let message = format!(
        "circuit breaker {} {} -> {}: {}",
        event.service, event.from, event.to, event.reason
    );
    let last_error = event.last_failure.as_deref();
    let next = next_attempt.as_deref();
    // tracing fixes an event's level at its call site, so the two levels share one field list.
    macro_rules! log_transition {
        ($level:ident) => {
            $level!(
                service = &*event.service,
                from = event.from.as_str(),
                to = event.to.as_str(),
                reason = %event.reason,
                last_error,
                failure_count = event.consecutive_failures,
                next_attempt = next,
                "{message}"
            )
        };
    }
    if event.to.is_open() {
        log_transition!(warn);
    } else {
        log_transition!(info);
    }
}

/// The alert stage fell behind and `folded` transitions of `service` were folded into the ones
/// delivered with them (see [`crate::breaker::TransitionBus`]): count them, and say so.
pub fn folded(metrics: &crate::metrics::Metrics, service: &str, folded: u32, delivered: usize) {
    metrics.transitions_folded(u64::from(folded));
    warn!(
        service,
        folded,
        delivered,
        "the alert stage fell behind: {folded} transitions of {service} were folded into the \
         {delivered} delivered (outage starts and ends are kept)"
    );
}

#[cfg(test)]
mod tests {
    use super::log_ms;

    #[test]
    fn log_durations_are_rounded() {
        assert_eq!(log_ms(0.31466000000000005).to_string(), "0.315");
        assert_eq!(log_ms(12.345).to_string(), "12.3");
        assert_eq!(log_ms(1503.4).to_string(), "1503");
        assert_eq!(log_ms(0.0004567).to_string(), "0.000457");
        assert_eq!(log_ms(99.96).to_string(), "100");
        assert_eq!(log_ms(f64::NAN), 0.0);
    }
}
