//! Recent history per service — its state changes and the delivery of each alert — for the
//! API's events route (the seed's "historical failure analysis").

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::breaker::Transition;
use crate::metrics::AlertOutcome;

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

#[derive(Debug, Default)]
struct ServiceHistory {
    transitions: VecDeque<Transition>,
    deliveries: VecDeque<DeliveryRecord>,
}

/// The history of every service.
#[derive(Debug, Default)]
pub struct History {
    services: Mutex<BTreeMap<String, ServiceHistory>>,
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
}

fn push<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == HISTORY_LENGTH {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl History {
    /// Records a state change.
    pub fn transition(&self, event: &Transition) {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        push(
            &mut services
                .entry(event.service.to_string())
                .or_default()
                .transitions,
            event.clone(),
        );
    }

    /// Records how a notification's delivery to a channel ended.
    pub fn delivery(&self, service: &str, record: DeliveryRecord) {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        push(
            &mut services.entry(service.to_string()).or_default().deliveries,
            record,
        );
    }

    /// The recent events of `service`.
    pub fn events(&self, service: &str) -> ServiceEvents {
        let services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let history = services.get(service);
        ServiceEvents {
            service: service.to_string(),
            transitions: history
                .map(|h| h.transitions.iter().cloned().collect())
                .unwrap_or_default(),
            deliveries: history
                .map(|h| h.deliveries.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}
