//! What the stage writes down: a service's breaker and ledger after every change, and
//! everything at shutdown (only what a restart would otherwise lose).

use tokio::time::Instant;
use tracing::warn;

use super::{Restored, Stage};
use crate::alert::outage::ClockPair;
use crate::alert::store::ServiceRecord;

impl Stage {
    /// Writes `service`'s breaker and ledger down (soon, off the runtime).
    pub(super) fn save(&self, service: &str) {
        let (Some(restored), Some(ledger)) =
            (self.breakers.get(service), self.ledgers.get(service))
        else {
            return;
        };
        self.store.save(
            service,
            ServiceRecord {
                breaker: restored.breaker.clone(),
                last_failure: restored.last_failure.clone(),
                ledger: ledger.record(&ClockPair::now()),
            },
        );
    }

    /// Writes the breakers' last state and everything else down, stops the channels (queued
    /// notifications get until `deadline`) and the writer.
    pub(super) async fn finish(mut self, last: Vec<(String, Restored)>, deadline: Instant) {
        // Grouped pages waiting out the wait go now, rather than be lost with the process.
        for group in self.grouping.take_due(None) {
            self.send_group(group).await;
        }
        for (service, restored) in last {
            if !worth_writing(self.breakers.get(&service), &restored) {
                continue;
            }
            self.ledgers.entry(service.clone()).or_default();
            self.breakers.insert(service.clone(), restored);
            self.save(&service);
        }
        let _ = self.stop.send(true);
        let mut tasks = std::mem::take(&mut self.retired);
        tasks.extend(self.channels.into_values().map(|slot| slot.task));
        self.store.close().await;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                warn!(
                    "an alert channel did not finish in time; what it had left stays in the outbox"
                );
            }
        }
    }
}

/// Whether a breaker's last state, `last`, must be written at shutdown: only what a restart
/// would otherwise lose. What the stage already wrote (`known`) needs no second write, and a
/// breaker that never left closed with no failures in a row needs no file at all.
pub(super) fn worth_writing(known: Option<&Restored>, last: &Restored) -> bool {
    let pristine = last.breaker.state == crate::breaker::State::Closed
        && last.breaker.consecutive_failures == 0
        && last.breaker.last_change.is_none();
    known != Some(last) && !(pristine && known.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::{Snapshot, State};

    fn restored(state: State, consecutive_failures: u32) -> Restored {
        Restored {
            breaker: Snapshot {
                state,
                next_attempt: None,
                consecutive_failures,
                reopenings: 0,
                last_failure: None,
                last_change: None,
            },
            last_failure: None,
        }
    }

    #[test]
    fn a_pristine_breaker_the_stage_never_heard_of_needs_no_file() {
        assert!(!worth_writing(None, &restored(State::Closed, 0)));
    }

    #[test]
    fn failures_in_a_row_or_an_open_breaker_are_written() {
        assert!(worth_writing(None, &restored(State::Closed, 2)));
        assert!(worth_writing(None, &restored(State::Open, 3)));
    }

    #[test]
    fn what_was_written_already_is_not_written_again_but_a_change_is() {
        let open = restored(State::Open, 3);
        assert!(!worth_writing(Some(&open), &open));
        // Back to pristine after an outage the stage wrote down: the file must say so.
        assert!(worth_writing(Some(&open), &restored(State::Closed, 0)));
    }
}
