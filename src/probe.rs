//! Synthetic checks: one file per kind (HTTP, SMTP, TCP) and the provider presets, each judging
//! the answer the way its provider really answers, with a bounded failure reason.

pub(crate) mod certificate;
pub(crate) mod classify;
mod dns;
pub(crate) mod heartbeat;
mod http;
mod observed;
pub(crate) mod phases;
mod pool;
mod presets;
mod redact;
mod request;
mod smtp;
mod tcp;
mod tls;
mod transport;

use std::fmt;
use std::sync::{Arc, Once};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::{Check, Credential, Secret};

pub use certificate::CertificateInfo;
pub use heartbeat::HeartbeatClock;
pub use http::{ClientError, HttpClient};
pub use observed::Observed;
pub use phases::Phases;
pub(crate) use redact::Redactor;
pub(crate) use smtp::transport as smtp_transport;

/// Why a check failed: a small, fixed set, so it can be a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The check ran past its timeout.
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The connection was refused or could not be made.
    Connect,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The TLS handshake or certificate failed.
    Tls,
    /// An HTTP status that means failure.
    HttpStatus,
    /// The answer's body says failure (or is not what the provider sends).
    Body,
    /// The provider rejected the credentials, or they are not configured.
    Auth,
    /// The provider is rate-limiting us.
    Throttled,
    /// The account balance is below the configured floor.
    Balance,
    /// The server broke its protocol (SMTP reply, malformed HTTP).
    Protocol,
    /// The provider redirected the check elsewhere; checks never follow, so that no credential
    /// reaches another host.
    Redirect,
    /// The name does not exist (NXDOMAIN).
    DnsNxdomain,
    /// The DNS server failed or refused to answer (SERVFAIL, REFUSED).
    DnsServfail,
    /// The answer lacks an expected value, or the name has no record of that type.
    DnsMismatch,
    /// A heartbeat did not come within `every` + `grace`.
    HeartbeatMissed,
    /// The application reported a failed run (a heartbeat with `"outcome": "failure"`).
    Reported,
}

impl FailureReason {
    /// Every reason, for metrics that start at zero.
    pub const ALL: [FailureReason; 17] = [
        FailureReason::Timeout,
        FailureReason::Dns,
        FailureReason::Connect,
        FailureReason::Reset,
        FailureReason::Tls,
        FailureReason::HttpStatus,
        FailureReason::Body,
        FailureReason::Auth,
        FailureReason::Throttled,
        FailureReason::Balance,
        FailureReason::Protocol,
        FailureReason::Redirect,
        FailureReason::DnsNxdomain,
        FailureReason::DnsServfail,
        FailureReason::DnsMismatch,
        FailureReason::HeartbeatMissed,
        FailureReason::Reported,
    ];

    /// The label: `timeout`, `dns`, `connect`, `reset`, `tls`, `http_status`, `body`, `auth`,
    /// `throttled`, `balance`, `protocol`, `redirect`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Dns => "dns",
            FailureReason::Connect => "connect",
            FailureReason::Reset => "reset",
            FailureReason::Tls => "tls",
            FailureReason::HttpStatus => "http_status",
            FailureReason::Body => "body",
            FailureReason::Auth => "auth",
            FailureReason::Throttled => "throttled",
            FailureReason::Balance => "balance",
            FailureReason::Protocol => "protocol",
            FailureReason::Redirect => "redirect",
            FailureReason::DnsNxdomain => "dns_nxdomain",
            FailureReason::DnsServfail => "dns_servfail",
            FailureReason::DnsMismatch => "dns_mismatch",
            FailureReason::HeartbeatMissed => "heartbeat_missed",
            FailureReason::Reported => "reported",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed check: its reason and a sentence for people (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeError {
    /// The bounded reason.
    pub reason: FailureReason,
    /// What happened.
    pub detail: String,
}

impl ProbeError {
    pub(crate) fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for ProbeError {}

/// Why a service is failing: its last real failure, never a rejection by its own breaker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// The bounded reason.
    pub reason: FailureReason,
    /// What happened.
    pub detail: String,
    /// When.
    #[serde(with = "crate::wall::serde_rfc3339")]
    pub at: SystemTime,
}

impl Cause {
    /// The cause of `error`, seen at `at`.
    pub fn of(error: &ProbeError, at: SystemTime) -> Self {
        Self {
            reason: error.reason,
            detail: error.detail.clone(),
            at,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// A passed check, with anything worth telling (a WhatsApp quality rating, a balance).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeSuccess {
    /// A remark for the API and the logs.
    pub note: Option<String>,
}

/// A ready-to-run synthetic check.
#[derive(Clone, Debug)]
pub struct Probe {
    check: Check,
    client: HttpClient,
    /// The beats of a heartbeat check, shared with the heartbeat route.
    heartbeat: Option<Arc<HeartbeatClock>>,
    /// Its secrets, in every form they are sent in: never in what it reports.
    redactor: redact::Redactor,
}

impl Probe {
    /// The check for `check`, sending HTTP through `client`.
    pub fn new(check: Check, client: HttpClient) -> Self {
        let redactor = redact::Redactor::of(&check);
        let heartbeat = match &check {
            Check::Heartbeat(heartbeat) => {
                Some(Arc::new(HeartbeatClock::new(heartbeat.state_file.clone())))
            }
            _ => None,
        };
        Self {
            check,
            client,
            heartbeat,
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
                Err(failure)
            }
        }
    }

    /// Runs the check once, as [`run`](Self::run), and returns what it observed on the way.
    pub async fn run_observed(&self) -> (Result<ProbeSuccess, ProbeError>, Observed) {
        observed::observing(self.run()).await
    }

    async fn run_unredacted(&self) -> Result<ProbeSuccess, ProbeError> {
        match &self.check {
            Check::Mpesa(check) => presets::mpesa(&self.client, check).await,
            Check::Pesapal(check) => presets::pesapal(&self.client, check).await,
            Check::Kcb(check) => presets::kcb(&self.client, check).await,
            Check::AfricasTalking(check) => presets::africastalking(&self.client, check).await,
            Check::WhatsApp(check) => presets::whatsapp(&self.client, check).await,
            Check::Smtp(check) => smtp::check(check).await,
            Check::Http(check) => http::check(&self.client, check).await,
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

/// A credential's value, or an `auth` failure saying what to set.
pub(crate) fn credential(credential: &Credential) -> Result<&Secret, ProbeError> {
    credential
        .value()
        .map_err(|why| ProbeError::new(FailureReason::Auth, why))
}

/// Installs rustls' ring provider as the process default, once; reqwest and lettre share it.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
