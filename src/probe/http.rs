//! The HTTP check and the request plumbing the presets share: one pooled client, bounded
//! answer bodies, and errors that name the host but never the full URL.

use std::fmt;

use reqwest::{Method, StatusCode};

use super::classify::http_error;
use super::{FailureReason, ProbeError, ProbeSuccess};
use crate::config::{HttpCheck, Url};

/// The most of an answer body a check reads; the rest is ignored.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// The HTTP clients checks and alerts share (rustls with the ring provider): one that keeps
/// connections, one that opens a fresh connection for every request.
#[derive(Clone)]
pub struct HttpClient {
    /// What [`request`](Self::request) sends with.
    client: reqwest::Client,
    /// A client that keeps no connection.
    fresh: reqwest::Client,
}

impl HttpClient {
    /// Builds the clients; requests keep connections (alerts, `reuse_connections = true`).
    pub fn new() -> Result<Self, ClientError> {
        Self::trusting(Vec::new())
    }

    /// Clients that also trust the certificate authorities `roots` (a service's `ca_file`),
    /// with their own connections.
    pub fn trusting(
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Self, ClientError> {
        let tls = super::tls::client_config(roots)?;
        let client = Self::builder(tls.clone()).build()?;
        let fresh = Self::builder(tls).pool_max_idle_per_host(0).build()?;
        Ok(Self { client, fresh })
    }

    /// The same, sending every request on a fresh connection: DNS, connect and TLS are seen
    /// (and timed) on each check, as blackbox_exporter and Gatus do.
    pub fn fresh_connections(&self) -> Self {
        Self {
            client: self.fresh.clone(),
            fresh: self.fresh.clone(),
        }
    }

    fn builder(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("breakerd/", env!("CARGO_PKG_VERSION")))
            // Services that check one host (a provider's several APIs) share its connections.
            .pool_max_idle_per_host(32)
            // Credentials travel in headers, bodies and query strings that reqwest would carry
            // to wherever a redirect points: follow none, and send no Referer.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // Lookups and new connections time themselves, for the phases of a check.
            .dns_resolver(std::sync::Arc::new(super::phases::TimedResolver))
            .connector_layer(super::phases::TimedConnect)
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient")
    }
}

/// Why the HTTP clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS settings (e.g. a trusted root rustls cannot use).
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest's own settings.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// An answer as the judges see it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    /// For a redirect: the origin (scheme, host, port) it points to, never its path or query.
    pub(crate) redirect_to: Option<String>,
}

impl Answer {
    /// The failure a redirect means: checks never follow one.
    pub(crate) fn redirect_failure(&self) -> Option<ProbeError> {
        if !self.status.is_redirection() {
            return None;
        }
        let target = self.redirect_to.as_deref().unwrap_or("an unnamed place");
        Some(ProbeError::new(
            FailureReason::Redirect,
            format!(
                "HTTP {} redirect to {target}, not followed (a check never carries its credentials elsewhere)",
                self.status.as_u16()
            ),
        ))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The start of the body, for failure details.
    pub(crate) fn excerpt(&self) -> String {
        let text = self.text();
        let trimmed = text.trim();
        match trimmed.char_indices().nth(160) {
            Some((cut, _)) => format!("{}…", &trimmed[..cut]),
            None => trimmed.to_string(),
        }
    }
}

/// Sends `request` and reads up to [`MAX_BODY_BYTES`] of the answer.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &Url,
) -> Result<Answer, ProbeError> {
    let host = url.host_str().unwrap_or("host").to_string();
    let sent = tokio::time::Instant::now();
    let mut response = request
        .send()
        .await
        .map_err(|error| http_error(error, &host))?;
    let until_headers = sent.elapsed();
    let status = response.status();
    super::observed::http_status(status.as_u16());
    let redirect_to = status
        .is_redirection()
        .then(|| response.headers().get(reqwest::header::LOCATION))
        .flatten()
        .and_then(|location| location.to_str().ok())
        .and_then(|location| url.join(location).ok())
        .map(|target| target.origin().ascii_serialization());
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| http_error(error, &host))?
    {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    super::observed::exchange(until_headers, sent.elapsed() - until_headers);
    Ok(Answer {
        status,
        body,
        redirect_to,
    })
}

impl HttpClient {
    pub(crate) fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        self.client.request(method, url.clone())
    }
}

/// The generic check: status, then body text, then a JSON field.
pub(crate) async fn check(
    client: &HttpClient,
    check: &HttpCheck,
) -> Result<ProbeSuccess, ProbeError> {
    let method = Method::from_bytes(check.method.as_bytes()).unwrap_or(Method::GET);
    let mut request = client.request(method, &check.url);
    for (name, value) in &check.headers {
        request = request.header(name.as_str(), value.expose());
    }
    if let Some(body) = &check.body {
        request = request.body(body.clone());
    }
    let answer = send(request, &check.url).await?;
    judge(check, &answer)
}

fn judge(check: &HttpCheck, answer: &Answer) -> Result<ProbeSuccess, ProbeError> {
    let code = answer.status.as_u16();
    let status_ok = if check.expect_status.is_empty() {
        answer.status.is_success()
    } else {
        check.expect_status.contains(&code)
    };
    if !status_ok {
        if let Some(redirect) = answer.redirect_failure() {
            return Err(redirect);
        }
        let expected = if check.expect_status.is_empty() {
            "2xx".to_string()
        } else {
            check
                .expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Err(ProbeError::new(
            FailureReason::HttpStatus,
            format!("HTTP {code} (expected {expected}): {}", answer.excerpt()),
        ));
    }
    if let Some(needle) = &check.body_contains
        && !answer.text().contains(needle.as_str())
    {
        return Err(ProbeError::new(
            FailureReason::Body,
            format!("body does not contain \"{needle}\""),
        ));
    }
    if let Some(field) = &check.json_field {
        let Some(json) = answer.json() else {
            return Err(ProbeError::new(FailureReason::Body, "body is not JSON"));
        };
        let Some(value) = json_path(&json, field) else {
            return Err(ProbeError::new(
                FailureReason::Body,
                format!("JSON field {field} is missing"),
            ));
        };
        if let Some(expected) = &check.json_equals
            && value != expected
        {
            return Err(ProbeError::new(
                FailureReason::Body,
                format!("JSON field {field} is {value}, expected {expected}"),
            ));
        }
    }
    Ok(ProbeSuccess::default())
}

/// The value at a dotted path (`data.status`, `items.0.id`).
pub(crate) fn json_path<'v>(
    json: &'v serde_json::Value,
    path: &str,
) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(json, |value, part| match value {
        serde_json::Value::Object(map) => map.get(part),
        serde_json::Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// An answer with `status` and `body`, for the judges' tests.
#[cfg(test)]
pub(crate) fn answer(status: u16, body: &str) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    Answer {
        status,
        body: body.as_bytes().to_vec(),
        redirect_to: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> HttpCheck {
        HttpCheck {
            method: "GET".into(),
            url: Url::parse("http://127.0.0.1/health").unwrap(),
            headers: vec![],
            body: None,
            expect_status: vec![],
            body_contains: None,
            json_field: None,
            json_equals: None,
        }
    }

    #[test]
    fn status_body_and_json_are_judged_in_turn() {
        assert!(judge(&check(), &answer(204, "")).is_ok());
        let error = judge(&check(), &answer(503, "down for maintenance")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "http_status: HTTP 503 (expected 2xx): down for maintenance"
        );
        let strict = HttpCheck {
            expect_status: vec![200, 202],
            ..check()
        };
        assert_eq!(
            judge(&strict, &answer(204, "")).unwrap_err().detail,
            "HTTP 204 (expected 200 or 202): "
        );
        let contains = HttpCheck {
            body_contains: Some("ok".into()),
            ..check()
        };
        assert_eq!(
            judge(&contains, &answer(200, "fail")).unwrap_err().reason,
            FailureReason::Body
        );
        let field = HttpCheck {
            json_field: Some("data.status".into()),
            json_equals: Some(serde_json::json!("up")),
            ..check()
        };
        assert!(judge(&field, &answer(200, r#"{"data":{"status":"up"}}"#)).is_ok());
        assert_eq!(
            judge(&field, &answer(200, r#"{"data":{"status":"down"}}"#))
                .unwrap_err()
                .detail,
            "JSON field data.status is \"down\", expected \"up\""
        );
        assert_eq!(
            judge(&field, &answer(200, "<html>")).unwrap_err().detail,
            "body is not JSON"
        );
    }

    #[test]
    fn json_paths_walk_objects_and_arrays() {
        let json = serde_json::json!({"a": {"b": [10, {"c": true}]}});
        assert_eq!(json_path(&json, "a.b.1.c"), Some(&serde_json::json!(true)));
        assert_eq!(json_path(&json, "a.b.0"), Some(&serde_json::json!(10)));
        assert_eq!(json_path(&json, "a.x"), None);
        assert_eq!(json_path(&json, "a.b.9"), None);
    }
}
