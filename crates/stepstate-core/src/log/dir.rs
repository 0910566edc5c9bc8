//! The files of a store directory: their names, which of them recovery needs, and the
//! deletion of the ones a newer snapshot made obsolete. See the [`log`](super) module for the
//! layout and the compaction protocol.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::lock::DirLock;

/// Suffix of files being written (snapshots before their rename); leftovers of a crash are
/// deleted by [`StoreFiles::open`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// File name of the snapshot of `generation`: `snapshot-<generation>.snap`.
pub fn snapshot_file_name(generation: u64) -> String {
    format!("snapshot-{generation}.snap")
}

/// File name of the log of `generation`: `log-<generation>.log`.
pub fn log_file_name(generation: u64) -> String {
    format!("log-{generation}.log")
}

/// Syncs a directory, so that the creation, rename or deletion of its entries survives a
/// power loss.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a file name of a store directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Snapshot(u64),
    Log(u64),
    Temp,
    Other,
}

fn classify(name: &str) -> FileKind {
    if name.ends_with(TEMP_SUFFIX) {
        return FileKind::Temp;
    }
    let generation = |digits: &str| {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<u64>().ok()
        } else {
            None
        }
    };
    if let Some(g) = name
        .strip_prefix("snapshot-")
        .and_then(|rest| rest.strip_suffix(".snap"))
        .and_then(generation)
    {
        return FileKind::Snapshot(g);
    }
    if let Some(g) = name
        .strip_prefix("log-")
        .and_then(|rest| rest.strip_suffix(".log"))
        .and_then(generation)
    {
        return FileKind::Log(g);
    }
    FileKind::Other
}

/// Lists the kinds of the entries of `dir`, deleting nothing.
fn scan(dir: &Path) -> Result<Vec<FileKind>> {
    let io_err = |e: io::Error| Error::Io(format!("cannot list store {}: {e}", dir.display()));
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let kind = match name.to_str() {
            Some(name) => classify(name),
            None => FileKind::Other,
        };
        kinds.push(kind);
    }
    Ok(kinds)
}

/// An open, locked store directory and its recovery plan: the newest snapshot (if any) and
/// the logs to replay after it, oldest first.
///
/// The plan describes the directory as [`StoreFiles::open`] found it; the engine creates new
/// logs and snapshots through [`StoreFiles::log_path`] and
/// [`write_snapshot`](super::snapshot::write_snapshot). Dropping it releases the lock.
#[derive(Debug)]
pub struct StoreFiles {
    dir: PathBuf,
    snapshot_generation: Option<u64>,
    log_generations: Vec<u64>,
    lock: DirLock,
}

impl StoreFiles {
    /// Opens the store directory `dir`: creates it (mode 0700) if missing, takes its lock
    /// ([`Error::Locked`] if another process holds it), deletes leftover temp files, and
    /// finds the newest snapshot and the logs at or after its generation.
    ///
    /// Fails with [`Error::Corrupt`] when a log the plan needs is missing: the logs after the
    /// snapshot must be numbered without gaps starting at its generation (or at 0 without a
    /// snapshot), since replaying around a hole would silently lose changes.
    pub fn open(dir: &Path) -> Result<StoreFiles> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Io(format!("cannot create store {}: {e}", dir.display())))?;
        let lock = DirLock::acquire(dir)?;

        let mut snapshots = Vec::new();
        let mut logs = Vec::new();
        let mut removed_temp = false;
        for entry in std::fs::read_dir(dir)
            .map_err(|e| Error::Io(format!("cannot list store {}: {e}", dir.display())))?
        {
            let entry = entry
                .map_err(|e| Error::Io(format!("cannot list store {}: {e}", dir.display())))?;
            let name = entry.file_name();
            match name.to_str().map(classify).unwrap_or(FileKind::Other) {
                FileKind::Snapshot(g) => snapshots.push(g),
                FileKind::Log(g) => logs.push(g),
                FileKind::Temp => {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(|e| {
                        Error::Io(format!("cannot remove leftover {}: {e}", path.display()))
                    })?;
                    removed_temp = true;
                }
                FileKind::Other => {}
            }
        }
        if removed_temp {
            sync_directory(dir)
                .map_err(|e| Error::Io(format!("cannot sync store {}: {e}", dir.display())))?;
        }

        let snapshot_generation = snapshots.into_iter().max();
        let base = snapshot_generation.unwrap_or(0);
        let mut log_generations: Vec<u64> = logs.into_iter().filter(|&g| g >= base).collect();
        log_generations.sort_unstable();
        for (expected, &g) in (base..).zip(log_generations.iter()) {
            if g != expected {
                return Err(Error::Corrupt(format!(
                    "store {} is missing {} (found {} after it)",
                    dir.display(),
                    log_file_name(expected),
                    log_file_name(g)
                )));
            }
        }
        Ok(StoreFiles {
            dir: dir.to_path_buf(),
            snapshot_generation,
            log_generations,
            lock,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock held on the directory.
    pub fn lock(&self) -> &DirLock {
        &self.lock
    }

    /// The generation of the newest snapshot, `None` when there is none (generation 0).
    pub fn snapshot_generation(&self) -> Option<u64> {
        self.snapshot_generation
    }

    /// Path of the snapshot to load first, if any.
    pub fn snapshot_to_load(&self) -> Option<PathBuf> {
        self.snapshot_generation.map(|g| self.snapshot_path(g))
    }

    /// Generations of the logs to replay after the snapshot, oldest first, without gaps.
    pub fn log_generations(&self) -> &[u64] {
        &self.log_generations
    }

    /// Paths of the logs to replay after the snapshot, oldest first.
    pub fn logs_to_replay(&self) -> Vec<PathBuf> {
        self.log_generations
            .iter()
            .map(|&g| self.log_path(g))
            .collect()
    }

    /// The generation of the log new writes go to after recovery: the newest log's, or the
    /// snapshot's (0 without one) when there is no log yet. Continue it with
    /// [`LogWriter::open_append`](super::writer::LogWriter::open_append) if it is in
    /// [`StoreFiles::log_generations`], else create it.
    pub fn active_generation(&self) -> u64 {
        self.log_generations
            .last()
            .copied()
            .unwrap_or(self.snapshot_generation.unwrap_or(0))
    }

    /// Path of the log of `generation` (whether or not it exists).
    pub fn log_path(&self, generation: u64) -> PathBuf {
        self.dir.join(log_file_name(generation))
    }

    /// Path of the snapshot of `generation` (whether or not it exists).
    pub fn snapshot_path(&self, generation: u64) -> PathBuf {
        self.dir.join(snapshot_file_name(generation))
    }

    /// Deletes the snapshots and logs older than `generation`, then syncs the directory.
    /// Call it only once `snapshot-<generation>.snap` is installed: it is what makes them
    /// obsolete. Fails with [`Error::Io`] if that snapshot does not exist.
    pub fn retire_before(&self, generation: u64) -> Result<()> {
        let snapshot = self.snapshot_path(generation);
        if !snapshot.exists() {
            return Err(Error::Io(format!(
                "refusing to retire files before generation {generation}: {} does not exist",
                snapshot.display()
            )));
        }
        let mut removed = false;
        for kind in scan(&self.dir)? {
            let path = match kind {
                FileKind::Snapshot(g) if g < generation => self.snapshot_path(g),
                FileKind::Log(g) if g < generation => self.log_path(g),
                _ => continue,
            };
            std::fs::remove_file(&path)
                .map_err(|e| Error::Io(format!("cannot remove {}: {e}", path.display())))?;
            if let FileKind::Log(_) = kind {
                // Its synced watermark goes with it (absent is fine).
                let _ = std::fs::remove_file(super::watermark::watermark_path(&path));
            }
            removed = true;
        }
        if removed {
            sync_directory(&self.dir)
                .map_err(|e| Error::Io(format!("cannot sync store {}: {e}", self.dir.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_classified_by_kind_and_generation() {
        assert_eq!(classify("snapshot-12.snap"), FileKind::Snapshot(12));
        assert_eq!(classify("log-0.log"), FileKind::Log(0));
        assert_eq!(classify("snapshot-3.snap.tmp"), FileKind::Temp);
        assert_eq!(classify("log-+1.log"), FileKind::Other);
        assert_eq!(classify("log-.log"), FileKind::Other);
        assert_eq!(classify("LOCK"), FileKind::Other);
    }
}
