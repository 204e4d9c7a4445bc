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
use super::counters::Counters;
use super::event::{CallRecord, Outcome, Transition, TransitionReason};
use super::name::ServiceName;
use super::outbox::{Outbox, Shared as BusShared};
use super::policy::{Policy, PolicyError};
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

mod controls;
mod verdicts;

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
    bus: Option<Weak<BusShared<Inner>>>,
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
    /// A breaker of a validated `policy`, on `bus` if it has one.
    pub(super) fn assemble(
        name: Arc<str>,
        policy: Policy,
        hook: Option<OutcomeHook>,
        event_capacity: usize,
        bus: Option<Weak<BusShared<Inner>>>,
    ) -> Self {
        let window = policy.window.as_ref().map(|w| Window::new(w.size as usize));
        let tunables = Tunables::new(&policy, hook.is_some());
        Breaker {
            inner: Arc::new(Inner {
                error_name: ServiceName::new(&name),
                name,
                built: policy,
                tunables,
                word: AtomicU64::new(Word::INITIAL.0),
                consecutive_failures: AtomicU32::new(0),
                counters: Counters::new(),
                window,
                hook,
                clock: WallClock::new(),
                open_until_nanos: AtomicU64::new(0),
                open_until_unix_nanos: AtomicU64::new(0),
                bus,
                event_capacity,
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
        }
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
    /// without losing a transition, build them on one [`TransitionBus`](super::TransitionBus)
    /// instead.
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

    /// Takes every transition held for the bus (see
    /// [`TransitionBus::try_recv`](super::TransitionBus::try_recv)).
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
    use crate::breaker::TransitionBus;

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
