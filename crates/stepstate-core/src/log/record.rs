//! The on-disk record: one change to the store (a put, a delete or a group clear), framed
//! with its length and a CRC so that recovery can tell a complete record from a torn or
//! damaged one. The same framing is used by the change log and by snapshots.

use crate::error::{Error, Result};

/// Bytes of the frame header: the payload length and the CRC, both `u32` little-endian.
pub const HEADER_LEN: usize = 8;

/// The largest payload a frame may carry, in bytes (1 GiB). Anything longer is rejected on
/// write, and a header announcing more is treated as damage on read, so that a flipped bit in
/// a length field never makes recovery allocate gigabytes.
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_CLEAR: u8 = 3;
const TAG_GROUP_MARK: u8 = 4;

/// One change to the store, as written to the log and (puts only) to snapshots.
///
/// # Framing
///
/// ```text
/// [u32 LE payload length][u32 LE crc32][payload]
/// ```
///
/// - The length counts the payload only (not the 8 header bytes); it is at least 1 and at
///   most [`MAX_PAYLOAD_LEN`]. A header of eight zero bytes marks the end of data: log files
///   are extended with zeros ahead of the write position.
/// - The CRC is crc32 (IEEE, `crc32fast`) over the 4 length bytes followed by the payload, so
///   a damaged length is caught as surely as a damaged payload.
/// - Records follow each other with no padding or alignment.
///
/// # Payload
///
/// A tag byte, then the fields; every string is a `u32` LE byte length followed by that many
/// bytes of UTF-8, and the payload must end exactly after the last field:
///
/// | tag | record | fields |
/// |---|---|---|
/// | `1` | `Put` | group, key, value (JSON text), `u64` LE `expires_at_ms` |
/// | `2` | `Delete` | group, key |
/// | `3` | `Clear` | group |
/// | `4` | `GroupMark` (snapshots only) | group, `u64` LE offset in the snapshot's log |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRecord<'a> {
    /// Sets `group`/`key` to `value`, replacing any previous value.
    Put {
        /// The group name.
        group: &'a str,
        /// The key inside the group.
        key: &'a str,
        /// The value as JSON text, exactly as the engine stores it.
        value: &'a str,
        /// Expiry time in milliseconds since the Unix epoch; `0` means the item never expires.
        expires_at_ms: u64,
    },
    /// Removes `group`/`key` (a no-op on replay when it is absent).
    Delete {
        /// The group name.
        group: &'a str,
        /// The key inside the group.
        key: &'a str,
    },
    /// Removes every item of `group`.
    Clear {
        /// The group name.
        group: &'a str,
    },
    /// Snapshots only, before a group's puts: every change to `group` that ends at or before
    /// byte `log_offset` of the log of the snapshot's generation is already in the snapshot,
    /// so replaying that log skips those records. A snapshot is written while writes go on,
    /// one group at a time; without the mark, replaying a change the snapshot already holds
    /// could move a key (delete then set moves it to the end a second time).
    GroupMark {
        /// The group name.
        group: &'a str,
        /// Offset in the log of the snapshot's generation, in bytes from its start.
        log_offset: u64,
    },
}

impl<'a> LogRecord<'a> {
    /// The group the record is about.
    pub fn group(&self) -> Option<&'a str> {
        match *self {
            LogRecord::Put { group, .. }
            | LogRecord::Delete { group, .. }
            | LogRecord::Clear { group }
            | LogRecord::GroupMark { group, .. } => Some(group),
        }
    }

    /// Payload length in bytes (without the 8-byte frame header).
    pub fn payload_len(&self) -> usize {
        match self {
            LogRecord::Put {
                group, key, value, ..
            } => 1 + 12 + group.len() + key.len() + value.len() + 8,
            LogRecord::Delete { group, key } => 1 + 8 + group.len() + key.len(),
            LogRecord::Clear { group } => 1 + 4 + group.len(),
            LogRecord::GroupMark { group, .. } => 1 + 4 + group.len() + 8,
        }
    }

    /// Length of the whole frame in bytes: header plus payload.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Appends the complete frame (header and payload) to `buf`.
    ///
    /// The caller checks the size against [`MAX_PAYLOAD_LEN`] first (the log writer and the
    /// snapshot writer do); a longer record would be written with a truncated length field
    /// and read back as damage.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        let payload_len = self.payload_len();
        buf.reserve(HEADER_LEN + payload_len);
        buf.extend_from_slice(&(payload_len as u32).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        match self {
            LogRecord::Put {
                group,
                key,
                value,
                expires_at_ms,
            } => {
                buf.push(TAG_PUT);
                put_str(buf, group);
                put_str(buf, key);
                put_str(buf, value);
                buf.extend_from_slice(&expires_at_ms.to_le_bytes());
            }
            LogRecord::Delete { group, key } => {
                buf.push(TAG_DELETE);
                put_str(buf, group);
                put_str(buf, key);
            }
            LogRecord::Clear { group } => {
                buf.push(TAG_CLEAR);
                put_str(buf, group);
            }
            LogRecord::GroupMark { group, log_offset } => {
                buf.push(TAG_GROUP_MARK);
                put_str(buf, group);
                buf.extend_from_slice(&log_offset.to_le_bytes());
            }
        }
        let crc = frame_crc(
            &buf[start..start + 4],
            &buf[start + HEADER_LEN..start + HEADER_LEN + payload_len],
        );
        buf[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes a payload (the bytes after the frame header, already checked against its CRC).
    ///
    /// Fails with [`Error::Corrupt`] on an unknown tag, a field running past the end, invalid
    /// UTF-8 or trailing bytes; never panics, whatever the input.
    pub fn decode(payload: &'a [u8]) -> Result<LogRecord<'a>> {
        let (&tag, rest) = payload
            .split_first()
            .ok_or_else(|| Error::Corrupt("empty log record payload".into()))?;
        let mut cursor = Cursor { rest };
        let record = match tag {
            TAG_PUT => LogRecord::Put {
                group: cursor.str()?,
                key: cursor.str()?,
                value: cursor.str()?,
                expires_at_ms: cursor.u64()?,
            },
            TAG_DELETE => LogRecord::Delete {
                group: cursor.str()?,
                key: cursor.str()?,
            },
            TAG_CLEAR => LogRecord::Clear {
                group: cursor.str()?,
            },
            TAG_GROUP_MARK => LogRecord::GroupMark {
                group: cursor.str()?,
                log_offset: cursor.u64()?,
            },
            other => return Err(Error::Corrupt(format!("unknown log record tag {other}"))),
        };
        if !cursor.rest.is_empty() {
            return Err(Error::Corrupt(format!(
                "{} unexpected bytes after a log record",
                cursor.rest.len()
            )));
        }
        Ok(record)
    }
}

/// The CRC of a frame: crc32 over the 4 length bytes followed by the payload.
pub fn frame_crc(len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// What [`check_frame`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame whose CRC matches and whose payload decodes; `len` is the frame length
    /// including the header.
    Valid {
        /// The decoded record.
        record: LogRecord<'a>,
        /// Bytes taken by the frame, header included.
        len: usize,
    },
    /// Eight zero bytes: the end of the data of a log file.
    End,
    /// The header announces `needed` bytes in all (header included) but fewer are available;
    /// the caller may read more and try again. `needed` is only returned when the announced
    /// length is within [`MAX_PAYLOAD_LEN`].
    Incomplete {
        /// Bytes of the whole frame, header included.
        needed: usize,
    },
    /// Not a record: an impossible length, a CRC mismatch or an undecodable payload.
    Invalid(&'static str),
}

/// Checks the frame at the start of `buf` without copying anything.
pub fn check_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < HEADER_LEN {
        return Frame::Incomplete { needed: HEADER_LEN };
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 {
        return if crc == 0 {
            Frame::End
        } else {
            Frame::Invalid("zero length with a non-zero checksum")
        };
    }
    if len > MAX_PAYLOAD_LEN {
        return Frame::Invalid("record length over the 1 GiB limit");
    }
    let needed = HEADER_LEN + len;
    if buf.len() < needed {
        return Frame::Incomplete { needed };
    }
    let payload = &buf[HEADER_LEN..needed];
    if frame_crc(&buf[..4], payload) != crc {
        return Frame::Invalid("checksum mismatch");
    }
    match LogRecord::decode(payload) {
        Ok(record) => Frame::Valid {
            record,
            len: needed,
        },
        Err(_) => Frame::Invalid("undecodable payload"),
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Corrupt(format!(
                "log record field of {n} bytes runs past the end of the record"
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_le_bytes(bytes))
    }

    fn str(&mut self) -> Result<&'a str> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::Corrupt("log record field is not valid UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_frame_checks_as_valid_and_a_flipped_byte_does_not() {
        let record = LogRecord::Put {
            group: "g",
            key: "k",
            value: "{\"a\":1}",
            expires_at_ms: 42,
        };
        let mut buf = Vec::new();
        record.encode_into(&mut buf);
        assert_eq!(buf.len(), record.encoded_len());
        assert_eq!(
            check_frame(&buf),
            Frame::Valid {
                record,
                len: buf.len()
            }
        );
        buf[10] ^= 1;
        assert!(matches!(check_frame(&buf), Frame::Invalid(_)));
        assert_eq!(check_frame(&[0; 8]), Frame::End);
    }
}
