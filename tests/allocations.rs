//! The breaker's hot paths allocate nothing: a call through a closed breaker, a rejection by
//! an open one, and a rejection's error. Its own test binary, because counting replaces the
//! global allocator.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerd::breaker::Breaker;

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("down")
    }
}

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future must be ready at once"),
    }
}

#[test]
fn closed_calls_and_open_rejections_allocate_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _inside = runtime.enter();
    let breaker = Breaker::builder("mpesa")
        .failure_threshold(3)
        .reset_timeout(Duration::from_secs(120))
        .build()
        .expect("valid policy");
    // Warm up thread-locals before counting.
    ready(breaker.call(|| async { Ok::<u64, Down>(1) })).expect("closed call");

    let closed = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            ready(breaker.call(|| async { Ok::<u64, Down>(1) })).expect("closed call");
        }
    });
    assert_eq!(closed.count_total, 0, "closed path allocated: {closed:?}");

    for _ in 0..3 {
        ready(breaker.call(|| async { Err::<u64, Down>(Down) })).expect_err("failure");
    }
    let rejected = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let error = ready(breaker.call(|| async { Ok::<u64, Down>(1) })).expect_err("open");
            assert!(error.is_open());
        }
    });
    assert_eq!(rejected.count_total, 0, "open path allocated: {rejected:?}");
}
