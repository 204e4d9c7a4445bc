//! Building notifications: a ledger's page as a notification of its service (numbered,
//! with its provider, links and dependants), a notice about breakerd itself, and grouped
//! pages sent as one.

use std::collections::BTreeMap;

use std::time::SystemTime;

use tokio::time::Instant;

use super::Stage;
use crate::alert::notification::{Notification, NotificationKind, OutageInfo};
use crate::alert::outage::Page;
use crate::alert::quiet::{self, Offline};
use crate::breaker::State;
use crate::config::AlertsConfig;

impl Stage {
    /// A notice about breakerd itself (offline, online again).
    pub(super) fn notice(
        &mut self,
        kind: NotificationKind,
        offline: &super::quiet::Offline,
        ended_at: Option<std::time::SystemTime>,
    ) -> Notification {
        let id = self.take_id();
        offline_notice(id, kind, offline, ended_at, &self.settings.alerts)
    }

    /// The next notification's number.
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// `page` of `service` as a notification, numbered.
    pub(super) fn notification(&mut self, service: &str, page: Page) -> Notification {
        let id = self.take_id();
        let settings = &self.settings;
        page_notification(
            id,
            service,
            page,
            &settings.alerts,
            settings
                .providers
                .get(crate::unit::service_of(service))
                .cloned(),
            quiet::dependants(&settings.depends_on, crate::unit::service_of(service)),
        )
    }

    /// Writes the notification to the outbox for each direct channel that takes it, then
    /// queues it there.
    pub(super) async fn send(&mut self, service: &str, page: Page) {
        // The pages of a service's operations' breakers wait to go out together, so an outage
        // of every operation pages once.
        let wait = self.settings.alerts.group_wait.or_else(|| {
            crate::unit::operation_of(service).map(|_| crate::alert::OPERATION_GROUP_WAIT)
        });
        let (service, page) = match wait {
            Some(wait) => match self.grouping.add(service, page, Instant::now() + wait) {
                Some(alone) => alone,
                None => return,
            },
            None => (service.to_string(), page),
        };
        let service = service.as_str();
        let class = page.class;
        let notification = self.notification(service, page);
        let channels: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, slot)| slot.queue.is_some() && slot.channel.borrow().takes(service, class))
            .map(|(name, _)| name.clone())
            .collect();
        self.deliver(&channels, &notification).await;
    }

    /// Sends pages that waited out the group wait: each channel gets one notification listing
    /// every service it takes (or the one, alone).
    pub(super) async fn send_group(&mut self, pages: Vec<(String, Page)>) {
        let mut members: Vec<(crate::config::NotifyOn, Notification)> = pages
            .into_iter()
            .map(|(service, page)| (page.class, self.notification(&service, page)))
            .collect();
        members.sort_by(|(_, a), (_, b)| a.service.cmp(&b.service));
        // Channels that take the same services get the same notification.
        let mut by_members: BTreeMap<Vec<u64>, Vec<String>> = BTreeMap::new();
        for (name, slot) in self
            .channels
            .iter()
            .filter(|(_, slot)| slot.queue.is_some())
        {
            let channel = slot.channel.borrow();
            let ids: Vec<u64> = members
                .iter()
                .filter(|(class, member)| channel.takes(&member.service, *class))
                .map(|(_, member)| member.id)
                .collect();
            if !ids.is_empty() {
                by_members.entry(ids).or_default().push(name.clone());
            }
        }
        for (ids, channels) in by_members {
            let chosen: Vec<Notification> = members
                .iter()
                .filter(|(_, member)| ids.contains(&member.id))
                .map(|(_, member)| member.clone())
                .collect();
            let notification = match chosen.len() {
                1 => chosen.into_iter().next(),
                _ => Notification::grouped(self.take_id(), chosen),
            };
            if let Some(notification) = notification {
                self.deliver(&channels, &notification).await;
            }
        }
    }
}

/// A notice about breakerd itself: offline since `offline.since` (`Offline`), or online again
/// at `ended_at` (`Online`), told as a change of a service called `breakerd`.
pub(super) fn offline_notice(
    id: u64,
    kind: NotificationKind,
    offline: &Offline,
    ended_at: Option<SystemTime>,
    alerts: &AlertsConfig,
) -> Notification {
    let at = ended_at.unwrap_or(offline.since);
    let (from, to) = match kind {
        NotificationKind::Offline => (State::Closed, State::Open),
        _ => (State::Open, State::Closed),
    };
    Notification {
        id,
        kind,
        service: "breakerd".to_string(),
        from,
        to,
        reason: format!(
            "no connectivity target answers: {}",
            offline.failures.join("; ")
        ),
        at,
        at_unix_ms: crate::wall::unix_millis(at),
        consecutive_failures: 0,
        last_failure: None,
        cause: None,
        outage: Some(OutageInfo {
            started_at: offline.since,
            ended_at,
            failed_trials: 0,
        }),
        next_attempt: None,
        changes: 1,
        dashboard_url: alerts.dashboard_url.as_ref().map(ToString::to_string),
        api_url: None,
        provider: None,
        runbook_url: alerts.runbook(),
        dependants: Vec::new(),
        group: Vec::new(),
    }
}

/// A ledger's `page` of `service` as notification `id`: the change, its cause and outage, the
/// provider's name for people, links to the dashboard, the service in the API and the runbook,
/// and the services that depend on it.
pub(super) fn page_notification(
    id: u64,
    service: &str,
    page: Page,
    alerts: &AlertsConfig,
    provider: Option<String>,
    dependants: Vec<String>,
) -> Notification {
    let change = page.change;
    Notification {
        id,
        kind: page.kind,
        service: service.to_string(),
        from: change.from,
        to: change.to,
        reason: change.reason.to_string(),
        at: change.at,
        at_unix_ms: crate::wall::unix_millis(change.at),
        consecutive_failures: change.consecutive_failures,
        last_failure: change.cause.as_ref().map(ToString::to_string),
        cause: change.cause,
        outage: page.outage,
        next_attempt: change.next_attempt,
        changes: page.changes,
        dashboard_url: alerts.dashboard_url.as_ref().map(ToString::to_string),
        api_url: alerts.api_url.as_ref().map(|base| {
            format!(
                "{}/api/v1/circuit-breakers/{service}",
                base.as_str().trim_end_matches('/')
            )
        }),
        provider,
        runbook_url: alerts.runbook(),
        dependants,
        group: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use url::Url;

    use super::*;
    use crate::outcome::{Cause, FailureReason};

    fn alerts(api_url: &str) -> AlertsConfig {
        AlertsConfig {
            api_url: Url::parse(api_url).ok(),
            ..AlertsConfig::default()
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn opening_page() -> Page {
        let cause = Cause::plain(FailureReason::HttpStatus, "HTTP 503", at(0));
        super::super::testing::opened(at(0), Some(cause)).1
    }

    #[test]
    fn a_page_links_the_service_in_the_api_and_the_runbook_and_names_its_dependants() {
        let notification = page_notification(
            7,
            "mpesa",
            opening_page(),
            &alerts("https://ops.example/breakerd/"),
            Some("M-Pesa Daraja".to_string()),
            vec!["rent".to_string()],
        );
        assert_eq!(notification.id, 7);
        assert_eq!(notification.kind, NotificationKind::Transition);
        assert_eq!(
            (notification.from, notification.to),
            (State::Closed, State::Open)
        );
        assert_eq!(
            notification.api_url.as_deref(),
            Some("https://ops.example/breakerd/api/v1/circuit-breakers/mpesa")
        );
        assert_eq!(
            notification.runbook_url.as_deref(),
            Some("https://ops.example/breakerd/runbook")
        );
        assert_eq!(notification.provider.as_deref(), Some("M-Pesa Daraja"));
        assert_eq!(notification.dependants, ["rent"]);
        assert_eq!(notification.consecutive_failures, 3);
        assert_eq!(notification.next_attempt, Some(at(60)));
        assert!(
            notification
                .last_failure
                .as_deref()
                .is_some_and(|failure| failure.contains("HTTP 503")),
            "{:?}",
            notification.last_failure
        );
    }

    #[test]
    fn offline_and_online_notices_speak_for_breakerd_with_the_targets_that_failed() {
        let offline = Offline {
            since: at(0),
            failures: vec![
                "tcp://1.1.1.1:443: connection refused".to_string(),
                "mpesa: in an outage".to_string(),
            ],
        };
        let gone = offline_notice(
            1,
            NotificationKind::Offline,
            &offline,
            None,
            &alerts("http://x/"),
        );
        assert_eq!(gone.service, "breakerd");
        assert_eq!((gone.from, gone.to), (State::Closed, State::Open));
        assert_eq!(gone.at, at(0));
        assert_eq!(
            gone.reason,
            "no connectivity target answers: tcp://1.1.1.1:443: connection refused; mpesa: in an outage"
        );
        assert!(gone.api_url.is_none());

        let back = offline_notice(
            2,
            NotificationKind::Online,
            &offline,
            Some(at(90)),
            &AlertsConfig::default(),
        );
        assert_eq!((back.from, back.to), (State::Open, State::Closed));
        assert_eq!(back.at, at(90));
        let outage = back.outage.expect("the offline spell");
        assert_eq!((outage.started_at, outage.ended_at), (at(0), Some(at(90))));
    }
}
