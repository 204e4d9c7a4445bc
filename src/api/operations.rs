//! The breakers of a service's operations (`breakers = "per_operation"`) as the stats API and
//! the status page show them under their service: by operation name, each with the seed's
//! stats fields and its outage.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alert::{OutageInfo, OutageView};
use crate::breaker::Stats;
use crate::registry::Service;

/// One operation's breaker.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationStats {
    #[serde(flatten)]
    breaker: Stats,
    /// The name its breaker, transitions and pages go by (`mpesa/b2c`).
    unit: String,
    /// The outage in progress, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    outage: Option<OutageInfo>,
}

impl OperationStats {
    /// The breaker's state.
    pub(crate) fn state(&self) -> crate::breaker::State {
        self.breaker.state
    }

    /// The name its breaker goes by.
    pub(crate) fn unit(&self) -> &str {
        &self.unit
    }
}

/// The stats of each of `service`'s operations' breakers, by operation (empty for a service
/// with one breaker).
pub(crate) fn operation_stats(
    service: &Service,
    outages: &OutageView,
) -> BTreeMap<String, OperationStats> {
    service
        .operation_breakers
        .iter()
        .map(|operation| {
            let breaker = operation.breaker.stats();
            let unit = operation.breaker.name().to_string();
            // The stage books outages a moment after the breaker moves: trust the breaker.
            let outage = crate::alert::in_outage(breaker.state)
                .then(|| outages.get(&unit).filter(|outage| outage.is_ongoing()))
                .flatten()
                .map(|outage| outage.info());
            let stats = OperationStats {
                breaker,
                unit,
                outage,
            };
            (operation.operation.to_string(), stats)
        })
        .collect()
}
