//! The files of a store directory: their names, which of them recovery needs (the [`Plan`],
//! read without the lock), and the deletion of the ones a newer snapshot made obsolete. See the [`log`](super) module for the
//! layout and the compaction protocol.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::lock::{DirLock, LOCK_FILE_NAME};
use super::snapshot::SNAPSHOT_MAGIC;
use crate::error::{Error, Result};

/// Suffix of files being written (snapshots before their rename); leftovers of a crash are
/// deleted by [`StoreFiles::open`] once their content shows they are snapshots.
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

/// What a file name of a store directory is. Only these names are ever written by a store;
/// anything else in the directory is someone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Snapshot(u64),
    Log(u64),
    /// `log-<gen>.log.synced`, the log's synced watermark.
    Watermark(u64),
    /// `snapshot-<gen>.snap.tmp`, a snapshot being written.
    Temp,
    Lock,
    Other,
}

/// The generation of a name `<prefix><digits><suffix>`.
fn generation_of(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    }
}

fn classify(name: &str) -> FileKind {
    if name == LOCK_FILE_NAME {
        FileKind::Lock
    } else if let Some(g) = generation_of(name, "snapshot-", ".snap") {
        FileKind::Snapshot(g)
    } else if generation_of(name, "snapshot-", ".snap.tmp").is_some() {
        FileKind::Temp
    } else if let Some(g) = generation_of(name, "log-", ".log") {
        FileKind::Log(g)
    } else if let Some(g) = generation_of(name, "log-", ".log.synced") {
        FileKind::Watermark(g)
    } else {
        FileKind::Other
    }
}

/// Lists the entries of `dir` with their kinds, deleting nothing.
fn scan(dir: &Path) -> Result<Vec<(FileKind, PathBuf)>> {
    let io_err = |e: io::Error| Error::Io(format!("cannot list store {}: {e}", dir.display()));
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let kind = entry.file_name().to_str().map_or(FileKind::Other, classify);
        kinds.push((kind, entry.path()));
    }
    Ok(kinds)
}

/// Refuses a directory holding anything a store does not write: opening it would mix the
/// store's files with someone else's (and a store never touches files it did not write).
fn refuse_foreign_entries(dir: &Path, entries: &[(FileKind, PathBuf)]) -> Result<()> {
    let foreign: Vec<String> = entries
        .iter()
        .filter(|(kind, _)| *kind == FileKind::Other)
        .filter_map(|(_, path)| path.file_name())
        .map(|name| format!("{:?}", name.to_string_lossy()))
        .take(3)
        .collect();
    if foreign.is_empty() {
        // A store creates its LOCK before any other file and never deletes it: store-named
        // files without one were not made by a store.
        let has_lock = entries.iter().any(|(kind, _)| *kind == FileKind::Lock);
        let unlocked = entries.iter().find(|(kind, _)| *kind != FileKind::Lock);
        return match (has_lock, unlocked) {
            (false, Some((_, path))) => Err(Error::InvalidArgument(format!(
                "{} is not a stepstate store directory: it holds {:?} but no {LOCK_FILE_NAME} \
                 file, which every store creates first; refusing to touch it",
                dir.display(),
                path.file_name().unwrap_or_default().to_string_lossy()
            ))),
            _ => Ok(()),
        };
    }
    Err(Error::InvalidArgument(format!(
        "{} is not a stepstate store directory: it holds {}, which stepstate did not write; \
         give the store a directory of its own (a new or empty one)",
        dir.display(),
        foreign.join(", ")
    )))
}

/// Whether the file at `path` is a snapshot temp file that this store may delete: empty (a
/// crash right after its creation) or starting with the snapshot magic.
fn is_own_temp(path: &Path) -> Result<bool> {
    use std::io::Read;
    let io_err = |e: io::Error| Error::Io(format!("cannot read {}: {e}", path.display()));
    let metadata = std::fs::symlink_metadata(path).map_err(io_err)?;
    if !metadata.file_type().is_file() {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(SNAPSHOT_MAGIC.len());
    File::open(path)
        .map_err(io_err)?
        .take(SNAPSHOT_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    Ok(metadata.len() == 0 || head == SNAPSHOT_MAGIC)
}

/// The recovery plan of a store directory: the newest snapshot (if any), the logs to replay
/// after it (oldest first, without gaps) and the leftover snapshot temp files, read without
/// changing anything and without the lock ([`Plan::read`]).
#[derive(Debug, Clone)]
pub struct Plan {
    dir: PathBuf,
    snapshot_generation: Option<u64>,
    log_generations: Vec<u64>,
    leftover_temps: Vec<PathBuf>,
}

impl Plan {
    /// Reads the plan of the store directory `dir`, changing nothing.
    ///
    /// Fails with [`Error::InvalidArgument`] when the directory holds files a store does not
    /// write, and with [`Error::Corrupt`] when a log the plan needs is missing: the logs after
    /// the snapshot must be numbered without gaps starting at its generation (or at 0 without
    /// a snapshot), a snapshot's own log must exist (compaction creates it first), and a log
    /// whose watermark says bytes were synced must exist, since replaying around a hole would
    /// silently lose changes. A snapshot temp file that is not a snapshot's is `CORRUPT` too:
    /// the store could neither use nor delete it.
    pub fn read(dir: &Path) -> Result<Plan> {
        let entries = scan(dir)?;
        refuse_foreign_entries(dir, &entries)?;
        let mut snapshots = Vec::new();
        let mut logs = Vec::new();
        let mut watermarks = Vec::new();
        let mut leftover_temps = Vec::new();
        for (kind, path) in entries {
            match kind {
                FileKind::Snapshot(g) => snapshots.push(g),
                FileKind::Log(g) => logs.push(g),
                FileKind::Watermark(g) => watermarks.push(g),
                FileKind::Temp if is_own_temp(&path)? => leftover_temps.push(path),
                FileKind::Temp => {
                    return Err(Error::Corrupt(format!(
                        "{} is not a stepstate snapshot being written; refusing to delete it",
                        path.display()
                    )))
                }
                FileKind::Lock | FileKind::Other => {}
            }
        }
        let snapshot_generation = snapshots.into_iter().max();
        let base = snapshot_generation.unwrap_or(0);
        let mut log_generations: Vec<u64> = logs.into_iter().filter(|&g| g >= base).collect();
        log_generations.sort_unstable();
        let missing = |expected: u64, found: String| {
            Err(Error::Corrupt(format!(
                "store {} is missing {} ({found}); refusing to open with less than was written",
                dir.display(),
                log_file_name(expected),
            )))
        };
        for (expected, &g) in (base..).zip(log_generations.iter()) {
            if g != expected {
                return missing(expected, format!("found {} after it", log_file_name(g)));
            }
        }
        if let (Some(g), true) = (snapshot_generation, log_generations.is_empty()) {
            return missing(g, format!("{} was written after it", snapshot_file_name(g)));
        }
        for g in watermarks {
            let log = dir.join(log_file_name(g));
            let synced = super::watermark::read_watermark(&log).unwrap_or(0);
            if g >= base && synced > 0 && !log_generations.contains(&g) {
                return missing(
                    g,
                    format!("its watermark says {synced} bytes of it were synced"),
                );
            }
        }
        Ok(Plan {
            dir: dir.to_path_buf(),
            snapshot_generation,
            log_generations,
            leftover_temps,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// The generation of the log new writes go to after recovery: the newest log's, or the
    /// snapshot's (0 without one) when there is no log yet. Continue it with
    /// [`LogWriter::open_append`](super::writer::LogWriter::open_append) if it is in
    /// [`Plan::log_generations`], else create it.
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
}

/// An open, locked store directory and its recovery [`Plan`] (which it dereferences to).
///
/// The plan describes the directory as [`StoreFiles::open`] found it; the file store creates
/// new logs and snapshots through [`Plan::log_path`] and
/// [`SnapshotWriter`](super::snapshot::SnapshotWriter). Dropping it releases the lock.
#[derive(Debug)]
pub struct StoreFiles {
    plan: Plan,
    lock: DirLock,
}

impl std::ops::Deref for StoreFiles {
    type Target = Plan;

    fn deref(&self) -> &Plan {
        &self.plan
    }
}

impl StoreFiles {
    /// Opens the store directory `dir` for writing: creates it (mode 0700) if missing, refuses
    /// it ([`Error::InvalidArgument`]) if it holds files a store does not write (before the
    /// lock file is created, so a foreign directory is left exactly as it was), takes its lock
    /// ([`Error::Locked`] if another process holds it), reads its [`Plan`] and deletes the
    /// leftover snapshot temp files the plan found.
    pub fn open(dir: &Path) -> Result<StoreFiles> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Io(format!("cannot create store {}: {e}", dir.display())))?;
        refuse_foreign_entries(dir, &scan(dir)?)?;
        let lock = DirLock::acquire(dir)?;
        let plan = Plan::read(dir)?;
        for path in &plan.leftover_temps {
            std::fs::remove_file(path).map_err(|e| {
                Error::Io(format!("cannot remove leftover {}: {e}", path.display()))
            })?;
        }
        if !plan.leftover_temps.is_empty() {
            sync_directory(dir)
                .map_err(|e| Error::Io(format!("cannot sync store {}: {e}", dir.display())))?;
        }
        Ok(StoreFiles { plan, lock })
    }

    /// The lock held on the directory.
    pub fn lock(&self) -> &DirLock {
        &self.lock
    }

    /// Deletes the snapshots, logs and log watermarks older than `generation`, then syncs the
    /// directory.
    /// Call it only once `snapshot-<generation>.snap` is installed: it is what makes them
    /// obsolete. Fails with [`Error::Io`] if that snapshot does not exist.
    pub fn retire_before(&self, generation: u64) -> Result<()> {
        let snapshot = self.plan.snapshot_path(generation);
        if !snapshot.exists() {
            return Err(Error::Io(format!(
                "refusing to retire files before generation {generation}: {} does not exist",
                snapshot.display()
            )));
        }
        let mut removed = false;
        for (kind, path) in scan(&self.plan.dir)? {
            match kind {
                FileKind::Snapshot(g) | FileKind::Log(g) | FileKind::Watermark(g)
                    if g < generation => {}
                _ => continue,
            }
            std::fs::remove_file(&path)
                .map_err(|e| Error::Io(format!("cannot remove {}: {e}", path.display())))?;
            removed = true;
        }
        if removed {
            sync_directory(&self.plan.dir).map_err(|e| {
                Error::Io(format!(
                    "cannot sync store {}: {e}",
                    self.plan.dir.display()
                ))
            })?;
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
        assert_eq!(classify("log-7.log.synced"), FileKind::Watermark(7));
        assert_eq!(classify("log-+1.log"), FileKind::Other);
        assert_eq!(classify("log-.log"), FileKind::Other);
        assert_eq!(classify("notes.tmp"), FileKind::Other);
        assert_eq!(classify("log-0.log.tmp"), FileKind::Other);
        assert_eq!(classify("LOCK"), FileKind::Lock);
    }
}
