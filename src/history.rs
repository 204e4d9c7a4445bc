//! Recent history per service — its state changes, its outages and the delivery of each
//! alert — for the API's events route (the seed's "historical failure analysis") and the
//! status page.

mod outages;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::breaker::Transition;
use crate::metrics::AlertOutcome;
use crate::outcome::Cause;
use outages::OutageLog;
pub use outages::{OUTAGES_KEPT, OutageRecord, OutageStep, STEPS_KEPT};

/// Entries kept per service and kind.
pub const HISTORY_LENGTH: usize = 100;

/// How one notification's delivery to one channel ended.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// The notification's id (0 for an Alertmanager alert update).
    pub notification: u64,
    /// Its subject.
    pub subject: String,
    /// The channel.
    pub channel: String,
    /// `sent`, `failed` or `dropped`.
    pub outcome: AlertOutcome,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, when not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it ended (RFC 3339).
    pub at: String,
}

/// A service's pages started or stopped being held.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldRecord {
    /// `true`: pages started being held; `false`: they go out again.
    pub held: bool,
    /// Why, in words (`maintenance (Safaricom M-Pesa maintenance) until …`); empty when
    /// released.
    pub why: String,
    /// When (RFC 3339).
    pub at: String,
}

#[derive(Debug, Default)]
struct ServiceHistory {
    /// Each change with its place in the order all changes were recorded.
    transitions: VecDeque<(u64, Transition)>,
    deliveries: VecDeque<DeliveryRecord>,
    holds: VecDeque<HoldRecord>,
    outages: OutageLog,
}

#[derive(Debug, Default)]
struct Recorded {
    services: BTreeMap<String, ServiceHistory>,
    /// The sequence number of the next change recorded, across all services: changes within
    /// the same millisecond still have an order.
    next_sequence: u64,
}

/// The history of every service.
#[derive(Debug, Default)]
pub struct History {
    recorded: Mutex<Recorded>,
    /// Bumped at every recorded state change, for followers (the clients' state stream).
    changes: Changes,
}

/// A counter of recorded state changes that followers wait on; it coalesces, so a follower
/// that falls behind looks once and never holds memory.
#[derive(Debug)]
struct Changes(tokio::sync::watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
    }
}

/// One service's history, newest last.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvents {
    /// The service.
    pub service: String,
    /// Its recent state changes.
    pub transitions: Vec<Transition>,
    /// Its recent alert deliveries.
    pub deliveries: Vec<DeliveryRecord>,
    /// When its pages started and stopped being held (maintenance, silences, dependencies).
    pub holds: Vec<HoldRecord>,
}

fn push<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == HISTORY_LENGTH {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl History {
    /// Records a state change (with no cause known for its outage).
    pub fn transition(&self, event: &Transition) {
        self.transition_caused(event, None);
    }

    /// Records a state change, and books it into the service's outages with `cause`, the
    /// service's last real failure when it changed.
    pub fn transition_caused(&self, event: &Transition, cause: Option<Cause>) {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let sequence = recorded.next_sequence;
        recorded.next_sequence += 1;
        let history = recorded
            .services
            .entry(event.service.to_string())
            .or_default();
        push(&mut history.transitions, (sequence, event.clone()));
        history.outages.record(event, cause);
        drop(recorded);
        self.changes
            .0
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Wakes at every state change recorded from now on.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.0.subscribe()
    }

    /// The `limit` latest outages of the `services` named, the latest started first.
    pub fn recent_outages<'a>(
        &self,
        services: impl IntoIterator<Item = &'a str>,
        limit: usize,
    ) -> Vec<OutageRecord> {
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<&OutageRecord> = services
            .into_iter()
            .filter_map(|service| recorded.services.get(service))
            .flat_map(|history| history.outages.iter())
            .collect();
        all.sort_by_key(|outage| std::cmp::Reverse(outage.started_at));
        all.into_iter().take(limit).cloned().collect()
    }

    /// The `limit` newest state changes of the `services` named, newest first, in the order
    /// they were recorded (not by timestamp, which ties within a millisecond).
    pub fn recent_transitions<'a>(
        &self,
        services: impl IntoIterator<Item = &'a str>,
        limit: usize,
    ) -> Vec<Transition> {
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<&(u64, Transition)> = services
            .into_iter()
            .filter_map(|service| recorded.services.get(service))
            .flat_map(|history| history.transitions.iter())
            .collect();
        all.sort_unstable_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        all.into_iter()
            .take(limit)
            .map(|(_, event)| event.clone())
            .collect()
    }

    /// Records how a notification's delivery to a channel ended.
    pub fn delivery(&self, service: &str, record: DeliveryRecord) {
        self.with_service(service, |history| push(&mut history.deliveries, record));
    }

    /// Records that `service`'s pages started or stopped being held.
    pub fn hold(&self, service: &str, record: HoldRecord) {
        self.with_service(service, |history| push(&mut history.holds, record));
    }

    fn with_service(&self, service: &str, update: impl FnOnce(&mut ServiceHistory)) {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        update(recorded.services.entry(service.to_string()).or_default());
    }

    /// The recent events of `service`.
    pub fn events(&self, service: &str) -> ServiceEvents {
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let history = recorded.services.get(service);
        // Its own breaker's changes and its operations' (`mpesa/b2c`), in the order recorded.
        let prefix = format!("{service}{}", crate::unit::SEPARATOR);
        let operations = recorded
            .services
            .range(prefix.clone()..)
            .take_while(|(name, _)| name.starts_with(&prefix))
            .map(|(_, history)| history);
        let mut transitions: Vec<&(u64, Transition)> = history
            .into_iter()
            .chain(operations)
            .flat_map(|history| history.transitions.iter())
            .collect();
        transitions.sort_unstable_by_key(|(sequence, _)| *sequence);
        ServiceEvents {
            service: service.to_string(),
            transitions: transitions
                .into_iter()
                .map(|(_, event)| event.clone())
                .collect(),
            deliveries: history
                .map(|h| h.deliveries.iter().cloned().collect())
                .unwrap_or_default(),
            holds: history
                .map(|h| h.holds.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::breaker::{State, TransitionReason};

    fn change(service: &str, from: State, to: State, at: SystemTime) -> Transition {
        Transition {
            service: Arc::from(service),
            from,
            to,
            reason: TransitionReason::TrialsSucceeded { count: 1 },
            at: tokio::time::Instant::now(),
            at_wall: at,
            consecutive_failures: 0,
            last_failure: None,
            next_attempt: None,
        }
    }

    #[test]
    fn changes_in_the_same_millisecond_keep_the_order_they_happened_in() {
        let history = History::default();
        let same = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        history.transition(&change("b", State::Closed, State::Open, same));
        history.transition(&change("a", State::Closed, State::Open, same));
        history.transition(&change("b", State::Open, State::HalfOpen, same));
        history.transition(&change("b", State::HalfOpen, State::Closed, same));
        let newest_first: Vec<(String, State)> = history
            .recent_transitions(["a", "b"], 3)
            .into_iter()
            .map(|event| (event.service.to_string(), event.to))
            .collect();
        assert_eq!(
            newest_first,
            [
                ("b".to_string(), State::Closed),
                ("b".to_string(), State::HalfOpen),
                ("a".to_string(), State::Open),
            ]
        );
        assert_eq!(
            TransitionReason::TrialsSucceeded { count: 1 }.to_string(),
            "1 trial call succeeded"
        );
        assert_eq!(
            TransitionReason::TrialsSucceeded { count: 3 }.to_string(),
            "3 trial calls succeeded"
        );
    }
}
