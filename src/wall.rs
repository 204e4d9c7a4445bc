//! Wall-clock time through one door: reading it, and writing it as RFC 3339 (UTC,
//! milliseconds), the form every JSON answer, notification and state file uses. Decisions
//! never use wall time; tokio's monotonic clock makes them.

use std::time::{Duration, SystemTime};

pub(crate) use crate::breaker::{rfc3339, serde_rfc3339};

/// The time now.
pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A span of time in words for people: `45s`, `4m 12s`, `3h 5m`, `2d 4h`.
pub(crate) fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes, rest) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{rest}s"),
        (0, 0, _) => format!("{minutes}m {rest}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (252, "4m 12s"),
            (11_100, "3h 5m"),
            (187_200, "2d 4h"),
        ];
        for (seconds, words) in cases {
            assert_eq!(span(Duration::from_secs(seconds)), words);
        }
    }

    #[test]
    fn unix_times_never_panic() {
        assert_eq!(
            unix_millis(SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
            0
        );
        assert_eq!(
            unix_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(1500)),
            1.5
        );
    }
}
