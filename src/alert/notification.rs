//! A notification — what changed, why, and where to look — and its renderings: the email's
//! subject and body, breakerd's JSON, a Slack message, and Alertmanager's shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Why a notification was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A breaker changed state.
    Transition,
    /// Several changes within the minimum interval, summarised.
    Flapping,
    /// A breaker is still open.
    Reminder,
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
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Why the breaker changed, in words.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
    /// The same moment in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Failures in a row when it changed.
    pub consecutive_failures: u32,
    /// The last failure's reason.
    pub last_failure: Option<String>,
    /// When an open breaker tries again (RFC 3339).
    pub next_attempt: Option<String>,
    /// For a flapping summary: how many changes it covers.
    pub changes: u32,
    /// Link to the dashboard.
    pub dashboard_url: Option<String>,
    /// Link to this service's stats in the API.
    pub api_url: Option<String>,
}

impl Notification {
    /// Whether the breaker is open (or half-open, still not recovered) after this change.
    pub fn is_problem(&self) -> bool {
        matches!(self.to.as_str(), "OPEN" | "FORCED_OPEN" | "HALF_OPEN")
    }

    /// One line: the email subject and the chat message's headline.
    pub fn subject(&self) -> String {
        match self.kind {
            NotificationKind::Transition if self.to == "CLOSED" => {
                format!("[breakerd] {} is CLOSED (recovered)", self.service)
            }
            NotificationKind::Transition => format!("[breakerd] {} is {}", self.service, self.to),
            NotificationKind::Flapping => format!(
                "[breakerd] {} is flapping ({} changes), now {}",
                self.service, self.changes, self.to
            ),
            NotificationKind::Reminder => {
                format!("[breakerd] {} is still {}", self.service, self.to)
            }
        }
    }

    /// The plain-text email body.
    pub fn text_body(&self) -> String {
        let mut body = format!(
            "{}\n\nService:      {}\nTransition:   {} -> {}\nReason:       {}\nAt:           {}\nFailures:     {} in a row\n",
            self.subject(),
            self.service,
            self.from,
            self.to,
            self.reason,
            self.at,
            self.consecutive_failures
        );
        if let Some(last) = &self.last_failure {
            body.push_str(&format!("Last error:   {last}\n"));
        }
        if let Some(next) = &self.next_attempt {
            body.push_str(&format!("Next attempt: {next}\n"));
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
        let color = match self.to.as_str() {
            "CLOSED" => "#2eb886",
            "HALF_OPEN" => "#daa038",
            _ => "#e01e5a",
        };
        let mut fields = vec![
            json!({"title": "Transition", "value": format!("{} -> {}", self.from, self.to), "short": true}),
            json!({"title": "Failures in a row", "value": self.consecutive_failures.to_string(), "short": true}),
            json!({"title": "Reason", "value": self.reason, "short": false}),
        ];
        if let Some(last) = &self.last_failure {
            fields.push(json!({"title": "Last error", "value": last, "short": false}));
        }
        if let Some(next) = &self.next_attempt {
            fields.push(json!({"title": "Next attempt", "value": next, "short": true}));
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

    /// The labels every replica gives this service's alert (no host name: replicas agree).
    pub fn alert_labels(&self, severity: &str) -> Value {
        json!({ "alertname": "CircuitBreakerOpen", "service": self.service, "severity": severity })
    }

    /// Annotations of the Alertmanager alert.
    pub fn alert_annotations(&self, runbook_url: Option<&str>) -> Value {
        let mut annotations = json!({
            "summary": format!("Circuit breaker {} is {}", self.service, self.to),
            "description": format!(
                "{} -> {}: {}. {} failures in a row.{}",
                self.from,
                self.to,
                self.reason,
                self.consecutive_failures,
                self.last_failure.as_ref().map(|last| format!(" Last error: {last}")).unwrap_or_default()
            ),
        });
        if let Some(url) = runbook_url {
            annotations["runbook_url"] = json!(url);
        }
        annotations
    }

    /// Alertmanager's webhook format (version "4"), so receivers written for it work unchanged.
    pub fn alertmanager_webhook_json(&self) -> Value {
        let status = if self.is_problem() {
            "firing"
        } else {
            "resolved"
        };
        let labels = self.alert_labels("critical");
        let annotations = self.alert_annotations(None);
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
                "startsAt": self.at,
                "endsAt": if status == "resolved" { self.at.clone() } else { "0001-01-01T00:00:00Z".to_string() },
                "generatorURL": self.api_url.clone().unwrap_or_default(),
                "fingerprint": fingerprint(&self.service),
            }],
        })
    }
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

/// A notification for tests.
#[cfg(test)]
pub(crate) fn sample() -> Notification {
    Notification {
        id: 1,
        kind: NotificationKind::Transition,
        service: "mpesa".into(),
        from: "CLOSED".into(),
        to: "OPEN".into(),
        reason: "3 consecutive failures".into(),
        at: "2026-11-27T10:00:00.000Z".into(),
        at_unix_ms: 1_795_773_600_000,
        consecutive_failures: 3,
        last_failure: Some("http_status: HTTP 503".into()),
        next_attempt: Some("2026-11-27T10:02:00.000Z".into()),
        changes: 1,
        dashboard_url: Some("https://grafana.example.com/d/breakerd".into()),
        api_url: Some("https://breakerd.example.com/api/v1/circuit-breakers/mpesa".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_say_what_happened() {
        let open = sample();
        assert_eq!(open.subject(), "[breakerd] mpesa is OPEN");
        let closed = Notification {
            from: "HALF_OPEN".into(),
            to: "CLOSED".into(),
            ..sample()
        };
        assert_eq!(closed.subject(), "[breakerd] mpesa is CLOSED (recovered)");
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
            ..sample()
        };
        assert_eq!(reminder.subject(), "[breakerd] mpesa is still OPEN");
    }

    #[test]
    fn the_body_has_every_detail_and_link() {
        let body = sample().text_body();
        for part in [
            "Transition:   CLOSED -> OPEN",
            "Reason:       3 consecutive failures",
            "Last error:   http_status: HTTP 503",
            "Next attempt: 2026-11-27T10:02:00.000Z",
            "Failures:     3 in a row",
            "Dashboard:    https://grafana.example.com/d/breakerd",
            "API:          https://breakerd.example.com/api/v1/circuit-breakers/mpesa",
        ] {
            assert!(body.contains(part), "missing {part} in\n{body}");
        }
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
            to: "CLOSED".into(),
            ..sample()
        }
        .alertmanager_webhook_json();
        assert_eq!(resolved["status"], "resolved");
        assert_eq!(resolved["alerts"][0]["endsAt"], "2026-11-27T10:00:00.000Z");
    }
}
