//! A page as a PagerDuty Events API v2 event: `trigger` or `resolve`, the outage's
//! `dedup_key`, and a payload whose summary is the page's title and whose custom details
//! carry the cause, what to do and the links.

use serde_json::{Value, json};

use crate::alert::page::Page;
use crate::config::{Secret, Url};
use crate::wall::{rfc3339, unix_millis};

/// The longest `summary` PagerDuty takes, in characters.
const MAX_SUMMARY_CHARS: usize = 1024;
/// The longest `dedup_key` PagerDuty takes, in characters.
const MAX_DEDUP_KEY_CHARS: usize = 255;

/// The outage's identity: the same for its trigger, its reminders and its resolve, and after
/// a restart (the outage's start is kept in the state directory).
pub(super) fn dedup_key(page: &Page<'_>) -> String {
    let n = page.notification;
    let started = n.outage.as_ref().map_or(n.at, |outage| outage.started_at);
    let key = format!("breakerd/{}/{}", n.service, unix_millis(started));
    key.chars().take(MAX_DEDUP_KEY_CHARS).collect()
}

/// The event for one service's page.
pub(super) fn of(
    page: &Page<'_>,
    routing_key: &Secret,
    severity: &str,
    api: Option<&Url>,
) -> Value {
    let n = page.notification;
    let action = if page.standing.is_problem() {
        "trigger"
    } else {
        "resolve"
    };
    let mut event = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": dedup_key(page),
    });
    if action == "resolve" {
        // A resolve needs only the key; PagerDuty ignores a payload on it.
        return event;
    }
    let mut details = json!({
        "summary": page.summary,
        "standing": page.standing.as_str(),
        "transition": format!("{} -> {}", n.from, n.to),
        "reason": n.reason,
    });
    if let Some(advice) = page.what_to_do {
        details["what_to_do"] = json!(advice);
    }
    if let Some(cause) = page.cause {
        details["cause"] = json!(cause.cause.to_string());
        details["cause_at"] = json!(rfc3339(cause.cause.at));
        for (key, value) in [
            ("operation", &cause.cause.said.operation),
            ("provider_code", &cause.cause.said.code),
            ("provider_message", &cause.cause.said.message),
        ] {
            if let Some(value) = value {
                details[key] = json!(value);
            }
        }
    }
    if let Some(outage) = &n.outage {
        details["outage_started_at"] = json!(rfc3339(outage.started_at));
        details["failed_trials"] = json!(outage.failed_trials);
    }
    if let Some(next) = n.next_attempt {
        details["next_attempt"] = json!(rfc3339(next));
    }
    if !n.dependants.is_empty() {
        details["affects"] = json!(n.dependants);
    }
    let summary: String = page.title.chars().take(MAX_SUMMARY_CHARS).collect();
    event["payload"] = json!({
        "summary": summary,
        "source": n.service,
        "severity": severity,
        "timestamp": rfc3339(n.at),
        "component": n.service,
        "group": n.provider.clone().unwrap_or_else(|| n.service.clone()),
        "class": page.cause.map_or("breaker", |cause| cause.cause.reason.as_str()),
        "custom_details": details,
    });
    let links: Vec<Value> = [
        ("Runbook", &page.runbook_url),
        ("Dashboard", &n.dashboard_url),
        ("breakerd API", &n.api_url),
    ]
    .into_iter()
    .filter_map(|(text, href)| {
        href.as_ref()
            .map(|href| json!({"href": href, "text": text}))
    })
    .collect();
    if !links.is_empty() {
        event["links"] = json!(links);
    }
    event["client"] = json!("breakerd");
    if let Some(api) = api {
        event["client_url"] = json!(api.as_str());
    }
    event
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alert::notification::{Notification, OutageInfo, sample};
    use crate::breaker::State;

    #[test]
    fn an_outage_triggers_and_resolves_under_one_key() {
        let key = Secret::new("R0UT1NGKEY".to_string());
        let down = sample();
        let trigger = of(&Page::of(&down), &key, "critical", None);
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
        assert_eq!(
            trigger["payload"]["summary"],
            "M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push"
        );
        assert_eq!(trigger["payload"]["severity"], "critical");
        assert_eq!(trigger["payload"]["class"], "http_status");
        assert_eq!(
            trigger["payload"]["custom_details"]["operation"],
            "stk_push"
        );
        assert_eq!(trigger["links"][0]["text"], "Runbook");
        let later = down.at + Duration::from_secs(252);
        let up = Notification {
            from: State::HalfOpen,
            to: State::Closed,
            at: later,
            outage: Some(OutageInfo {
                ended_at: Some(later),
                ..down.outage.clone().unwrap()
            }),
            ..sample()
        };
        let resolve = of(&Page::of(&up), &key, "critical", None);
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
        assert_eq!(trigger["dedup_key"], "breakerd/mpesa/1795773600000");
    }

    #[test]
    fn a_long_title_is_cut_to_what_pagerduty_takes() {
        let long = Notification {
            service: "s".repeat(2000),
            provider: None,
            ..sample()
        };
        let event = of(
            &Page::of(&long),
            &Secret::new("k".to_string()),
            "error",
            None,
        );
        assert_eq!(
            event["payload"]["summary"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            MAX_SUMMARY_CHARS
        );
        assert!(event["dedup_key"].as_str().unwrap().chars().count() <= MAX_DEDUP_KEY_CHARS);
    }
}
