//! The heartbeat kind: the application says it is alive (`POST /api/v1/heartbeat/:service`),
//! and the check fails when the gap since the last beat is longer than `every` + `grace`. The
//! last beat's time is kept in `state_dir/heartbeats/NAME`, so a restart neither forgets a beat
//! nor restarts the wait. Gaps are measured on tokio's clock; the wall time is only what is
//! kept and shown.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::warn;

use super::{FailureReason, ProbeError, ProbeSuccess};
use crate::config::HeartbeatCheck;
use crate::wall::{rfc3339, span, unix_millis};

/// How often, at most, a beat is written to disk (the time in memory is always exact).
const WRITE_EVERY: Duration = Duration::from_secs(1);
/// The largest heartbeat file read back.
const MAX_FILE_BYTES: u64 = 64;

/// When a service last beat.
#[derive(Debug)]
pub struct HeartbeatClock {
    file: PathBuf,
    beats: Mutex<Beats>,
}

#[derive(Debug)]
struct Beats {
    /// The kept beat has been read back.
    loaded: bool,
    /// The last beat, on both clocks.
    last: Option<(Instant, SystemTime)>,
    /// Since when beats are awaited (the gap before any beat counts from here).
    watching_since: Instant,
    /// When the last beat was written to disk.
    written: Option<Instant>,
}

impl HeartbeatClock {
    /// A clock that keeps its beats in `file`.
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            beats: Mutex::new(Beats {
                loaded: false,
                last: None,
                watching_since: Instant::now(),
                written: None,
            }),
        }
    }

    fn beats(&self) -> std::sync::MutexGuard<'_, Beats> {
        self.beats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the kept beat back, once; a missing or unreadable file means no beat yet.
    async fn load(&self) {
        if self.beats().loaded {
            return;
        }
        let kept = read_kept(&self.file).await;
        let mut beats = self.beats();
        if beats.loaded {
            return;
        }
        beats.loaded = true;
        if let (None, Some(at)) = (beats.last, kept) {
            // The same moment on tokio's clock: now, less the time that has passed since.
            let ago = SystemTime::now().duration_since(at).unwrap_or_default();
            let instant = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
            beats.last = Some((instant, at));
        }
    }

    /// Records a beat now and keeps it (at most one write a second); returns its time, and
    /// how keeping it went when it was written now (`None`: not due).
    pub async fn beat(&self) -> (SystemTime, Option<std::io::Result<()>>) {
        self.load().await;
        let (now, wall) = (Instant::now(), SystemTime::now());
        let write = {
            let mut beats = self.beats();
            beats.last = Some((now, wall));
            let due = beats
                .written
                .is_none_or(|at| now.duration_since(at) >= WRITE_EVERY);
            if due {
                beats.written = Some(now);
            }
            due
        };
        if !write {
            return (wall, None);
        }
        let kept = keep(&self.file, wall).await;
        if let Err(failure) = &kept {
            warn!(file = %self.file.display(), "cannot keep the heartbeat: {failure}");
        }
        (wall, Some(kept))
    }

    /// The file beats are kept in.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// The last beat's wall time, if any.
    pub async fn last(&self) -> Option<SystemTime> {
        self.load().await;
        self.beats().last.map(|(_, wall)| wall)
    }

    /// How long since the last beat (or since beats were first awaited), and the beat.
    async fn gap(&self) -> (Duration, Option<SystemTime>) {
        self.load().await;
        let beats = self.beats();
        match beats.last {
            Some((at, wall)) => (at.elapsed(), Some(wall)),
            None => (beats.watching_since.elapsed(), None),
        }
    }
}

async fn read_kept(file: &std::path::Path) -> Option<SystemTime> {
    let reading = file.to_path_buf();
    let bytes =
        tokio::task::spawn_blocking(move || crate::statefs::read_limited(&reading, MAX_FILE_BYTES))
            .await
            .ok()?
            .ok()?;
    let millis: u64 = std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis(millis))
}

/// Writes the beat atomically (its folder made again if it went missing, never through a
/// link), off the runtime.
async fn keep(file: &std::path::Path, at: SystemTime) -> std::io::Result<()> {
    let file = file.to_path_buf();
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let bytes = unix_millis(at).to_string().into_bytes();
    tokio::task::spawn_blocking(move || crate::statefs::write_atomically(&dir, &file, &bytes))
        .await
        .map_err(std::io::Error::other)?
}

/// The check: passes while the gap is at most `every` + `grace`.
pub(crate) async fn check(
    check: &HeartbeatCheck,
    clock: &HeartbeatClock,
) -> Result<ProbeSuccess, ProbeError> {
    let (gap, last) = clock.gap().await;
    let allowed = check.every + check.grace;
    if gap <= allowed {
        return Ok(ProbeSuccess {
            note: last
                .is_none()
                .then(|| format!("no beat yet; waiting since {} ago", span(gap))),
            caller: None,
        });
    }
    let since = match last {
        Some(at) => format!("no heartbeat since {} ({} ago)", rfc3339(at), span(gap)),
        None => format!("no heartbeat since breakerd started ({} ago)", span(gap)),
    };
    Err(ProbeError::new(
        FailureReason::HeartbeatMissed,
        format!(
            "{since}; expected every {} with {} grace",
            span(check.every),
            span(check.grace)
        ),
    ))
}
