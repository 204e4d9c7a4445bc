//! The state kept in `state_dir/services` across restarts: one file per service with its
//! breaker, its last failure and its outage ledger. Files are written atomically (temporary
//! file, fsync, rename, fsync of the folder) off the async runtime by one writer that takes
//! the latest version of each service, so a burst of changes costs one write per service and
//! memory stays bounded by the number of services. A file that cannot be read is logged, moved
//! aside and ignored: it never stops the daemon.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{error, warn};

use super::outage::LedgerRecord;
use crate::breaker::Snapshot;
use crate::metrics::Metrics;
use crate::outcome::Cause;
use crate::statefs::StateFiles;

/// The version written into every file; a file of another version is set aside.
const VERSION: u32 = 1;
/// The largest state file read back, in bytes; a larger one is set aside.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What is kept of one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceRecord {
    pub(crate) breaker: Snapshot,
    #[serde(default)]
    pub(crate) last_failure: Option<Cause>,
    #[serde(default)]
    pub(crate) ledger: LedgerRecord,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    version: u32,
    service: String,
    #[serde(flatten)]
    record: ServiceRecord,
}

/// Writes waiting for the writer: the latest bytes of each service, or `None` to delete.
type Pending = Arc<Mutex<BTreeMap<String, Option<Vec<u8>>>>>;

/// The state folder and its writer.
#[derive(Debug)]
pub(crate) struct Store {
    pending: Pending,
    wake: Arc<Notify>,
    closing: Arc<AtomicBool>,
    writer: JoinHandle<()>,
}

impl Store {
    /// Opens (creating) `<state_dir>/services` and reads every record in it. Runs the file
    /// system work on the blocking pool.
    pub(crate) async fn open(
        state_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> io::Result<(Self, BTreeMap<String, ServiceRecord>)> {
        let dir = state_dir.join("services");
        let reading = dir.clone();
        let records = tokio::task::spawn_blocking(move || {
            crate::statefs::ensure_dir(&reading)?;
            Ok::<_, io::Error>(read_all(&reading))
        })
        .await
        .map_err(io::Error::other)??;
        let pending: Pending = Arc::default();
        let wake = Arc::new(Notify::new());
        let closing = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_loop(
            dir,
            Arc::clone(&pending),
            Arc::clone(&wake),
            Arc::clone(&closing),
            metrics,
        ));
        Ok((
            Self {
                pending,
                wake,
                closing,
                writer,
            },
            records,
        ))
    }

    /// Keeps `record` as the state of `service` (written soon, by the writer).
    pub(crate) fn save(&self, service: &str, record: ServiceRecord) {
        let file = File {
            version: VERSION,
            service: service.to_string(),
            record,
        };
        match serde_json::to_vec_pretty(&file) {
            Ok(bytes) => self.queue(service, Some(bytes)),
            Err(failure) => error!(service, "cannot encode the state of {service}: {failure}"),
        }
    }

    /// Forgets `service` (removed from the config).
    pub(crate) fn forget(&self, service: &str) {
        self.queue(service, None);
    }

    fn queue(&self, service: &str, bytes: Option<Vec<u8>>) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service.to_string(), bytes);
        self.wake.notify_one();
    }

    /// Writes whatever is still waiting, then stops the writer.
    pub(crate) async fn close(self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_one();
        if let Err(failure) = self.writer.await {
            error!("the state writer failed: {failure}");
        }
    }
}

fn take(pending: &Pending) -> BTreeMap<String, Option<Vec<u8>>> {
    std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Writes batches until closing and nothing is left: one thread's worth of file system work at
/// a time, so writes of one service never race each other.
async fn write_loop(
    dir: PathBuf,
    pending: Pending,
    wake: Arc<Notify>,
    closing: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    loop {
        let batch = take(&pending);
        if !batch.is_empty() {
            let (dir, writing) = (dir.clone(), Arc::clone(&metrics));
            match tokio::task::spawn_blocking(move || write_batch(&dir, batch, &writing)).await {
                Err(failure) if failure.is_panic() => {
                    let payload = failure.into_panic();
                    crate::tasks::panicked(
                        &metrics,
                        crate::tasks::TaskKind::StateWriter,
                        "a batch of state files",
                        &*payload,
                        "the next change writes again",
                    );
                }
                Err(failure) => error!("the state writer failed: {failure}"),
                Ok(()) => {}
            }
        } else if closing.load(Ordering::Acquire) {
            return;
        } else {
            wake.notified().await;
        }
    }
}

fn write_batch(dir: &Path, batch: BTreeMap<String, Option<Vec<u8>>>, metrics: &Metrics) {
    for (service, bytes) in batch {
        let path = dir.join(format!("{}.json", crate::unit::file_stem(&service)));
        let result = match bytes {
            Some(bytes) => crate::statefs::write_atomically(dir, &path, &bytes),
            None => match std::fs::remove_file(&path) {
                Err(failure) if failure.kind() != io::ErrorKind::NotFound => Err(failure),
                _ => Ok(()),
            },
        };
        match result {
            Ok(()) => metrics.state_faults().written(StateFiles::Services, &path),
            Err(failure) => {
                // The next change writes again; until then a restart finds the previous state.
                metrics
                    .state_faults()
                    .failed(StateFiles::Services, &path, &failure);
                error!(service, path = %path.display(), "cannot write the state of {service}: {failure}");
            }
        }
    }
}

/// Every readable record in `dir`; the others are set aside.
fn read_all(dir: &Path) -> BTreeMap<String, ServiceRecord> {
    let mut records = BTreeMap::new();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return records;
    };
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        let Some(service) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".json"))
            .filter(|name| !name.starts_with('.'))
            .map(crate::unit::from_file_stem)
        else {
            continue;
        };
        match read_one(&path, &service) {
            Ok(record) => {
                records.insert(service, record);
            }
            Err(why) => set_aside(&path, &why, "that service starts afresh"),
        }
    }
    records
}

fn read_one(path: &Path, service: &str) -> Result<ServiceRecord, String> {
    let file: File = read_kept(path, MAX_FILE_BYTES, VERSION, |file: &File| file.version)?;
    if file.service != service {
        return Err(format!("it holds the state of \"{}\"", file.service));
    }
    Ok(file.record)
}

/// Reads a JSON file breakerd wrote: at most `max_bytes`, of `version` (as `version_of` finds
/// it in the file).
pub(super) fn read_kept<T: serde::de::DeserializeOwned>(
    path: &Path,
    max_bytes: u64,
    version: u32,
    version_of: impl Fn(&T) -> u32,
) -> Result<T, String> {
    let bytes = crate::statefs::read_limited(path, max_bytes)?;
    let kept: T = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let found = version_of(&kept);
    if found != version {
        return Err(format!(
            "version {found} (this breakerd reads version {version})"
        ));
    }
    Ok(kept)
}

/// Moves an unreadable file aside (`*.unreadable-<ms>`) and says so, with what follows from it.
pub(super) fn set_aside(path: &Path, why: &str, consequence: &str) {
    let aside = path.with_extension(format!(
        "json.unreadable-{}",
        crate::wall::unix_millis(crate::wall::now())
    ));
    match std::fs::rename(path, &aside) {
        Ok(()) => warn!(
            path = %path.display(),
            moved_to = %aside.display(),
            "a state file could not be read and was set aside; {consequence}: {why}"
        ),
        Err(failure) => warn!(
            path = %path.display(),
            "a state file could not be read and could not be set aside ({failure}); {consequence}: {why}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::State;

    fn record(state: State) -> ServiceRecord {
        ServiceRecord {
            breaker: Snapshot {
                state,
                next_attempt: None,
                consecutive_failures: 3,
                reopenings: 1,
                last_failure: None,
                last_change: None,
            },
            last_failure: None,
            ledger: LedgerRecord::default(),
        }
    }

    fn scratch(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("breakerd-store-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn records_survive_a_restart_and_forgotten_ones_go() {
        let dir = scratch("survive");
        let (store, found) = Store::open(&dir, Arc::new(Metrics::new())).await.unwrap();
        assert!(found.is_empty());
        store.save("mpesa", record(State::Closed));
        store.save("mpesa", record(State::Open));
        store.save("kcb", record(State::Open));
        store.save("sms", record(State::Open));
        store.forget("sms");
        store.close().await;
        let (store, found) = Store::open(&dir, Arc::new(Metrics::new())).await.unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["kcb", "mpesa"]);
        assert_eq!(found["mpesa"], record(State::Open), "the latest save wins");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_unreadable_file_is_set_aside_and_the_rest_is_read() {
        let dir = scratch("corrupt");
        let (store, _) = Store::open(&dir, Arc::new(Metrics::new())).await.unwrap();
        store.save("kcb", record(State::Open));
        store.close().await;
        let services = dir.join("services");
        std::fs::write(
            services.join("mpesa.json"),
            b"{\"version\":1,\"service\":\"mpesa\",\"breaker\":",
        )
        .unwrap();
        std::fs::write(
            services.join("sms.json"),
            b"{\"version\":99,\"service\":\"sms\"}",
        )
        .unwrap();
        std::fs::write(
            services.join("email.json"),
            std::fs::read(services.join("kcb.json")).unwrap(),
        )
        .unwrap();
        let (store, found) = Store::open(&dir, Arc::new(Metrics::new())).await.unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["kcb"]);
        let aside: Vec<String> = std::fs::read_dir(&services)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".unreadable-"))
            .collect();
        assert_eq!(
            aside.len(),
            3,
            "truncated, newer version and misnamed: {aside:?}"
        );
        store.close().await;
        let (_, again) = Store::open(&dir, Arc::new(Metrics::new())).await.unwrap();
        assert_eq!(again.len(), 1, "set-aside files are not read again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
