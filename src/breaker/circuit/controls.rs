//! The manual controls (reset, force open, disable), a provider's wait before the next trial,
//! and the snapshot a breaker resumes from after a restart.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::{Breaker, MAX_TRIAL_HOLD, unix_nanos};
use crate::breaker::event::TransitionReason;
use crate::breaker::snapshot::{Change, Snapshot};
use crate::breaker::state::State;

impl Breaker {
    /// Closes the breaker and clears every count, the window and the last failure.
    pub fn reset(&self) {
        let inner = &*self.inner;
        let mut slow = inner.lock();
        inner.counters.clear();
        slow.last_failure = None;
        self.transition_locked(
            &mut slow,
            None,
            State::Closed,
            TransitionReason::ManualReset,
        );
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected.
    pub fn force_open(&self) {
        let mut slow = self.inner.lock();
        self.transition_locked(
            &mut slow,
            None,
            State::ForcedOpen,
            TransitionReason::ForcedOpen,
        );
    }

    /// Lets every call through until [`reset`](Self::reset); calls are still counted and
    /// reported, but nothing trips the breaker.
    pub fn disable(&self) {
        let mut slow = self.inner.lock();
        self.transition_locked(&mut slow, None, State::Disabled, TransitionReason::Disabled);
    }

    /// What the breaker needs to resume after a restart (see [`restore`](Self::restore)).
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        let slow = inner.lock();
        let state = inner.load().state();
        Snapshot {
            state,
            next_attempt: (state == State::Open).then(|| inner.clock.wall_time(inner.open_until())),
            consecutive_failures: inner.consecutive_failures.load(Ordering::Relaxed),
            reopenings: slow.reopenings,
            last_failure: slow.last_failure.clone(),
            last_change: slow.last_transition.as_ref().map(Change::of),
        }
    }

    /// Puts the breaker where `snapshot` left it: an open breaker stays open for what is left
    /// of its wait (at most the longest open period the policy allows, whatever the clock did
    /// meanwhile) and half-opens at once when the wait is over; forced open and disabled stay
    /// so; failures in a row, the backoff step, the last failure and the last change are kept.
    /// The sliding window starts empty.
    ///
    /// Meant for a breaker just built, before its first call. Nothing is broadcast: for the
    /// service nothing changed. Returns the state the breaker is in now.
    pub fn restore(&self, snapshot: &Snapshot) -> State {
        let inner = &*self.inner;
        let mut slow = inner.lock();
        let now = Instant::now();
        let wall_now = inner.clock.wall_time(now);
        let longest = inner
            .built
            .backoff
            .as_ref()
            .map_or(inner.tunables.reset_timeout(), |backoff| {
                backoff.max.max(inner.tunables.reset_timeout())
            });
        let remaining = snapshot
            .next_attempt
            .and_then(|at| at.duration_since(wall_now).ok())
            .map(|remaining| remaining.min(longest))
            .filter(|remaining| !remaining.is_zero());
        let state = match (snapshot.state, remaining) {
            (State::Open, None) => State::HalfOpen,
            (state, _) => state,
        };
        inner
            .consecutive_failures
            .store(snapshot.consecutive_failures, Ordering::Relaxed);
        slow.reopenings = snapshot.reopenings;
        slow.last_failure = snapshot.last_failure.clone();
        slow.last_transition = snapshot.last_change.as_ref().map(|change| {
            let ago = wall_now.duration_since(change.at).unwrap_or_default();
            let at = now.checked_sub(ago).unwrap_or(now);
            change.to_transition(Arc::clone(&inner.name), at)
        });
        let runtime = Handle::try_current().ok();
        let open_until = (state == State::Open).then(|| now + remaining.unwrap_or_default());
        if let Some(until) = open_until {
            inner
                .open_until_nanos
                .store(inner.clock.offset_of(until), Ordering::Release);
            inner
                .open_until_unix_nanos
                .store(unix_nanos(inner.clock.wall_time(until)), Ordering::Release);
        }
        let lazy = open_until.is_some() && runtime.is_none();
        let mut current = inner.load();
        while let Err(actual) = inner.compare_exchange(current, current.next(state, lazy)) {
            current = actual;
        }
        if let Some(timer) = slow.open_timer.take() {
            timer.abort();
        }
        if let (Some(until), Some(runtime)) = (open_until, runtime) {
            slow.open_timer = Some(self.arm_open_timer(&runtime, until));
        }
        state
    }

    /// Holds the next trial call back until at least `wait` from now, as a provider asked
    /// (`Retry-After`): an open breaker's open period is lengthened to it; a breaker that is not
    /// open keeps it for when it opens next (a wait already past by then is forgotten).
    pub fn defer_next_trial(&self, wait: Duration) {
        let inner = &*self.inner;
        let longest_open = inner
            .built
            .backoff
            .as_ref()
            .map_or(Duration::ZERO, |backoff| backoff.max)
            .max(inner.tunables.reset_timeout());
        let wait = wait.min(MAX_TRIAL_HOLD.max(longest_open));
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        let mut slow = inner.lock();
        if inner.load().state() != State::Open {
            slow.not_before = Some(slow.not_before.map_or(until, |kept| kept.max(until)));
            return;
        }
        if until <= inner.open_until() {
            return;
        }
        inner
            .open_until_nanos
            .store(inner.clock.offset_of(until), Ordering::Release);
        let unix = unix_nanos(inner.clock.wall_time(until));
        inner.open_until_unix_nanos.store(unix, Ordering::Release);
        if let Some(timer) = slow.open_timer.take() {
            timer.abort();
        }
        if let Ok(runtime) = Handle::try_current() {
            slow.open_timer = Some(self.arm_open_timer(&runtime, until));
        }
    }
}
