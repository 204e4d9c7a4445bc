//! The HTTP check and the request plumbing the presets share: checks go out over lean
//! HTTP/1.1 connections driven by the check's own task (fresh, or kept per origin), answer
//! bodies are bounded, and errors name the host but never the full URL.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST, LOCATION, USER_AGENT};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::time::Instant;

use super::classify::transport_failure;
use super::pool::Pool;
use super::request::{CheckRequest, basic_credentials};
use super::{FailureReason, ProbeError, ProbeSuccess};
use crate::config::{HttpCheck, Url};
use crate::outcome::Phases;
use crate::transport::connection::{Connection, Connector, Opening, Origin, TransportError};
use crate::transport::{ClientError, Transport};

/// The most of an answer body a check reads; the rest is ignored.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// What checks send with and what alerts send with (both built by [`crate::transport`]):
/// checks through their own HTTP/1.1 connections, fresh for every check unless kept;
/// alerts through reqwest, which keeps its connections.
#[derive(Clone)]
pub struct HttpClient {
    /// Opens check connections, with the TLS settings servers are verified with.
    connector: Connector,
    /// Kept check connections; `None` opens a fresh one for every check.
    pool: Option<Arc<Pool>>,
    /// The clients and root store everything else is built from.
    transport: Transport,
}

impl HttpClient {
    /// Builds the clients over the platform's roots; checks keep their connections
    /// (`reuse_connections = true`). Reads the platform's roots: call it at startup or off the
    /// async runtime.
    pub fn new() -> Result<Self, ClientError> {
        Self::over(Transport::load()?)
    }

    /// The clients of `transport`, checks keeping their connections.
    pub fn over(transport: Transport) -> Result<Self, ClientError> {
        let checks = super::tls::check_config(transport.trust())?;
        Ok(Self {
            connector: Connector::new(Arc::new(checks)),
            pool: Some(Arc::default()),
            transport,
        })
    }

    /// A client whose checks and proxied calls also trust the certificate authorities `roots`
    /// (a service's `ca_file`), with their own connections. Reads nothing.
    pub fn trusting(
        &self,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Self, ClientError> {
        Self::over(self.transport.trusting(&roots)?)
    }

    /// The same, the proxy keeping its idle upstream connections as `pool` says.
    ///
    /// # Errors
    /// A client reqwest will not build.
    pub fn with_proxy_pool(&self, pool: crate::transport::ProxyPool) -> Result<Self, ClientError> {
        Ok(Self {
            transport: self.transport.with_proxy_pool(pool)?,
            ..self.clone()
        })
    }

    /// The clients and root store this one was built from.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The same, sending every check on a fresh connection: DNS, connect and TLS are seen
    /// (and timed) on each check, as blackbox_exporter and Gatus do.
    pub fn fresh_connections(&self) -> Self {
        Self {
            pool: None,
            ..self.clone()
        }
    }

    /// Sends a check's request — on a kept connection when there is a sound one, else on a
    /// fresh one — and reads up to [`MAX_BODY_BYTES`] of the answer, recording its status and
    /// phases in the run's observation slot.
    pub(crate) async fn send(&self, request: CheckRequest) -> Result<Answer, ProbeError> {
        if let Some(invalid) = request.invalid {
            return Err(invalid);
        }
        let Some(origin) = Origin::of(&request.url) else {
            return Err(ProbeError::new(
                FailureReason::Protocol,
                format!(
                    "{}: only http:// and https:// URLs with a host can be checked",
                    request.url.scheme()
                ),
            ));
        };
        let failure = |error: TransportError| transport_failure(&error, &origin.host);
        let kept = self.pool.as_ref().and_then(|pool| pool.take(&origin));
        if let Some(mut connection) = kept {
            let sent = Instant::now();
            match exchange(&mut connection, outgoing(&request)?).await {
                Ok(response) => {
                    let exchange = Exchange {
                        opening: Opening::default(),
                        sent,
                        url: &request.url,
                        origin: &origin,
                    };
                    return self.read(connection, response, exchange).await;
                }
                // The server closed the kept connection as the request went out: the request
                // was not acted on, so a fresh connection carries it (as browsers do).
                Err(error) if worth_retrying(&error, &request.method) => {}
                Err(error) => return Err(failure(TransportError::Http(error))),
            }
        }
        let (mut connection, opening) = self
            .connector
            .open(&request.url, &origin)
            .await
            .map_err(failure)?;
        let sent = Instant::now();
        let response = exchange(&mut connection, outgoing(&request)?)
            .await
            .map_err(|error| failure(TransportError::Http(error)))?;
        let exchange = Exchange {
            opening,
            sent,
            url: &request.url,
            origin: &origin,
        };
        self.read(connection, response, exchange).await
    }

    /// Reads the answer's body (bounded), records the phases, and keeps the connection if it
    /// is sound and wanted.
    async fn read(
        &self,
        mut connection: Connection,
        response: http::Response<hyper::body::Incoming>,
        exchange: Exchange<'_>,
    ) -> Result<Answer, ProbeError> {
        let Exchange {
            opening,
            sent,
            url,
            origin,
        } = exchange;
        let first_byte = sent.elapsed();
        let status = response.status();
        super::observed::http_status(status.as_u16());
        let redirect_to = status
            .is_redirection()
            .then(|| response.headers().get(LOCATION))
            .flatten()
            .and_then(|location| location.to_str().ok())
            .and_then(|location| url.join(location).ok())
            .map(|target| target.origin().ascii_serialization());
        let (head, mut incoming) = response.into_parts();
        let mut body = Vec::new();
        let mut complete = false;
        while body.len() < MAX_BODY_BYTES {
            match connection.driver.alongside(incoming.frame()).await {
                None => {
                    complete = true;
                    break;
                }
                Some(Ok(frame)) => {
                    if let Ok(chunk) = frame.into_data() {
                        let room = MAX_BODY_BYTES - body.len();
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                }
                Some(Err(error)) => {
                    return Err(transport_failure(
                        &TransportError::Http(error),
                        &origin.host,
                    ));
                }
            }
        }
        super::observed::phases(Phases {
            dns: opening.dns,
            connect: opening.connect,
            tls: opening.tls,
            first_byte,
            body: sent.elapsed().saturating_sub(first_byte),
        });
        if let Some(pool) = &self.pool
            && complete
        {
            drop(incoming);
            if connection.is_reusable() {
                pool.put(origin, connection);
            }
        }
        Ok(Answer {
            status,
            headers: head.headers,
            body,
            redirect_to,
        })
    }
}

/// One exchange's facts the answer is read with.
struct Exchange<'a> {
    /// What opening the connection took (nothing for a kept one).
    opening: Opening,
    /// When the request went out.
    sent: Instant,
    url: &'a Url,
    origin: &'a Origin,
}

const USER_AGENT_VALUE: &str = crate::transport::USER_AGENT;

/// The request as it goes out: origin-form target, `Host`, and the defaults reqwest and curl
/// send (`User-Agent`, `Accept: */*`, Basic credentials written into the URL).
fn outgoing(request: &CheckRequest) -> Result<http::Request<Full<Bytes>>, ProbeError> {
    let url = &request.url;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let uri = http::Uri::try_from(target).map_err(|_| {
        ProbeError::new(
            FailureReason::Protocol,
            "the URL's path or query cannot be sent in an HTTP request",
        )
    })?;
    let host = HeaderValue::from_str(&url[url::Position::BeforeHost..url::Position::AfterPort])
        .map_err(|_| ProbeError::new(FailureReason::Protocol, "the URL's host cannot be sent"))?;
    let mut outgoing = http::Request::new(Full::new(request.body.clone()));
    *outgoing.method_mut() = request.method.clone();
    *outgoing.uri_mut() = uri;
    let headers = outgoing.headers_mut();
    headers.clone_from(&request.headers);
    headers.insert(HOST, host);
    headers
        .entry(USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT_VALUE));
    headers
        .entry(ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    if !url.username().is_empty() && !headers.contains_key(AUTHORIZATION) {
        let user = percent_decoded(url.username());
        let password = url.password().map(percent_decoded).unwrap_or_default();
        if let Ok(mut value) = HeaderValue::from_str(&basic_credentials(&user, &password)) {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
    }
    Ok(outgoing)
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Sends `request` on `connection` once it is ready, and waits for the answer's headers.
async fn exchange(
    connection: &mut Connection,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
    let Connection { sender, driver } = connection;
    driver
        .alongside(std::future::poll_fn(|context| sender.poll_ready(context)))
        .await?;
    driver.alongside(sender.send_request(request)).await
}

/// Whether a failure on a kept connection means the server had closed it before acting on the
/// request: nothing was sent, or the connection ended before any answer to a method that is
/// safe to repeat.
fn worth_retrying(error: &hyper::Error, method: &Method) -> bool {
    let repeatable = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    // Incomplete answers and closed connections are `reset` (classify), as is a reset itself.
    error.is_canceled()
        || (repeatable && crate::transport::reason::hyper_reason(error) == FailureReason::Reset)
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient")
    }
}

/// An answer as the judges see it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// The answer's headers (hyper bounds their number and size).
    pub(crate) headers: http::HeaderMap,
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

/// The generic check: the service's own rules, if one matches; else status, then body text,
/// then a JSON field.
pub(crate) async fn check(
    client: &HttpClient,
    check: &HttpCheck,
    rules: &crate::provider::Judge,
) -> Result<ProbeSuccess, ProbeError> {
    let method = Method::from_bytes(check.method.as_bytes()).unwrap_or(Method::GET);
    let mut request = CheckRequest::new(method, &check.url);
    for (name, value) in &check.headers {
        request = request.header(name.as_str(), value.expose());
    }
    if let Some(body) = &check.body {
        request = request.body(body.clone());
    }
    let answer = client.send(request).await?;
    if rules.has_user_rules() {
        // Judged as the proxy and the outcome API judge: the path below the upstream, and a
        // body longer than the rules read left unread.
        let path = rules.relative_path(check.url.path());
        let operation = rules.operation(&check.method, path);
        let head = crate::provider::Head {
            operation: &operation.name,
            method: &check.method,
            path,
            status: answer.status.as_u16(),
            headers: &answer.headers,
        };
        let body =
            (answer.body.len() <= crate::provider::MAX_JUDGED_BODY).then_some(&answer.body[..]);
        if let Some(judged) = rules.judge_by_user_rules(&head, body) {
            return judged.check_result();
        }
    }
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
        headers: http::HeaderMap::new(),
        body: body.as_bytes().to_vec(),
        redirect_to: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// How a test server treats a connection after answering.
    #[derive(Clone, Copy)]
    enum After {
        /// Keeps it for the next request.
        KeepAlive,
        /// Closes it without saying so (no `Connection: close`), as a server's idle timeout does.
        Close,
        /// Keeps it, but closes it unanswered when the next request comes (the race of an idle
        /// timeout with a request on its way).
        DropSecondRequest,
    }

    /// The request heads a test server received.
    type Heads = Arc<std::sync::Mutex<Vec<String>>>;

    /// A loopback HTTP/1.1 server answering `200 ok`, counting the connections it accepted and
    /// keeping the request heads.
    async fn server_keeping_heads(after: After) -> (Url, Arc<AtomicUsize>, Heads) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/health", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let heads = Heads::default();
        let kept = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let mut answered = 0;
                    loop {
                        let mut request = Vec::new();
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buffer[..n]),
                            }
                        }
                        kept.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&request).into_owned());
                        if answered == 1 && matches!(after, After::DropSecondRequest) {
                            return;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                        answered += 1;
                        if matches!(after, After::Close) {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted, heads)
    }

    async fn server(after: After) -> (Url, Arc<AtomicUsize>) {
        let (url, accepted, _) = server_keeping_heads(after).await;
        (url, accepted)
    }

    #[tokio::test]
    async fn the_request_carries_host_defaults_and_credentials_written_in_the_url() {
        let (url, _, heads) = server_keeping_heads(After::KeepAlive).await;
        let client = HttpClient::new().unwrap();
        let mut with_user = url.clone();
        with_user.set_username("key").unwrap();
        with_user.set_password(Some("p%40ss")).unwrap();
        with_user.set_query(Some("a=1&b=two"));
        get(&client, &with_user).await.unwrap();
        let request = CheckRequest::new(Method::GET, &url).header("Accept", "application/json");
        client.send(request).await.unwrap();
        let heads = heads.lock().unwrap().clone();
        let host = format!("host: 127.0.0.1:{}", url.port().unwrap());
        assert!(
            heads[0].starts_with("GET /health?a=1&b=two HTTP/1.1\r\n"),
            "{}",
            heads[0]
        );
        assert!(heads[0].contains(&host), "{}", heads[0]);
        assert!(heads[0].contains(&format!(
            "authorization: {}",
            basic_credentials("key", "p@ss")
        )));
        assert!(heads[0].contains("accept: */*"), "{}", heads[0]);
        assert!(heads[0].contains(concat!("user-agent: breakerd/", env!("CARGO_PKG_VERSION"))));
        assert!(
            heads[1].contains("accept: application/json"),
            "{}",
            heads[1]
        );
        assert!(!heads[1].contains("*/*"), "one Accept: {}", heads[1]);
        assert!(!heads[1].contains("authorization"), "{}", heads[1]);
    }

    async fn get(client: &HttpClient, url: &Url) -> Result<Answer, ProbeError> {
        client.send(CheckRequest::new(Method::GET, url)).await
    }

    #[tokio::test]
    async fn kept_connections_are_reused_and_fresh_ones_are_not() {
        let (url, accepted) = server(After::KeepAlive).await;
        let kept = HttpClient::new().unwrap();
        for _ in 0..5 {
            assert_eq!(get(&kept, &url).await.unwrap().body, b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(kept.pool.as_ref().map(|pool| pool.idle_count()), Some(1));
        let fresh = kept.fresh_connections();
        for _ in 0..5 {
            assert_eq!(get(&fresh, &url).await.unwrap().body, b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_never_a_failed_check() {
        let (url, accepted) = server(After::Close).await;
        let kept = HttpClient::new().unwrap();
        for round in 0..20 {
            let answer = get(&kept, &url).await;
            assert!(answer.is_ok(), "round {round}: {answer:?}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 20);
    }

    #[tokio::test]
    async fn a_request_lost_to_a_closing_connection_is_sent_again_only_if_safe() {
        let (url, accepted) = server(After::DropSecondRequest).await;
        let kept = HttpClient::new().unwrap();
        assert!(get(&kept, &url).await.is_ok());
        assert!(get(&kept, &url).await.is_ok(), "a GET goes again, freshly");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let post = kept
            .send(CheckRequest::new(Method::POST, &url).body("{}"))
            .await
            .unwrap_err();
        assert_eq!(post.reason, FailureReason::Reset, "{post}");
        assert!(post.detail.starts_with("127.0.0.1: "), "{post}");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a POST is not repeated");
    }

    #[tokio::test]
    async fn transport_failures_have_their_reasons() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = HttpClient::new().unwrap().fresh_connections();
        let refused = Url::parse(&format!("http://127.0.0.1:{port}/secret/path")).unwrap();
        let error = get(&client, &refused).await.unwrap_err();
        assert_eq!(error.reason, FailureReason::Connect, "{error}");
        assert!(
            error
                .detail
                .starts_with(&format!("127.0.0.1: connecting to 127.0.0.1:{port}: ")),
            "{error}"
        );
        assert!(!error.detail.contains("secret"), "{error}");
        let unresolved = TransportError::Resolve(std::io::Error::other("no such name"));
        assert_eq!(unresolved.reason(), FailureReason::Dns);
        let ftp = Url::parse("ftp://127.0.0.1/").unwrap();
        assert_eq!(
            get(&client, &ftp).await.unwrap_err().reason,
            FailureReason::Protocol
        );
    }

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
