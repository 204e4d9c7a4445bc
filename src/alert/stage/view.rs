//! What the stage publishes: every service's outage (and, for a day, those of services
//! removed from the config) and the holds and silences, with the held-service gauges.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::{DEPARTED_FOR, Stage};
use crate::alert::OutageView;
use crate::alert::outage::{Ledger, Outage};
use crate::alert::quiet::{Hold, QuietView};
use crate::metrics::HeldServices;

impl Stage {
    /// Publishes every service's outage, if any changed.
    pub(super) fn publish(&mut self) {
        let now = crate::wall::now();
        let view = outages(&self.ledgers, &mut self.departed, now);
        self.view.send_if_modified(|current| {
            if **current == view {
                return false;
            }
            *current = Arc::new(view);
            true
        });
        if !std::mem::take(&mut self.holds_changed) {
            return;
        }
        let quiet = QuietView {
            holds: self.holds.clone(),
            silences: self.silences.active(now).cloned().collect(),
            offline: self.offline.clone(),
        };
        let metrics = &self.shared.metrics;
        self.quiet_view.send_if_modified(|current| {
            if **current == quiet {
                return false;
            }
            metrics.set_held(held_services(&quiet.holds));
            *current = Arc::new(quiet);
            true
        });
    }
}

/// Every service's outage at `now`: the ledgers' own, and those of services removed from the
/// config (`departed`), kept for [`DEPARTED_FOR`] after they ended so that Alertmanager resolves
/// their alerts, and dropped from `departed` past that or once the service is back.
pub(super) fn outages(
    ledgers: &BTreeMap<String, Ledger>,
    departed: &mut BTreeMap<String, Arc<Outage>>,
    now: SystemTime,
) -> OutageView {
    departed.retain(|service, outage| {
        let ended = outage.ended_at.unwrap_or(now);
        !ledgers.contains_key(service)
            && now.duration_since(ended).unwrap_or_default() < DEPARTED_FOR
    });
    let mut view: OutageView = departed.clone();
    view.extend(ledgers.iter().filter_map(|(service, ledger)| {
        ledger
            .outage()
            .map(|outage| (service.clone(), Arc::new(outage.clone())))
    }));
    view
}

/// The services held by a maintenance window and those held by a silence, for `/metrics`.
pub(super) fn held_services(holds: &BTreeMap<String, Vec<Hold>>) -> HeldServices {
    let held = |kind: &str| {
        holds
            .iter()
            .filter(|(_, holds)| holds.iter().any(|hold| hold.kind() == kind))
            .map(|(service, _)| service.clone())
            .collect()
    };
    HeldServices {
        maintenance: held("maintenance"),
        silenced: held("silenced"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn opened(at: SystemTime) -> Ledger {
        super::super::testing::opened(at, None).0
    }

    /// `sms`, removed from the config, with its outage from `start` to `end`.
    fn departed_sms(start: SystemTime, end: SystemTime) -> BTreeMap<String, Arc<Outage>> {
        let ended = opened(start).close(end).expect("an outage to end");
        BTreeMap::from([("sms".to_string(), Arc::new(ended))])
    }

    fn hours(count: u64) -> Duration {
        Duration::from_secs(3_600 * count)
    }

    #[test]
    fn a_removed_services_ended_outage_is_published_for_a_day_then_dropped() {
        let start = SystemTime::UNIX_EPOCH + hours(500_000);
        let mut departed = departed_sms(start, start + hours(1));
        let ledgers = BTreeMap::from([("mpesa".to_string(), opened(start))]);

        let view = outages(&ledgers, &mut departed, start + hours(24));
        assert_eq!(view.keys().collect::<Vec<_>>(), ["mpesa", "sms"]);
        assert_eq!(view["sms"].ended_at, Some(start + hours(1)));
        assert!(view["mpesa"].ended_at.is_none());

        let view = outages(&ledgers, &mut departed, start + hours(25));
        assert_eq!(view.keys().collect::<Vec<_>>(), ["mpesa"]);
        assert!(departed.is_empty());
    }

    #[test]
    fn a_service_back_in_the_config_shows_its_own_ledger_not_the_departed_outage() {
        let start = SystemTime::UNIX_EPOCH + hours(500_000);
        let mut departed = departed_sms(start, start + hours(1));
        let ledgers = BTreeMap::from([("sms".to_string(), Ledger::default())]);
        assert!(outages(&ledgers, &mut departed, start + hours(2)).is_empty());
        assert!(departed.is_empty());
    }

    #[test]
    fn held_services_are_split_by_maintenance_and_silence() {
        let until = SystemTime::UNIX_EPOCH + hours(500_000);
        let holds = BTreeMap::from([
            (
                "mpesa".to_string(),
                vec![Hold::Maintenance {
                    reason: "upgrade".to_string(),
                    until,
                }],
            ),
            (
                "sms".to_string(),
                vec![
                    Hold::Dependency {
                        upstream: "mpesa".to_string(),
                    },
                    Hold::Silenced {
                        id: "s1".to_string(),
                        comment: "known".to_string(),
                        until,
                    },
                ],
            ),
            ("email".to_string(), vec![Hold::CheckingConnectivity]),
        ]);
        let held = held_services(&holds);
        assert_eq!(held.maintenance.into_iter().collect::<Vec<_>>(), ["mpesa"]);
        assert_eq!(held.silenced.into_iter().collect::<Vec<_>>(), ["sms"]);
    }
}
