//! Failed bearer tokens: each counted by route (`breakerd_auth_failures_total`), logged at
//! most once a minute per client address with the count, and an address that fails
//! [`MAX_FAILURES`] times within a minute refused 429 for a minute on every token-guarded
//! route — whatever it presents meanwhile — while other addresses go on as before.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::Extensions;
use axum::http::request::Parts;
use tokio::time::Instant;
use tracing::warn;

use super::ApiError;
use crate::metrics::Metrics;

/// Failed tokens from one address within [`WINDOW`] that get it blocked.
pub(crate) const MAX_FAILURES: u32 = 20;
/// The window failures are counted in, and how often an address's failures are logged.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// How long a blocked address is answered 429.
pub(crate) const BLOCK: Duration = Duration::from_secs(60);
/// Addresses followed at once; past this, quiet ones are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

/// The key of addresses followed together once the table is full.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The key an address is followed under: an IPv4 address itself, an IPv6 address by its /64
/// (one host's whole prefix: rotating addresses within it does not reset the count).
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Who presented a token, and where.
#[derive(Clone, Debug)]
pub(crate) struct Presenter {
    /// The client's address (unknown where the server does not tell it).
    address: IpAddr,
    /// The route, as declared (`/api/v1/circuit-breakers/{serviceName}/outcomes`).
    route: String,
}

impl Presenter {
    /// The presenter of a request with these `extensions` (its address and matched route).
    pub(crate) fn of(extensions: &Extensions) -> Self {
        Self {
            address: extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
            route: extensions
                .get::<MatchedPath>()
                .map_or_else(|| "unknown".to_string(), |path| path.as_str().to_string()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Presenter {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// One address's recent failures.
#[derive(Debug)]
struct Record {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
    logged_at: Option<Instant>,
    /// Failures since the last log line.
    unlogged: u32,
}

impl Record {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            failures: 0,
            blocked_until: None,
            logged_at: None,
            unlogged: 0,
        }
    }

    fn blocked_at(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Whether it can be forgotten: nothing counted in the window, nothing blocked.
    fn quiet(&self, now: Instant) -> bool {
        now.duration_since(self.window_start) >= WINDOW && self.blocked_at(now).is_none()
    }
}

/// The failed tokens of every address.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    addresses: Mutex<HashMap<IpAddr, Record>>,
}

impl Throttle {
    /// Settles one request to a token-guarded route: `accepted` says whether its token was
    /// right. A wrong one is counted in `metrics`; an address over the limit is refused 429
    /// (`ApiError::TooManyFailures`) whatever it presented, and `wrong` is the refusal of a
    /// wrong token otherwise.
    pub(crate) fn settle(
        &self,
        presenter: &Presenter,
        accepted: bool,
        metrics: &Metrics,
        wrong: ApiError,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !accepted {
            metrics.auth_failed(&presenter.route);
        }
        let mut key = client_key(presenter.address);
        if !addresses.contains_key(&key) {
            if accepted {
                return Ok(());
            }
            if addresses.len() >= MAX_ADDRESSES {
                addresses.retain(|_, record| !record.quiet(now));
            }
            if addresses.len() >= MAX_ADDRESSES {
                // Every one of them is busy failing: the newcomers are followed together, as
                // one, so a full table never lets anyone guess unthrottled.
                key = OVERFLOW;
            }
            addresses.entry(key).or_insert_with(|| Record::new(now));
        }
        let Some(record) = addresses.get_mut(&key) else {
            return Err(wrong);
        };
        // The failure that reaches the limit is answered as any other; the next ones get 429.
        let blocked = record.blocked_at(now);
        if !accepted {
            fail(record, presenter, now);
        }
        if let Some(left) = blocked {
            return Err(ApiError::TooManyFailures {
                retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            });
        }
        if accepted { Ok(()) } else { Err(wrong) }
    }
}

/// Counts one failure of `record`'s address; blocks it at the limit; logs now and then.
fn fail(record: &mut Record, presenter: &Presenter, now: Instant) {
    if now.duration_since(record.window_start) >= WINDOW {
        record.window_start = now;
        record.failures = 0;
    }
    record.failures = record.failures.saturating_add(1);
    record.unlogged = record.unlogged.saturating_add(1);
    // At the limit or past it (failures may go on counting while it is blocked): blocked
    // again as soon as it is not.
    let blocks = record.failures >= MAX_FAILURES && record.blocked_at(now).is_none();
    if blocks {
        record.blocked_until = Some(now + BLOCK);
    }
    let due = record
        .logged_at
        .is_none_or(|at| now.duration_since(at) >= WINDOW);
    if due || blocks {
        let blocked = if blocks {
            format!(
                "; {MAX_FAILURES} within a minute: it is answered 429 on every token-guarded route for {} s",
                BLOCK.as_secs()
            )
        } else {
            String::new()
        };
        warn!(
            client = %presenter.address,
            route = %presenter.route,
            failures = record.unlogged,
            "wrong or missing bearer tokens from {} ({} since the last report){blocked}",
            presenter.address,
            record.unlogged
        );
        record.logged_at = Some(now);
        record.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(address: [u8; 4]) -> Presenter {
        Presenter {
            address: IpAddr::from(address),
            route: "/api/v1/circuit-breakers/{serviceName}/reset".into(),
        }
    }

    fn try_token(throttle: &Throttle, who: &Presenter, right: bool, metrics: &Metrics) -> u16 {
        match throttle.settle(who, right, metrics, ApiError::Unauthorized) {
            Ok(()) => 200,
            Err(ApiError::TooManyFailures { .. }) => 429,
            Err(_) => 401,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_failures_a_minute_block_that_address_for_a_minute_only() {
        let (throttle, metrics) = (Throttle::default(), Metrics::new());
        let (attacker, operator) = (from([10, 0, 0, 1]), from([10, 0, 0, 2]));
        let answers: Vec<u16> = (0..25)
            .map(|_| try_token(&throttle, &attacker, false, &metrics))
            .collect();
        assert_eq!(answers[..20], [401; 20]);
        assert_eq!(answers[20..], [429; 5]);
        assert_eq!(
            try_token(&throttle, &attacker, true, &metrics),
            429,
            "even the right token, while blocked"
        );
        assert_eq!(try_token(&throttle, &operator, true, &metrics), 200);
        let text = metrics.render_prometheus_text();
        assert!(
            text.contains(
                "breakerd_auth_failures_total{route=\"/api/v1/circuit-breakers/{serviceName}/reset\"} 25"
            ),
            "{text}"
        );
        tokio::time::advance(BLOCK).await;
        assert_eq!(try_token(&throttle, &attacker, true, &metrics), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_sent_at_a_block_s_end_never_buy_an_unthrottled_minute() {
        let (throttle, metrics) = (Throttle::default(), Metrics::new());
        let attacker = from([10, 0, 0, 4]);
        for _ in 0..MAX_FAILURES - 1 {
            try_token(&throttle, &attacker, false, &metrics);
        }
        tokio::time::advance(Duration::from_millis(59_900)).await;
        assert_eq!(
            try_token(&throttle, &attacker, false, &metrics),
            401,
            "the 20th"
        );
        // Just before the block ends, a new window already holds 20 failures.
        tokio::time::advance(Duration::from_millis(59_000)).await;
        for _ in 0..MAX_FAILURES {
            assert_eq!(try_token(&throttle, &attacker, false, &metrics), 429);
        }
        tokio::time::advance(Duration::from_millis(1_000)).await;
        // The block is over; the next failure, past the limit, blocks again at once.
        assert_eq!(try_token(&throttle, &attacker, false, &metrics), 401);
        assert_eq!(try_token(&throttle, &attacker, false, &metrics), 429);
        assert_eq!(try_token(&throttle, &attacker, true, &metrics), 429);
    }

    #[test]
    fn ipv6_clients_are_followed_by_their_prefix() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(one), client_key(other));
        assert_ne!(client_key(one), client_key(elsewhere));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_follows_the_newcomers_together() {
        let (throttle, metrics) = (Throttle::default(), Metrics::new());
        for index in 0..MAX_ADDRESSES {
            let bytes = u32::try_from(index).unwrap().to_be_bytes();
            try_token(
                &throttle,
                &from([11, bytes[1], bytes[2], bytes[3]]),
                false,
                &metrics,
            );
        }
        let answers: Vec<u16> = (0..25u8)
            .map(|index| try_token(&throttle, &from([12, 0, 0, index]), false, &metrics))
            .collect();
        assert_eq!(answers[..20], [401; 20]);
        assert_eq!(answers[20..], [429; 5], "throttled as one, not let through");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_spread_over_minutes_never_block() {
        let (throttle, metrics) = (Throttle::default(), Metrics::new());
        let someone = from([10, 0, 0, 3]);
        for _ in 0..3 {
            for _ in 0..MAX_FAILURES - 1 {
                assert_eq!(try_token(&throttle, &someone, false, &metrics), 401);
            }
            tokio::time::advance(WINDOW).await;
        }
        assert_eq!(try_token(&throttle, &someone, true, &metrics), 200);
    }
}
