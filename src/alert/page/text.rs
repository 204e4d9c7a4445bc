//! A page as plain text, for a person reading it on a phone: the title, the summary, what to
//! do, then one labelled line per fact, the links last.

use super::Page;
use crate::alert::notification::NotificationKind;
use crate::wall::{rfc3339, span};

/// The page as plain text (the email's body, the chat message).
pub(super) fn render(page: &Page<'_>) -> String {
    let mut text = format!("{}\n\n{}\n", page.title, page.summary);
    if !page.members.is_empty() {
        for member in &page.members {
            text.push('\n');
            for (index, line) in facts(member).lines().enumerate() {
                let indent = if index == 0 { "" } else { "    " };
                text.push_str(&format!("{indent}{line}\n"));
            }
        }
        links(page, &mut text);
        text.push_str("\n-- breakerd\n");
        return text;
    }
    text.push('\n');
    text.push_str(&facts(page));
    links(page, &mut text);
    text.push_str("\n-- breakerd\n");
    text
}

/// The labelled lines of one service's page, its title first.
fn facts(page: &Page<'_>) -> String {
    let n = page.notification;
    let mut lines = vec![page.title.clone()];
    let mut line = |label: &str, value: String| lines.push(format!("{label:<14}{value}"));
    if let Some(advice) = page.what_to_do {
        line("What to do:", advice.to_string());
    }
    if let Some(cause) = page.cause {
        let label = if cause.past { "Had failed:" } else { "Cause:" };
        line(
            label,
            format!("{} (at {})", cause.cause, rfc3339(cause.cause.at)),
        );
        if let Some(operation) = &cause.cause.said.operation {
            line("Operation:", operation.clone());
        }
        if let Some(said) = page.provider_said() {
            line("Provider said:", said);
        }
    }
    if let Some(outage) = &n.outage {
        let trials = match outage.failed_trials {
            0 => String::new(),
            1 => ", 1 trial call failed".to_string(),
            count => format!(", {count} trial calls failed"),
        };
        let value = match outage.ended_at {
            Some(ended) => format!(
                "{} to {} ({}){trials}",
                rfc3339(outage.started_at),
                rfc3339(ended),
                span(outage.length(n.at))
            ),
            None => format!(
                "since {} ({}){trials}",
                rfc3339(outage.started_at),
                span(outage.length(n.at))
            ),
        };
        line("Outage:", value);
    }
    if let Some(next) = n.next_attempt {
        line("Next attempt:", rfc3339(next));
    }
    if n.is_problem() && !n.dependants.is_empty() {
        line(
            "Affects:",
            format!(
                "{} (they depend on {}; their own pages are held until it recovers)",
                n.dependants.join(", "),
                n.service
            ),
        );
    }
    if n.kind == NotificationKind::Flapping {
        line(
            "Flapping:",
            format!(
                "{} changes within the minimum interval; only this summary was sent",
                n.changes
            ),
        );
    }
    line("Service:", n.service.clone());
    line("Transition:", format!("{} -> {}", n.from, n.to));
    line("Reason:", n.reason.clone());
    line("At:", rfc3339(n.at));
    line("Failures:", format!("{} in a row", n.consecutive_failures));
    lines.join("\n") + "\n"
}

/// The runbook, dashboard and API links.
fn links(page: &Page<'_>, text: &mut String) {
    let n = page.notification;
    let mut first = true;
    for (label, url) in [
        ("Runbook:", &page.runbook_url),
        ("Dashboard:", &n.dashboard_url),
        ("API:", &n.api_url),
    ] {
        if let Some(url) = url {
            if first {
                text.push('\n');
                first = false;
            }
            text.push_str(&format!("{label:<14}{url}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::notification::sample;
    use crate::alert::page::Page;

    #[test]
    fn the_text_leads_with_what_matters_and_keeps_every_detail() {
        let notification = sample();
        let text = Page::of(&notification).text();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push")
        );
        for part in [
            "What to do:   The provider answers with errors",
            "Cause:        http_status: HTTP 503 (at 2026-11-27T10:00:00.000Z)",
            "Operation:    stk_push",
            "Outage:       since 2026-11-27T10:00:00.000Z (0s)",
            "Next attempt: 2026-11-27T10:02:00.000Z",
            "Transition:   CLOSED -> OPEN",
            "Reason:       3 consecutive failures",
            "Failures:     3 in a row",
            "Runbook:      https://breakerd.example.com/runbook#breaker-open",
            "Dashboard:    https://grafana.example.com/d/breakerd",
            "API:          https://breakerd.example.com/api/v1/circuit-breakers/mpesa",
        ] {
            assert!(text.contains(part), "missing {part} in\n{text}");
        }
    }
}
