//! The words every layer shares about how a call went: the bounded failure reasons, a failed
//! call's error and the cause an outage is paged with (each naming the operation and the
//! provider's own code and message where there are some), and the five classes an answer falls
//! into — success, provider failure, throttling, our own account's problem, the caller's own
//! outcome.

mod phases;

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use phases::Phases;

/// Why a call failed: a small, fixed set, so it can be a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The call ran past its timeout.
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
    /// The account's credit is exhausted, or below the configured floor.
    Balance,
    /// Our account may not do this: a number restricted or flagged, a permission not granted,
    /// a merchant or sender not set up.
    Account,
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
    pub const ALL: [FailureReason; 18] = [
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
        FailureReason::Account,
        FailureReason::Protocol,
        FailureReason::Redirect,
        FailureReason::DnsNxdomain,
        FailureReason::DnsServfail,
        FailureReason::DnsMismatch,
        FailureReason::HeartbeatMissed,
        FailureReason::Reported,
    ];

    /// The label: `timeout`, `dns`, `connect`, `reset`, `tls`, `http_status`, `body`, `auth`,
    /// `throttled`, `balance`, `account`, `protocol`, `redirect`, …
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
            FailureReason::Account => "account",
            FailureReason::Protocol => "protocol",
            FailureReason::Redirect => "redirect",
            FailureReason::DnsNxdomain => "dns_nxdomain",
            FailureReason::DnsServfail => "dns_servfail",
            FailureReason::DnsMismatch => "dns_mismatch",
            FailureReason::HeartbeatMissed => "heartbeat_missed",
            FailureReason::Reported => "reported",
        }
    }

    /// The reason spelled `text`.
    pub fn parse(text: &str) -> Option<FailureReason> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    /// Whether the reason is our own account's problem (credit, credentials, permissions),
    /// which a person fixes, not a provider outage.
    pub fn is_our_account(self) -> bool {
        matches!(
            self,
            FailureReason::Balance | FailureReason::Auth | FailureReason::Account
        )
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest provider code or message kept with a failure, in characters.
pub const MAX_QUOTE_CHARS: usize = 160;

/// What a failed call was and what the provider said of it, besides the reason and detail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Said {
    /// The provider's operation (`stk_query`, `messages`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The provider's own code (`500.003.02`, `130429`, `InsufficientBalance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The provider's own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Said {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.operation.is_none() && self.code.is_none() && self.message.is_none()
    }
}

/// A failed call: its reason, a sentence for people (never a secret) and, where the answer
/// gave them, the operation and the provider's own code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeError {
    /// The bounded reason.
    pub reason: FailureReason,
    /// What happened.
    pub detail: String,
    /// The operation and what the provider said, when known.
    pub said: Option<Box<Said>>,
    /// How long a throttling provider asked us to wait (`Retry-After`), if it said.
    pub retry_after: Option<std::time::Duration>,
}

impl ProbeError {
    /// A failure for `reason`, in words.
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            said: None,
            retry_after: None,
        }
    }

    /// The same failure, naming the operation and what the provider said.
    pub fn saying(mut self, said: Said) -> Self {
        self.said = (!said.is_empty()).then(|| Box::new(said));
        self
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
    /// The operation that failed and what the provider said (`operation`, `code`,
    /// `message`, beside the other fields).
    #[serde(flatten)]
    pub said: Said,
}

impl Cause {
    /// The cause of `error`, seen at `at`.
    pub fn of(error: &ProbeError, at: SystemTime) -> Self {
        Self {
            reason: error.reason,
            detail: error.detail.clone(),
            at,
            said: error.said.as_deref().cloned().unwrap_or_default(),
        }
    }

    /// A cause with only a reason and a detail.
    pub fn plain(reason: FailureReason, detail: impl Into<String>, at: SystemTime) -> Self {
        Self {
            reason,
            detail: detail.into(),
            at,
            said: Said::default(),
        }
    }

    /// `on stk_push` when the operation is known, for titles and log lines.
    pub fn on_operation(&self) -> String {
        self.said
            .operation
            .as_deref()
            .map(|operation| format!(" on {operation}"))
            .unwrap_or_default()
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// A passed check, with anything worth telling (a WhatsApp quality rating, a balance), or a
/// check whose answer was the caller's own outcome (it counts for nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeSuccess {
    /// A remark for the API and the logs.
    pub note: Option<String>,
    /// Set when the answer was the caller's own outcome, not a provider success: the check
    /// counts for neither side.
    pub caller: Option<CallerKind>,
}

impl ProbeSuccess {
    /// A pass with a remark.
    pub fn noting(note: impl Into<String>) -> Self {
        Self {
            note: Some(note.into()),
            caller: None,
        }
    }
}

/// Whose outcome an answer is when it says nothing about the provider's health: the caller's
/// own request, or the customer's own doing. Never counted against the provider; counted on
/// its own, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// A payment still pending or being processed (the customer has not entered the PIN).
    Pending,
    /// Declined or cancelled by the customer or their bank.
    Declined,
    /// The customer's funds are insufficient.
    CustomerFunds,
    /// The recipient cannot be reached: blacklisted us, an invalid or unsupported number, do
    /// not disturb.
    Recipient,
    /// The request itself was invalid (a 4xx for a bad field).
    Validation,
    /// The request repeats one already made (a duplicate reference, a URL already registered).
    Duplicate,
    /// What the request names does not exist.
    NotFound,
    /// The client broke off or sent malformed framing.
    Client,
}

impl CallerKind {
    /// Every kind, in label order.
    pub const ALL: [CallerKind; 8] = [
        CallerKind::Pending,
        CallerKind::Declined,
        CallerKind::CustomerFunds,
        CallerKind::Recipient,
        CallerKind::Validation,
        CallerKind::Duplicate,
        CallerKind::NotFound,
        CallerKind::Client,
    ];

    /// The label: `pending`, `declined`, `customer_funds`, `recipient`, `validation`,
    /// `duplicate`, `not_found`, `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::Pending => "pending",
            CallerKind::Declined => "declined",
            CallerKind::CustomerFunds => "customer_funds",
            CallerKind::Recipient => "recipient",
            CallerKind::Validation => "validation",
            CallerKind::Duplicate => "duplicate",
            CallerKind::NotFound => "not_found",
            CallerKind::Client => "client",
        }
    }

    /// The kind spelled `text`.
    pub fn parse(text: &str) -> Option<CallerKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for CallerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an answer means, in one of five classes: a provider success; a provider failure
/// (with its reason), throttling and our own account's problems, which all count against the
/// service; or the caller's own outcome, which counts for nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The provider worked.
    Success,
    /// Counts against the service: a provider failure (`http_status`, `body`, …), throttling
    /// (`throttled`) or our own account (`balance`, `auth`, `account`).
    Failure(FailureReason),
    /// The caller's or the customer's own outcome.
    Caller(CallerKind),
}

impl Verdict {
    /// The class's name: `success`, `failure`, `throttled`, `balance`, `auth`, `account` or
    /// `caller`.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure(FailureReason::Throttled) => "throttled",
            Verdict::Failure(FailureReason::Balance) => "balance",
            Verdict::Failure(FailureReason::Auth) => "auth",
            Verdict::Failure(FailureReason::Account) => "account",
            Verdict::Failure(_) => "failure",
            Verdict::Caller(_) => "caller",
        }
    }

    /// The verdict in words, as fixtures and `breakerd explain` write it: `success`,
    /// `failure http_status`, `throttled`, `balance`, `caller pending`.
    pub fn words(self) -> String {
        match self {
            Verdict::Failure(reason) if self.class() == "failure" => format!("failure {reason}"),
            Verdict::Caller(kind) => format!("caller {kind}"),
            _ => self.class().to_string(),
        }
    }

    /// The verdict written as [`Verdict::words`] does.
    pub fn parse_words(text: &str) -> Option<Verdict> {
        let mut words = text.split_whitespace();
        let class = words.next()?;
        let detail = words.next();
        if words.next().is_some() {
            return None;
        }
        let verdict = match (class, detail) {
            ("success", None) => Verdict::Success,
            ("throttled", None) => Verdict::Failure(FailureReason::Throttled),
            ("balance", None) => Verdict::Failure(FailureReason::Balance),
            ("auth", None) => Verdict::Failure(FailureReason::Auth),
            ("account", None) => Verdict::Failure(FailureReason::Account),
            ("failure", Some(reason)) => Verdict::Failure(FailureReason::parse(reason)?),
            ("caller", Some(kind)) => Verdict::Caller(CallerKind::parse(kind)?),
            _ => return None,
        };
        (verdict.words() == text.split_whitespace().collect::<Vec<_>>().join(" "))
            .then_some(verdict)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_kinds_read_back_as_written() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
        }
        for kind in CallerKind::ALL {
            assert_eq!(CallerKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FailureReason::parse("gremlins"), None);
    }

    #[test]
    fn verdicts_have_five_classes_and_read_back_from_their_words() {
        let verdicts = [
            (Verdict::Success, "success"),
            (
                Verdict::Failure(FailureReason::HttpStatus),
                "failure http_status",
            ),
            (Verdict::Failure(FailureReason::Throttled), "throttled"),
            (Verdict::Failure(FailureReason::Balance), "balance"),
            (Verdict::Failure(FailureReason::Auth), "auth"),
            (Verdict::Failure(FailureReason::Account), "account"),
            (Verdict::Caller(CallerKind::Pending), "caller pending"),
        ];
        for (verdict, words) in verdicts {
            assert_eq!(verdict.words(), words);
            assert_eq!(Verdict::parse_words(words), Some(verdict), "{words}");
        }
        assert_eq!(
            Verdict::parse_words("failure throttled"),
            None,
            "say throttled"
        );
        assert_eq!(Verdict::parse_words("caller"), None);
        assert_eq!(Verdict::parse_words("success now"), None);
    }

    #[test]
    fn a_cause_keeps_what_the_provider_said_and_reads_old_files() {
        let error = ProbeError::new(FailureReason::Throttled, "spike arrest").saying(Said {
            operation: Some("stk_push".into()),
            code: Some("500.003.02".into()),
            message: None,
        });
        let cause = Cause::of(&error, SystemTime::UNIX_EPOCH);
        assert_eq!(cause.said.operation.as_deref(), Some("stk_push"));
        assert_eq!(cause.on_operation(), " on stk_push");
        let old = r#"{"reason":"http_status","detail":"HTTP 500","at":"2026-11-27T10:00:00Z"}"#;
        let read: Cause = serde_json::from_str(old).unwrap();
        assert_eq!(read.said, Said::default());
        let json = serde_json::to_value(&cause).unwrap();
        assert_eq!(
            json["code"], "500.003.02",
            "flat beside reason and detail: {json}"
        );
        assert!(
            ProbeError::new(FailureReason::Body, "x")
                .saying(Said::default())
                .said
                .is_none()
        );
    }
}
