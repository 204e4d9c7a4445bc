//! Many breakers on one transition bus: order per breaker, no transition lost, memory bounded
//! with a stalled consumer, and the edges of an outage kept when transitions are folded.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use breakerd::breaker::{
    Breaker, BreakerId, Delivery, State, Transition, TransitionBus, TransitionReason,
};
use tokio::time::{Instant, advance};

use crate::support::{fail, succeed};

fn on(bus: &TransitionBus, name: &str) -> Breaker {
    Breaker::builder(name)
        .failure_threshold(1)
        .reset_timeout(Duration::from_secs(1))
        .bus(bus)
        .build()
        .expect("a valid policy")
}

fn path(transitions: &[Transition]) -> Vec<(State, State)> {
    transitions.iter().map(|t| (t.from, t.to)).collect()
}

fn assert_chained(transitions: &[Transition]) {
    for pair in transitions.windows(2) {
        assert_eq!(pair[0].to, pair[1].from, "{:?}", path(transitions));
    }
}

/// Waits, on the paused clock, until the open timer has half-opened `breaker`.
async fn half_opened(breaker: &Breaker) {
    advance(Duration::from_secs(1)).await;
    for _ in 0..100 {
        if breaker.state() == State::HalfOpen {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{} did not half-open", breaker.name());
}

#[tokio::test(start_paused = true)]
async fn every_breakers_transitions_arrive_in_order() {
    let bus = TransitionBus::new();
    let mpesa = on(&bus, "mpesa");
    let sms = on(&bus, "sms");
    fail(&mpesa).await.unwrap_err();
    sms.force_open();
    half_opened(&mpesa).await;
    succeed(&mpesa).await.unwrap();
    sms.reset();
    sms.disable();
    let mut seen: HashMap<String, Vec<(State, State)>> = HashMap::new();
    while let Some(delivery) = bus.try_recv() {
        assert_eq!(delivery.folded(), 0, "below the limit nothing folds");
        seen.entry(delivery.breaker().name().to_string())
            .or_default()
            .extend(path(delivery.transitions()));
    }
    use State::{Closed as C, Disabled as D, ForcedOpen as F, HalfOpen as H, Open as O};
    assert_eq!(seen["mpesa"], vec![(C, O), (O, H), (H, C)]);
    assert_eq!(seen["sms"], vec![(C, F), (F, C), (C, D)]);
    assert_eq!((bus.held(), bus.waiting(), bus.folded()), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_consumer_is_woken() {
    let bus = TransitionBus::new();
    let consumer = tokio::spawn({
        let bus = bus.clone();
        async move { bus.recv().await }
    });
    tokio::task::yield_now().await;
    let mpesa = on(&bus, "mpesa");
    mpesa.force_open();
    // On the paused clock a consumer nobody wakes would see this timeout fire at once.
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer)
        .await
        .expect("woken by the transition")
        .expect("the consumer ran");
    assert_eq!(delivery.breaker().id(), mpesa.id());
    assert_eq!(
        path(delivery.transitions()),
        vec![(State::Closed, State::ForcedOpen)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_consumer_holds_a_bounded_number_and_gets_the_outage_edges() {
    let limit = 4;
    let bus = TransitionBus::with_pending_limit(limit);
    let mpesa = on(&bus, "mpesa");
    let healthy = on(&bus, "sms");
    fail(&mpesa).await.unwrap_err();
    let opened_at = Instant::now();
    let flaps = 1_000;
    for _ in 0..flaps {
        half_opened(&mpesa).await;
        fail(&mpesa).await.unwrap_err();
        assert_eq!(mpesa.state(), State::Open);
        assert!(bus.held() <= limit, "{} held", bus.held());
        assert_eq!(bus.waiting(), 1, "one breaker with news, queued once");
    }
    half_opened(&mpesa).await;
    succeed(&mpesa).await.unwrap();
    let closed_at = Instant::now();
    assert_eq!(mpesa.state(), State::Closed);
    assert!(bus.held() <= limit);

    let delivery: Delivery = bus.try_recv().expect("mpesa's news");
    assert!(bus.try_recv().is_none(), "the healthy breaker said nothing");
    let transitions = delivery.transitions();
    assert_chained(transitions);
    let first = &transitions[0];
    assert_eq!((first.from, first.to), (State::Closed, State::Open));
    assert_eq!(first.at, opened_at, "the outage starts when it started");
    assert_eq!(
        first.reason,
        TransitionReason::ConsecutiveFailures { count: 1 }
    );
    let last = transitions.last().expect("never empty");
    assert_eq!(last.to, State::Closed, "the latest state");
    assert_eq!(last.at, closed_at, "the outage ends when it ended");
    assert_eq!(last.reason, TransitionReason::TrialsSucceeded { count: 1 });
    let made = 1 + 2 * flaps + 2;
    assert_eq!(
        transitions.len() + delivery.folded() as usize,
        made,
        "each transition delivered or counted"
    );
    assert_eq!(bus.folded(), u64::from(delivery.folded()));
    assert_eq!(bus.held(), 0);
    drop(healthy);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_breakers_transitions_still_arrive() {
    let bus = TransitionBus::new();
    let gone = on(&bus, "gone");
    let id: BreakerId = gone.id();
    gone.force_open();
    drop(gone);
    let delivery = bus.recv().await;
    assert_eq!(delivery.breaker().id(), id);
    assert_eq!(delivery.breaker().name(), "gone");
    assert_eq!(delivery.breaker().state(), State::ForcedOpen);
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_and_the_bus_both_hear_every_change() {
    let bus = TransitionBus::new();
    let mpesa = on(&bus, "mpesa");
    let mut events = mpesa.subscribe();
    mpesa.force_open();
    mpesa.reset();
    assert_eq!(events.recv().await.unwrap().to, State::ForcedOpen);
    assert_eq!(events.recv().await.unwrap().to, State::Closed);
    let delivery = bus.recv().await;
    assert_eq!(
        path(delivery.transitions()),
        vec![
            (State::Closed, State::ForcedOpen),
            (State::ForcedOpen, State::Closed)
        ]
    );
}

#[test]
fn breakers_changed_from_many_threads_reach_one_consumer_in_order() {
    let bus = TransitionBus::with_pending_limit(5);
    let breakers: Vec<Breaker> = (0..8)
        .map(|i| {
            Breaker::builder(format!("svc-{i}"))
                .bus(&bus)
                .build()
                .expect("a valid policy")
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let consumer = std::thread::spawn({
        let bus = bus.clone();
        let done = Arc::clone(&done);
        move || {
            let mut seen: HashMap<BreakerId, (Vec<Transition>, u64)> = HashMap::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                match bus.try_recv() {
                    Some(delivery) => {
                        let entry = seen.entry(delivery.breaker().id()).or_default();
                        entry.1 += u64::from(delivery.folded());
                        entry.0.extend(delivery.into_transitions());
                    }
                    None if finished => return seen,
                    None => std::thread::yield_now(),
                }
            }
        }
    });
    let changers: Vec<_> = (0..4)
        .map(|thread| {
            let breakers = breakers.clone();
            std::thread::spawn(move || {
                for step in 0..5_000usize {
                    let breaker = &breakers[(step * 7 + thread) % breakers.len()];
                    match (step + thread) % 3 {
                        0 => breaker.force_open(),
                        1 => breaker.reset(),
                        _ => breaker.disable(),
                    }
                }
            })
        })
        .collect();
    for changer in changers {
        changer.join().expect("a changing thread");
    }
    done.store(true, Ordering::Release);
    let seen = consumer.join().expect("the consumer");
    let mut folded = 0;
    for breaker in &breakers {
        let (transitions, breaker_folded) = &seen[&breaker.id()];
        folded += breaker_folded;
        assert_eq!(transitions[0].from, State::Closed, "from where it started");
        assert_chained(transitions);
        assert_eq!(
            transitions.last().map(|t| t.to),
            Some(breaker.state()),
            "the consumer ends where the breaker is"
        );
    }
    assert_eq!(bus.folded(), folded, "every fold counted once");
    assert_eq!(bus.held(), 0);
}
