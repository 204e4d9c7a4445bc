//! Every outgoing connection breakerd makes, built here from one TLS root store ([`Trust`]:
//! the platform's roots, read once, plus a service's or channel's `ca_file`): the reqwest
//! clients of the alert channels and the command line, the proxy's hyper client
//! ([`upstream`]), the TLS settings of the checks' own HTTP/1.1 connections, and the SMTP
//! transports of SMTP checks and the email channel. rustls with the ring provider throughout.

pub(crate) mod connection;
pub(crate) mod reason;
pub(crate) mod smtp;
mod tls;
pub(crate) mod upstream;

use std::sync::{Arc, Once};
use std::time::Duration;

use rustls::pki_types::CertificateDer;

pub use tls::Trust;
pub(crate) use tls::{Alpn, Sessions, client_config};

/// The `User-Agent` breakerd's own requests carry.
pub(crate) const USER_AGENT: &str = concat!("breakerd/", env!("CARGO_PKG_VERSION"));

/// Idle pooled connections the alert channels keep per host.
const ALERTS_IDLE_PER_HOST: usize = 32;

/// What breakerd sends with, built from one [`Trust`]: the alert channels' client and the
/// proxy's, and the roots checks and SMTP transports verify servers against. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Transport {
    trust: Trust,
    alerts: reqwest::Client,
    proxy: upstream::UpstreamClient,
    pool: ProxyPool,
}

/// How the proxy keeps idle upstream connections: for `idle_timeout` at most
/// (`server.proxy_pool_idle`), at most `idle_per_host` per upstream host (from the
/// descriptor budget, [`crate::budget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyPool {
    /// How long an idle upstream connection is kept.
    pub idle_timeout: Duration,
    /// Idle upstream connections kept per host; 0 keeps none.
    pub idle_per_host: usize,
}

impl Default for ProxyPool {
    /// 90 s and 32 per host, until the daemon's budget says otherwise.
    fn default() -> Self {
        Self {
            idle_timeout: crate::config::DEFAULT_PROXY_POOL_IDLE,
            idle_per_host: 32,
        }
    }
}

impl Transport {
    /// Reads the platform's roots and builds the shared clients. Reads files: call it once, at
    /// startup or off the async runtime.
    ///
    /// # Errors
    /// No usable platform root, or a client reqwest will not build.
    pub fn load() -> Result<Self, ClientError> {
        let trust = Trust::platform()?;
        let alerts = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(
                Arc::clone(trust.verifier()),
                Alpn::Any,
                Sessions::Full,
            )?)
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(ALERTS_IDLE_PER_HOST)
            // Alerts never follow a redirect elsewhere, and send no Referer.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()?;
        let pool = ProxyPool::default();
        let proxy = proxy_client(&trust, pool)?;
        Ok(Self {
            trust,
            alerts,
            proxy,
            pool,
        })
    }

    /// The same, the proxy keeping its idle connections as `pool` says (a new proxy client;
    /// connections pooled by the old one are not carried over).
    ///
    /// # Errors
    /// TLS settings rustls will not take.
    pub fn with_proxy_pool(&self, pool: ProxyPool) -> Result<Self, ClientError> {
        Ok(Self {
            proxy: proxy_client(&self.trust, pool)?,
            pool,
            ..self.clone()
        })
    }

    /// The same, trusting `roots` (a service's `ca_file`) as well: a proxy client of its own,
    /// the alert channels' shared. Reads nothing.
    ///
    /// # Errors
    /// A certificate rustls will not take as a root.
    pub fn trusting(&self, roots: &[CertificateDer<'static>]) -> Result<Self, ClientError> {
        let trust = self.trust.with_roots(roots)?;
        Ok(Self {
            proxy: proxy_client(&trust, self.pool)?,
            trust,
            alerts: self.alerts.clone(),
            pool: self.pool,
        })
    }

    /// The roots servers are verified against.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// What alert channels send with: keeps its connections, follows no redirect.
    pub(crate) fn alerts(&self) -> &reqwest::Client {
        &self.alerts
    }

    /// What the proxy forwards with: pooled, HTTP/1.1 or h2 as the upstream offers, redirects
    /// passed back to the caller, never followed.
    pub(crate) fn proxy(&self) -> &upstream::UpstreamClient {
        &self.proxy
    }
}

/// The proxy's client over `trust`, keeping idle connections as `pool` says.
fn proxy_client(trust: &Trust, pool: ProxyPool) -> Result<upstream::UpstreamClient, ClientError> {
    upstream::UpstreamClient::new(trust, pool)
}

/// A client for the command line (`breakerd health`): the platform's roots, `timeout` per
/// request. Reads files: not for the daemon's runtime.
///
/// # Errors
/// No usable platform root, or a client reqwest will not build.
pub fn command_line_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let trust = Trust::platform()?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(
            Arc::clone(trust.verifier()),
            Alpn::Any,
            Sessions::Resumed,
        )?)
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .build()?)
}

/// Why a client or the root store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The platform offers no root certificate rustls can use.
    #[error(
        "no trusted root certificate on this system (install the CA certificates, or set SSL_CERT_FILE)"
    )]
    NoPlatformRoots,
    /// The TLS settings (e.g. a trusted root rustls cannot use).
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    /// The verifier over the roots.
    #[error("TLS verifier: {0}")]
    Verifier(String),
    /// reqwest's own settings.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Installs rustls' ring provider as the process default, once (for anything that asks rustls
/// for the default; everything built here names ring itself).
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
