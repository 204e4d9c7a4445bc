//! The proxy's upstream client: hyper's pooled client over rustls directly, without reqwest's
//! per-request work (URL parsing and conversion, default headers, redirect policy, response
//! conversion). HTTP/1.1 or h2 as the upstream offers (ALPN), redirects passed back, never
//! followed; idle connections kept as [`ProxyPool`] says.

use std::sync::Arc;

use axum::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::tls::{Alpn, Sessions, client_config};
use super::{ClientError, ProxyPool, Trust};

/// A forwarded request, its body streamed from the client.
pub(crate) type UpstreamRequest = http::Request<Body>;

/// Why a forwarded request got no answer (connect, TLS, the exchange).
pub(crate) type UpstreamError = hyper_util::client::legacy::Error;

/// The proxy's client over one root store: a pool for each proxy thread (and one for any
/// other thread), so a request goes out on a connection its own thread drives
/// ([`crate::proxy_threads`]). Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub(crate) struct UpstreamClient {
    clients: Arc<[Client<HttpsConnector<HttpConnector>, Body>]>,
}

impl UpstreamClient {
    /// A client verifying servers against `trust`, keeping idle connections as `pool` says.
    pub(crate) fn new(trust: &Trust, pool: ProxyPool) -> Result<Self, ClientError> {
        let mut tls = client_config(Arc::clone(trust.verifier()), Alpn::Any, Sessions::Resumed)?;
        // The connector offers h2 and HTTP/1.1 itself, and refuses a config that names them.
        tls.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let threads = crate::proxy_threads::count();
        // The idle connections the budget allows, shared out among the pools.
        let idle_per_host = pool.idle_per_host.div_ceil(threads);
        let clients = (0..=threads)
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(pool.idle_timeout)
                    .pool_max_idle_per_host(idle_per_host)
                    .build(connector.clone())
            })
            .collect();
        Ok(Self { clients })
    }

    /// Sends `request` (its URI absolute); the answer's head once it has arrived.
    pub(crate) fn send(
        &self,
        request: UpstreamRequest,
    ) -> hyper_util::client::legacy::ResponseFuture {
        // Never empty: there is always the pool of the threads that are not the proxy's.
        let pool = crate::proxy_threads::pool_index().min(self.clients.len().saturating_sub(1));
        self.clients[pool].request(request)
    }
}
