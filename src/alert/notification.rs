//! A notification — what changed, why, since when, and where to look — and its renderings: the
//! email's subject and body, breakerd's JSON, a Slack message, and Alertmanager's shapes.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::breaker::State;
use crate::probe::Cause;
use crate::wall::{rfc3339, serde_rfc3339, span};

/// Longest cause detail put in a subject line, in characters.
const SUBJECT_DETAIL_CHARS: usize = 100;

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

    /// `: <detail>` of the cause, shortened for a one-line headline; empty without a cause.
    fn cause_suffix(&self) -> String {
        let Some(cause) = &self.cause else {
            return String::new();
        };
        let mut detail: String = cause.detail.chars().take(SUBJECT_DETAIL_CHARS).collect();
        if detail.len() < cause.detail.len() {
            detail.push('…');
        }
        format!(": {detail}")
    }

    /// `: <detail>` of the cause cut short, for a line about several services.
    fn short_cause(&self) -> String {
        let Some(cause) = &self.cause else {
            return String::new();
        };
        let mut detail: String = cause.detail.chars().take(40).collect();
        if detail.len() < cause.detail.len() {
            detail.push('…');
        }
        format!(": {detail}")
    }

    /// One line: the email subject and the chat message's headline.
    pub fn subject(&self) -> String {
        let service = &self.service;
        match self.kind {
            NotificationKind::Offline => format!(
                "[breakerd] {service} is offline: none of its connectivity checks answer; provider pages are held"
            ),
            NotificationKind::Online => {
                let length = self
                    .outage
                    .as_ref()
                    .map(|outage| format!(" (offline for {})", span(outage.length(self.at))))
                    .unwrap_or_default();
                format!(
                    "[breakerd] {service} is online again{length}; what is still down pages now"
                )
            }
            NotificationKind::Grouped if self.is_problem() => format!(
                "[breakerd] {} services are {}: {}",
                self.group.len(),
                self.to,
                self.group
                    .iter()
                    .map(|member| format!("{}{}", member.service, member.short_cause()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            NotificationKind::Grouped => format!(
                "[breakerd] {} services are {} again: {}",
                self.group.len(),
                self.to,
                self.group
                    .iter()
                    .map(|member| match &member.outage {
                        Some(outage) => {
                            format!(
                                "{} (after {})",
                                member.service,
                                span(outage.length(member.at))
                            )
                        }
                        None => member.service.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            NotificationKind::Flapping => format!(
                "[breakerd] {service} is flapping ({} changes), now {}",
                self.changes, self.to
            ),
            NotificationKind::Reminder => {
                let length = self
                    .outage
                    .as_ref()
                    .map(|outage| format!(" (for {})", span(outage.length(self.at))))
                    .unwrap_or_default();
                format!(
                    "[breakerd] {service} is still {}{length}{}",
                    self.to,
                    self.cause_suffix()
                )
            }
            NotificationKind::Transition => match (self.from, self.to) {
                (_, State::Closed) => match &self.outage {
                    Some(outage) => format!(
                        "[breakerd] {service} is CLOSED (recovered after {})",
                        span(outage.length(self.at))
                    ),
                    None => format!("[breakerd] {service} is CLOSED"),
                },
                (State::HalfOpen, State::Open) => format!(
                    "[breakerd] {service} is OPEN again: the trial call failed{}",
                    self.cause_suffix()
                ),
                (_, State::HalfOpen) => {
                    format!("[breakerd] {service} is HALF_OPEN: trying the provider again")
                }
                (_, to) => format!("[breakerd] {service} is {to}{}", self.cause_suffix()),
            },
        }
    }

    /// The outage in words: `since 2026-11-27T10:00:00.000Z (4m 12s), 2 trial calls failed`.
    fn outage_words(&self) -> Option<String> {
        let outage = self.outage.as_ref()?;
        let trials = match outage.failed_trials {
            0 => String::new(),
            1 => ", 1 trial call failed".to_string(),
            n => format!(", {n} trial calls failed"),
        };
        Some(match outage.ended_at {
            Some(ended) => format!(
                "{} to {} ({}){trials}",
                rfc3339(outage.started_at),
                rfc3339(ended),
                span(outage.length(self.at))
            ),
            None => format!(
                "since {} ({}){trials}",
                rfc3339(outage.started_at),
                span(outage.length(self.at))
            ),
        })
    }

    /// The dependants in words, while this service is in an outage.
    fn affects(&self) -> Option<String> {
        (self.is_problem() && !self.dependants.is_empty()).then(|| {
            format!(
                "{} (they depend on {}; their own pages are held until it recovers)",
                self.dependants.join(", "),
                self.service
            )
        })
    }

    /// The plain-text email body.
    pub fn text_body(&self) -> String {
        if !self.group.is_empty() {
            let mut body = format!("{}\n", self.subject());
            for member in &self.group {
                let own = member.text_body();
                // Each member's body without its signature, indented under its headline.
                let lines: Vec<&str> = own
                    .lines()
                    .take_while(|line| *line != "-- breakerd")
                    .filter(|line| !line.is_empty())
                    .collect();
                body.push('\n');
                for (index, line) in lines.iter().enumerate() {
                    let indent = if index == 0 { "" } else { "    " };
                    body.push_str(&format!("{indent}{line}\n"));
                }
            }
            if let Some(url) = &self.dashboard_url {
                body.push_str(&format!("\nDashboard:    {url}\n"));
            }
            body.push_str("\n-- breakerd\n");
            return body;
        }
        let mut body = format!(
            "{}\n\nService:      {}\nTransition:   {} -> {}\nReason:       {}\nAt:           {}\nFailures:     {} in a row\n",
            self.subject(),
            self.service,
            self.from,
            self.to,
            self.reason,
            rfc3339(self.at),
            self.consecutive_failures
        );
        if let Some(cause) = &self.cause {
            body.push_str(&format!(
                "Last error:   {cause} (at {})\n",
                rfc3339(cause.at)
            ));
            if let Some(operation) = &cause.said.operation {
                body.push_str(&format!("Operation:    {operation}\n"));
            }
            if let Some(said) = provider_said(cause) {
                body.push_str(&format!("Provider:     {said}\n"));
            }
        }
        if let Some(outage) = self.outage_words() {
            body.push_str(&format!("Outage:       {outage}\n"));
        }
        if let Some(next) = self.next_attempt {
            body.push_str(&format!("Next attempt: {}\n", rfc3339(next)));
        }
        if let Some(affects) = self.affects() {
            body.push_str(&format!("Affects:      {affects}\n"));
        }
        if self.kind == NotificationKind::Flapping {
            body.push_str(&format!(
                "Flapping:     {} changes within the minimum interval; only this summary was sent\n",
                self.changes
            ));
        }
        if let Some(url) = &self.dashboard_url {
            body.push_str(&format!("Dashboard:    {url}\n"));
        }
        if let Some(url) = &self.api_url {
            body.push_str(&format!("API:          {url}\n"));
        }
        body.push_str("\n-- breakerd\n");
        body
    }

    /// A Slack-compatible incoming-webhook message.
    pub fn slack_json(&self) -> Value {
        if !self.group.is_empty() {
            let attachments: Vec<Value> = self
                .group
                .iter()
                .map(|member| {
                    let mut attachment = member.slack_json()["attachments"][0].clone();
                    attachment["title"] = json!(member.subject());
                    attachment
                })
                .collect();
            return json!({ "text": self.subject(), "attachments": attachments });
        }
        let color = match self.to {
            State::Closed => "#2eb886",
            State::HalfOpen => "#daa038",
            _ => "#e01e5a",
        };
        let mut fields = vec![
            json!({"title": "Transition", "value": format!("{} -> {}", self.from, self.to), "short": true}),
            json!({"title": "Failures in a row", "value": self.consecutive_failures.to_string(), "short": true}),
            json!({"title": "Reason", "value": self.reason, "short": false}),
        ];
        if let Some(cause) = &self.cause {
            fields.push(json!({"title": "Last error", "value": cause.to_string(), "short": false}));
            if let Some(operation) = &cause.said.operation {
                fields.push(json!({"title": "Operation", "value": operation, "short": true}));
            }
            if let Some(said) = provider_said(cause) {
                fields.push(json!({"title": "Provider said", "value": said, "short": false}));
            }
        }
        if let Some(outage) = self.outage_words() {
            fields.push(json!({"title": "Outage", "value": outage, "short": false}));
        }
        if let Some(next) = self.next_attempt {
            fields.push(json!({"title": "Next attempt", "value": rfc3339(next), "short": true}));
        }
        if let Some(affects) = self.affects() {
            fields.push(json!({"title": "Affects", "value": affects, "short": false}));
        }
        json!({
            "text": self.subject(),
            "attachments": [{
                "color": color,
                "fields": fields,
                "footer": "breakerd",
                "ts": self.at_unix_ms / 1000,
            }],
        })
    }

    /// Alertmanager's webhook format (version "4"), so receivers written for it work unchanged.
    pub fn alertmanager_webhook_json(&self) -> Value {
        if !self.group.is_empty() {
            let mut grouped = self.group[0].alertmanager_webhook_json();
            let alerts: Vec<Value> = self
                .group
                .iter()
                .map(|member| member.alertmanager_webhook_json()["alerts"][0].clone())
                .collect();
            let firing = self.group.iter().any(Notification::is_problem);
            grouped["status"] = json!(if firing { "firing" } else { "resolved" });
            grouped["groupKey"] = json!("{}:{alertname=\"CircuitBreakerOpen\"}");
            grouped["groupLabels"] = json!({ "alertname": "CircuitBreakerOpen" });
            grouped["commonLabels"] =
                json!({ "alertname": "CircuitBreakerOpen", "severity": "critical" });
            grouped["commonAnnotations"] = json!({ "summary": self.subject() });
            grouped["alerts"] = json!(alerts);
            return grouped;
        }
        let status = if self.is_problem() {
            "firing"
        } else {
            "resolved"
        };
        let labels = alert_labels(&self.service, "critical");
        let annotations = json!({
            "summary": self.subject(),
            "description": self.outage_words().unwrap_or_default(),
        });
        let started = self.outage.as_ref().map_or(self.at, |o| o.started_at);
        let ended = self.outage.as_ref().and_then(|o| o.ended_at);
        json!({
            "version": "4",
            "groupKey": format!("{{}}:{{service=\"{}\"}}", self.service),
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "breakerd",
            "groupLabels": { "service": self.service },
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": self.api_url.clone().unwrap_or_default(),
            "alerts": [{
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(started),
                "endsAt": match (status, ended) {
                    ("resolved", Some(ended)) => rfc3339(ended),
                    ("resolved", None) => rfc3339(self.at),
                    _ => "0001-01-01T00:00:00Z".to_string(),
                },
                "generatorURL": self.api_url.clone().unwrap_or_default(),
                "fingerprint": fingerprint(&self.service),
            }],
        })
    }
}

/// The labels every replica gives a service's alert (no host name: replicas agree, so
/// Alertmanager deduplicates them).
pub(crate) fn alert_labels(service: &str, severity: &str) -> Value {
    json!({ "alertname": "CircuitBreakerOpen", "service": service, "severity": severity })
}

/// A stable identifier of a service's alert (FNV-1a of the name, as 16 hex digits).
fn fingerprint(service: &str) -> String {
    let hash = service
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// What the provider itself said of a failure: its code and message, when it gave them.
fn provider_said(cause: &Cause) -> Option<String> {
    let said: Vec<&str> = [&cause.said.code, &cause.said.message]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    (!said.is_empty()).then(|| said.join(" "))
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
        cause: Some(Cause::plain(
            crate::probe::FailureReason::HttpStatus,
            "HTTP 503",
            at,
        )),
        outage: Some(OutageInfo {
            started_at: at,
            ended_at: None,
            failed_trials: 0,
        }),
        next_attempt: Some(at + Duration::from_secs(120)),
        changes: 1,
        dashboard_url: Some("https://grafana.example.com/d/breakerd".into()),
        api_url: Some("https://breakerd.example.com/api/v1/circuit-breakers/mpesa".into()),
        dependants: Vec::new(),
        group: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn subjects_say_what_happened_and_why() {
        let open = sample();
        assert_eq!(open.subject(), "[breakerd] mpesa is OPEN: HTTP 503");
        let later = open.at + Duration::from_secs(252);
        let closed = Notification {
            from: State::HalfOpen,
            to: State::Closed,
            at: later,
            outage: Some(OutageInfo {
                ended_at: Some(later),
                ..open.outage.clone().unwrap()
            }),
            ..sample()
        };
        assert_eq!(
            closed.subject(),
            "[breakerd] mpesa is CLOSED (recovered after 4m 12s)"
        );
        let flapping = Notification {
            kind: NotificationKind::Flapping,
            changes: 6,
            ..sample()
        };
        assert_eq!(
            flapping.subject(),
            "[breakerd] mpesa is flapping (6 changes), now OPEN"
        );
        let reminder = Notification {
            kind: NotificationKind::Reminder,
            at: open.at + Duration::from_secs(3600),
            ..sample()
        };
        assert_eq!(
            reminder.subject(),
            "[breakerd] mpesa is still OPEN (for 1h 0m): HTTP 503"
        );
        let reopened = Notification {
            from: State::HalfOpen,
            ..sample()
        };
        assert_eq!(
            reopened.subject(),
            "[breakerd] mpesa is OPEN again: the trial call failed: HTTP 503"
        );
        let long = Notification {
            cause: Some(Cause {
                detail: "x".repeat(300),
                ..open.cause.clone().unwrap()
            }),
            ..sample()
        };
        assert!(long.subject().ends_with(&format!("{}…", "x".repeat(100))));
    }

    #[test]
    fn the_body_has_every_detail_and_link() {
        let body = sample().text_body();
        for part in [
            "Transition:   CLOSED -> OPEN",
            "Reason:       3 consecutive failures",
            "Last error:   http_status: HTTP 503 (at 2026-11-27T10:00:00.000Z)",
            "Outage:       since 2026-11-27T10:00:00.000Z (0s)",
            "Next attempt: 2026-11-27T10:02:00.000Z",
            "Failures:     3 in a row",
            "Dashboard:    https://grafana.example.com/d/breakerd",
            "API:          https://breakerd.example.com/api/v1/circuit-breakers/mpesa",
        ] {
            assert!(body.contains(part), "missing {part} in\n{body}");
        }
    }

    #[test]
    fn the_json_keeps_its_field_names() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["from"], "CLOSED");
        assert_eq!(json["to"], "OPEN");
        assert_eq!(json["at"], "2026-11-27T10:00:00.000Z");
        assert_eq!(json["cause"]["reason"], "http_status");
        assert_eq!(json["cause"]["detail"], "HTTP 503");
        assert_eq!(json["outage"]["startedAt"], "2026-11-27T10:00:00.000Z");
        assert_eq!(json["outage"]["failedTrials"], 0);
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn alertmanager_webhook_shape() {
        let firing = sample().alertmanager_webhook_json();
        assert_eq!(firing["version"], "4");
        assert_eq!(firing["status"], "firing");
        assert_eq!(
            firing["alerts"][0]["labels"]["alertname"],
            "CircuitBreakerOpen"
        );
        assert_eq!(
            firing["alerts"][0]["fingerprint"].as_str().map(str::len),
            Some(16)
        );
        let resolved = Notification {
            to: State::Closed,
            at: sample().at + Duration::from_secs(60),
            ..sample()
        }
        .alertmanager_webhook_json();
        assert_eq!(resolved["status"], "resolved");
        assert_eq!(
            resolved["alerts"][0]["startsAt"],
            "2026-11-27T10:00:00.000Z"
        );
        assert_eq!(resolved["alerts"][0]["endsAt"], "2026-11-27T10:01:00.000Z");
    }
}
