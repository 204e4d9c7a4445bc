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

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::circuit::{Breaker, Inner};
use super::event::Transition;
use super::state::State;

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
    shared: Arc<Shared>,
}

/// What every handle and (weakly) every breaker on the bus share.
pub(crate) struct Shared {
    limit: usize,
    /// Breakers with transitions not yet taken, each once, in the order their news began.
    ready: Mutex<VecDeque<Arc<Inner>>>,
    /// Wakes the consumer when a breaker joins `ready`.
    news: Notify,
    /// Transitions held by breakers on the bus now.
    held: AtomicUsize,
    /// Transitions folded since the bus was made.
    folded: AtomicU64,
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
            shared: Arc::new(Shared {
                limit: limit.max(MIN_PENDING_LIMIT),
                ready: Mutex::new(VecDeque::new()),
                news: Notify::new(),
                held: AtomicUsize::new(0),
                folded: AtomicU64::new(0),
            }),
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
            self.shared.news.notified().await;
        }
    }

    /// The next breaker's transitions, if any breaker has some now.
    pub fn try_recv(&self) -> Option<Delivery> {
        loop {
            let inner = lock(&self.shared.ready).pop_front()?;
            let breaker = Breaker { inner };
            let (transitions, folded) = breaker.take_news();
            self.shared
                .held
                .fetch_sub(transitions.len(), Ordering::Relaxed);
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
        lock(&self.shared.ready).len()
    }

    /// Transitions held for the consumer now, across every breaker.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::Relaxed)
    }

    /// Transitions folded (or dropped as round trips) since the bus was made.
    pub fn folded(&self) -> u64 {
        self.shared.folded.load(Ordering::Relaxed)
    }

    /// The most transitions one breaker holds before folding.
    pub fn pending_limit(&self) -> usize {
        self.shared.limit
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
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
            .field("pending_limit", &self.shared.limit)
            .field("waiting", &self.waiting())
            .field("held", &self.held())
            .field("folded", &self.folded())
            .finish()
    }
}

impl Shared {
    /// Hands `event` of the breaker `inner` to the bus. Called under the breaker's lock, which
    /// `outbox` lives behind, so a breaker's transitions enter in the order they happened.
    pub(crate) fn publish(&self, inner: &Arc<Inner>, outbox: &mut Outbox, event: Transition) {
        let before = outbox.pending.len();
        let folded = push(&mut outbox.pending, self.limit, event);
        let after = outbox.pending.len();
        if after >= before {
            self.held.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(before - after, Ordering::Relaxed);
        }
        if folded > 0 {
            outbox.folded = outbox.folded.saturating_add(folded);
            self.folded.fetch_add(u64::from(folded), Ordering::Relaxed);
        }
        if !outbox.queued {
            outbox.queued = true;
            lock(&self.ready).push_back(Arc::clone(inner));
            self.news.notify_one();
        }
    }
}

/// A breaker's transitions not yet taken off its bus.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pending: Vec<Transition>,
    folded: u32,
    /// On the bus's queue; only the consumer takes it off.
    queued: bool,
}

impl Outbox {
    /// Everything held, and how many were folded into it; the breaker may queue again.
    pub(crate) fn take(&mut self) -> (Vec<Transition>, u32) {
        self.queued = false;
        (
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.folded),
        )
    }
}

/// Whether `state` holds calls back: the side of the line an outage is on.
fn holds_calls_back(state: State) -> bool {
    matches!(state, State::Open | State::HalfOpen | State::ForcedOpen)
}

fn crosses(transition: &Transition) -> bool {
    holds_calls_back(transition.from) != holds_calls_back(transition.to)
}

/// Appends `event` to `pending` (at most `limit` long, `limit` at least
/// [`MIN_PENDING_LIMIT`]); when that makes one too many, folds one pair of neighbours after the
/// first. Returns how many transitions folding took out.
///
/// Steps of a fold:
/// 1. the latest pair whose earlier transition does not cross the line (its later one keeps
///    its own crossing, time and details), else the latest pair that both cross (a round
///    trip over the line);
/// 2. the later one takes the earlier one's `from`;
/// 3. if that makes it go nowhere (`A → A`), it goes too.
fn push(pending: &mut Vec<Transition>, limit: usize, event: Transition) -> u32 {
    pending.push(event);
    if pending.len() <= limit {
        return 0;
    }
    let last = pending.len() - 1;
    let pair = (1..last)
        .rev()
        .find(|&at| !crosses(&pending[at]))
        .or_else(|| {
            (1..last)
                .rev()
                .find(|&at| crosses(&pending[at]) && crosses(&pending[at + 1]))
        })
        // With `limit` at least 3 one of the two always exists; if not, fold the newest pair.
        .unwrap_or(last - 1);
    let earlier = pending.remove(pair);
    let later = &mut pending[pair];
    later.from = earlier.from;
    if later.from == later.to {
        pending.remove(pair);
        return 2;
    }
    1
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use tokio::time::Instant;

    use super::*;
    use crate::breaker::TransitionReason;

    fn change(from: State, to: State, second: u64) -> Transition {
        Transition {
            service: Arc::from("mpesa"),
            from,
            to,
            reason: TransitionReason::ManualReset,
            at: Instant::now(),
            at_wall: SystemTime::UNIX_EPOCH + Duration::from_secs(second),
            consecutive_failures: 0,
            last_failure: None,
            next_attempt: None,
        }
    }

    /// Pushes the path of states `path` (from its first) onto `pending`, one second apart.
    fn walk(pending: &mut Vec<Transition>, limit: usize, path: &[State]) -> u32 {
        let start = pending.last().map_or(0, |last| seconds(last) + 1);
        path.windows(2)
            .zip(start..)
            .map(|(step, second)| push(pending, limit, change(step[0], step[1], second)))
            .sum()
    }

    fn seconds(transition: &Transition) -> u64 {
        transition
            .at_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }

    fn steps(pending: &[Transition]) -> Vec<(State, State, u64)> {
        pending.iter().map(|t| (t.from, t.to, seconds(t))).collect()
    }

    fn assert_chained(pending: &[Transition]) {
        for pair in pending.windows(2) {
            assert_eq!(pair[0].to, pair[1].from, "{:?}", steps(pending));
        }
    }

    use State::{Closed as C, ForcedOpen as F, HalfOpen as H, Open as O};

    #[test]
    fn below_the_limit_every_transition_is_kept_as_it_happened() {
        let mut pending = Vec::new();
        assert_eq!(walk(&mut pending, 4, &[C, O, H, O]), 0);
        assert_eq!(steps(&pending), vec![(C, O, 0), (O, H, 1), (H, O, 2)]);
    }

    #[test]
    fn flapping_inside_an_outage_folds_and_keeps_its_edges() {
        let mut pending = Vec::new();
        // Opens at 0, flaps half-open/open, closes at 20, reopens at 21.
        let mut path = vec![C, O];
        for _ in 0..9 {
            path.extend([H, O]);
        }
        path.extend([H, C, O]);
        let folded = walk(&mut pending, 4, &path);
        assert!(pending.len() <= 4);
        assert_chained(&pending);
        assert_eq!(pending[0].from, C, "the first leave from CLOSED is kept");
        assert_eq!(seconds(&pending[0]), 0);
        let crossings: Vec<(State, State, u64)> = steps(&pending)
            .into_iter()
            .filter(|&(from, to, _)| holds_calls_back(from) != holds_calls_back(to))
            .collect();
        assert_eq!(
            crossings,
            vec![(C, O, 0), (H, C, 20), (C, O, 21)],
            "every outage edge at its own time: {:?}",
            steps(&pending)
        );
        assert_eq!(pending.last().map(|t| t.to), Some(O), "the latest state");
        assert_eq!(
            pending.len() + folded as usize,
            path.len() - 1,
            "every transition is delivered or counted"
        );
    }

    #[test]
    fn when_every_waiting_transition_crosses_the_latest_round_trip_goes() {
        let mut pending = Vec::new();
        // Five short outages in a row: C→O, O→C, C→O, ...
        let path = [C, O, C, F, C, O, C, O, C, O];
        let folded = walk(&mut pending, 4, &path);
        assert_chained(&pending);
        assert!(pending.len() <= 4);
        assert_eq!(steps(&pending)[0], (C, O, 0), "the first is untouched");
        assert_eq!(pending.last().map(|t| t.to), Some(O), "the latest state");
        assert_eq!(
            seconds(pending.last().unwrap()),
            8,
            "the newest transition keeps its time: {:?}",
            steps(&pending)
        );
        assert_eq!(pending.len() + folded as usize, path.len() - 1);
    }

    #[test]
    fn a_fold_that_goes_nowhere_drops_both() {
        let mut pending = Vec::new();
        walk(&mut pending, 3, &[C, O, H]);
        walk(&mut pending, 3, &[H, O]);
        assert_eq!(steps(&pending), vec![(C, O, 0), (O, H, 1), (H, O, 2)]);
        // One more, O→H: with H→O before it, it went there and back; both go.
        assert_eq!(walk(&mut pending, 3, &[O, H]), 2);
        assert_eq!(steps(&pending), vec![(C, O, 0), (O, H, 1)]);
    }

    #[test]
    fn the_limit_has_a_floor() {
        assert_eq!(
            TransitionBus::with_pending_limit(0).pending_limit(),
            MIN_PENDING_LIMIT
        );
        assert_eq!(TransitionBus::new().pending_limit(), DEFAULT_PENDING_LIMIT);
    }
}
