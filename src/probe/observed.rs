//! What a check saw on the way besides its verdict — the HTTP status of the last answer, the
//! server's certificate —
//! collected by the code that sees it (the HTTP sender) without threading it through every
//! preset's judge: a task-local slot that [`Probe::run_observed`](super::Probe::run_observed)
//! opens around one run.

use std::sync::{Arc, Mutex, PoisonError};

use super::CertificateInfo;
use crate::outcome::Phases;

/// What one run of a check observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The status of the last HTTP answer, if one came.
    pub http_status: Option<u16>,
    /// The certificate the server presented, for HTTPS.
    pub certificate: Option<CertificateInfo>,
    /// Where an HTTP check's time went.
    pub phases: Option<Phases>,
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

/// Records where an HTTP check's time went.
pub(crate) fn phases(phases: Phases) {
    with(|observed| observed.phases = Some(phases));
}
