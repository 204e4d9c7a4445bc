//! The gate: admits a call or rejects it, and hands out a [`Permit`] through which the call's
//! outcome reaches the policy. Dropping a permit unreported gives its trial slot back.

use std::fmt;

use tokio::time::Instant;

use super::circuit::Breaker;
use super::counters::Counter;
use super::error::OpenError;
use super::event::TransitionReason;
use super::event::{CallRecord, Outcome};
use super::state::{State, Word};

/// Leave to run one call through a breaker. Report how it went with one of the `record_*`
/// methods; a permit dropped without a report counts as cancelled and frees its trial slot.
#[must_use = "a permit must be used to report the call's outcome"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    admitted: Word,
    started: Option<Instant>,
    reported: bool,
}

impl Breaker {
    /// Asks the gate for leave to make one call.
    ///
    /// Closed and disabled breakers admit every call; an open one rejects at once; a half-open
    /// one admits up to `half_open_max_calls` trial calls at a time.
    #[inline]
    pub fn acquire(&self) -> Result<Permit<'_>, OpenError> {
        let inner = &*self.inner;
        let mut word = inner.load();
        loop {
            match word.state() {
                State::Closed | State::Disabled => return Ok(Permit::new(self, word)),
                State::HalfOpen => {
                    if word.in_flight() >= inner.tunables.half_open_max_calls() {
                        return Err(self.reject(word));
                    }
                    match inner.compare_exchange(word, word.with_trial_started()) {
                        Ok(_) => return Ok(Permit::new(self, word)),
                        Err(actual) => word = actual,
                    }
                }
                State::Open if word.is_lazy() && Instant::now() >= inner.open_until() => {
                    // No timer could be armed (no runtime when it opened): half-open here.
                    self.transition(word, State::HalfOpen, TransitionReason::ResetTimeoutElapsed);
                    word = inner.load();
                }
                State::Open | State::ForcedOpen => return Err(self.reject(word)),
            }
        }
    }

    /// While open this is the hot path: one counter, no clock, no shared reference count.
    #[inline]
    fn reject(&self, word: Word) -> OpenError {
        let inner = &*self.inner;
        inner.counters.add(Counter::Rejected);
        inner.report(CallRecord {
            outcome: Outcome::Rejected,
            duration: None,
            slow: false,
        });
        OpenError {
            service: inner.error_name.clone(),
            state: word.state(),
            next_attempt: (word.state() == State::Open).then(|| inner.open_until()),
            next_attempt_unix_nanos: inner.open_until_unix_nanos(),
        }
    }
}

impl<'a> Permit<'a> {
    #[inline]
    fn new(breaker: &'a Breaker, admitted: Word) -> Self {
        let started = breaker
            .inner
            .tunables
            .measures_duration()
            .then(Instant::now);
        Self {
            breaker,
            admitted,
            started,
            reported: false,
        }
    }

    /// Whether this is a trial call of a half-open breaker.
    pub fn is_trial(&self) -> bool {
        self.admitted.state() == State::HalfOpen
    }

    /// The call succeeded.
    #[inline]
    pub fn record_success(self) {
        self.finish(Outcome::Success, None);
    }

    /// The call failed because of `reason` (kept, shortened, as the last failure).
    pub fn record_failure(self, reason: &dyn fmt::Display) {
        self.finish(Outcome::Failure, Some(reason));
    }

    /// The call ran out of time (a failure).
    pub fn record_timeout(self, reason: &dyn fmt::Display) {
        self.finish(Outcome::Timeout, Some(reason));
    }

    /// The call's result says nothing about the service's health (a bad request, say).
    pub fn record_ignored(self) {
        self.finish(Outcome::Ignored, None);
    }

    /// Steps: 1. measure and count; 2. tell the hook; 3. keep the failure's reason;
    /// 4. let the outcome move the state machine for the state the call was admitted in.
    #[inline]
    pub(crate) fn finish(mut self, outcome: Outcome, reason: Option<&dyn fmt::Display>) {
        self.reported = true;
        let inner = &*self.breaker.inner;
        let duration = self.started.map(|started| started.elapsed());
        let slow = matches!(
            (duration, inner.tunables.slow_call_duration()),
            (Some(took), Some(limit)) if took > limit
        );
        inner.counters.add(match outcome {
            Outcome::Success => Counter::Success,
            Outcome::Failure => Counter::Failure,
            Outcome::Timeout => Counter::Timeout,
            Outcome::Rejected => Counter::Rejected,
            Outcome::Ignored => Counter::Ignored,
        });
        if slow {
            inner.counters.add(Counter::Slow);
        }
        inner.report(CallRecord {
            outcome,
            duration,
            slow,
        });
        if let Some(reason) = reason.filter(|_| outcome.is_failure()) {
            self.breaker.note_failure(outcome, reason);
        }
        match self.admitted.state() {
            State::Closed => self.breaker.after_closed_call(self.admitted, outcome, slow),
            State::HalfOpen => self.breaker.after_trial(self.admitted, outcome),
            State::Open | State::ForcedOpen | State::Disabled => {}
        }
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.reported {
            return;
        }
        self.breaker.inner.counters.add(Counter::Cancelled);
        if self.admitted.state() == State::HalfOpen {
            self.breaker.release_trial(self.admitted);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("admitted_in", &self.admitted.state())
            .field("reported", &self.reported)
            .finish()
    }
}
