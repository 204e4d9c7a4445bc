//! What a check saw on the way besides its verdict — the HTTP status of the last answer, the
//! server's certificate —
//! collected by the code that sees it (the HTTP sender) without threading it through every
//! preset's judge: a task-local slot that [`Probe::run_observed`](super::Probe::run_observed)
//! opens around one run.

use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;

use tokio::time::Instant;

use super::CertificateInfo;
use super::phases::Phases;

/// What one run of a check observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The status of the last HTTP answer, if one came.
    pub http_status: Option<u16>,
    /// The certificate the server presented, for HTTPS.
    pub certificate: Option<CertificateInfo>,
    /// Where an HTTP check's time went.
    pub phases: Option<Phases>,
    /// Time spent resolving and connecting in this run (the connector's time includes the
    /// resolver's); the sender turns them into phases.
    pub(crate) dns: Duration,
    pub(crate) connect_total: Duration,
    /// The TLS handshakes' share of `connect_total`.
    pub(crate) tls: Duration,
    /// When the handshake of the connection being opened began.
    pub(crate) tls_started: Option<Instant>,
}

tokio::task_local! {
    static OBSERVED: Arc<Mutex<Observed>>;
}

/// Runs `work` with a fresh slot; returns its output and what it observed.
pub(crate) async fn observing<T>(work: impl Future<Output = T>) -> (T, Observed) {
    let slot = Arc::new(Mutex::new(Observed::default()));
    let output = OBSERVED.scope(Arc::clone(&slot), work).await;
    let observed = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
    (output, observed)
}

/// Records an HTTP answer's status (nothing outside [`observing`]).
pub(crate) fn http_status(status: u16) {
    let _ = OBSERVED.try_with(|slot| {
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .http_status = Some(status);
    });
}

/// Records the certificate an HTTPS server presented.
pub(crate) fn certificate(info: CertificateInfo) {
    let _ = OBSERVED.try_with(|slot| {
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .certificate = Some(info);
    });
}

fn with(update: impl FnOnce(&mut Observed)) {
    let _ =
        OBSERVED.try_with(|slot| update(&mut slot.lock().unwrap_or_else(PoisonError::into_inner)));
}

/// Records a host-name lookup's time.
pub(crate) fn dns(took: Duration) {
    with(|observed| observed.dns += took);
}

/// Records that a TLS handshake begins (the TCP connection is up).
pub(crate) fn tls_started() {
    with(|observed| observed.tls_started = Some(Instant::now()));
}

/// Records a new connection opened since `started` (its lookup and handshake included).
pub(crate) fn connected(started: Instant) {
    with(|observed| {
        observed.connect_total += started.elapsed();
        if let Some(handshake) = observed.tls_started.take() {
            observed.tls += handshake.elapsed();
        }
    });
}

/// Records an HTTP exchange: from send to headers, and the body; the connection's share of the
/// first comes from what the resolver and connector recorded.
pub(crate) fn exchange(until_headers: Duration, body: Duration) {
    with(|observed| {
        let connect_total = observed.connect_total.max(observed.dns);
        observed.phases = Some(Phases {
            dns: observed.dns,
            connect: connect_total
                .saturating_sub(observed.dns)
                .saturating_sub(observed.tls),
            tls: observed.tls,
            first_byte: until_headers.saturating_sub(connect_total),
            body,
        });
        observed.dns = Duration::ZERO;
        observed.connect_total = Duration::ZERO;
        observed.tls = Duration::ZERO;
    });
}
