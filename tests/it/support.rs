//! Helpers shared by the integration tests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use breakerd::breaker::{Breaker, BreakerError, State, Transition};
use tokio::sync::broadcast;

/// The error of the fake operations.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDown(pub &'static str);

impl fmt::Display for ProviderDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider down: {}", self.0)
    }
}

impl std::error::Error for ProviderDown {}

/// The seed's payment-provider breaker: 3 failures, 30 s timeout, 120 s reset timeout.
pub fn payment_breaker(name: &str) -> Breaker {
    Breaker::builder(name)
        .failure_threshold(3)
        .timeout(Duration::from_secs(30))
        .reset_timeout(Duration::from_secs(120))
        .build()
        .expect("the seed's policy is valid")
}

/// Calls that fail at once.
pub async fn fail(breaker: &Breaker) -> Result<u32, BreakerError<ProviderDown>> {
    breaker.call(|| async { Err(ProviderDown("503")) }).await
}

/// Calls that succeed at once.
pub async fn succeed(breaker: &Breaker) -> Result<u32, BreakerError<ProviderDown>> {
    breaker.call(|| async { Ok(7) }).await
}

/// Counts how many times an operation really ran.
#[derive(Clone, Default)]
pub struct RunCount(Arc<AtomicUsize>);

impl RunCount {
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The next transition, failing the test if the channel closed or lagged.
pub async fn next_transition(events: &mut broadcast::Receiver<Transition>) -> Transition {
    events.recv().await.expect("a transition event")
}

/// Waits for the transition into `state` and returns it.
pub async fn transition_to(
    events: &mut broadcast::Receiver<Transition>,
    state: State,
) -> Transition {
    loop {
        let event = next_transition(events).await;
        if event.to == state {
            return event;
        }
    }
}

pub mod fake_provider;
pub mod fixtures;

/// Variables the test configs refer to, never the process environment.
#[derive(Default)]
pub struct TestEnv(pub std::collections::BTreeMap<String, String>);

impl TestEnv {
    /// The fake providers' credentials under the names the test configs use.
    pub fn with_fake_credentials() -> Self {
        use fake_provider::*;
        let pairs = [
            ("KEY", KEY),
            ("SECRET", SECRET),
            ("AT_USERNAME", AT_USERNAME),
            ("AT_API_KEY", AT_API_KEY),
            ("WA_PHONE_ID", WA_PHONE_ID),
            ("WA_TOKEN", WA_TOKEN),
            ("ADMIN_TOKEN", "admin-token-value"),
        ];
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl breakerd::config::Environment for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|error| error.to_string())
    }
}

/// A validated config from `text`, with the fake providers' credentials.
pub fn test_config(text: &str) -> breakerd::config::Config {
    match breakerd::config::Config::parse(text, "test.toml", &TestEnv::with_fake_credentials()) {
        Ok(config) => config,
        Err(error) => panic!("test config is invalid:\n{error}"),
    }
}

/// The probe of the only service in `text`.
pub fn probe_for(text: &str) -> breakerd::probe::Probe {
    let config = test_config(text);
    let service = config.services.into_iter().next().expect("one service");
    breakerd::probe::Probe::new(
        service.check.clone(),
        breakerd::probe::HttpClient::new().expect("HTTP client"),
        breakerd::registry::judge_of(&service),
    )
}

/// Owned `(from, to)` pairs, to compare with [`receiver::changes`].
pub fn pair(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect()
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

pub mod smtp_fake;
pub mod smtp_server;
pub use smtp_server::wait_until_listening;

/// A fresh, empty directory for one test's files.
pub fn scratch_dir(label: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "breakerd-test-{}-{}-{label}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Handler state for router-level tests, built from a config's text.
pub fn app_state(text: &str) -> breakerd::api::AppState {
    let config = test_config(text);
    let metrics = std::sync::Arc::new(breakerd::metrics::Metrics::new());
    let client = breakerd::probe::HttpClient::new().expect("HTTP client");
    let registry =
        breakerd::registry::Registry::build(&config, &client, &metrics).expect("registry");
    std::sync::Arc::new(breakerd::api::Shared::new(
        registry,
        metrics,
        std::sync::Arc::new(config),
    ))
}

/// Sends one request to the router; returns the status and the body as JSON (or as a string).
pub async fn send(
    state: &breakerd::api::AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(axum::body::Body::from(body.unwrap_or("").to_string()))
        .expect("request");
    let response = breakerd::api::router(state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, json)
}

pub mod alertmanager;
pub mod browser;
pub mod channel_fake;
pub mod dns_server;
pub mod prometheus;
pub mod receiver;
pub mod tls;
pub mod upstream;

/// Starts a daemon from config text on a free loopback port; state is kept in a fresh
/// scratch directory unless the text names one.
pub async fn start_daemon(text: &str) -> breakerd::daemon::RunningDaemon {
    let mut config = test_config(text);
    if !text.contains("state_dir") {
        config.alerts.state_dir = scratch_dir("state");
    }
    breakerd::daemon::start(config, Some("127.0.0.1:0".parse().expect("address")))
        .await
        .expect("daemon starts")
}

/// The problems `check` finds in config `text` (read as `alerts.toml`), one line each.
pub fn config_problems(text: &str) -> Vec<String> {
    breakerd::config::Config::parse(text, "alerts.toml", &breakerd::config::ProcessEnvironment)
        .unwrap_err()
        .lines()
}

/// GETs `path` from the daemon: status and body text.
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    // Bounded, so a daemon that stops answering fails the test rather than hanging it.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let response = client
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .expect("daemon answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Which of the proxy's own answers `response` is (its `x-breakerd-answer`), if it is one.
pub fn proxy_answer(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(breakerd::proxy::ANSWER_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// GETs JSON from the daemon.
pub async fn get_json(address: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (_, body) = http_get(address, path).await;
    serde_json::from_str(&body).expect("JSON body")
}

/// The value of the sample line that starts with `series` in exposition `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Polls `condition` until it holds, failing the test with `what` after `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// A server from a Debian package, run quietly for one test and killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    _dir: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts `program` with `args` (it must listen on `port`) and waits until it accepts
    /// connections; `dir` (its files) lives as long as it does.
    pub fn start(
        program: &str,
        package: &str,
        args: &[String],
        port: u16,
        dir: std::path::PathBuf,
    ) -> Self {
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "start {program}: {error} (install Debian's {package}; see .ci/debian-packages)"
                )
            });
        let server = Self { child, _dir: dir };
        wait_until_listening(port, program);
        server
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
