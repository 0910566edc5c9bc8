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
use std::io::{Read, Write};
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
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE_NAME);
        let io_err = |e: std::io::Error| Error::Io(format!("cannot lock {}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut content = String::new();
                let _ = file.read_to_string(&mut content);
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
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io_err)?;
        Ok(DirLock { file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Clear our pid while we still hold the lock; closing the file releases it.
        let _ = self.file.set_len(0);
    }
}
