//! A real Prometheus server (Debian's `prometheus`) scraping one target every second, and
//! `promtool check metrics`.

use std::io::Write as _;
use std::process::{Command, Stdio};

pub struct Prometheus {
    pub port: u16,
    _server: super::ServerProcess,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) every second.
    pub fn scraping(target: &str, rules: Option<&str>) -> Self {
        let dir = super::scratch_dir("prometheus");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: breakerd\n    static_configs:\n      - targets: ['{target}']\n"
        );
        if let Some(rules) = rules {
            config.push_str(&format!("rule_files:\n  - '{rules}'\n"));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = super::closed_port();
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        let server = super::ServerProcess::start("prometheus", "prometheus", &args, port, dir);
        Self {
            port,
            _server: server,
        }
    }

    /// Runs an instant query; returns the `data.result` array.
    pub async fn query(&self, expression: &str) -> Vec<serde_json::Value> {
        self.api("query", &[("query", expression)], &["data", "result"])
            .await
    }

    /// Runs a range query from `start` to `end` (Unix seconds) at one-second steps; returns
    /// the `data.result` array (each series with its `values`).
    pub async fn query_range(
        &self,
        expression: &str,
        start: f64,
        end: f64,
    ) -> Vec<serde_json::Value> {
        let (start, end) = (format!("{start:.3}"), format!("{end:.3}"));
        let parameters = [
            ("query", expression),
            ("start", &start),
            ("end", &end),
            ("step", "1"),
        ];
        self.api("query_range", &parameters, &["data", "result"])
            .await
    }

    /// The alerts Prometheus holds now (pending and firing).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        self.api("alerts", &[], &["data", "alerts"]).await
    }

    /// GETs `/api/v1/<path>` and returns the array at `at` (empty when anything fails: the
    /// callers poll).
    async fn api(
        &self,
        path: &str,
        parameters: &[(&str, &str)],
        at: &[&str],
    ) -> Vec<serde_json::Value> {
        let mut url =
            url::Url::parse(&format!("http://127.0.0.1:{}/api/v1/{path}", self.port)).expect("url");
        url.query_pairs_mut().extend_pairs(parameters);
        let Ok(response) = reqwest::get(url).await else {
            return vec![];
        };
        let text = response.text().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        at.iter()
            .fold(&json, |value, key| &value[*key])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// `promtool check metrics` on `text`: its exit status and output.
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool: install Debian's prometheus (see .ci/debian-packages)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool output");
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}
