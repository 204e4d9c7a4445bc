//! The errors a protected call returns, worded as the seed words them, and their JSON forms
//! (`circuitBreakerOpen: true`, `timeout: true`).

use std::error::Error;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeMap, Serializer};
use tokio::time::Instant;

use super::name::ServiceName;
use super::state::State;
use super::wall_clock::rfc3339;

/// The breaker rejected the call without running it.
///
/// Made on every rejection, so it is small and cheap: an inline copy of the name and the end
/// of the open period, worked out when the breaker opened.
#[derive(Clone, Debug)]
pub struct OpenError {
    pub(crate) service: ServiceName,
    pub(crate) state: State,
    /// End of the open period on tokio's clock; `None` when unknown.
    pub(crate) next_attempt: Option<Instant>,
    /// The same moment on the wall clock, in nanoseconds since the Unix epoch.
    pub(crate) next_attempt_unix_nanos: u64,
}

impl OpenError {
    /// The breaker's name.
    pub fn service(&self) -> &str {
        self.service.as_str()
    }

    /// The state that rejected the call: open, forced open, or half-open with every trial
    /// slot taken.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the breaker lets the next trial call through; `None` while forced open or while
    /// half-open (a trial call decides).
    pub fn next_attempt(&self) -> Option<SystemTime> {
        let since_epoch = Duration::from_nanos(self.next_attempt_unix_nanos);
        self.next_attempt
            .map(|_| SystemTime::UNIX_EPOCH + since_epoch)
    }

    /// The same moment on tokio's clock, for code that wants to sleep until then.
    pub fn next_attempt_instant(&self) -> Option<Instant> {
        self.next_attempt
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::HalfOpen => "HALF_OPEN",
            _ => "OPEN",
        };
        write!(f, "Circuit breaker {} is {state}", self.service)
    }
}

impl Error for OpenError {}

impl Serialize for OpenError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("message", &self.to_string())?;
        map.serialize_entry("circuitBreakerOpen", &true)?;
        map.serialize_entry("service", self.service())?;
        map.serialize_entry("state", &self.state)?;
        if let Some(next) = self.next_attempt() {
            map.serialize_entry("nextAttempt", &rfc3339(next))?;
        }
        map.end()
    }
}

/// The call ran past the breaker's timeout and was cancelled.
#[derive(Clone, Debug)]
pub struct TimeoutError {
    pub(crate) service: ServiceName,
    pub(crate) timeout: Duration,
}

impl TimeoutError {
    /// The breaker's name.
    pub fn service(&self) -> &str {
        self.service.as_str()
    }

    /// The timeout that the call exceeded.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Circuit breaker {} timeout after {}ms",
            self.service,
            self.timeout.as_millis()
        )
    }
}

impl Error for TimeoutError {}

impl Serialize for TimeoutError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("message", &self.to_string())?;
        map.serialize_entry("timeout", &true)?;
        map.serialize_entry("service", self.service())?;
        map.serialize_entry(
            "timeoutMs",
            &u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        )?;
        map.end()
    }
}

/// What a call through a breaker can fail with: the breaker's own two errors, or the inner
/// operation's error, passed through untouched.
#[derive(Clone, Debug)]
pub enum BreakerError<E> {
    /// Rejected without running (`Circuit breaker mpesa is OPEN`).
    Open(OpenError),
    /// Cancelled at the timeout (`Circuit breaker mpesa timeout after 30000ms`).
    Timeout(TimeoutError),
    /// The operation's own error.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The operation's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Inner(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the breaker rejected the call without running it.
    pub fn is_open(&self) -> bool {
        matches!(self, BreakerError::Open(_))
    }

    /// Whether the call was cancelled at the timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, BreakerError::Timeout(_))
    }
}

impl<E> From<OpenError> for BreakerError<E> {
    fn from(error: OpenError) -> Self {
        BreakerError::Open(error)
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(error) => error.fmt(f),
            BreakerError::Timeout(error) => error.fmt(f),
            BreakerError::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Inner(error) => error.source(),
            _ => None,
        }
    }
}

/// The breaker's errors take the seed's JSON shape; an inner error becomes `{"message": ...}`.
impl<E: fmt::Display> Serialize for BreakerError<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BreakerError::Open(error) => error.serialize(serializer),
            BreakerError::Timeout(error) => error.serialize(serializer),
            BreakerError::Inner(error) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("message", &error.to_string())?;
                map.end()
            }
        }
    }
}
