//! The breaker's tunable policy: thresholds, timeouts, the optional sliding window and the
//! optional backoff of the open period, with the validation that keeps every value usable.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Consecutive failures that open a breaker when nothing else is configured (the seed's value
/// for its communication services).
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// Time a single call may take before it is cancelled and counted as a timeout (the seed's 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time an open breaker waits before it lets a trial call through.
pub const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(60);
/// Trial calls a half-open breaker admits at the same time.
pub const DEFAULT_HALF_OPEN_MAX_CALLS: u32 = 1;
/// Successful trial calls that close a half-open breaker.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;
/// The largest value of a per-state counter packed into the breaker's state word.
pub const MAX_HALF_OPEN_COUNT: u32 = (1 << 16) - 1;
/// The largest sliding window, in calls.
pub const MAX_WINDOW_SIZE: u32 = 100_000;
/// The longest timeout, reset timeout, slow-call duration or backoff cap: a year, so that no
/// deadline the breaker computes can overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);
/// The largest backoff multiplier.
pub const MAX_BACKOFF_MULTIPLIER: f64 = 1000.0;

/// How a breaker decides to open, how long it stays open and how it tests recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Consecutive failures (timeouts included) that open a closed breaker.
    pub failure_threshold: u32,
    /// Time a call may take; past it the call is cancelled and counted as a timeout failure.
    pub timeout: Duration,
    /// Time an open breaker rejects calls before it admits trial calls (half-open).
    pub reset_timeout: Duration,
    /// Trial calls admitted at the same time while half-open.
    pub half_open_max_calls: u32,
    /// Successful trial calls that close a half-open breaker; any failed trial reopens it.
    pub success_threshold: u32,
    /// Calls slower than this are counted as slow (and feed the slow-call rate of the window).
    pub slow_call_duration: Option<Duration>,
    /// Failure-rate and slow-call-rate tripping over the last N calls, when set.
    pub window: Option<SlidingWindow>,
    /// Lengthening of the open period when a breaker reopens again and again, when set.
    pub backoff: Option<Backoff>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            timeout: DEFAULT_TIMEOUT,
            reset_timeout: DEFAULT_RESET_TIMEOUT,
            half_open_max_calls: DEFAULT_HALF_OPEN_MAX_CALLS,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
            slow_call_duration: None,
            window: None,
            backoff: None,
        }
    }
}

/// A count-based sliding window over the last `size` calls (resilience4j's model): once at
/// least `minimum_calls` are in it, the breaker opens when the failure rate or the slow-call
/// rate reaches its threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct SlidingWindow {
    /// Calls the window remembers.
    pub size: u32,
    /// Calls that must be in the window before a rate is judged.
    pub minimum_calls: u32,
    /// Percentage of failed calls (0 < p <= 100) that opens the breaker.
    pub failure_rate_threshold: Option<f64>,
    /// Percentage of slow calls (0 < p <= 100) that opens the breaker; needs
    /// [`Policy::slow_call_duration`].
    pub slow_call_rate_threshold: Option<f64>,
}

/// Growth of the open period each time a breaker reopens from half-open without having closed
/// in between, like Envoy's ejection time or Polly's break-duration generator.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// Factor applied per consecutive reopening (at least 1).
    pub multiplier: f64,
    /// The longest open period.
    pub max: Duration,
    /// Fraction (0..=1) by which each period is shortened at random, so replicas do not probe
    /// a recovering provider in lockstep.
    pub jitter: f64,
}

/// A policy setting, as errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyField {
    /// [`Policy::failure_threshold`].
    FailureThreshold,
    /// [`Policy::half_open_max_calls`].
    HalfOpenMaxCalls,
    /// [`Policy::success_threshold`].
    SuccessThreshold,
    /// [`Policy::timeout`].
    Timeout,
    /// [`Policy::reset_timeout`].
    ResetTimeout,
    /// [`Policy::slow_call_duration`].
    SlowCallDuration,
    /// [`SlidingWindow::size`].
    WindowSize,
    /// [`SlidingWindow::minimum_calls`].
    WindowMinimumCalls,
    /// [`SlidingWindow::failure_rate_threshold`].
    WindowFailureRateThreshold,
    /// [`SlidingWindow::slow_call_rate_threshold`].
    WindowSlowCallRateThreshold,
    /// [`Backoff::multiplier`].
    BackoffMultiplier,
    /// [`Backoff::jitter`].
    BackoffJitter,
    /// [`Backoff::max`].
    BackoffMax,
}

impl PolicyField {
    /// The field's name in the library's own terms: `failure_threshold`, `window.size`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyField::FailureThreshold => "failure_threshold",
            PolicyField::HalfOpenMaxCalls => "half_open_max_calls",
            PolicyField::SuccessThreshold => "success_threshold",
            PolicyField::Timeout => "timeout",
            PolicyField::ResetTimeout => "reset_timeout",
            PolicyField::SlowCallDuration => "slow_call_duration",
            PolicyField::WindowSize => "window.size",
            PolicyField::WindowMinimumCalls => "window.minimum_calls",
            PolicyField::WindowFailureRateThreshold => "window.failure_rate_threshold",
            PolicyField::WindowSlowCallRateThreshold => "window.slow_call_rate_threshold",
            PolicyField::BackoffMultiplier => "backoff.multiplier",
            PolicyField::BackoffJitter => "backoff.jitter",
            PolicyField::BackoffMax => "backoff.max",
        }
    }
}

impl fmt::Display for PolicyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy value that cannot work, with what is allowed.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{}", self.describe(PolicyField::as_str))]
pub enum PolicyError {
    /// A count that must be at least one was zero.
    Zero {
        /// The policy field.
        field: PolicyField,
    },
    /// A count was larger than the breaker can hold.
    TooLarge {
        /// The policy field.
        field: PolicyField,
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A duration that must be positive was zero.
    ZeroDuration {
        /// The policy field.
        field: PolicyField,
    },
    /// A duration was longer than [`MAX_DURATION`].
    TooLong {
        /// The policy field.
        field: PolicyField,
    },
    /// A percentage was outside 0 < p <= 100.
    BadPercentage {
        /// The policy field.
        field: PolicyField,
        /// The value given.
        value: f64,
    },
    /// The window's minimum exceeds its size, so rates would never be judged.
    MinimumAboveSize {
        /// The minimum given.
        minimum: u32,
        /// The window size given.
        size: u32,
    },
    /// The window has neither a failure-rate nor a slow-call-rate threshold.
    WindowWithoutThreshold,
    /// A slow-call rate was set without the duration that makes a call slow.
    SlowRateWithoutDuration,
    /// The backoff multiplier was below 1, above [`MAX_BACKOFF_MULTIPLIER`] or not a number.
    BadMultiplier(f64),
    /// The backoff jitter was outside 0..=1.
    BadJitter(f64),
    /// A running breaker was asked to change its sliding window or backoff.
    NeedsNewBreaker,
    /// The backoff cap is shorter than the reset timeout it would grow from.
    MaxBelowResetTimeout {
        /// The cap given.
        max: Duration,
        /// The reset timeout given.
        reset_timeout: Duration,
    },
}

impl PolicyError {
    /// The setting the problem is about (the one to point at), if one.
    pub fn field(&self) -> Option<PolicyField> {
        match self {
            PolicyError::Zero { field }
            | PolicyError::TooLarge { field, .. }
            | PolicyError::ZeroDuration { field }
            | PolicyError::TooLong { field }
            | PolicyError::BadPercentage { field, .. } => Some(*field),
            PolicyError::MinimumAboveSize { .. } => Some(PolicyField::WindowMinimumCalls),
            PolicyError::WindowWithoutThreshold => Some(PolicyField::WindowSize),
            PolicyError::SlowRateWithoutDuration => Some(PolicyField::WindowSlowCallRateThreshold),
            PolicyError::BadMultiplier(_) => Some(PolicyField::BackoffMultiplier),
            PolicyError::BadJitter(_) => Some(PolicyField::BackoffJitter),
            PolicyError::MaxBelowResetTimeout { .. } => Some(PolicyField::BackoffMax),
            PolicyError::NeedsNewBreaker => None,
        }
    }

    /// The message, with each setting named by `name` (the library's names in `Display`; a
    /// config file can pass its own keys).
    pub fn describe(&self, name: impl Fn(PolicyField) -> &'static str) -> String {
        use PolicyField as F;
        match self {
            PolicyError::Zero { field } => format!("{} must be at least 1", name(*field)),
            PolicyError::TooLarge { field, value, max } => {
                format!("{} is {value}, the largest allowed is {max}", name(*field))
            }
            PolicyError::ZeroDuration { field } => {
                format!("{} must be longer than 0s", name(*field))
            }
            PolicyError::TooLong { field } => {
                format!(
                    "{} is longer than a year, the longest allowed",
                    name(*field)
                )
            }
            PolicyError::BadPercentage { field, value } => format!(
                "{} is {value}, allowed is a percentage above 0 and at most 100",
                name(*field)
            ),
            PolicyError::MinimumAboveSize { minimum, size } => format!(
                "{} ({minimum}) is larger than {} ({size})",
                name(F::WindowMinimumCalls),
                name(F::WindowSize)
            ),
            PolicyError::WindowWithoutThreshold => format!(
                "a window needs {} or {}",
                name(F::WindowFailureRateThreshold),
                name(F::WindowSlowCallRateThreshold)
            ),
            PolicyError::SlowRateWithoutDuration => format!(
                "{} needs {} to be set",
                name(F::WindowSlowCallRateThreshold),
                name(F::SlowCallDuration)
            ),
            PolicyError::BadMultiplier(value) => format!(
                "{} is {}, allowed is a finite number from 1 to 1000",
                name(F::BackoffMultiplier),
                short(*value)
            ),
            PolicyError::BadJitter(value) => format!(
                "{} is {value}, allowed is a fraction from 0 to 1",
                name(F::BackoffJitter)
            ),
            PolicyError::NeedsNewBreaker => {
                "a different sliding window or backoff needs a new breaker".to_string()
            }
            PolicyError::MaxBelowResetTimeout { max, reset_timeout } => format!(
                "{} ({max:?}) is shorter than {} ({reset_timeout:?})",
                name(F::BackoffMax),
                name(F::ResetTimeout)
            ),
        }
    }
}

impl Policy {
    /// Checks every value; a breaker is only ever built from a policy that passed.
    pub fn validate(&self) -> Result<(), PolicyError> {
        at_least_one(PolicyField::FailureThreshold, self.failure_threshold)?;
        half_open_count(PolicyField::HalfOpenMaxCalls, self.half_open_max_calls)?;
        half_open_count(PolicyField::SuccessThreshold, self.success_threshold)?;
        positive(PolicyField::Timeout, self.timeout)?;
        positive(PolicyField::ResetTimeout, self.reset_timeout)?;
        if let Some(slow) = self.slow_call_duration {
            positive(PolicyField::SlowCallDuration, slow)?;
        }
        if let Some(window) = &self.window {
            self.validate_window(window)?;
        }
        if let Some(backoff) = &self.backoff {
            self.validate_backoff(backoff)?;
        }
        Ok(())
    }

    fn validate_window(&self, window: &SlidingWindow) -> Result<(), PolicyError> {
        at_least_one(PolicyField::WindowSize, window.size)?;
        if window.size > MAX_WINDOW_SIZE {
            return Err(PolicyError::TooLarge {
                field: PolicyField::WindowSize,
                value: window.size.into(),
                max: MAX_WINDOW_SIZE.into(),
            });
        }
        at_least_one(PolicyField::WindowMinimumCalls, window.minimum_calls)?;
        if window.minimum_calls > window.size {
            return Err(PolicyError::MinimumAboveSize {
                minimum: window.minimum_calls,
                size: window.size,
            });
        }
        if window.failure_rate_threshold.is_none() && window.slow_call_rate_threshold.is_none() {
            return Err(PolicyError::WindowWithoutThreshold);
        }
        if let Some(rate) = window.failure_rate_threshold {
            percentage(PolicyField::WindowFailureRateThreshold, rate)?;
        }
        if let Some(rate) = window.slow_call_rate_threshold {
            percentage(PolicyField::WindowSlowCallRateThreshold, rate)?;
            if self.slow_call_duration.is_none() {
                return Err(PolicyError::SlowRateWithoutDuration);
            }
        }
        Ok(())
    }

    fn validate_backoff(&self, backoff: &Backoff) -> Result<(), PolicyError> {
        if !(1.0..=MAX_BACKOFF_MULTIPLIER).contains(&backoff.multiplier) {
            return Err(PolicyError::BadMultiplier(backoff.multiplier));
        }
        if !(0.0..=1.0).contains(&backoff.jitter) {
            return Err(PolicyError::BadJitter(backoff.jitter));
        }
        bounded(PolicyField::BackoffMax, backoff.max)?;
        if backoff.max < self.reset_timeout {
            return Err(PolicyError::MaxBelowResetTimeout {
                max: backoff.max,
                reset_timeout: self.reset_timeout,
            });
        }
        Ok(())
    }
}

fn at_least_one(field: PolicyField, value: u32) -> Result<(), PolicyError> {
    if value == 0 {
        return Err(PolicyError::Zero { field });
    }
    Ok(())
}

fn half_open_count(field: PolicyField, value: u32) -> Result<(), PolicyError> {
    at_least_one(field, value)?;
    if value > MAX_HALF_OPEN_COUNT {
        return Err(PolicyError::TooLarge {
            field,
            value: value.into(),
            max: MAX_HALF_OPEN_COUNT.into(),
        });
    }
    Ok(())
}

/// A number as a person reads it: `0.5`, `2`, `1e300` (not three hundred digits).
fn short(value: f64) -> String {
    if value.is_finite() && value.abs() >= 1e6 {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// Positive and at most [`MAX_DURATION`].
fn positive(field: PolicyField, value: Duration) -> Result<(), PolicyError> {
    if value.is_zero() {
        return Err(PolicyError::ZeroDuration { field });
    }
    bounded(field, value)
}

fn bounded(field: PolicyField, value: Duration) -> Result<(), PolicyError> {
    if value > MAX_DURATION {
        return Err(PolicyError::TooLong { field });
    }
    Ok(())
}

fn percentage(field: PolicyField, value: f64) -> Result<(), PolicyError> {
    if !(value > 0.0 && value <= 100.0) {
        return Err(PolicyError::BadPercentage { field, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> SlidingWindow {
        SlidingWindow {
            size: 10,
            minimum_calls: 5,
            failure_rate_threshold: Some(50.0),
            slow_call_rate_threshold: None,
        }
    }

    #[test]
    fn default_policy_is_valid() {
        assert_eq!(Policy::default().validate(), Ok(()));
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases: Vec<(Policy, &str)> = vec![
            (
                Policy {
                    failure_threshold: 0,
                    ..Policy::default()
                },
                "failure_threshold must be at least 1",
            ),
            (
                Policy {
                    half_open_max_calls: 0,
                    ..Policy::default()
                },
                "half_open_max_calls must be at least 1",
            ),
            (
                Policy {
                    success_threshold: 70_000,
                    ..Policy::default()
                },
                "success_threshold is 70000, the largest allowed is 65535",
            ),
            (
                Policy {
                    timeout: Duration::ZERO,
                    ..Policy::default()
                },
                "timeout must be longer than 0s",
            ),
            (
                Policy {
                    reset_timeout: Duration::ZERO,
                    ..Policy::default()
                },
                "reset_timeout must be longer than 0s",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        minimum_calls: 11,
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.minimum_calls (11) is larger than window.size (10)",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        size: 0,
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.size must be at least 1",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        size: 200_000,
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.size is 200000, the largest allowed is 100000",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        failure_rate_threshold: Some(0.0),
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.failure_rate_threshold is 0, allowed is a percentage above 0 and at most 100",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        failure_rate_threshold: Some(f64::NAN),
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.failure_rate_threshold is NaN, allowed is a percentage above 0 and at most 100",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        failure_rate_threshold: None,
                        ..window()
                    }),
                    ..Policy::default()
                },
                "a window needs window.failure_rate_threshold or window.slow_call_rate_threshold",
            ),
            (
                Policy {
                    window: Some(SlidingWindow {
                        slow_call_rate_threshold: Some(50.0),
                        ..window()
                    }),
                    ..Policy::default()
                },
                "window.slow_call_rate_threshold needs slow_call_duration to be set",
            ),
            (
                Policy {
                    backoff: Some(Backoff {
                        multiplier: 0.5,
                        max: Duration::from_secs(600),
                        jitter: 0.0,
                    }),
                    ..Policy::default()
                },
                "backoff.multiplier is 0.5, allowed is a finite number from 1 to 1000",
            ),
            (
                Policy {
                    backoff: Some(Backoff {
                        multiplier: 2.0,
                        max: Duration::from_secs(600),
                        jitter: 1.5,
                    }),
                    ..Policy::default()
                },
                "backoff.jitter is 1.5, allowed is a fraction from 0 to 1",
            ),
            (
                Policy {
                    backoff: Some(Backoff {
                        multiplier: 2.0,
                        max: Duration::from_secs(10),
                        jitter: 0.0,
                    }),
                    ..Policy::default()
                },
                "backoff.max (10s) is shorter than reset_timeout (60s)",
            ),
        ];
        for (policy, expected) in cases {
            let error = policy.validate().expect_err(expected);
            assert_eq!(error.to_string(), expected);
        }
    }
}
