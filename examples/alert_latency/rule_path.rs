//! The shipped Prometheus rule path for one breaker opening: a real Prometheus at the intervals
//! of `grafana/prometheus/prometheus.yml` evaluating `breakerd-rules.yml` (with its `for:`), a
//! real Alertmanager with the `group_wait` of `alertmanager.yml`, timed from the breaker opening
//! to Alertmanager's webhook having the alert.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

use super::{free_port, unix_ms};

/// A setting such as `group_wait: 30s` read from a shipped file.
fn shipped(file: &str, key: &str) -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("grafana/prometheus")
        .join(file);
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .ok_or_else(|| anyhow::anyhow!("{key} not found in {}", path.display()))
}

async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn spawn(program: &str, args: &[String]) -> anyhow::Result<Child> {
    Ok(Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Milliseconds from opening the `bench` breaker to Alertmanager's webhook having the alert.
pub(crate) async fn measure(
    daemon: &breakerd::daemon::RunningDaemon,
    scratch: &Path,
) -> anyhow::Result<f64> {
    let firing: Arc<Mutex<Option<SystemTime>>> = Arc::default();
    let hits = Arc::clone(&firing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = listener.local_addr()?;
    let app = Router::new().route(
        "/am",
        post(move |body: Bytes| {
            let hits = Arc::clone(&hits);
            async move {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if json["status"] == "firing"
                    && json["commonLabels"]["alertname"] == "BreakerdCircuitOpen"
                {
                    hits.lock().expect("hits").get_or_insert(SystemTime::now());
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let group_wait = shipped("alertmanager.yml", "group_wait")?;
    let scrape = shipped("prometheus.yml", "scrape_interval")?;
    let evaluation = shipped("prometheus.yml", "evaluation_interval")?;
    let rule_for = shipped("breakerd-rules.yml", "for")?;
    let am_port = free_port();
    std::fs::write(
        scratch.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'service']\n  group_wait: {group_wait}\n  group_interval: 5m\n  repeat_interval: 4h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://{hook}/am'\n"
        ),
    )?;
    let mut alertmanager = spawn(
        "prometheus-alertmanager",
        &[
            format!(
                "--config.file={}",
                scratch.join("alertmanager.yml").display()
            ),
            format!("--storage.path={}", scratch.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".to_string(),
        ],
    )?;
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/prometheus/breakerd-rules.yml");
    let prom_port = free_port();
    std::fs::write(
        scratch.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: {scrape}\n  evaluation_interval: {evaluation}\nrule_files:\n  - '{}'\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: breakerd\n    static_configs:\n      - targets: ['{}']\n",
            rules.display(),
            daemon.address()
        ),
    )?;
    let mut prometheus = spawn(
        "prometheus",
        &[
            format!("--config.file={}", scratch.join("prometheus.yml").display()),
            format!(
                "--storage.tsdb.path={}",
                scratch.join("prom-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
    )?;
    wait_port(am_port, "alertmanager").await?;
    wait_port(prom_port, "prometheus").await?;
    // Start from a running setup: Prometheus has scraped breakerd at least once.
    let up = format!("http://127.0.0.1:{prom_port}/api/v1/query?query=up");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::get(&up)
        .await?
        .text()
        .await?
        .contains("\"value\":[")
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "prometheus did not scrape breakerd"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let service = daemon
        .shared()
        .registry()
        .get("bench")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no service"))?;
    service.breaker.reset();
    service.breaker.force_open();
    let opened = SystemTime::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    let arrived = loop {
        if let Some(at) = *firing.lock().expect("firing") {
            break at;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the rule path did not deliver within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for child in [&mut prometheus, &mut alertmanager] {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "shipped intervals: scrape {scrape}, evaluation {evaluation}, rule for: {rule_for}, Alertmanager group_wait {group_wait}"
    );
    Ok(unix_ms(arrived) - unix_ms(opened))
}
