//! Why a delivery attempt failed and whether trying again can help: the one type every channel
//! returns and the delivery loop reads.

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Why an attempt failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
    /// How long the receiver asked us to wait before trying again.
    pub(crate) retry_after: Option<Duration>,
}

impl DeliveryError {
    pub(crate) fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// A `Retry-After` in seconds, as a receiver that throttles sends it.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Up to `most` bytes of an answer's body (an error's description); what cannot be read is
/// left out.
pub(crate) async fn read_capped(response: reqwest::Response, most: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = most.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= most {
            break;
        }
    }
    body
}

/// 2xx delivered; 408, 429 and 5xx worth retrying; any other 4xx is our request's fault.
pub(crate) fn judge_status(status: StatusCode, host: &str) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("{host} answered HTTP {}", status.as_u16());
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(DeliveryError::retryable(message))
    } else {
        Err(DeliveryError::permanent(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_statuses_are_retried() {
        assert!(judge_status(StatusCode::OK, "h").is_ok());
        assert!(
            judge_status(StatusCode::SERVICE_UNAVAILABLE, "h")
                .unwrap_err()
                .retryable
        );
        assert!(
            judge_status(StatusCode::TOO_MANY_REQUESTS, "h")
                .unwrap_err()
                .retryable
        );
        let bad = judge_status(StatusCode::BAD_REQUEST, "hooks.example.com").unwrap_err();
        assert!(!bad.retryable);
        assert_eq!(bad.message, "hooks.example.com answered HTTP 400");
    }
}
