//! Alert latency: from a breaker's transition to the webhook receiver having the body, and to a
//! real SMTP server (aiosmtpd) having the mail, over many transitions.
//!
//! Beside it, the shipped Prometheus rule path for the same kind of event: a real Prometheus at
//! the intervals of `grafana/prometheus/prometheus.yml` evaluating `breakerd-rules.yml` (with its
//! `for:`), and a real Alertmanager with the `group_wait` of `alertmanager.yml`, timed from the
//! breaker opening to Alertmanager's webhook having the alert.
//!
//! Run: `cargo run --release --example alert_latency -- [TRANSITIONS] [--rule-path]` (default 200;
//! needs Debian's python3-aiosmtpd, and prometheus and prometheus-alertmanager for the rule
//! path, which takes one to two minutes). Targets: webhook p99 at most 50 ms, email p99 at most
//! 200 ms.

mod rule_path;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use breakerd::config::{Config, ProcessEnvironment};

/// Per delivered notification: its id → (the transition's time in Unix ms, when it arrived).
type Received = Arc<Mutex<BTreeMap<u64, (f64, SystemTime)>>>;

pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    let now = SystemTime::now();
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body)
        && let (Some(id), Some(at)) = (json["id"].as_u64(), json["atUnixMs"].as_f64())
    {
        received
            .lock()
            .expect("receiver lock")
            .insert(id, (at, now));
    }
    "ok"
}

pub(crate) fn unix_ms(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn percentiles(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        values[((p / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1]
    };
    format!(
        "n={} p50={:.1} ms p95={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        at(50.0),
        at(95.0),
        at(99.0),
        values[values.len() - 1]
    )
}

/// The mails in the Maildir: (the transition's time from the body, the file's arrival time).
fn mails(maildir: &std::path::Path) -> Vec<(SystemTime, SystemTime)> {
    let Ok(listing) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    listing
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let arrived = entry.metadata().ok()?.modified().ok()?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let at = text
                .lines()
                .find_map(|line| line.strip_prefix("At:"))?
                .trim()
                .to_string();
            Some((humantime::parse_rfc3339(&at).ok()?, arrived))
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let transitions: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let with_rule_path = std::env::args().any(|arg| arg == "--rule-path");
    runtime.block_on(run(transitions, with_rule_path))
}

async fn run(transitions: usize, with_rule_path: bool) -> anyhow::Result<()> {
    let scratch =
        std::env::temp_dir().join(format!("breakerd-alert-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let smtp_port = free_port();
    let maildir = scratch.join("maildir");
    let mut smtp = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", smtp_port)).is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "aiosmtpd did not start"
        );
        std::thread::yield_now();
    }

    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook: SocketAddr = listener.local_addr()?;
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let text = format!(
        "[services.bench]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nevery = \"1d\"\n\
         [alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\n\
         [[alerts.webhook]]\nurl = \"http://{hook}/hook\"\n\
         [alerts.email]\nserver = \"127.0.0.1:{smtp_port}\"\ntls = \"none\"\nfrom = \"breakerd@example.com\"\nto = [\"oncall@example.com\"]\n",
        scratch.join("state").display()
    );
    let config = Config::parse(&text, "alert_latency.toml", &ProcessEnvironment)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let daemon = breakerd::daemon::start(config, Some("127.0.0.1:0".parse()?)).await?;
    let service = daemon
        .shared()
        .registry()
        .get("bench")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no service"))?;

    // One transition at a time: wait for its webhook and email deliveries before the next, so
    // each figure is one delivery's latency, not a queue's.
    for index in 0..transitions {
        let before = received.lock().expect("receiver lock").len();
        let mails_before = mails(&maildir).len();
        if index % 2 == 0 {
            service.breaker.force_open();
        } else {
            service.breaker.reset();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.lock().expect("receiver lock").len() == before
            || mails(&maildir).len() == mails_before
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "transition {index} was not delivered"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let rule_path_ms = if with_rule_path {
        Some(rule_path::measure(&daemon, &scratch).await?)
    } else {
        None
    };
    daemon.shutdown().await?;
    let _ = smtp.kill();
    let _ = smtp.wait();

    let webhook: Vec<f64> = received
        .lock()
        .expect("receiver lock")
        .values()
        .map(|(at, arrived)| unix_ms(*arrived) - at)
        .collect();
    let webhook_copy = webhook.clone();
    let email: Vec<f64> = mails(&maildir)
        .into_iter()
        .map(|(at, arrived)| unix_ms(arrived) - unix_ms(at))
        .collect();
    println!(
        "transition -> webhook receiver has the body: {}",
        percentiles(webhook)
    );
    println!(
        "transition -> SMTP server has the mail:     {}",
        percentiles(email)
    );
    if let Some(ms) = rule_path_ms {
        let mut sorted = webhook_copy;
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "shipped rule path (scrape, rule with its for:, Alertmanager group_wait) -> webhook: {:.1} s = {:.0}x breakerd's median webhook latency",
            ms / 1000.0,
            ms / median
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
