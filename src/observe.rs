//! Notable events, each written to its log line and its metric in one place so the two never
//! disagree: every call's outcome (with the slow-call warning) and every change of state.

use std::time::Duration;

use tracing::{info, warn};

use crate::breaker::{CallRecord, Transition};
use crate::metrics::ServiceMetrics;

/// A call finished: count it, and warn when it was slow.
pub fn call(metrics: &ServiceMetrics, record: &CallRecord, slow_call: Duration) {
    let source = crate::metrics::Source::of(record.tag);
    metrics.call(source, record.outcome, record.duration, record.slow);
    if record.slow {
        let duration_ms = record.duration.map_or(0, |d| d.as_millis());
        warn!(
            service = metrics.name(),
            source = source.as_str(),
            duration_ms,
            outcome = record.outcome.as_str(),
            slow_call_ms = slow_call.as_millis(),
            "slow call: {} took {duration_ms} ms (over {} ms)",
            metrics.name(),
            slow_call.as_millis()
        );
    }
}

/// A breaker changed state: count it, and log it with its context.
pub fn transition(metrics: &ServiceMetrics, event: &Transition) {
    metrics.transition(event.from, event.to);
    let next_attempt = event
        .next_attempt
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let message = format!(
        "circuit breaker {} {} -> {}: {}",
        event.service, event.from, event.to, event.reason
    );
    let last_error = event.last_failure.as_deref().unwrap_or("");
    let next = next_attempt.as_deref().unwrap_or("");
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
