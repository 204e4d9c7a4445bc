//! One timer per connection for all of its deadlines (the idle limit, the header limit, the
//! call's timeout, a body's stall limit): moved earlier only when a deadline comes before the
//! moment it is set for, else left to ring early and be set again — so a request on a busy
//! connection costs no timer of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A connection's timer.
pub(crate) struct Deadlines {
    timer: Pin<Box<Sleep>>,
    /// When the timer rings.
    set_for: Instant,
}

/// Far enough that it never rings (tokio's own "far future" is 30 years).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Deadlines {
    pub(crate) fn new() -> Self {
        let set_for = Instant::now() + NEVER;
        Self {
            timer: Box::pin(tokio::time::sleep_until(set_for)),
            set_for,
        }
    }

    /// `work`'s output, or `None` once `deadline` has passed without it.
    pub(crate) async fn within<F: Future>(
        &mut self,
        deadline: Instant,
        work: F,
    ) -> Option<F::Output> {
        if deadline < self.set_for {
            self.set(deadline);
        }
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|context| {
            if let Poll::Ready(output) = work.as_mut().poll(context) {
                return Poll::Ready(Some(output));
            }
            while self.timer.as_mut().poll(context).is_ready() {
                if Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                // Rang for an earlier deadline: set again for this one.
                self.set(deadline);
            }
            Poll::Pending
        })
        .await
    }

    fn set(&mut self, deadline: Instant) {
        self.timer.as_mut().reset(deadline);
        self.set_for = deadline;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_deadline_holds_whatever_the_timer_was_set_for() {
        let mut deadlines = Deadlines::new();
        let start = Instant::now();
        let late = start + Duration::from_secs(60);
        assert_eq!(deadlines.within(late, async { 7 }).await, Some(7));
        let early = start + Duration::from_secs(2);
        let never = std::future::pending::<()>();
        assert_eq!(deadlines.within(early, never).await, None);
        assert_eq!(Instant::now(), early, "ended at its deadline");
        // The timer was set for 2 s; a later deadline is waited for whole, not cut at the
        // timer's earlier ring.
        let later = Instant::now() + Duration::from_secs(30);
        let sleeper = tokio::time::sleep_until(later - Duration::from_secs(1));
        assert_eq!(deadlines.within(later, sleeper).await, Some(()));
        assert_eq!(Instant::now(), later - Duration::from_secs(1));
        assert_eq!(
            deadlines.within(later, std::future::pending::<()>()).await,
            None
        );
        assert_eq!(Instant::now(), later);
    }
}
