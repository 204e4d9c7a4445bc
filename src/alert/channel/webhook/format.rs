//! The bodies a webhook POSTs, each laid out from the page: breakerd's JSON (the notification
//! with the page's title, summary, advice and links), a Slack message, and Alertmanager's
//! webhook format (version "4") so receivers written for it work unchanged.

use serde_json::{Value, json};

use crate::alert::channel::alert_labels;
use crate::alert::page::Page;
use crate::breaker::State;
use crate::wall::rfc3339;

/// breakerd's own JSON: every field of the notification, and the page's `title`, `summary`,
/// `standing`, `whatToDo`, `runbookUrl`, `recoveredAfter`, `causeIsPast`. On a recovery the
/// cause stays (marked past) and `lastFailure` is left out: nothing is failing now.
pub(super) fn breakerd(page: &Page<'_>) -> Value {
    let mut body = serde_json::to_value(page.notification).unwrap_or_default();
    if let (Value::Object(body), Value::Object(fields)) = (&mut body, page.json_fields()) {
        body.extend(fields);
        if page.cause.is_some_and(|cause| cause.past) {
            body.remove("lastFailure");
            if let Some(Value::Object(cause)) = body.get_mut("cause") {
                cause.insert("past".to_string(), json!(true));
            }
        }
        if !page.members.is_empty()
            && let Some(Value::Array(group)) = body.get_mut("group")
        {
            for (member, page) in group.iter_mut().zip(&page.members) {
                *member = breakerd(page);
            }
        }
    }
    body
}

/// A Slack-compatible incoming-webhook message: the title as its text, one attachment with
/// the summary, what to do and the facts.
pub(super) fn slack(page: &Page<'_>) -> Value {
    if !page.members.is_empty() {
        let attachments: Vec<Value> = page
            .members
            .iter()
            .map(|member| {
                let mut attachment = slack(member)["attachments"][0].clone();
                attachment["title"] = json!(member.title);
                attachment
            })
            .collect();
        return json!({ "text": page.title, "attachments": attachments });
    }
    let n = page.notification;
    let color = match n.to {
        State::Closed => "#2eb886",
        State::HalfOpen => "#daa038",
        _ => "#e01e5a",
    };
    let mut fields = Vec::new();
    let mut field = |title: &str, value: String, short: bool| {
        fields.push(json!({"title": title, "value": value, "short": short}));
    };
    if let Some(advice) = page.what_to_do {
        field("What to do", advice.to_string(), false);
    }
    if let Some(cause) = page.cause {
        let title = if cause.past { "Had failed" } else { "Cause" };
        field(title, cause.cause.to_string(), false);
        if let Some(operation) = &cause.cause.said.operation {
            field("Operation", operation.clone(), true);
        }
        if let Some(said) = page.provider_said() {
            field("Provider said", said, false);
        }
    }
    field("Transition", format!("{} -> {}", n.from, n.to), true);
    field(
        "Failures in a row",
        n.consecutive_failures.to_string(),
        true,
    );
    if let Some(next) = n.next_attempt {
        field("Next attempt", rfc3339(next), true);
    }
    if n.is_problem() && !n.dependants.is_empty() {
        field(
            "Affects",
            format!(
                "{} (they depend on {}; their own pages are held until it recovers)",
                n.dependants.join(", "),
                n.service
            ),
            false,
        );
    }
    if let Some(url) = &page.runbook_url {
        field("Runbook", url.clone(), false);
    }
    json!({
        "text": page.title,
        "attachments": [{
            "color": color,
            "text": page.summary,
            "fields": fields,
            "footer": "breakerd",
            "ts": n.at_unix_ms / 1000,
        }],
    })
}

/// Alertmanager's webhook format (version "4"): one alert per service, its annotations the
/// page's title, summary, advice and runbook.
pub(super) fn alertmanager(page: &Page<'_>) -> Value {
    if !page.members.is_empty() {
        let mut grouped = alertmanager(&page.members[0]);
        let alerts: Vec<Value> = page
            .members
            .iter()
            .map(|member| alertmanager(member)["alerts"][0].clone())
            .collect();
        let firing = page.notification.is_problem();
        grouped["status"] = json!(if firing { "firing" } else { "resolved" });
        grouped["groupKey"] = json!("{}:{alertname=\"CircuitBreakerOpen\"}");
        grouped["groupLabels"] = json!({ "alertname": "CircuitBreakerOpen" });
        grouped["commonLabels"] =
            json!({ "alertname": "CircuitBreakerOpen", "severity": "critical" });
        grouped["commonAnnotations"] = json!({ "summary": page.title });
        grouped["alerts"] = json!(alerts);
        return grouped;
    }
    let n = page.notification;
    let status = if n.is_problem() { "firing" } else { "resolved" };
    let labels = alert_labels(&n.service, "critical");
    let mut annotations = json!({
        "summary": page.title,
        "description": page.summary,
    });
    if let Some(advice) = page.what_to_do {
        annotations["what_to_do"] = json!(advice);
    }
    if let Some(url) = &page.runbook_url {
        annotations["runbook_url"] = json!(url);
    }
    let started = n.outage.as_ref().map_or(n.at, |o| o.started_at);
    let ended = n.outage.as_ref().and_then(|o| o.ended_at);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{service=\"{}\"}}", n.service),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "breakerd",
        "groupLabels": { "service": n.service },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": n.api_url.clone().unwrap_or_default(),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(started),
            "endsAt": match (status, ended) {
                ("resolved", Some(ended)) => rfc3339(ended),
                ("resolved", None) => rfc3339(n.at),
                _ => "0001-01-01T00:00:00Z".to_string(),
            },
            "generatorURL": n.api_url.clone().unwrap_or_default(),
            "fingerprint": fingerprint(&n.service),
        }],
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notification::{Notification, sample, sample_recovered};

    fn recovered() -> Notification {
        sample_recovered()
    }

    #[test]
    fn breakerds_json_carries_the_page_and_marks_a_recovered_cause_past() {
        let notification = sample();
        let down = breakerd(&Page::of(&notification));
        assert_eq!(
            down["title"],
            "M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push"
        );
        assert_eq!(down["service"], "mpesa");
        assert_eq!(
            down["runbookUrl"],
            "https://breakerd.example.com/runbook#breaker-open"
        );
        assert!(down["whatToDo"].as_str().unwrap().contains("status page"));
        assert_eq!(down["lastFailure"], "http_status: HTTP 503");
        assert!(down["cause"].get("past").is_none());
        let notification = recovered();
        let up = breakerd(&Page::of(&notification));
        assert_eq!(up["title"], "M-Pesa Daraja (mpesa) recovered after 4m 12s");
        assert_eq!(up["recoveredAfter"], "4m 12s");
        assert_eq!(up["cause"]["past"], true);
        assert_eq!(up["causeIsPast"], true);
        assert!(up.get("lastFailure").is_none(), "{up}");
        assert!(up.get("whatToDo").is_none());
    }

    #[test]
    fn alertmanagers_webhook_shape() {
        let notification = sample();
        let firing = alertmanager(&Page::of(&notification));
        assert_eq!(firing["version"], "4");
        assert_eq!(firing["status"], "firing");
        assert_eq!(
            firing["alerts"][0]["labels"]["alertname"],
            "CircuitBreakerOpen"
        );
        assert_eq!(
            firing["alerts"][0]["annotations"]["runbook_url"],
            "https://breakerd.example.com/runbook#breaker-open"
        );
        assert_eq!(
            firing["alerts"][0]["fingerprint"].as_str().map(str::len),
            Some(16)
        );
        let notification = recovered();
        let resolved = alertmanager(&Page::of(&notification));
        assert_eq!(resolved["status"], "resolved");
        assert_eq!(
            resolved["alerts"][0]["startsAt"],
            "2026-11-27T10:00:00.000Z"
        );
        assert_eq!(resolved["alerts"][0]["endsAt"], "2026-11-27T10:04:12.000Z");
    }

    #[test]
    fn slack_leads_with_the_title_and_the_summary() {
        let notification = sample();
        let message = slack(&Page::of(&notification));
        assert_eq!(
            message["text"],
            "M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push"
        );
        assert!(
            message["attachments"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Calls to M-Pesa Daraja fail fast since")
        );
        assert_eq!(
            message["attachments"][0]["fields"][0]["title"],
            "What to do"
        );
    }
}
