//! What a finished call does to the breaker: the thresholds of the closed state (failures in
//! a row, the sliding window's rates) and the trials of the half-open state.

use std::sync::atomic::Ordering;

use super::Breaker;
use crate::breaker::event::{Outcome, TransitionReason};
use crate::breaker::state::{State, Word};

impl Breaker {
    /// What a call admitted in the closed state does to the thresholds. The common case, a
    /// success with no window, is one relaxed load; the rest is kept out of line.
    #[inline]
    pub(crate) fn after_closed_call(&self, admitted: Word, outcome: Outcome, slow_call: bool) {
        let inner = &*self.inner;
        if outcome == Outcome::Success && inner.window.is_none() {
            // A late success from an earlier epoch may clear the count too: it did succeed.
            if inner.consecutive_failures.load(Ordering::Relaxed) != 0 {
                inner.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        self.after_closed_call_out_of_line(admitted, outcome, slow_call);
    }

    #[inline(never)]
    fn after_closed_call_out_of_line(&self, admitted: Word, outcome: Outcome, slow_call: bool) {
        let inner = &*self.inner;
        if outcome == Outcome::Ignored || !inner.load().same_phase(admitted) {
            return;
        }
        let failed = outcome.is_failure();
        if failed {
            let count = inner
                .consecutive_failures
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if count >= inner.tunables.failure_threshold()
                && self.transition(
                    admitted,
                    State::Open,
                    TransitionReason::ConsecutiveFailures { count },
                )
            {
                return;
            }
        } else if inner.consecutive_failures.load(Ordering::Relaxed) != 0 {
            inner.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if let (Some(window), Some(config)) = (&inner.window, &inner.built.window) {
            window.record(failed, slow_call);
            let totals = window.totals();
            if totals.calls < u64::from(config.minimum_calls) {
                return;
            }
            let reason = if config
                .failure_rate_threshold
                .is_some_and(|t| totals.failure_rate() >= t)
            {
                TransitionReason::FailureRate {
                    percent: totals.failure_rate(),
                    calls: totals.calls,
                }
            } else if config
                .slow_call_rate_threshold
                .is_some_and(|t| totals.slow_rate() >= t)
            {
                TransitionReason::SlowCallRate {
                    percent: totals.slow_rate(),
                    calls: totals.calls,
                }
            } else {
                return;
            };
            self.transition(admitted, State::Open, reason);
        }
    }

    /// What a trial call admitted while half-open does: enough successes close the breaker,
    /// any failure reopens it, an ignored result just frees the slot.
    pub(crate) fn after_trial(&self, admitted: Word, outcome: Outcome) {
        let inner = &*self.inner;
        match outcome {
            Outcome::Failure | Outcome::Timeout => {
                self.transition(admitted, State::Open, TransitionReason::TrialFailed);
            }
            Outcome::Success => {
                let mut current = inner.load();
                while current.same_phase(admitted) {
                    let next = current.with_trial_finished().with_trial_succeeded();
                    if next.successes() >= inner.tunables.success_threshold() {
                        let count = next.successes();
                        self.transition(
                            current,
                            State::Closed,
                            TransitionReason::TrialsSucceeded { count },
                        );
                        return;
                    }
                    match inner.compare_exchange(current, next) {
                        Ok(_) => return,
                        Err(actual) => current = actual,
                    }
                }
            }
            Outcome::Ignored | Outcome::Rejected => self.release_trial(admitted),
        }
    }

    /// Gives a trial slot back, if the half-open phase it was taken in is still current.
    pub(crate) fn release_trial(&self, admitted: Word) {
        let inner = &*self.inner;
        let mut current = inner.load();
        while current.same_phase(admitted) {
            match inner.compare_exchange(current, current.with_trial_finished()) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}
