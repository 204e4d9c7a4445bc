//! A real Alertmanager (Debian's `prometheus-alertmanager`, alone: no cluster), routing every
//! alert to one webhook receiver.

use super::ServerProcess;

pub struct Alertmanager {
    pub port: u16,
    _server: ServerProcess,
}

impl Alertmanager {
    /// Starts Alertmanager sending to `webhook_url`, grouping by service and waiting
    /// `group_wait` before the first notification of a group.
    pub fn start(webhook_url: &str, group_wait: &str) -> Self {
        Self::start_with(webhook_url, group_wait, "")
    }

    /// The same, with `extra` (say, the example's `inhibit_rules:` block) appended.
    pub fn start_with(webhook_url: &str, group_wait: &str, extra: &str) -> Self {
        let dir = super::scratch_dir("alertmanager");
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'service']\n  group_wait: {group_wait}\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n{extra}"
        );
        let config_path = dir.join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("write alertmanager.yml");
        let port = super::closed_port();
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
        ];
        let server = ServerProcess::start(
            "prometheus-alertmanager",
            "prometheus-alertmanager",
            &args,
            port,
            dir,
        );
        Self {
            port,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The alerts Alertmanager holds now.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let Ok(response) = reqwest::get(format!("{}/api/v2/alerts", self.url())).await else {
            return vec![];
        };
        let text = response.text().await.unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|json| json.as_array().cloned())
            .unwrap_or_default()
    }

    /// Posts alerts with these label sets, firing now.
    pub async fn post(&self, label_sets: &[serde_json::Value]) {
        let alerts: Vec<serde_json::Value> = label_sets
            .iter()
            .map(|labels| serde_json::json!({ "labels": labels }))
            .collect();
        breakerd::probe::install_crypto_provider();
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url()))
            .header("content-type", "application/json")
            .body(serde_json::Value::Array(alerts).to_string())
            .send()
            .await
            .expect("Alertmanager answers");
        assert!(response.status().is_success(), "{response:?}");
    }
}
