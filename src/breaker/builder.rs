//! Builds a [`Breaker`]: the policy, outcome hook, subscribers' capacity and transition bus it
//! starts with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::bus::TransitionBus;
use super::circuit::{Breaker, DEFAULT_EVENT_CAPACITY, OutcomeHook};
use super::event::CallRecord;
use super::policy::{Backoff, Policy, PolicyError, SlidingWindow};

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
        let bus = self.bus.as_ref().map(|bus| Arc::downgrade(bus.shared()));
        Ok(Breaker::assemble(
            self.name,
            self.policy,
            self.hook,
            self.event_capacity.max(1),
            bus,
        ))
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
