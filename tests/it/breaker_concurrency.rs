//! Races: many tasks and threads on one breaker. Trial slots are exact, cancelled or hung
//! trials give theirs back, and no count is lost.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use breakerd::breaker::{Breaker, BreakerError, State};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::support::{ProviderDown, fail, next_transition, succeed, transition_to};

fn trial_breaker(max_calls: u32) -> Breaker {
    Breaker::builder("kcb")
        .failure_threshold(1)
        .timeout(Duration::from_secs(30))
        .reset_timeout(Duration::from_secs(60))
        .half_open_max_calls(max_calls)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_configured_number_of_trials() {
    let breaker = trial_breaker(3);
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    transition_to(&mut events, State::HalfOpen).await;
    let release = Arc::new(Notify::new());
    let mut calls = JoinSet::new();
    for _ in 0..50 {
        let breaker = breaker.clone();
        let release = release.clone();
        calls.spawn(async move {
            breaker
                .call(|| async move {
                    release.notified().await;
                    Ok::<u32, ProviderDown>(1)
                })
                .await
        });
    }
    // Let every task reach the gate, then count.
    tokio::task::yield_now().await;
    while breaker.stats().rejections < 47 {
        tokio::task::yield_now().await;
    }
    assert_eq!(breaker.stats().half_open_in_flight, 3);
    release.notify_waiters();
    let mut admitted = 0;
    let mut rejected = 0;
    while let Some(result) = calls.join_next().await {
        match result.expect("call task panicked") {
            Ok(_) => admitted += 1,
            Err(BreakerError::Open(open)) => {
                assert_eq!(open.to_string(), "Circuit breaker kcb is HALF_OPEN");
                rejected += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((admitted, rejected), (3, 47));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn threads_racing_for_trial_slots_get_exactly_that_many() {
    for max_calls in [1, 4] {
        let breaker = Breaker::builder("race")
            .failure_threshold(1)
            .reset_timeout(Duration::from_nanos(1))
            .half_open_max_calls(max_calls)
            .build()
            .unwrap();
        breaker.acquire().unwrap().record_failure(&"refused");
        let threads = 16;
        let start = Arc::new(Barrier::new(threads));
        let hold = Arc::new(Barrier::new(threads));
        let admitted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (breaker, start, hold) = (&breaker, start.clone(), hold.clone());
                    scope.spawn(move || {
                        start.wait();
                        let permit = breaker.acquire();
                        // Everyone holds what they got until all have asked.
                        hold.wait();
                        match permit {
                            Ok(permit) => {
                                assert!(permit.is_trial());
                                permit.record_ignored();
                                1
                            }
                            Err(_) => 0,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("racing thread panicked"))
                .sum()
        });
        assert_eq!(admitted, max_calls as usize);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(
            breaker.stats().rejections,
            (threads - max_calls as usize) as u64
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_gives_its_slot_back() {
    let breaker = trial_breaker(1);
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    transition_to(&mut events, State::HalfOpen).await;
    let hung = {
        let breaker = breaker.clone();
        tokio::spawn(async move {
            breaker
                .call(|| async {
                    std::future::pending::<()>().await;
                    Ok::<u32, ProviderDown>(1)
                })
                .await
        })
    };
    while breaker.stats().half_open_in_flight == 0 {
        tokio::task::yield_now().await;
    }
    assert!(
        succeed(&breaker).await.unwrap_err().is_open(),
        "the only slot is taken"
    );
    hung.abort();
    assert!(hung.await.unwrap_err().is_cancelled());
    assert_eq!(breaker.stats().half_open_in_flight, 0);
    assert_eq!(breaker.stats().cancelled, 1);
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_hung_trial_times_out_and_reopens_so_half_open_never_sticks() {
    let breaker = trial_breaker(1);
    let mut events = breaker.subscribe();
    fail(&breaker).await.unwrap_err();
    transition_to(&mut events, State::HalfOpen).await;
    let error = breaker
        .call(|| async {
            std::future::pending::<()>().await;
            Ok::<u32, ProviderDown>(1)
        })
        .await
        .unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(next_transition(&mut events).await.to, State::Open);
    transition_to(&mut events, State::HalfOpen).await;
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_count_is_lost_under_contention() {
    let breaker = Breaker::builder("sms")
        .failure_threshold(u32::MAX)
        .build()
        .unwrap();
    let mut tasks = JoinSet::new();
    for task in 0..8u64 {
        let breaker = breaker.clone();
        tasks.spawn(async move {
            for i in 0..5_000u64 {
                if (i + task) % 5 == 0 {
                    fail(&breaker).await.unwrap_err();
                } else {
                    succeed(&breaker).await.unwrap();
                }
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("calling task panicked");
    }
    let stats = breaker.stats();
    assert_eq!(
        (stats.success_count, stats.failure_count, stats.total_calls),
        (32_000, 8_000, 40_000)
    );
}

#[test]
fn concurrent_failures_open_the_breaker_exactly_once() {
    let breaker = Breaker::builder("mpesa")
        .failure_threshold(3)
        .reset_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut events = breaker.subscribe();
    let threads = 8;
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                start.wait();
                for _ in 0..100 {
                    if let Ok(permit) = breaker.acquire() {
                        permit.record_failure(&"connection reset");
                    }
                }
            });
        }
    });
    assert_eq!(breaker.state(), State::Open);
    let event = events.try_recv().expect("one transition");
    assert_eq!((event.from, event.to), (State::Closed, State::Open));
    assert!(
        events.try_recv().is_err(),
        "the breaker opened more than once"
    );
    let stats = breaker.stats();
    assert_eq!(stats.failure_count + stats.rejections, 800);
}
