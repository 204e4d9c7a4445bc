//! The breaker's per-call cost beside its Rust peers, in one run: failsafe, recloser and the
//! circuit breaker of tower-resilience.
//!
//! recloser is called through its synchronous `Recloser::call` (a closure returning the
//! result), its own fastest path; `closed_path/recloser_async` also times its `AsyncRecloser`
//! wrapper, which clones an `Arc` per call.
//!
//! Three groups, every breaker built outside the timed loop:
//! - `closed_path`: one call of an already-ready future through a closed breaker (recloser: of
//!   a closure); subtract the `baseline` (the same future with no breaker) for the breaker's
//!   own overhead;
//! - `open_rejection`: one call rejected by an open breaker;
//! - `two_threads`: two threads calling one closed breaker at once; the time is per call as
//!   each thread sees it, so a breaker that scales perfectly matches its `closed_path` figure.
//!
//! Run: `cargo bench --bench breaker`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use breakerd::breaker::Breaker;
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::futures::CircuitBreaker as _;
use tower::{Layer, Service, service_fn};

/// The error every breaker sees; displayable, as breakerd's `call` needs.
#[derive(Debug, Clone, Copy)]
struct Fail;

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fail")
    }
}

impl std::error::Error for Fail {}

const OPEN_FOR: Duration = Duration::from_secs(3600);

/// Polls a future that must be ready at once, with a no-op waker: no executor in the timing.
#[inline]
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked future must be ready at once"),
    }
}

/// The call's result, computed at once: what the synchronous breaker wraps.
#[inline]
fn answer_now(fail: bool) -> Result<u64, Fail> {
    if black_box(fail) {
        Err(Fail)
    } else {
        Ok(black_box(1))
    }
}

#[inline]
async fn answer(fail: bool) -> Result<u64, Fail> {
    answer_now(fail)
}

fn ours() -> Breaker {
    Breaker::builder("bench")
        .failure_threshold(3)
        .timeout(Duration::from_secs(30))
        .reset_timeout(OPEN_FOR)
        .build()
        .expect("valid policy")
}

fn ours_with_hook() -> Breaker {
    Breaker::builder("bench")
        .failure_threshold(3)
        .timeout(Duration::from_secs(30))
        .reset_timeout(OPEN_FOR)
        .slow_call_duration(Duration::from_secs(1))
        .on_outcome(|record| {
            black_box(record);
        })
        .build()
        .expect("valid policy")
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe() -> Failsafe {
    let policy =
        failsafe::failure_policy::consecutive_failures(3, failsafe::backoff::constant(OPEN_FOR));
    failsafe::Config::new().failure_policy(policy).build()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .closed_len(3)
        .open_wait(OPEN_FOR)
        .build()
}

fn tower_resilience()
-> impl Service<bool, Response = u64, Error = impl std::fmt::Debug, Future = impl Future> + Clone {
    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .consecutive_failures(3)
        .wait_duration_in_open(OPEN_FOR)
        .build()
        .expect("valid tower-resilience config");
    layer.layer(service_fn(answer))
}

fn call_tower<S: Service<bool>>(service: &mut S, fail: bool) -> Result<S::Response, S::Error> {
    match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => ready(service.call(fail)),
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => panic!("tower-resilience service not ready"),
    }
}

/// tower-resilience takes an async mutex on each call; under contention its future waits
/// (it sleeps 1 ms and retries), so the two-thread case must be able to finish a pending call.
fn call_tower_on<S: Service<bool>>(
    service: &mut S,
    runtime: &tokio::runtime::Runtime,
) -> Result<S::Response, S::Error> {
    let mut context = Context::from_waker(Waker::noop());
    if let Poll::Ready(Err(error)) = service.poll_ready(&mut context) {
        return Err(error);
    }
    let mut call = pin!(service.call(false));
    match call.as_mut().poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => runtime.block_on(call),
    }
}

fn closed_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_path");
    group.bench_function("baseline", |b| b.iter(|| ready(answer(false))));
    let breaker = ours();
    group.bench_function("breakerd", |b| {
        b.iter(|| ready(breaker.call(|| answer(false))))
    });
    let hooked = ours_with_hook();
    group.bench_function("breakerd_hook_and_slow_call", |b| {
        b.iter(|| ready(hooked.call(|| answer(false))))
    });
    let failsafe = failsafe();
    group.bench_function("failsafe", |b| {
        b.iter(|| ready(failsafe.call(answer(false))))
    });
    let recloser_async = recloser::AsyncRecloser::from(recloser());
    let recloser = recloser();
    group.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| answer_now(false)))
    });
    group.bench_function("recloser_async", |b| {
        b.iter(|| ready(recloser_async.call(answer(false))))
    });
    let mut tower = tower_resilience();
    group.bench_function("tower_resilience", |b| {
        b.iter(|| call_tower(&mut tower, false))
    });
    group.finish();
}

fn open_rejection(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_rejection");
    let breaker = ours();
    while !ready(breaker.call(|| answer(true))).is_err_and(|e| e.is_open()) {}
    group.bench_function("breakerd", |b| {
        b.iter(|| ready(breaker.call(|| answer(false))))
    });
    let failsafe = failsafe();
    while !matches!(
        ready(failsafe.call(answer(true))),
        Err(failsafe::Error::Rejected)
    ) {}
    group.bench_function("failsafe", |b| {
        b.iter(|| ready(failsafe.call(answer(false))))
    });
    let recloser = recloser();
    while !matches!(
        recloser.call(|| answer_now(true)),
        Err(recloser::Error::Rejected)
    ) {}
    group.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| answer_now(false)))
    });
    let mut tower = tower_resilience();
    for _ in 0..10 {
        let _ = call_tower(&mut tower, true);
    }
    assert!(
        call_tower(&mut tower, false).is_err(),
        "tower-resilience breaker did not open"
    );
    group.bench_function("tower_resilience", |b| {
        b.iter(|| call_tower(&mut tower, false))
    });
    group.finish();
}

/// Runs `iters` calls on each of two threads at once; returns the slower thread's time.
fn on_two_threads<C: FnMut()>(
    iters: u64,
    make_caller: impl Fn() -> C + Sync,
    runtime: &tokio::runtime::Handle,
) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let _runtime = runtime.enter();
                    let mut call = make_caller();
                    start.wait();
                    let started = Instant::now();
                    for _ in 0..iters {
                        call();
                    }
                    started.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("benchmark thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

fn two_threads(c: &mut Criterion) {
    let runtime = tokio::runtime::Handle::current();
    let mut group = c.benchmark_group("two_threads");
    let breaker = ours();
    group.bench_function("breakerd", |b| {
        b.iter_custom(|iters| {
            on_two_threads(
                iters,
                || {
                    || {
                        black_box(ready(breaker.call(|| answer(false))).is_ok());
                    }
                },
                &runtime,
            )
        })
    });
    let failsafe = failsafe();
    group.bench_function("failsafe", |b| {
        b.iter_custom(|iters| {
            on_two_threads(
                iters,
                || {
                    || {
                        black_box(ready(failsafe.call(answer(false))).is_ok());
                    }
                },
                &runtime,
            )
        })
    });
    let recloser = recloser();
    group.bench_function("recloser", |b| {
        b.iter_custom(|iters| {
            on_two_threads(
                iters,
                || {
                    || {
                        black_box(recloser.call(|| answer_now(false)).is_ok());
                    }
                },
                &runtime,
            )
        })
    });
    let tower = tower_resilience();
    group.bench_function("tower_resilience", |b| {
        b.iter_custom(|iters| {
            on_two_threads(
                iters,
                || {
                    let mut service = tower.clone();
                    let own_runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .expect("per-thread tokio runtime");
                    move || {
                        black_box(call_tower_on(&mut service, &own_runtime).is_ok());
                    }
                },
                &runtime,
            )
        })
    });
    group.finish();
}

fn all(c: &mut Criterion) {
    // Inside a runtime, as in real use: an open breaker arms its half-open timer on tokio.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let _inside = runtime.enter();
    closed_path(c);
    open_rejection(c);
    two_threads(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = all
}
criterion_main!(benches);
