//! Live reload of alerts.toml: a good edit applies at once and keeps what it need not reset; a
//! bad edit keeps the old config running and says why; editors that write by rename or that
//! truncate and then write both work.

use std::path::Path;

use serde_json::Value;

use crate::support::fake_provider::{FakeProvider, Mode};
use crate::support::{eventually, get_json, http_get, sample, scratch_dir};

/// A daemon started from a file reads real secrets: these tests keep them in files (Docker
/// and systemd style) rather than in the shared process environment.
fn secrets(dir: &Path) -> (String, String) {
    std::fs::write(dir.join("key"), "test-key\n").unwrap();
    std::fs::write(dir.join("secret"), "test-secret\n").unwrap();
    std::fs::write(dir.join("admin"), "admin-token-value\n").unwrap();
    let server = format!(
        "[server]\nadmin_token = \"${{file:{}}}\"\n[alerts]\nstate_dir = \"{}\"\n",
        dir.join("admin").display(),
        dir.join("state").display()
    );
    let credentials = format!(
        "consumer_key = \"${{file:{}}}\"\nconsumer_secret = \"${{file:{}}}\"\n",
        dir.join("key").display(),
        dir.join("secret").display()
    );
    (server, credentials)
}

fn service(name: &str, fake: &FakeProvider, threshold: u32, credentials: &str) -> String {
    format!(
        "[services.{name}]\npreset = \"kcb\"\nbase_url = \"{}\"\n{credentials}every = \"50ms\"\nfailure_threshold = {threshold}\nreset_timeout = \"1h\"\n",
        fake.url()
    )
}

async fn start(path: &Path) -> breakerd::daemon::RunningDaemon {
    breakerd::daemon::start_from_file(path, Some("127.0.0.1:0".parse().unwrap()), None)
        .await
        .expect("daemon starts")
}

/// A daemon started from a file in a fresh directory with one healthy kcb service (failure
/// threshold 3): the provider, the directory, the file, its text and the daemon.
async fn started_with_kcb(
    label: &str,
) -> (
    FakeProvider,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
    breakerd::daemon::RunningDaemon,
) {
    let healthy = FakeProvider::start(Mode::Healthy).await;
    let dir = scratch_dir(label);
    let (server, creds) = secrets(&dir);
    let path = dir.join("alerts.toml");
    let good = format!("{server}{}", service("kcb", &healthy, 3, &creds));
    std::fs::write(&path, &good).unwrap();
    let daemon = start(&path).await;
    (healthy, dir, path, good, daemon)
}

async fn reload_ok(address: std::net::SocketAddr) -> bool {
    let (_, text) = http_get(address, "/metrics").await;
    sample(&text, "breakerd_config_last_reload_successful") == Some(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_edit_applies_and_keeps_unchanged_state() {
    let failing = FakeProvider::start(Mode::Status(500)).await;
    let healthy = FakeProvider::start(Mode::Healthy).await;
    let dir = scratch_dir("reload");
    let (server, creds) = secrets(&dir);
    let path = dir.join("alerts.toml");
    std::fs::write(
        &path,
        format!(
            "{server}{}{}",
            service("kcb", &failing, 1, &creds),
            service("gone", &healthy, 3, &creds)
        ),
    )
    .unwrap();
    let daemon = start(&path).await;
    let address = daemon.address();
    eventually(10, "kcb opens", || async {
        get_json(address, "/api/v1/circuit-breakers/kcb").await["state"] == "OPEN"
    })
    .await;
    let before = get_json(address, "/api/v1/circuit-breakers/kcb").await;

    // Raise kcb's threshold, drop `gone`, add `fresh`: written by rename, as many editors do.
    let staged = dir.join(".alerts.toml.swp");
    std::fs::write(
        &staged,
        format!(
            "{server}{}{}",
            service("kcb", &failing, 7, &creds),
            service("fresh", &healthy, 3, &creds)
        ),
    )
    .unwrap();
    std::fs::rename(&staged, &path).unwrap();
    eventually(10, "the edit is applied", || async {
        let all = get_json(address, "/api/v1/circuit-breakers").await;
        all.get("fresh").is_some() && all.get("gone").is_none()
    })
    .await;
    let after = get_json(address, "/api/v1/circuit-breakers/kcb").await;
    assert_eq!(
        after["state"], "OPEN",
        "a threshold change must not reset the breaker"
    );
    assert_eq!(after["failureThreshold"], 7);
    assert!(
        after["failureCount"].as_u64() >= before["failureCount"].as_u64(),
        "counts are kept"
    );
    assert_eq!(
        after["lastStateChange"]["at"],
        before["lastStateChange"]["at"]
    );
    let (_, text) = http_get(address, "/metrics").await;
    assert!(
        !text.contains("service=\"gone\""),
        "a removed service's series disappear"
    );
    assert_eq!(
        sample(&text, "breakerd_failure_threshold{service=\"kcb\"}"),
        Some(7.0)
    );
    assert!(text.contains("breakerd_breaker_state{service=\"fresh\",state=\"closed\"}"));
    assert!(reload_ok(address).await);
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_edit_keeps_the_old_config_and_says_why() {
    let (healthy, dir, path, good, daemon) = started_with_kcb("reload-bad").await;
    let (server, creds) = secrets(&dir);
    let address = daemon.address();
    std::fs::write(&path, format!("{good}failure_treshold = 4\n")).unwrap();
    eventually(10, "the failed reload is reported", || async {
        !reload_ok(address).await
    })
    .await;
    let kcb = get_json(address, "/api/v1/circuit-breakers/kcb").await;
    assert_eq!(kcb["failureThreshold"], 3, "the old config keeps running");

    let client = reqwest::Client::new();
    let answer = client
        .post(format!("http://{address}/-/reload"))
        .bearer_auth("admin-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    let problem = body["problems"][0].as_str().unwrap();
    let line = good.lines().count() + 1;
    assert!(
        problem.contains(&format!(
            "alerts.toml:{line}:1: unknown key `failure_treshold`"
        )),
        "{problem}"
    );
    assert!(
        problem.contains("did you mean `failure_threshold`?"),
        "{problem}"
    );

    // Truncate, then write: the reload waits until the file settles.
    std::fs::write(&path, "").unwrap();
    std::fs::write(
        &path,
        format!("{server}{}", service("kcb", &healthy, 4, &creds)),
    )
    .unwrap();
    eventually(10, "the fixed file is applied", || async {
        get_json(address, "/api/v1/circuit-breakers/kcb").await["failureThreshold"] == 4
    })
    .await;
    assert!(reload_ok(address).await);
    let answer = client
        .post(format!("http://{address}/-/reload"))
        .bearer_auth("admin-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"reloaded": true, "changes": []}));
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_naming_a_fifo_a_device_or_nothing_changes_nothing_and_freezes_nothing() {
    let (_healthy, dir, path, good, daemon) = started_with_kcb("reload-hostile").await;
    let address = daemon.address();
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let hostile = [
        (
            good.replace(
                &dir.join("key").display().to_string(),
                &fifo.display().to_string(),
            ),
            "it is a FIFO, not a regular file",
        ),
        (
            good.replace(&dir.join("secret").display().to_string(), "/dev/zero"),
            "it is a character device, not a regular file",
        ),
        (String::new(), "alerts.toml:1:1: no services are configured"),
    ];
    for (text, why) in hostile {
        std::fs::write(&path, &text).unwrap();
        // Without the fix the FIFO never answers and this never returns.
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), daemon.reload())
            .await
            .expect("the reload returns");
        let problems = outcome.expect_err("the hostile file is refused");
        assert!(problems.iter().any(|p| p.contains(why)), "{problems:?}");
        // Where it is: PATH:LINE:COL of the key that names the file.
        let place = format!("{}:", path.display());
        assert!(problems[0].starts_with(&place), "{problems:?}");
        let kcb = get_json(address, "/api/v1/circuit-breakers/kcb").await;
        assert_eq!(kcb["failureThreshold"], 3, "the old config keeps running");
        assert!(!reload_ok(address).await);
    }
    std::fs::write(&path, &good).unwrap();
    daemon.reload().await.expect("the good file applies again");
    assert!(reload_ok(address).await);
    daemon.shutdown().await.expect("clean shutdown");
}

/// When `service` was last checked, as the API says.
async fn last_checked(address: std::net::SocketAddr, service: &str) -> Value {
    get_json(address, &format!("/api/v1/circuit-breakers/{service}")).await["lastCheck"]["at"]
        .clone()
}

/// A reload refused at any step — a channel's missing secret, a CA file TLS will not take, a
/// bad rule, a bad listen address — changes nothing: a service the refused file changed or
/// removed is still checked on its schedule, a service it added never starts, its channels
/// are not started and the old ones still page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_changes_nothing_and_stops_nothing() {
    let healthy = FakeProvider::start(Mode::Healthy).await;
    let failing = FakeProvider::start(Mode::Status(503)).await;
    let webhook = crate::support::receiver::Receiver::start(&[]).await;
    let dir = scratch_dir("reload-refused");
    let (server, creds) = secrets(&dir);
    let path = dir.join("alerts.toml");
    let channel = format!(
        "[[alerts.webhook]]\nname = \"oncall\"\nurl = \"{}\"\n",
        webhook.url()
    );
    let good = format!(
        "{server}{channel}{}{}",
        service("kcb", &healthy, 3, &creds),
        service("gone", &healthy, 3, &creds)
    );
    std::fs::write(&path, &good).unwrap();
    let daemon = start(&path).await;
    let address = daemon.address();
    // Not a certificate, in a PEM block: the file reads, TLS refuses it.
    let bogus_ca = dir.join("bogus-ca.pem");
    std::fs::write(
        &bogus_ca,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    // Every refused edit also raises kcb's threshold, drops `gone` and adds `fresh`.
    let edit = |server: &str, channels: &str, kcb_extra: &str| {
        format!(
            "{server}{channel}{channels}{}{kcb_extra}{}",
            service("kcb", &healthy, 9, &creds),
            service("fresh", &healthy, 3, &creds)
        )
    };
    let unset = "BREAKERD_TEST_NEVER_SET_7F3A";
    let refused = [
        (
            edit(
                &server,
                &format!(
                    "[alerts.email]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\nusername = \"pager\"\npassword = \"${{{unset}}}\"\nfrom = \"breakerd@example.com\"\nto = [\"oncall@example.com\"]\n",
                    crate::support::closed_port()
                ),
                "",
            ),
            unset,
        ),
        (
            edit(
                &server,
                &format!(
                    "[[alerts.webhook]]\nname = \"signed\"\nurl = \"{}\"\nsecret = \"${{{unset}}}\"\n",
                    webhook.url()
                ),
                "",
            ),
            unset,
        ),
        (
            edit(
                &server,
                &format!(
                    "[[alerts.pagerduty]]\nrouting_key = \"${{{unset}}}\"\nurl = \"{}/v2/enqueue\"\n",
                    webhook.url()
                ),
                "",
            ),
            unset,
        ),
        (
            edit(
                &server,
                &format!(
                    "[[alerts.telegram]]\nbot_token = \"${{{unset}}}\"\nchat_id = \"-1001234567890\"\napi_url = \"{}\"\n",
                    webhook.url()
                ),
                "",
            ),
            unset,
        ),
        (
            edit(
                &server,
                "[[alerts.alertmanager]]\nurl = \"not a url\"\n",
                "",
            ),
            "alerts.alertmanager.url",
        ),
        (
            edit(
                &server,
                "",
                &format!("ca_file = \"{}\"\n", bogus_ca.display()),
            ),
            "ca_file",
        ),
        (
            edit(
                &server,
                "",
                "[[services.kcb.rules]]\nstatus = 200\noutcome = \"sucess\"\n",
            ),
            "outcome",
        ),
        (
            edit(
                &server.replace("[server]\n", "[server]\nlisten = \"nowhere\"\n"),
                "",
                "",
            ),
            "server.listen",
        ),
    ];
    for (text, why) in refused {
        std::fs::write(&path, &text).unwrap();
        let before = (
            last_checked(address, "kcb").await,
            last_checked(address, "gone").await,
        );
        let problems = daemon.reload().await.expect_err("the edit is refused");
        assert!(
            problems.iter().any(|problem| problem.contains(why)),
            "{why}: {problems:?}"
        );
        assert!(!reload_ok(address).await, "{why}: the failed reload shows");
        let all = get_json(address, "/api/v1/circuit-breakers").await;
        assert_eq!(
            all["kcb"]["failureThreshold"], 3,
            "{why}: kcb runs as before"
        );
        assert!(all.get("gone").is_some(), "{why}: gone still runs");
        assert!(all.get("fresh").is_none(), "{why}: fresh never started");
        for (name, then) in [("kcb", before.0), ("gone", before.1)] {
            eventually(10, &format!("{why}: {name} is still checked"), || async {
                last_checked(address, name).await != then
            })
            .await;
        }
        let (_, metrics) = http_get(address, "/metrics").await;
        assert!(
            !["email", "signed", "pagerduty", "telegram"]
                .iter()
                .any(|name| metrics.contains(&format!("channel=\"{name}\""))),
            "{why}: a refused file's channels never start"
        );
        assert_eq!(
            sample(&metrics, "breakerd_failure_threshold{service=\"kcb\"}"),
            Some(3.0),
            "{why}"
        );
    }

    // The same edit without the fault applies; the old channel still pages.
    let fixed = format!(
        "{server}{channel}{}{}",
        service("kcb", &failing, 1, &creds),
        service("fresh", &healthy, 3, &creds)
    );
    std::fs::write(&path, &fixed).unwrap();
    let changes = daemon.reload().await.expect("the fixed file applies");
    assert!(
        changes.contains(&"gone: removed".to_string()),
        "{changes:?}"
    );
    assert!(reload_ok(address).await);
    eventually(10, "kcb's outage is paged on the old channel", || async {
        webhook
            .bodies()
            .iter()
            .any(|body| body["service"] == "kcb" && body["to"] == "OPEN")
    })
    .await;
    daemon.shutdown().await.expect("clean shutdown");
}
