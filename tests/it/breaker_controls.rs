//! Manual control: reset, force open and disable.

use std::time::Duration;

use breakerd::breaker::{State, TransitionReason};
use tokio::time::advance;

use crate::support::{fail, next_transition, payment_breaker, succeed};

#[tokio::test(start_paused = true)]
async fn reset_closes_and_clears_every_count() {
    let breaker = payment_breaker("mpesa");
    let mut events = breaker.subscribe();
    succeed(&breaker).await.unwrap();
    for _ in 0..4 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    let stats = breaker.stats();
    assert_eq!(
        (
            stats.failure_count,
            stats.success_count,
            stats.rejections,
            stats.consecutive_failures
        ),
        (0, 0, 0, 0)
    );
    assert!(stats.last_failure.is_none());
    assert!(stats.next_attempt.is_none());
    let events: Vec<_> = [
        next_transition(&mut events).await,
        next_transition(&mut events).await,
    ]
    .into_iter()
    .map(|e| (e.from, e.to, e.reason))
    .collect();
    assert_eq!(
        events,
        vec![
            (
                State::Closed,
                State::Open,
                TransitionReason::ConsecutiveFailures { count: 3 }
            ),
            (State::Open, State::Closed, TransitionReason::ManualReset),
        ]
    );
    // The old open period's timer must not half-open the reset breaker.
    advance(Duration::from_secs(300)).await;
    assert_eq!(breaker.state(), State::Closed);
    // And the failure count starts again from zero.
    fail(&breaker).await.unwrap_err();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_until_reset_and_never_half_opens() {
    let breaker = payment_breaker("kcb");
    breaker.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    let error = succeed(&breaker).await.unwrap_err();
    assert_eq!(error.to_string(), "Circuit breaker kcb is OPEN");
    advance(Duration::from_secs(3600)).await;
    assert_eq!(breaker.state(), State::ForcedOpen);
    assert!(breaker.stats().next_attempt.is_none());
    breaker.reset();
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn forcing_open_cancels_a_pending_half_open() {
    let breaker = payment_breaker("pesapal");
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    breaker.force_open();
    advance(Duration::from_secs(121)).await;
    assert_eq!(breaker.state(), State::ForcedOpen);
}

#[tokio::test(start_paused = true)]
async fn disabled_lets_every_call_through_and_still_counts() {
    let breaker = payment_breaker("whatsapp");
    let mut events = breaker.subscribe();
    breaker.disable();
    for _ in 0..10 {
        fail(&breaker)
            .await
            .unwrap_err()
            .into_inner()
            .expect("the inner error, not a rejection");
    }
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), State::Disabled);
    let stats = breaker.stats();
    assert_eq!(
        (stats.failure_count, stats.success_count, stats.rejections),
        (10, 1, 0)
    );
    assert_eq!(
        next_transition(&mut events).await.reason,
        TransitionReason::Disabled
    );
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn every_subscriber_gets_every_transition_in_order() {
    let breaker = payment_breaker("email");
    let mut first = breaker.subscribe();
    let mut second = breaker.subscribe();
    for _ in 0..3 {
        fail(&breaker).await.unwrap_err();
    }
    breaker.reset();
    breaker.force_open();
    breaker.disable();
    let expected = [
        State::Open,
        State::Closed,
        State::ForcedOpen,
        State::Disabled,
    ];
    for receiver in [&mut first, &mut second] {
        for state in expected {
            assert_eq!(next_transition(receiver).await.to, state);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn tags_reach_the_hook_and_owned_permits_report_later() {
    use breakerd::breaker::{CallRecord, CallTag, Outcome};
    use std::sync::Mutex;
    let seen: std::sync::Arc<Mutex<Vec<CallRecord>>> = std::sync::Arc::default();
    let hook = std::sync::Arc::clone(&seen);
    let breaker = breakerd::breaker::Breaker::builder("mpesa")
        .failure_threshold(2)
        .slow_call_duration(std::time::Duration::from_millis(500))
        .on_outcome(move |record| hook.lock().unwrap().push(*record))
        .build()
        .unwrap();
    let traffic = CallTag(1);
    // A permit that outlives the scope it was taken in: the call is reported later.
    let permit = breaker.acquire_owned(traffic).expect("closed");
    let reported = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        permit.record_failure(&"HTTP 502");
    });
    reported.await.unwrap();
    // A call made elsewhere, timed by its caller.
    breaker
        .acquire_tagged(traffic)
        .expect("closed")
        .record_measured(
            Outcome::Timeout,
            std::time::Duration::from_secs(3),
            Some(&"no answer"),
        );
    assert_eq!(breaker.state(), breakerd::breaker::State::Open);
    let _ = breaker.acquire_tagged(traffic).expect_err("open");
    let _ = breaker.call(|| async { Ok::<_, String>(()) }).await;
    let seen = seen.lock().unwrap().clone();
    let summary: Vec<(Outcome, Option<u128>, bool, u8)> = seen
        .iter()
        .map(|r| {
            (
                r.outcome,
                r.duration.map(|d| d.as_millis()),
                r.slow,
                r.tag.0,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Outcome::Failure, Some(700), true, 1),
            (Outcome::Timeout, Some(3000), true, 1),
            (Outcome::Rejected, None, false, 1),
            (Outcome::Rejected, None, false, CallTag::DEFAULT.0),
        ]
    );
    assert_eq!(
        breaker.stats().last_failure.map(|f| f.reason).as_deref(),
        Some("no answer")
    );

    // A dropped owned permit is a cancelled call and frees its trial slot.
    breaker.reset();
    let dropped = breaker.acquire_owned(traffic).expect("closed");
    drop(dropped);
    assert_eq!(breaker.stats().cancelled, 1);
}
