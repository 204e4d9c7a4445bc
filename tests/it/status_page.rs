//! The live status page in a real headless Chromium: it shows every breaker, changes by
//! itself (server-sent events, no reload) when one opens, and lists outages, not transitions.

use crate::support::browser::Browser;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::start_daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_a_breaker_opening_live() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{url}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\nevery = \"200ms\"\n\
         [services.status-page]\nkind = \"http\"\nurl = \"{url}/health\"\nevery = \"200ms\"\n\
         [[maintenance]]\nservices = [\"status-page\"]\nstart = \"{start}\"\nend = \"{end}\"\nreason = \"moving racks\"\n",
        url = fake.url(),
        start = humantime::format_rfc3339(std::time::SystemTime::now() - std::time::Duration::from_secs(60)),
        end = humantime::format_rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(3600)),
    ))
    .await;
    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", daemon.address())).await;
    let page = &browser;
    crate::support::eventually(20, "the page shows mpesa CLOSED", || async move {
        page.text("#svc-mpesa .state").await.as_deref() == Some("CLOSED")
    })
    .await;
    assert_eq!(
        browser.text("#svc-status-page .state").await.as_deref(),
        Some("CLOSED")
    );

    daemon
        .shared()
        .registry()
        .get("mpesa")
        .expect("mpesa")
        .breaker
        .force_open();
    crate::support::eventually(
        20,
        "the page shows mpesa OPEN without a reload",
        || async move { page.text("#svc-mpesa .state").await.as_deref() == Some("FORCED OPEN") },
    )
    .await;
    crate::support::eventually(20, "the outage is listed", || async move {
        page.text("#outages tr")
            .await
            .is_some_and(|row| row.contains("mpesa") && row.contains("forced open by hand"))
    })
    .await;
    let summary = browser.text("#summary").await.unwrap_or_default();
    assert_eq!(summary, "unhealthy · 2 services · 1 open · 0 half-open");

    // A provider that fails: the card says why and since when, not "last check rejected".
    fake.set_mode(Mode::Status(503));
    crate::support::eventually(20, "the card shows the cause", || async move {
        page.text("#svc-status-page .cause")
            .await
            .is_some_and(|cause| cause.starts_with("http_status — HTTP 503"))
    })
    .await;
    // The maintenance window shows as a badge on its card only.
    let badge = browser
        .text("#svc-status-page .held-maintenance")
        .await
        .unwrap_or_default();
    assert!(
        badge.starts_with("maintenance until ") && badge.ends_with(": moving racks"),
        "{badge}"
    );
    assert_eq!(browser.text("#svc-mpesa .held").await, None);
    let outage = browser
        .text("#svc-status-page .outage")
        .await
        .unwrap_or_default();
    assert!(outage.starts_with("failing since "), "{outage}");
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&shot, png).expect("write the screenshot");
    daemon.shutdown().await.expect("clean shutdown");
}

/// The done-when of issue 28, item 5: a provider that failed three trial calls and then
/// recovered is ONE row, with the provider's code, "3" trials and an end time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_with_three_failed_trials_is_one_row_with_its_cause_and_end() {
    let fake = FakeProvider::start(Mode::Fixture(
        "pesapal/request_token_invalid_key_secret".into(),
    ))
    .await;
    let daemon = start_daemon(&format!(
        "[services.pesapal]\npreset = \"pesapal\"\nbase_url = \"{url}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 2\nreset_timeout = \"300ms\"\n",
        url = fake.url(),
    ))
    .await;
    let address = daemon.address();
    // Read the history itself, not the status snapshot (reused for up to 900 ms): the next
    // trial comes a reset timeout (300 ms) after a failed one.
    let shared = daemon.shared();
    let latest = || {
        shared
            .history
            .recent_outages(["pesapal"], 1)
            .into_iter()
            .next()
    };
    crate::support::eventually(30, "three trial calls fail", || async move {
        latest().is_some_and(|outage| outage.failed_trials >= 3)
    })
    .await;
    fake.set_mode(Mode::Healthy);
    assert_eq!(
        latest().map(|outage| outage.failed_trials),
        Some(3),
        "the provider healed before a fourth trial"
    );
    crate::support::eventually(20, "the outage ends", || async move {
        latest().is_some_and(|outage| !outage.is_ongoing())
    })
    .await;

    let browser = Browser::start().await;
    browser.open(&format!("http://{address}/")).await;
    let page = &browser;
    crate::support::eventually(20, "the page lists the ended outage", || async move {
        page.text("#outages tr.is-ended").await.is_some()
    })
    .await;
    let rows = browser.count("#outages tr.outage-row").await;
    assert_eq!(rows, 1, "one row for the whole outage");
    let cause = browser
        .text("#outages tr td.why summary")
        .await
        .unwrap_or_default();
    assert!(
        cause.starts_with("auth") && cause.contains("invalid_consumer_key_or_secret_provided"),
        "{cause}"
    );
    assert_eq!(
        browser.text("#outages tr td.trials").await.as_deref(),
        Some("3 failed")
    );
    let ended = browser
        .text("#outages tr td.ended")
        .await
        .unwrap_or_default();
    assert!(
        !ended.contains("ongoing") && ended.contains(" (after "),
        "an end time and how long it lasted: {ended}"
    );
    // The row opens to the state changes within it: three failed trials, then the recovery.
    let changes = browser.count("#outages tr ol.steps li").await;
    assert_eq!(changes, 9, "open, 3 × (half-open, open), half-open, closed");
    daemon.shutdown().await.expect("clean shutdown");
}

/// The ids and classes of the page, as `scripts/status_screenshot.py` writes them beside the
/// screenshot: an `id="` or `class="` after whitespace, its value split on whitespace, plain
/// names only (those built with `${…}` are left out), sorted.
fn outline(html: &str) -> Vec<String> {
    let plain = |token: &str| {
        token.starts_with(|c: char| c.is_ascii_alphabetic())
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut found = std::collections::BTreeSet::new();
    for attribute in ["id", "class"] {
        let opening = format!("{attribute}=\"");
        for (at, _) in html.match_indices(&opening) {
            if !html[..at].ends_with(char::is_whitespace) {
                continue;
            }
            let value = &html[at + opening.len()..];
            let value = &value[..value.find('"').unwrap_or(value.len())];
            for token in value.split_whitespace().filter(|token| plain(token)) {
                found.insert(format!("{attribute}:{token}"));
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn the_screenshot_was_taken_of_the_page_as_it_is() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let html = std::fs::read_to_string(root.join("src/api/status.html")).expect("status.html");
    let recorded = std::fs::read_to_string(root.join("docs/status-page.structure"))
        .expect("docs/status-page.structure: run `python3 scripts/status_screenshot.py`");
    let recorded: Vec<&str> = recorded
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect();
    let now = outline(&html);
    assert!(
        now.iter().map(String::as_str).eq(recorded.iter().copied()),
        "the status page's ids and classes changed since docs/status-page.png was taken: run \
         `python3 scripts/status_screenshot.py` (it takes a new screenshot of the demo and \
         records the outline)\nnow:      {now:?}\nrecorded: {recorded:?}"
    );
    assert!(
        root.join("docs/status-page.png").is_file(),
        "README shows docs/status-page.png"
    );
}

/// A card whose p95 is over its `slow_call` is marked slow; a fast one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_slower_than_slow_call_is_marked_slow() {
    let slow = FakeProvider::start(Mode::Slow(std::time::Duration::from_millis(150))).await;
    let fast = FakeProvider::start(Mode::Healthy).await;
    let daemon = start_daemon(&format!(
        "[server]\nslow_call = \"60ms\"\n\
         [services.slowpoke]\nkind = \"http\"\nurl = \"{slow}/health\"\nevery = \"100ms\"\n\
         [services.quick]\nkind = \"http\"\nurl = \"{fast}/health\"\nevery = \"100ms\"\n",
        slow = slow.url(),
        fast = fast.url(),
    ))
    .await;
    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", daemon.address())).await;
    let page = &browser;
    crate::support::eventually(20, "the slow card has its badge", || async move {
        page.text("#svc-slowpoke .badge.slow")
            .await
            .is_some_and(|badge| badge == "slow: p95 over 60 ms")
    })
    .await;
    assert_eq!(browser.count("#svc-slowpoke.slow").await, 1);
    crate::support::eventually(20, "the quick card has checked", || async move {
        page.text("#svc-quick .last")
            .await
            .is_some_and(|last| last.starts_with("last check success"))
    })
    .await;
    assert_eq!(browser.count("#svc-quick .badge.slow").await, 0);
    assert_eq!(browser.count("#svc-quick.slow").await, 0);
    daemon.shutdown().await.expect("clean shutdown");
}
