//! Checking a store directory, read-only: which process holds it, and whether every checksum of
//! the files recovery would read is right. Nothing is created, written or locked for longer
//! than a test: this is what `npx stepstate check` and the other inspecting commands use, also
//! on a store another process has open.
//!
//! A check reads exactly what [`recover`](super::recover::recover) reads, with the same rules:
//! the [`Plan`] (a missing log is damage), the newest snapshot (every record's CRC and the
//! file's, see [`parse_snapshot`]) and every log after it (every record's CRC, see
//! [`replay_log`]: a torn tail past the synced watermark is reported as droppable, not as
//! damage). The first damage found is returned with its file and offset.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::dir::Plan;
use crate::log::lock::LOCK_FILE_NAME;
use crate::log::{map_snapshot, parse_snapshot, replay_log};

/// Which kind of file a [`FileCheck`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedKind {
    /// `snapshot-<gen>.snap`.
    Snapshot,
    /// `log-<gen>.log`.
    Log,
}

impl CheckedKind {
    /// `"snapshot"` or `"log"`.
    pub fn name(self) -> &'static str {
        match self {
            CheckedKind::Snapshot => "snapshot",
            CheckedKind::Log => "log",
        }
    }
}

/// What the check of one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file checked.
    pub path: PathBuf,
    /// Snapshot or log.
    pub kind: CheckedKind,
    /// Its length in bytes.
    pub bytes: u64,
    /// Valid records read from it.
    pub records: u64,
    /// Bytes after the last valid record of a log that recovery drops (a torn last write, or
    /// preallocated space never written); always 0 for a snapshot.
    pub dropped_tail_bytes: u64,
    /// The first damage found in the file, if any: recovery would refuse the store
    /// (`CORRUPT`).
    pub damage: Option<Damage>,
}

/// Damage found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file where the valid data ends, when the damage is at a place.
    pub offset: Option<u64>,
    /// The message recovery gives, naming the file and offset.
    pub message: String,
}

/// The files a check of the store planned by `plan` reads, in the order recovery reads them:
/// the newest snapshot (if any), then every log after it.
pub fn files_to_check(plan: &Plan) -> Vec<(CheckedKind, PathBuf)> {
    let mut files = Vec::new();
    if let Some(snapshot) = plan.snapshot_to_load() {
        files.push((CheckedKind::Snapshot, snapshot));
    }
    for &generation in plan.log_generations() {
        files.push((CheckedKind::Log, plan.log_path(generation)));
    }
    files
}

/// Checks every checksum of one file of a store. Damage is a result ([`FileCheck::damage`]);
/// the error is for a file that cannot be read at all (`IO`).
pub fn check_file(kind: CheckedKind, path: &Path) -> Result<FileCheck> {
    let bytes = std::fs::metadata(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?
        .len();
    let mut check = FileCheck {
        path: path.to_path_buf(),
        kind,
        bytes,
        records: 0,
        dropped_tail_bytes: 0,
        damage: None,
    };
    let outcome = match kind {
        CheckedKind::Snapshot => {
            map_snapshot(path).and_then(|map| parse_snapshot(&map, path, |_| Ok(())))
        }
        CheckedKind::Log => {
            let mut valid_len = 0u64;
            let mut records = 0u64;
            let replayed = replay_log(path, |record| {
                valid_len += record.encoded_len() as u64;
                records += 1;
                Ok(())
            });
            match replayed {
                Ok(stats) => {
                    check.dropped_tail_bytes = stats.dropped_tail_bytes;
                    Ok(stats.records)
                }
                Err(Error::Corrupt(message)) => {
                    check.records = records;
                    check.damage = Some(Damage {
                        offset: Some(offset_named_in(&message).unwrap_or(valid_len)),
                        message,
                    });
                    return Ok(check);
                }
                Err(e) => Err(e),
            }
        }
    };
    match outcome {
        Ok(records) => check.records = records,
        Err(Error::Corrupt(message)) => {
            check.damage = Some(Damage {
                offset: offset_named_in(&message),
                message,
            })
        }
        Err(e) => return Err(e),
    }
    Ok(check)
}

/// The offset a `CORRUPT` message of the log and snapshot readers names ("at offset N").
fn offset_named_in(message: &str) -> Option<u64> {
    let after = message.split("at offset ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Checks every file recovery would read, in its order, calling `on_file` after each, and
/// stops at the first damaged one (the last of the returned checks). A plan that cannot be
/// made (a missing log) fails with `CORRUPT`, a directory that is not a store's with
/// `INVALID_ARGUMENT`.
pub fn check_store(dir: &Path, mut on_file: impl FnMut(&FileCheck)) -> Result<Vec<FileCheck>> {
    let plan = Plan::read(dir)?;
    let mut checks = Vec::new();
    for (kind, path) in files_to_check(&plan) {
        let check = check_file(kind, &path)?;
        on_file(&check);
        let damaged = check.damage.is_some();
        checks.push(check);
        if damaged {
            break;
        }
    }
    Ok(checks)
}

/// Who holds the lock on a store directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no `LOCK` file, or its lock is free.
    Nobody,
    /// A process holds the lock; its pid when the `LOCK` file names one.
    Process(Option<u32>),
}

/// Whether another process has the store at `dir` open, without creating or writing anything:
/// the `LOCK` file is opened read-only (never followed if it is a symbolic link) and its lock
/// tried; if the lock was free it is released at once. (For that instant an opener elsewhere
/// would be told the store is locked.)
pub fn lock_holder(dir: &Path) -> Result<Holder> {
    let path = dir.join(LOCK_FILE_NAME);
    let io_err = |e: std::io::Error| Error::Io(format!("cannot read {}: {e}", path.display()));
    let mut file: File = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holder::Nobody),
        Err(e) => return Err(io_err(e)),
    };
    match file.try_lock() {
        Ok(()) => {
            file.unlock().map_err(io_err)?;
            Ok(Holder::Nobody)
        }
        Err(TryLockError::WouldBlock) => {
            let mut content = String::new();
            let pid = file
                .read_to_string(&mut content)
                .ok()
                .and_then(|_| content.trim().parse::<u32>().ok());
            Ok(Holder::Process(pid))
        }
        Err(TryLockError::Error(e)) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_of_a_corrupt_message_is_read_from_its_words() {
        assert_eq!(
            offset_named_in("log x is damaged at offset 123 (record checksum mismatch)"),
            Some(123)
        );
        assert_eq!(
            offset_named_in("snapshot y is damaged at offset 0: bad magic"),
            Some(0)
        );
        assert_eq!(offset_named_in("log z was cut short"), None);
    }
}
