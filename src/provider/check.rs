//! What provider checks share: the call context (client, configured check, judge), the
//! provider's endpoints below its base URL, and sending a request whose answer is judged by
//! the service's rules — the same rules the proxy and the outcome API use — before the check
//! looks for what it needs in it.

use http::Method;
use serde_json::Value;

use super::ProviderCheck;
use super::judge::Judge;
use super::rules::{Head, Judgement};
use crate::credential::Secret;
use crate::outcome::{FailureReason, ProbeError, Verdict};
use crate::probe::credential;
use crate::probe::http::{Answer, HttpClient};
use crate::probe::request::CheckRequest;
use url::Url;

/// A provider check's context.
#[derive(Debug)]
pub struct Call<'a> {
    /// Sends the check's requests.
    pub client: &'a HttpClient,
    /// The check as configured.
    pub check: &'a ProviderCheck,
    /// The service's judge.
    pub judge: &'a Judge,
}

/// An answer the rules judged a success (or the caller's own outcome).
#[derive(Debug)]
pub struct Checked {
    pub(crate) answer: Answer,
    /// The verdict and how it was reached.
    pub judgement: Judgement,
}

impl Checked {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        self.answer.json()
    }

    /// The start of the body, for details.
    pub fn excerpt(&self) -> String {
        self.answer.excerpt()
    }

    /// A `body` failure: the answer passed the rules but lacks what the check needs.
    pub fn lacks(&self, what: &str) -> ProbeError {
        ProbeError::new(
            FailureReason::Body,
            format!(
                "HTTP {} without {what}: {}",
                self.answer.status.as_u16(),
                self.excerpt()
            ),
        )
        .saying(self.judgement.said())
    }
}

impl Call<'_> {
    /// `path` (with its query) below the base URL, keeping the base URL's own path (Pesapal's
    /// `/pesapalv3`).
    pub fn endpoint(&self, path: &str) -> Result<Url, ProbeError> {
        let base = &self.check.base_url;
        let joined = format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Url::parse(&joined).map_err(|error| {
            ProbeError::new(
                FailureReason::Protocol,
                format!("bad URL {joined}: {error}"),
            )
        })
    }

    /// The value of credential `key`, or an `auth` failure saying what to set.
    pub fn credential(&self, key: &str) -> Result<&Secret, ProbeError> {
        match self.check.credential(key) {
            Some(set) => credential(set),
            None => Err(ProbeError::new(
                FailureReason::Auth,
                format!("{key} is not configured"),
            )),
        }
    }

    /// Sends `request` and judges the answer: a success comes back; a failure is the error
    /// (with, for `auth`, which host the credentials went to, and the provider's wait for
    /// throttling). The check built the request itself, so an answer the rules call the
    /// caller's own outcome (a 404, a validation error) is the check's failure too: its
    /// `base_url` or the service's ids are wrong.
    pub(crate) async fn send(&self, request: CheckRequest) -> Result<Checked, ProbeError> {
        let method = request.method.clone();
        let path = request.url.path().to_string();
        let answer = self.client.send(request).await?;
        if let Some(redirect) = answer.redirect_failure() {
            return Err(redirect);
        }
        let judgement = self.judge_answer(&method, &path, &answer);
        let mut failure = match judgement.verdict {
            Verdict::Success => return Ok(Checked { answer, judgement }),
            Verdict::Failure(reason) => {
                ProbeError::new(reason, judgement.detail.clone()).saying(judgement.said())
            }
            Verdict::Caller(kind) => ProbeError::new(
                FailureReason::HttpStatus,
                format!(
                    "{} — the provider refused the check's own request ({kind}): check base_url and the service's credentials and ids",
                    judgement.detail
                ),
            )
            .saying(judgement.said()),
        };
        if failure.reason == FailureReason::Auth {
            failure.detail = format!("{}; {}", failure.detail, self.check.host_hint());
        }
        failure.retry_after = judgement.retry_after;
        Err(failure)
    }

    fn judge_answer(&self, method: &Method, path: &str, answer: &Answer) -> Judgement {
        let path = self.judge.relative_path(path);
        let operation = self.judge.operation(method.as_str(), path);
        let head = Head {
            operation: &operation.name,
            method: method.as_str(),
            path,
            status: answer.status.as_u16(),
            headers: &answer.headers,
        };
        // As the proxy does: a body longer than the rules read is judged without it.
        let body = (answer.body.len() <= super::MAX_JUDGED_BODY).then_some(&answer.body[..]);
        self.judge.judge(&head, body)
    }
}

/// The text at `field` of `json`, when it is non-empty text.
pub(crate) fn text_field<'v>(json: &'v Value, pointer: &str) -> Option<&'v str> {
    json.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// A request to `url` with `method`, for the checks.
pub(crate) fn request(method: Method, url: &Url) -> CheckRequest {
    CheckRequest::new(method, url)
}
