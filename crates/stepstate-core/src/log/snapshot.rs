//! Snapshots: the whole state of a store at one generation, written as one file so that the
//! logs before it can be deleted.
//!
//! # File format (`snapshot-<generation>.snap`)
//!
//! ```text
//! header   "STEPSNAP" (8 bytes) | u32 LE format version (1) | u64 LE generation
//! records  framed records, exactly as in the log (see [`LogRecord`]); the engine writes Puts
//! trailer  u32 LE 0xFFFF_FFFF (never a valid record length) | u64 LE record count
//!          | u32 LE crc32 of every byte of the file before this field
//! ```
//!
//! A snapshot is complete by construction: it is written to `snapshot-<gen>.snap.tmp`,
//! fsynced, renamed into place, and the directory is fsynced. So any damage anywhere (bad
//! magic, a CRC mismatch, a missing trailer, bytes after the trailer) is
//! [`Error::Corrupt`], never a torn tail.

use memmap2::{Mmap, MmapOptions};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::dir::{snapshot_file_name, sync_directory, TEMP_SUFFIX};
use super::record::{frame_crc, LogRecord, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::error::{Error, Result};

/// The first 8 bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"STEPSNAP";

/// The snapshot format version written by this code, and the only one it reads.
pub const SNAPSHOT_VERSION: u32 = 1;

const TRAILER_MARK: u32 = u32::MAX;
const SNAPSHOT_HEADER_LEN: usize = 20;

/// A snapshot being written record by record, for callers that produce records while holding
/// locks (the engine writes one group at a time under its read lock). Nothing is visible
/// under the final name until [`SnapshotWriter::finish`]; dropping an unfinished writer
/// removes the temp file.
pub struct SnapshotWriter {
    dir: PathBuf,
    temp_path: PathBuf,
    final_path: PathBuf,
    out: Option<BufWriter<File>>,
    crc: crc32fast::Hasher,
    frame: Vec<u8>,
    count: u64,
}

impl SnapshotWriter {
    /// Starts `snapshot-<generation>.snap.tmp` in `dir` (mode 0600) and writes its header.
    pub fn create(dir: &Path, generation: u64) -> Result<SnapshotWriter> {
        let temp_path = dir.join(format!("{}{TEMP_SUFFIX}", snapshot_file_name(generation)));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(|e| {
                Error::Io(format!(
                    "cannot write snapshot {}: {e}",
                    temp_path.display()
                ))
            })?;
        let mut writer = SnapshotWriter {
            dir: dir.to_path_buf(),
            final_path: dir.join(snapshot_file_name(generation)),
            temp_path,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            crc: crc32fast::Hasher::new(),
            frame: Vec::new(),
            count: 0,
        };
        let mut header = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
        header.extend_from_slice(SNAPSHOT_MAGIC);
        header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        header.extend_from_slice(&generation.to_le_bytes());
        writer.write(&header)?;
        Ok(writer)
    }

    fn io_err(&self, e: io::Error) -> Error {
        Error::Io(format!(
            "cannot write snapshot {}: {e}",
            self.temp_path.display()
        ))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        let result = match self.out.as_mut() {
            Some(out) => out.write_all(bytes),
            None => Err(io::Error::other("the snapshot is already finished")),
        };
        result.map_err(|e| self.io_err(e))
    }

    /// Appends one record.
    pub fn put(&mut self, record: &LogRecord<'_>) -> Result<()> {
        let size = record.payload_len();
        if size > MAX_PAYLOAD_LEN {
            return Err(Error::ValueTooLarge {
                size,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        record.encode_into(&mut frame);
        let result = self.write(&frame);
        self.frame = frame;
        self.count += 1;
        result
    }

    /// Writes the trailer, fsyncs, renames the file into place and fsyncs the directory.
    pub fn finish(mut self) -> Result<()> {
        let mut trailer = Vec::with_capacity(12);
        trailer.extend_from_slice(&TRAILER_MARK.to_le_bytes());
        trailer.extend_from_slice(&self.count.to_le_bytes());
        self.write(&trailer)?;
        let checksum = self.crc.clone().finalize();
        let Some(mut out) = self.out.take() else {
            return Err(self.io_err(io::Error::other("the snapshot is already finished")));
        };
        let installed = out
            .write_all(&checksum.to_le_bytes())
            .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all())
            .map_err(|e| self.io_err(e))
            .and_then(|()| {
                std::fs::rename(&self.temp_path, &self.final_path)
                    .and_then(|()| sync_directory(&self.dir))
                    .map_err(|e| {
                        Error::Io(format!(
                            "cannot install snapshot {}: {e}",
                            self.final_path.display()
                        ))
                    })
            });
        if installed.is_err() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
        installed
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Maps the snapshot at `path` read-only, its pages read in up front (they are all about to
/// be read). The map stays valid while the file is replaced or deleted: nothing else writes
/// to a snapshot once it is installed, and the store's directory lock keeps other processes
/// out.
pub fn map_snapshot(path: &Path) -> Result<Mmap> {
    let io_err = |e: io::Error| Error::Io(format!("cannot read snapshot {}: {e}", path.display()));
    let file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.len() < SNAPSHOT_HEADER_LEN as u64 {
        // (An empty file cannot even be mapped.)
        return Err(Error::Corrupt(format!(
            "snapshot {} is damaged at offset 0: shorter than its header",
            path.display()
        )));
    }
    // SAFETY: see above; a snapshot file is never written after it is installed.
    unsafe { MmapOptions::new().populate().map(&file) }.map_err(io_err)
}

/// Walks the snapshot `bytes` (the file at `path`), calling `on_record` for each record in
/// order, and returns the number of records. Records borrow from `bytes`.
///
/// Every check is strict: bad magic or version, a record CRC mismatch, a missing or wrong
/// trailer, a file CRC mismatch or trailing bytes give [`Error::Corrupt`] naming the file
/// and offset. The file CRC is checked at the end, after the records were passed on: on any
/// error the caller must discard what it built. An error from `on_record` is returned as is.
pub fn parse_snapshot<'a>(
    bytes: &'a [u8],
    path: &Path,
    mut on_record: impl FnMut(LogRecord<'a>) -> Result<()>,
) -> Result<u64> {
    let corrupt = |offset: usize, what: &str| {
        Error::Corrupt(format!(
            "snapshot {} is damaged at offset {offset}: {what}",
            path.display()
        ))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(corrupt(0, "shorter than its header"));
    }
    if &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a stepstate snapshot (bad magic)"));
    }
    let version = u32_at(8).unwrap_or(0);
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(8, &format!("unsupported format version {version}")));
    }

    let mut offset = SNAPSHOT_HEADER_LEN;
    let mut count = 0u64;
    loop {
        let Some(len) = u32_at(offset) else {
            return Err(corrupt(offset, "missing trailer"));
        };
        if len == TRAILER_MARK {
            // The trailer: the mark, the record count, then the CRC of everything before it.
            let trailer_end = offset + 12;
            let (Some(count_bytes), Some(stored)) =
                (bytes.get(offset + 4..trailer_end), u32_at(trailer_end))
            else {
                return Err(corrupt(offset, "truncated trailer"));
            };
            let mut expected = [0u8; 8];
            expected.copy_from_slice(count_bytes);
            let expected_count = u64::from_le_bytes(expected);
            if stored != crc32fast::hash(&bytes[..trailer_end]) {
                return Err(corrupt(trailer_end, "file checksum mismatch"));
            }
            if expected_count != count {
                return Err(corrupt(
                    offset,
                    &format!("trailer says {expected_count} records, found {count}"),
                ));
            }
            if bytes.len() > trailer_end + 4 {
                return Err(corrupt(trailer_end + 4, "bytes after the trailer"));
            }
            return Ok(count);
        }
        let len = len as usize;
        let end = offset + HEADER_LEN + len;
        if len == 0 || len > MAX_PAYLOAD_LEN || end > bytes.len() {
            return Err(corrupt(offset, "impossible record length"));
        }
        let stored_crc = u32_at(offset + 4).unwrap_or(0);
        let payload = &bytes[offset + HEADER_LEN..end];
        if frame_crc(&bytes[offset..offset + 4], payload) != stored_crc {
            return Err(corrupt(offset, "record checksum mismatch"));
        }
        let record = LogRecord::decode(payload)
            .map_err(|e| corrupt(offset, &format!("undecodable record: {e}")))?;
        on_record(record)?;
        count += 1;
        offset = end;
    }
}
