//! The policy values that may change while a breaker runs (a config reload), held in atomics so
//! that a call reads them without a lock and a change never resets the breaker's state.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::policy::Policy;

#[derive(Debug)]
pub(crate) struct Tunables {
    failure_threshold: AtomicU32,
    success_threshold: AtomicU32,
    half_open_max_calls: AtomicU32,
    timeout_nanos: AtomicU64,
    reset_timeout_nanos: AtomicU64,
    /// 0 when no slow-call duration is set (a set one is always longer than 0).
    slow_call_nanos: AtomicU64,
    measures_duration: AtomicBool,
    has_hook: bool,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Tunables {
    pub(crate) fn new(policy: &Policy, has_hook: bool) -> Self {
        let tunables = Self {
            failure_threshold: AtomicU32::new(0),
            success_threshold: AtomicU32::new(0),
            half_open_max_calls: AtomicU32::new(0),
            timeout_nanos: AtomicU64::new(0),
            reset_timeout_nanos: AtomicU64::new(0),
            slow_call_nanos: AtomicU64::new(0),
            measures_duration: AtomicBool::new(false),
            has_hook,
        };
        tunables.set(policy);
        tunables
    }

    /// Takes the values of a validated `policy`.
    pub(crate) fn set(&self, policy: &Policy) {
        self.failure_threshold
            .store(policy.failure_threshold, Ordering::Relaxed);
        self.success_threshold
            .store(policy.success_threshold, Ordering::Relaxed);
        self.half_open_max_calls
            .store(policy.half_open_max_calls, Ordering::Relaxed);
        self.timeout_nanos
            .store(nanos(policy.timeout), Ordering::Relaxed);
        self.reset_timeout_nanos
            .store(nanos(policy.reset_timeout), Ordering::Relaxed);
        self.slow_call_nanos.store(
            policy.slow_call_duration.map_or(0, nanos),
            Ordering::Relaxed,
        );
        self.measures_duration.store(
            self.has_hook || policy.slow_call_duration.is_some(),
            Ordering::Relaxed,
        );
    }

    /// `policy` with the current values written over its tunable fields.
    pub(crate) fn overlay(&self, mut policy: Policy) -> Policy {
        policy.failure_threshold = self.failure_threshold();
        policy.success_threshold = self.success_threshold();
        policy.half_open_max_calls = self.half_open_max_calls();
        policy.timeout = self.timeout();
        policy.reset_timeout = self.reset_timeout();
        policy.slow_call_duration = self.slow_call_duration();
        policy
    }

    pub(crate) fn failure_threshold(&self) -> u32 {
        self.failure_threshold.load(Ordering::Relaxed)
    }

    pub(crate) fn success_threshold(&self) -> u32 {
        self.success_threshold.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn reset_timeout(&self) -> Duration {
        Duration::from_nanos(self.reset_timeout_nanos.load(Ordering::Relaxed))
    }

    #[inline]
    pub(crate) fn slow_call_duration(&self) -> Option<Duration> {
        match self.slow_call_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    #[inline]
    pub(crate) fn measures_duration(&self) -> bool {
        self.measures_duration.load(Ordering::Relaxed)
    }
}
