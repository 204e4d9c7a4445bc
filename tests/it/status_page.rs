//! The live status page in a real headless Chromium: it shows every breaker, and changes by
//! itself (server-sent events, no reload) when one opens.

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
    crate::support::eventually(20, "the change is listed", || async move {
        page.text("#transitions tr")
            .await
            .is_some_and(|row| row.contains("mpesa") && row.contains("FORCED OPEN"))
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
