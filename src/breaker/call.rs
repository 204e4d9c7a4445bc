//! Running an async operation through a breaker: admission, the per-call timeout, and the
//! embedder's classification of the result.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::circuit::Breaker;
use super::error::{BreakerError, TimeoutError};
use super::event::{CallTag, Outcome};
use super::permit::Permit;

/// What a call's result says about the service behind the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The service worked.
    Success,
    /// The service failed; counts toward opening the breaker.
    Failure,
    /// Says nothing about the service (a bad request on our side, say): counted apart and
    /// never trips the breaker.
    Ignore,
}

/// Decides the [`Verdict`] of a call's result. Any `Fn(&Result<T, E>) -> Verdict` is one.
pub trait Classify<T, E> {
    /// The verdict on `result`.
    fn classify(&self, result: &Result<T, E>) -> Verdict;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Verdict,
{
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        self(result)
    }
}

/// The default classification: `Ok` is a success, `Err` a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorsAreFailures;

impl<T, E> Classify<T, E> for ErrorsAreFailures {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Verdict {
        match result {
            Ok(_) => Verdict::Success,
            Err(_) => Verdict::Failure,
        }
    }
}

impl Breaker {
    /// Runs `operation` through the breaker: rejected at once while open (the operation is
    /// not even built), cancelled at the timeout, and counted; `Err` counts as a failure.
    ///
    /// The Rust form of the seed's `mpesaCircuitBreaker.execute(async () => ...)`.
    #[inline]
    pub fn call<F, Fut, T, E>(
        &self,
        operation: F,
    ) -> impl Future<Output = Result<T, BreakerError<E>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        self.call_with(ErrorsAreFailures, operation)
    }

    /// Like [`call`](Self::call), with `classifier` deciding which results are failures and
    /// which are ignored (for example an HTTP 4xx caused by our own bad request).
    #[inline]
    pub fn call_with<C, F, Fut, T, E>(
        &self,
        classifier: C,
        operation: F,
    ) -> impl Future<Output = Result<T, BreakerError<E>>>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        Call {
            operation: Operation::Start {
                make: Some(operation),
            },
            waiting: None,
            breaker: self,
            classifier,
        }
    }
}

pin_project! {
    /// The future of [`Breaker::call_with`], written out by hand rather than as an `async fn`
    /// so that a call whose operation is ready at once keeps its permit in registers: an
    /// `async fn` keeps the permit in its own state across the await and copies it in and out,
    /// and on the closed path those copies cost more than the breaker's own work.
    ///
    /// Nothing happens before the first poll: the gate is asked then, and only an admitted
    /// call builds its operation. Only once the operation has returned `Pending` are the
    /// permit kept here and the timeout read and its timer started, so an operation that is
    /// ready at once costs no clock read and no timer; the timeout therefore counts from the
    /// first time the operation had to wait.
    struct Call<'a, C, F, Fut> {
        // Fields drop in order: a cancelled call drops its operation, then its timer, then its
        // permit, which counts it as cancelled.
        #[pin]
        operation: Operation<F, Fut>,
        // What only a call that had to wait holds, apart, so that dropping a call that never
        // waited is a check of one tag.
        #[pin]
        waiting: Option<Waiting<'a>>,
        breaker: &'a Breaker,
        classifier: C,
    }
}

pin_project! {
    #[project = OperationProj]
    enum Operation<F, Fut> {
        /// Not polled yet.
        Start { make: Option<F> },
        /// Admitted and built.
        Running {
            #[pin]
            future: Fut,
        },
        /// Finished, or rejected.
        Done,
    }
}

pin_project! {
    /// A running call whose operation has had to wait.
    struct Waiting<'a> {
        #[pin]
        sleep: Sleep,
        // The timeout the timer was started with.
        timeout: Duration,
        // Taken when the call ends.
        permit: Option<Permit<'a>>,
    }
}

impl<C, F, Fut, T, E> Future for Call<'_, C, F, Fut>
where
    C: Classify<T, E>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = Result<T, BreakerError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let breaker: &Breaker = this.breaker;
        if let OperationProj::Start { make } = this.operation.as_mut().project() {
            let Some(make) = make.take() else {
                unreachable!("a call's operation is built once, on its first poll")
            };
            let permit = match breaker.admit() {
                Ok(word) => Permit::new(breaker, word, CallTag::DEFAULT),
                Err(word) => {
                    this.operation.set(Operation::Done);
                    return Poll::Ready(Err(BreakerError::Open(
                        breaker.reject(word, CallTag::DEFAULT),
                    )));
                }
            };
            this.operation.set(Operation::Running { future: make() });
            let OperationProj::Running { future } = this.operation.as_mut().project() else {
                unreachable!("the operation was just built")
            };
            if let Poll::Ready(result) = future.poll(cx) {
                this.operation.set(Operation::Done);
                return Poll::Ready(settle(permit, &*this.classifier, result));
            }
            // The first wait: the timer starts now.
            let timeout = breaker.inner.tunables.timeout();
            this.waiting.set(Some(Waiting {
                sleep: tokio::time::sleep(timeout),
                timeout,
                permit: Some(permit),
            }));
        } else {
            let OperationProj::Running { future } = this.operation.as_mut().project() else {
                panic!("a breaker's call polled after it completed")
            };
            if let Poll::Ready(result) = future.poll(cx) {
                this.operation.set(Operation::Done);
                let permit = this
                    .waiting
                    .as_mut()
                    .as_pin_mut()
                    .and_then(|waiting| waiting.project().permit.take());
                this.waiting.set(None);
                let Some(permit) = permit else {
                    unreachable!("a call that waited holds its permit until it ends")
                };
                return Poll::Ready(settle(permit, &*this.classifier, result));
            }
        }
        let Some(waiting) = this.waiting.as_mut().as_pin_mut() else {
            unreachable!("a call that waits has its timer")
        };
        let waiting = waiting.project();
        if waiting.sleep.poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Timed out: the operation and its timer go before the permit reports it.
        let timeout = *waiting.timeout;
        let permit = waiting.permit.take();
        this.operation.set(Operation::Done);
        this.waiting.set(None);
        let error = TimeoutError {
            service: breaker.inner.error_name.clone(),
            timeout,
        };
        if let Some(permit) = permit {
            permit.finish(Outcome::Timeout, None, Some(&error));
        }
        Poll::Ready(Err(BreakerError::Timeout(error)))
    }
}

/// Reports a finished operation's result through its permit, as `classifier` judges it.
#[inline(always)]
fn settle<C, T, E>(
    permit: Permit<'_>,
    classifier: &C,
    result: Result<T, E>,
) -> Result<T, BreakerError<E>>
where
    C: Classify<T, E>,
    E: fmt::Display,
{
    match classifier.classify(&result) {
        Verdict::Success => permit.finish(Outcome::Success, None, None),
        Verdict::Ignore => permit.finish(Outcome::Ignored, None, None),
        Verdict::Failure => match &result {
            Err(error) => permit.finish(Outcome::Failure, None, Some(error)),
            Ok(_) => permit.finish(
                Outcome::Failure,
                None,
                Some(&"result classified as a failure"),
            ),
        },
    }
    result.map_err(BreakerError::Inner)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use tokio::time::{Instant, sleep};

    use crate::breaker::{Breaker, State, Verdict};

    fn breaker() -> Breaker {
        Breaker::builder("mpesa")
            .failure_threshold(3)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("valid policy")
    }

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Counts, when dropped, the calls the breaker had counted as cancelled by then.
    struct SeesCancelledOnDrop<'a> {
        breaker: &'a Breaker,
        seen: &'a Cell<Option<u64>>,
    }

    impl Drop for SeesCancelledOnDrop<'_> {
        fn drop(&mut self) {
            self.seen.set(Some(self.breaker.stats().cancelled));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_happens_before_the_first_poll() {
        let breaker = breaker();
        let built = Cell::new(false);
        let call = breaker.call(|| {
            built.set(true);
            async { Ok::<u32, String>(1) }
        });
        assert!(!built.get(), "the operation is built on the first poll");
        drop(call);
        let stats = breaker.stats();
        assert_eq!((stats.total_calls, stats.cancelled), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_counts_from_the_first_wait() {
        let breaker = breaker();
        let started = Instant::now();
        let result = breaker
            .call(|| async {
                sleep(Duration::from_secs(29)).await;
                Ok::<u32, String>(7)
            })
            .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(started.elapsed(), Duration::from_secs(29));
        assert_eq!(breaker.stats().success_count, 1);
        let timed_out = breaker
            .call(|| async {
                sleep(Duration::from_secs(31)).await;
                Ok::<u32, String>(7)
            })
            .await;
        assert!(timed_out.is_err_and(|error| error.is_timeout()));
        assert_eq!(started.elapsed(), Duration::from_secs(59));
        assert_eq!(breaker.stats().timeouts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_while_waiting_drops_its_operation_before_counting_it_cancelled() {
        let breaker = breaker();
        let seen = Cell::new(None);
        {
            let guard = SeesCancelledOnDrop {
                breaker: &breaker,
                seen: &seen,
            };
            let mut call = pin!(breaker.call(|| async move {
                let _guard = guard;
                sleep(Duration::from_secs(5)).await;
                Ok::<u32, String>(1)
            }));
            assert!(poll_once(call.as_mut()).is_pending());
            assert!(seen.get().is_none(), "the operation is still running");
        }
        assert_eq!(seen.get(), Some(0), "the operation went first");
        assert_eq!(breaker.stats().cancelled, 1);
        assert_eq!(breaker.stats().total_calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_classified_failure_of_a_call_that_waited_counts_as_one() {
        let breaker = breaker();
        let result = breaker
            .call_with(
                |_: &Result<u32, String>| Verdict::Failure,
                || async {
                    sleep(Duration::from_secs(1)).await;
                    Ok::<u32, String>(1)
                },
            )
            .await;
        assert_eq!(result.ok(), Some(1), "the result passes through untouched");
        let stats = breaker.stats();
        assert_eq!((stats.failure_count, stats.consecutive_failures), (1, 1));
        assert_eq!(
            stats.last_failure.map(|failure| failure.reason.to_string()),
            Some("result classified as a failure".to_owned())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_operation_counts_as_cancelled_and_leaves_the_breaker_closed() {
        let breaker = breaker();
        let at_once = catch_unwind(AssertUnwindSafe(|| {
            let mut call = pin!(breaker.call(|| async {
                if Instant::now().elapsed() == Duration::ZERO {
                    panic!("operation panicked");
                }
                Ok::<u32, String>(1)
            }));
            let _ = poll_once(call.as_mut());
        }));
        assert!(at_once.is_err());
        assert_eq!(breaker.stats().cancelled, 1);
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(
            breaker.call(|| async { Ok::<u32, String>(2) }).await.ok(),
            Some(2)
        );
    }
}
