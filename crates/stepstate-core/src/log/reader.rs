//! Replay of a log file at recovery: reads every valid record in order and decides whether
//! what follows the last one is a harmless torn tail or damage that must stop the open.
//!
//! The file is read with plain `read` calls in large chunks, not mapped, so that recovery
//! does not leave the whole log resident in memory.
//!
//! The rule (Redis's `aof-load-truncated`, made strict): replay stops at the first invalid
//! record (a zero header, which ends the data; a length past the end of the file; a CRC
//! mismatch; an undecodable payload). What is known synced (the log's
//! [`watermark`](super::watermark)) must all be there: a file shorter than the watermark, or
//! a stop before it, fails with [`Error::Corrupt`] naming the file and offset, and the file is
//! left untouched. Past the watermark lies what the sync policy may lose: a torn last record,
//! or what a power loss leaves of unsynced pages (a hole before data the kernel wrote out of
//! order); that tail is dropped. A log without a readable watermark may only end in zeros
//! (space preallocated and never written): any other damage is `CORRUPT`, since nothing shows
//! it lies past what was synced. The caller continues appending at
//! [`ReplayStats::valid_len`], which cuts the dropped tail off.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::record::{check_frame, Frame, LogRecord, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::error::{Error, Result};

/// Why replay stopped when it met a zero header: the rest is space never written.
const END_OF_DATA: &str = "end of data";

/// Bytes read from the file at a time during replay and during the damage scan (8 MiB).
const CHUNK: usize = 8 << 20;

/// What a replay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayStats {
    /// Number of valid records passed to the callback.
    pub records: u64,
    /// Bytes of valid records from the start of the file: where appending continues.
    pub valid_len: u64,
    /// Bytes after `valid_len` (torn tail, garbage or zero padding) that appending will
    /// overwrite; `0` for a cleanly closed log.
    pub dropped_tail_bytes: u64,
}

/// Replays the log at `path`, calling `on_record` for each valid record in order.
///
/// An error returned by `on_record` stops the replay and is returned as is. See the module
/// documentation for how the end of the data is found and when [`Error::Corrupt`] is returned.
pub fn replay_log(
    path: &Path,
    mut on_record: impl FnMut(LogRecord<'_>) -> Result<()>,
) -> Result<ReplayStats> {
    let io_err = |e: io::Error| Error::Io(format!("cannot read log {}: {e}", path.display()));
    let mut file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();

    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize; // position of the next frame in `buf`
    let mut buf_offset = 0u64; // file offset of buf[0]
    let mut records = 0u64;
    let mut stop_reason = END_OF_DATA;

    loop {
        let offset = buf_offset + start as u64;
        let remaining_in_file = file_len - offset;
        if remaining_in_file == 0 {
            break;
        }
        match check_frame(&buf[start..]) {
            Frame::Valid { record, len } => {
                on_record(record)?;
                records += 1;
                start += len;
            }
            Frame::End => break,
            Frame::Invalid(reason) => {
                stop_reason = reason;
                break;
            }
            Frame::Incomplete { needed } => {
                if needed as u64 > remaining_in_file {
                    if needed > HEADER_LEN {
                        stop_reason = "record runs past the end of the file";
                    } else {
                        stop_reason = "partial header at the end of the file";
                    }
                    break;
                }
                // Keep the unread part, then read at least what the frame needs.
                buf.drain(..start);
                buf_offset += start as u64;
                start = 0;
                let want = needed.max(CHUNK).min(remaining_in_file as usize);
                let have = buf.len();
                buf.resize(want.max(have), 0);
                let mut filled = have;
                while filled < buf.len() {
                    let n = file.read(&mut buf[filled..]).map_err(io_err)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                if filled < needed {
                    // The file shrank under us; treat what is missing as the end.
                    stop_reason = "record runs past the end of the file";
                    break;
                }
            }
        }
    }

    let valid_len = buf_offset + start as u64;
    drop(buf);
    let corrupt = |what: String| {
        Err(Error::Corrupt(format!(
            "log {} {what}; refusing to open with less than was synced (the file is left \
             untouched)",
            path.display()
        )))
    };
    match super::watermark::read_watermark(path) {
        Some(synced) if file_len < synced => {
            return corrupt(format!(
                "is {file_len} bytes long, but its first {synced} bytes were synced: it was cut short"
            ));
        }
        Some(synced) if valid_len < synced => {
            return corrupt(format!(
                "is damaged at offset {valid_len} ({stop_reason}), within the {synced} bytes \
                 known synced"
            ));
        }
        Some(_) => {}
        None if valid_len < file_len => {
            // Without a watermark nothing shows which bytes were synced: only a tail of zeros
            // (preallocated space never written) is known to hold nothing.
            let damaged = stop_reason != END_OF_DATA
                || find_valid_record(&file, valid_len + 1, file_len)
                    .map_err(io_err)?
                    .is_some();
            if damaged {
                return corrupt(format!(
                    "is damaged at offset {valid_len} ({stop_reason}) and its synced watermark \
                     {} is missing or unreadable, so the damage cannot be told from a torn write",
                    super::watermark::watermark_path(path).display()
                ));
            }
        }
        None => {}
    }
    Ok(ReplayStats {
        records,
        valid_len,
        dropped_tail_bytes: file_len - valid_len,
    })
}

/// Returns the offset of the first valid frame starting at or after `from`, if any.
///
/// Cheap on zero padding and garbage: a candidate offset is rejected on its length (zero,
/// over the limit, or past the end of the file) and its tag byte before any CRC is computed.
fn find_valid_record(file: &File, from: u64, file_len: u64) -> io::Result<Option<u64>> {
    let min_frame = HEADER_LEN as u64 + 1;
    let mut chunk_start = from;
    let mut buf = vec![0u8; CHUNK + HEADER_LEN];
    let mut big = Vec::new();
    while chunk_start + min_frame <= file_len {
        let chunk_end = file_len.min(chunk_start + (CHUNK + HEADER_LEN) as u64);
        let n = (chunk_end - chunk_start) as usize;
        file.read_exact_at(&mut buf[..n], chunk_start)?;
        // Candidates p with p + min_frame <= file_len, at most CHUNK of them per pass, so that
        // each candidate's 8-byte header is inside the buffer.
        let last = (file_len - min_frame).min(chunk_start + CHUNK as u64 - 1);
        let count = (last - chunk_start + 1) as usize;
        let mut i = 0usize;
        while i < count {
            if i + 8 <= n && buf[i..i + 8] == [0u8; 8] {
                // None of the offsets i..=i+4 can have a non-zero length.
                i += 5;
                continue;
            }
            let len = u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]) as usize;
            let p = chunk_start + i as u64;
            let plausible = len != 0
                && len <= MAX_PAYLOAD_LEN
                && p + (HEADER_LEN + len) as u64 <= file_len
                && (i + HEADER_LEN >= n || (1..=3).contains(&buf[i + HEADER_LEN]));
            if plausible {
                let frame_len = HEADER_LEN + len;
                let valid = if i + frame_len <= n {
                    matches!(check_frame(&buf[i..i + frame_len]), Frame::Valid { .. })
                } else {
                    big.resize(frame_len, 0);
                    file.read_exact_at(&mut big, p)?;
                    matches!(check_frame(&big), Frame::Valid { .. })
                };
                if valid {
                    return Ok(Some(p));
                }
            }
            i += 1;
        }
        chunk_start = last + 1;
    }
    Ok(None)
}
