//! Helpers shared by the integration tests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use breakerd::breaker::{Breaker, BreakerError, State, Transition};
use tokio::sync::broadcast;

/// The error of the fake operations.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDown(pub &'static str);

impl fmt::Display for ProviderDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider down: {}", self.0)
    }
}

impl std::error::Error for ProviderDown {}

/// The seed's payment-provider breaker: 3 failures, 30 s timeout, 120 s reset timeout.
pub fn payment_breaker(name: &str) -> Breaker {
    Breaker::builder(name)
        .failure_threshold(3)
        .timeout(Duration::from_secs(30))
        .reset_timeout(Duration::from_secs(120))
        .build()
        .expect("the seed's policy is valid")
}

/// Calls that fail at once.
pub async fn fail(breaker: &Breaker) -> Result<u32, BreakerError<ProviderDown>> {
    breaker.call(|| async { Err(ProviderDown("503")) }).await
}

/// Calls that succeed at once.
pub async fn succeed(breaker: &Breaker) -> Result<u32, BreakerError<ProviderDown>> {
    breaker.call(|| async { Ok(7) }).await
}

/// Counts how many times an operation really ran.
#[derive(Clone, Default)]
pub struct RunCount(Arc<AtomicUsize>);

impl RunCount {
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The next transition, failing the test if the channel closed or lagged.
pub async fn next_transition(events: &mut broadcast::Receiver<Transition>) -> Transition {
    events.recv().await.expect("a transition event")
}

/// Waits for the transition into `state` and returns it.
pub async fn transition_to(
    events: &mut broadcast::Receiver<Transition>,
    state: State,
) -> Transition {
    loop {
        let event = next_transition(events).await;
        if event.to == state {
            return event;
        }
    }
}
