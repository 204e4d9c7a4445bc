//! What a breaker holds for its transition bus, and the bus's queue of breakers holding news:
//! transitions wait in order, fold past the pending limit, and wake the one consumer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::event::Transition;
use super::state::State;

/// What every handle of a bus and (weakly) every breaker on it share; `B` is a breaker's
/// shared state, queued while it holds news.
pub(crate) struct Shared<B> {
    limit: usize,
    /// Breakers with transitions not yet taken, each once, in the order their news began.
    ready: Mutex<VecDeque<Arc<B>>>,
    /// Wakes the consumer when a breaker joins `ready`.
    news: Notify,
    /// Transitions held by breakers on the bus now.
    held: AtomicUsize,
    /// Transitions folded since the bus was made.
    folded: AtomicU64,
}

impl<B> Shared<B> {
    /// A queue whose breakers each hold up to `limit` transitions (at least
    /// [`MIN_PENDING_LIMIT`](super::MIN_PENDING_LIMIT)).
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            ready: Mutex::new(VecDeque::new()),
            news: Notify::new(),
            held: AtomicUsize::new(0),
            folded: AtomicU64::new(0),
        }
    }

    /// Hands `event` of the breaker `breaker` to the bus. Called under the breaker's lock,
    /// which `outbox` lives behind, so a breaker's transitions enter in the order they
    /// happened.
    pub(crate) fn publish(&self, breaker: &Arc<B>, outbox: &mut Outbox, event: Transition) {
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
            lock(&self.ready).push_back(Arc::clone(breaker));
            self.news.notify_one();
        }
    }

    /// The breaker at the head of the queue, taken off it.
    pub(crate) fn next_ready(&self) -> Option<Arc<B>> {
        lock(&self.ready).pop_front()
    }

    /// Notes `count` transitions taken off a breaker by the consumer.
    pub(crate) fn taken(&self, count: usize) {
        self.held.fetch_sub(count, Ordering::Relaxed);
    }

    /// Resolves when a breaker joins the queue. A breaker joining before this is awaited
    /// leaves a permit behind, so the wait then ends at once.
    pub(crate) async fn news(&self) {
        self.news.notified().await;
    }

    /// Breakers on the queue now.
    pub(crate) fn waiting(&self) -> usize {
        lock(&self.ready).len()
    }

    /// Transitions held now, across every breaker.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Transitions folded since the bus was made.
    pub(crate) fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// The most transitions one breaker holds before folding.
    pub(crate) fn limit(&self) -> usize {
        self.limit
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
/// [`MIN_PENDING_LIMIT`](super::MIN_PENDING_LIMIT)); when that makes one too many, folds one pair of neighbours after the
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
}
