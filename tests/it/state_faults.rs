//! breakerd's own trouble keeping its state is loud: a write that fails is counted by kind,
//! shown on the status page's banner with its path and error until a write succeeds again; a
//! state directory deleted while running is made again at the next write; and a symbolic link
//! planted inside it is set aside and never written through.

use std::path::Path;

use serde_json::Value;

use crate::support::receiver::Receiver;
use crate::support::{eventually, get_json, http_get, sample, scratch_dir, start_daemon};

const BEAT_TOKEN: &str = "beat-token-for-state-faults";
const ADMIN: &str = "admin-token-for-state-faults";

fn config(state: &Path, hook: &Receiver) -> String {
    format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n\
         [services.callbacks]\nkind = \"heartbeat\"\nevery = \"1h\"\ntoken = \"{BEAT_TOKEN}\"\n\
         [services.db]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nevery = \"1h\"\n\
         [alerts]\nstate_dir = \"{}\"\nnotify_on = [\"open\", \"closed\"]\n[[alerts.webhook]]\nurl = \"{}\"\n",
        state.display(),
        hook.url()
    )
}

async fn beat(address: std::net::SocketAddr) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{address}/api/v1/heartbeat/callbacks"))
        .bearer_auth(BEAT_TOKEN)
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

async fn force_open(address: std::net::SocketAddr, service: &str) {
    let status = reqwest::Client::new()
        .post(format!(
            "http://{address}/api/v1/circuit-breakers/{service}/force-open"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("an answer")
        .status();
    assert_eq!(status, 200);
}

fn errors(metrics: &str, what: &str) -> f64 {
    sample(
        metrics,
        &format!("breakerd_state_write_errors_total{{what=\"{what}\"}}"),
    )
    .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_counted_and_shown_until_one_succeeds_and_a_deleted_dir_comes_back() {
    breakerd::probe::install_crypto_provider();
    let hook = Receiver::start(&[]).await;
    let state = scratch_dir("state-faults");
    let daemon = start_daemon(&config(&state, &hook)).await;
    let address = daemon.address();
    assert_eq!(
        errors(&http_get(address, "/metrics").await.1, "heartbeats"),
        0.0
    );

    // Where the heartbeats folder should be, a file: every write of a beat fails.
    let heartbeats = state.join("heartbeats");
    let _ = std::fs::remove_dir_all(&heartbeats);
    std::fs::write(&heartbeats, b"in the way").expect("a file in the way");
    assert_eq!(beat(address).await, 200, "the beat itself is taken");
    let metrics = http_get(address, "/metrics").await.1;
    assert_eq!(errors(&metrics, "heartbeats"), 1.0, "{metrics}");
    let status = get_json(address, "/api/v1/status").await;
    let faults = status["stateFaults"]
        .as_array()
        .expect("the banner's faults");
    assert_eq!(faults.len(), 1, "{status}");
    assert_eq!(faults[0]["what"], "heartbeats");
    assert!(
        faults[0]["path"]
            .as_str()
            .is_some_and(|path| path.contains("heartbeats")),
        "{}",
        faults[0]
    );
    assert!(
        faults[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("not a folder")),
        "{}",
        faults[0]
    );

    // The file goes: the next write makes the folder and the banner clears.
    std::fs::remove_file(&heartbeats).expect("the file goes");
    eventually(10, "a beat is kept again and the banner clears", || async {
        beat(address).await;
        get_json(address, "/api/v1/status").await["stateFaults"].is_null()
    })
    .await;
    assert!(heartbeats.join("callbacks").is_file(), "the beat is kept");

    // The whole state directory deleted while running: made again at the next write.
    std::fs::remove_dir_all(&state).expect("the state dir goes");
    force_open(address, "db").await;
    eventually(10, "the breaker's state is written again", || async {
        state.join("services").join("db.json").is_file()
    })
    .await;
    eventually(10, "the page was delivered", || async {
        !hook.received().is_empty()
    })
    .await;
    let metrics = http_get(address, "/metrics").await.1;
    assert_eq!(errors(&metrics, "services"), 0.0, "{metrics}");
    daemon.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_outbox_is_set_aside_and_nothing_is_written_through_it() {
    breakerd::probe::install_crypto_provider();
    let hook = Receiver::start(&[500]).await;
    let state = scratch_dir("state-link");
    let elsewhere = scratch_dir("state-link-target");
    std::os::unix::fs::symlink(&elsewhere, state.join("outbox")).expect("a planted link");
    let daemon = start_daemon(&config(&state, &hook)).await;
    let address = daemon.address();
    // A page that is kept in the outbox while its first delivery fails.
    force_open(address, "db").await;
    eventually(10, "the page is tried", || async {
        !hook.received().is_empty()
    })
    .await;
    let outbox = state.join("outbox");
    assert!(
        std::fs::symlink_metadata(&outbox).is_ok_and(|found| found.is_dir()),
        "a real folder now"
    );
    let aside: Vec<String> = std::fs::read_dir(&state)
        .expect("the state dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("outbox.link-"))
        .collect();
    assert_eq!(aside.len(), 1, "the link is kept aside: {aside:?}");
    let through: Vec<_> = std::fs::read_dir(&elsewhere)
        .expect("the link's target")
        .collect();
    assert!(through.is_empty(), "nothing was written through the link");
    let stats: Value = get_json(address, "/api/v1/circuit-breakers/db").await;
    assert_eq!(stats["state"], "FORCED_OPEN");
    daemon.shutdown().await.expect("clean shutdown");
}
