//! Maintenance windows (`[[maintenance]]`): when, for which services, and why pages are held.
//! Which windows are open at a moment, and when that next changes, is answered here from the
//! wall clock the windows are written in.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// The longest a maintenance window may last.
pub const MAX_MAINTENANCE: Duration = Duration::from_secs(7 * 86_400);

/// One `[[maintenance]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceWindow {
    /// The services it covers; `None`: every service.
    pub services: Option<Vec<String>>,
    /// When it is open.
    pub when: WindowTimes,
    /// Why, as announced (shown in the API, on the status page and in logs).
    pub reason: String,
}

/// When a window is open.
#[derive(Clone, Debug)]
pub enum WindowTimes {
    /// Every time a cron schedule (UTC, seconds first) fires, for `duration`.
    Recurring {
        /// The expression as written.
        expression: String,
        /// The parsed schedule.
        schedule: Box<cron::Schedule>,
        /// How long each opening lasts.
        duration: Duration,
    },
    /// Once, from `start` until `end`.
    Once {
        /// Its start.
        start: SystemTime,
        /// Its end.
        end: SystemTime,
    },
}

impl PartialEq for WindowTimes {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                WindowTimes::Recurring {
                    expression: a,
                    duration: x,
                    ..
                },
                WindowTimes::Recurring {
                    expression: b,
                    duration: y,
                    ..
                },
            ) => a == b && x == y,
            (WindowTimes::Once { start: a, end: x }, WindowTimes::Once { start: b, end: y }) => {
                a == b && x == y
            }
            _ => false,
        }
    }
}

impl MaintenanceWindow {
    /// Whether it covers `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|services| services.iter().any(|name| name == service))
    }

    /// The end of the opening `now` is in, if it is open at `now`.
    pub fn open_until(&self, now: SystemTime) -> Option<SystemTime> {
        match &self.when {
            WindowTimes::Once { start, end } => (*start <= now && now < *end).then_some(*end),
            WindowTimes::Recurring {
                schedule, duration, ..
            } => {
                // The last firing at or before `now` that is still within its duration: look
                // from `now - duration` onwards.
                let from = now.checked_sub(*duration)?;
                let from = DateTime::<Utc>::from(from) - chrono::Duration::milliseconds(1);
                let now_utc = DateTime::<Utc>::from(now);
                schedule
                    .after(&from)
                    .take_while(|fired| *fired <= now_utc)
                    .map(|fired| SystemTime::from(fired) + *duration)
                    .filter(|end| *end > now)
                    .max()
            }
        }
    }

    /// The next moment after `now` at which it opens or closes (for timers).
    pub fn next_change(&self, now: SystemTime) -> Option<SystemTime> {
        if let Some(end) = self.open_until(now) {
            return Some(end);
        }
        match &self.when {
            WindowTimes::Once { start, .. } => (*start > now).then_some(*start),
            WindowTimes::Recurring { schedule, .. } => schedule
                .after(&DateTime::<Utc>::from(now))
                .next()
                .map(SystemTime::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    fn at(text: &str) -> SystemTime {
        SystemTime::from(DateTime::parse_from_rfc3339(text).unwrap())
    }

    fn nightly() -> MaintenanceWindow {
        MaintenanceWindow {
            services: Some(vec!["mpesa".into()]),
            when: WindowTimes::Recurring {
                expression: "0 0 22 * * *".into(),
                schedule: Box::new(cron::Schedule::from_str("0 0 22 * * *").unwrap()),
                duration: Duration::from_secs(2 * 3600),
            },
            reason: "M-Pesa maintenance".into(),
        }
    }

    #[test]
    fn a_recurring_window_is_open_from_each_firing_for_its_duration() {
        let window = nightly();
        assert_eq!(window.open_until(at("2026-12-01T21:59:59Z")), None);
        assert_eq!(
            window.open_until(at("2026-12-01T22:00:00Z")),
            Some(at("2026-12-02T00:00:00Z"))
        );
        assert_eq!(
            window.open_until(at("2026-12-01T23:59:59Z")),
            Some(at("2026-12-02T00:00:00Z"))
        );
        assert_eq!(window.open_until(at("2026-12-02T00:00:00Z")), None);
        assert_eq!(
            window.next_change(at("2026-12-01T12:00:00Z")),
            Some(at("2026-12-01T22:00:00Z"))
        );
        assert_eq!(
            window.next_change(at("2026-12-01T23:00:00Z")),
            Some(at("2026-12-02T00:00:00Z"))
        );
        assert!(window.covers("mpesa") && !window.covers("kcb"));
    }

    #[test]
    fn a_one_off_window_is_open_from_its_start_until_its_end() {
        let window = MaintenanceWindow {
            services: None,
            when: WindowTimes::Once {
                start: at("2026-12-01T22:00:00Z"),
                end: at("2026-12-01T23:00:00Z"),
            },
            reason: String::new(),
        };
        assert_eq!(window.open_until(at("2026-12-01T21:00:00Z")), None);
        assert_eq!(
            window.next_change(at("2026-12-01T21:00:00Z")),
            Some(at("2026-12-01T22:00:00Z"))
        );
        assert_eq!(
            window.open_until(at("2026-12-01T22:30:00Z")),
            Some(at("2026-12-01T23:00:00Z"))
        );
        assert_eq!(window.next_change(at("2026-12-01T23:00:00Z")), None);
        assert!(window.covers("anything"));
    }
}
