//! What a breaker tells the outside: the outcome of every call (for metrics and slow-call
//! logs) and every change of state (for logs and alerts).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::state::State;
use super::wall_clock::serde_rfc3339;

/// How one call ended, as counted by the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran and was classified a success.
    Success,
    /// Ran and was classified a failure.
    Failure,
    /// Ran past the timeout and was cancelled (a failure).
    Timeout,
    /// Not run: the breaker was open, or half-open with every trial slot taken.
    Rejected,
    /// Ran, and the classifier said its result says nothing about the provider's health.
    Ignored,
}

impl Outcome {
    /// The lowercase label used in metrics: `success`, `failure`, `timeout`, `rejected`, `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
            Outcome::Ignored => "ignored",
        }
    }

    /// Whether this outcome counts against the provider.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Timeout)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of call this was, as the caller labels it — say, a health check apart from a real
/// call — handed back to the outcome hook untouched. Calls made with [`Breaker::call`] and
/// [`Breaker::acquire`] carry [`CallTag::DEFAULT`].
///
/// [`Breaker::call`]: super::Breaker::call
/// [`Breaker::acquire`]: super::Breaker::acquire
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallTag(pub u8);

impl CallTag {
    /// The tag of calls that name none.
    pub const DEFAULT: CallTag = CallTag(0);
}

/// One finished call, handed to the outcome hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// How the call ended.
    pub outcome: Outcome,
    /// How long it took; `None` for rejected calls.
    pub duration: Option<Duration>,
    /// Whether it took longer than the policy's `slow_call_duration`.
    pub slow: bool,
    /// The caller's label for the call.
    pub tag: CallTag,
}

/// Why a breaker changed state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransitionReason {
    /// This many failures in a row reached the failure threshold.
    ConsecutiveFailures {
        /// Failures in a row.
        count: u32,
    },
    /// The failure rate over the sliding window reached its threshold.
    FailureRate {
        /// Failed calls in the window, in percent.
        percent: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The slow-call rate over the sliding window reached its threshold.
    SlowCallRate {
        /// Slow calls in the window, in percent.
        percent: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The open period ended; trial calls may go through.
    ResetTimeoutElapsed,
    /// Enough trial calls succeeded.
    TrialsSucceeded {
        /// Successful trial calls.
        count: u32,
    },
    /// A trial call failed or timed out.
    TrialFailed,
    /// Reset by hand.
    ManualReset,
    /// Forced open by hand.
    ForcedOpen,
    /// Disabled by hand.
    Disabled,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures { count: 1 } => f.write_str("1 failure"),
            TransitionReason::ConsecutiveFailures { count } => {
                write!(f, "{count} consecutive failures")
            }
            TransitionReason::FailureRate { percent, calls } => {
                write!(f, "failure rate {percent:.1}% over the last {calls} calls")
            }
            TransitionReason::SlowCallRate { percent, calls } => {
                write!(
                    f,
                    "slow-call rate {percent:.1}% over the last {calls} calls"
                )
            }
            TransitionReason::ResetTimeoutElapsed => f.write_str("reset timeout elapsed"),
            TransitionReason::TrialsSucceeded { count: 1 } => f.write_str("1 trial call succeeded"),
            TransitionReason::TrialsSucceeded { count } => {
                write!(f, "{count} trial calls succeeded")
            }
            TransitionReason::TrialFailed => f.write_str("trial call failed"),
            TransitionReason::ManualReset => f.write_str("reset by hand"),
            TransitionReason::ForcedOpen => f.write_str("forced open by hand"),
            TransitionReason::Disabled => f.write_str("disabled by hand"),
        }
    }
}

/// A change of state, as every subscriber receives it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The breaker's name.
    pub service: Arc<str>,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// When, on tokio's clock.
    #[serde(skip)]
    pub at: Instant,
    /// When, on the wall clock.
    #[serde(rename = "at", with = "serde_rfc3339")]
    pub at_wall: SystemTime,
    /// Consecutive failures at the time of the change.
    pub consecutive_failures: u32,
    /// The last failure's reason, if any call has failed since the last reset (shared, not
    /// copied, by every subscriber that keeps the event).
    pub last_failure: Option<Arc<str>>,
    /// When an open breaker admits its next trial call.
    #[serde(with = "serde_rfc3339::option")]
    pub next_attempt: Option<SystemTime>,
}
