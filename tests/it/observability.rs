//! The shipped Grafana dashboards and Prometheus rules: promtool checks and unit-tests the
//! rules, every query names only metrics the daemon really exports, and against a real
//! Prometheus scraping a daemon whose provider fails every panel query returns data and the
//! breaker-open rule fires.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::prometheus::Prometheus;
use crate::support::receiver::Receiver;
use crate::support::tls::{Authority, TlsServer};
use crate::support::{eventually, http_get, scratch_dir, start_daemon};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(program: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| {
            panic!("run {program}: {error} (install Debian's prometheus / prometheus-alertmanager)")
        });
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let dir = repo("grafana/prometheus");
    let (ok, said) = run("promtool", &["check", "rules", "breakerd-rules.yml"], &dir);
    assert!(ok && said.contains("SUCCESS: 13 rules found"), "{said}");
    let (ok, said) = run(
        "promtool",
        &["test", "rules", "breakerd-rules.test.yml"],
        &dir,
    );
    assert!(ok, "promtool test rules:\n{said}");
    let (ok, said) = run("promtool", &["check", "config", "prometheus.yml"], &dir);
    assert!(ok, "promtool check config:\n{said}");
    let (ok, said) = run("amtool", &["check-config", "alertmanager.yml"], &dir);
    assert!(ok, "amtool check-config:\n{said}");
    // breakerd's own alert pages; the rule for the same outage goes to the team channel.
    for (labels, receiver) in [
        (
            "alertname=CircuitBreakerOpen severity=critical service=mpesa",
            "oncall",
        ),
        (
            "alertname=BreakerdCircuitOpen severity=critical service=mpesa",
            "team-webhook",
        ),
        (
            "alertname=BreakerdAlertDeliveryFailing severity=critical channel=email",
            "oncall",
        ),
        (
            "alertname=BreakerdProviderSlow severity=warning service=kcb",
            "team-webhook",
        ),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file=alertmanager.yml"];
        args.extend(labels.split(' '));
        let (ok, said) = run("amtool", &args, &dir);
        assert!(ok, "amtool config routes test {labels}:\n{said}");
        assert_eq!(said.lines().next(), Some(receiver), "{labels}");
    }
}

#[test]
fn every_rule_has_a_runbook_section_and_a_test() {
    let rules = std::fs::read_to_string(repo("grafana/prometheus/breakerd-rules.yml")).unwrap();
    let tests =
        std::fs::read_to_string(repo("grafana/prometheus/breakerd-rules.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(repo("docs/runbook.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 13);
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "no promtool test for {alert}"
        );
        assert!(
            runbook.contains(&format!("**{alert}**")),
            "no runbook section for {alert}"
        );
    }
    let links: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
        .collect();
    assert_eq!(links.len(), 13, "one runbook link per rule");
    for link in links {
        let anchor = link
            .trim_matches('"')
            .strip_prefix("http://127.0.0.1:9477/runbook#")
            .unwrap_or_else(|| panic!("{link} is not the daemon's own runbook"));
        assert!(
            runbook.contains(&format!("## {anchor}\n")),
            "runbook has no section #{anchor}"
        );
    }
}

#[tokio::test]
async fn the_daemon_serves_the_runbook_its_rules_link_to() {
    let state =
        crate::support::app_state("[services.x]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n");
    let (status, page) = crate::support::send(&state, "GET", "/runbook", None, None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap_or_default().to_string();
    let rules = std::fs::read_to_string(repo("grafana/prometheus/breakerd-rules.yml")).unwrap();
    for anchor in rules.lines().filter_map(|l| l.split("/runbook#").nth(1)) {
        let anchor = anchor.trim_end_matches('"');
        assert!(
            page.contains(&format!("<h2 id=\"{anchor}\">")),
            "no #{anchor} in /runbook"
        );
    }
    assert!(page.contains("<strong>BreakerdCircuitOpen</strong>"));
}

/// The example Alertmanager config's inhibit rules, against a real Alertmanager, with alerts
/// labelled as the rules label them (`by (service)`, `by (channel)`, `up`'s job and instance)
/// and as breakerd's own channel labels its alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_inhibit_rules_match_labels_the_alerts_really_carry() {
    use serde_json::json;

    use crate::support::alertmanager::Alertmanager;

    let example =
        std::fs::read_to_string(repo("grafana/prometheus/alertmanager.yml")).expect("example");
    let inhibit = &example[example.find("inhibit_rules:").expect("inhibit rules")..];
    let receiver = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start_with(&receiver.url(), "1s", inhibit);
    let alerts = [
        json!({"alertname": "CircuitBreakerOpen", "service": "mpesa", "severity": "critical"}),
        json!({"alertname": "BreakerdCircuitOpen", "service": "mpesa", "severity": "critical"}),
        json!({"alertname": "BreakerdCircuitOpen", "service": "kcb", "severity": "critical"}),
        json!({"alertname": "BreakerdProviderSlow", "service": "mpesa", "severity": "warning"}),
        json!({"alertname": "BreakerdErrorRatioRising", "service": "kcb", "severity": "warning"}),
        json!({"alertname": "BreakerdProviderSlow", "service": "sms", "severity": "warning"}),
        json!({"alertname": "BreakerdDown", "job": "breakerd", "instance": "a:9477", "severity": "critical"}),
        json!({"alertname": "BreakerdConfigReloadFailed", "job": "breakerd", "instance": "a:9477", "severity": "warning"}),
        json!({"alertname": "BreakerdConfigReloadFailed", "job": "breakerd", "instance": "b:9477", "severity": "warning"}),
    ];
    alertmanager.post(&alerts).await;
    let inhibited = |alert: &serde_json::Value| {
        alert["status"]["inhibitedBy"]
            .as_array()
            .is_some_and(|by| !by.is_empty())
    };
    eventually(30, "Alertmanager has evaluated the inhibitions", || async {
        alertmanager
            .alerts()
            .await
            .iter()
            .filter(|a| inhibited(a))
            .count()
            >= 4
    })
    .await;
    let mut held: Vec<(String, String, bool)> = alertmanager
        .alerts()
        .await
        .iter()
        .map(|alert| {
            let labels = &alert["labels"];
            let subject = labels["service"]
                .as_str()
                .or(labels["instance"].as_str())
                .unwrap_or_default();
            (
                labels["alertname"].as_str().unwrap_or_default().to_string(),
                subject.to_string(),
                inhibited(alert),
            )
        })
        .collect();
    held.sort();
    let expected: Vec<(String, String, bool)> = [
        ("BreakerdCircuitOpen", "kcb", false),
        ("BreakerdCircuitOpen", "mpesa", true),
        ("BreakerdConfigReloadFailed", "a:9477", true),
        ("BreakerdConfigReloadFailed", "b:9477", false),
        ("BreakerdDown", "a:9477", false),
        ("BreakerdErrorRatioRising", "kcb", true),
        ("BreakerdProviderSlow", "mpesa", true),
        ("BreakerdProviderSlow", "sms", false),
        ("CircuitBreakerOpen", "mpesa", false),
    ]
    .iter()
    .map(|(a, s, i)| (a.to_string(), s.to_string(), *i))
    .collect();
    assert_eq!(held, expected);
}

/// Every query of both dashboards, with Grafana's variables replaced for an instant query.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for file in ["breakerd-overview.json", "breakerd-service.json"] {
        let text = std::fs::read_to_string(repo(&format!("grafana/dashboards/{file}"))).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(variables, vec!["datasource", "service"], "{file}");
        for panel in dashboard["panels"].as_array().unwrap() {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {}",
                panel["title"]
            );
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let instant = expr
                    .replace("$service", ".*")
                    .replace("$__rate_interval", "1m");
                queries.push((format!("{file}: {}", panel["title"]), instant));
            }
        }
    }
    queries
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while let Some(found) = text[index..].find("breakerd_") {
        let start = index + found;
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(text.len(), |offset| start + offset);
        names.insert(text[start..end].to_string());
        index = end;
    }
    names
}

fn config_with_alerts(fake: &FakeProvider, receiver: &Receiver, tls: &Https) -> String {
    format!(
        "[server]\nproxy_listen = \"127.0.0.1:0\"\n\
         [services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"200ms\"\nfailure_threshold = 3\ntimeout = \"2s\"\nreset_timeout = \"1h\"\nmax_concurrent = 8\nfallback = \"internal\"\n\
         [services.internal]\nkind = \"http\"\nurl = \"{}\"\nupstream = \"{}\"\nca_file = \"{}\"\nevery = \"200ms\"\n\
         [services.callbacks]\nkind = \"heartbeat\"\nevery = \"30m\"\ntoken = \"beat-token-0123456789\"\n\
         [alerts]\nstate_dir = \"{}\"\n[[alerts.webhook]]\nurl = \"{}\"\n",
        fake.url(),
        tls.server.url(),
        tls.server.url(),
        tls.ca_file.display(),
        scratch_dir("observability").display(),
        receiver.url()
    )
}

/// An HTTPS service whose certificate a private CA signed, so the certificate series exist.
struct Https {
    server: TlsServer,
    ca_file: std::path::PathBuf,
}

async fn https() -> Https {
    let authority = Authority::new("observability CA");
    let ca_file = scratch_dir("observability-ca").join("ca.pem");
    std::fs::write(&ca_file, authority.pem()).unwrap();
    let server = TlsServer::start(&authority, "internal.test", time::Duration::days(30)).await;
    Https { server, ca_file }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_names_only_exported_metrics() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let tls = https().await;
    let daemon = start_daemon(&config_with_alerts(&fake, &receiver, &tls)).await;
    // The certificate series appear once the HTTPS check has run.
    eventually(10, "the HTTPS check has read its certificate", || async {
        let (_, exposition) = http_get(daemon.address(), "/metrics").await;
        exposition.contains("breakerd_tls_cert_not_after_timestamp_seconds{")
    })
    .await;
    let (_, exposition) = http_get(daemon.address(), "/metrics").await;
    let exported: BTreeSet<String> = exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let mut used = BTreeSet::new();
    for (_, query) in dashboard_queries() {
        used.extend(metric_names(&query));
    }
    used.extend(metric_names(
        &std::fs::read_to_string(repo("grafana/prometheus/breakerd-rules.yml")).unwrap(),
    ));
    assert!(used.len() >= 12, "{used:?}");
    let unknown: Vec<_> = used
        .iter()
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        unknown.is_empty(),
        "queries use metrics the daemon does not export: {unknown:?}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_real_prometheus_every_panel_has_data_and_the_open_rule_fires() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let tls = https().await;
    let daemon = start_daemon(&config_with_alerts(&fake, &receiver, &tls)).await;
    let rules = repo("grafana/prometheus/breakerd-rules.yml");
    let prometheus = Prometheus::scraping(
        &daemon.address().to_string(),
        Some(&rules.display().to_string()),
    );
    let queries = dashboard_queries();
    eventually(60, "every dashboard query returns data", || async {
        for (_, query) in &queries {
            if prometheus.query(query).await.is_empty() {
                return false;
            }
        }
        true
    })
    .await;
    eventually(90, "BreakerdCircuitOpen fires in Prometheus", || async {
        prometheus.alerts().await.iter().any(|a| {
            a["labels"]["alertname"] == "BreakerdCircuitOpen"
                && a["labels"]["service"] == "mpesa"
                && a["state"] == "firing"
        })
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
}
