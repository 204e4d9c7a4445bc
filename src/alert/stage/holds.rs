//! Holds on pages — maintenance, silences, an upstream's outage, being offline — worked out
//! per service, applied to its ledger, logged once each way and published.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::Stage;
use crate::alert::outage::{Ledger, Outage};
use crate::alert::quiet::{Facts, Hold, Offline};
use crate::alert::silences::Silence;

impl Stage {
    /// The holds on each of `services` at `now`.
    pub(super) fn holds_at<'s>(
        &self,
        services: impl IntoIterator<Item = &'s str>,
        now: std::time::SystemTime,
    ) -> Vec<(&'s str, Vec<Hold>)> {
        let silences: Vec<&Silence> = self.silences.active(now).collect();
        let in_outage = |name: &str| {
            self.ledgers
                .get(name)
                .and_then(Ledger::outage)
                .is_some_and(Outage::is_ongoing)
        };
        let facts = Facts::new(
            &self.settings.windows,
            &silences,
            &self.settings.depends_on,
            &in_outage,
            now,
        );
        services
            .into_iter()
            .map(|service| {
                let holds = with_guard(
                    facts.holds(service),
                    self.offline.as_ref(),
                    self.verifying.contains(service),
                );
                (service, holds)
            })
            .collect()
    }

    /// The holds on `service` now.
    pub(super) fn holds_of(&self, service: &str, now: std::time::SystemTime) -> Vec<Hold> {
        self.holds_at([service], now)
            .pop()
            .map(|(_, holds)| holds)
            .unwrap_or_default()
    }

    /// Holds or frees `service`'s pages as its holds say; a hold that ends tells on-call what
    /// changed meanwhile.
    pub(super) async fn refresh_holds(&mut self, service: &str) {
        let holds = self.holds_of(service, crate::wall::now());
        self.apply_holds(service, holds).await;
    }

    /// Holds or frees `service`'s pages as `holds` say.
    pub(super) async fn apply_holds(&mut self, service: &str, holds: Vec<Hold>) {
        let rules = self.settings.rules(service);
        let Some(ledger) = self.ledgers.get_mut(service) else {
            return;
        };
        let page = ledger.set_quiet(!holds.is_empty(), &rules, Instant::now());
        let before = self.holds.get(service).map(Vec::as_slice);
        if let Some(change) = announcement(before, &holds) {
            let record = |held: bool, why: String| crate::history::HoldRecord {
                held,
                why,
                at: crate::wall::rfc3339(crate::wall::now()),
            };
            match change {
                Announcement::Held(hold) => {
                    let why = describe(&hold);
                    info!(service = %service, hold = hold.kind(), "pages are held: {why}");
                    self.shared.history.hold(service, record(true, why));
                }
                Announcement::Freed => {
                    info!(service = %service, "pages are no longer held");
                    self.shared
                        .history
                        .hold(service, record(false, String::new()));
                }
            }
        }
        let unchanged = match self.holds.get(service) {
            Some(held) => *held == holds,
            None => holds.is_empty(),
        };
        if !unchanged {
            self.holds_changed = true;
            if holds.is_empty() {
                self.holds.remove(service);
            } else {
                self.holds.insert(service.to_string(), holds);
            }
        }
        if let Some(page) = page {
            self.save(service);
            self.send(service, page).await;
        }
    }

    /// Drops expired silences and refreshes every service's holds; notes when they next
    /// change by the clock.
    pub(super) async fn refresh_all_holds(&mut self) {
        let now = crate::wall::now();
        self.silences.expire(now).await;
        // Silences may have been made, ended or dropped.
        self.holds_changed = true;
        let all: Vec<(String, Vec<Hold>)> = self
            .holds_at(self.settings.rules.keys().map(String::as_str), now)
            .into_iter()
            .map(|(service, holds)| (service.to_string(), holds))
            .collect();
        for (service, holds) in all {
            // A service with no hold and no history needs no ledger (the stage's timers look at
            // every ledger on every turn).
            if holds.is_empty() && !self.ledgers.contains_key(&service) {
                continue;
            }
            self.ledgers.entry(service.clone()).or_default();
            self.apply_holds(&service, holds).await;
        }
        let silences: Vec<&Silence> = self.silences.active(now).collect();
        let next = Facts::new(
            &self.settings.windows,
            &silences,
            &self.settings.depends_on,
            &|_| false,
            now,
        )
        .next_change();
        self.next_quiet_change = next.map(|at| {
            Instant::now() + at.duration_since(now).unwrap_or_default() + Duration::from_millis(1)
        });
    }
}

/// `holds` from the calendar, silences and upstreams, plus the guard's: every service is held
/// while breakerd is offline, and one whose outage just started while the guard takes a look.
pub(super) fn with_guard(
    mut holds: Vec<Hold>,
    offline: Option<&Offline>,
    verifying: bool,
) -> Vec<Hold> {
    if let Some(offline) = offline {
        holds.push(Hold::Offline {
            since: offline.since,
        });
    } else if verifying {
        holds.push(Hold::CheckingConnectivity);
    }
    holds
}

/// What to log and keep in a service's history when its holds change.
#[derive(Debug, PartialEq)]
pub(super) enum Announcement {
    /// Its pages are now held, first of all by this.
    Held(Hold),
    /// Its pages are no longer held.
    Freed,
}

/// The announcement due when a service's holds go from `before` to `after`, if any. Being
/// offline is announced once for all services, and the guard's look takes a moment only: only
/// maintenance, silences and dependencies are announced per service, once each way.
pub(super) fn announcement(before: Option<&[Hold]>, after: &[Hold]) -> Option<Announcement> {
    let announced = |holds: &[Hold]| {
        holds
            .iter()
            .find(|hold| !matches!(hold, Hold::Offline { .. } | Hold::CheckingConnectivity))
            .cloned()
    };
    match (before.and_then(announced), announced(after)) {
        (None, Some(hold)) => Some(Announcement::Held(hold)),
        (Some(_), None) => Some(Announcement::Freed),
        _ => None,
    }
}

/// A hold in words, for logs.
pub(super) fn describe(hold: &Hold) -> String {
    match hold {
        Hold::Maintenance { reason, until } => {
            format!(
                "maintenance ({reason}) until {}",
                crate::wall::rfc3339(*until)
            )
        }
        Hold::Silenced { comment, until, .. } => {
            format!(
                "silenced ({comment}) until {}",
                crate::wall::rfc3339(*until)
            )
        }
        Hold::Dependency { upstream } => {
            format!("{upstream}, which it depends on, is in an outage")
        }
        Hold::Offline { since } => format!(
            "breakerd is offline (no connectivity target answers) since {}",
            crate::wall::rfc3339(*since)
        ),
        Hold::CheckingConnectivity => {
            "an outage starts: the connectivity guard looks whether breakerd is offline".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn maintenance() -> Hold {
        Hold::Maintenance {
            reason: "Safaricom upgrade".to_string(),
            until: at(3_600),
        }
    }

    fn offline() -> Offline {
        Offline {
            since: at(0),
            failures: vec!["tcp://1.1.1.1:443: connection refused".to_string()],
        }
    }

    #[test]
    fn offline_holds_everyone_and_the_guards_look_holds_only_the_service_it_is_for() {
        assert_eq!(
            with_guard(vec![maintenance()], Some(&offline()), true),
            [maintenance(), Hold::Offline { since: at(0) }]
        );
        assert_eq!(
            with_guard(Vec::new(), None, true),
            [Hold::CheckingConnectivity]
        );
        assert_eq!(with_guard(Vec::new(), None, false), []);
    }

    #[test]
    fn a_hold_is_announced_once_when_it_starts_and_once_when_it_ends() {
        let held = [maintenance()];
        assert_eq!(
            announcement(None, &held),
            Some(Announcement::Held(maintenance()))
        );
        assert_eq!(announcement(Some(&held), &held), None);
        let more = [
            Hold::Dependency {
                upstream: "mpesa".to_string(),
            },
            maintenance(),
        ];
        assert_eq!(announcement(Some(&held), &more), None);
        assert_eq!(announcement(Some(&more), &[]), Some(Announcement::Freed));
    }

    #[test]
    fn being_offline_or_the_guards_look_is_not_announced_per_service() {
        let guard_only = [Hold::Offline { since: at(0) }, Hold::CheckingConnectivity];
        assert_eq!(announcement(None, &guard_only), None);
        assert_eq!(announcement(Some(&guard_only), &[]), None);
        let mixed = [Hold::CheckingConnectivity, maintenance()];
        assert_eq!(
            announcement(Some(&guard_only), &mixed),
            Some(Announcement::Held(maintenance()))
        );
    }

    #[test]
    fn holds_in_words_say_why_and_until_when() {
        let words = describe(&maintenance());
        assert!(
            words.starts_with("maintenance (Safaricom upgrade) until "),
            "{words}"
        );
        assert!(words.contains("2027-01-15T09:00:00"), "{words}");
        let upstream = Hold::Dependency {
            upstream: "mpesa".to_string(),
        };
        assert_eq!(
            describe(&upstream),
            "mpesa, which it depends on, is in an outage"
        );
    }
}
