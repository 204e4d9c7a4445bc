//! Reading the config file and `${file:...}` secrets safely: only regular files (a FIFO, a
//! device or a directory is refused, never waited on), never more than a size limit, and — from
//! the daemon — off the async runtime with a time limit, so no file can freeze or exhaust it.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

/// The largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// The largest `${file:...}` secret read, in bytes.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// How long the daemon waits for a config (with its secrets) to be read and validated.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a file could not be read.
#[derive(Debug, Error)]
pub enum FileError {
    /// It is something other than a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// It is larger than allowed.
    #[error("it is larger than {limit} bytes (the limit)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Reading it did not finish in time.
    #[error("reading it took longer than {} s (a file on a hung network file system?)", .0.as_secs())]
    TimedOut(Duration),
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The bytes of the regular file at `path`, at most `limit` of them.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Opening a FIFO for reading would wait for a writer: never wait.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(FileError::NotRegular(describe(&kind)));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(bytes)
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Runs `work` (file reads) on the blocking pool, giving up after [`READ_TIMEOUT`].
pub(crate) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, FileError> {
    match tokio::time::timeout(READ_TIMEOUT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => Err(FileError::Io(std::io::Error::other(failure))),
        Err(_) => Err(FileError::TimedOut(READ_TIMEOUT)),
    }
}

/// The folders and files breakerd keeps inside `state_dir`.
const STATE_FOLDERS: [&str; 4] = ["services", "outbox", "dead", "heartbeats"];

/// Whether breakerd can keep its state in `dir`: an existing directory it can write (tried
/// with a file made and removed at once), or a path whose nearest existing ancestor is such a
/// directory; the folders it keeps there, where they exist, are directories.
pub(crate) fn usable_state_dir(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        let here = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        match std::fs::metadata(here) {
            Ok(found) if found.is_dir() => break,
            Ok(_) if at == dir => return Err("it is not a directory".to_string()),
            Ok(_) => return Err(format!("{} is not a directory", here.display())),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                match at.parent() {
                    Some(parent) => at = parent,
                    None => return Err(format!("{} does not exist", here.display())),
                }
            }
            Err(error) => return Err(format!("cannot look at {}: {error}", here.display())),
        }
    }
    let existing = if at.as_os_str().is_empty() {
        Path::new(".")
    } else {
        at
    };
    writable(existing).map_err(|error| {
        if existing == dir {
            format!("cannot write in it: {error}")
        } else {
            format!("cannot create it in {}: {error}", existing.display())
        }
    })?;
    for folder in STATE_FOLDERS {
        let path = dir.join(folder);
        if std::fs::metadata(&path).is_ok_and(|found| !found.is_dir()) {
            return Err(format!("{} is not a directory", path.display()));
        }
    }
    Ok(())
}

/// Makes and removes a file in `dir`.
fn writable(dir: &Path) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let probe = dir.join(format!(".breakerd-check-{}-{nanos}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("breakerd-file-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = scratch("regular");
        let path = dir.join("secret");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        let error = read_regular(&path, 9).unwrap_err();
        assert_eq!(error.to_string(), "it is larger than 9 bytes (the limit)");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn devices_directories_and_fifos_are_refused_without_waiting() {
        let dir = scratch("special");
        assert_eq!(
            read_regular(Path::new("/dev/zero"), 1024)
                .unwrap_err()
                .to_string(),
            "it is a character device, not a regular file"
        );
        assert_eq!(
            read_regular(&dir, 1024).unwrap_err().to_string(),
            "it is a directory, not a regular file"
        );
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            read_regular(&fifo, 1024).unwrap_err().to_string(),
            "it is a FIFO, not a regular file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
