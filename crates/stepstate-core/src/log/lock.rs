//! The exclusive lock on a store directory: at most one process has a file store open, and a
//! second one is told which process holds it (SPEC "Opening a store", code `LOCKED`).
//!
//! The lock is an `flock`-style exclusive lock (`File::try_lock`) on `<dir>/LOCK`, whose
//! content is the holder's pid. The kernel releases such a lock when the holding process
//! exits, however it exits (`kill -9` included), so a lock left by a dead process never
//! blocks: the file still exists and may still name the dead pid, but nobody holds the lock
//! and the next `acquire` succeeds and writes its own pid.
//!
//! The lock belongs to an open file description, so a second `acquire` inside the same
//! process fails too; the engine shares one open store per path per process instead.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file inside a store directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// The held lock on a store directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the exclusive lock on `dir` (which must exist), creating `dir/LOCK` (mode 0600)
    /// if needed, and writes our pid into it. Never waits: fails with [`Error::Locked`]
    /// naming the holder's pid if another open file holds it, or [`Error::Io`].
    ///
    /// A `LOCK` that is not a regular file (a symbolic link is never followed) or that holds
    /// anything but a pid was not written by a store: it is refused with
    /// [`Error::InvalidArgument`] and left as it is.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE_NAME);
        let io_err = |e: std::io::Error| Error::Io(format!("cannot lock {}: {e}", path.display()));
        let foreign = || {
            Error::InvalidArgument(format!(
                "{} was not written by stepstate (a store's LOCK is a regular file holding a \
                 pid); refusing to use it",
                path.display()
            ))
        };
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(foreign()),
            Err(e) => return Err(io_err(e)),
        };
        if !file.metadata().map_err(io_err)?.file_type().is_file() {
            return Err(foreign());
        }
        let mut content = String::new();
        if file.read_to_string(&mut content).is_err() || !is_pid_or_empty(&content) {
            return Err(foreign());
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = match content.trim() {
                    "" => "another process (its pid is not written yet)".to_string(),
                    pid => format!("process {pid}"),
                };
                return Err(Error::Locked(format!(
                    "store directory {} is locked by {holder}",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        // At offset 0: reading the old content moved the file position.
        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
            .map_err(io_err)?;
        Ok(DirLock { file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `content` is what a store leaves in its `LOCK`: nothing, or a pid and a newline.
fn is_pid_or_empty(content: &str) -> bool {
    let pid = content.strip_suffix('\n').unwrap_or(content);
    pid.is_empty() || (pid.len() <= 20 && pid.bytes().all(|b| b.is_ascii_digit()))
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Clear our pid while we still hold the lock; closing the file releases it.
        let _ = self.file.set_len(0);
    }
}
