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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::alert::Outage;

    fn at(second: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + second)
    }

    /// The stage's book of an outage, as it keeps it in `state_dir`.
    fn booked(started: u64, ended: Option<u64>, failed_trials: u32) -> Arc<Outage> {
        let time = |second| crate::wall::rfc3339(at(second));
        let outage = json!({
            "startedAt": time(started),
            "openedBy": { "kind": "consecutive_failures", "count": 3 },
            "state": if ended.is_some() { "CLOSED" } else { "OPEN" },
            "failedTrials": failed_trials,
            "cause": { "reason": "http_status", "detail": "HTTP 503", "at": time(started), "code": "500.003.02" },
            "endedAt": ended.map(time),
            "latest": {
                "from": "CLOSED", "to": "OPEN",
                "reason": { "kind": "consecutive_failures", "count": 3 },
                "at": time(started), "consecutiveFailures": 3,
            },
        });
        Arc::new(serde_json::from_value(outage).expect("a booked outage"))
    }

    fn joined(service: &str, started: u64, failed_trials: u32) -> OutageRecord {
        OutageRecord {
            service: service.to_string(),
            started_at: at(started),
            joined: true,
            opened_by: TransitionReason::ResetTimeoutElapsed,
            cause: None,
            failed_trials,
            ended_at: Some(at(started + 5)),
            steps: Default::default(),
            earlier_steps: 0,
        }
    }

    #[test]
    fn an_outage_begun_before_a_restart_takes_the_stages_start_and_trials() {
        let view = OutageView::from([("mpesa".to_string(), booked(0, None, 4))]);
        let lines = lines(
            vec![joined("mpesa", 100, 1)],
            &view,
            &["mpesa"],
            at(200),
            20,
        );
        assert_eq!(lines.len(), 1, "one outage, not two");
        let line = &lines[0];
        assert_eq!(line.started_at, crate::wall::rfc3339(at(0)));
        assert_eq!(line.opened_by, "3 consecutive failures");
        assert_eq!(line.failed_trials, 4);
        assert_eq!(line.duration_ms, 105_000);
        assert_eq!(
            line.cause
                .as_ref()
                .and_then(|cause| cause.said.code.as_deref()),
            Some("500.003.02")
        );
    }

    #[test]
    fn the_stages_latest_outage_is_listed_when_the_history_has_none() {
        let view = OutageView::from([
            ("sms".to_string(), booked(10, Some(70), 2)),
            ("gone".to_string(), booked(20, None, 0)),
        ]);
        let lines = lines(Vec::new(), &view, &["sms", "mpesa"], at(200), 20);
        assert_eq!(lines.len(), 1, "a service no longer configured is left out");
        assert_eq!(lines[0].service, "sms");
        assert!(!lines[0].ongoing);
        assert_eq!(lines[0].duration_ms, 60_000);
        assert!(lines[0].transitions.is_empty());
    }
}
