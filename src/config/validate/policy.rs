//! A service's breaker policy: its kind's defaults, the thresholds, sliding window and
//! backoff the file sets, and a policy problem reported at the key it is about.

use std::ops::Range;

use toml::Spanned;

use super::Validator;
use crate::breaker::{Backoff, Policy, PolicyError, PolicyField, SlidingWindow};
use crate::config::DEFAULT_SLOW_CALL;
use crate::config::kinds::CheckKind;
use crate::config::raw::RawService;

/// Calls a sliding window remembers when only its thresholds are given.
const DEFAULT_WINDOW_SIZE: u32 = 20;

/// Calls that must be in the window before its rates count, when not given.
const DEFAULT_MINIMUM_CALLS: u32 = 10;

impl Validator<'_> {
    pub(super) fn policy(
        &mut self,
        raw: &RawService,
        kind: &CheckKind,
        table_span: Range<usize>,
    ) -> Policy {
        let defaults = kind.default_policy();
        let mut policy = Policy {
            failure_threshold: self.count(
                "failure_threshold",
                raw.failure_threshold.as_ref(),
                defaults.failure_threshold,
            ),
            timeout: self.duration("timeout", raw.timeout.as_ref(), defaults.timeout, false),
            reset_timeout: self.duration(
                "reset_timeout",
                raw.reset_timeout.as_ref(),
                defaults.reset_timeout,
                false,
            ),
            half_open_max_calls: self.count(
                "half_open_max_calls",
                raw.half_open_max_calls.as_ref(),
                defaults.half_open_max_calls,
            ),
            success_threshold: self.count(
                "success_threshold",
                raw.success_threshold.as_ref(),
                defaults.success_threshold,
            ),
            slow_call_duration: raw
                .slow_call
                .as_ref()
                .map(|slow| self.duration("slow_call", Some(slow), DEFAULT_SLOW_CALL, false)),
            window: None,
            backoff: None,
        };
        let windowed = raw.window_size.is_some()
            || raw.minimum_calls.is_some()
            || raw.failure_rate_threshold.is_some()
            || raw.slow_call_rate_threshold.is_some();
        if windowed {
            let size = self.count("window_size", raw.window_size.as_ref(), DEFAULT_WINDOW_SIZE);
            policy.window = Some(SlidingWindow {
                size,
                minimum_calls: self.count(
                    "minimum_calls",
                    raw.minimum_calls.as_ref(),
                    DEFAULT_MINIMUM_CALLS.min(size),
                ),
                failure_rate_threshold: raw
                    .failure_rate_threshold
                    .as_ref()
                    .map(|rate| *rate.get_ref()),
                slow_call_rate_threshold: raw
                    .slow_call_rate_threshold
                    .as_ref()
                    .map(|rate| *rate.get_ref()),
            });
            if raw.slow_call_rate_threshold.is_some() && policy.slow_call_duration.is_none() {
                // The daemon-wide slow_call applies; the breaker needs it spelled out.
                policy.slow_call_duration = Some(DEFAULT_SLOW_CALL);
            }
        }
        if raw.backoff_multiplier.is_some()
            || raw.backoff_max.is_some()
            || raw.backoff_jitter.is_some()
        {
            let multiplier = raw
                .backoff_multiplier
                .as_ref()
                .map_or(2.0, |m| *m.get_ref());
            let default_max = policy
                .reset_timeout
                .saturating_mul(8)
                .min(crate::config::duration_limit("backoff_max"));
            policy.backoff = Some(Backoff {
                multiplier,
                max: self.duration("backoff_max", raw.backoff_max.as_ref(), default_max, false),
                jitter: raw.backoff_jitter.as_ref().map_or(0.0, |j| *j.get_ref()),
            });
        }
        if let Err(error) = policy.validate() {
            let span = policy_error_span(&error, raw).unwrap_or(table_span);
            self.problems.at(span, error.describe(config_key));
        }
        policy
    }
}

/// The config key of a policy setting.
fn config_key(field: PolicyField) -> &'static str {
    match field {
        PolicyField::FailureThreshold => "failure_threshold",
        PolicyField::HalfOpenMaxCalls => "half_open_max_calls",
        PolicyField::SuccessThreshold => "success_threshold",
        PolicyField::Timeout => "timeout",
        PolicyField::ResetTimeout => "reset_timeout",
        PolicyField::SlowCallDuration => "slow_call",
        PolicyField::WindowSize => "window_size",
        PolicyField::WindowMinimumCalls => "minimum_calls",
        PolicyField::WindowFailureRateThreshold => "failure_rate_threshold",
        PolicyField::WindowSlowCallRateThreshold => "slow_call_rate_threshold",
        PolicyField::BackoffMultiplier => "backoff_multiplier",
        PolicyField::BackoffJitter => "backoff_jitter",
        PolicyField::BackoffMax => "backoff_max",
    }
}

/// The place in the file of the key a policy problem is about.
fn policy_error_span(error: &PolicyError, raw: &RawService) -> Option<Range<usize>> {
    fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
        value.as_ref().map(Spanned::span)
    }
    match error.field()? {
        PolicyField::FailureThreshold => span(&raw.failure_threshold),
        PolicyField::HalfOpenMaxCalls => span(&raw.half_open_max_calls),
        PolicyField::SuccessThreshold => span(&raw.success_threshold),
        PolicyField::Timeout => span(&raw.timeout),
        PolicyField::ResetTimeout => span(&raw.reset_timeout),
        PolicyField::SlowCallDuration => span(&raw.slow_call),
        PolicyField::WindowSize => span(&raw.window_size).or_else(|| span(&raw.minimum_calls)),
        PolicyField::WindowMinimumCalls => span(&raw.minimum_calls),
        PolicyField::WindowFailureRateThreshold => span(&raw.failure_rate_threshold),
        PolicyField::WindowSlowCallRateThreshold => span(&raw.slow_call_rate_threshold),
        PolicyField::BackoffMultiplier => span(&raw.backoff_multiplier),
        PolicyField::BackoffJitter => span(&raw.backoff_jitter),
        PolicyField::BackoffMax => span(&raw.backoff_max),
    }
}
