//! Silences made through the admin API: which services, until when, and why. The alert stage
//! owns them; they are kept in `state_dir/silences.json` (written atomically off the runtime)
//! so they survive restarts and reloads, and dropped once expired.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::metrics::Metrics;
use crate::statefs::StateFiles;
use crate::wall::serde_rfc3339;

/// The most silences kept at once.
pub const MAX_SILENCES: usize = 1000;
/// The longest a silence may last.
pub const MAX_SILENCE: Duration = Duration::from_secs(30 * 86_400);
/// The longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// The largest silences file read back, in bytes.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
const VERSION: u32 = 1;

/// One silence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its identifier, for `DELETE /api/v1/silences/{id}`.
    pub id: String,
    /// The services it silences.
    pub services: Vec<String>,
    /// When it was made.
    #[serde(with = "serde_rfc3339")]
    pub created_at: SystemTime,
    /// When it ends.
    #[serde(with = "serde_rfc3339")]
    pub until: SystemTime,
    /// Why, as its author wrote.
    pub comment: String,
}

impl Silence {
    /// Whether it silences `service` at `now`.
    pub fn covers(&self, service: &str, now: SystemTime) -> bool {
        now < self.until && self.services.iter().any(|name| name == service)
    }
}

/// What a new silence asks for (already checked by the API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSilence {
    /// The services to silence (configured names).
    pub services: Vec<String>,
    /// When it ends.
    pub until: SystemTime,
    /// Why.
    pub comment: String,
}

/// Why a silence was not made or ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// Too many at once.
    #[error("{MAX_SILENCES} silences are active already; end one first")]
    Full,
    /// No silence has that id (or it expired).
    #[error("no active silence has the id \"{0}\"")]
    Unknown(String),
    /// It could not be written down (it was not made or ended).
    #[error("the silences could not be written to the state directory: {0}")]
    Storage(String),
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    silences: Vec<Silence>,
}

/// The active silences and the file that keeps them.
#[derive(Debug)]
pub(crate) struct Silences {
    path: PathBuf,
    /// Where a failed write of the file is counted and shown.
    metrics: Arc<Metrics>,
    active: Vec<Silence>,
    next: u64,
}

impl Silences {
    /// Reads `state_dir/silences.json` (off the runtime); an unreadable file is logged and
    /// set aside, and no silence is kept.
    pub(crate) async fn open(state_dir: &Path, metrics: Arc<Metrics>) -> Self {
        let path = state_dir.join("silences.json");
        let reading = path.clone();
        let active = tokio::task::spawn_blocking(move || read(&reading))
            .await
            .unwrap_or_default();
        Self {
            path,
            metrics,
            active,
            next: 0,
        }
    }

    /// The silences active at `now`.
    pub(crate) fn active(&self, now: SystemTime) -> impl Iterator<Item = &Silence> {
        self.active
            .iter()
            .filter(move |silence| now < silence.until)
    }

    /// Drops the silences over by `now`; says whether any was.
    pub(crate) async fn expire(&mut self, now: SystemTime) -> bool {
        let before = self.active.len();
        self.active.retain(|silence| now < silence.until);
        if self.active.len() == before {
            return false;
        }
        if let Err(why) = self.write().await {
            warn!("expired silences could not be removed from the state directory: {why}");
        }
        true
    }

    /// Makes a silence at `now` and writes it down before answering.
    pub(crate) async fn create(
        &mut self,
        new: NewSilence,
        now: SystemTime,
    ) -> Result<Silence, SilenceError> {
        self.active.retain(|silence| now < silence.until);
        if self.active.len() >= MAX_SILENCES {
            return Err(SilenceError::Full);
        }
        self.next += 1;
        let silence = Silence {
            id: format!("{:x}-{}", crate::wall::unix_millis(now), self.next),
            services: new.services,
            created_at: now,
            until: new.until,
            comment: new.comment,
        };
        self.active.push(silence.clone());
        if let Err(why) = self.write().await {
            self.active.pop();
            return Err(SilenceError::Storage(why));
        }
        Ok(silence)
    }

    /// Ends the silence `id` and writes that down.
    pub(crate) async fn end(&mut self, id: &str) -> Result<Silence, SilenceError> {
        let index = self
            .active
            .iter()
            .position(|silence| silence.id == id)
            .ok_or_else(|| SilenceError::Unknown(id.to_string()))?;
        let ended = self.active.remove(index);
        if let Err(why) = self.write().await {
            self.active.insert(index, ended);
            return Err(SilenceError::Storage(why));
        }
        Ok(ended)
    }

    async fn write(&self) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(&File {
            version: VERSION,
            silences: self.active.clone(),
        })
        .map_err(|why| why.to_string())?;
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let dir = path.parent().unwrap_or_else(|| Path::new("."));
            crate::statefs::write_in_root(dir, &path, &bytes)
        })
        .await
        .map_err(|why| why.to_string())?;
        match written {
            Ok(()) => {
                self.metrics
                    .state_faults()
                    .written(StateFiles::Silences, &self.path);
                Ok(())
            }
            Err(why) => {
                self.metrics
                    .state_faults()
                    .failed(StateFiles::Silences, &self.path, &why);
                Err(why.to_string())
            }
        }
    }
}

fn read(path: &Path) -> Vec<Silence> {
    let read = || {
        super::store::read_kept(path, MAX_FILE_BYTES, VERSION, |file: &File| file.version)
            .map(|file| file.silences)
    };
    if !path.exists() {
        return Vec::new();
    }
    match read() {
        Ok(mut silences) => {
            silences.truncate(MAX_SILENCES);
            silences
        }
        Err(why) => {
            super::store::set_aside(path, &why, "no silence was kept");
            Vec::new()
        }
    }
}
