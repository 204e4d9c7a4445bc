//! The embeddable circuit breaker: a gate that admits or rejects calls, a policy that trips it,
//! and the snapshots and events that let metrics, logs and alerts attach from outside.
//!
//! ```
//! use std::time::Duration;
//! use breakerd::breaker::{Breaker, BreakerError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mpesa = Breaker::builder("mpesa")
//!     .failure_threshold(3)
//!     .timeout(Duration::from_secs(30))
//!     .reset_timeout(Duration::from_secs(120))
//!     .build()?;
//!
//! let token = mpesa
//!     .call(|| async { Ok::<_, std::io::Error>("access-token") })
//!     .await?;
//! assert_eq!(token, "access-token");
//! # Ok(())
//! # }
//! ```
//!
//! Transitions reach the outside two ways: [`Breaker::subscribe`] gives a broadcast receiver of
//! one breaker's changes (its channel made on the first subscription), and a [`TransitionBus`]
//! given to many breakers' builders brings all their changes to one consumer, in order per
//! breaker, none dropped silently, in bounded memory.
//!
//! Time is read only through `tokio::time`, so tests run on a paused clock. The closed path
//! reads no clock at all unless an outcome hook or a slow-call threshold asks for durations, and
//! an open breaker is moved to half-open by a timer task, so rejecting a call reads no clock
//! either.

mod backoff;
mod builder;
mod bus;
mod call;
mod circuit;
mod counters;
mod error;
mod event;
mod name;
mod outbox;
mod permit;
mod policy;
mod snapshot;
mod state;
mod stats;
mod tunables;
mod wall_clock;
mod window;

pub(crate) use backoff::Jitter;
pub use builder::BreakerBuilder;
pub use bus::{DEFAULT_PENDING_LIMIT, Delivery, MIN_PENDING_LIMIT, TransitionBus};
pub use call::{Classify, ErrorsAreFailures, Verdict};
pub use circuit::{Breaker, BreakerId, DEFAULT_EVENT_CAPACITY, MAX_TRIAL_HOLD};
pub use error::{BreakerError, OpenError, TimeoutError};
pub use event::{CallRecord, CallTag, Outcome, Transition, TransitionReason};
pub use permit::{OwnedPermit, Permit};
pub use policy::{
    Backoff, DEFAULT_FAILURE_THRESHOLD, DEFAULT_HALF_OPEN_MAX_CALLS, DEFAULT_RESET_TIMEOUT,
    DEFAULT_SUCCESS_THRESHOLD, DEFAULT_TIMEOUT, MAX_BACKOFF_MULTIPLIER, MAX_DURATION,
    MAX_HALF_OPEN_COUNT, MAX_WINDOW_SIZE, Policy, PolicyError, PolicyField, SlidingWindow,
};
pub use snapshot::{Change, Snapshot};
pub use state::State;
pub use stats::{FailureInfo, Stats, WindowStats};
pub(crate) use wall_clock::{rfc3339, serde_rfc3339};
