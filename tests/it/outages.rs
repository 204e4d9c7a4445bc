//! Paging per outage across what happens to a running daemon: a restart in the middle of an
//! outage neither forgets it nor pages it again and the recovery still pages once; a reload
//! keeps outages, Alertmanager's alerts and timers; a state file that cannot be read never
//! stops the daemon.

use std::time::Duration;

use serde_json::Value;

use crate::support::alertmanager::Alertmanager;
use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::receiver::{Receiver, changes};
use crate::support::{eventually, get_json, pair, scratch_dir, start_daemon};

/// mpesa checked every 50 ms, open on the first failure, trial after 300 ms.
fn mpesa(fake: &FakeProvider) -> String {
    format!(
        "[services.mpesa]\npreset = \"mpesa\"\nbase_url = \"{}\"\nconsumer_key = \"${{KEY}}\"\nconsumer_secret = \"${{SECRET}}\"\n\
         every = \"50ms\"\nfailure_threshold = 1\ntimeout = \"2s\"\nreset_timeout = \"300ms\"\n",
        fake.url()
    )
}

fn alerts(state_dir: &std::path::Path, webhook: &Receiver, extra: &str) -> String {
    format!(
        "[alerts]\nstate_dir = \"{}\"\nmin_interval = \"0s\"\n{extra}[[alerts.webhook]]\nurl = \"{}\"\n",
        state_dir.display(),
        webhook.url()
    )
}

async fn failed_trials(address: std::net::SocketAddr) -> usize {
    let events = get_json(address, "/api/v1/circuit-breakers/mpesa/events").await;
    events["transitions"].as_array().map_or(0, |all| {
        all.iter()
            .filter(|t| t["from"] == "HALF_OPEN" && t["to"] == "OPEN")
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_outage_and_pages_it_once() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    let state_dir = scratch_dir("restart-outage");
    let config = format!(
        "{}{}[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"1s\"\n",
        mpesa(&fake),
        alerts(&state_dir, &webhook, ""),
        alertmanager.url()
    );
    let first = start_daemon(&config).await;
    eventually(15, "the outage is paged", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    eventually(30, "Alertmanager notifies it", || async {
        !am_hook.alertmanager_said("firing").is_empty()
    })
    .await;
    first.shutdown().await.expect("clean shutdown");

    let second = start_daemon(&config).await;
    let address = second.address();
    let stats = get_json(address, "/api/v1/circuit-breakers/mpesa").await;
    assert!(
        stats["state"] == "OPEN" || stats["state"] == "HALF_OPEN",
        "still open right after the restart: {stats}"
    );
    let opened = webhook.bodies()[0].clone();
    assert_eq!(stats["cause"]["reason"], "http_status", "{stats}");
    eventually(5, "the restored outage is shown", || async {
        get_json(address, "/api/v1/circuit-breakers/mpesa").await["outage"]["startedAt"]
            == opened["at"]
    })
    .await;
    eventually(15, "trials fail after the restart", || async {
        failed_trials(address).await >= 3
    })
    .await;
    fake.set_mode(Mode::Healthy);
    eventually(15, "the recovery is paged", || async {
        webhook.bodies().iter().any(|p| p["to"] == "CLOSED")
    })
    .await;
    eventually(30, "Alertmanager resolves it", || async {
        !am_hook.alertmanager_said("resolved").is_empty()
    })
    .await;
    let sent = webhook.bodies();
    assert_eq!(
        changes(&sent),
        pair(&[("CLOSED", "OPEN"), ("HALF_OPEN", "CLOSED")]),
        "the restart paged nothing again: {sent:#?}"
    );
    assert_eq!(
        sent[1]["outage"]["startedAt"], opened["at"],
        "one outage across the restart"
    );
    assert_eq!(
        am_hook.alertmanager_said("firing").len(),
        1,
        "{:#?}",
        am_hook.received()
    );
    let resolved = &am_hook.alertmanager_said("resolved")[0]["alerts"][0];
    assert_eq!(
        resolved["startsAt"].as_str().map(|s| &s[..19]),
        opened["at"].as_str().map(|s| &s[..19])
    );
    second.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_outage_the_alertmanager_alert_and_the_reminder_timer() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let webhook = Receiver::start(&[]).await;
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    let dir = scratch_dir("reload-outage");
    std::fs::write(dir.join("key"), "test-key").unwrap();
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    let service = mpesa(&fake)
        .replace(
            "${KEY}",
            &format!("${{file:{}}}", dir.join("key").display()),
        )
        .replace(
            "${SECRET}",
            &format!("${{file:{}}}", dir.join("secret").display()),
        );
    let am = format!(
        "[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"1s\"\n",
        alertmanager.url()
    );
    let path = dir.join("alerts.toml");
    let text = |team: &str| {
        format!(
            "{service}{}headers = {{ X-Team = \"{team}\" }}\n{am}",
            alerts(&dir.join("state"), &webhook, "reminder_every = \"2s\"\n")
        )
    };
    std::fs::write(&path, text("payments")).unwrap();
    let daemon =
        breakerd::daemon::start_from_file(&path, Some("127.0.0.1:0".parse().unwrap()), None)
            .await
            .expect("daemon starts");
    eventually(15, "the outage is paged", || async {
        !webhook.bodies().is_empty()
    })
    .await;
    let opened_at = webhook.accepted()[0].at;

    // Change the webhook's headers a second into the outage.
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(1)).await;
    std::fs::write(&path, text("on-call")).unwrap();
    let applied = daemon.reload().await.expect("the edit applies");
    assert_eq!(applied, vec!["alerts: changed".to_string()]);

    eventually(15, "a reminder comes", || async {
        webhook.bodies().iter().any(|p| p["kind"] == "reminder")
    })
    .await;
    let reminder = webhook
        .accepted()
        .into_iter()
        .find(|r| r.json()["kind"] == "reminder")
        .unwrap();
    let gap = reminder.at.duration_since(opened_at).unwrap();
    assert!(
        gap < Duration::from_millis(2700),
        "the reminder keeps its time from the opening, not from the reload: {gap:?}"
    );
    assert_eq!(
        reminder.headers["x-team"], "on-call",
        "the channel changed in place"
    );
    let kinds: Vec<Value> = webhook.bodies().iter().map(|p| p["kind"].clone()).collect();
    assert_eq!(kinds[0], "transition");
    assert!(
        kinds[1..].iter().all(|k| k == "reminder"),
        "nothing paged again: {kinds:?}"
    );
    eventually(30, "Alertmanager notifies the outage", || async {
        !am_hook.alertmanager_said("firing").is_empty()
    })
    .await;
    let held = alertmanager.alerts().await;
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(
        held[0]["status"]["state"], "active",
        "still firing after the reload"
    );
    assert!(am_hook.alertmanager_said("resolved").is_empty());
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_state_file_is_set_aside_and_the_daemon_runs() {
    let fake = FakeProvider::start(Mode::Healthy).await;
    let webhook = Receiver::start(&[]).await;
    let state_dir = scratch_dir("corrupt-state");
    std::fs::create_dir_all(state_dir.join("services")).unwrap();
    std::fs::write(
        state_dir.join("services/mpesa.json"),
        b"{\"version\":1,\"serv",
    )
    .unwrap();
    let daemon = start_daemon(&format!(
        "{}{}",
        mpesa(&fake),
        alerts(&state_dir, &webhook, "")
    ))
    .await;
    let address = daemon.address();
    eventually(10, "mpesa is checked", || async {
        get_json(address, "/api/v1/circuit-breakers/mpesa").await["successCount"].as_u64()
            >= Some(1)
    })
    .await;
    let names: Vec<String> = std::fs::read_dir(state_dir.join("services"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("mpesa.json.unreadable-")),
        "set aside for the operator: {names:?}"
    );
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_service_during_its_outage_resolves_its_alertmanager_alert() {
    let fake = FakeProvider::start(Mode::Status(500)).await;
    let healthy = FakeProvider::start(Mode::Healthy).await;
    let webhook = Receiver::start(&[]).await;
    let am_hook = Receiver::start(&[]).await;
    let alertmanager = Alertmanager::start(&am_hook.url(), "1s");
    let dir = scratch_dir("remove-outage");
    std::fs::write(dir.join("key"), "test-key").unwrap();
    std::fs::write(dir.join("secret"), "test-secret").unwrap();
    let files = |text: String| {
        text.replace(
            "${KEY}",
            &format!("${{file:{}}}", dir.join("key").display()),
        )
        .replace(
            "${SECRET}",
            &format!("${{file:{}}}", dir.join("secret").display()),
        )
    };
    let rest = format!(
        "{}[[alerts.alertmanager]]\nurl = \"{}\"\nresend_every = \"20s\"\n",
        alerts(&dir.join("state"), &webhook, ""),
        alertmanager.url()
    );
    let kcb = files(mpesa(&healthy).replace("[services.mpesa]", "[services.kcb]"));
    let path = dir.join("alerts.toml");
    std::fs::write(&path, format!("{}{kcb}{rest}", files(mpesa(&fake)))).unwrap();
    let daemon =
        breakerd::daemon::start_from_file(&path, Some("127.0.0.1:0".parse().unwrap()), None)
            .await
            .expect("daemon starts");
    eventually(30, "Alertmanager notifies the outage", || async {
        !am_hook.alertmanager_said("firing").is_empty()
    })
    .await;
    std::fs::write(&path, format!("{kcb}{rest}")).unwrap();
    let applied = daemon.reload().await.expect("the edit applies");
    assert_eq!(applied, vec!["mpesa: removed".to_string()]);
    // Not at the alert's endsAt, a minute away: at once.
    eventually(15, "Alertmanager resolves it", || async {
        !am_hook.alertmanager_said("resolved").is_empty()
    })
    .await;
    let resolved = &am_hook.alertmanager_said("resolved")[0]["alerts"][0];
    assert_eq!(resolved["labels"]["service"], "mpesa");
    assert!(
        !dir.join("state/services/mpesa.json").exists(),
        "its state is forgotten"
    );
    daemon.shutdown().await.expect("clean shutdown");
}
