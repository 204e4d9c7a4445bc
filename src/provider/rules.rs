//! The rule language: what an answer means, written as data. A rule matches an answer by
//! operation, method, path pattern, status (or a range), a header, and values at JSON pointers
//! in the start of its body, and gives it one of the five classes of [`Verdict`], with the
//! provider's own code and message quoted and a detail sentence. Rules are tried in order and
//! the first that matches decides; a default by status ends every list. The same rules judge
//! a check's answer, a proxied answer and an answer an application reports.

mod compile;
mod describe;
mod pattern;
mod pointer;
mod template;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::outcome::{FailureReason, Said, Verdict};

pub(crate) use compile::{RawRule, compile, compile_text, key_names};
pub use pattern::PathPattern;
pub(crate) use pointer::{Pointer, is_all_null, scalar_text};
pub(crate) use template::{Fill, Template, quote};

/// The most rules one service may add.
pub const MAX_RULES: usize = 64;
/// The most JSON conditions one rule may have.
pub const MAX_CONDITIONS: usize = 8;
/// The most values a `one_of` list (or an `operation`, `method` or `status` list) may hold.
pub const MAX_LIST: usize = 64;
/// The longest wait a `Retry-After` (or a rule's `retry_after`) is read as: longer ones are cut
/// to this (the breaker then holds its trial back at most [`crate::breaker::MAX_TRIAL_HOLD`],
/// or its own longest open period).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Where a rule comes from, as `breakerd explain` and `check --print` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A `[[services.NAME.rules]]` table of the config file.
    File {
        /// The config file.
        path: Arc<str>,
        /// Its line (from 1).
        line: usize,
        /// Its column (from 1).
        column: usize,
    },
    /// Made from a provider setting (WhatsApp's `min_quality`).
    Setting {
        /// The provider.
        provider: &'static str,
        /// The setting's key.
        key: &'static str,
    },
    /// A provider's built-in list.
    BuiltIn {
        /// The provider.
        provider: &'static str,
        /// Its place in the list, from 1.
        number: usize,
    },
    /// The defaults that end every list.
    Default {
        /// Its place, from 1.
        number: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Origin::Setting { provider, key } => write!(f, "{provider} setting {key}"),
            Origin::BuiltIn { provider, number } => write!(f, "built-in {provider} rule {number}"),
            Origin::Default { number } => write!(f, "default rule {number}"),
        }
    }
}

/// What a header must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderTest {
    Exists(bool),
    /// Compared without regard to ASCII case.
    Equals(String),
    OneOf(Vec<String>),
    Contains(String),
}

/// A condition on one header of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderCondition {
    /// Lowercase.
    pub(crate) name: String,
    pub(crate) test: HeaderTest,
}

/// What the values a pointer reaches must be.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JsonTest {
    /// Compared as text: `"200"` equals `200`.
    Equals(String),
    OneOf(Vec<String>),
    /// The text contains this, without regard to case (kept as written and in lower case).
    Contains {
        written: String,
        lower: String,
    },
    /// A number (or a numeric string) from the first to the second, inclusive.
    Between(f64, f64),
    /// `true`: a value other than null is there; `false`: none is.
    Exists(bool),
    /// `true`: absent, null, or an object whose values are all null; `false`: anything else.
    AllNull(bool),
}

/// A condition on the JSON body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonCondition {
    pub(crate) pointer: Pointer,
    pub(crate) test: JsonTest,
    /// With a `*` pointer: every value reached must pass (and there must be one), instead of
    /// any.
    pub(crate) every: bool,
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub(crate) origin: Origin,
    /// Empty: any operation.
    pub(crate) operations: Vec<String>,
    /// Uppercase; empty: any method.
    pub(crate) methods: Vec<String>,
    pub(crate) path: Option<PathPattern>,
    /// Inclusive ranges; empty: any status.
    pub(crate) status: Vec<(u16, u16)>,
    pub(crate) header: Option<HeaderCondition>,
    pub(crate) json: Vec<JsonCondition>,
    pub(crate) verdict: Verdict,
    pub(crate) code: Option<Pointer>,
    pub(crate) message: Option<Pointer>,
    pub(crate) detail: Option<Template>,
    pub(crate) retry_after: Option<Duration>,
}

/// Finds an answer's headers by name (lowercase).
pub trait Headers {
    /// The first value of header `name`, if it is text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Headers for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What is known of an exchange before its body: the operation (from the catalogue), the
/// request's method and path (below the provider's base URL) and the answer's status and
/// headers.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    /// The operation's name.
    pub operation: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The request's path below the base URL, without the query.
    pub path: &'a str,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub headers: &'a dyn Headers,
}

impl fmt::Debug for Head<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Head")
            .field("operation", &self.operation)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The verdict on one answer and how it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The class (and reason or kind).
    pub verdict: Verdict,
    /// The operation.
    pub operation: Arc<str>,
    /// The rule that matched.
    pub rule: Origin,
    /// A sentence for people: empty for a plain success.
    pub detail: String,
    /// The provider's own code, quoted.
    pub code: Option<String>,
    /// The provider's own message, quoted.
    pub message: Option<String>,
    /// For throttling: how long the provider asked us to wait.
    pub retry_after: Option<Duration>,
}

impl Judgement {
    /// What the provider said, for causes and pages.
    pub fn said(&self) -> Said {
        Said {
            operation: Some(self.operation.to_string()),
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }

    /// What a check makes of this judgement: a pass, the caller's own outcome (which counts
    /// for nothing), or the failure.
    pub fn check_result(&self) -> Result<crate::outcome::ProbeSuccess, crate::outcome::ProbeError> {
        match self.verdict {
            Verdict::Success => Ok(crate::outcome::ProbeSuccess::default()),
            Verdict::Caller(kind) => Ok(crate::outcome::ProbeSuccess {
                note: Some(format!(
                    "the caller's own outcome ({kind}): {}",
                    self.detail
                )),
                caller: Some(kind),
            }),
            Verdict::Failure(_) => Err(self.failure().unwrap_or_else(|| {
                crate::outcome::ProbeError::new(FailureReason::Body, self.detail.clone())
            })),
        }
    }

    /// The failure this judgement is, if it counts against the service.
    pub fn failure(&self) -> Option<crate::outcome::ProbeError> {
        match self.verdict {
            Verdict::Failure(reason) => {
                let mut failure = crate::outcome::ProbeError::new(reason, self.detail.clone())
                    .saying(self.said());
                failure.retry_after = self.retry_after;
                Some(failure)
            }
            Verdict::Success | Verdict::Caller(_) => None,
        }
    }
}

impl Rule {
    /// Where the rule comes from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether the rule quotes the answer in what it says: the provider's code or message, or
    /// values of the body in its detail.
    pub(crate) fn quotes_answer(&self) -> bool {
        self.code.is_some()
            || self.message.is_some()
            || self.detail.as_ref().is_some_and(Template::reads_body)
    }

    /// Whether the rule reads the body: it has JSON conditions, or quotes the body.
    pub(crate) fn reads_body(&self) -> bool {
        !self.json.is_empty()
            || self.code.is_some()
            || self.message.is_some()
            || self.detail.as_ref().is_some_and(Template::reads_body)
    }

    /// Whether the rule's conditions on what comes before the body hold.
    pub(crate) fn matches_head(&self, head: &Head<'_>) -> bool {
        (self.operations.is_empty() || self.operations.iter().any(|op| op == head.operation))
            && (self.methods.is_empty()
                || self
                    .methods
                    .iter()
                    .any(|method| method.eq_ignore_ascii_case(head.method)))
            && self
                .path
                .as_ref()
                .is_none_or(|path| path.matches(head.path))
            && (self.status.is_empty()
                || self
                    .status
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&head.status)))
            && self
                .header
                .as_ref()
                .is_none_or(|condition| header_holds(condition, head.headers))
    }

    /// Whether the JSON conditions hold for `json` (`None`: the body was not JSON or not read).
    pub(crate) fn matches_body(&self, json: Option<&Value>) -> bool {
        self.json
            .iter()
            .all(|condition| json_holds(condition, json))
    }

    /// The verdict this rule gives `head` with body `json`.
    pub(crate) fn apply(
        &self,
        head: &Head<'_>,
        operation: &Arc<str>,
        json: Option<&Value>,
    ) -> Judgement {
        let pick = |pointer: &Option<Pointer>| {
            pointer
                .as_ref()
                .zip(json)
                .and_then(|(pointer, json)| pointer.first(json))
                .and_then(scalar_text)
                .map(|text| quote(&text))
                .filter(|text| !text.is_empty())
        };
        let code = pick(&self.code);
        let message = pick(&self.message);
        let fill = Fill {
            status: Some(head.status),
            method: head.method,
            operation,
            code: code.as_deref(),
            message: message.as_deref(),
            json,
        };
        let detail = match (&self.detail, self.verdict) {
            (Some(template), _) => template.render(&fill),
            (None, Verdict::Success) => String::new(),
            (None, _) => default_detail(&fill),
        };
        let retry_after = (self.verdict == Verdict::Failure(FailureReason::Throttled))
            .then(|| {
                head.headers
                    .header("retry-after")
                    .and_then(parse_retry_after)
                    .or(self.retry_after)
            })
            .flatten()
            .map(|wait| wait.min(MAX_RETRY_AFTER));
        Judgement {
            verdict: self.verdict,
            operation: Arc::clone(operation),
            rule: self.origin.clone(),
            detail,
            code,
            message,
            retry_after,
        }
    }
}

/// `HTTP 500 on stk_push: 500.003.1001 Internal Server Error`.
fn default_detail(fill: &Fill<'_>) -> String {
    let mut detail = match fill.status {
        Some(status) => format!("HTTP {status} on {}", fill.operation),
        None => format!("on {}", fill.operation),
    };
    let said: Vec<&str> = [fill.code, fill.message].into_iter().flatten().collect();
    if !said.is_empty() {
        detail.push_str(": ");
        detail.push_str(&said.join(" "));
    }
    detail
}

fn header_holds(condition: &HeaderCondition, headers: &dyn Headers) -> bool {
    let value = headers.header(&condition.name);
    match &condition.test {
        HeaderTest::Exists(wanted) => value.is_some() == *wanted,
        HeaderTest::Equals(expected) => {
            value.is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
        }
        HeaderTest::OneOf(allowed) => value.is_some_and(|v| {
            allowed
                .iter()
                .any(|expected| v.trim().eq_ignore_ascii_case(expected))
        }),
        HeaderTest::Contains(needle) => value.is_some_and(|v| {
            v.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
        }),
    }
}

fn json_holds(condition: &JsonCondition, json: Option<&Value>) -> bool {
    let values = json
        .map(|json| condition.pointer.resolve(json))
        .unwrap_or_default();
    match &condition.test {
        JsonTest::Exists(wanted) => values.iter().any(|value| !value.is_null()) == *wanted,
        JsonTest::AllNull(wanted) => values.iter().all(|value| is_all_null(value)) == *wanted,
        JsonTest::Equals(_)
        | JsonTest::OneOf(_)
        | JsonTest::Contains { .. }
        | JsonTest::Between(..) => {
            let passes = |value: &&Value| {
                scalar_text(value).is_some_and(|text| match &condition.test {
                    JsonTest::Equals(expected) => text == *expected,
                    JsonTest::OneOf(allowed) => allowed.contains(&text),
                    JsonTest::Contains { lower, .. } => text.to_lowercase().contains(lower),
                    JsonTest::Between(low, high) => text
                        .trim()
                        .parse::<f64>()
                        .is_ok_and(|number| (*low..=*high).contains(&number)),
                    JsonTest::Exists(_) | JsonTest::AllNull(_) => false,
                })
            };
            if condition.every {
                !values.is_empty() && values.iter().all(passes)
            } else {
                values.iter().any(passes)
            }
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (how long from now).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate(value)?;
    Some(
        at.duration_since(crate::wall::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 says to send.
fn httpdate(value: &str) -> Option<std::time::SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = u64::try_from(parsed.timestamp()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CallerKind;
    use serde_json::json;

    fn rule(text: &str) -> Rule {
        let operations = ["stk_push", "stk_query", "other"];
        let mut rules = compile_text(text, "test", &operations, &|number| Origin::BuiltIn {
            provider: "test",
            number,
        })
        .unwrap_or_else(|problems| panic!("{problems:?}"));
        assert_eq!(rules.len(), 1);
        rules.remove(0)
    }

    fn head<'a>(status: u16, headers: &'a Vec<(String, String)>) -> Head<'a> {
        Head {
            operation: "stk_query",
            method: "POST",
            path: "/mpesa/stkpushquery/v1/query",
            status,
            headers,
        }
    }

    #[test]
    fn a_rule_matches_head_and_body_and_quotes_the_provider() {
        let pending = rule(
            r#"[[rule]]
            operation = "stk_query"
            method = "POST"
            path = "/mpesa/stkpushquery/v1/query"
            status = 500
            json = [{ pointer = "/errorCode", equals = "500.001.1001" },
                    { pointer = "/errorMessage", equals = "The transaction is being processed" }]
            outcome = "caller"
            reason = "pending"
            code = "/errorCode"
            message = "/errorMessage""#,
        );
        assert!(pending.reads_body());
        let none: Vec<(String, String)> = Vec::new();
        assert!(pending.matches_head(&head(500, &none)));
        assert!(!pending.matches_head(&head(200, &none)));
        let body = json!({"requestId": "ws_CO_1", "errorCode": "500.001.1001", "errorMessage": "The transaction is being processed"});
        assert!(pending.matches_body(Some(&body)));
        assert!(!pending.matches_body(Some(
            &json!({"errorCode": "500.001.1001", "errorMessage": "Merchant does not exist"})
        )));
        assert!(!pending.matches_body(None));
        let operation: Arc<str> = Arc::from("stk_query");
        let judged = pending.apply(&head(500, &none), &operation, Some(&body));
        assert_eq!(judged.verdict, Verdict::Caller(CallerKind::Pending));
        assert_eq!(judged.code.as_deref(), Some("500.001.1001"));
        assert_eq!(
            judged.detail,
            "HTTP 500 on stk_query: 500.001.1001 The transaction is being processed"
        );
        assert_eq!(judged.rule.to_string(), "built-in test rule 1");
    }

    #[test]
    fn wildcards_take_any_or_every_value_and_nulls_are_looked_through() {
        let balance = rule(
            r#"[[rule]]
            json = [{ pointer = "/R/*/statusCode", equals = 405 }]
            outcome = "balance""#,
        );
        let sent = rule(
            r#"[[rule]]
            json = [{ pointer = "/R/*/statusCode", one_of = [100, 101, 102], every = true }]
            outcome = "success""#,
        );
        let mixed = json!({"R": [{"statusCode": 101}, {"statusCode": 405}]});
        assert!(balance.matches_body(Some(&mixed)));
        assert!(!sent.matches_body(Some(&mixed)));
        assert!(sent.matches_body(Some(
            &json!({"R": [{"statusCode": 101}, {"statusCode": "102"}]})
        )));
        assert!(
            !sent.matches_body(Some(&json!({"R": []}))),
            "every needs one"
        );
        let no_error = rule(
            r#"[[rule]]
            json = [{ pointer = "/error", all_null = true }, { pointer = "/status", equals = "200" }]
            outcome = "success""#,
        );
        let nulls = json!({"error": {"error_type": null, "code": null, "message": null, "call_back_url": null}, "status": "200"});
        assert!(no_error.matches_body(Some(&nulls)));
        assert!(
            no_error.matches_body(Some(&json!({"status": 200}))),
            "no error at all"
        );
        assert!(!no_error.matches_body(Some(&json!({"error": {"code": "x"}, "status": "200"}))));
    }

    #[test]
    fn throttling_reads_retry_after_or_the_rule_s_own_wait() {
        let throttled = rule(
            r#"[[rule]]
            status = 429
            outcome = "throttled"
            retry_after = "1m""#,
        );
        let operation: Arc<str> = Arc::from("other");
        let with = vec![("Retry-After".to_string(), "30".to_string())];
        let judged = throttled.apply(&head(429, &with), &operation, None);
        assert_eq!(judged.verdict, Verdict::Failure(FailureReason::Throttled));
        assert_eq!(judged.retry_after, Some(Duration::from_secs(30)));
        let without: Vec<(String, String)> = Vec::new();
        let judged = throttled.apply(&head(429, &without), &operation, None);
        assert_eq!(judged.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(judged.detail, "HTTP 429 on other");
        let days = vec![("retry-after".to_string(), "9999999".to_string())];
        assert_eq!(
            throttled
                .apply(&head(429, &days), &operation, None)
                .retry_after,
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn headers_statuses_and_methods_narrow_a_rule() {
        let html = rule(
            r#"[[rule]]
            method = ["GET", "post"]
            status = ["5xx", "408-409"]
            header = { name = "Content-Type", contains = "text/html" }
            outcome = "failure"
            reason = "body""#,
        );
        let page = vec![(
            "content-type".to_string(),
            "Text/HTML; charset=utf-8".to_string(),
        )];
        assert!(html.matches_head(&head(502, &page)));
        assert!(html.matches_head(&head(409, &page)));
        assert!(!html.matches_head(&head(404, &page)));
        let json_type = vec![("content-type".to_string(), "application/json".to_string())];
        assert!(!html.matches_head(&head(502, &json_type)));
        assert!(!html.reads_body());
    }
}
