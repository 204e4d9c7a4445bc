//! `breakerd demo`: the daemon against simulated providers on loopback — one healthy, one
//! flaky, one slow, one down, one Pesapal that answers HTTP 200 with an error body — and a local
//! alert sink that prints every alert, so a newcomer sees breakers open, half-open and close
//! with no credentials and no internet.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{Config, ProcessEnvironment};
use crate::daemon::{self, RunningDaemon};

/// How fast the demo runs: `1.0` for a person watching; tests run it faster.
#[derive(Clone, Copy, Debug)]
pub struct Pace(pub f64);

impl Pace {
    fn of(self, seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds * self.0)
    }

    fn text(self, seconds: f64) -> String {
        format!("{}ms", (seconds * self.0 * 1000.0).round().max(1.0) as u64)
    }
}

/// The flaky provider fails for this part of every cycle.
const FLAKY_CYCLE: f64 = 40.0;
const FLAKY_FAILING: f64 = 15.0;

#[derive(Clone)]
struct Simulator {
    started: Instant,
    pace: Pace,
    alerts: mpsc::UnboundedSender<Value>,
}

async fn healthy() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn flaky(State(sim): State<Simulator>) -> (StatusCode, Json<Value>) {
    let cycle = sim.pace.of(FLAKY_CYCLE).as_secs_f64();
    let phase = sim.started.elapsed().as_secs_f64() % cycle;
    if phase < sim.pace.of(FLAKY_FAILING).as_secs_f64() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "upstream overloaded" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "status": "ok" })))
    }
}

async fn slow(State(sim): State<Simulator>) -> Json<Value> {
    tokio::time::sleep(sim.pace.of(1.3)).await;
    Json(json!({ "status": "ok" }))
}

async fn pesapal() -> Json<Value> {
    // Pesapal's real rejection: HTTP 200 with an error body (as published; see
    // tests/fixtures/providers/pesapal/request_token_invalid_key_secret.http).
    Json(json!({
        "error": { "error_type": "api_error", "code": "invalid_consumer_key_or_secret_provided", "message": "" },
        "status": "500",
    }))
}

async fn alert_sink(State(sim): State<Simulator>, Json(alert): Json<Value>) -> StatusCode {
    let _ = sim.alerts.send(alert);
    StatusCode::OK
}

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    /// The daemon.
    pub daemon: RunningDaemon,
    /// Every alert the sink received, as breakerd sent it.
    pub alerts: mpsc::UnboundedReceiver<Value>,
    simulator: JoinHandle<()>,
}

impl Demo {
    /// Stops the daemon and the simulated providers.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.simulator.abort();
        self.daemon.shutdown().await
    }
}

/// The demo's `alerts.toml`: five services against the simulator at `simulator` (and a
/// closed port for the one that is down), alerts to the sink.
pub fn config_text(
    simulator: SocketAddr,
    down: SocketAddr,
    state_dir: &Path,
    pace: Pace,
) -> String {
    let p = |seconds| pace.text(seconds);
    format!(
        r#"# breakerd demo: simulated providers on loopback, alerts printed by a local sink.
[server]
admin_token = "demo-admin-token"
slow_call = "{slow_call}"

[services.healthy]
kind = "http"
url = "http://{simulator}/healthy"
every = "{every}"
timeout = "{timeout}"

[services.flaky]
kind = "http"
url = "http://{simulator}/flaky"
every = "{every}"
failure_threshold = 3
timeout = "{timeout}"
reset_timeout = "{reset}"

[services.slow]
kind = "http"
url = "http://{simulator}/slow"
every = "{slow_every}"
timeout = "{timeout}"

[services.down]
kind = "http"
url = "http://{down}/health"
every = "{every}"
failure_threshold = 3
timeout = "{timeout}"
reset_timeout = "{reset}"

[services.pesapal]
preset = "pesapal"
base_url = "http://{simulator}"
consumer_key = "demo-key"
consumer_secret = "demo-secret"
every = "{every}"
failure_threshold = 3
timeout = "{timeout}"
reset_timeout = "{reset}"

[alerts]
state_dir = "{state_dir}"
min_interval = "0s"

[[alerts.webhook]]
url = "http://{simulator}/alerts"
"#,
        slow_call = p(1.0),
        every = p(2.0),
        slow_every = p(3.0),
        timeout = p(5.0),
        reset = p(10.0),
        state_dir = state_dir.display(),
    )
}

/// Starts the simulated providers, the alert sink and the daemon on `listen`.
pub async fn start(listen: SocketAddr, pace: Pace) -> anyhow::Result<Demo> {
    let (alerts, received) = mpsc::unbounded_channel();
    let simulator = Simulator {
        started: Instant::now(),
        pace,
        alerts,
    };
    let app = Router::new()
        .route("/healthy", get(healthy))
        .route("/flaky", get(flaky))
        .route("/slow", get(slow))
        .route("/api/Auth/RequestToken", post(pesapal))
        .route("/alerts", post(alert_sink))
        .with_state(simulator);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("starting the simulated providers")?;
    let simulated = listener.local_addr()?;
    let simulator = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // A port nothing listens on: the provider that is down refuses connections.
    let down = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").context("finding a closed port")?;
        probe.local_addr()?
    };
    let state_dir = std::env::temp_dir().join(format!("breakerd-demo-{}", std::process::id()));
    let text = config_text(simulated, down, &state_dir, pace);
    let config = Config::parse(&text, "demo.toml", &ProcessEnvironment)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let daemon = daemon::start(config, Some(listen)).await?;
    Ok(Demo {
        daemon,
        alerts: received,
        simulator,
    })
}

/// Runs the demo until Ctrl-C or SIGTERM, printing each alert as it arrives.
pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let mut demo = start(listen, Pace(1.0)).await?;
    let address = demo.daemon.address();
    println!(
        "breakerd demo is running with five simulated providers: healthy, flaky (fails 15 s in every 40 s),\n\
         slow (1.3 s per call), down (connection refused) and pesapal (HTTP 200 with an error body).\n\n\
         Status page:  http://{address}/\n\
         Metrics:      http://{address}/metrics\n\
         Breakers:     http://{address}/api/v1/circuit-breakers\n\
         Health:       http://{address}/api/v1/circuit-breakers/health\n\
         Admin token:  demo-admin-token   (curl -X POST -H 'Authorization: Bearer demo-admin-token' http://{address}/api/v1/circuit-breakers/reset-all)\n\n\
         Alerts arrive below as breakers change state. Ctrl-C stops the demo.\n"
    );
    let stop = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&stop);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        notify.notify_one();
    });
    loop {
        tokio::select! {
            alert = demo.alerts.recv() => match alert {
                Some(alert) => println!("{}", alert_line(&alert)),
                None => break,
            },
            _ = stop.notified() => break,
        }
    }
    demo.shutdown().await
}

/// The line the demo prints for one alert. A recovery says how long the outage lasted and
/// what it was (`was: …`): the old error is never shown as if it were current.
pub fn alert_line(alert: &Value) -> String {
    let reason = alert["reason"].as_str().unwrap_or("");
    if alert["standing"].as_str() == Some("recovered") {
        let service = alert["service"].as_str().unwrap_or("?");
        let after = alert["recoveredAfter"]
            .as_str()
            .map(|after| format!(" after {after}"))
            .unwrap_or_default();
        let was = cause_words(&alert["cause"])
            .map(|was| format!(" (was: {was})"))
            .unwrap_or_default();
        return format!("ALERT  {service} recovered{after}  — {reason}{was}");
    }
    let last = alert["lastFailure"]
        .as_str()
        .map(|last| format!(" (last error: {last})"))
        .unwrap_or_default();
    format!("ALERT  {}  — {reason}{last}", subject(alert))
}

/// `http_status — HTTP 503 (provider: 500.003.02)`, from a notification's `cause`.
fn cause_words(cause: &Value) -> Option<String> {
    let reason = cause["reason"].as_str()?;
    let detail = cause["detail"].as_str().unwrap_or("");
    let code = cause["code"]
        .as_str()
        .map(|code| format!(" (provider: {code})"))
        .unwrap_or_default();
    Some(format!("{reason} — {detail}{code}"))
}

fn subject(alert: &Value) -> String {
    let service = alert["service"].as_str().unwrap_or("?");
    match (alert["kind"].as_str(), alert["to"].as_str()) {
        (Some("flapping"), Some(to)) => format!("{service} is flapping, now {to}"),
        (_, Some("CLOSED")) => format!("{service} is CLOSED (recovered)"),
        (_, Some(to)) => format!("{service} is {to}"),
        _ => service.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_says_how_long_it_lasted_and_what_it_was_not_the_old_error_as_current() {
        let recovered = json!({
            "service": "flaky", "to": "CLOSED", "standing": "recovered",
            "reason": "1 trial call succeeded", "recoveredAfter": "12s",
            "lastFailure": "http_status: HTTP 503",
            "cause": { "reason": "http_status", "detail": "HTTP 503", "code": "500.003.02", "past": true },
        });
        assert_eq!(
            alert_line(&recovered),
            "ALERT  flaky recovered after 12s  — 1 trial call succeeded (was: http_status — HTTP 503 (provider: 500.003.02))"
        );
        let down = json!({
            "service": "down", "to": "OPEN", "standing": "down",
            "reason": "3 consecutive failures", "lastFailure": "connect: refused",
        });
        assert_eq!(
            alert_line(&down),
            "ALERT  down is OPEN  — 3 consecutive failures (last error: connect: refused)"
        );
    }
}
