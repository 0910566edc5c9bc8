//! The synced watermark of a log: how many bytes of it are known to be on disk, kept beside
//! it in `log-<gen>.log.synced` so that recovery can tell a power-loss tail from damage.
//!
//! After a power loss the kernel may have written the pages of the unsynced tail in any
//! order, leaving a hole followed by valid records. Within the synced part any damage, and a
//! file shorter than the synced length, can only be outside harm (`CORRUPT`); past it, it is
//! the "about the last second" that `everysec` and `no` may lose, and replay drops it.
//!
//! The writer creates the watermark (and syncs the directory) before the first append to its
//! log, and the sync thread records the new length after every successful sync of the log,
//! before any write is acknowledged as durable; close records the whole length. So the
//! watermark covers every write acknowledged under `always` and everything flushed by close,
//! and a non-empty log whose watermark is missing was tampered with.
//!
//! # File format (16 bytes)
//!
//! ```text
//! u64 LE synced length | u32 LE crc32 of those 8 bytes | "MARK"
//! ```
//!
//! A file that is missing, short or fails its CRC reads as `None` (nothing is known).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"MARK";
const LEN: usize = 16;

/// The watermark file of the log at `log_path`.
pub fn watermark_path(log_path: &Path) -> PathBuf {
    let mut name = log_path.as_os_str().to_owned();
    name.push(".synced");
    PathBuf::from(name)
}

/// The synced length recorded for the log at `log_path`; `None` when the file is missing or
/// damaged.
pub fn read_watermark(log_path: &Path) -> Option<u64> {
    let bytes = std::fs::read(watermark_path(log_path)).ok()?;
    if bytes.len() != LEN || &bytes[12..16] != MAGIC {
        return None;
    }
    let mut value = [0u8; 8];
    value.copy_from_slice(&bytes[..8]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[8..12]);
    if crc32fast::hash(&value) != u32::from_le_bytes(crc) {
        return None;
    }
    Some(u64::from_le_bytes(value))
}

/// An open watermark file, rewritten in place.
#[derive(Debug)]
pub struct Watermark {
    file: File,
}

impl Watermark {
    /// Opens (creating, mode 0600) the watermark file of the log at `log_path`. The caller
    /// records a first length and syncs the directory before appending to the log.
    pub fn open(log_path: &Path) -> io::Result<Watermark> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(watermark_path(log_path))?;
        Ok(Watermark { file })
    }

    /// Records that the first `synced_len` bytes of the log are on disk, and syncs the record.
    pub fn record(&self, synced_len: u64) -> io::Result<()> {
        let value = synced_len.to_le_bytes();
        let mut bytes = [0u8; LEN];
        bytes[..8].copy_from_slice(&value);
        bytes[8..12].copy_from_slice(&crc32fast::hash(&value).to_le_bytes());
        bytes[12..].copy_from_slice(MAGIC);
        self.file.write_all_at(&bytes, 0)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_watermark_reads_back_and_damage_reads_as_unknown() {
        let dir = std::env::temp_dir().join(format!("stepstate-mark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log-0.log");
        assert_eq!(read_watermark(&log), None);
        let mark = Watermark::open(&log).unwrap();
        mark.record(12345).unwrap();
        assert_eq!(read_watermark(&log), Some(12345));
        mark.record(7).unwrap();
        assert_eq!(read_watermark(&log), Some(7));
        let mut bytes = std::fs::read(watermark_path(&log)).unwrap();
        bytes[0] ^= 1;
        std::fs::write(watermark_path(&log), &bytes).unwrap();
        assert_eq!(read_watermark(&log), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
