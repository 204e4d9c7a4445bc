//! What the stage's unit tests share: a ledger whose breaker just opened.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::alert::outage::{Change, Ledger, Page, Rules};
use crate::breaker::{State, TransitionReason};
use crate::config::NotifyOn;
use crate::outcome::Cause;

/// A ledger whose breaker opened at `at` after three failures, `cause` the last of them, and
/// the page that opening made.
pub(super) fn opened(at: SystemTime, cause: Option<Cause>) -> (Ledger, Page) {
    let rules = Rules {
        notify_on: vec![NotifyOn::Open, NotifyOn::Closed],
        min_interval: Duration::from_secs(30),
        reminder_every: None,
    };
    let change = Change {
        from: State::Closed,
        to: State::Open,
        reason: TransitionReason::ConsecutiveFailures { count: 3 },
        at,
        consecutive_failures: 3,
        next_attempt: Some(at + Duration::from_secs(60)),
        cause,
    };
    let mut ledger = Ledger::default();
    let page = ledger
        .on_change(change, &rules, Instant::now())
        .expect("an opening is paged");
    (ledger, page)
}
