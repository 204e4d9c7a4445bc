//! Turns the breaker's monotonic `tokio::time::Instant`s into wall-clock times for display,
//! from one pair of readings taken when the breaker was built; decisions never use wall time.

use std::time::SystemTime;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    instant: Instant,
    wall: SystemTime,
}

impl WallClock {
    pub(crate) fn new() -> Self {
        Self {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The instant `nanos` nanoseconds after the origin.
    pub(crate) fn at_offset(&self, nanos: u64) -> Instant {
        self.instant + std::time::Duration::from_nanos(nanos)
    }

    /// The nanoseconds from the origin to `at` (0 before it, saturating far after it).
    pub(crate) fn offset_of(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.instant).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The wall-clock time of `at`. On a paused tokio clock this moves with the paused clock.
    pub(crate) fn wall_time(&self, at: Instant) -> SystemTime {
        if at >= self.instant {
            self.wall + (at - self.instant)
        } else {
            self.wall - (self.instant - at)
        }
    }
}

/// Formats a wall-clock time as RFC 3339 in UTC with milliseconds, the form JSON answers use.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Serde adapters for wall-clock times written as RFC 3339 (read back too, for state kept on
/// disk).
pub(crate) mod serde_rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::rfc3339(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }

    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            time: &Option<SystemTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => serializer.serialize_str(&super::super::rfc3339(*time)),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
            text.map(|text| humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_moves_with_the_paused_clock() {
        let clock = WallClock::new();
        let start = clock.wall_time(Instant::now());
        tokio::time::advance(Duration::from_secs(90)).await;
        let later = clock.wall_time(Instant::now());
        assert_eq!(
            later.duration_since(start).ok(),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn rfc3339_has_millis_and_utc() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_705_314_600_250);
        assert_eq!(rfc3339(time), "2024-01-15T10:30:00.250Z");
    }
}
