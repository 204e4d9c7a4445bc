//! The on-disk outbox: a notification is written (and synced) for each channel before it is
//! sent and removed once delivered, so a restart sends what was pending. Files are written to a
//! temporary name and renamed, so a crash never leaves half a notification; given-up ones move
//! to `dead/` for an operator to read.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::notification::Notification;

/// The largest outbox entry read back; a larger one goes to `dead/`.
const MAX_ENTRY_BYTES: u64 = 1024 * 1024;

/// One pending delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) channel: String,
    pub(crate) notification: Notification,
}

#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    pending: PathBuf,
    dead: PathBuf,
}

impl Outbox {
    /// Opens (creating) `<dir>/outbox` and `<dir>/dead`.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        let pending = dir.join("outbox");
        let dead = dir.join("dead");
        crate::statefs::ensure_dir(&pending)?;
        crate::statefs::ensure_dir(&dead)?;
        Ok(Self { pending, dead })
    }

    /// The folder pending notifications are kept in.
    pub(crate) fn folder(&self) -> &Path {
        &self.pending
    }

    /// The first id to use: above every pending one and above the current time in
    /// microseconds, so ids keep increasing across restarts.
    pub(crate) fn first_id(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let now = u64::try_from(now).unwrap_or(u64::MAX);
        let highest = self
            .pending()
            .iter()
            .map(|(_, entry)| entry.notification.id)
            .max()
            .unwrap_or(0);
        now.max(highest.saturating_add(1))
    }

    /// Writes `notification` for `channel`; returns the file to remove after delivery.
    pub(crate) fn put(&self, channel: &str, notification: &Notification) -> io::Result<PathBuf> {
        let entry = Entry {
            channel: channel.to_string(),
            notification: notification.clone(),
        };
        let name = format!("{:020}-{}.json", notification.id, file_safe(channel));
        let path = self.pending.join(&name);
        let bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        // On disk before it is sent: a power cut, not only a killed process, keeps it. The
        // folder is made again if it went missing, and never written through a link.
        crate::statefs::write_atomically(&self.pending, &path, &bytes)?;
        Ok(path)
    }

    /// Forgets a delivered notification.
    pub(crate) fn remove(&self, path: &Path) {
        if let Err(error) = std::fs::remove_file(path) {
            warn!(path = %path.display(), "cannot remove a delivered notification from the outbox: {error}");
        }
    }

    /// Moves a notification that was given up to `dead/`.
    pub(crate) fn bury(&self, path: &Path) {
        let Some(name) = path.file_name() else { return };
        let moved = crate::statefs::ensure_dir(&self.dead)
            .and_then(|()| std::fs::rename(path, self.dead.join(name)));
        if let Err(error) = moved {
            warn!(path = %path.display(), "cannot move a failed notification to dead/: {error}");
        }
    }

    /// Every pending delivery, oldest first. Unreadable files go to `dead/`.
    pub(crate) fn pending(&self) -> Vec<(PathBuf, Entry)> {
        // Never listed through a link: one planted since start-up is set aside first.
        if crate::statefs::ensure_dir(&self.pending).is_err() {
            return Vec::new();
        }
        let Ok(listing) = std::fs::read_dir(&self.pending) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = listing
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        let mut entries = Vec::new();
        for path in paths {
            let parsed = crate::statefs::read_limited(&path, MAX_ENTRY_BYTES).and_then(|bytes| {
                serde_json::from_slice::<Entry>(&bytes).map_err(|error| error.to_string())
            });
            match parsed {
                Ok(entry) => entries.push((path, entry)),
                Err(error) => {
                    warn!(path = %path.display(), "unreadable outbox entry moved to dead/: {error}");
                    self.bury(&path);
                }
            }
        }
        entries
    }
}

/// A channel name as part of a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(id: u64) -> Notification {
        Notification {
            id,
            ..crate::alert::notification::sample()
        }
    }

    #[test]
    fn entries_survive_in_order_until_removed_or_buried() {
        let dir = std::env::temp_dir().join(format!("breakerd-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let outbox = Outbox::open(&dir).unwrap();
        let second = outbox.put("webhook", &notification(20)).unwrap();
        let first = outbox.put("email", &notification(10)).unwrap();
        std::fs::write(
            dir.join("outbox").join("00000000000000000015-x.json"),
            b"{broken",
        )
        .unwrap();
        let reopened = Outbox::open(&dir).unwrap();
        let pending = reopened.pending();
        let ids: Vec<u64> = pending.iter().map(|(_, e)| e.notification.id).collect();
        assert_eq!(ids, vec![10, 20]);
        assert_eq!(pending[0].1.channel, "email");
        assert!(
            dir.join("dead")
                .join("00000000000000000015-x.json")
                .exists(),
            "broken entry buried"
        );
        assert!(reopened.first_id() > 20);
        reopened.remove(&first);
        reopened.bury(&second);
        assert!(reopened.pending().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
