//! Alerts through the running daemon: a webhook that recovers gets each alert once, a 4xx is
//! not retried, the HMAC signature verifies, email content reaches a real SMTP server, flapping
//! is summarised, and the events route shows the history.

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::{Receiver, changes};
use crate::support::smtp_server::SmtpServer;
use crate::support::{eventually, get_json, http_get, pair, sample, scratch_dir, start_daemon};

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
        (Some("CLOSED"), Some("OPEN")),
        "{alert}"
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
    // Every attempt counts, the failed one included.
    for (outcome, count) in [("failed", 1.0), ("ok", 1.0)] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    "breakerd_alert_attempts_total{{channel=\"webhook\",outcome=\"{outcome}\"}}"
                )
            ),
            Some(count),
            "{text}"
        );
    }
    let (valid, said) = crate::support::prometheus::promtool_check_metrics(&text);
    assert!(valid, "promtool check metrics: {said}");
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
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("M-Pesa Daraja (mpesa) is down: HTTP 500"),
        "{slack}"
    );
    assert!(
        slack["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Calls to M-Pesa Daraja fail fast since "),
        "{slack}"
    );
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
            .any(|m| m.contains("Subject: [breakerd] M-Pesa Daraja (mpesa) recovered after "))
    })
    .await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "one outage, two mails: {messages:#?}");
    // Maildir file names do not promise delivery order: find the mail by its subject.
    let open = messages
        .iter()
        .find(|m| m.contains("Subject: [breakerd] M-Pesa Daraja (mpesa) is down"))
        .unwrap_or_else(|| panic!("no open mail among {messages:#?}"));
    for part in [
        "Subject: [breakerd] M-Pesa Daraja (mpesa) is down: HTTP 500",
        "From: breakerd@example.com",
        "To: oncall@example.com, Backup <backup@example.com>",
        "Calls to M-Pesa Daraja fail fast since ",
        "What to do:   The provider answers with errors",
        "Transition:   CLOSED -> OPEN",
        "Reason:       1 failure",
        "Cause:        http_status: HTTP 500",
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
async fn a_provider_that_stays_down_pages_once_through_its_trials_and_recovery_once() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let config = format!(
        "{}{}[[alerts.webhook]]\nurl = \"{}\"\n",
        failing_service(&fake),
        alerts_header("0s"),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    eventually(15, "four trial calls fail", || async {
        let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
        events["transitions"]
            .as_array()
            .is_some_and(|all| all.iter().filter(|t| t["from"] == "HALF_OPEN").count() >= 4)
    })
    .await;
    fake.set_mode(Mode::Healthy);
    eventually(15, "the recovery is sent", || async {
        receiver
            .accepted()
            .iter()
            .any(|r| r.json()["to"] == "CLOSED")
    })
    .await;
    let sent = receiver.bodies();
    assert_eq!(
        changes(&sent),
        pair(&[("CLOSED", "OPEN"), ("HALF_OPEN", "CLOSED")]),
        "one page when the outage starts, one when it ends: {sent:#?}"
    );
    let (opened, recovered) = (&sent[0], &sent[1]);
    assert_eq!(opened["cause"]["reason"], "http_status");
    assert!(
        opened["cause"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500"),
        "{opened}"
    );
    assert_eq!(recovered["outage"]["startedAt"], opened["at"]);
    assert_eq!(recovered["outage"]["endedAt"], recovered["at"]);
    assert!(
        recovered["outage"]["failedTrials"].as_u64() >= Some(4),
        "{recovered}"
    );
    assert_eq!(
        (&recovered["cause"]["reason"], &recovered["cause"]["detail"]),
        (&opened["cause"]["reason"], &opened["cause"]["detail"]),
        "the recovery says what the outage was"
    );
    assert!(
        recovered["cause"]["at"].as_str() > opened["cause"]["at"].as_str(),
        "the last failure is the last failed trial"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_that_come_and_go_within_the_interval_are_summarised_as_flapping() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let config = format!(
        "{}{}[[alerts.webhook]]\nurl = \"{}\"\n",
        failing_service(&fake),
        alerts_header("3s"),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    let address = daemon.address();
    let state =
        || async { get_json(address, "/api/v1/circuit-breakers/mpesa").await["state"].clone() };
    // Two outages start and end within 3 s of the first page.
    for _ in 0..2 {
        eventually(10, "the breaker opens", || async {
            state().await == "OPEN"
        })
        .await;
        fake.set_mode(Mode::Healthy);
        eventually(10, "the breaker closes", || async {
            state().await == "CLOSED"
        })
        .await;
        fake.set_mode(Mode::Status(500));
    }
    eventually(20, "a flapping summary arrives", || async {
        receiver
            .accepted()
            .iter()
            .any(|r| r.json()["kind"] == "flapping")
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(accepted[0].json()["kind"], "transition");
    assert_eq!(accepted[0].json()["to"], "OPEN");
    let summary = accepted[1].json();
    assert_eq!(summary["kind"], "flapping", "{summary}");
    assert!(summary["changes"].as_u64() >= Some(3), "{summary}");
    // From the first page's change (its delivery may lag under load) to the summary's arrival.
    let first_change = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(accepted[0].json()["atUnixMs"].as_u64().unwrap());
    let gap = accepted[1].at.duration_since(first_change).unwrap();
    assert!(
        gap >= std::time::Duration::from_millis(2900),
        "the summary waits out the interval: {gap:?}"
    );
    assert_eq!(
        accepted.len(),
        2,
        "one page, then one summary: {accepted:#?}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

mod with_alertmanager {
    use crate::support::alertmanager::Alertmanager;
    use crate::support::fake_provider::{FakeProvider, Mode};
    use crate::support::receiver::Receiver;
    use crate::support::{eventually, http_get, sample, start_daemon};

    fn config(fake: &FakeProvider, alertmanager: &Alertmanager) -> String {
        format!(
            "{}{}[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"1s\"\nrunbook_url = \"https://runbooks.example.com/breakerd#open\"\n",
            super::failing_service(fake),
            super::alerts_header("0s"),
            alertmanager.url()
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alertmanager_notifies_firing_then_resolved() {
        let receiver = Receiver::start(&[]).await;
        let alertmanager = Alertmanager::start(&receiver.url(), "1s");
        let fake = FakeProvider::start(Mode::Status(500)).await;
        let daemon = start_daemon(&config(&fake, &alertmanager)).await;
        eventually(30, "Alertmanager notifies the open breaker", || async {
            !receiver.alertmanager_said("firing").is_empty()
        })
        .await;
        let firing = &receiver.alertmanager_said("firing")[0];
        let alert = &firing["alerts"][0];
        assert_eq!(alert["labels"]["alertname"], "CircuitBreakerOpen");
        assert_eq!(alert["labels"]["service"], "mpesa");
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(
            alert["annotations"]["runbook_url"],
            "https://runbooks.example.com/breakerd#open"
        );
        assert!(
            alert["annotations"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("M-Pesa Daraja (mpesa) is down: HTTP 500"),
            "{alert}"
        );
        assert!(
            alert["annotations"]["what_to_do"]
                .as_str()
                .is_some_and(|advice| advice.contains("status page")),
            "{alert}"
        );
        assert!(
            alert["labels"].get("instance").is_none(),
            "no per-replica label"
        );

        fake.set_mode(Mode::Healthy);
        eventually(30, "Alertmanager notifies the recovery", || async {
            !receiver.alertmanager_said("resolved").is_empty()
        })
        .await;
        let (_, text) = http_get(daemon.address(), "/metrics").await;
        assert!(
            sample(
                &text,
                "breakerd_alerts_total{channel=\"alertmanager\",outcome=\"sent\"}"
            )
            .is_some_and(|n| n >= 2.0)
        );
        daemon.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_give_one_notification() {
        let receiver = Receiver::start(&[]).await;
        let alertmanager = Alertmanager::start(&receiver.url(), "3s");
        let fake = FakeProvider::start(Mode::Status(500)).await;
        let first = start_daemon(&config(&fake, &alertmanager)).await;
        let second = start_daemon(&config(&fake, &alertmanager)).await;
        for replica in [&first, &second] {
            let address = replica.address();
            eventually(30, "each replica posts its alert", || async {
                let (_, text) = http_get(address, "/metrics").await;
                sample(
                    &text,
                    "breakerd_alerts_total{channel=\"alertmanager\",outcome=\"sent\"}",
                )
                .is_some_and(|n| n >= 1.0)
            })
            .await;
        }
        eventually(30, "Alertmanager notifies", || async {
            !receiver.alertmanager_said("firing").is_empty()
        })
        .await;
        let held: Vec<_> = alertmanager
            .alerts()
            .await
            .into_iter()
            .filter(|a| a["labels"]["service"] == "mpesa")
            .collect();
        assert_eq!(
            held.len(),
            1,
            "both replicas' alerts are one alert: {held:#?}"
        );
        let firing = receiver.alertmanager_said("firing");
        assert_eq!(firing.len(), 1, "{firing:#?}");
        assert_eq!(firing[0]["alerts"].as_array().map(Vec::len), Some(1));
        first.shutdown().await.expect("clean shutdown");
        second.shutdown().await.expect("clean shutdown");
    }
}

mod across_restarts {
    use std::process::{Child, Command, Stdio};

    use crate::support::fake_provider::{FakeProvider, Mode};
    use crate::support::receiver::Receiver;
    use crate::support::{closed_port, eventually, scratch_dir, wait_until_listening};

    fn spawn(config: &std::path::Path, port: u16) -> Child {
        let child = Command::new(env!("CARGO_BIN_EXE_breakerd"))
            .args(["run", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("KEY", "test-key")
            .env("SECRET", "test-secret")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("start breakerd");
        wait_until_listening(port, "breakerd");
        child
    }

    fn pending(dir: &std::path::Path) -> Vec<serde_json::Value> {
        let Ok(listing) = std::fs::read_dir(dir.join("outbox")) else {
            return vec![];
        };
        listing
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_daemon_sends_its_pending_alerts_after_restart() {
        let fake = FakeProvider::start(Mode::Status(500)).await;
        let receiver_port = closed_port();
        let state_dir = scratch_dir("restart");
        let config = state_dir.join("alerts.toml");
        std::fs::write(
            &config,
            format!(
                "{}[alerts]\nstate_dir = \"{}\"\nmin_interval = \"1h\"\nmax_attempts = 1000\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:{receiver_port}/hook\"\nnotify_on = [\"open\"]\n",
                super::failing_service(&fake),
                state_dir.display()
            ),
        )
        .unwrap();
        let mut daemon = spawn(&config, closed_port());
        eventually(15, "the undeliverable alert is in the outbox", || async {
            !pending(&state_dir).is_empty()
        })
        .await;
        let kept = pending(&state_dir)[0]["notification"].clone();
        daemon.kill().expect("SIGKILL");
        let _ = daemon.wait();

        let receiver =
            Receiver::start_on(format!("127.0.0.1:{receiver_port}").parse().unwrap(), &[]).await;
        let mut restarted = spawn(&config, closed_port());
        eventually(
            15,
            "the kept alert is delivered after the restart",
            || async {
                receiver
                    .accepted()
                    .iter()
                    .any(|r| r.json()["id"] == kept["id"])
            },
        )
        .await;
        let delivered = receiver
            .accepted()
            .iter()
            .map(|r| r.json())
            .find(|j| j["id"] == kept["id"])
            .unwrap();
        // The notification as kept, with the page's words beside it.
        let mut notification = delivered.clone();
        for page_field in [
            "title",
            "summary",
            "standing",
            "whatToDo",
            "runbookUrl",
            "causeIsPast",
        ] {
            notification.as_object_mut().unwrap().remove(page_field);
        }
        assert_eq!(notification, kept, "the same notification, unchanged");
        assert!(
            delivered["title"]
                .as_str()
                .is_some_and(|title| title.starts_with("M-Pesa Daraja (mpesa) is down")),
            "{delivered}"
        );
        eventually(15, "the outbox is emptied", || async {
            pending(&state_dir)
                .iter()
                .all(|entry| entry["notification"]["id"] != kept["id"])
        })
        .await;
        let _ = Command::new("kill")
            .args(["-TERM", &restarted.id().to_string()])
            .status();
        let _ = restarted.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_repeat_while_a_breaker_stays_open() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let receiver = Receiver::start(&[]).await;
    let config = format!(
        "[services.kcb]\npreset = \"kcb\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 1\nreset_timeout = \"1h\"\n{}reminder_every = \"300ms\"\n[[alerts.webhook]]\nurl = \"{}\"\n",
        fake.url(),
        alerts_header("0s"),
        receiver.url()
    );
    let daemon = start_daemon(&config).await;
    eventually(15, "two reminders arrive", || async {
        receiver
            .accepted()
            .iter()
            .filter(|r| r.json()["kind"] == "reminder")
            .count()
            >= 2
    })
    .await;
    let kinds: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.json()["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds[0], "transition");
    let reminder = receiver
        .accepted()
        .iter()
        .map(|r| r.json())
        .find(|j| j["kind"] == "reminder")
        .unwrap();
    assert_eq!(reminder["to"], "OPEN");
    assert_eq!(reminder["service"], "kcb");
    daemon.shutdown().await.expect("clean shutdown");
}
