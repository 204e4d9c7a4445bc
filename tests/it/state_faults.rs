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

/// `breakerd run` in a mount namespace of its own whose state directory is a small tmpfs,
/// prepared by `prepare` (shell, with `$S` the state directory) before breakerd starts;
/// killed when dropped.
struct Confined {
    child: std::process::Child,
    address: std::net::SocketAddr,
    state: std::path::PathBuf,
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn confined(label: &str, prepare: &str) -> Confined {
    let dir = scratch_dir(label);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("the mount point");
    let port = crate::support::closed_port();
    let config = dir.join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nadmin_token = \"{ADMIN}\"\n\
             [services.db]\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\nevery = \"1h\"\n\
             [alerts]\nstate_dir = \"{}\"\n",
            state.display()
        ),
    )
    .expect("the config");
    let script = format!(
        "S='{}'; mount -t tmpfs -o size=64k tmpfs \"$S\" && {prepare} && exec '{}' run --config '{}' --listen 127.0.0.1:{port}",
        state.display(),
        env!("CARGO_BIN_EXE_breakerd"),
        config.display()
    );
    // A user and mount namespace of its own (util-linux `unshare`): the tmpfs is breakerd's
    // alone, and no privilege of the test's is needed.
    let child = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("breakerd.log")).expect("a log file"))
        .spawn()
        .expect("start breakerd in a mount namespace (util-linux unshare)");
    let confined = Confined {
        child,
        address: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        state,
    };
    crate::support::wait_until_listening(port, "breakerd in its namespace");
    confined
}

/// Forces `db` open (a state write) and returns the banner's fault of `what` once counted.
async fn fault_after_a_write(address: std::net::SocketAddr, what: &str) -> Value {
    force_open(address, "db").await;
    eventually(10, "the failed write is counted", || async {
        errors(&http_get(address, "/metrics").await.1, what) >= 1.0
    })
    .await;
    let status = get_json(address, "/api/v1/status").await;
    status["stateFaults"]
        .as_array()
        .and_then(|faults| faults.iter().find(|fault| fault["what"] == what))
        .cloned()
        .unwrap_or_else(|| panic!("no {what} fault on the banner: {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_and_a_read_only_state_dir_are_counted_and_shown() {
    breakerd::probe::install_crypto_provider();
    // Full: a filler takes every byte of the 64 KiB tmpfs (dd stops at ENOSPC).
    let full = confined(
        "state-full",
        "mkdir \"$S/services\" && { dd if=/dev/zero of=\"$S/filler\" bs=4k 2>/dev/null; true; }",
    );
    let fault = fault_after_a_write(full.address, "services").await;
    assert!(
        fault["error"]
            .as_str()
            .is_some_and(|error| error.contains("No space left")),
        "{fault}"
    );
    assert!(
        fault["path"]
            .as_str()
            .is_some_and(|path| path.ends_with("services/db.json")),
        "{fault}"
    );
    let stats = get_json(full.address, "/api/v1/circuit-breakers/db").await;
    assert_eq!(
        stats["state"], "FORCED_OPEN",
        "the breaker goes on regardless"
    );
    drop(full);

    // Read-only while running (a disk remounted read-only after an I/O error): breakerd
    // started on a writable state dir (it refuses to start on a read-only one), then its
    // tmpfs is remounted read-only from inside its namespace (util-linux `nsenter`).
    let read_only = confined("state-ro", "true");
    // Listening comes before the state dir is opened: wait until breakerd is ready.
    let ready = format!("http://{}/-/ready", read_only.address);
    eventually(10, "breakerd is ready", || async {
        reqwest::get(&ready)
            .await
            .is_ok_and(|answer| answer.status() == 200)
    })
    .await;
    let state = read_only.state.display().to_string();
    let remounted = std::process::Command::new("nsenter")
        .args(["--target", &read_only.child.id().to_string()])
        .args(["--user", "--mount", "--preserve-credentials"])
        .args(["mount", "-o", "remount,ro", &state])
        .status()
        .expect("nsenter");
    assert!(remounted.success(), "the state dir is read-only now");
    let fault = fault_after_a_write(read_only.address, "services").await;
    assert!(
        fault["error"]
            .as_str()
            .is_some_and(|error| error.contains("Read-only file system")),
        "{fault}"
    );
}
