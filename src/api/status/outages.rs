//! The status page's outage list: one line per outage (not per state change), from the
//! history's outages, completed by the alert stage's own book of each service's latest outage
//! (which lasts across restarts).

use std::time::SystemTime;

use serde::Serialize;

use super::{TransitionLine, rfc3339};
use crate::alert::OutageView;
use crate::breaker::TransitionReason;
use crate::history::OutageRecord;
use crate::outcome::Cause;

/// One outage as the page lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutageLine {
    service: String,
    /// When the breaker tripped (RFC 3339).
    started_at: String,
    /// When it closed again; absent while it lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    ongoing: bool,
    /// How long it lasted, or has lasted so far (milliseconds).
    duration_ms: u64,
    /// Why the breaker tripped, in words (`3 consecutive failures`).
    opened_by: String,
    /// What the provider said: its last real failure within the outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    /// Trial calls that failed.
    failed_trials: u32,
    /// Its changes of state, oldest first (the latest ones, when there were many).
    transitions: Vec<TransitionLine>,
    /// Changes of state left out of `transitions`.
    earlier_transitions: u32,
}

/// Whether `record` is the outage the stage booked as `booked`.
fn is_same(record: &OutageRecord, booked: &crate::alert::Outage) -> bool {
    record.started_at == booked.started_at
        || (record.joined
            && record.started_at >= booked.started_at
            && booked.ended_at.is_none_or(|end| end >= record.started_at))
}

/// Completes `records` with the stage's book: the true start of an outage that was going on
/// when breakerd started, and the latest outage when the history has none (after a restart).
fn merged(
    mut records: Vec<OutageRecord>,
    view: &OutageView,
    services: &[&str],
) -> Vec<OutageRecord> {
    let listed = view
        .iter()
        .filter(|(service, _)| services.contains(&service.as_str()));
    for (service, booked) in listed {
        let same = records
            .iter_mut()
            .find(|record| record.service == *service && is_same(record, booked));
        match same {
            Some(record) => {
                if record.joined {
                    record.started_at = booked.started_at;
                    record.opened_by = booked.opened_by.clone();
                    record.joined = false;
                }
                record.failed_trials = record.failed_trials.max(booked.failed_trials);
                if record.cause.is_none() && booked.opened_by != TransitionReason::ForcedOpen {
                    record.cause.clone_from(&booked.cause);
                }
                if record.ended_at.is_none() {
                    record.ended_at = booked.ended_at;
                }
            }
            None => records.push(OutageRecord {
                service: service.clone(),
                started_at: booked.started_at,
                joined: false,
                opened_by: booked.opened_by.clone(),
                cause: booked.cause.clone(),
                failed_trials: booked.failed_trials,
                ended_at: booked.ended_at,
                steps: Default::default(),
                earlier_steps: 0,
            }),
        }
    }
    records
}

/// The `limit` latest outages of `services` (`records` from the history, `view` from the
/// stage), the latest started first.
pub(super) fn lines(
    records: Vec<OutageRecord>,
    view: &OutageView,
    services: &[&str],
    now: SystemTime,
    limit: usize,
) -> Vec<OutageLine> {
    let mut all = merged(records, view, services);
    all.sort_by_key(|outage| std::cmp::Reverse(outage.started_at));
    all.into_iter()
        .take(limit)
        .map(|outage| {
            let lasted = outage
                .ended_at
                .unwrap_or(now)
                .duration_since(outage.started_at)
                .unwrap_or_default();
            OutageLine {
                started_at: rfc3339(outage.started_at),
                ended_at: outage.ended_at.map(rfc3339),
                ongoing: outage.is_ongoing(),
                duration_ms: u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                opened_by: outage.opened_by.to_string(),
                cause: outage.cause,
                failed_trials: outage.failed_trials,
                transitions: outage
                    .steps
                    .iter()
                    .map(|step| TransitionLine {
                        service: outage.service.clone(),
                        from: step.from,
                        to: step.to,
                        reason: step.reason.to_string(),
                        at: rfc3339(step.at),
                    })
                    .collect(),
                earlier_transitions: outage.earlier_steps,
                service: outage.service,
            }
        })
        .collect()
}
