//! A notification — what changed, why, since when, and where to look — as the outbox keeps it
//! and breakerd's JSON carries it; [`super::page::Page`] words it for people.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::breaker::State;
use crate::outcome::Cause;
use crate::wall::serde_rfc3339;

/// Why a notification was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An outage started or ended, or (when asked for) a step within one.
    Transition,
    /// Several changes within the minimum interval, summarised.
    Flapping,
    /// An outage is still going on.
    Reminder,
    /// The connectivity guard lost every target: breakerd is offline, provider pages are held.
    Offline,
    /// The connectivity guard reaches a target again.
    Online,
    /// Outages that started (or ended) within `alerts.group_wait` of each other, sent as one:
    /// `group` holds each service's own notification.
    Grouped,
}

/// The outage a notification belongs to: from the breaker opening until it closes again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutageInfo {
    /// When the breaker opened.
    #[serde(with = "serde_rfc3339")]
    pub started_at: SystemTime,
    /// When it closed again; absent while the outage lasts.
    #[serde(
        with = "serde_rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<SystemTime>,
    /// Trial calls that failed during the outage.
    pub failed_trials: u32,
}

impl OutageInfo {
    /// How long it has lasted by `now`, or lasted in all once ended.
    pub fn length(&self, now: SystemTime) -> std::time::Duration {
        self.ended_at
            .unwrap_or(now)
            .duration_since(self.started_at)
            .unwrap_or_default()
    }
}

/// One notification, as kept in the outbox and sent to every channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Increasing across restarts: the order notifications were made in.
    pub id: u64,
    /// Why it was made.
    pub kind: NotificationKind,
    /// The service.
    pub service: String,
    /// The state left (`CLOSED`, `OPEN`, ...).
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why the breaker changed, in words.
    pub reason: String,
    /// When.
    #[serde(with = "serde_rfc3339")]
    pub at: SystemTime,
    /// The same moment in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Failures in a row when it changed.
    pub consecutive_failures: u32,
    /// The last real failure, in words (`reason: detail`).
    pub last_failure: Option<String>,
    /// The last real failure: what is wrong with the provider.
    #[serde(default)]
    pub cause: Option<Cause>,
    /// The outage this belongs to.
    #[serde(default)]
    pub outage: Option<OutageInfo>,
    /// When an open breaker tries again.
    #[serde(with = "serde_rfc3339::option", default)]
    pub next_attempt: Option<SystemTime>,
    /// For a flapping summary: how many changes it covers.
    pub changes: u32,
    /// Link to the dashboard.
    pub dashboard_url: Option<String>,
    /// Link to this service's stats in the API.
    pub api_url: Option<String>,
    /// The provider's name for people (`M-Pesa Daraja`), for a service with a preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The runbook (its page; the page picks the section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// The services that depend on this one (`depends_on`): while it is in an outage, their
    /// own outages are not paged separately.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependants: Vec<String>,
    /// For a grouped notification: each service's own notification, by service name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<Notification>,
}

impl Notification {
    /// One notification standing for `members` (sorted by service), as id `id`; `None` for
    /// fewer than two.
    pub(crate) fn grouped(id: u64, members: Vec<Notification>) -> Option<Self> {
        if members.len() < 2 {
            return None;
        }
        let first = &members[0];
        let at = members
            .iter()
            .map(|member| member.at)
            .max()
            .unwrap_or(first.at);
        Some(Notification {
            id,
            kind: NotificationKind::Grouped,
            service: members
                .iter()
                .map(|member| member.service.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            from: first.from,
            to: first.to,
            reason: format!("{} services changed within the group wait", members.len()),
            at,
            at_unix_ms: crate::wall::unix_millis(at),
            consecutive_failures: 0,
            last_failure: None,
            cause: None,
            outage: None,
            next_attempt: None,
            changes: u32::try_from(members.len()).unwrap_or(u32::MAX),
            dashboard_url: first.dashboard_url.clone(),
            api_url: None,
            provider: None,
            runbook_url: first.runbook_url.clone(),
            dependants: Vec::new(),
            group: members,
        })
    }

    /// The services it is about: each member of a group, or its one service.
    pub fn services(&self) -> Vec<&str> {
        if self.group.is_empty() {
            vec![self.service.as_str()]
        } else {
            self.group
                .iter()
                .map(|member| member.service.as_str())
                .collect()
        }
    }

    /// Whether the service is in an outage after this notification.
    pub fn is_problem(&self) -> bool {
        matches!(self.to, State::Open | State::ForcedOpen | State::HalfOpen)
    }
}

/// A notification for tests: mpesa opened at 10:00 because of an HTTP 503.
#[cfg(test)]
pub(crate) fn sample() -> Notification {
    use std::time::Duration;
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_773_600_000);
    Notification {
        id: 1,
        kind: NotificationKind::Transition,
        service: "mpesa".into(),
        from: State::Closed,
        to: State::Open,
        reason: "3 consecutive failures".into(),
        at,
        at_unix_ms: 1_795_773_600_000,
        consecutive_failures: 3,
        last_failure: Some("http_status: HTTP 503".into()),
        cause: Some(Cause {
            said: crate::outcome::Said {
                operation: Some("stk_push".into()),
                ..crate::outcome::Said::default()
            },
            ..Cause::plain(crate::outcome::FailureReason::HttpStatus, "HTTP 503", at)
        }),
        outage: Some(OutageInfo {
            started_at: at,
            ended_at: None,
            failed_trials: 0,
        }),
        next_attempt: Some(at + Duration::from_secs(120)),
        changes: 1,
        dashboard_url: Some("https://grafana.example.com/d/breakerd".into()),
        api_url: Some("https://breakerd.example.com/api/v1/circuit-breakers/mpesa".into()),
        provider: Some("M-Pesa Daraja".into()),
        runbook_url: Some("https://breakerd.example.com/runbook".into()),
        dependants: Vec::new(),
        group: Vec::new(),
    }
}

/// [`sample`]'s outage over: closed by a trial 4m 12s later, after two failed trials.
#[cfg(test)]
pub(crate) fn sample_recovered() -> Notification {
    let open = sample();
    let later = open.at + std::time::Duration::from_secs(252);
    Notification {
        from: State::HalfOpen,
        to: State::Closed,
        at: later,
        outage: Some(OutageInfo {
            started_at: open.at,
            ended_at: Some(later),
            failed_trials: 2,
        }),
        next_attempt: None,
        ..open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_keeps_its_field_names() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["from"], "CLOSED");
        assert_eq!(json["to"], "OPEN");
        assert_eq!(json["at"], "2026-11-27T10:00:00.000Z");
        assert_eq!(json["cause"]["reason"], "http_status");
        assert_eq!(json["cause"]["detail"], "HTTP 503");
        assert_eq!(json["cause"]["operation"], "stk_push");
        assert_eq!(json["outage"]["startedAt"], "2026-11-27T10:00:00.000Z");
        assert_eq!(json["outage"]["failedTrials"], 0);
        assert_eq!(json["provider"], "M-Pesa Daraja");
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn an_outbox_entry_from_before_pages_reads_back() {
        let mut json = serde_json::to_value(sample()).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("provider");
        object.remove("runbookUrl");
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back.provider, None);
        assert_eq!(back.runbook_url, None);
    }
}
