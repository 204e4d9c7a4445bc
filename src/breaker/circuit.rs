//! The breaker handle: its shared state, its builder, every change of state (made in one place,
//! under one lock, in the order subscribers and the transition bus then see them) and the manual
//! controls.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::backoff::{Jitter, open_period};
use super::bus::{Outbox, Shared as BusShared, TransitionBus};
use super::counters::Counters;
use super::event::{CallRecord, Outcome, Transition, TransitionReason};
use super::name::ServiceName;
use super::policy::{Backoff, Policy, PolicyError, SlidingWindow};
use super::snapshot::Snapshot;
use super::state::{State, Word};
use super::stats::{FailureInfo, Stats, WindowStats, uptime};
use super::tunables::Tunables;
use super::wall_clock::WallClock;
use super::window::Window;

/// Transitions kept for a subscriber that falls behind, before it starts missing the oldest.
/// The channel is made on the first [`Breaker::subscribe`]; a breaker nobody subscribes to
/// has none.
pub const DEFAULT_EVENT_CAPACITY: usize = 32;
/// The longest a provider's `Retry-After` holds the next trial back, unless the breaker's own
/// longest open period (its reset timeout, or its backoff's maximum) is longer: a provider (or
/// a header gone wrong) cannot hold a breaker open for a day.
pub const MAX_TRIAL_HOLD: Duration = Duration::from_secs(15 * 60);
/// Longest failure reason kept in stats and events, in bytes.
const MAX_REASON_LEN: usize = 256;

pub(crate) type OutcomeHook = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// A circuit breaker in front of one external service. Cloning is cheap and every clone
/// shares the same state.
///
/// The breaker needs a tokio runtime with time enabled wherever it is called: timeouts use
/// tokio's timer, and an open breaker is moved to half-open by a timer task.
#[derive(Clone)]
pub struct Breaker {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    /// The name as errors copy it.
    pub(crate) error_name: ServiceName,
    /// The policy it was built with; window and backoff never change.
    built: Policy,
    /// The values that may change while it runs.
    pub(crate) tunables: Tunables,
    /// The packed [`Word`]: state, epoch and half-open counts.
    word: AtomicU64,
    consecutive_failures: AtomicU32,
    pub(crate) counters: Counters,
    window: Option<Window>,
    pub(crate) hook: Option<OutcomeHook>,
    pub(crate) clock: WallClock,
    /// When the current open period ends, in nanoseconds after `clock`'s origin.
    open_until_nanos: AtomicU64,
    /// The same moment on the wall clock, in nanoseconds since the Unix epoch.
    open_until_unix_nanos: AtomicU64,
    /// The bus every transition goes to, if the breaker was built on one; held weakly, so a
    /// bus nobody reads any more is freed.
    bus: Option<Weak<BusShared>>,
    /// The capacity of the subscribers' channel, once there is one.
    event_capacity: usize,
    slow: Mutex<SlowPath>,
}

/// What only changes of state and failures touch; its lock also orders the transitions.
struct SlowPath {
    last_failure: Option<FailureInfo>,
    last_transition: Option<Transition>,
    /// Reopenings from half-open in a row, for the backoff.
    reopenings: u32,
    jitter: Jitter,
    open_timer: Option<AbortHandle>,
    /// No trial before this (a provider's `Retry-After`), applied when the breaker opens.
    not_before: Option<Instant>,
    /// The subscribers' channel: made by the first [`Breaker::subscribe`], freed at a change
    /// of state that finds no receiver left.
    events: Option<broadcast::Sender<Transition>>,
    /// Transitions not yet taken off the bus.
    outbox: Outbox,
}

impl Inner {
    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    pub(crate) fn compare_exchange(&self, current: Word, new: Word) -> Result<Word, Word> {
        self.word
            .compare_exchange(current.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(Word)
            .map_err(Word)
    }

    /// The end of the current open period, on tokio's clock.
    #[inline]
    pub(crate) fn open_until(&self) -> Instant {
        self.clock
            .at_offset(self.open_until_nanos.load(Ordering::Acquire))
    }

    /// The end of the current open period, in nanoseconds since the Unix epoch.
    #[inline]
    pub(crate) fn open_until_unix_nanos(&self) -> u64 {
        self.open_until_unix_nanos.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, SlowPath> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    pub(crate) fn report(&self, record: CallRecord) {
        if let Some(hook) = &self.hook {
            hook(&record);
        }
    }
}

impl Breaker {
    /// Starts a builder for a breaker named `name` with the default policy.
    pub fn builder(name: impl Into<Arc<str>>) -> BreakerBuilder {
        BreakerBuilder {
            name: name.into(),
            policy: Policy::default(),
            hook: None,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            bus: None,
        }
    }

    /// A breaker named `name` with `policy`, or the policy's first problem.
    pub fn new(name: impl Into<Arc<str>>, policy: Policy) -> Result<Self, PolicyError> {
        Self::builder(name).policy(policy).build()
    }

    /// The breaker's name (the service it protects).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.inner.tunables.overlay(self.inner.built.clone())
    }

    /// Applies a changed policy without resetting the breaker's state or counts. Thresholds,
    /// timeouts and the slow-call duration can change; a different sliding window or backoff
    /// needs a new breaker, which this refuses with [`PolicyError::NeedsNewBreaker`].
    pub fn update_policy(&self, policy: &Policy) -> Result<(), PolicyError> {
        self.check_policy(policy)?;
        self.inner.tunables.set(policy);
        Ok(())
    }

    /// Whether [`Self::update_policy`] would take `policy`, without applying it:
    /// [`PolicyError::NeedsNewBreaker`] when its sliding window or backoff differ.
    ///
    /// # Errors
    /// As [`Self::update_policy`].
    pub fn check_policy(&self, policy: &Policy) -> Result<(), PolicyError> {
        policy.validate()?;
        if policy.window != self.inner.built.window || policy.backoff != self.inner.built.backoff {
            return Err(PolicyError::NeedsNewBreaker);
        }
        Ok(())
    }

    /// The time a call may take before it is cut.
    pub fn timeout(&self) -> Duration {
        self.inner.tunables.timeout()
    }

    /// The error a call cut at the timeout gets (for callers that time calls themselves, with
    /// a permit).
    pub fn timeout_error(&self) -> super::error::TimeoutError {
        super::error::TimeoutError {
            service: self.inner.error_name.clone(),
            timeout: self.inner.tunables.timeout(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner.load().state()
    }

    /// Failures in a row right now.
    pub fn consecutive_failures(&self) -> u32 {
        self.inner.consecutive_failures.load(Ordering::Relaxed)
    }

    /// When an open breaker admits its next trial call; `None` unless open.
    pub fn next_attempt(&self) -> Option<std::time::SystemTime> {
        (self.state() == State::Open).then(|| self.inner.clock.wall_time(self.inner.open_until()))
    }

    /// A receiver of every later change of state. Sending never waits for a receiver; one
    /// that falls more than the event capacity behind misses the oldest events and is told so
    /// by `RecvError::Lagged`. The channel is made on the first call (a breaker nobody
    /// subscribes to holds none) and freed once no receiver is left. To follow many breakers
    /// without losing a transition, build them on one [`TransitionBus`] instead.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        // Made under the lock that orders the changes: a change either is sent to this
        // receiver or happened before it, and then shows in the state read after subscribing.
        let mut slow = self.inner.lock();
        match &slow.events {
            Some(events) => events.subscribe(),
            None => {
                let (events, receiver) = broadcast::channel(self.inner.event_capacity);
                slow.events = Some(events);
                receiver
            }
        }
    }

    /// What tells this breaker apart from every other one alive: clones share it.
    pub fn id(&self) -> BreakerId {
        BreakerId(Arc::as_ptr(&self.inner).addr())
    }

    /// Takes every transition held for the bus (see [`TransitionBus::try_recv`]).
    pub(crate) fn take_news(&self) -> (Vec<Transition>, u32) {
        self.inner.lock().outbox.take()
    }

    /// A snapshot of the state and the counts.
    pub fn stats(&self) -> Stats {
        let inner = &*self.inner;
        let word = inner.load();
        let totals = inner.counters.totals();
        let (last_failure, last_state_change) = {
            let slow = inner.lock();
            (slow.last_failure.clone(), slow.last_transition.clone())
        };
        let failures = totals.failure.wrapping_add(totals.timeout);
        Stats {
            state: word.state(),
            failure_count: failures,
            success_count: totals.success,
            uptime: uptime(totals.success, failures),
            next_attempt: (word.state() == State::Open)
                .then(|| inner.clock.wall_time(inner.open_until())),
            consecutive_failures: inner.consecutive_failures.load(Ordering::Relaxed),
            timeouts: totals.timeout,
            rejections: totals.rejected,
            slow_calls: totals.slow,
            ignored: totals.ignored,
            cancelled: totals.cancelled,
            total_calls: [
                totals.success,
                failures,
                totals.rejected,
                totals.ignored,
                totals.cancelled,
            ]
            .into_iter()
            .fold(0u64, u64::wrapping_add),
            half_open_in_flight: word.in_flight(),
            window: inner.window.as_ref().map(|window| {
                let totals = window.totals();
                WindowStats {
                    calls: totals.calls,
                    failure_rate: totals.failure_rate(),
                    slow_call_rate: totals.slow_rate(),
                }
            }),
            last_failure,
            last_state_change,
            failure_threshold: inner.tunables.failure_threshold(),
            timeout_ms: millis(inner.tunables.timeout()),
            reset_timeout_ms: millis(inner.tunables.reset_timeout()),
        }
    }

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
            last_change: slow
                .last_transition
                .as_ref()
                .map(super::snapshot::Change::of),
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

    /// Moves the breaker to `to` if it is still in the phase (state and epoch) of `expected`.
    /// Returns whether it did.
    pub(crate) fn transition(&self, expected: Word, to: State, reason: TransitionReason) -> bool {
        let mut slow = self.inner.lock();
        self.transition_locked(&mut slow, Some(expected), to, reason)
    }

    /// Notes a failed call for stats and events.
    #[cold]
    pub(crate) fn note_failure(&self, outcome: Outcome, reason: &dyn fmt::Display) {
        let mut text = reason.to_string();
        truncate_at_char_boundary(&mut text, MAX_REASON_LEN);
        let at = self.inner.clock.wall_time(Instant::now());
        self.inner.lock().last_failure = Some(FailureInfo {
            outcome,
            reason: Arc::from(text),
            at,
        });
    }

    /// Steps of a change of state, all under the slow-path lock:
    /// 1. check the breaker is still where the caller saw it (manual changes skip this);
    /// 2. prepare the new state's data (open period, cleared counts) before publishing it;
    /// 3. publish the new word, retrying only while trial counts move underneath;
    /// 4. arm or disarm the open timer, then record and broadcast the event.
    fn transition_locked(
        &self,
        slow: &mut SlowPath,
        expected: Option<Word>,
        to: State,
        reason: TransitionReason,
    ) -> bool {
        let inner = &*self.inner;
        let mut current = inner.load();
        if expected.is_some_and(|expected| !current.same_phase(expected)) {
            return false;
        }
        let from = current.state();
        let now = Instant::now();
        let runtime = Handle::try_current().ok();
        let mut open_until = None;
        match to {
            State::Open => {
                slow.reopenings = if from == State::HalfOpen {
                    slow.reopenings.saturating_add(1)
                } else {
                    0
                };
                let period = open_period(
                    inner.tunables.reset_timeout(),
                    inner.built.backoff.as_ref(),
                    slow.reopenings,
                    &mut slow.jitter,
                );
                let mut until = now + period;
                if let Some(not_before) = slow.not_before.take()
                    && not_before > until
                {
                    until = not_before;
                }
                let offset = inner.clock.offset_of(until);
                inner.open_until_nanos.store(offset, Ordering::Release);
                let unix = unix_nanos(inner.clock.wall_time(until));
                inner.open_until_unix_nanos.store(unix, Ordering::Release);
                open_until = Some(until);
            }
            State::Closed => {
                inner.consecutive_failures.store(0, Ordering::Relaxed);
                if let Some(window) = &inner.window {
                    window.clear();
                }
                slow.reopenings = 0;
            }
            State::HalfOpen | State::ForcedOpen | State::Disabled => {}
        }
        let lazy = open_until.is_some() && runtime.is_none();
        loop {
            match inner.compare_exchange(current, current.next(to, lazy)) {
                Ok(_) => break,
                Err(actual) => {
                    if expected.is_some_and(|expected| !actual.same_phase(expected)) {
                        return false;
                    }
                    current = actual;
                }
            }
        }
        if let Some(timer) = slow.open_timer.take() {
            timer.abort();
        }
        if let (Some(until), Some(runtime)) = (open_until, runtime) {
            slow.open_timer = Some(self.arm_open_timer(&runtime, until));
        }
        if from == to {
            return true;
        }
        let event = Transition {
            service: Arc::clone(&inner.name),
            from,
            to,
            reason,
            at: now,
            at_wall: inner.clock.wall_time(now),
            consecutive_failures: inner.consecutive_failures.load(Ordering::Relaxed),
            last_failure: slow
                .last_failure
                .as_ref()
                .map(|failure| failure.reason.clone()),
            next_attempt: open_until.map(|until| inner.clock.wall_time(until)),
        };
        slow.last_transition = Some(event.clone());
        if let Some(events) = &slow.events {
            if events.receiver_count() == 0 {
                slow.events = None;
            } else {
                // A receiver gone meanwhile is not an error: events are for whoever listens.
                let _ = events.send(event.clone());
            }
        }
        if let Some(bus) = inner.bus.as_ref().and_then(Weak::upgrade) {
            bus.publish(&self.inner, &mut slow.outbox, event);
        }
        true
    }

    /// A task that half-opens the breaker when the open period ends, unless the breaker has
    /// moved on (reset, forced open) or been dropped by then.
    fn arm_open_timer(&self, runtime: &Handle, until: Instant) -> AbortHandle {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let opened = self.inner.load();
        runtime
            .spawn(async move {
                let mut until = until;
                loop {
                    tokio::time::sleep_until(until).await;
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    // A provider's wait may have lengthened the open period since this timer
                    // was armed: go back to sleep until its end.
                    let deferred = inner.open_until();
                    if deferred > until && inner.load().same_phase(opened) {
                        until = deferred;
                        continue;
                    }
                    Breaker { inner }.transition(
                        opened,
                        State::HalfOpen,
                        TransitionReason::ResetTimeoutElapsed,
                    );
                    return;
                }
            })
            .abort_handle()
    }

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

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Breaker`]; every setter has the default of [`Policy::default`].
pub struct BreakerBuilder {
    name: Arc<str>,
    policy: Policy,
    hook: Option<OutcomeHook>,
    event_capacity: usize,
    bus: Option<TransitionBus>,
}

impl BreakerBuilder {
    /// Replaces the whole policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Consecutive failures that open the breaker.
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.policy.failure_threshold = failures;
        self
    }

    /// Time a call may take before it is cancelled and counted as a timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// Time an open breaker waits before admitting trial calls.
    pub fn reset_timeout(mut self, reset_timeout: Duration) -> Self {
        self.policy.reset_timeout = reset_timeout;
        self
    }

    /// Trial calls admitted at once while half-open.
    pub fn half_open_max_calls(mut self, calls: u32) -> Self {
        self.policy.half_open_max_calls = calls;
        self
    }

    /// Successful trials that close a half-open breaker.
    pub fn success_threshold(mut self, successes: u32) -> Self {
        self.policy.success_threshold = successes;
        self
    }

    /// Calls slower than this count as slow.
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.policy.slow_call_duration = Some(duration);
        self
    }

    /// Failure-rate and slow-call-rate tripping over the last N calls.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.policy.window = Some(window);
        self
    }

    /// Growth of the open period on repeated reopening.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy.backoff = Some(backoff);
        self
    }

    /// A function called with every call's outcome and duration, on the calling task: keep it
    /// short (increment a metric, log a slow call). Setting it makes each call read the clock
    /// twice.
    pub fn on_outcome(mut self, hook: impl Fn(&CallRecord) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Transitions kept for a slow subscriber (at least 1).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// Sends every transition to `bus` too: one consumer follows many breakers, in order per
    /// breaker and with bounded memory (see [`TransitionBus`]).
    pub fn bus(mut self, bus: &TransitionBus) -> Self {
        self.bus = Some(bus.clone());
        self
    }

    /// The breaker, or the policy's first problem.
    pub fn build(self) -> Result<Breaker, PolicyError> {
        self.policy.validate()?;
        let window = self
            .policy
            .window
            .as_ref()
            .map(|w| Window::new(w.size as usize));
        let tunables = Tunables::new(&self.policy, self.hook.is_some());
        Ok(Breaker {
            inner: Arc::new(Inner {
                error_name: ServiceName::new(&self.name),
                name: self.name,
                built: self.policy,
                tunables,
                word: AtomicU64::new(Word::INITIAL.0),
                consecutive_failures: AtomicU32::new(0),
                counters: Counters::new(),
                window,
                hook: self.hook,
                clock: WallClock::new(),
                open_until_nanos: AtomicU64::new(0),
                open_until_unix_nanos: AtomicU64::new(0),
                bus: self.bus.as_ref().map(|bus| Arc::downgrade(bus.shared())),
                event_capacity: self.event_capacity.max(1),
                slow: Mutex::new(SlowPath {
                    last_failure: None,
                    last_transition: None,
                    reopenings: 0,
                    jitter: Jitter::new(),
                    open_timer: None,
                    not_before: None,
                    events: None,
                    outbox: Outbox::default(),
                }),
            }),
        })
    }
}

impl fmt::Debug for BreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBuilder")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("has_outcome_hook", &self.hook.is_some())
            .field("event_capacity", &self.event_capacity)
            .field("bus", &self.bus.is_some())
            .finish()
    }
}

/// A breaker's identity: equal for clones of one breaker, different for any two breakers alive
/// at once. A consumer of a [`TransitionBus`] can key what it knows of each breaker by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BreakerId(usize);

fn unix_nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn truncate_at_char_boundary(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_channel(breaker: &Breaker) -> bool {
        breaker.inner.lock().events.is_some()
    }

    #[test]
    fn the_subscribers_channel_exists_only_while_someone_subscribes() {
        let breaker = Breaker::builder("mpesa").build().unwrap();
        breaker.force_open();
        assert!(!has_channel(&breaker), "nobody subscribed: no channel");
        let mut events = breaker.subscribe();
        assert!(has_channel(&breaker));
        breaker.reset();
        assert_eq!(events.try_recv().map(|event| event.to), Ok(State::Closed));
        drop(events);
        breaker.force_open();
        assert!(
            !has_channel(&breaker),
            "freed at the first change nobody hears"
        );
        let mut again = breaker.subscribe();
        breaker.reset();
        assert_eq!(again.try_recv().map(|event| event.to), Ok(State::Closed));
    }

    #[test]
    fn a_bus_nobody_holds_is_freed_with_the_news_it_held() {
        let bus = TransitionBus::new();
        let breaker = Breaker::builder("mpesa").bus(&bus).build().unwrap();
        breaker.force_open();
        let queued = Arc::downgrade(bus.shared());
        drop(bus);
        assert!(
            queued.upgrade().is_none(),
            "the breaker holds the bus weakly"
        );
        breaker.reset();
        assert_eq!(breaker.state(), State::Closed, "and runs on without it");
        assert_eq!(Arc::strong_count(&breaker.inner), 1, "nothing holds it");
    }
}
