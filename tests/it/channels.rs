//! The PagerDuty and Telegram channels against local fakes of their APIs that answer with the
//! published samples in `tests/fixtures/channels/`: the documented request, one incident per
//! outage (through a restart), retries on 429 and 5xx, no retry on a 4xx, a flood wait too long
//! to honour given up, and secrets (routing key, bot token) in no log, metric or history.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use crate::support::channel_fake::ChannelFake;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{closed_port, eventually, get_json, http_get, sample, scratch_dir};

const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32";
const BOT_TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

/// kcb, checked every 50 ms, opening on its first failure and trying again after 300 ms.
fn kcb(dir: &Path, fake: &FakeProvider) -> String {
    std::fs::write(dir.join("key"), "test-key").unwrap();
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    format!(
        "[services.kcb]\npreset = \"kcb\"\nbase_url = \"{}\"\n\
         consumer_key = \"${{file:{}}}\"\nconsumer_secret = \"${{file:{}}}\"\n\
         every = \"50ms\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n\
         [alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\napi_url = \"http://breakerd.example.com\"\n",
        fake.url(),
        dir.join("key").display(),
        dir.join("secret").display(),
        dir.join("state").display()
    )
}

async fn start(path: &Path, address: SocketAddr) -> breakerd::daemon::RunningDaemon {
    breakerd::daemon::start_from_file(path, Some(address), None)
        .await
        .expect("daemon starts")
}

/// What the daemon shows of itself: metrics, the breaker's history and deliveries.
async fn everything_shown(address: SocketAddr) -> String {
    let (_, metrics) = http_get(address, "/metrics").await;
    let events = get_json(address, "/api/v1/circuit-breakers/kcb/events").await;
    format!("{metrics}\n{events}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_gets_one_incident_per_outage_triggered_and_resolved_through_a_restart() {
    let provider = FakeProvider::start(Mode::Status(503)).await;
    // Throttled first (PagerDuty publishes a 429 with no body): retried, not lost.
    let pagerduty = ChannelFake::start(
        "pagerduty/enqueue_accepted",
        &["pagerduty/enqueue_throttled"],
    )
    .await;
    let dir = scratch_dir("pagerduty");
    std::fs::write(dir.join("routing-key"), ROUTING_KEY).unwrap();
    let path = dir.join("alerts.toml");
    std::fs::write(
        &path,
        format!(
            "{}[[alerts.pagerduty]]\nrouting_key = \"${{file:{}}}\"\nurl = \"{}/v2/enqueue\"\nseverity = \"error\"\n",
            kcb(&dir, &provider),
            dir.join("routing-key").display(),
            pagerduty.base()
        ),
    )
    .unwrap();
    let address: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let first = start(&path, address).await;
    eventually(15, "PagerDuty takes the trigger", || async {
        !pagerduty.taken().is_empty()
    })
    .await;
    let sent = pagerduty.sent();
    assert_eq!(
        sent[0].status, 429,
        "the first answer was the throttled one"
    );
    assert_eq!(sent[0].path, "/v2/enqueue");
    assert_eq!(
        sent[0].headers["content-type"], "application/json",
        "the documented request"
    );
    let trigger = &pagerduty.taken()[0];
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    let key = trigger["dedup_key"]
        .as_str()
        .expect("a dedup_key")
        .to_string();
    assert!(key.starts_with("breakerd/kcb/"), "{key}");
    let payload = &trigger["payload"];
    assert!(
        payload["summary"]
            .as_str()
            .unwrap()
            .starts_with("KCB Buni (kcb) is down: HTTP 503"),
        "{payload}"
    );
    assert_eq!(payload["source"], "kcb");
    assert_eq!(payload["component"], "kcb");
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["class"], "http_status");
    assert!(
        payload["custom_details"]["what_to_do"]
            .as_str()
            .is_some_and(|advice| advice.contains("status page")),
        "{payload}"
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "http://breakerd.example.com/runbook#breaker-open"
    );
    first.shutdown().await.expect("clean shutdown");

    // breakerd restarts while the outage lasts, then the provider recovers: the resolve
    // carries the same key.
    provider.set_mode(Mode::Healthy);
    let second = start(&path, address).await;
    eventually(15, "PagerDuty takes the resolve", || async {
        pagerduty
            .taken()
            .iter()
            .any(|event| event["event_action"] == "resolve")
    })
    .await;
    let taken = pagerduty.taken();
    let resolve = taken
        .iter()
        .find(|event| event["event_action"] == "resolve")
        .unwrap();
    assert_eq!(
        resolve["dedup_key"],
        key.as_str(),
        "one incident per outage"
    );
    assert!(
        taken.iter().all(|event| event["dedup_key"] == key.as_str()),
        "every event of the outage under its key: {taken:#?}"
    );
    assert_eq!(
        taken
            .iter()
            .filter(|event| event["event_action"] == "trigger")
            .count(),
        1,
        "the restart does not page again: {taken:#?}"
    );
    let shown = everything_shown(address).await;
    assert!(!shown.contains(ROUTING_KEY), "the routing key is a secret");
    assert_eq!(
        sample(
            &shown,
            "breakerd_alerts_total{channel=\"pagerduty\",outcome=\"sent\"}"
        ),
        Some(1.0),
        "the resolve, since the restart"
    );
    second.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagerduty_event_it_refuses_is_not_retried() {
    let provider = FakeProvider::start(Mode::Status(503)).await;
    let pagerduty = ChannelFake::start("pagerduty/enqueue_invalid_event", &[]).await;
    let dir = scratch_dir("pagerduty-400");
    let path = dir.join("alerts.toml");
    std::fs::write(
        &path,
        format!(
            "{}notify_on = [\"open\"]\n[[alerts.pagerduty]]\nrouting_key = \"{ROUTING_KEY}\"\nurl = \"{}/v2/enqueue\"\n",
            kcb(&dir, &provider),
            pagerduty.base()
        ),
    )
    .unwrap();
    let daemon = start(
        &path,
        format!("127.0.0.1:{}", closed_port()).parse().unwrap(),
    )
    .await;
    let address = daemon.address();
    eventually(15, "the refused event is given up", || async {
        let (_, text) = http_get(address, "/metrics").await;
        sample(
            &text,
            "breakerd_alerts_total{channel=\"pagerduty\",outcome=\"failed\"}",
        ) == Some(1.0)
    })
    .await;
    assert_eq!(pagerduty.sent().len(), 1, "a 400 is never retried");
    let deliveries = &get_json(address, "/api/v1/circuit-breakers/kcb/events").await["deliveries"];
    assert!(
        deliveries.to_string().contains("answered HTTP 400"),
        "{deliveries}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_sends_the_page_as_text_retries_a_bad_gateway_and_says_recovered_after() {
    let provider = FakeProvider::start(Mode::Status(503)).await;
    let telegram = ChannelFake::start(
        "telegram/send_message_ok",
        &["telegram/send_message_bad_gateway_html"],
    )
    .await;
    let dir = scratch_dir("telegram");
    let path = dir.join("alerts.toml");
    std::fs::write(dir.join("bot-token"), BOT_TOKEN).unwrap();
    std::fs::write(
        &path,
        format!(
            "{}[[alerts.telegram]]\nbot_token = \"${{file:{}}}\"\nchat_id = \"-1001234567890\"\napi_url = \"{}\"\n",
            kcb(&dir, &provider),
            dir.join("bot-token").display(),
            telegram.base()
        ),
    )
    .unwrap();
    let daemon = start(
        &path,
        format!("127.0.0.1:{}", closed_port()).parse().unwrap(),
    )
    .await;
    let address = daemon.address();
    eventually(15, "the bot sends the outage", || async {
        !telegram.taken().is_empty()
    })
    .await;
    let sent = telegram.sent();
    assert_eq!(
        sent[0].status, 502,
        "the bad gateway came first and was retried"
    );
    assert_eq!(sent[1].path, format!("/bot{BOT_TOKEN}/sendMessage"));
    let message = &telegram.taken()[0];
    assert_eq!(message["chat_id"], "-1001234567890");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.starts_with("KCB Buni (kcb) is down: HTTP 503"),
        "{text}"
    );
    assert!(text.contains("What to do:"), "{text}");
    assert!(text.contains("Runbook:      http://breakerd.example.com/runbook#breaker-open"));

    provider.set_mode(Mode::Healthy);
    eventually(15, "the bot sends the recovery", || async {
        telegram.taken().len() >= 2
    })
    .await;
    let recovery: Value = telegram.taken()[1].clone();
    let text = recovery["text"].as_str().unwrap();
    assert!(
        text.starts_with("KCB Buni (kcb) recovered after "),
        "{text}"
    );
    assert!(
        text.contains("Had failed:   http_status: HTTP 503"),
        "the cause is past: {text}"
    );
    assert!(
        !text.contains("What to do:"),
        "nothing to do once recovered: {text}"
    );
    assert!(
        !everything_shown(address).await.contains(BOT_TOKEN),
        "the bot token is a secret"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_refusals_are_given_up_with_its_words_and_a_long_flood_wait_is_not_waited_out() {
    for (answer, said) in [
        (
            "telegram/send_message_chat_not_found",
            "Bad Request: chat not found",
        ),
        (
            "telegram/send_message_bot_blocked",
            "Forbidden: bot was blocked by the user",
        ),
        ("telegram/send_message_flood_wait", "asks to wait 2282 s"),
    ] {
        let provider = FakeProvider::start(Mode::Status(503)).await;
        let telegram = ChannelFake::start(answer, &[]).await;
        let dir = scratch_dir("telegram-refused");
        let path = dir.join("alerts.toml");
        std::fs::write(
            &path,
            format!(
                "{}notify_on = [\"open\"]\n[[alerts.telegram]]\nbot_token = \"{BOT_TOKEN}\"\nchat_id = \"@oncall\"\napi_url = \"{}\"\n",
                kcb(&dir, &provider),
                telegram.base()
            ),
        )
        .unwrap();
        let daemon = start(
            &path,
            format!("127.0.0.1:{}", closed_port()).parse().unwrap(),
        )
        .await;
        let address = daemon.address();
        eventually(15, &format!("{answer}: given up"), || async {
            let (_, text) = http_get(address, "/metrics").await;
            sample(
                &text,
                "breakerd_alerts_total{channel=\"telegram\",outcome=\"failed\"}",
            ) == Some(1.0)
        })
        .await;
        assert_eq!(telegram.sent().len(), 1, "{answer}: not retried");
        let shown = everything_shown(address).await;
        assert!(shown.contains(said), "{answer}: {shown}");
        assert!(
            !shown.contains(BOT_TOKEN),
            "{answer}: the bot token is a secret"
        );
        daemon.shutdown().await.expect("clean shutdown");
    }
}

/// Every published answer in `tests/fixtures/channels/`, met as the first answer to a page:
/// the channel does what the file's `expect` says — delivered, retried (then delivered), or
/// given up at once (a wait longer than breakerd honours is given up too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_answer_is_met_as_its_file_says() {
    let mut met = 0;
    for kind in ["pagerduty", "telegram"] {
        let usual = match kind {
            "pagerduty" => "pagerduty/enqueue_accepted",
            _ => "telegram/send_message_ok",
        };
        let folder = crate::support::fixtures::channel_root().join(kind);
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "http"))
            .map(|path| format!("{kind}/{}", path.file_stem().unwrap().to_string_lossy()))
            .collect();
        names.sort();
        for name in names {
            let fixture = crate::support::fixtures::load_channel(&name);
            let waits_too_long = fixture
                .expect
                .strip_prefix("retry after ")
                .and_then(|seconds| seconds.parse::<u64>().ok())
                .is_some_and(|seconds| seconds > breakerd::alert::MAX_RETRY_AFTER.as_secs());
            let expect = if waits_too_long {
                "give_up"
            } else {
                fixture.expect.split_whitespace().next().unwrap()
            };
            let provider = FakeProvider::start(Mode::Status(503)).await;
            let fake = ChannelFake::start(usual, &[&name]).await;
            let dir = scratch_dir("channel-answers");
            let channel = match kind {
                "pagerduty" => format!(
                    "[[alerts.pagerduty]]\nrouting_key = \"{ROUTING_KEY}\"\nurl = \"{}/v2/enqueue\"\n",
                    fake.base()
                ),
                _ => format!(
                    "[[alerts.telegram]]\nbot_token = \"{BOT_TOKEN}\"\nchat_id = \"-1001234567890\"\napi_url = \"{}\"\n",
                    fake.base()
                ),
            };
            let path = dir.join("alerts.toml");
            std::fs::write(
                &path,
                format!("{}notify_on = [\"open\"]\n{channel}", kcb(&dir, &provider)),
            )
            .unwrap();
            let daemon = start(
                &path,
                format!("127.0.0.1:{}", closed_port()).parse().unwrap(),
            )
            .await;
            let address = daemon.address();
            let outcome = |outcome: &'static str| {
                format!("breakerd_alerts_total{{channel=\"{kind}\",outcome=\"{outcome}\"}}")
            };
            let wanted = if expect == "give_up" {
                "failed"
            } else {
                "sent"
            };
            eventually(15, &format!("{name}: {expect}"), || async {
                let (_, text) = http_get(address, "/metrics").await;
                sample(&text, &outcome(wanted)) == Some(1.0)
            })
            .await;
            let tries = fake.sent().len();
            match expect {
                "sent" | "give_up" => assert_eq!(tries, 1, "{name}: sent once"),
                "retry" => assert_eq!(tries, 2, "{name}: retried once, then taken"),
                other => panic!("{name}: unknown expect {other}"),
            }
            daemon.shutdown().await.expect("clean shutdown");
            met += 1;
        }
    }
    assert_eq!(met, 15, "every answer in tests/fixtures/channels/ was met");
}
