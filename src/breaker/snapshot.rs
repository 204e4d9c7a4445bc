//! A breaker's state in a form that outlives the process, so that a restarted service comes
//! back where it stood: an open breaker stays open for what is left of its wait, with its
//! failure count, its backoff step and its last failure.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::event::{Transition, TransitionReason};
use super::state::State;
use super::stats::FailureInfo;
use super::wall_clock::serde_rfc3339;

/// What a breaker needs to resume after a restart. Wall-clock times only: the monotonic clock
/// of one process means nothing to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// When an open breaker admits its next trial call.
    #[serde(with = "serde_rfc3339::option", default)]
    pub next_attempt: Option<SystemTime>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Reopenings from half-open in a row: the step of the open-period backoff.
    #[serde(default)]
    pub reopenings: u32,
    /// The most recent failure since the last reset.
    #[serde(default)]
    pub last_failure: Option<FailureInfo>,
    /// The most recent change of state.
    #[serde(default)]
    pub last_change: Option<Change>,
}

/// A change of state as kept on disk: a [`Transition`] without its monotonic time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// When.
    #[serde(with = "serde_rfc3339")]
    pub at: SystemTime,
    /// Failures in a row at the time.
    pub consecutive_failures: u32,
    /// The last failure's reason at the time.
    #[serde(default)]
    pub last_failure: Option<Arc<str>>,
    /// When an open breaker was to admit its next trial call.
    #[serde(with = "serde_rfc3339::option", default)]
    pub next_attempt: Option<SystemTime>,
}

impl Change {
    /// The change as kept on disk.
    pub fn of(transition: &Transition) -> Self {
        Self {
            from: transition.from,
            to: transition.to,
            reason: transition.reason.clone(),
            at: transition.at_wall,
            consecutive_failures: transition.consecutive_failures,
            last_failure: transition.last_failure.clone(),
            next_attempt: transition.next_attempt,
        }
    }

    /// The transition again, for breaker `service`; `at` is its time on this process's clock.
    pub(crate) fn to_transition(&self, service: Arc<str>, at: Instant) -> Transition {
        Transition {
            service,
            from: self.from,
            to: self.to,
            reason: self.reason.clone(),
            at,
            at_wall: self.at,
            consecutive_failures: self.consecutive_failures,
            last_failure: self.last_failure.clone(),
            next_attempt: self.next_attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::breaker::{Breaker, Outcome};

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let snapshot = Snapshot {
            state: State::Open,
            next_attempt: Some(at(1_795_773_720)),
            consecutive_failures: 3,
            reopenings: 2,
            last_failure: Some(FailureInfo {
                outcome: Outcome::Failure,
                reason: "http_status: HTTP 500".into(),
                at: at(1_795_773_600),
            }),
            last_change: Some(Change {
                from: State::HalfOpen,
                to: State::Open,
                reason: TransitionReason::TrialFailed,
                at: at(1_795_773_600),
                consecutive_failures: 3,
                last_failure: Some("http_status: HTTP 500".into()),
                next_attempt: Some(at(1_795_773_720)),
            }),
        };
        let text = serde_json::to_string(&snapshot).unwrap();
        assert!(
            text.contains("\"nextAttempt\":\"2026-11-27T10:02:00.000Z\""),
            "{text}"
        );
        let back: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, snapshot);
    }

    #[test]
    fn missing_optional_fields_read_as_empty() {
        let back: Snapshot =
            serde_json::from_str(r#"{"state":"CLOSED","consecutiveFailures":1}"#).unwrap();
        assert_eq!(back.state, State::Closed);
        assert_eq!(back.next_attempt, None);
        assert_eq!(back.reopenings, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_built_breaker_takes_a_snapshot_of_itself() {
        let breaker = Breaker::builder("mpesa")
            .failure_threshold(2)
            .reset_timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let fresh = breaker.snapshot();
        assert_eq!(fresh.state, State::Closed);
        assert_eq!(fresh.last_change, None);
        for _ in 0..2 {
            let _ = breaker.call(|| async { Err::<(), _>("HTTP 503") }).await;
        }
        let open = breaker.snapshot();
        assert_eq!(open.state, State::Open);
        assert_eq!(open.consecutive_failures, 2);
        assert_eq!(open.next_attempt, breaker.next_attempt());
        assert_eq!(
            open.last_failure.map(|f| f.reason).as_deref(),
            Some("HTTP 503")
        );
        let change = open.last_change.unwrap();
        assert_eq!((change.from, change.to), (State::Closed, State::Open));
    }

    fn restored(
        snapshot: &Snapshot,
        policy: impl FnOnce(crate::breaker::BreakerBuilder) -> crate::breaker::BreakerBuilder,
    ) -> (Breaker, State) {
        let breaker = policy(
            Breaker::builder("mpesa")
                .failure_threshold(3)
                .reset_timeout(Duration::from_secs(120)),
        )
        .build()
        .unwrap();
        let state = breaker.restore(snapshot);
        (breaker, state)
    }

    fn open_until(seconds_from_now: u64) -> Snapshot {
        Snapshot {
            state: State::Open,
            next_attempt: Some(SystemTime::now() + Duration::from_secs(seconds_from_now)),
            consecutive_failures: 3,
            reopenings: 0,
            last_failure: None,
            last_change: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_comes_back_open_for_the_rest_of_its_wait_without_an_event() {
        let breaker = Breaker::builder("mpesa")
            .reset_timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut events = breaker.subscribe();
        assert_eq!(breaker.restore(&open_until(60)), State::Open);
        assert!(
            events.try_recv().is_err(),
            "restoring is not a change of state"
        );
        assert_eq!(breaker.consecutive_failures(), 3);
        let rejected = breaker.call(|| async { Ok::<_, String>(()) }).await;
        assert!(rejected.is_err(), "still open after the restart");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(breaker.state(), State::Open);
        tokio::time::advance(Duration::from_secs(2)).await;
        let event = events.recv().await.unwrap();
        assert_eq!((event.from, event.to), (State::Open, State::HalfOpen));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_ended_while_down_half_opens_at_once() {
        let mut snapshot = open_until(0);
        snapshot.next_attempt = Some(SystemTime::now() - Duration::from_secs(30));
        let (breaker, state) = restored(&snapshot, |b| b);
        assert_eq!(state, State::HalfOpen);
        let trial = breaker.call(|| async { Ok::<_, String>(()) }).await;
        assert!(trial.is_ok());
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_from_a_clock_gone_wrong_is_cut_to_the_longest_period() {
        let (breaker, state) = restored(&open_until(10 * 86_400), |b| b);
        assert_eq!(state, State::Open);
        tokio::time::advance(Duration::from_secs(121)).await;
        tokio::task::yield_now().await;
        assert_eq!(breaker.state(), State::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_states_stay_and_counts_and_backoff_step_carry_on() {
        for manual in [State::ForcedOpen, State::Disabled, State::HalfOpen] {
            let snapshot = Snapshot {
                state: manual,
                ..open_until(0)
            };
            assert_eq!(restored(&snapshot, |b| b).1, manual);
        }
        let closed = Snapshot {
            state: State::Closed,
            next_attempt: None,
            consecutive_failures: 2,
            ..open_until(0)
        };
        let (breaker, _) = restored(&closed, |b| b);
        let _ = breaker.call(|| async { Err::<(), _>("HTTP 500") }).await;
        assert_eq!(
            breaker.state(),
            State::Open,
            "2 restored + 1 reach the threshold of 3"
        );

        let backoff = crate::breaker::Backoff {
            multiplier: 2.0,
            max: Duration::from_secs(3600),
            jitter: 0.0,
        };
        let stepped = Snapshot {
            state: State::HalfOpen,
            reopenings: 2,
            ..open_until(0)
        };
        let (breaker, _) = restored(&stepped, |b| b.backoff(backoff));
        let _ = breaker.call(|| async { Err::<(), _>("HTTP 500") }).await;
        let wait = breaker
            .next_attempt()
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(
            wait > Duration::from_secs(900) && wait <= Duration::from_secs(960),
            "third reopening in a row waits 120 s × 2³: {wait:?}"
        );
    }
}
