//! Synthetic checks: one file per generic kind (HTTP, SMTP, TCP, DNS, heartbeat); the
//! providers' own checks live with their rules in `provider/`. Every check reports a bounded
//! failure reason and never one of its secrets.

pub(crate) mod certificate;
pub(crate) mod classify;
mod dns;
pub(crate) mod heartbeat;
pub(crate) mod http;
mod observed;
mod pool;
pub(crate) mod request;
mod smtp;
mod tcp;
mod tls;

use std::sync::Arc;

use crate::config::Check;

pub use crate::outcome::Phases;
pub use crate::outcome::{CallerKind, Cause, FailureReason, ProbeError, ProbeSuccess, Said};
pub(crate) use crate::transport::smtp::credential;
pub use crate::transport::{ClientError, install_crypto_provider};
pub use certificate::CertificateInfo;
pub use heartbeat::HeartbeatClock;
pub use http::HttpClient;
pub use observed::Observed;

/// A ready-to-run synthetic check.
#[derive(Clone, Debug)]
pub struct Probe {
    check: Check,
    client: HttpClient,
    /// The service's rules: how its answers are judged.
    judge: crate::provider::Judge,
    /// The beats of a heartbeat check, shared with the heartbeat route.
    heartbeat: Option<Arc<HeartbeatClock>>,
    /// An SMTP check's transport, built with the check (its TLS roots read no file then).
    smtp: Option<Arc<smtp::Built>>,
    /// Its secrets, in every form they are sent in: never in what it reports.
    redactor: crate::redact::Redactor,
}

impl Probe {
    /// The check for `check`, sending HTTP through `client`, its answers judged by `judge`.
    pub fn new(check: Check, client: HttpClient, judge: crate::provider::Judge) -> Self {
        let redactor = crate::redact::Redactor::of(&check);
        let heartbeat = match &check {
            Check::Heartbeat(heartbeat) => {
                Some(Arc::new(HeartbeatClock::new(heartbeat.state_file.clone())))
            }
            _ => None,
        };
        let smtp = match &check {
            Check::Smtp(smtp) => Some(Arc::new(crate::transport::smtp::transport(
                smtp,
                client.transport().trust(),
            ))),
            _ => None,
        };
        Self {
            check,
            client,
            judge,
            heartbeat,
            smtp,
            redactor,
        }
    }

    /// The beats of a heartbeat check (`None` for other kinds).
    pub fn heartbeat(&self) -> Option<&Arc<HeartbeatClock>> {
        self.heartbeat.as_ref()
    }

    /// Takes over `previous`'s beats when both are heartbeats kept in the same file (a reload
    /// that changed another key), so no beat is forgotten.
    pub fn keep_beats_of(&mut self, previous: &Probe) {
        if let (Check::Heartbeat(new), Check::Heartbeat(old), Some(clock)) =
            (&self.check, &previous.check, &previous.heartbeat)
        {
            if new.state_file == old.state_file {
                self.heartbeat = Some(Arc::clone(clock));
            }
        }
    }

    /// The preset or kind name.
    pub fn kind(&self) -> &'static str {
        self.check.kind()
    }

    /// Runs the check once. It has no timeout of its own: the breaker's timeout cancels it.
    /// What it reports never holds one of its secrets, whatever the provider answered.
    pub async fn run(&self) -> Result<ProbeSuccess, ProbeError> {
        match self.run_unredacted().await {
            Ok(mut success) => {
                success.note = success.note.map(|note| self.redactor.redact(&note));
                Ok(success)
            }
            Err(mut failure) => {
                failure.detail = self.redactor.redact(&failure.detail);
                if let Some(said) = &mut failure.said {
                    self.redactor.redact_said(said);
                }
                Err(failure)
            }
        }
    }

    /// Frees `failure`'s texts of this check's secrets and of `more` (those a proxied request
    /// carried), in every form they travel in.
    pub(crate) fn redact(&self, failure: &mut ProbeError, more: &[String]) {
        let extra = (!more.is_empty()).then(|| crate::redact::Redactor::of_values(more));
        for redactor in std::iter::once(&self.redactor).chain(extra.as_ref()) {
            failure.detail = redactor.redact(&failure.detail);
            if let Some(said) = &mut failure.said {
                redactor.redact_said(said);
            }
        }
    }

    /// `text` without this check's secrets, in every form they travel in.
    pub fn redact_text(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Runs the check once, as [`run`](Self::run), and returns what it observed on the way.
    pub async fn run_observed(&self) -> (Result<ProbeSuccess, ProbeError>, Observed) {
        observed::observing(self.run()).await
    }

    async fn run_unredacted(&self) -> Result<ProbeSuccess, ProbeError> {
        match &self.check {
            Check::Provider(check) => {
                let call = crate::provider::Call {
                    client: &self.client,
                    check,
                    judge: &self.judge,
                };
                (check.provider.check)(&call).await
            }
            Check::Smtp(check) => match &self.smtp {
                Some(transport) => smtp::check(check, transport).await,
                None => Err(ProbeError::new(
                    FailureReason::Protocol,
                    "the SMTP check has no transport",
                )),
            },
            Check::Http(check) => http::check(&self.client, check, &self.judge).await,
            Check::Tcp(check) => tcp::check(check).await,
            Check::Dns(check) => dns::check(check).await,
            Check::Heartbeat(check) => match &self.heartbeat {
                Some(clock) => heartbeat::check(check, clock).await,
                None => Err(ProbeError::new(
                    FailureReason::HeartbeatMissed,
                    "the heartbeat has no clock",
                )),
            },
        }
    }
}

/// `text` without the secrets of `check` (what `breakerd explain` prints, say).
pub fn redact_secrets(check: &Check, text: &str) -> String {
    crate::redact::Redactor::of(check).redact(text)
}
