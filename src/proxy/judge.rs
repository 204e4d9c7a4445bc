//! What a real call's answer says about the provider. By status: connection errors, timeouts
//! and 5xx are failures, 429 is a failure with reason `throttled`, any other 4xx is the
//! caller's own mistake and says nothing. Where a provider hides failures in the body, its
//! judge reads the start of a JSON body while the bytes stream on unchanged: Pesapal's HTTP 200
//! with an `error` object or a `"status"` other than `"200"`, WhatsApp's throttling codes. No
//! detail ever quotes the body: only the status and the provider's error code.

use reqwest::StatusCode;
use serde_json::Value;

use crate::config::Check;
use crate::probe::{FailureReason, ProbeError};

/// The most of a body a judge reads; a longer body is judged by its status alone.
pub const MAX_JUDGED_BODY: usize = 64 * 1024;
/// Meta's error codes for rate limiting.
const WHATSAPP_THROTTLING_CODES: [i64; 3] = [4, 80007, 130429];

/// A verdict on one real call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The provider worked.
    Success,
    /// The provider failed.
    Failure(ProbeError),
    /// The caller's own mistake: it says nothing about the provider.
    Ignore,
}

/// How a service's answers are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Judge {
    /// By status alone.
    Status,
    /// Pesapal: a 2xx JSON body can still say failure.
    Pesapal,
    /// WhatsApp: a 4xx JSON body can say throttling.
    WhatsApp,
}

impl Judge {
    pub(crate) fn of(check: &Check) -> Self {
        match check {
            Check::Pesapal(_) => Judge::Pesapal,
            Check::WhatsApp(_) => Judge::WhatsApp,
            _ => Judge::Status,
        }
    }

    /// Whether the answer's body must be read (its start) before the verdict.
    pub(crate) fn reads_body(self, status: StatusCode, json: bool) -> bool {
        json && match self {
            Judge::Status => false,
            Judge::Pesapal => status.is_success(),
            Judge::WhatsApp => status.is_client_error(),
        }
    }

    /// The verdict on an answer with `status`, and, when [`Judge::reads_body`] asked for it,
    /// the start of its body (`None` when it was longer than [`MAX_JUDGED_BODY`]).
    pub(crate) fn verdict(self, status: StatusCode, body: Option<&[u8]>) -> Verdict {
        let json = body.and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok());
        match (self, json) {
            (Judge::Pesapal, Some(json)) if status.is_success() => pesapal(&json),
            (Judge::WhatsApp, Some(json)) if status.is_client_error() => {
                whatsapp(status, &json).unwrap_or_else(|| by_status(status))
            }
            _ => by_status(status),
        }
    }
}

/// The verdict a status alone gives.
pub(crate) fn by_status(status: StatusCode) -> Verdict {
    let code = status.as_u16();
    if status.is_server_error() {
        Verdict::Failure(ProbeError::new(
            FailureReason::HttpStatus,
            format!("HTTP {code} from the provider (a real call)"),
        ))
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Failure(ProbeError::new(
            FailureReason::Throttled,
            "HTTP 429 from the provider (a real call)",
        ))
    } else if status.is_client_error() {
        Verdict::Ignore
    } else {
        Verdict::Success
    }
}

fn pesapal(json: &Value) -> Verdict {
    let error = json.get("error").filter(|error| !error.is_null());
    let status = json.get("status").and_then(Value::as_str);
    if error.is_none() && status.is_none_or(|status| status == "200") {
        return Verdict::Success;
    }
    let code = error
        .and_then(|error| error.get("code"))
        .and_then(Value::as_str)
        .map(short)
        .unwrap_or_default();
    Verdict::Failure(ProbeError::new(
        FailureReason::Body,
        format!(
            "HTTP 200 with error {code} (status {}) from the provider (a real call)",
            status.map(short).unwrap_or_default()
        ),
    ))
}

fn whatsapp(status: StatusCode, json: &Value) -> Option<Verdict> {
    let code = json.get("error")?.get("code")?.as_i64()?;
    WHATSAPP_THROTTLING_CODES.contains(&code).then(|| {
        Verdict::Failure(ProbeError::new(
            FailureReason::Throttled,
            format!(
                "HTTP {} with error code {code} from the provider (a real call)",
                status.as_u16()
            ),
        ))
    })
}

/// A provider's code, kept short and to plain characters.
fn short(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn statuses_say_whose_fault_it_is() {
        assert_eq!(by_status(status(200)), Verdict::Success);
        assert_eq!(by_status(status(302)), Verdict::Success);
        assert_eq!(by_status(status(404)), Verdict::Ignore);
        assert_eq!(by_status(status(400)), Verdict::Ignore);
        let Verdict::Failure(failure) = by_status(status(429)) else {
            panic!()
        };
        assert_eq!(failure.reason, FailureReason::Throttled);
        let Verdict::Failure(failure) = by_status(status(503)) else {
            panic!()
        };
        assert_eq!(failure.reason, FailureReason::HttpStatus);
        assert_eq!(failure.detail, "HTTP 503 from the provider (a real call)");
    }

    #[test]
    fn pesapal_and_whatsapp_bodies_are_read_where_they_hide_failures() {
        let rejected = br#"{"token":null,"error":{"error_type":"api_error","code":"invalid_consumer_key_or_secret_provided","message":"Invalid consumer_key or consumer_secret provided"},"status":"500"}"#;
        assert!(Judge::Pesapal.reads_body(status(200), true));
        assert!(!Judge::Pesapal.reads_body(status(200), false), "only JSON");
        let Verdict::Failure(failure) = Judge::Pesapal.verdict(status(200), Some(rejected)) else {
            panic!()
        };
        assert_eq!(
            failure.detail,
            "HTTP 200 with error invalid_consumer_key_or_secret_provided (status 500) from the provider (a real call)"
        );
        let fine = br#"{"token":"abc","error":null,"status":"200"}"#;
        assert_eq!(
            Judge::Pesapal.verdict(status(200), Some(fine)),
            Verdict::Success
        );
        assert_eq!(
            Judge::Pesapal.verdict(status(200), None),
            Verdict::Success,
            "too long to read"
        );
        let throttled = br#"{"error":{"message":"(#130429) Rate limit hit","code":130429}}"#;
        let Verdict::Failure(failure) = Judge::WhatsApp.verdict(status(400), Some(throttled))
        else {
            panic!()
        };
        assert_eq!(failure.reason, FailureReason::Throttled);
        let bad_token = br#"{"error":{"message":"Invalid OAuth access token","code":190}}"#;
        assert_eq!(
            Judge::WhatsApp.verdict(status(401), Some(bad_token)),
            Verdict::Ignore
        );
    }
}
