//! Recovery of a log: a torn or garbage tail is dropped, damage before the tail is
//! `CORRUPT` and leaves the file untouched, and a process killed with SIGKILL in the middle
//! of appending loses no acknowledged record.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{append_bytes, set_len, TempDir};
use stepstate_core::log::watermark::{read_watermark, Watermark};
use stepstate_core::log::{
    replay_log, LogRecord, LogWriter, ReplayStats, SyncPolicy, WriterOptions,
};
use stepstate_core::Result;

fn value_of(i: u64) -> String {
    format!(
        r#"{{"n":{i},"status":"pending","pad":"{}"}}"#,
        "p".repeat((i % 40) as usize)
    )
}

/// Writes `count` puts k0..k{count} and returns the end offset of each record.
fn write_log(path: &Path, count: u64, window_bytes: usize) -> Vec<u64> {
    let writer = LogWriter::create(
        path,
        SyncPolicy::No,
        WriterOptions {
            window_bytes,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let mut ends = Vec::new();
    for i in 0..count {
        let key = format!("k{i}");
        let value = value_of(i);
        ends.push(
            writer
                .append(&LogRecord::Put {
                    group: "orders",
                    key: &key,
                    value: &value,
                    expires_at_ms: i,
                })
                .unwrap(),
        );
    }
    writer.close().unwrap();
    ends
}

fn replay_keys(path: &Path) -> Result<(Vec<String>, ReplayStats)> {
    let mut keys = Vec::new();
    let stats = replay_log(path, |record| {
        if let LogRecord::Put {
            key,
            value,
            expires_at_ms,
            ..
        } = record
        {
            let i: u64 = key[1..].parse().unwrap();
            assert_eq!(value, value_of(i));
            assert_eq!(expires_at_ms, i);
            keys.push(key.to_string());
        }
        Ok(())
    })?;
    Ok((keys, stats))
}

#[test]
fn a_log_truncated_in_the_middle_of_its_last_unsynced_record_replays_the_prefix() {
    let dir = TempDir::new("torn");
    let path = dir.0.join("log-0.log");
    let ends = write_log(&path, 100, 4096);
    // As a crash before the last record was synced leaves the watermark.
    Watermark::open(&path).unwrap().record(ends[98]).unwrap();
    for cut in [ends[98] + 1, ends[98] + 4, ends[98] + 8, ends[99] - 1] {
        set_len(&path, cut);
        let (keys, stats) = replay_keys(&path).unwrap();
        assert_eq!(keys.len(), 99, "cut at {cut}");
        assert_eq!(stats.valid_len, ends[98]);
        assert_eq!(stats.dropped_tail_bytes, cut - ends[98]);
    }
}

#[test]
fn a_torn_unsynced_record_followed_by_garbage_replays_the_prefix() {
    let dir = TempDir::new("garbage");
    let path = dir.0.join("log-0.log");
    let ends = write_log(&path, 100, 4096);
    Watermark::open(&path).unwrap().record(ends[98]).unwrap();
    set_len(&path, ends[99] - 7);
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    append_bytes(&path, &garbage);
    append_bytes(&path, &[0u8; 10_000]);
    let (keys, stats) = replay_keys(&path).unwrap();
    assert_eq!(keys.len(), 99);
    assert_eq!(stats.valid_len, ends[98]);
}

#[test]
fn a_flipped_byte_before_the_tail_is_corrupt_and_the_file_is_left_unchanged() {
    let dir = TempDir::new("flipped");
    let path = dir.0.join("log-0.log");
    let ends = write_log(&path, 100, 4096);
    let original = std::fs::read(&path).unwrap();
    // A byte of a payload, a CRC byte and a length byte, each in a middle record.
    for offset in [ends[40] + 20, ends[50] + 5, ends[60]] {
        let mut damaged = original.clone();
        damaged[offset as usize] ^= 0x01;
        std::fs::write(&path, &damaged).unwrap();
        let err = replay_keys(&path).unwrap_err();
        assert_eq!(err.code(), "CORRUPT", "offset {offset}: {err}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        let record_start = [ends[40], ends[50], ends[60]]
            .into_iter()
            .find(|&s| offset >= s && offset < s + 100)
            .unwrap();
        assert!(
            message.contains(&format!("offset {record_start}")),
            "{message}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "file untouched");
    }
}

#[test]
fn a_zeroed_page_before_valid_records_is_corrupt() {
    let dir = TempDir::new("hole");
    let path = dir.0.join("log-0.log");
    let ends = write_log(&path, 200, 4096);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096..8192].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(replay_keys(&path).unwrap_err().code(), "CORRUPT");
    assert!(ends[199] > 8192);
}

#[test]
fn an_error_from_the_callback_stops_the_replay() {
    let dir = TempDir::new("callback");
    let path = dir.0.join("log-0.log");
    write_log(&path, 10, 4096);
    let mut n = 0;
    let err = replay_log(&path, |_| {
        n += 1;
        if n == 3 {
            Err(stepstate_core::Error::Io("stop".into()))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert_eq!(err, stepstate_core::Error::Io("stop".into()));
    assert_eq!(n, 3);
}

#[test]
fn an_empty_or_all_zero_log_replays_nothing() {
    let dir = TempDir::new("empty");
    let path = dir.0.join("log-0.log");
    std::fs::write(&path, b"").unwrap();
    assert_eq!(replay_keys(&path).unwrap().1, ReplayStats::default());
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let (keys, stats) = replay_keys(&path).unwrap();
    assert!(keys.is_empty());
    assert_eq!(stats.dropped_tail_bytes, 1 << 20);
}

#[test]
fn replay_of_a_large_log_spanning_read_chunks_is_fast() {
    let dir = TempDir::new("large");
    let path = dir.0.join("log-0.log");
    // ~20 MB: more than two read chunks, and a preallocated tail left as after a crash.
    let count = 100_000;
    let writer = LogWriter::create(&path, SyncPolicy::No, WriterOptions::default()).unwrap();
    let value = format!(r#"{{"payload":"{}"}}"#, "v".repeat(180));
    for i in 0..count {
        let key = format!("key-{i:08}");
        writer
            .append(&LogRecord::Put {
                group: "bench",
                key: &key,
                value: &value,
                expires_at_ms: 0,
            })
            .unwrap();
    }
    let end = writer.len();
    std::mem::forget(writer);
    let started = Instant::now();
    let mut n = 0u64;
    let stats = replay_log(&path, |record| {
        assert!(matches!(record, LogRecord::Put { .. }));
        n += 1;
        Ok(())
    })
    .unwrap();
    let elapsed = started.elapsed();
    eprintln!("replayed {n} records ({end} bytes) in {elapsed:?} (debug build)");
    assert_eq!(stats.records, count);
    assert_eq!(stats.valid_len, end);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

const CHILD_ENV: &str = "STEPSTATE_LOG_CRASH_CHILD";

/// In the child: append forever (or 30 s), printing each acknowledged record's number.
fn run_crash_child(path: &Path) {
    let writer = LogWriter::create(
        path,
        SyncPolicy::No,
        WriterOptions {
            window_bytes: 64 << 10,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(30) {
        let key = format!("k{i}");
        let value = value_of(i);
        let lsn = writer
            .append(&LogRecord::Put {
                group: "orders",
                key: &key,
                value: &value,
                expires_at_ms: i,
            })
            .unwrap();
        writeln!(out, "ack {i} {lsn}").unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

/// The part after "ack " of a child's line; the first one follows the test harness's
/// "test name ... " on the same line.
fn ack_of(line: &str) -> Option<String> {
    line.find("ack ").map(|at| line[at + 4..].to_string())
}

#[test]
fn a_process_killed_with_sigkill_keeps_every_acknowledged_append() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        run_crash_child(Path::new(&path));
        return;
    }
    let dir = TempDir::new("sigkill");
    let path = dir.0.join("log-0.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_process_killed_with_sigkill_keeps_every_acknowledged_append",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = 0u64;
    let mut last_lsn = 0u64;
    while acked < 5000 {
        let Some(line) = lines.next() else { break };
        let line = line.unwrap();
        if let Some(rest) = ack_of(&line) {
            let mut parts = rest.split(' ');
            let i: u64 = parts.next().unwrap().parse().unwrap();
            assert_eq!(i, acked);
            last_lsn = parts.next().unwrap().parse().unwrap();
            acked += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL: no close, no final sync, no truncation
    child.wait().unwrap();
    // Acknowledgements still in the pipe count too: they were printed after the append.
    for line in lines {
        if let Some(rest) = ack_of(&line.unwrap()) {
            let mut parts = rest.split(' ');
            assert_eq!(parts.next().unwrap().parse::<u64>().unwrap(), acked);
            last_lsn = parts.next().unwrap().parse().unwrap();
            acked += 1;
        }
    }
    assert!(acked >= 5000, "the child acknowledged only {acked} appends");

    let (keys, stats) = replay_keys(&path).unwrap();
    assert!(
        keys.len() as u64 >= acked,
        "{} records replayed, {acked} acknowledged",
        keys.len()
    );
    assert!(stats.valid_len >= last_lsn);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(key, &format!("k{i}"));
    }
}

/// What a power loss can leave of unsynced pages written back out of order: a hole (zeros)
/// over record 7, with records 8 and 9 on disk after it. `synced_through` is how many records
/// the watermark says were synced before the loss.
fn log_with_hole_after(dir: &TempDir, synced_through: usize) -> (std::path::PathBuf, Vec<u64>) {
    let path = dir.path().join("log-0.log");
    let ends = write_log(&path, 10, 1 << 20);
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in &mut bytes[ends[6] as usize..ends[7] as usize] {
        *byte = 0;
    }
    std::fs::write(&path, &bytes).unwrap();
    let synced = if synced_through == 0 {
        0
    } else {
        ends[synced_through - 1]
    };
    Watermark::open(&path).unwrap().record(synced).unwrap();
    (path, ends)
}

#[test]
fn a_hole_past_the_synced_watermark_is_a_power_loss_tail_and_is_dropped() {
    let dir = TempDir::new("power-loss-tail");
    let (path, ends) = log_with_hole_after(&dir, 5);
    let (keys, stats) = replay_keys(&path).unwrap();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
    assert_eq!(stats.valid_len, ends[6]);
}

#[test]
fn the_same_hole_within_the_synced_part_is_corrupt_and_changes_nothing() {
    let dir = TempDir::new("synced-hole");
    let (path, _) = log_with_hole_after(&dir, 9);
    let before = std::fs::read(&path).unwrap();
    let err = replay_keys(&path).unwrap_err();
    assert_eq!(err.code(), "CORRUPT");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_closed_log_records_its_whole_length_as_synced() {
    let dir = TempDir::new("watermark-at-close");
    let path = dir.path().join("log-0.log");
    let ends = write_log(&path, 3, 1 << 20);
    assert_eq!(read_watermark(&path), Some(*ends.last().unwrap()));
}
