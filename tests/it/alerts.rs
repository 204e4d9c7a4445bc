//! Alerts through the running daemon: a webhook that recovers gets each alert once, a 4xx is
//! not retried, the HMAC signature verifies, email content reaches a real SMTP server, flapping
//! is summarised, and the events route shows the history.

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::Receiver;
use crate::support::smtp_server::SmtpServer;
use crate::support::{eventually, get_json, http_get, sample, scratch_dir, start_daemon};

/// A service whose checks fail every 50 ms and open the breaker on the first failure.
fn failing_service(fake: &FakeProvider) -> String {
    format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n",
        fake.url()
    )
}

fn alerts_header(min_interval: &str) -> String {
    format!(
        "[alerts]\nstate_dir = \"{}\"\nmin_interval = \"{min_interval}\"\napi_url = \"http://breakerd.example.com\"\n",
        scratch_dir("state").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_recovers_gets_the_alert_exactly_once_signed() {
    let fake = FakeProvider::start(Mode::Status(503)).await;
    let receiver = Receiver::start(&[503]).await;
    let config = format!(
        "{}{}[[alerts.webhook]]\nurl = \"{}\"\nsecret = \"${{SECRET}}\"\nheaders = {{ X-Team = \"payments\" }}\nnotify_on = [\"open\"]\n",
        failing_service(&fake),
        alerts_header("1h"),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(15, "the webhook accepts the alert after a 503", || async {
        !receiver.accepted().is_empty()
    })
    .await;
    let received = receiver.received();
    assert_eq!(
        received.len(),
        2,
        "one 503, then one accepted delivery: {received:#?}"
    );
    assert_eq!(
        received[0].body, received[1].body,
        "the retry sends the same notification"
    );
    let alert = received[1].json();
    assert_eq!(alert["service"], "mpesa");
    assert_eq!(alert["kind"], "transition");
    assert_eq!(
        (alert["from"].as_str(), alert["to"].as_str()),
        (Some("CLOSED"), Some("OPEN"))
    );
    assert_eq!(alert["reason"], "1 failure");
    assert!(
        alert["lastFailure"]
            .as_str()
            .unwrap()
            .starts_with("http_status: HTTP 503")
    );
    assert_eq!(
        alert["apiUrl"],
        "http://breakerd.example.com/api/v1/circuit-breakers/mpesa"
    );
    let signature = received[1].headers["x-breakerd-signature"]
        .to_str()
        .unwrap();
    assert_eq!(
        signature,
        breakerd::alert::sign(b"test-secret", received[1].body.as_bytes())
    );
    assert_eq!(received[1].headers["x-team"], "payments");
    let (_, text) = http_get(address, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            "breakerd_alerts_total{channel=\"webhook\",outcome=\"sent\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "breakerd_alert_last_success_timestamp_seconds{channel=\"webhook\"}"
        )
        .is_some_and(|t| t > 1.0e9)
    );
    assert_eq!(
        sample(&text, "breakerd_alert_queue_depth{channel=\"webhook\"}"),
        Some(0.0)
    );
    let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
    assert_eq!(events["transitions"][0]["to"], "OPEN");
    assert_eq!(events["deliveries"][0]["outcome"], "sent");
    assert_eq!(events["deliveries"][0]["attempts"], 2);
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_is_not_retried() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    receiver.always(400);
    let state_dir = scratch_dir("dead");
    let config = format!(
        "{}[alerts]\nstate_dir = \"{}\"\nmin_interval = \"1h\"\n[[alerts.webhook]]\nurl = \"{}\"\nformat = \"slack\"\nnotify_on = [\"open\"]\n",
        failing_service(&fake),
        state_dir.display(),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(15, "the delivery is given up", || async {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            "breakerd_alerts_total{channel=\"webhook\",outcome=\"failed\"}",
        ) == Some(1.0)
    })
    .await;
    assert_eq!(receiver.received().len(), 1, "a 400 must not be retried");
    let slack = receiver.received()[0].json();
    assert_eq!(slack["text"], "[breakerd] mpesa is OPEN");
    assert_eq!(slack["attachments"][0]["color"], "#e01e5a");
    let dead: Vec<_> = std::fs::read_dir(state_dir.join("dead")).unwrap().collect();
    assert_eq!(
        dead.len(),
        1,
        "the given-up notification is kept for the operator"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_on_open_and_recovery() {
    let smtp = SmtpServer::start();
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let config = format!(
        "{}{}dashboard_url = \"https://grafana.example.com/d/breakerd\"\n[alerts.email]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\nfrom = \"breakerd@example.com\"\nto = [\"oncall@example.com\", \"Backup <backup@example.com>\"]\n",
        failing_service(&fake),
        alerts_header("0s"),
        smtp.port
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(15, "the open email arrives", || async {
        !smtp.messages().is_empty()
    })
    .await;
    fake.set_mode(Mode::Healthy);
    eventually(15, "the recovery email arrives", || async {
        smtp.messages()
            .iter()
            .any(|m| m.contains("Subject: [breakerd] mpesa is CLOSED (recovered)"))
    })
    .await;
    let messages = smtp.messages();
    let open = &messages[0];
    for part in [
        "Subject: [breakerd] mpesa is OPEN",
        "From: breakerd@example.com",
        "To: oncall@example.com, Backup <backup@example.com>",
        "Transition:   CLOSED -> OPEN",
        "Reason:       1 failure",
        "Last error:   http_status: HTTP 500",
        "Next attempt: ",
        "Dashboard:    https://grafana.example.com/d/breakerd",
        "API:          http://breakerd.example.com/api/v1/circuit-breakers/mpesa",
    ] {
        assert!(open.contains(part), "missing {part:?} in\n{open}");
    }
    let (_, text) = http_get(address, "/metrics").await;
    assert!(
        sample(
            &text,
            "breakerd_alerts_total{channel=\"email\",outcome=\"sent\"}"
        )
        .is_some_and(|n| n >= 2.0)
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_is_summarised_instead_of_a_storm() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let config = format!(
        "{}{}[[alerts.webhook]]\nurl = \"{}\"\n",
        failing_service(&fake),
        alerts_header("2s"),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    // Open, then every 300 ms a failed trial reopens it: each reopening comes within 2 s of the
    // first notification, so they must arrive as one summary.
    eventually(20, "a flapping summary arrives", || async {
        receiver
            .accepted()
            .iter()
            .any(|r| r.json()["kind"] == "flapping")
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(accepted[0].json()["kind"], "transition");
    let summary = accepted
        .iter()
        .map(|r| r.json())
        .find(|j| j["kind"] == "flapping")
        .unwrap();
    assert!(summary["changes"].as_u64() >= Some(2), "{summary}");
    assert_eq!(summary["to"], "OPEN");
    let gap = accepted[1].at.duration_since(accepted[0].at).unwrap();
    assert!(
        gap >= std::time::Duration::from_millis(1900),
        "the summary waits out the interval: {gap:?}"
    );
    assert_eq!(
        accepted.len(),
        2,
        "one notification, then one summary: {accepted:#?}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}
