//! One transition bus for many breakers: every change of state of every breaker built on it
//! reaches one consumer, in order per breaker, with memory bounded however slow that consumer
//! is.
//!
//! How it works:
//! 1. A breaker keeps its own transitions not yet taken, oldest first, under the lock that
//!    already orders its changes of state; a breaker with none holds no memory for them.
//! 2. With its first transition not yet taken, the breaker joins the bus's queue of breakers
//!    with news — once, however many more follow before it is taken — and wakes the consumer.
//! 3. The consumer takes the breaker at the head of that queue with every transition it holds
//!    at that moment: one [`Delivery`]. Breakers are taken in the order their news began.
//!
//! What a consumer can count on, for each breaker:
//! - **Order, no gaps**: transitions arrive in the order they happened, each one's `from` the
//!   previous one's `to`; once the consumer has caught up, the last `to` it received is the
//!   breaker's state.
//! - **Nothing dropped silently**: a breaker holds at most the bus's pending limit of
//!   transitions ([`DEFAULT_PENDING_LIMIT`] unless [`TransitionBus::with_pending_limit`] says
//!   otherwise). One more folds two neighbours into one transition (the later one, with the
//!   earlier one's `from`), or drops a pair that went there and back (`A → B → A`); either is
//!   counted in [`Delivery::folded`] and [`TransitionBus::folded`]. Folding never touches the
//!   oldest transition waiting, so the first news since the consumer last looked (a breaker
//!   leaving CLOSED) comes as it happened.
//! - **Outages keep their edges**: folding first picks two neighbours whose earlier one stays
//!   on one side of the line between letting calls through (closed, disabled) and holding them
//!   back (open, half-open, forced open). So every crossing of that line — an outage starting
//!   or ending — keeps its own time, reason and details. Only a breaker that crossed the line
//!   so often, while the consumer did not look, that its waiting transitions are all crossings
//!   loses whole round trips: its latest short recovery, or short outage, is folded away
//!   (counted as two).
//! - **Bounded memory**: the queue holds each breaker at most once, and each breaker at most
//!   the pending limit of transitions (about 112 bytes each): 10,000 breakers on the default
//!   limit hold at most about 9 MB whatever the consumer does, and nothing while it keeps up.
//!   Sending never waits, so a slow consumer never slows a call.
//! - **Dropped breakers still report**: the queue keeps a breaker with news alive until its
//!   news is taken. Breakers hold the bus only weakly: once every [`TransitionBus`] handle is
//!   gone, their transitions go nowhere, as with a broadcast channel that has no receiver.

use std::fmt;
use std::sync::Arc;

use super::circuit::{Breaker, Inner};
use super::event::Transition;
use super::outbox::Shared;

/// Transitions a breaker holds for a consumer that has not taken them, before folding.
pub const DEFAULT_PENDING_LIMIT: usize = 8;
/// The smallest pending limit: below it, folding could not always spare the crossings.
pub const MIN_PENDING_LIMIT: usize = 3;

/// A handle on one transition bus: give it to the builder of every breaker that should report
/// to it ([`BreakerBuilder::bus`](super::BreakerBuilder::bus)), and take their transitions
/// with [`recv`](Self::recv). Clones share the bus.
///
/// ```
/// use breakerd::breaker::{Breaker, State, TransitionBus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = TransitionBus::new();
/// let mpesa = Breaker::builder("mpesa").bus(&bus).build()?;
/// let sms = Breaker::builder("sms").bus(&bus).build()?;
///
/// mpesa.force_open();
/// sms.disable();
/// let first = bus.recv().await;
/// assert_eq!(first.breaker().name(), "mpesa");
/// assert_eq!(first.transitions()[0].to, State::ForcedOpen);
/// assert_eq!(bus.recv().await.breaker().name(), "sms");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TransitionBus {
    shared: Arc<Shared<Inner>>,
}

/// The transitions one breaker held when the consumer took them: oldest first, in the order
/// they happened, each `from` the previous one's `to`.
#[derive(Debug)]
pub struct Delivery {
    breaker: Breaker,
    transitions: Vec<Transition>,
    folded: u32,
}

impl Delivery {
    /// The breaker they are from (a clone of it: ask it for its state, its stats, its
    /// [`id`](Breaker::id)).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The transitions, oldest first; never empty.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// Transitions of this breaker folded into these (or dropped as a round trip) because the
    /// consumer fell behind; 0 when each arrives as it happened.
    pub fn folded(&self) -> u32 {
        self.folded
    }

    /// The transitions, oldest first.
    pub fn into_transitions(self) -> Vec<Transition> {
        self.transitions
    }
}

impl TransitionBus {
    /// A bus whose breakers each hold up to [`DEFAULT_PENDING_LIMIT`] transitions for a
    /// consumer that has not taken them.
    pub fn new() -> Self {
        Self::with_pending_limit(DEFAULT_PENDING_LIMIT)
    }

    /// A bus whose breakers each hold up to `limit` transitions (at least
    /// [`MIN_PENDING_LIMIT`]) before folding.
    pub fn with_pending_limit(limit: usize) -> Self {
        Self {
            shared: Arc::new(Shared::new(limit.max(MIN_PENDING_LIMIT))),
        }
    }

    /// The next breaker's transitions, waiting for some if there are none. Cancel safe:
    /// dropped before it is ready, it has taken nothing.
    pub async fn recv(&self) -> Delivery {
        loop {
            if let Some(delivery) = self.try_recv() {
                return delivery;
            }
            // A breaker joining between the look above and this wait leaves a permit behind,
            // so the wait ends at once.
            self.shared.news().await;
        }
    }

    /// The next breaker's transitions, if any breaker has some now.
    pub fn try_recv(&self) -> Option<Delivery> {
        loop {
            let inner = self.shared.next_ready()?;
            let breaker = Breaker { inner };
            let (transitions, folded) = breaker.take_news();
            self.shared.taken(transitions.len());
            if !transitions.is_empty() {
                return Some(Delivery {
                    breaker,
                    transitions,
                    folded,
                });
            }
        }
    }

    /// Breakers with transitions waiting now: as many deliveries as [`try_recv`](Self::try_recv)
    /// would give before anything new happens.
    pub fn waiting(&self) -> usize {
        self.shared.waiting()
    }

    /// Transitions held for the consumer now, across every breaker.
    pub fn held(&self) -> usize {
        self.shared.held()
    }

    /// Transitions folded (or dropped as round trips) since the bus was made.
    pub fn folded(&self) -> u64 {
        self.shared.folded()
    }

    /// The most transitions one breaker holds before folding.
    pub fn pending_limit(&self) -> usize {
        self.shared.limit()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<Inner>> {
        &self.shared
    }
}

impl Default for TransitionBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TransitionBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitionBus")
            .field("pending_limit", &self.shared.limit())
            .field("waiting", &self.waiting())
            .field("held", &self.held())
            .field("folded", &self.folded())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_has_a_floor() {
        assert_eq!(
            TransitionBus::with_pending_limit(0).pending_limit(),
            MIN_PENDING_LIMIT
        );
        assert_eq!(TransitionBus::new().pending_limit(), DEFAULT_PENDING_LIMIT);
    }
}
