//! Why a service's pages are held right now: an open maintenance window, a silence, or an
//! upstream (`depends_on`) in an outage. Pure: handed the windows, the silences, which
//! services are in an outage and the time, it answers per service and says when the answer
//! next changes by the clock. The alert stage publishes the answer for the API, the status
//! page and `/metrics`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::silences::Silence;
use crate::config::MaintenanceWindow;
use crate::wall::serde_rfc3339;

/// One reason a service's pages are held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Hold {
    /// A `[[maintenance]]` window is open.
    #[serde(rename_all = "camelCase")]
    Maintenance {
        /// Its reason.
        reason: String,
        /// When it closes.
        #[serde(with = "serde_rfc3339")]
        until: SystemTime,
    },
    /// A silence made through the API.
    #[serde(rename_all = "camelCase")]
    Silenced {
        /// The silence's id.
        id: String,
        /// Its comment.
        comment: String,
        /// When it ends.
        #[serde(with = "serde_rfc3339")]
        until: SystemTime,
    },
    /// A service it depends on is in an outage.
    #[serde(rename_all = "camelCase")]
    Dependency {
        /// That service.
        upstream: String,
    },
    /// breakerd is offline: no connectivity target answers.
    #[serde(rename_all = "camelCase")]
    Offline {
        /// Since when.
        #[serde(with = "serde_rfc3339")]
        since: SystemTime,
    },
    /// Its outage has just started; the connectivity guard looks whether breakerd is offline
    /// before it pages (a few seconds at most).
    CheckingConnectivity,
}

/// breakerd is offline: since when, and what the guard could not reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offline {
    /// Since when.
    #[serde(with = "serde_rfc3339")]
    pub since: SystemTime,
    /// Each target and why it failed.
    pub failures: Vec<String>,
}

impl Hold {
    /// `maintenance`, `silenced`, `dependency`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::Maintenance { .. } => "maintenance",
            Hold::Silenced { .. } => "silenced",
            Hold::Dependency { .. } => "dependency",
            Hold::Offline { .. } => "offline",
            Hold::CheckingConnectivity => "checkingConnectivity",
        }
    }
}

/// What the stage publishes: every held service's holds, and the active silences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuietView {
    /// Services with at least one hold.
    pub holds: BTreeMap<String, Vec<Hold>>,
    /// Active silences, oldest first.
    pub silences: Vec<Silence>,
    /// Whether breakerd is offline (the connectivity guard).
    pub offline: Option<Offline>,
}

impl QuietView {
    /// The holds of `service` (none: its pages go out).
    pub fn of(&self, service: &str) -> &[Hold] {
        self.holds.get(service).map_or(&[], Vec::as_slice)
    }

    /// Whether a maintenance window covers `service` now.
    pub fn in_maintenance(&self, service: &str) -> bool {
        self.of(service)
            .iter()
            .any(|hold| matches!(hold, Hold::Maintenance { .. }))
    }

    /// Whether a silence covers `service` now.
    pub fn silenced(&self, service: &str) -> bool {
        self.of(service)
            .iter()
            .any(|hold| matches!(hold, Hold::Silenced { .. }))
    }
}

/// What decides holds.
pub(crate) struct Facts<'a> {
    windows: &'a [MaintenanceWindow],
    /// The windows open at `now`, each with when it closes: worked out once, not per service.
    open: Vec<(&'a MaintenanceWindow, SystemTime)>,
    silences: &'a [&'a Silence],
    /// Each service's upstreams.
    depends_on: &'a BTreeMap<String, Vec<String>>,
    /// Whether a service is in an outage now.
    in_outage: &'a dyn Fn(&str) -> bool,
    now: SystemTime,
}

impl<'a> Facts<'a> {
    /// The facts at `now`.
    pub(crate) fn new(
        windows: &'a [MaintenanceWindow],
        silences: &'a [&'a Silence],
        depends_on: &'a BTreeMap<String, Vec<String>>,
        in_outage: &'a dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Self {
        let open = windows
            .iter()
            .filter_map(|window| window.open_until(now).map(|until| (window, until)))
            .collect();
        Self {
            windows,
            open,
            silences,
            depends_on,
            in_outage,
            now,
        }
    }

    /// Every hold on `service` now (an operation's breaker, `mpesa/b2c`, has its service's).
    pub(crate) fn holds(&self, service: &str) -> Vec<Hold> {
        let service = crate::unit::service_of(service);
        let mut holds: Vec<Hold> = self
            .open
            .iter()
            .filter(|(window, _)| window.covers(service))
            .map(|(window, until)| Hold::Maintenance {
                reason: window.reason.clone(),
                until: *until,
            })
            .collect();
        holds.extend(
            self.silences
                .iter()
                .filter(|silence| silence.covers(service, self.now))
                .map(|silence| Hold::Silenced {
                    id: silence.id.clone(),
                    comment: silence.comment.clone(),
                    until: silence.until,
                }),
        );
        holds.extend(
            self.depends_on
                .get(service)
                .into_iter()
                .flatten()
                .filter(|upstream| (self.in_outage)(upstream))
                .map(|upstream| Hold::Dependency {
                    upstream: upstream.clone(),
                }),
        );
        holds
    }

    /// The next moment after `now` at which a window opens or closes or a silence ends.
    pub(crate) fn next_change(&self) -> Option<SystemTime> {
        let windows = self
            .windows
            .iter()
            .filter_map(|window| window.next_change(self.now));
        let silences = self.silences.iter().map(|silence| silence.until);
        windows.chain(silences).min()
    }
}

/// The services that name `service` in their `depends_on`.
pub(crate) fn dependants(depends_on: &BTreeMap<String, Vec<String>>, service: &str) -> Vec<String> {
    depends_on
        .iter()
        .filter(|(_, upstreams)| upstreams.iter().any(|name| name == service))
        .map(|(dependant, _)| dependant.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::WindowTimes;

    #[test]
    fn holds_name_every_reason_and_the_next_change_is_the_nearest_edge() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        let windows = [MaintenanceWindow {
            services: Some(vec!["mpesa".into()]),
            when: WindowTimes::Once {
                start: now - hour,
                end: now + hour,
            },
            reason: "M-Pesa maintenance".into(),
        }];
        let silence = Silence {
            id: "s-1".into(),
            services: vec!["mpesa".into(), "kcb".into()],
            created_at: now - hour,
            until: now + Duration::from_secs(600),
            comment: "ticket 4471".into(),
        };
        let depends_on = BTreeMap::from([("sms".to_string(), vec!["network".to_string()])]);
        let silences = [&silence];
        let in_outage = |service: &str| service == "network";
        let facts = Facts::new(&windows, &silences, &depends_on, &in_outage, now);
        let kinds = |service: &str| -> Vec<&'static str> {
            facts.holds(service).iter().map(Hold::kind).collect()
        };
        assert_eq!(kinds("mpesa"), ["maintenance", "silenced"]);
        assert_eq!(kinds("kcb"), ["silenced"]);
        assert_eq!(kinds("sms"), ["dependency"]);
        assert!(kinds("email").is_empty());
        assert_eq!(facts.next_change(), Some(now + Duration::from_secs(600)));
        assert_eq!(dependants(&depends_on, "network"), ["sms"]);
        assert!(dependants(&depends_on, "sms").is_empty());
    }
}
