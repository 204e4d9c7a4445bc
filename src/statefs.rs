//! How breakerd touches its state directory: folders made again when they are missing, files
//! written atomically (temporary file, fsync, rename, fsync of the folder) and opened without
//! following symbolic links (`O_NOFOLLOW`; a folder is checked itself), so nothing breakerd
//! keeps is ever written through, or read through, a link someone put there. A link found
//! where a folder or file of breakerd's should be is set aside and logged.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

/// Which of breakerd's state files: the `what` label of `breakerd_state_write_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateFiles {
    /// `services/`: each breaker's state and outage ledger.
    Services,
    /// `outbox/` and `dead/`: notifications not yet delivered, and given up.
    Outbox,
    /// `heartbeats/`: each heartbeat's last beat.
    Heartbeats,
    /// `silences.json`.
    Silences,
}

impl StateFiles {
    /// Every kind, in the order they are written.
    pub const ALL: [StateFiles; 4] = [
        StateFiles::Services,
        StateFiles::Outbox,
        StateFiles::Heartbeats,
        StateFiles::Silences,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StateFiles::Services => "services",
            StateFiles::Outbox => "outbox",
            StateFiles::Heartbeats => "heartbeats",
            StateFiles::Silences => "silences",
        }
    }
}

/// Makes sure `dir` is a folder of its own: made (with its parents) when missing; a symbolic
/// link there is set aside and a real folder made in its place.
///
/// # Errors
/// The folder cannot be made, or something other than a folder is there.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(found) if found.file_type().is_symlink() => {
            set_link_aside(dir)?;
            std::fs::create_dir_all(dir)
        }
        Ok(found) if found.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is there but is not a folder", dir.display()),
        )),
        Err(missing) if missing.kind() == io::ErrorKind::NotFound => std::fs::create_dir_all(dir),
        Err(failure) => Err(failure),
    }
}

/// Writes `bytes` to `path` in `dir` atomically, never through a link; `dir` is made again if
/// it went missing (and a link there set aside).
///
/// # Errors
/// Any step of the write (full disk, read-only file system, permissions).
pub fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    ensure_dir(dir)?;
    replace_file(dir, path, bytes)?;
    sync_dir(dir)
}

/// As [`write_atomically`], in the state directory itself: made when missing, but never set
/// aside when it is a link (an operator may keep the state elsewhere that way).
///
/// # Errors
/// As [`write_atomically`].
pub fn write_in_root(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
    }
    replace_file(dir, path, bytes)?;
    // The folder as the operator made it, through its link if it is one.
    File::open(dir)?.sync_all()
}

/// Replaces `path` in `dir` with `bytes`: a temporary file of its own (created new, never
/// opened through a link of any kind, so no planted link can take the write), fsync, rename.
/// The caller syncs the folder.
fn replace_file(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        // A rename replaces a link at `path` itself, never what it points at.
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Flushes `dir`'s entries to disk (after a rename or a removal in it).
///
/// # Errors
/// `dir` cannot be opened (or is a link) or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)?
        .sync_all()
}

/// Reads at most `max_bytes` of the regular file `path`, never through a link.
///
/// # Errors
/// A link (`ELOOP`), something other than a regular file, a larger file, or a failed read;
/// the message says which.
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|failure| match failure.raw_os_error() {
            Some(libc::ELOOP) => {
                "it is a symbolic link, which breakerd never follows in its state directory"
                    .to_string()
            }
            _ => failure.to_string(),
        })?;
    let found = file.metadata().map_err(|failure| failure.to_string())?;
    if !found.is_file() {
        return Err("it is not a regular file".to_string());
    }
    if found.len() > max_bytes {
        return Err(format!(
            "{} bytes, more than breakerd ever writes there",
            found.len()
        ));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes)
        .read_to_end(&mut bytes)
        .map_err(|failure| failure.to_string())?;
    Ok(bytes)
}

/// Whether `path` is a symbolic link (not followed).
pub fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|found| found.file_type().is_symlink())
}

/// Moves the link at `path` aside (`<name>.link-<ms>`), saying so.
fn set_link_aside(path: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_file_name(format!(
        "{name}.link-{}",
        crate::wall::unix_millis(crate::wall::now())
    ));
    std::fs::rename(path, &aside)?;
    warn!(
        path = %path.display(),
        moved_to = %aside.display(),
        "a symbolic link was found where breakerd keeps a folder of its state; it was set aside (never followed) and a folder made in its place"
    );
    Ok(())
}

/// Opens `path` for reading without following a link (for listings' files).
///
/// # Errors
/// As [`std::fs::File::open`], and `ELOOP` for a link.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("breakerd-statefs-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_folder_gone_missing_is_made_again_at_the_next_write() {
        let root = scratch("missing");
        let dir = root.join("services");
        write_atomically(&dir, &dir.join("a.json"), b"1").unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        write_atomically(&dir, &dir.join("a.json"), b"2").unwrap();
        assert_eq!(std::fs::read(dir.join("a.json")).unwrap(), b"2");
    }

    #[test]
    fn a_linked_folder_is_set_aside_and_nothing_is_written_through_it() {
        let root = scratch("linked");
        let elsewhere = scratch("elsewhere");
        let dir = root.join("outbox");
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        write_atomically(&dir, &dir.join("n.json"), b"{}").unwrap();
        assert!(!is_link(&dir), "a real folder now");
        assert!(dir.join("n.json").exists());
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing went through the link"
        );
        let aside: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("outbox.link-"))
            .collect();
        assert_eq!(aside.len(), 1, "the link is kept aside for the operator");
    }

    #[test]
    fn the_state_dir_itself_may_be_a_link_the_operator_made() {
        let root = scratch("root");
        let real = root.join("real");
        std::fs::create_dir_all(&real).unwrap();
        let state = root.join("state");
        std::os::unix::fs::symlink(&real, &state).unwrap();
        let file = state.join("silences.json");
        write_in_root(&state, &file, b"[]").unwrap();
        assert!(is_link(&state), "kept as the operator made it");
        assert_eq!(std::fs::read(real.join("silences.json")).unwrap(), b"[]");
        let leftovers = std::fs::read_dir(&real)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
    }

    #[test]
    fn a_linked_file_is_never_read_or_written_through() {
        let root = scratch("file");
        let target = root.join("target.json");
        std::fs::write(&target, b"secret").unwrap();
        let path = root.join("a.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let refused = read_limited(&path, 1024).unwrap_err();
        assert!(refused.contains("symbolic link"), "{refused}");
        write_atomically(&root, &path, b"mine").unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"secret",
            "the target is untouched"
        );
        assert!(!is_link(&path));
        assert_eq!(read_limited(&path, 1024).unwrap(), b"mine");
    }
}
