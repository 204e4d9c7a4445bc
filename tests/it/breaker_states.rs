//! The state machine on a paused clock: thresholds, rejection, half-open trials, timeouts,
//! backoff of the open period, and the seed's errors and stats.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerd::breaker::{
    Backoff, Breaker, BreakerError, CallRecord, Outcome, State, TransitionReason,
};
use serde_json::json;
use tokio::time::{Instant, advance, sleep};

use crate::support::{
    ProviderDown, RunCount, fail, next_transition, payment_breaker, succeed, transition_to,
};

#[tokio::test(start_paused = true)]
async fn opens_on_exactly_the_threshold_of_consecutive_failures() {
    let breaker = payment_breaker("mpesa");
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.stats().consecutive_failures, 2);
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    let event = next_transition(&mut events).await;
    assert_eq!((event.from, event.to), (State::Closed, State::Open));
    assert_eq!(
        event.reason,
        TransitionReason::ConsecutiveFailures { count: 3 }
    );
    assert_eq!(event.consecutive_failures, 3);
    assert_eq!(event.last_failure.as_deref(), Some("provider down: 503"));
    assert!(event.next_attempt.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_success_between_failures_restarts_the_count() {
    let breaker = payment_breaker("pesapal");
    for _ in 0..5 {
        fail(&breaker).await.unwrap_err();
        fail(&breaker).await.unwrap_err();
        succeed(&breaker).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
    let stats = breaker.stats();
    assert_eq!(
        (
            stats.failure_count,
            stats.success_count,
            stats.consecutive_failures
        ),
        (10, 5, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn open_rejects_without_running_the_operation() {
    let breaker = payment_breaker("mpesa");
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    let runs = RunCount::default();
    let error = breaker
        .call(|| {
            runs.hit();
            async { Ok::<u32, ProviderDown>(1) }
        })
        .await
        .unwrap_err();
    assert_eq!(
        runs.get(),
        0,
        "the operation must not even be built while open"
    );
    assert_eq!(error.to_string(), "Circuit breaker mpesa is OPEN");
    let BreakerError::Open(open) = &error else {
        panic!("expected an open error, got {error:?}")
    };
    let expected_next = Instant::now() + Duration::from_secs(120);
    assert_eq!(open.next_attempt_instant(), Some(expected_next));
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(json["message"], "Circuit breaker mpesa is OPEN");
    assert_eq!(json["circuitBreakerOpen"], true);
    assert!(
        json["nextAttempt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    assert_eq!(breaker.stats().rejections, 1);
}

#[tokio::test(start_paused = true)]
async fn half_opens_after_the_reset_timeout_and_closes_on_a_successful_trial() {
    let breaker = payment_breaker("kcb");
    let mut events = breaker.subscribe();
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    let opened = transition_to(&mut events, State::Open).await;
    advance(Duration::from_secs(119)).await;
    assert!(
        fail(&breaker).await.unwrap_err().is_open(),
        "still open 1 s before the reset timeout"
    );
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(half_open.at - opened.at, Duration::from_secs(120));
    assert_eq!(half_open.reason, TransitionReason::ResetTimeoutElapsed);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(breaker.stats().next_attempt.is_none());
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
    let closed = next_transition(&mut events).await;
    assert_eq!((closed.from, closed.to), (State::HalfOpen, State::Closed));
    assert_eq!(
        closed.reason,
        TransitionReason::TrialsSucceeded { count: 1 }
    );
    assert_eq!(breaker.stats().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_for_a_full_period() {
    let breaker = payment_breaker("kcb");
    let mut events = breaker.subscribe();
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    transition_to(&mut events, State::HalfOpen).await;
    assert!(matches!(
        fail(&breaker).await,
        Err(BreakerError::Inner(ProviderDown("503")))
    ));
    let reopened = next_transition(&mut events).await;
    assert_eq!(
        (reopened.from, reopened.to, reopened.reason),
        (State::HalfOpen, State::Open, TransitionReason::TrialFailed)
    );
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(half_open.at - reopened.at, Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn a_provider_s_retry_after_holds_the_trial_back_longer_than_the_reset_timeout() {
    let breaker = Breaker::builder("sms")
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    // A throttled answer asked for 30 s: kept until the breaker opens.
    breaker.defer_next_trial(Duration::from_secs(30));
    fail(&breaker).await.unwrap_err();
    let opened = transition_to(&mut events, State::Open).await;
    advance(Duration::from_secs(29)).await;
    assert!(
        fail(&breaker).await.unwrap_err().is_open(),
        "no trial 29 s in, though reset_timeout is 5 s"
    );
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(half_open.at - opened.at, Duration::from_secs(30));
    // While open, a longer wait lengthens the open period; a shorter one changes nothing.
    fail(&breaker).await.unwrap_err();
    let reopened = transition_to(&mut events, State::Open).await;
    breaker.defer_next_trial(Duration::from_secs(2));
    breaker.defer_next_trial(Duration::from_secs(60));
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(half_open.at - reopened.at, Duration::from_secs(60));
    // A wait that has passed by the time the breaker next opens is forgotten.
    succeed(&breaker).await.unwrap();
    breaker.defer_next_trial(Duration::from_secs(10));
    advance(Duration::from_secs(11)).await;
    fail(&breaker).await.unwrap_err();
    let opened = transition_to(&mut events, State::Open).await;
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(half_open.at - opened.at, Duration::from_secs(5));
    // A day is not honoured: at most MAX_TRIAL_HOLD (the breaker's own longest open period
    // being shorter).
    fail(&breaker).await.unwrap_err();
    let reopened = transition_to(&mut events, State::Open).await;
    breaker.defer_next_trial(Duration::from_secs(86_400));
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(
        half_open.at - reopened.at,
        breakerd::breaker::MAX_TRIAL_HOLD
    );
}

#[tokio::test(start_paused = true)]
async fn success_threshold_needs_that_many_trials() {
    let breaker = Breaker::builder("sms")
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(60))
        .success_threshold(3)
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    transition_to(&mut events, State::HalfOpen).await;
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        next_transition(&mut events).await.reason,
        TransitionReason::TrialsSucceeded { count: 3 }
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_past_the_timeout_is_cancelled_and_counted_as_a_timeout() {
    let breaker = payment_breaker("mpesa");
    let finished = RunCount::default();
    let started = Instant::now();
    let error = breaker
        .call(|| async {
            sleep(Duration::from_secs(45)).await;
            finished.hit();
            Ok::<u32, ProviderDown>(1)
        })
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(
        finished.get(),
        0,
        "the operation must be cancelled, not left running"
    );
    assert_eq!(
        error.to_string(),
        "Circuit breaker mpesa timeout after 30000ms"
    );
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(
        json["message"],
        "Circuit breaker mpesa timeout after 30000ms"
    );
    assert_eq!(json["timeout"], true);
    let stats = breaker.stats();
    assert_eq!(
        (
            stats.timeouts,
            stats.failure_count,
            stats.consecutive_failures
        ),
        (1, 1, 1)
    );
    let last = stats.last_failure.expect("the timeout is the last failure");
    assert_eq!(last.outcome, Outcome::Timeout);
    assert_eq!(&*last.reason, "Circuit breaker mpesa timeout after 30000ms");
}

#[tokio::test(start_paused = true)]
async fn timeouts_alone_open_the_breaker() {
    let breaker = payment_breaker("pesapal");
    for _ in 0..3 {
        let error = breaker
            .call(|| async {
                std::future::pending::<()>().await;
                Ok::<u32, ProviderDown>(1)
            })
            .await
            .unwrap_err();
        assert!(error.is_timeout());
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_call_just_inside_the_timeout_succeeds() {
    let breaker = payment_breaker("mpesa");
    let value = breaker
        .call(|| async {
            sleep(Duration::from_millis(29_999)).await;
            Ok::<u32, ProviderDown>(5)
        })
        .await
        .unwrap();
    assert_eq!(value, 5);
    assert_eq!(breaker.stats().timeouts, 0);
}

#[tokio::test(start_paused = true)]
async fn the_inner_error_passes_through_untouched() {
    let breaker = payment_breaker("mpesa");
    let error = fail(&breaker).await.unwrap_err();
    assert_eq!(error.to_string(), "provider down: 503");
    assert_eq!(error.into_inner(), Some(ProviderDown("503")));
}

#[tokio::test(start_paused = true)]
async fn backoff_lengthens_each_reopening_up_to_the_cap_and_resets_on_close() {
    let breaker = Breaker::builder("whatsapp")
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(10))
        .backoff(Backoff {
            multiplier: 2.0,
            max: Duration::from_secs(50),
            jitter: 0.0,
        })
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    let mut periods = Vec::new();
    for _ in 0..5 {
        let opened = transition_to(&mut events, State::Open).await;
        let half_open = transition_to(&mut events, State::HalfOpen).await;
        periods.push((half_open.at - opened.at).as_secs());
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(periods, vec![10, 20, 40, 50, 50]);
    transition_to(&mut events, State::HalfOpen).await;
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    let opened = transition_to(&mut events, State::Open).await;
    let half_open = transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(
        half_open.at - opened.at,
        Duration::from_secs(10),
        "closing resets the backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_stays_within_its_fraction() {
    let breaker = Breaker::builder("email")
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(100))
        .backoff(Backoff {
            multiplier: 1.0,
            max: Duration::from_secs(100),
            jitter: 0.5,
        })
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    for _ in 0..20 {
        let opened = transition_to(&mut events, State::Open).await;
        let half_open = transition_to(&mut events, State::HalfOpen).await;
        let period = half_open.at - opened.at;
        assert!(
            period > Duration::from_secs(50) && period <= Duration::from_secs(100),
            "{period:?}"
        );
        fail(&breaker).await.unwrap_err();
    }
}

#[tokio::test(start_paused = true)]
async fn the_outcome_hook_sees_every_call_with_its_duration() {
    let seen: Arc<Mutex<Vec<CallRecord>>> = Arc::default();
    let sink = seen.clone();
    let breaker = Breaker::builder("email")
        .failure_threshold(1)
        .timeout(Duration::from_secs(15))
        .slow_call_duration(Duration::from_secs(1))
        .on_outcome(move |record| sink.lock().unwrap().push(*record))
        .build()
        .unwrap();
    breaker
        .call(|| async {
            sleep(Duration::from_millis(1500)).await;
            Ok::<u32, ProviderDown>(1)
        })
        .await
        .unwrap();
    succeed(&breaker).await.unwrap();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    let records = seen.lock().unwrap().clone();
    let summary: Vec<_> = records
        .iter()
        .map(|r| (r.outcome, r.duration, r.slow))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Outcome::Success, Some(Duration::from_millis(1500)), true),
            (Outcome::Success, Some(Duration::ZERO), false),
            (Outcome::Failure, Some(Duration::ZERO), false),
            (Outcome::Rejected, None, false),
        ]
    );
    assert_eq!(breaker.stats().slow_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn stats_carry_the_seed_fields_and_serialise_in_camel_case() {
    let breaker = payment_breaker("mpesa");
    for _ in 0..15 {
        succeed(&breaker).await.unwrap();
    }
    let json = serde_json::to_value(breaker.stats()).unwrap();
    assert_eq!(json["state"], "CLOSED");
    assert_eq!(json["failureCount"], 0);
    assert_eq!(json["successCount"], 15);
    assert_eq!(json["uptime"], 100.0);
    assert!(
        json.get("nextAttempt").is_none(),
        "no next attempt while closed: {json}"
    );
    for _ in 0..5 {
        fail(&breaker).await.unwrap_err();
    }
    let stats = breaker.stats();
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["state"], "OPEN");
    assert_eq!(json["failureCount"], 3);
    assert_eq!(json["rejections"], 2);
    assert_eq!(json["uptime"], 15.0 * 100.0 / 18.0);
    assert_eq!(json["totalCalls"], 20);
    assert_eq!(json["failureThreshold"], 3);
    assert_eq!(json["timeoutMs"], 30_000);
    assert_eq!(json["resetTimeoutMs"], 120_000);
    assert_eq!(
        json["lastFailure"],
        json!({
            "outcome": "failure",
            "reason": "provider down: 503",
            "at": json["lastFailure"]["at"].clone(),
        })
    );
    assert_eq!(json["lastStateChange"]["from"], "CLOSED");
    assert_eq!(json["lastStateChange"]["to"], "OPEN");
    assert_eq!(
        json["lastStateChange"]["reason"],
        json!({"kind": "consecutive_failures", "count": 3})
    );
    let next = stats
        .next_attempt
        .expect("an open breaker has a next attempt");
    let changed = stats.last_state_change.expect("a state change").at_wall;
    assert_eq!(
        next.duration_since(changed).ok(),
        Some(Duration::from_secs(120))
    );
}

#[test]
fn without_a_runtime_an_open_breaker_half_opens_when_next_asked() {
    // Outside any tokio runtime no timer task can be armed; the gate then reads the clock.
    let breaker = Breaker::builder("sync")
        .failure_threshold(1)
        .reset_timeout(Duration::from_nanos(1))
        .build()
        .unwrap();
    breaker.acquire().unwrap().record_failure(&"refused");
    assert_eq!(breaker.state(), State::Open);
    let trial = breaker.acquire().expect("the 1 ns open period is over");
    assert!(trial.is_trial());
    assert_eq!(breaker.state(), State::HalfOpen);
    trial.record_success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn an_invalid_policy_is_refused_at_build() {
    let error = Breaker::builder("mpesa")
        .failure_threshold(0)
        .build()
        .unwrap_err();
    assert_eq!(error.to_string(), "failure_threshold must be at least 1");
}
