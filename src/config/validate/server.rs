//! `[server]`: where the API and the proxy listen, the admin and report tokens, timeouts,
//! connection limits, the shard and the check threads.

use std::net::SocketAddr;

use toml::Spanned;

use super::Validator;
use crate::config::listen::resolve_listen;
use crate::config::raw::RawServer;
use crate::config::secret::{ExpandError, expand};
use crate::config::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PROXY_POOL_IDLE, DEFAULT_SHUTDOWN_GRACE, DEFAULT_SLOW_CALL, ServerConfig,
};
use crate::credential::Secret;

impl Validator<'_> {
    pub(super) fn server(&mut self, raw: Option<Spanned<RawServer>>) -> ServerConfig {
        let raw = raw.map(Spanned::into_inner).unwrap_or_default();
        let listen = raw
            .listen
            .as_ref()
            .and_then(|listen| self.listen_address("server.listen", listen))
            .unwrap_or_else(fallback_listen);
        // An unset or empty token switches the admin routes off; that is not an error.
        let admin_token = raw.admin_token.as_ref().and_then(|token| {
            match expand(token.get_ref(), self.environment) {
                Ok(value) if !value.is_empty() => {
                    self.strong_token("server.admin_token", token.span(), Secret::new(value))
                }
                Ok(_) | Err(ExpandError::Unset(_)) => None,
                Err(error) => {
                    self.problems
                        .at(token.span(), format!("server.admin_token: {error}"));
                    None
                }
            }
        });
        ServerConfig {
            listen,
            admin_token,
            slow_call: self.duration(
                "server.slow_call",
                raw.slow_call.as_ref(),
                DEFAULT_SLOW_CALL,
                true,
            ),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_ref(),
                DEFAULT_SHUTDOWN_GRACE,
                false,
            ),
            max_connections: self.count(
                "server.max_connections",
                raw.max_connections.as_ref(),
                DEFAULT_MAX_CONNECTIONS,
            ),
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                raw.header_read_timeout.as_ref(),
                DEFAULT_HEADER_READ_TIMEOUT,
                false,
            ),
            idle_timeout: self.duration(
                "server.idle_timeout",
                raw.idle_timeout.as_ref(),
                DEFAULT_IDLE_TIMEOUT,
                false,
            ),
            proxy_listen: raw.proxy_listen.as_ref().and_then(|proxy| {
                let address = self.listen_address("server.proxy_listen", proxy)?;
                if clashes(address, listen) {
                    self.problems.at(
                        proxy.span(),
                        format!(
                            "server.proxy_listen {address} is where server.listen ({listen}) serves the API: give the proxy its own port, e.g. 127.0.0.1:9478"
                        ),
                    );
                    return None;
                }
                Some(address)
            }),
            proxy_pool_idle: self.duration(
                "server.proxy_pool_idle",
                raw.proxy_pool_idle.as_ref(),
                DEFAULT_PROXY_POOL_IDLE,
                false,
            ),
            report_token: raw
                .report_token
                .as_ref()
                .and_then(|token| {
                    let secret = self.needed_secret(
                        "server.report_token",
                        token,
                        "applications report outcomes with it",
                    )?;
                    self.strong_token("server.report_token", token.span(), secret)
                }),
            connectivity: Vec::new(),
            shard: raw.shard.as_ref().and_then(|shard| {
                shard
                    .get_ref()
                    .parse()
                    .map_err(|error: crate::config::ShardError| {
                        self.problems.at(shard.span(), format!("server.{error}"));
                    })
                    .ok()
            }),
            check_threads: self.count("server.check_threads", raw.check_threads.as_ref(), 1),
        }
    }

    pub(super) fn listen_address(
        &mut self,
        key: &str,
        listen: &Spanned<String>,
    ) -> Option<SocketAddr> {
        resolve_listen(listen.get_ref())
            .map_err(|error| self.problems.at(listen.span(), format!("{key} {error}")))
            .ok()
    }
}

fn fallback_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9477))
}

/// Whether two listening addresses would take the same socket: the same port (not 0, which
/// picks a free one) on the same address or where either is every address.
fn clashes(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
