//! The descriptor budget: at start breakerd raises its open-file limit and splits it between
//! what it must always have (its own files, each service's check, the alert channels, the
//! connectivity guard) and what clients can make it open (API connections, proxy connections,
//! the proxy's upstream connections in flight and idle), so no burst can take the descriptors
//! a check or a page needs.

use std::fmt;

/// Descriptors kept for the process itself: its own files, the state writer, the outbox, DNS.
pub const BASE_RESERVE: u64 = 128;
/// Descriptors kept per service: a check's connection and a kept one.
pub const RESERVE_PER_SERVICE: u64 = 2;
/// Descriptors kept per alert channel: a channel delivers one page at a time, over a kept
/// connection (and, while it is replaced, a new one).
pub const RESERVE_PER_CHANNEL: u64 = 2;
/// Descriptors kept per connectivity target (one TCP connection while it is tried).
pub const RESERVE_PER_TARGET: u64 = 1;
/// The fewest inbound connections a listener serves, whatever the descriptor limit.
pub const MIN_CONNECTIONS: usize = 16;
/// The fewest upstream calls the proxy makes at once, whatever the descriptor limit.
pub const MIN_UPSTREAM_IN_FLIGHT: usize = 8;
/// The most idle upstream connections the proxy keeps per upstream host.
pub const MAX_IDLE_PER_HOST: usize = 256;

/// What the daemon is about to run, as the budget needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    /// `server.max_connections`: the most inbound connections a listener is asked to serve.
    pub wanted: usize,
    /// Services (each has a check).
    pub services: usize,
    /// Alert channels.
    pub channels: usize,
    /// Connectivity targets.
    pub targets: usize,
    /// With the proxy on: the services with an `upstream` (each is at most one upstream host
    /// of one client pool, since the proxy follows no redirect). `None`: the proxy is off.
    pub proxy_hosts: Option<usize>,
}

/// How the descriptors are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The soft open-file limit, when the system tells it.
    pub descriptors: Option<u64>,
    /// Kept for the process, the checks, the alert channels and the connectivity guard.
    pub reserved: u64,
    /// Inbound connections the API listener serves at once.
    pub api_connections: usize,
    /// The proxy's share, when it runs.
    pub proxy: Option<ProxyBudget>,
}

/// The proxy's share of the descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyBudget {
    /// Inbound connections the proxy listener serves at once.
    pub connections: usize,
    /// Upstream calls forwarded at once; one more is answered 503 (`capacity`).
    pub upstream_in_flight: usize,
    /// Idle upstream connections kept per upstream host (0: none kept).
    pub idle_per_host: usize,
    /// Upstream hosts counted (services with an `upstream`, at least 1).
    pub hosts: usize,
}

impl ProxyBudget {
    /// The most descriptors the proxy can hold: inbound, in flight and idle upstream.
    pub fn most(&self) -> u64 {
        let idle = (self.idle_per_host as u64).saturating_mul(self.hosts as u64);
        (self.connections as u64)
            .saturating_add(self.upstream_in_flight as u64)
            .saturating_add(idle)
    }
}

impl Budget {
    /// Splits `descriptors` (the soft limit; `None` where the system has none to tell) for
    /// `demand`. Without the proxy, the API listener gets what is left after the reserve; with
    /// it, the API listener, the proxy's inbound connections and the proxy's upstream
    /// connections (half in flight, half idle, the idle half shared by the upstream hosts)
    /// get a third each. Every part is capped by `demand.wanted` and floored at a small
    /// minimum, so a tiny limit still serves.
    pub fn split(descriptors: Option<u64>, demand: Demand) -> Self {
        let reserved = BASE_RESERVE
            .saturating_add(RESERVE_PER_SERVICE.saturating_mul(demand.services as u64))
            .saturating_add(RESERVE_PER_CHANNEL.saturating_mul(demand.channels as u64))
            .saturating_add(RESERVE_PER_TARGET.saturating_mul(demand.targets as u64));
        let room = descriptors.map(|limit| limit.saturating_sub(reserved));
        let wanted = demand.wanted;
        let Some(hosts) = demand.proxy_hosts else {
            return Self {
                descriptors,
                reserved,
                api_connections: within(wanted, room).max(MIN_CONNECTIONS),
                proxy: None,
            };
        };
        let third = room.map(|room| room / 3);
        let connections = within(wanted, third).max(MIN_CONNECTIONS);
        let hosts = hosts.max(1);
        let (upstream_in_flight, idle_per_host) = match third {
            Some(share) => {
                let in_flight = within(connections, Some(share / 2)).max(MIN_UPSTREAM_IN_FLIGHT);
                let idle = share.saturating_sub(in_flight as u64);
                let per_host = usize::try_from(idle / hosts as u64).unwrap_or(usize::MAX);
                (in_flight, per_host.min(MAX_IDLE_PER_HOST))
            }
            None => (connections, MAX_IDLE_PER_HOST),
        };
        Self {
            descriptors,
            reserved,
            api_connections: within(wanted, third).max(MIN_CONNECTIONS),
            proxy: Some(ProxyBudget {
                connections,
                upstream_in_flight,
                idle_per_host,
                hosts,
            }),
        }
    }
}

/// `wanted`, or `room` when that is smaller.
fn within(wanted: usize, room: Option<u64>) -> usize {
    match room {
        Some(room) => wanted.min(usize::try_from(room).unwrap_or(usize::MAX)),
        None => wanted,
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.descriptors {
            Some(limit) => write!(f, "open-file limit {limit}: ")?,
            None => write!(f, "no open-file limit known: ")?,
        }
        write!(
            f,
            "{} kept for checks, alerts and the process; {} API connections",
            self.reserved, self.api_connections
        )?;
        if let Some(proxy) = &self.proxy {
            write!(
                f,
                "; proxy: {} connections, {} upstream calls at once, {} idle upstream connections per host ({} hosts)",
                proxy.connections, proxy.upstream_in_flight, proxy.idle_per_host, proxy.hosts
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(wanted: usize, services: usize, proxy_hosts: Option<usize>) -> Demand {
        Demand {
            wanted,
            services,
            channels: 2,
            targets: 0,
            proxy_hosts,
        }
    }

    #[test]
    fn without_the_proxy_the_api_gets_what_the_reserve_leaves() {
        let reserve = 128 + 2 * 100 + 2 * 2;
        let budget = Budget::split(Some(1_024), demand(1_000, 100, None));
        assert_eq!(budget.reserved, reserve);
        assert_eq!(budget.api_connections, 1_024 - reserve as usize);
        assert_eq!(budget.proxy, None);
        let budget = Budget::split(Some(65_536), demand(512, 1_000, None));
        assert_eq!(budget.api_connections, 512);
        let budget = Budget::split(Some(1_024), demand(512, 1_000, None));
        assert_eq!(budget.api_connections, MIN_CONNECTIONS, "never below 16");
        assert_eq!(
            Budget::split(None, demand(512, 10, None)).api_connections,
            512
        );
    }

    #[test]
    fn the_proxy_never_holds_more_than_its_share() {
        // Five upstreams under `ulimit -n 1024`: the burst that once held ~800 idle.
        let budget = Budget::split(Some(1_024), demand(512, 5, Some(5)));
        let proxy = budget.proxy.expect("the proxy is on");
        let room = 1_024 - budget.reserved;
        assert!(budget.api_connections as u64 <= room / 3);
        assert!(proxy.most() <= room - budget.api_connections as u64);
        assert!(budget.reserved + budget.api_connections as u64 + proxy.most() <= 1_024);
        assert!(proxy.idle_per_host > 0 && proxy.idle_per_host < 256);
        assert!(proxy.upstream_in_flight < proxy.connections);
    }

    #[test]
    fn a_large_limit_keeps_the_configured_caps() {
        let budget = Budget::split(Some(65_536), demand(512, 5, Some(5)));
        let proxy = budget.proxy.expect("the proxy is on");
        assert_eq!(budget.api_connections, 512);
        assert_eq!(proxy.connections, 512);
        assert_eq!(proxy.upstream_in_flight, 512);
        assert_eq!(proxy.idle_per_host, MAX_IDLE_PER_HOST);
    }

    #[test]
    fn many_hosts_share_the_idle_half() {
        let budget = Budget::split(Some(4_096), demand(512, 2_000, Some(2_000)));
        let proxy = budget.proxy.expect("the proxy is on");
        assert_eq!(proxy.idle_per_host, 0, "too many hosts: nothing kept idle");
        assert!(proxy.upstream_in_flight >= MIN_UPSTREAM_IN_FLIGHT);
    }

    #[test]
    fn the_split_is_logged_in_one_line() {
        let line = Budget::split(Some(1_024), demand(512, 5, Some(5))).to_string();
        assert!(line.starts_with("open-file limit 1024: "), "{line}");
        assert!(
            line.contains("idle upstream connections per host"),
            "{line}"
        );
    }
}
