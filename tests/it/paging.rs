//! The whole paging path end to end, as on-call lives it: a provider down for over a minute
//! behind a breaker with a short reset timeout, a restart of breakerd and a live reload in the
//! middle, then recovery — watched by a real Prometheus evaluating the bundled rules every
//! second, a real Alertmanager and a real SMTP server. One page when the outage starts, one
//! when it ends, on every channel, with the cause.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::time::Instant;

use crate::support::alertmanager::Alertmanager;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::prometheus::Prometheus;
use crate::support::receiver::{Receiver, changes};
use crate::support::smtp_server::SmtpServer;
use crate::support::{closed_port, eventually, get_json, pair, scratch_dir};

fn config(
    dir: &Path,
    fake: &FakeProvider,
    webhook: &Receiver,
    smtp: &SmtpServer,
    alertmanager: &Alertmanager,
    team: &str,
) -> String {
    format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{fake}\"\n\
         consumer_key = \"${{file:{key}}}\"\nconsumer_secret = \"${{file:{secret}}}\"\n\
         every = \"5s\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"3s\"\n\
         [alerts]\nstate_dir = \"{state}\"\napi_url = \"http://breakerd.example.com\"\n\
         [[alerts.webhook]]\nurl = \"{webhook}\"\nheaders = {{ X-Team = \"{team}\" }}\n\
         [alerts.email]\nserver = \"127.0.0.1:{smtp}\"\ntls = \"none\"\nfrom = \"breakerd@example.com\"\nto = [\"oncall@example.com\"]\n\
         [[alerts.alertmanager]]\nurl = \"{am}\"\nresend_every = \"1s\"\n",
        fake = fake.url(),
        key = dir.join("key").display(),
        secret = dir.join("secret").display(),
        state = dir.join("state").display(),
        webhook = webhook.url(),
        smtp = smtp.port,
        am = alertmanager.url(),
    )
}

async fn start(path: &Path, address: SocketAddr) -> breakerd::daemon::RunningDaemon {
    breakerd::daemon::start_from_file(path, Some(address), None)
        .await
        .expect("daemon starts")
}

fn unix(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn parse_time(value: &Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

/// What Alertmanager sent its receiver for breakerd's own alert, with when it arrived.
fn notified_at(hook: &Receiver, status: &str) -> Vec<SystemTime> {
    hook.accepted()
        .iter()
        .filter(|r| {
            let json = r.json();
            json["status"] == status && json["commonLabels"]["alertname"] == "CircuitBreakerOpen"
        })
        .map(|r| r.at)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_outage_pages_once_through_trials_a_restart_and_a_reload() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let smtp = SmtpServer::start();
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    let dir = scratch_dir("paging");
    std::fs::write(dir.join("key"), "test-key").unwrap();
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    let path = dir.join("alerts.toml");
    let write = |team: &str| {
        std::fs::write(
            &path,
            config(&dir, &fake, &webhook, &smtp, &alertmanager, team),
        )
        .expect("write the config")
    };
    write("payments");
    let address: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/prometheus/breakerd-rules.yml");
    let prometheus = Prometheus::scraping(&address.to_string(), Some(&rules.display().to_string()));
    let outage_start = SystemTime::now();
    let began = Instant::now();
    let first = start(&path, address).await;

    // The outage pages at once on every channel, with the cause.
    eventually(15, "the webhook is paged", || async {
        !webhook.accepted().is_empty()
    })
    .await;
    eventually(15, "the email arrives", || async {
        !smtp.messages().is_empty()
    })
    .await;
    eventually(30, "Alertmanager notifies breakerd's alert", || async {
        !notified_at(&am_hook, "firing").is_empty()
    })
    .await;
    // With alerts.api_url set and no runbook_url, the runbook link is the daemon's own.
    let firing = am_hook
        .accepted()
        .iter()
        .map(|r| r.json())
        .find(|json| json["status"] == "firing")
        .unwrap();
    assert_eq!(
        firing["alerts"][0]["annotations"]["runbook_url"],
        "http://breakerd.example.com/runbook#breaker-open"
    );
    let status = get_json(address, "/api/v1/status").await;
    let card = &status["services"][0];
    assert_eq!(card["name"], "mpesa");
    assert_eq!(card["cause"]["reason"], "http_status", "{card}");
    assert!(
        card["cause"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500"),
        "{card}"
    );

    // Prometheus' rule fires after its 30 s.
    eventually(60, "BreakerdCircuitOpen fires in Prometheus", || async {
        prometheus
            .alerts()
            .await
            .iter()
            .any(|a| a["labels"]["alertname"] == "BreakerdCircuitOpen" && a["state"] == "firing")
    })
    .await;

    // A restart in the middle of the outage, right after a trial failed: the breaker comes
    // back open, waiting for the same next attempt.
    let reopenings = || async {
        let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
        events["transitions"].as_array().map_or(0, |all| {
            all.iter().filter(|t| t["from"] == "HALF_OPEN").count()
        })
    };
    let before = reopenings().await;
    eventually(10, "a trial fails", || async {
        reopenings().await > before
    })
    .await;
    let waiting = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    first.shutdown().await.expect("clean shutdown");
    let second = start(&path, address).await;
    let restored = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert_eq!(
        restored["state"], "OPEN",
        "still open right after the restart: {restored}"
    );
    assert_eq!(
        restored["nextAttempt"], waiting["nextAttempt"],
        "the same wait goes on"
    );

    // A live reload in the middle of the outage: the webhook gets another header.
    write("on-call");
    let applied = second.reload().await.expect("the edit applies");
    assert_eq!(applied, vec!["alerts: changed".to_string()]);

    // Down for over a minute, then back.
    tokio::time::sleep_until(began + Duration::from_secs(70)).await;
    let recovery = SystemTime::now();
    fake.set_mode(Mode::Healthy);
    eventually(15, "the recovery is paged on the webhook", || async {
        webhook
            .accepted()
            .iter()
            .any(|r| r.json()["to"] == "CLOSED")
    })
    .await;
    eventually(15, "the recovery email arrives", || async {
        smtp.messages().len() >= 2
    })
    .await;
    eventually(30, "Alertmanager notifies the recovery", || async {
        !notified_at(&am_hook, "resolved").is_empty()
    })
    .await;
    eventually(30, "BreakerdCircuitOpen resolves in Prometheus", || async {
        !prometheus
            .alerts()
            .await
            .iter()
            .any(|a| a["labels"]["alertname"] == "BreakerdCircuitOpen")
    })
    .await;
    let closed = SystemTime::now();

    // Exactly one page when the outage started and one when it ended, on each direct channel.
    let pages = webhook.bodies();
    assert_eq!(
        changes(&pages),
        pair(&[("CLOSED", "OPEN"), ("HALF_OPEN", "CLOSED")]),
        "{pages:#?}"
    );
    let (opened, recovered) = (&pages[0], &pages[1]);
    assert_eq!(opened["cause"]["reason"], "http_status");
    assert!(
        opened["cause"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500")
    );
    assert_eq!(
        recovered["outage"]["startedAt"], opened["at"],
        "one outage across the restart"
    );
    assert!(
        recovered["outage"]["failedTrials"].as_u64() >= Some(10),
        "{recovered}"
    );
    assert_eq!(
        webhook.accepted()[1].headers["x-team"],
        "on-call",
        "the reloaded channel sent the recovery"
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Subject: [breakerd] M-Pesa Daraja (mpesa) is down: HTTP 500")),
        "{mails:#?}"
    );
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Subject: [breakerd] M-Pesa Daraja (mpesa) recovered after 1m ")),
        "{mails:#?}"
    );

    // Alertmanager: firing once, never resolved before the recovery, resolved once after it.
    assert_eq!(
        notified_at(&am_hook, "firing").len(),
        1,
        "{:#?}",
        am_hook.received()
    );
    let resolved = notified_at(&am_hook, "resolved");
    assert_eq!(resolved.len(), 1, "{:#?}", am_hook.received());
    assert!(resolved[0] >= recovery, "resolved only after the recovery");

    // Prometheus: BreakerdCircuitOpen fired without a gap until the recovery, and no check
    // ever looked stale.
    let firing = prometheus
        .query_range(
            "ALERTS{alertname=\"BreakerdCircuitOpen\",alertstate=\"firing\",service=\"mpesa\"}",
            unix(outage_start),
            unix(recovery) - 1.0,
        )
        .await;
    assert_eq!(firing.len(), 1, "{firing:#?}");
    let times: Vec<f64> = firing[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_f64().unwrap())
        .collect();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| *gap > 1.0)
        .collect();
    assert!(
        gaps.is_empty(),
        "the alert resolved in the middle of the outage: gaps {gaps:?}"
    );
    assert!(
        times
            .last()
            .is_some_and(|last| *last >= unix(recovery) - 2.0),
        "it fired until the recovery"
    );
    let stale = prometheus
        .query_range(
            "ALERTS{alertname=\"BreakerdProbeStale\"}",
            unix(outage_start),
            unix(closed),
        )
        .await;
    assert!(stale.is_empty(), "{stale:#?}");

    // Half-open lasted only as long as the trial call.
    let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
    let transitions = events["transitions"].as_array().unwrap();
    let mut trials = 0;
    for pair in transitions.windows(2) {
        if pair[0]["to"] == "HALF_OPEN" {
            trials += 1;
            let half_open = parse_time(&pair[1]["at"])
                .duration_since(parse_time(&pair[0]["at"]))
                .unwrap_or_default();
            assert!(
                half_open < Duration::from_millis(500),
                "half-open for {half_open:?}"
            );
        }
    }
    assert!(trials >= 5, "{transitions:#?}");
    second.shutdown().await.expect("clean shutdown");
}
