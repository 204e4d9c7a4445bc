//! The breaker's tunable policy: thresholds, timeouts, the optional sliding window and the
//! optional backoff of the open period, with the validation that keeps every value usable.

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

/// A policy value that cannot work, with what is allowed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A count that must be at least one was zero.
    #[error("{field} must be at least 1")]
    Zero {
        /// The policy field.
        field: &'static str,
    },
    /// A count was larger than the breaker can hold.
    #[error("{field} is {value}, the largest allowed is {max}")]
    TooLarge {
        /// The policy field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A duration that must be positive was zero.
    #[error("{field} must be longer than 0s")]
    ZeroDuration {
        /// The policy field.
        field: &'static str,
    },
    /// A duration was longer than [`MAX_DURATION`].
    #[error("{field} is longer than a year, the longest allowed")]
    TooLong {
        /// The policy field.
        field: &'static str,
    },
    /// A percentage was outside 0 < p <= 100.
    #[error("{field} is {value}, allowed is a percentage above 0 and at most 100")]
    BadPercentage {
        /// The policy field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The window's minimum exceeds its size, so rates would never be judged.
    #[error("window.minimum_calls ({minimum}) is larger than window.size ({size})")]
    MinimumAboveSize {
        /// The minimum given.
        minimum: u32,
        /// The window size given.
        size: u32,
    },
    /// The window has neither a failure-rate nor a slow-call-rate threshold.
    #[error("window needs failure_rate_threshold or slow_call_rate_threshold")]
    WindowWithoutThreshold,
    /// A slow-call rate was set without the duration that makes a call slow.
    #[error("window.slow_call_rate_threshold needs slow_call_duration to be set")]
    SlowRateWithoutDuration,
    /// The backoff multiplier was below 1, above [`MAX_BACKOFF_MULTIPLIER`] or not a number.
    #[error("backoff.multiplier is {}, allowed is a finite number from 1 to 1000", short(*.0))]
    BadMultiplier(f64),
    /// The backoff jitter was outside 0..=1.
    #[error("backoff.jitter is {0}, allowed is a fraction from 0 to 1")]
    BadJitter(f64),
    /// A running breaker was asked to change its sliding window or backoff.
    #[error("a different sliding window or backoff needs a new breaker")]
    NeedsNewBreaker,
    /// The backoff cap is shorter than the reset timeout it would grow from.
    #[error("backoff.max ({max:?}) is shorter than reset_timeout ({reset_timeout:?})")]
    MaxBelowResetTimeout {
        /// The cap given.
        max: Duration,
        /// The reset timeout given.
        reset_timeout: Duration,
    },
}

impl Policy {
    /// Checks every value; a breaker is only ever built from a policy that passed.
    pub fn validate(&self) -> Result<(), PolicyError> {
        at_least_one("failure_threshold", self.failure_threshold)?;
        half_open_count("half_open_max_calls", self.half_open_max_calls)?;
        half_open_count("success_threshold", self.success_threshold)?;
        positive("timeout", self.timeout)?;
        positive("reset_timeout", self.reset_timeout)?;
        if let Some(slow) = self.slow_call_duration {
            positive("slow_call_duration", slow)?;
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
        at_least_one("window.size", window.size)?;
        if window.size > MAX_WINDOW_SIZE {
            return Err(PolicyError::TooLarge {
                field: "window.size",
                value: window.size.into(),
                max: MAX_WINDOW_SIZE.into(),
            });
        }
        at_least_one("window.minimum_calls", window.minimum_calls)?;
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
            percentage("window.failure_rate_threshold", rate)?;
        }
        if let Some(rate) = window.slow_call_rate_threshold {
            percentage("window.slow_call_rate_threshold", rate)?;
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
        bounded("backoff.max", backoff.max)?;
        if backoff.max < self.reset_timeout {
            return Err(PolicyError::MaxBelowResetTimeout {
                max: backoff.max,
                reset_timeout: self.reset_timeout,
            });
        }
        Ok(())
    }
}

fn at_least_one(field: &'static str, value: u32) -> Result<(), PolicyError> {
    if value == 0 {
        return Err(PolicyError::Zero { field });
    }
    Ok(())
}

fn half_open_count(field: &'static str, value: u32) -> Result<(), PolicyError> {
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
fn positive(field: &'static str, value: Duration) -> Result<(), PolicyError> {
    if value.is_zero() {
        return Err(PolicyError::ZeroDuration { field });
    }
    bounded(field, value)
}

fn bounded(field: &'static str, value: Duration) -> Result<(), PolicyError> {
    if value > MAX_DURATION {
        return Err(PolicyError::TooLong { field });
    }
    Ok(())
}

fn percentage(field: &'static str, value: f64) -> Result<(), PolicyError> {
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
                "window needs failure_rate_threshold or slow_call_rate_threshold",
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
