//! The gate: admits a call or rejects it, and hands out a permit through which the call's
//! outcome reaches the policy — [`Permit`], borrowing the breaker for a call in one scope, or
//! [`OwnedPermit`], holding it for a call that outlives the scope (a response streamed on).
//! Dropping a permit unreported gives its trial slot back.

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Duration;

use tokio::time::Instant;

use super::circuit::Breaker;
use super::counters::Counter;
use super::error::OpenError;
use super::event::TransitionReason;
use super::event::{CallRecord, CallTag, Outcome};
use super::state::{State, Word};

/// What a permit knows of its call, whichever way it holds the breaker.
#[derive(Clone, Copy, Debug)]
struct Ticket {
    admitted: Word,
    started: Option<Instant>,
    tag: CallTag,
    reported: bool,
}

impl Ticket {
    #[inline]
    fn new(breaker: &Breaker, admitted: Word, tag: CallTag) -> Self {
        let started = breaker
            .inner
            .tunables
            .measures_duration()
            .then(Instant::now);
        Self {
            admitted,
            started,
            tag,
            reported: false,
        }
    }

    /// Steps: 1. measure (or take the caller's measure) and count; 2. tell the hook; 3. keep
    /// the failure's reason; 4. let the outcome move the state machine for the state the call
    /// was admitted in.
    #[inline(always)]
    fn finish(
        &mut self,
        breaker: &Breaker,
        outcome: Outcome,
        measured: Option<Duration>,
        reason: Option<&dyn fmt::Display>,
    ) {
        self.reported = true;
        let inner = &*breaker.inner;
        // The common case, a success admitted while closed with nothing to time or tell: the
        // steps below come down to one count and the closed state's check, kept inline.
        if outcome == Outcome::Success
            && self.admitted.state() == State::Closed
            && measured.is_none()
            && self.started.is_none()
            && inner.hook.is_none()
        {
            inner.counters.add(Counter::Success);
            breaker.after_closed_call(self.admitted, outcome, false);
            return;
        }
        // Field by field, in registers: a ticket handed over whole would be passed by address,
        // and the permit would then live on the stack on the path above too.
        Self::finish_in_full(
            breaker,
            self.admitted,
            self.started,
            self.tag,
            outcome,
            measured,
            reason,
        );
    }

    /// Every step, for any outcome, admitted in any state.
    #[inline(never)]
    fn finish_in_full(
        breaker: &Breaker,
        admitted: Word,
        started: Option<Instant>,
        tag: CallTag,
        outcome: Outcome,
        measured: Option<Duration>,
        reason: Option<&dyn fmt::Display>,
    ) {
        let inner = &*breaker.inner;
        let duration = measured.or_else(|| started.map(|started| started.elapsed()));
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
            tag,
        });
        if let Some(reason) = reason.filter(|_| outcome.is_failure()) {
            breaker.note_failure(outcome, reason);
        }
        match admitted.state() {
            State::Closed => breaker.after_closed_call(admitted, outcome, slow),
            State::HalfOpen => breaker.after_trial(admitted, outcome),
            State::Open | State::ForcedOpen | State::Disabled => {}
        }
    }

    /// An unreported call: counted as cancelled, its trial slot given back.
    #[inline]
    fn cancel(&self, breaker: &Breaker) {
        if !self.reported {
            self.cancel_unreported(breaker);
        }
    }

    /// Out of line: a permit's drop stays a check of one flag, small enough to inline
    /// wherever a permit may be dropped.
    #[cold]
    #[inline(never)]
    fn cancel_unreported(&self, breaker: &Breaker) {
        breaker.inner.counters.add(Counter::Cancelled);
        if self.admitted.state() == State::HalfOpen {
            breaker.release_trial(self.admitted);
        }
    }
}

/// Leave to run one call through a breaker. Report how it went with one of the `record_*`
/// methods; a permit dropped without a report counts as cancelled and frees its trial slot.
#[must_use = "a permit must be used to report the call's outcome"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    ticket: Ticket,
}

/// A [`Permit`] that holds its breaker, for a call whose outcome is known only later and
/// elsewhere (a response streamed on to a client, say).
#[must_use = "a permit must be used to report the call's outcome"]
pub struct OwnedPermit {
    breaker: Breaker,
    ticket: Ticket,
}

impl Breaker {
    /// Asks the gate for leave to make one call.
    ///
    /// Closed and disabled breakers admit every call; an open one rejects at once; a half-open
    /// one admits up to `half_open_max_calls` trial calls at a time.
    #[inline]
    pub fn acquire(&self) -> Result<Permit<'_>, OpenError> {
        self.acquire_tagged(CallTag::DEFAULT)
    }

    /// [`acquire`](Self::acquire), the call labelled `tag` for the outcome hook.
    #[inline]
    pub fn acquire_tagged(&self, tag: CallTag) -> Result<Permit<'_>, OpenError> {
        match self.admit() {
            Ok(word) => Ok(Permit::new(self, word, tag)),
            Err(word) => Err(self.reject(word, tag)),
        }
    }

    /// The gate's decision: `Ok` with the state word the call is admitted in, or `Err` with
    /// the one that rejects it. Two words come back in registers, so a caller on the closed
    /// path builds its permit there rather than in a large `Result` on the stack.
    #[inline]
    pub(crate) fn admit(&self) -> Result<Word, Word> {
        let word = self.inner.load();
        // Closed (or disabled) admits at once: kept inline, the other states out of line.
        if matches!(word.state(), State::Closed | State::Disabled) {
            return Ok(word);
        }
        self.admit_unless_closed(word)
    }

    /// The gate for a breaker found neither closed nor disabled (it may have moved since).
    #[inline(never)]
    fn admit_unless_closed(&self, mut word: Word) -> Result<Word, Word> {
        let inner = &*self.inner;
        loop {
            match word.state() {
                State::Closed | State::Disabled => return Ok(word),
                State::HalfOpen => {
                    if word.in_flight() >= inner.tunables.half_open_max_calls() {
                        return Err(word);
                    }
                    match inner.compare_exchange(word, word.with_trial_started()) {
                        Ok(_) => return Ok(word),
                        Err(actual) => word = actual,
                    }
                }
                State::Open if word.is_lazy() && Instant::now() >= inner.open_until() => {
                    // No timer could be armed (no runtime when it opened): half-open here.
                    self.transition(word, State::HalfOpen, TransitionReason::ResetTimeoutElapsed);
                    word = inner.load();
                }
                State::Open | State::ForcedOpen => return Err(word),
            }
        }
    }

    /// [`acquire_tagged`](Self::acquire_tagged), with a permit that holds the breaker.
    pub fn acquire_owned(&self, tag: CallTag) -> Result<OwnedPermit, OpenError> {
        let mut permit = self.acquire_tagged(tag)?;
        let ticket = permit.ticket;
        // The borrowed permit hands its call over: it must not count it as cancelled.
        permit.ticket.reported = true;
        Ok(OwnedPermit {
            breaker: self.clone(),
            ticket,
        })
    }

    /// While open this is the hot path: one counter, no clock, no shared reference count.
    #[inline]
    pub(crate) fn reject(&self, word: Word, tag: CallTag) -> OpenError {
        let inner = &*self.inner;
        inner.counters.add(Counter::Rejected);
        inner.report(CallRecord {
            outcome: Outcome::Rejected,
            duration: None,
            slow: false,
            tag,
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
    pub(crate) fn new(breaker: &'a Breaker, admitted: Word, tag: CallTag) -> Self {
        Self {
            breaker,
            ticket: Ticket::new(breaker, admitted, tag),
        }
    }
}

/// The reporting methods, the same for both kinds of permit.
macro_rules! reporting {
    ($permit:ty, $breaker:ident => $borrow:expr) => {
        impl $permit {
            /// Whether this is a trial call of a half-open breaker.
            pub fn is_trial(&self) -> bool {
                self.ticket.admitted.state() == State::HalfOpen
            }

            /// The call succeeded.
            #[inline]
            pub fn record_success(self) {
                self.finish(Outcome::Success, None, None);
            }

            /// The call failed because of `reason` (kept, shortened, as the last failure).
            pub fn record_failure(self, reason: &dyn fmt::Display) {
                self.finish(Outcome::Failure, None, Some(reason));
            }

            /// The call ran out of time (a failure).
            pub fn record_timeout(self, reason: &dyn fmt::Display) {
                self.finish(Outcome::Timeout, None, Some(reason));
            }

            /// The call's result says nothing about the service's health (a bad request, say).
            pub fn record_ignored(self) {
                self.finish(Outcome::Ignored, None, None);
            }

            /// A call the caller timed itself (made elsewhere and reported here): `outcome`
            /// after `duration`, with `reason` for a failure.
            pub fn record_measured(
                self,
                outcome: Outcome,
                duration: Duration,
                reason: Option<&dyn fmt::Display>,
            ) {
                self.finish(outcome, Some(duration), reason);
            }
        }

        impl Drop for $permit {
            #[inline]
            fn drop(&mut self) {
                let $breaker = &*self;
                let breaker: &Breaker = $borrow;
                self.ticket.cancel(breaker);
            }
        }

        impl fmt::Debug for $permit {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $breaker = self;
                let breaker: &Breaker = $borrow;
                f.debug_struct(stringify!($permit))
                    .field("breaker", &breaker.name())
                    .field("admitted_in", &self.ticket.admitted.state())
                    .field("tag", &self.ticket.tag)
                    .field("reported", &self.ticket.reported)
                    .finish()
            }
        }
    };
}

reporting!(Permit<'_>, permit => permit.breaker);
reporting!(OwnedPermit, permit => &permit.breaker);

impl Permit<'_> {
    /// Reports the call. The report marks the permit spent before anything can panic, so its
    /// drop would do nothing: it is skipped. A permit that could still be dropped while the
    /// report runs would have to wait on the stack for the unwinding code; skipped, it stays
    /// in registers on the closed path.
    #[inline(always)]
    pub(crate) fn finish(
        self,
        outcome: Outcome,
        measured: Option<Duration>,
        reason: Option<&dyn fmt::Display>,
    ) {
        let permit = ManuallyDrop::new(self);
        let mut ticket = permit.ticket;
        ticket.finish(permit.breaker, outcome, measured, reason);
    }
}

impl OwnedPermit {
    /// Reports the call; the permit is then dropped, which lets go of its breaker.
    #[inline(always)]
    pub(crate) fn finish(
        mut self,
        outcome: Outcome,
        measured: Option<Duration>,
        reason: Option<&dyn fmt::Display>,
    ) {
        let Self { breaker, ticket } = &mut self;
        ticket.finish(breaker, outcome, measured, reason);
    }
}
