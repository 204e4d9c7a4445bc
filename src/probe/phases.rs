//! Where a check's time goes: DNS (a resolver that times itself), connect and TLS (a layer
//! around reqwest's connector, split where the handshake begins — see `tls`), first byte and
//! body (timed by the sender). Each part reports into the run's observation slot; a reused connection reports
//! no DNS and no connect.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::observed;

/// The phases of one HTTP check (`lastCheck.phases`, in milliseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Resolving the host name (0: an address, or a reused connection).
    pub dns: Duration,
    /// Opening the TCP connection (0: reused).
    pub connect: Duration,
    /// The TLS handshake, for HTTPS (0: plain HTTP, or reused).
    pub tls: Duration,
    /// From the request sent to the answer's headers: the server's time.
    pub first_byte: Duration,
    /// Reading the answer's body.
    pub body: Duration,
}

impl Phases {
    /// The phases' names, in order, as the metric labels them.
    pub const LABELS: [&'static str; 5] = ["dns", "connect", "tls", "first_byte", "body"];

    /// Each phase's duration, in the order of [`LABELS`](Self::LABELS).
    pub fn durations(&self) -> [Duration; 5] {
        [self.dns, self.connect, self.tls, self.first_byte, self.body]
    }

    /// `dns 2, connect 40, tls 310, first byte 1100, body 3` (milliseconds), for log lines.
    pub fn words(&self) -> String {
        format!(
            "dns {}, connect {}, tls {}, first byte {}, body {}",
            self.dns.as_millis(),
            self.connect.as_millis(),
            self.tls.as_millis(),
            self.first_byte.as_millis(),
            self.body.as_millis()
        )
    }
}

impl Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Phases", 5)?;
        let ms = |duration: Duration| crate::observe::log_ms(duration.as_secs_f64() * 1000.0);
        out.serialize_field("dnsMs", &ms(self.dns))?;
        out.serialize_field("connectMs", &ms(self.connect))?;
        out.serialize_field("tlsMs", &ms(self.tls))?;
        out.serialize_field("firstByteMs", &ms(self.first_byte))?;
        out.serialize_field("bodyMs", &ms(self.body))?;
        out.end()
    }
}

/// The system resolver (getaddrinfo off the runtime, as reqwest's own), timed.
#[derive(Debug, Default)]
pub(crate) struct TimedResolver;

impl reqwest::dns::Resolve for TimedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let started = Instant::now();
            let addresses = tokio::net::lookup_host((name.as_str(), 0)).await?;
            observed::dns(started.elapsed());
            let addresses: Vec<_> = addresses.collect();
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Times every new connection reqwest opens.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimedConnect;

impl<S> tower_layer::Layer<S> for TimedConnect {
    type Service = TimedConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimedConnector(inner)
    }
}

/// reqwest's connector, timed.
#[derive(Clone, Debug)]
pub(crate) struct TimedConnector<S>(S);

impl<S, R> tower_service::Service<R> for TimedConnector<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.0.call(request);
        Box::pin(async move {
            let started = Instant::now();
            let connected = connecting.await;
            observed::connected(started);
            connected
        })
    }
}
