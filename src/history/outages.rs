//! Each service's recent outages as people read them — when one started, what the provider
//! said, how many trial calls failed, when it ended — each with the state changes within it,
//! built from the changes as they happen (the alert stage keeps only the latest outage).

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::breaker::{State, Transition, TransitionReason};
use crate::outcome::Cause;

/// Outages kept per service.
pub const OUTAGES_KEPT: usize = 20;
/// State changes kept per outage: the latest ones; the count of earlier ones is kept.
pub const STEPS_KEPT: usize = 30;

/// One change of state within an outage.
#[derive(Clone, Debug, PartialEq)]
pub struct OutageStep {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// When.
    pub at: SystemTime,
}

/// One outage: from the breaker tripping until it closed again (or now).
#[derive(Clone, Debug, PartialEq)]
pub struct OutageRecord {
    /// The service.
    pub service: String,
    /// When the breaker tripped, or when breakerd first saw it tripped (`joined`).
    pub started_at: SystemTime,
    /// It was already going on when breakerd started watching (restored from `state_dir`).
    pub joined: bool,
    /// Why the breaker tripped.
    pub opened_by: TransitionReason,
    /// The provider's last real failure within it; none for an outage forced by hand.
    pub cause: Option<Cause>,
    /// Trial calls that failed.
    pub failed_trials: u32,
    /// When it ended; `None` while it lasts.
    pub ended_at: Option<SystemTime>,
    /// Its latest changes of state, oldest first.
    pub steps: VecDeque<OutageStep>,
    /// Changes of state left out of `steps` for room.
    pub earlier_steps: u32,
}

impl OutageRecord {
    fn start(transition: &Transition, cause: Option<Cause>, joined: bool) -> Self {
        // An outage forced by hand has no provider cause, whatever failed before it.
        let cause = cause.filter(|_| transition.reason != TransitionReason::ForcedOpen);
        Self {
            service: transition.service.to_string(),
            started_at: transition.at_wall,
            joined,
            opened_by: transition.reason.clone(),
            cause,
            failed_trials: 0,
            ended_at: None,
            steps: VecDeque::new(),
            earlier_steps: 0,
        }
    }

    /// Whether it is still going on.
    pub fn is_ongoing(&self) -> bool {
        self.ended_at.is_none()
    }

    fn step(&mut self, transition: &Transition, cause: Option<Cause>) {
        if transition.from == State::HalfOpen && transition.to == State::Open {
            self.failed_trials = self.failed_trials.saturating_add(1);
            if cause.is_some() {
                self.cause = cause;
            }
        }
        if !transition.to.is_tripped() {
            self.ended_at = Some(transition.at_wall);
        }
        if self.steps.len() == STEPS_KEPT {
            self.steps.pop_front();
            self.earlier_steps = self.earlier_steps.saturating_add(1);
        }
        self.steps.push_back(OutageStep {
            from: transition.from,
            to: transition.to,
            reason: transition.reason.clone(),
            at: transition.at_wall,
        });
    }
}

/// One service's outages, oldest first.
#[derive(Debug, Default)]
pub(super) struct OutageLog {
    outages: VecDeque<OutageRecord>,
}

impl OutageLog {
    /// Books one change of state, with the service's last real failure when it happened.
    pub(super) fn record(&mut self, transition: &Transition, cause: Option<Cause>) {
        let last = self.outages.back_mut().filter(|last| last.is_ongoing());
        let within = last.is_some() && transition.from.is_tripped();
        if !within {
            if let Some(last) = last {
                // Its end was folded away on a busy bus: it ended when this one began.
                last.ended_at = Some(transition.at_wall);
            }
            if transition.from.is_tripped() {
                // A change within an outage that began before breakerd was watching.
                self.begin(transition, cause.clone(), true);
            } else if transition.to.is_tripped() {
                self.begin(transition, cause.clone(), false);
            } else {
                // Closed ↔ disabled: no outage.
                return;
            }
        }
        if let Some(outage) = self.outages.back_mut() {
            outage.step(transition, cause);
        }
    }

    fn begin(&mut self, transition: &Transition, cause: Option<Cause>, joined: bool) {
        if self.outages.len() == OUTAGES_KEPT {
            self.outages.pop_front();
        }
        self.outages
            .push_back(OutageRecord::start(transition, cause, joined));
    }

    /// Its outages, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &OutageRecord> {
        self.outages.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::outcome::FailureReason;

    fn at(second: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + second)
    }

    fn change(from: State, to: State, reason: TransitionReason, second: u64) -> Transition {
        Transition {
            service: Arc::from("mpesa"),
            from,
            to,
            reason,
            at: tokio::time::Instant::now(),
            at_wall: at(second),
            consecutive_failures: 0,
            last_failure: None,
            next_attempt: None,
        }
    }

    fn cause(detail: &str, second: u64) -> Option<Cause> {
        Some(Cause::plain(FailureReason::HttpStatus, detail, at(second)))
    }

    #[test]
    fn half_open_churn_is_one_outage_with_its_failed_trials_and_latest_cause() {
        let mut log = OutageLog::default();
        let opened = TransitionReason::ConsecutiveFailures { count: 3 };
        log.record(
            &change(State::Closed, State::Open, opened.clone(), 0),
            cause("HTTP 503", 0),
        );
        for trial in 0..3 {
            let second = 10 * trial + 10;
            log.record(
                &change(
                    State::Open,
                    State::HalfOpen,
                    TransitionReason::ResetTimeoutElapsed,
                    second,
                ),
                cause("HTTP 503", 0),
            );
            log.record(
                &change(
                    State::HalfOpen,
                    State::Open,
                    TransitionReason::TrialFailed,
                    second + 1,
                ),
                cause("HTTP 502", second + 1),
            );
        }
        log.record(
            &change(
                State::Open,
                State::HalfOpen,
                TransitionReason::ResetTimeoutElapsed,
                40,
            ),
            cause("HTTP 502", 31),
        );
        log.record(
            &change(
                State::HalfOpen,
                State::Closed,
                TransitionReason::TrialsSucceeded { count: 1 },
                41,
            ),
            cause("HTTP 502", 31),
        );
        let outages: Vec<&OutageRecord> = log.iter().collect();
        assert_eq!(outages.len(), 1);
        let outage = outages[0];
        assert_eq!(outage.started_at, at(0));
        assert_eq!(outage.opened_by, opened);
        assert_eq!(outage.failed_trials, 3);
        assert_eq!(outage.ended_at, Some(at(41)));
        assert_eq!(
            outage.cause.as_ref().map(|c| c.detail.as_str()),
            Some("HTTP 502")
        );
        assert_eq!(outage.steps.len(), 9);
        assert!(!outage.joined);
    }

    #[test]
    fn a_forced_outage_has_no_provider_cause_and_a_restored_one_is_joined() {
        let mut log = OutageLog::default();
        log.record(
            &change(
                State::Closed,
                State::ForcedOpen,
                TransitionReason::ForcedOpen,
                0,
            ),
            cause("HTTP 503 from last week", 0),
        );
        log.record(
            &change(
                State::ForcedOpen,
                State::Closed,
                TransitionReason::ManualReset,
                5,
            ),
            None,
        );
        log.record(
            &change(
                State::Closed,
                State::Disabled,
                TransitionReason::Disabled,
                6,
            ),
            None,
        );
        let mut restored = OutageLog::default();
        restored.record(
            &change(
                State::Open,
                State::HalfOpen,
                TransitionReason::ResetTimeoutElapsed,
                7,
            ),
            cause("HTTP 500", 1),
        );
        let forced: Vec<&OutageRecord> = log.iter().collect();
        assert_eq!(forced.len(), 1);
        assert_eq!(forced[0].cause, None);
        assert_eq!(forced[0].ended_at, Some(at(5)));
        let joined: Vec<&OutageRecord> = restored.iter().collect();
        assert!(joined[0].joined && joined[0].is_ongoing());
        assert_eq!(
            joined[0].cause.as_ref().map(|c| c.detail.as_str()),
            Some("HTTP 500")
        );
    }

    #[test]
    fn long_outages_keep_their_latest_steps_and_count_the_rest() {
        let mut log = OutageLog::default();
        log.record(
            &change(
                State::Closed,
                State::Open,
                TransitionReason::ResetTimeoutElapsed,
                0,
            ),
            None,
        );
        for n in 0..40 {
            log.record(
                &change(
                    State::Open,
                    State::HalfOpen,
                    TransitionReason::ResetTimeoutElapsed,
                    n,
                ),
                None,
            );
            log.record(
                &change(
                    State::HalfOpen,
                    State::Open,
                    TransitionReason::TrialFailed,
                    n,
                ),
                None,
            );
        }
        let outage = log.iter().next().expect("one outage");
        assert_eq!(outage.steps.len(), STEPS_KEPT);
        assert_eq!(outage.earlier_steps, 81 - STEPS_KEPT as u32);
        assert_eq!(outage.failed_trials, 40);
    }
}
