//! The stats snapshot: the seed's fields (`state`, `failureCount`, `successCount`, `uptime`,
//! `nextAttempt`) and the rest an operator needs to judge a provider.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::event::{Outcome, Transition};
use super::state::State;
use super::wall_clock::serde_rfc3339;

/// A breaker's state and counts at one moment, serialised in the seed's camelCase.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN` or `DISABLED`.
    pub state: State,
    /// Calls that failed (timeouts included) since the last reset.
    pub failure_count: u64,
    /// Calls that succeeded since the last reset.
    pub success_count: u64,
    /// Percentage of the calls that ran (not rejected, not ignored) that succeeded; 100 when
    /// none ran.
    pub uptime: f64,
    /// When an open breaker admits its next trial call.
    #[serde(
        with = "serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt: Option<SystemTime>,
    /// Failures in a row right now.
    pub consecutive_failures: u32,
    /// Calls cancelled at the timeout (also in `failureCount`).
    pub timeouts: u64,
    /// Calls rejected without running.
    pub rejections: u64,
    /// Calls slower than the slow-call duration.
    pub slow_calls: u64,
    /// Calls whose result the classifier ignored.
    pub ignored: u64,
    /// Calls dropped by their caller before they finished.
    pub cancelled: u64,
    /// Every call the breaker saw, rejected ones included.
    pub total_calls: u64,
    /// Trial calls running now (half-open only).
    pub half_open_in_flight: u32,
    /// The sliding window's contents, when a window is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowStats>,
    /// The most recent failure since the last reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureInfo>,
    /// The most recent change of state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_state_change: Option<Transition>,
    /// The configured consecutive-failure threshold.
    pub failure_threshold: u32,
    /// The configured call timeout, in milliseconds.
    pub timeout_ms: u64,
    /// The configured reset timeout, in milliseconds.
    pub reset_timeout_ms: u64,
}

/// The last failed call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    /// `failure` or `timeout`.
    pub outcome: Outcome,
    /// What went wrong, in words (bounded in length).
    pub reason: Arc<str>,
    /// When.
    #[serde(with = "serde_rfc3339")]
    pub at: SystemTime,
}

/// The sliding window's contents.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    /// Calls in the window.
    pub calls: u64,
    /// Failed calls in the window, in percent.
    pub failure_rate: f64,
    /// Slow calls in the window, in percent.
    pub slow_call_rate: f64,
}

/// The seed's uptime: successes over calls that ran, in percent, 100 with no calls.
pub(crate) fn uptime(successes: u64, failures: u64) -> f64 {
    if successes == 0 && failures == 0 {
        return 100.0;
    }
    successes as f64 * 100.0 / (successes as f64 + failures as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_the_share_of_successes() {
        assert_eq!(uptime(0, 0), 100.0);
        assert_eq!(uptime(15, 0), 100.0);
        assert_eq!(uptime(3, 1), 75.0);
        assert_eq!(uptime(0, 5), 0.0);
        assert_eq!(uptime(u64::MAX, u64::MAX), 50.0);
    }
}
