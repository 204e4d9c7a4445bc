//! A check's request as the presets build it: method, URL, headers (credentials marked
//! sensitive) and body. A header that cannot be sent is named, never its value.

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use super::{FailureReason, ProbeError};
use crate::config::Url;

/// A request a check sends through [`HttpClient::send`](super::HttpClient::send).
#[derive(Debug)]
pub(crate) struct CheckRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The first header that could not be sent, by name; sending fails with it.
    pub(crate) invalid: Option<ProbeError>,
}

impl CheckRequest {
    /// A `method` request to `url`, with no headers or body yet.
    pub(crate) fn new(method: Method, url: &Url) -> Self {
        Self {
            method,
            url: url.clone(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            invalid: None,
        }
    }

    /// Adds a header (a second one of the same name is sent too).
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        let name = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(_) => {
                return self.refuse(format!(
                    "header name \"{name}\" is not a valid HTTP header name"
                ));
            }
        };
        match HeaderValue::from_str(value) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.append(name, value);
            }
            Err(_) => {
                return self.refuse(format!(
                    "header {name} has a value HTTP cannot carry (control characters or non-ASCII)"
                ));
            }
        }
        self
    }

    /// HTTP Basic authentication.
    pub(crate) fn basic_auth(self, user: &str, password: &str) -> Self {
        self.header(AUTHORIZATION.as_str(), &basic_credentials(user, password))
    }

    /// A bearer token.
    pub(crate) fn bearer_auth(self, token: &str) -> Self {
        self.header(AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    /// The body.
    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    fn refuse(mut self, why: String) -> Self {
        if self.invalid.is_none() {
            self.invalid = Some(ProbeError::new(FailureReason::Protocol, why));
        }
        self
    }
}

/// The `Authorization` value of HTTP Basic authentication.
pub(crate) fn basic_credentials(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        crate::redact::base64(format!("{user}:{password}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_encoded_and_marked_sensitive() {
        let url = Url::parse("http://127.0.0.1/").unwrap();
        let request = CheckRequest::new(Method::GET, &url).basic_auth("key", "secret");
        let value = &request.headers[AUTHORIZATION];
        assert_eq!(value, "Basic a2V5OnNlY3JldA==");
        assert!(value.is_sensitive());
        let bearer = CheckRequest::new(Method::GET, &url).bearer_auth("tok");
        assert_eq!(bearer.headers[AUTHORIZATION], "Bearer tok");
    }

    #[test]
    fn a_header_that_cannot_be_sent_is_named_without_its_value() {
        let url = Url::parse("http://127.0.0.1/").unwrap();
        let request = CheckRequest::new(Method::GET, &url)
            .header("X-Api-Key", "secret\nvalue")
            .header("Bad Name", "x");
        let error = request.invalid.expect("refused");
        assert_eq!(error.reason, FailureReason::Protocol);
        assert_eq!(
            error.detail,
            "header x-api-key has a value HTTP cannot carry (control characters or non-ASCII)"
        );
        assert!(!error.detail.contains("secret"));
    }
}
