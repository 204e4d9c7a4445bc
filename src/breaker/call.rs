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
use super::event::Outcome;
use super::tunables::Tunables;

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
    pub async fn call<F, Fut, T, E>(&self, operation: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        self.call_with(ErrorsAreFailures, operation).await
    }

    /// Like [`call`](Self::call), with `classifier` deciding which results are failures and
    /// which are ignored (for example an HTTP 4xx caused by our own bad request).
    #[inline]
    pub async fn call_with<C, F, Fut, T, E>(
        &self,
        classifier: C,
        operation: F,
    ) -> Result<T, BreakerError<E>>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Display,
    {
        let permit = self.acquire()?;
        match (Deadline {
            operation: operation(),
            sleep: None,
            tunables: &self.inner.tunables,
            timeout: Duration::ZERO,
        })
        .await
        {
            Ok(result) => {
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
            Err(timeout) => {
                let error = TimeoutError {
                    service: self.inner.error_name.clone(),
                    timeout,
                };
                permit.finish(Outcome::Timeout, None, Some(&error));
                Err(BreakerError::Timeout(error))
            }
        }
    }
}

pin_project! {
    /// Polls the operation and, only once it has returned `Pending`, reads the timeout and
    /// starts its timer: an operation that is ready at once costs no clock read and no timer.
    /// The timeout therefore counts from the first time the operation had to wait.
    struct Deadline<'a, F> {
        #[pin]
        operation: F,
        #[pin]
        sleep: Option<Sleep>,
        tunables: &'a Tunables,
        // The timeout the timer was started with.
        timeout: Duration,
    }
}

impl<F: Future> Future for Deadline<'_, F> {
    /// `Err` with the timeout when it passed first.
    type Output = Result<F::Output, Duration>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.operation.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if this.sleep.is_none() {
            *this.timeout = this.tunables.timeout();
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(*this.timeout)),
            _ => Poll::Pending,
        }
    }
}
