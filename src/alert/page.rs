//! The page: a notification in the words every channel renders — one title line, a summary,
//! the cause with the provider's own code and message (marked past once recovered), since
//! when, the trial calls, what to do and where to read more. Built once per notification (and
//! per outage for channels that follow outages); channels only lay it out.

mod advice;
mod text;

use std::time::Duration;

use serde_json::{Value, json};

pub use advice::{advice, markdown_list as advice_markdown};

use super::notification::{Notification, NotificationKind};
use crate::breaker::State;
use crate::outcome::Cause;
use crate::wall::{rfc3339, span};

/// Longest cause detail put in a title, in characters.
const TITLE_DETAIL_CHARS: usize = 100;
/// Longest cause detail per service in a grouped title, in characters.
const GROUP_DETAIL_CHARS: usize = 40;

/// Where a service stands after the change a page is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// An outage started: calls fail fast.
    Down,
    /// Still in an outage (a failed trial call, a reminder).
    StillDown,
    /// Half-open: trying the provider again.
    Trying,
    /// The outage ended.
    Recovered,
    /// Changing too often to page each change.
    Flapping,
    /// Held open by hand.
    HeldOpen,
    /// Disabled by hand: calls go through unguarded.
    Disabled,
    /// breakerd itself lost its connectivity.
    Offline,
    /// breakerd reaches its connectivity targets again.
    Online,
}

impl Standing {
    /// The standing of `notification`.
    fn of(notification: &Notification) -> Self {
        match notification.kind {
            NotificationKind::Offline => return Standing::Offline,
            NotificationKind::Online => return Standing::Online,
            NotificationKind::Flapping => return Standing::Flapping,
            NotificationKind::Reminder => return Standing::StillDown,
            NotificationKind::Transition | NotificationKind::Grouped => {}
        }
        match (notification.from, notification.to) {
            (_, State::Closed) => Standing::Recovered,
            (_, State::HalfOpen) => Standing::Trying,
            (State::HalfOpen, State::Open) => Standing::StillDown,
            (_, State::Open) => Standing::Down,
            (_, State::ForcedOpen) => Standing::HeldOpen,
            (_, State::Disabled) => Standing::Disabled,
        }
    }

    /// Whether the service is in trouble (the page fires rather than resolves).
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            Standing::Recovered | Standing::Online | Standing::Disabled
        )
    }

    /// The word for machines: `down`, `still_down`, `trying`, `recovered`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Down => "down",
            Standing::StillDown => "still_down",
            Standing::Trying => "trying",
            Standing::Recovered => "recovered",
            Standing::Flapping => "flapping",
            Standing::HeldOpen => "held_open",
            Standing::Disabled => "disabled",
            Standing::Offline => "offline",
            Standing::Online => "online",
        }
    }
}

/// A notification as every channel renders it.
#[derive(Clone, Debug)]
pub struct Page<'n> {
    /// What it is built from (the fields channels show as they are).
    pub notification: &'n Notification,
    /// Where the service stands.
    pub standing: Standing,
    /// One line: "M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push".
    pub title: String,
    /// A sentence or two: since when, why, what happens next.
    pub summary: String,
    /// The cause; `past` once the service recovered.
    pub cause: Option<PageCause<'n>>,
    /// How long the outage lasted, once it ended.
    pub recovered_after: Option<Duration>,
    /// What to do about it (the runbook's advice for the cause's reason).
    pub what_to_do: Option<&'static str>,
    /// The runbook's section for it.
    pub runbook_url: Option<String>,
    /// For a grouped notification: each service's own page.
    pub members: Vec<Page<'n>>,
}

/// A page's cause.
#[derive(Clone, Copy, Debug)]
pub struct PageCause<'n> {
    /// The last real failure.
    pub cause: &'n Cause,
    /// The outage it caused is over: it is history, not what is wrong now.
    pub past: bool,
}

impl<'n> Page<'n> {
    /// The page of `notification`.
    pub fn of(notification: &'n Notification) -> Self {
        let standing = Standing::of(notification);
        let members: Vec<Page<'n>> = notification.group.iter().map(Page::of).collect();
        let recovered_after = match standing {
            Standing::Recovered | Standing::Online => notification
                .outage
                .as_ref()
                .map(|outage| outage.length(notification.at)),
            _ => None,
        };
        let cause = notification.cause.as_ref().map(|cause| PageCause {
            cause,
            past: !standing.is_problem(),
        });
        let what_to_do = cause
            .filter(|cause| !cause.past)
            .map(|cause| advice(cause.cause.reason));
        let section = match standing {
            Standing::Flapping => "breaker-flapping",
            Standing::Offline | Standing::Online => "breakerd-down",
            _ => "breaker-open",
        };
        let runbook_url = notification
            .runbook_url
            .as_ref()
            .map(|base| format!("{}#{section}", base.trim_end_matches('#')));
        let mut page = Self {
            notification,
            standing,
            title: String::new(),
            summary: String::new(),
            cause,
            recovered_after,
            what_to_do,
            runbook_url,
            members,
        };
        page.title = page.make_title();
        page.summary = page.make_summary();
        page
    }

    /// Who it is about: "M-Pesa Daraja (mpesa)", or the service's name alone.
    pub fn who(&self) -> String {
        who(self.notification)
    }

    fn make_title(&self) -> String {
        let n = self.notification;
        let who = self.who();
        let cause = self.cause_words(TITLE_DETAIL_CHARS);
        if !self.members.is_empty() {
            return self.group_title();
        }
        match self.standing {
            Standing::Down => format!("{who} is down{}", prefixed(": ", &cause)),
            Standing::StillDown if n.kind == NotificationKind::Reminder => format!(
                "{who} is still down after {}{}",
                self.outage_length(),
                prefixed(": ", &cause)
            ),
            Standing::StillDown => format!(
                "{who} is still down: the trial call failed{}",
                prefixed(": ", &cause)
            ),
            Standing::Trying => format!("{who}: trying the provider again"),
            Standing::Recovered => match self.recovered_after {
                Some(after) => format!("{who} recovered after {}", span(after)),
                None => format!("{who} is up"),
            },
            Standing::Flapping => format!(
                "{who} is flapping: {} changes, now {}",
                n.changes,
                if n.is_problem() { "down" } else { "up" }
            ),
            Standing::HeldOpen => format!("{who} is held open by hand: its calls fail fast"),
            Standing::Disabled => {
                format!("{who}'s breaker is disabled by hand: calls go through unguarded")
            }
            Standing::Offline => format!(
                "{who} is offline: none of its connectivity checks answer; provider pages are held"
            ),
            Standing::Online => format!(
                "{who} is online again{}; what is still down pages now",
                self.recovered_after
                    .map(|after| format!(" (offline for {})", span(after)))
                    .unwrap_or_default()
            ),
        }
    }

    /// What the group's members are: services, or the operations of one service (each its
    /// own breaker, `breakers = "per_operation"`), named by operation.
    fn group_noun(&self) -> (String, Vec<&str>) {
        let names: Vec<&str> = self
            .members
            .iter()
            .map(|member| member.notification.service.as_str())
            .collect();
        let service = names
            .first()
            .map_or("", |name| crate::unit::service_of(name));
        let one_service = names.iter().all(|name| {
            crate::unit::operation_of(name).is_some() && crate::unit::service_of(name) == service
        });
        if one_service && !names.is_empty() {
            let operations = names
                .iter()
                .map(|name| crate::unit::operation_of(name).unwrap_or(name))
                .collect();
            (format!("operations of {service}"), operations)
        } else {
            ("services".to_string(), names)
        }
    }

    fn group_title(&self) -> String {
        let count = self.members.len();
        let (noun, names) = self.group_noun();
        if self.notification.is_problem() {
            let each: Vec<String> = self
                .members
                .iter()
                .zip(&names)
                .map(|(member, name)| {
                    format!(
                        "{name}{}",
                        prefixed(": ", &member.cause_words(GROUP_DETAIL_CHARS))
                    )
                })
                .collect();
            format!("{count} {noun} are down: {}", each.join("; "))
        } else {
            let each: Vec<String> = self
                .members
                .iter()
                .zip(&names)
                .map(|(member, name)| match member.recovered_after {
                    Some(after) => format!("{name} (after {})", span(after)),
                    None => name.to_string(),
                })
                .collect();
            format!("{count} {noun} recovered: {}", each.join(", "))
        }
    }

    fn make_summary(&self) -> String {
        let n = self.notification;
        if !self.members.is_empty() {
            return format!(
                "{} {} changed within the group wait; each one's page follows.",
                self.members.len(),
                self.group_noun().0
            );
        }
        let name = provider_or_service(n);
        let trials = self.trials_words();
        let next = n
            .next_attempt
            .map(|at| format!(" The next trial call goes out at {}.", rfc3339(at)))
            .unwrap_or_default();
        let said = self
            .cause
            .map(|cause| format!("{}{}", cause.cause, on_operation(cause.cause)))
            .unwrap_or_default();
        match self.standing {
            Standing::Down | Standing::StillDown | Standing::Flapping => format!(
                "Calls to {name} fail fast since {} ({}): {}{}.{trials}{next}",
                self.started_words(),
                self.outage_length(),
                n.reason,
                prefixed(", last error ", &said)
            ),
            Standing::Trying => format!(
                "Down since {} ({}); trial calls go through now to see whether {name} answers again.{trials}",
                self.started_words(),
                self.outage_length()
            ),
            Standing::Recovered => format!(
                "{name} answers again: recovered after {} (down from {} to {}).{trials}{}",
                self.outage_length(),
                self.started_words(),
                rfc3339(n.at),
                prefixed(" It had failed with ", &said) + if said.is_empty() { "" } else { "." }
            ),
            Standing::HeldOpen => format!(
                "An operator forced {name}'s breaker open at {}: calls fail fast until it is reset.",
                rfc3339(n.at)
            ),
            Standing::Disabled => format!(
                "An operator disabled {name}'s breaker at {}: calls go through unguarded and nothing opens it until it is reset.",
                rfc3339(n.at)
            ),
            Standing::Offline | Standing::Online => format!("{}.", n.reason),
        }
    }

    /// The cause, short: "HTTP 503 on stk_push".
    fn cause_words(&self, most: usize) -> String {
        let Some(cause) = self.cause.filter(|cause| !cause.past) else {
            return String::new();
        };
        let mut words: String = cause.cause.detail.chars().take(most).collect();
        if words.len() < cause.cause.detail.len() {
            words.push('…');
        }
        words.push_str(&on_operation(cause.cause));
        words
    }

    fn started_words(&self) -> String {
        self.notification
            .outage
            .as_ref()
            .map_or_else(|| rfc3339(self.notification.at), |o| rfc3339(o.started_at))
    }

    fn outage_length(&self) -> String {
        span(
            self.notification
                .outage
                .as_ref()
                .map(|outage| outage.length(self.notification.at))
                .unwrap_or_default(),
        )
    }

    fn trials_words(&self) -> String {
        match self.notification.outage.as_ref().map(|o| o.failed_trials) {
            None | Some(0) => String::new(),
            Some(1) => " 1 trial call failed.".to_string(),
            Some(count) => format!(" {count} trial calls failed."),
        }
    }

    /// What the provider itself said: its code and message, when it gave them.
    pub fn provider_said(&self) -> Option<String> {
        self.cause.and_then(|cause| provider_said(cause.cause))
    }

    /// The page as plain text: the email's body and the chat message.
    pub fn text(&self) -> String {
        text::render(self)
    }

    /// The page's own fields for a JSON body: `title`, `summary`, `standing`, `whatToDo`,
    /// `runbookUrl`, `recoveredAfter` (words) and `recoveredAfterSeconds`, `causeIsPast`.
    pub fn json_fields(&self) -> Value {
        let mut fields = json!({
            "title": self.title,
            "summary": self.summary,
            "standing": self.standing.as_str(),
        });
        if let Some(advice) = self.what_to_do {
            fields["whatToDo"] = json!(advice);
        }
        if let Some(url) = &self.runbook_url {
            fields["runbookUrl"] = json!(url);
        }
        if let Some(after) = self.recovered_after {
            fields["recoveredAfter"] = json!(span(after));
            fields["recoveredAfterSeconds"] = json!(after.as_secs());
        }
        if let Some(cause) = self.cause {
            fields["causeIsPast"] = json!(cause.past);
        }
        fields
    }
}

/// "M-Pesa Daraja (mpesa)", or the service's name alone.
pub(crate) fn who(notification: &Notification) -> String {
    match &notification.provider {
        Some(provider) if *provider != notification.service => {
            format!("{provider} ({})", notification.service)
        }
        _ => notification.service.clone(),
    }
}

/// The provider's name, or the service's.
fn provider_or_service(notification: &Notification) -> &str {
    notification
        .provider
        .as_deref()
        .unwrap_or(&notification.service)
}

/// What the provider itself said of a failure: its code and message, when it gave them.
pub(crate) fn provider_said(cause: &Cause) -> Option<String> {
    let said: Vec<&str> = [&cause.said.code, &cause.said.message]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    (!said.is_empty()).then(|| said.join(" "))
}

/// ` on OPERATION` for a cause whose detail does not name its operation already.
fn on_operation(cause: &Cause) -> String {
    match &cause.said.operation {
        Some(operation) if !cause.detail.contains(&format!(" on {operation}")) => {
            format!(" on {operation}")
        }
        _ => String::new(),
    }
}

/// `prefix` and `words`, or nothing when there are no words.
fn prefixed(prefix: &str, words: &str) -> String {
    if words.is_empty() {
        String::new()
    } else {
        format!("{prefix}{words}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alert::notification::{sample, sample_recovered};

    fn recovered() -> Notification {
        sample_recovered()
    }

    #[test]
    fn a_down_page_says_who_what_since_when_and_what_to_do() {
        let notification = sample();
        let page = Page::of(&notification);
        assert_eq!(
            page.title,
            "M-Pesa Daraja (mpesa) is down: HTTP 503 on stk_push"
        );
        assert_eq!(
            page.summary,
            "Calls to M-Pesa Daraja fail fast since 2026-11-27T10:00:00.000Z (0s): 3 consecutive failures, last error http_status: HTTP 503 on stk_push. The next trial call goes out at 2026-11-27T10:02:00.000Z."
        );
        assert_eq!(
            page.what_to_do,
            Some(advice(crate::outcome::FailureReason::HttpStatus))
        );
        assert_eq!(
            page.runbook_url.as_deref(),
            Some("https://breakerd.example.com/runbook#breaker-open")
        );
        assert!(!page.cause.unwrap().past);
    }

    #[test]
    fn a_recovery_page_says_recovered_after_and_its_cause_is_past() {
        let notification = recovered();
        let page = Page::of(&notification);
        assert_eq!(page.title, "M-Pesa Daraja (mpesa) recovered after 4m 12s");
        assert_eq!(page.recovered_after, Some(Duration::from_secs(252)));
        assert!(page.cause.unwrap().past, "the cause is history");
        assert_eq!(page.what_to_do, None, "nothing to do for a past cause");
        assert!(
            page.summary.contains("recovered after 4m 12s")
                && page.summary.contains("2 trial calls failed")
                && page
                    .summary
                    .contains("It had failed with http_status: HTTP 503 on stk_push."),
            "{}",
            page.summary
        );
        let fields = page.json_fields();
        assert_eq!(fields["recoveredAfter"], "4m 12s");
        assert_eq!(fields["recoveredAfterSeconds"], 252);
        assert_eq!(fields["causeIsPast"], true);
        assert_eq!(fields["standing"], "recovered");
    }

    #[test]
    fn titles_of_every_standing() {
        let reminder = Notification {
            kind: NotificationKind::Reminder,
            at: sample().at + Duration::from_secs(3600),
            ..sample()
        };
        assert_eq!(
            Page::of(&reminder).title,
            "M-Pesa Daraja (mpesa) is still down after 1h 0m: HTTP 503 on stk_push"
        );
        let reopened = Notification {
            from: State::HalfOpen,
            ..sample()
        };
        assert_eq!(
            Page::of(&reopened).title,
            "M-Pesa Daraja (mpesa) is still down: the trial call failed: HTTP 503 on stk_push"
        );
        let flapping = Notification {
            kind: NotificationKind::Flapping,
            changes: 6,
            ..sample()
        };
        assert_eq!(
            Page::of(&flapping).title,
            "M-Pesa Daraja (mpesa) is flapping: 6 changes, now down"
        );
        let plain = Notification {
            provider: None,
            ..sample()
        };
        assert_eq!(
            Page::of(&plain).title,
            "mpesa is down: HTTP 503 on stk_push"
        );
        let long = Notification {
            cause: Some(Cause {
                detail: "x".repeat(300),
                ..sample().cause.unwrap()
            }),
            ..sample()
        };
        assert!(
            Page::of(&long)
                .title
                .ends_with(&format!("{}… on stk_push", "x".repeat(100)))
        );
    }

    #[test]
    fn a_group_title_names_each_service() {
        let kcb = Notification {
            service: "kcb".into(),
            provider: Some("KCB Buni".into()),
            ..sample()
        };
        let grouped = Notification::grouped(9, vec![kcb, sample()]).unwrap();
        let page = Page::of(&grouped);
        assert_eq!(
            page.title,
            "2 services are down: kcb: HTTP 503 on stk_push; mpesa: HTTP 503 on stk_push"
        );
        let back = Notification::grouped(10, vec![recovered()]);
        assert!(back.is_none(), "one service is not a group");
    }

    #[test]
    fn a_group_of_one_services_operations_is_named_by_operation() {
        let operation = |name: &str| Notification {
            service: crate::unit::operation_unit("mpesa", name),
            ..sample()
        };
        let grouped = Notification::grouped(9, vec![operation("b2c"), operation("stk_push")])
            .expect("two operations group");
        let page = Page::of(&grouped);
        assert_eq!(
            page.title,
            "2 operations of mpesa are down: b2c: HTTP 503 on stk_push; stk_push: HTTP 503 on stk_push"
        );
        let mixed = Notification::grouped(10, vec![operation("b2c"), sample()]).expect("a group");
        assert!(
            Page::of(&mixed)
                .title
                .starts_with("2 services are down: mpesa/b2c: "),
            "{}",
            Page::of(&mixed).title
        );
    }
}
