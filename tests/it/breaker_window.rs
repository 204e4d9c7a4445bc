//! Rate-based tripping over the sliding window, and the embedder's classification of results.

use std::time::Duration;

use breakerd::breaker::{Breaker, BreakerError, SlidingWindow, State, TransitionReason, Verdict};
use tokio::time::sleep;

use crate::support::{ProviderDown, fail, next_transition, succeed};

fn rate_breaker() -> Breaker {
    Breaker::builder("pesapal")
        .failure_threshold(100)
        .sliding_window(SlidingWindow {
            size: 10,
            minimum_calls: 6,
            failure_rate_threshold: Some(50.0),
            slow_call_rate_threshold: None,
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn failure_rate_is_judged_only_from_the_minimum_number_of_calls() {
    let breaker = rate_breaker();
    let mut events = breaker.subscribe();
    // Five calls, all failed except one: 80 % but below the minimum of six calls.
    succeed(&breaker).await.unwrap();
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.stats().window.map(|w| w.calls), Some(5));
    // The sixth call (a success) brings the window to its minimum at 4/6 = 66.7 %.
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
    let event = next_transition(&mut events).await;
    let TransitionReason::FailureRate { percent, calls } = event.reason else {
        panic!("expected a failure-rate trip, got {:?}", event.reason);
    };
    assert_eq!(calls, 6);
    assert!((percent - 400.0 / 6.0).abs() < 1e-9, "{percent}");
}

#[tokio::test(start_paused = true)]
async fn a_rate_just_below_the_threshold_keeps_the_breaker_closed() {
    let breaker = rate_breaker();
    // One failure in every three calls: any ten consecutive calls hold at most four failures.
    for _ in 0..20 {
        succeed(&breaker).await.unwrap();
        succeed(&breaker).await.unwrap();
        fail(&breaker).await.unwrap_err();
        assert!(
            breaker
                .stats()
                .window
                .is_some_and(|w| w.failure_rate <= 40.0)
        );
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn exactly_the_threshold_rate_opens() {
    let breaker = rate_breaker();
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
        succeed(&breaker).await.unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "3 failures in 6 calls is 50 %"
    );
}

#[tokio::test(start_paused = true)]
async fn old_outcomes_slide_out_of_the_window() {
    let breaker = rate_breaker();
    for _ in 0..2 {
        fail(&breaker).await.unwrap_err();
    }
    for _ in 0..10 {
        succeed(&breaker).await.unwrap();
    }
    let window = breaker.stats().window.unwrap();
    assert_eq!((window.calls, window.failure_rate), (10, 0.0));
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_opens_the_breaker() {
    let breaker = Breaker::builder("kcb")
        .slow_call_duration(Duration::from_secs(1))
        .sliding_window(SlidingWindow {
            size: 4,
            minimum_calls: 4,
            failure_rate_threshold: None,
            slow_call_rate_threshold: Some(75.0),
        })
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    let slow_call = || async {
        sleep(Duration::from_millis(1200)).await;
        Ok::<u32, ProviderDown>(1)
    };
    succeed(&breaker).await.unwrap();
    breaker.call(slow_call).await.unwrap();
    breaker.call(slow_call).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    breaker.call(slow_call).await.unwrap();
    assert_eq!(breaker.state(), State::Open);
    let event = next_transition(&mut events).await;
    assert_eq!(
        event.reason,
        TransitionReason::SlowCallRate {
            percent: 75.0,
            calls: 4
        }
    );
    assert_eq!(breaker.stats().slow_calls, 3);
}

#[tokio::test(start_paused = true)]
async fn a_closed_breaker_starts_with_an_empty_window() {
    let breaker = Breaker::builder("pesapal")
        .reset_timeout(Duration::from_secs(5))
        .sliding_window(SlidingWindow {
            size: 10,
            minimum_calls: 2,
            failure_rate_threshold: Some(50.0),
            slow_call_rate_threshold: None,
        })
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    while next_transition(&mut events).await.to != State::HalfOpen {}
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.stats().window.map(|w| w.calls), Some(0));
    fail(&breaker).await.unwrap_err();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one failure is below the minimum of two calls"
    );
}

/// An HTTP-like answer: status code only.
#[derive(Debug)]
struct Response(u16);

fn by_status(result: &Result<Response, ProviderDown>) -> Verdict {
    match result {
        Ok(Response(status)) if *status >= 500 => Verdict::Failure,
        Ok(Response(status)) if *status >= 400 => Verdict::Ignore,
        Ok(_) => Verdict::Success,
        Err(_) => Verdict::Failure,
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_ignored_and_never_trips() {
    let breaker = Breaker::builder("mpesa")
        .failure_threshold(2)
        .build()
        .unwrap();
    for _ in 0..10 {
        let answer = breaker
            .call_with(by_status, || async { Ok(Response(400)) })
            .await
            .unwrap();
        assert_eq!(answer.0, 400);
    }
    assert_eq!(breaker.state(), State::Closed);
    let stats = breaker.stats();
    assert_eq!(
        (stats.ignored, stats.failure_count, stats.success_count),
        (10, 0, 0)
    );
    assert_eq!(
        stats.uptime, 100.0,
        "ignored calls do not count against uptime"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_error_inside_ok_is_a_failure() {
    let breaker = Breaker::builder("pesapal")
        .failure_threshold(2)
        .build()
        .unwrap();
    for _ in 0..2 {
        let answer = breaker
            .call_with(by_status, || async { Ok(Response(503)) })
            .await;
        assert!(
            matches!(answer, Ok(Response(503))),
            "the caller still gets the answer"
        );
    }
    assert_eq!(breaker.state(), State::Open);
    let stats = breaker.stats();
    assert_eq!(
        stats.last_failure.map(|f| f.reason).as_deref(),
        Some("result classified as a failure")
    );
    let rejected = breaker
        .call_with(by_status, || async { Ok(Response(200)) })
        .await;
    assert!(matches!(rejected, Err(BreakerError::Open(_))));
}

#[tokio::test(start_paused = true)]
async fn an_ignored_result_gives_a_trial_slot_back() {
    let breaker = Breaker::builder("sms")
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    while next_transition(&mut events).await.to != State::HalfOpen {}
    breaker
        .call_with(by_status, || async { Ok(Response(404)) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.stats().half_open_in_flight, 0);
    breaker
        .call_with(by_status, || async { Ok(Response(204)) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Closed);
}
