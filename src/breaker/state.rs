//! The breaker's states and the single atomic word that holds the current one together with
//! its epoch and the half-open bookkeeping, so that one compare-and-swap decides each change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Calls pass; failures are counted against the thresholds.
    Closed,
    /// Calls are rejected at once until the reset timeout has passed.
    Open,
    /// A limited number of trial calls pass; their outcome closes or reopens the breaker.
    HalfOpen,
    /// Opened by hand: calls are rejected until [`reset`](crate::breaker::Breaker::reset).
    ForcedOpen,
    /// Switched off by hand: every call passes and is counted, nothing trips the breaker.
    Disabled,
}

impl State {
    /// The seed's spelling: `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN`, `DISABLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
            State::ForcedOpen => "FORCED_OPEN",
            State::Disabled => "DISABLED",
        }
    }

    /// Whether calls are being rejected (open, by the policy or by hand).
    pub fn is_open(self) -> bool {
        matches!(self, State::Open | State::ForcedOpen)
    }

    /// Whether the breaker is tripped: open (by the policy or by hand) or half-open, letting
    /// only trial calls through. An outage lasts as long as its breaker stays tripped.
    pub fn is_tripped(self) -> bool {
        matches!(self, State::Open | State::HalfOpen | State::ForcedOpen)
    }

    fn code(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    #[inline]
    fn from_code(code: u64) -> State {
        match code {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::Closed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STATE_MASK: u64 = 0b111;
/// Set while open with no timer armed: the gate must then read the clock itself.
const LAZY_BIT: u64 = 1 << 3;
const IN_FLIGHT_SHIFT: u32 = 4;
const SUCCESSES_SHIFT: u32 = 20;
const COUNT_MASK: u64 = 0xFFFF;
const EPOCH_SHIFT: u32 = 36;

/// The packed state word.
///
/// Layout, low bits first: state (3 bits), lazy-open flag (1), half-open trial calls in flight
/// (16), half-open successes (16), epoch (28). The epoch grows on every change of state, so a
/// call admitted in one epoch can tell that the breaker has moved on before it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) const INITIAL: Word = Word(0);

    #[inline]
    pub(crate) fn state(self) -> State {
        State::from_code(self.0 & STATE_MASK)
    }

    #[inline]
    pub(crate) fn epoch(self) -> u64 {
        self.0 >> EPOCH_SHIFT
    }

    #[inline]
    pub(crate) fn is_lazy(self) -> bool {
        self.0 & LAZY_BIT != 0
    }

    #[inline]
    pub(crate) fn in_flight(self) -> u32 {
        ((self.0 >> IN_FLIGHT_SHIFT) & COUNT_MASK) as u32
    }

    pub(crate) fn successes(self) -> u32 {
        ((self.0 >> SUCCESSES_SHIFT) & COUNT_MASK) as u32
    }

    /// Whether `other` is the same state in the same epoch (half-open counts may differ).
    #[inline]
    pub(crate) fn same_phase(self, other: Word) -> bool {
        self.state() == other.state() && self.epoch() == other.epoch()
    }

    /// The word of the next epoch in `state`, with the half-open counts cleared.
    pub(crate) fn next(self, state: State, lazy: bool) -> Word {
        let epoch = (self.epoch() + 1) & ((1 << (64 - EPOCH_SHIFT)) - 1);
        let lazy = if lazy { LAZY_BIT } else { 0 };
        Word((epoch << EPOCH_SHIFT) | lazy | state.code())
    }

    /// One more trial call in flight. The caller has checked the count against its limit,
    /// which is at most [`COUNT_MASK`], so the field cannot overflow.
    #[inline]
    pub(crate) fn with_trial_started(self) -> Word {
        Word(self.0 + (1 << IN_FLIGHT_SHIFT))
    }

    /// One trial call fewer in flight (never below zero).
    pub(crate) fn with_trial_finished(self) -> Word {
        if self.in_flight() == 0 {
            return self;
        }
        Word(self.0 - (1 << IN_FLIGHT_SHIFT))
    }

    /// One more successful trial (saturating at the field's maximum).
    pub(crate) fn with_trial_succeeded(self) -> Word {
        if u64::from(self.successes()) == COUNT_MASK {
            return self;
        }
        Word(self.0 + (1 << SUCCESSES_SHIFT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap() {
        let word = Word::INITIAL.next(State::HalfOpen, false);
        assert_eq!(word.state(), State::HalfOpen);
        assert_eq!(word.epoch(), 1);
        let mut busy = word;
        for _ in 0..COUNT_MASK {
            busy = busy.with_trial_started().with_trial_succeeded();
        }
        assert_eq!(busy.in_flight(), COUNT_MASK as u32);
        assert_eq!(busy.successes(), COUNT_MASK as u32);
        assert_eq!(busy.state(), State::HalfOpen);
        assert_eq!(busy.epoch(), 1);
        assert!(!busy.is_lazy());
        assert_eq!(busy.with_trial_succeeded().successes(), COUNT_MASK as u32);
        assert_eq!(word.with_trial_finished().in_flight(), 0);
    }

    #[test]
    fn next_clears_counts_and_wraps_the_epoch() {
        let word = Word::INITIAL
            .next(State::HalfOpen, false)
            .with_trial_started()
            .with_trial_succeeded();
        let open = word.next(State::Open, true);
        assert_eq!(
            (
                open.state(),
                open.epoch(),
                open.in_flight(),
                open.successes()
            ),
            (State::Open, 2, 0, 0)
        );
        assert!(open.is_lazy());
        let last = Word(!STATE_MASK & !LAZY_BIT);
        assert_eq!(last.next(State::Closed, false).epoch(), 0);
    }

    #[test]
    fn every_state_round_trips() {
        for state in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            assert_eq!(Word::INITIAL.next(state, false).state(), state);
        }
    }
}
