//! The log writer: appends read back in order under every sync policy, across map windows,
//! after a torn tail, under concurrency (group commit), and refuses to go on after an
//! injected I/O failure.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Faults, FaultyStorage, TempDir};
use stepstate_core::log::watermark::Watermark;
use stepstate_core::log::writer::FileStorage;
use stepstate_core::log::{replay_log, LogRecord, LogWriter, SyncPolicy, WriterOptions};

fn small_windows() -> WriterOptions {
    WriterOptions {
        window_bytes: 4096,
        everysec_interval: Duration::from_millis(50),
    }
}

fn value_of(i: usize) -> String {
    format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(i % 300))
}

fn put(key: &str, value: &str) -> LogRecord<'static> {
    // Leak is fine in tests: keeps the helper simple.
    LogRecord::Put {
        group: "g",
        key: Box::leak(key.to_string().into_boxed_str()),
        value: Box::leak(value.to_string().into_boxed_str()),
        expires_at_ms: 0,
    }
}

/// Replays `path` into (key, value) pairs, asserting every record is a put.
fn replay_puts(path: &Path) -> (Vec<(String, String)>, stepstate_core::log::ReplayStats) {
    let mut seen = Vec::new();
    let stats = replay_log(path, |record| {
        match record {
            LogRecord::Put { key, value, .. } => seen.push((key.to_string(), value.to_string())),
            other => panic!("unexpected record {other:?}"),
        }
        Ok(())
    })
    .unwrap();
    (seen, stats)
}

#[test]
fn appends_replay_in_order_under_every_sync_policy() {
    for policy in [SyncPolicy::Always, SyncPolicy::EverySec, SyncPolicy::No] {
        let dir = TempDir::new(&format!("policy-{policy:?}"));
        let path = dir.0.join("log-0.log");
        let writer = LogWriter::create(&path, policy, WriterOptions::default()).unwrap();
        let mut last = 0;
        for i in 0..100 {
            let lsn = writer.append(&put(&format!("k{i}"), &value_of(i))).unwrap();
            assert!(lsn > last, "lsns grow");
            last = lsn;
        }
        writer
            .append(&LogRecord::Delete {
                group: "g",
                key: "k1",
            })
            .unwrap();
        let end = writer.append(&LogRecord::Clear { group: "g" }).unwrap();
        assert_eq!(writer.len(), end);
        writer.wait_durable(end).unwrap();
        assert!(writer.durable_lsn() >= end);
        writer.close().unwrap();
        writer.close().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            end,
            "zero tail cut"
        );

        let mut kinds = Vec::new();
        let stats = replay_log(&path, |record| {
            kinds.push(match record {
                LogRecord::Put { key, value, .. } => format!("put {key} {value}"),
                LogRecord::Delete { key, .. } => format!("delete {key}"),
                LogRecord::Clear { group } => format!("clear {group}"),
                LogRecord::GroupMark { group, log_offset } => format!("mark {group} {log_offset}"),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.records, 102);
        assert_eq!(stats.valid_len, end);
        assert_eq!(stats.dropped_tail_bytes, 0);
        assert_eq!(kinds[7], format!("put k7 {}", value_of(7)));
        assert_eq!(kinds[100], "delete k1");
        assert_eq!(kinds[101], "clear g");
    }
}

#[test]
fn appends_after_close_fail_with_closed() {
    let dir = TempDir::new("closed");
    let writer =
        LogWriter::create(&dir.0.join("log-0.log"), SyncPolicy::No, small_windows()).unwrap();
    writer.append(&put("a", "1")).unwrap();
    writer.close().unwrap();
    assert_eq!(writer.append(&put("b", "2")).unwrap_err().code(), "CLOSED");
}

#[test]
fn creating_over_an_existing_log_fails_and_the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("create");
    let path = dir.0.join("log-0.log");
    let writer = LogWriter::create(&path, SyncPolicy::No, small_windows()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        LogWriter::create(&path, SyncPolicy::No, small_windows())
            .unwrap_err()
            .code(),
        "IO"
    );
    drop(writer);
}

#[test]
fn many_appends_across_small_windows_replay_in_order() {
    let dir = TempDir::new("windows");
    let path = dir.0.join("log-0.log");
    let writer = LogWriter::create(&path, SyncPolicy::EverySec, small_windows()).unwrap();
    let mut lsns = Vec::new();
    for i in 0..3000 {
        lsns.push(writer.append(&put(&format!("k{i}"), &value_of(i))).unwrap());
    }
    // A record larger than a window gets a window of its own.
    let big = "y".repeat(20_000);
    writer.append(&put("big", &big)).unwrap();
    writer.append(&put("after", "1")).unwrap();
    writer.close().unwrap();

    let (seen, stats) = replay_puts(&path);
    assert_eq!(stats.records, 3002);
    assert!(stats.valid_len > 10 * 4096, "spans many windows");
    for (i, (key, value)) in seen.iter().take(3000).enumerate() {
        assert_eq!(key, &format!("k{i}"));
        assert_eq!(value, &value_of(i));
    }
    assert_eq!(seen[3000], ("big".to_string(), big));
    assert_eq!(seen[3001].0, "after");
}

#[test]
fn a_writer_never_closed_leaves_a_zero_tail_that_replays_fine() {
    let dir = TempDir::new("unclosed");
    let path = dir.0.join("log-0.log");
    let writer = LogWriter::create(&path, SyncPolicy::No, small_windows()).unwrap();
    let mut end = 0;
    for i in 0..50 {
        end = writer.append(&put(&format!("k{i}"), &value_of(i))).unwrap();
    }
    // As after a crash: no final sync, no truncation.
    std::mem::forget(writer);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(file_len > end, "the preallocated zero tail is there");

    let (seen, stats) = replay_puts(&path);
    assert_eq!(seen.len(), 50);
    assert_eq!(stats.valid_len, end);
    assert_eq!(stats.dropped_tail_bytes, file_len - end);
}

#[test]
fn open_append_continues_after_a_torn_tail_and_everything_replays() {
    let dir = TempDir::new("continue");
    let path = dir.0.join("log-0.log");
    let writer = LogWriter::create(&path, SyncPolicy::No, small_windows()).unwrap();
    let mut before_last = 0;
    for i in 0..20 {
        before_last = writer.len();
        writer.append(&put(&format!("k{i}"), &value_of(i))).unwrap();
    }
    writer.close().unwrap();
    // Tear the last record, as if a crash came before it was synced.
    Watermark::open(&path).unwrap().record(before_last).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    let (seen, stats) = replay_puts(&path);
    assert_eq!(seen.len(), 19);
    assert!(stats.dropped_tail_bytes > 0);

    let writer =
        LogWriter::open_append(&path, stats.valid_len, SyncPolicy::Always, small_windows())
            .unwrap();
    assert_eq!(writer.len(), stats.valid_len);
    let mut lsn = 0;
    for i in 100..200 {
        lsn = writer.append(&put(&format!("k{i}"), &value_of(i))).unwrap();
    }
    writer.wait_durable(lsn).unwrap();
    writer.close().unwrap();

    let (seen, stats) = replay_puts(&path);
    assert_eq!(seen.len(), 119);
    assert_eq!(stats.dropped_tail_bytes, 0);
    assert_eq!(seen[18].0, "k18");
    assert_eq!(seen[19].0, "k100");
    assert_eq!(seen[118].0, "k199");
}

#[test]
fn eight_threads_appending_under_always_share_fsyncs_and_every_lsn_becomes_durable() {
    let dir = TempDir::new("group-commit");
    let path = dir.0.join("log-0.log");
    let writer =
        Arc::new(LogWriter::create(&path, SyncPolicy::Always, WriterOptions::default()).unwrap());
    let notified = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&notified);
    writer.set_on_durable(Box::new(move |lsn| {
        if let Ok(lsn) = lsn {
            seen.fetch_max(lsn, Ordering::SeqCst);
        }
    }));
    let per_thread = 100;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let writer = Arc::clone(&writer);
            std::thread::spawn(move || {
                let mut lsns = Vec::new();
                for i in 0..per_thread {
                    let lsn = writer
                        .append(&put(&format!("t{t}-{i}"), &value_of(i)))
                        .unwrap();
                    writer.wait_durable(lsn).unwrap();
                    assert!(writer.durable_lsn() >= lsn);
                    lsns.push(lsn);
                }
                lsns
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    let appends = 8 * per_thread as u64;
    assert_eq!(all.len() as u64, appends, "every lsn is distinct");
    let syncs = writer.sync_count();
    eprintln!("{appends} appends, {syncs} syncs");
    assert!(syncs * 2 < appends, "{syncs} syncs for {appends} appends");
    writer.close().unwrap();
    // The sync thread has stopped: the callback saw the last durable lsn.
    assert_eq!(notified.load(Ordering::SeqCst), writer.durable_lsn());
    assert_eq!(writer.durable_lsn(), writer.len());

    let (seen, _) = replay_puts(&path);
    assert_eq!(seen.len() as u64, appends);
}

/// A writer over a storage that fails its Nth write or Nth sync (counting from 1; 0 = never).
fn faulty_writer(path: &Path, policy: SyncPolicy, fail_write: u64, fail_sync: u64) -> LogWriter {
    let faults = Faults {
        fail_write: AtomicU64::new(fail_write),
        fail_sync: AtomicU64::new(fail_sync),
        ..Faults::default()
    };
    let storage = FaultyStorage {
        inner: FileStorage::create(path).unwrap(),
        faults: Arc::new(faults),
    };
    LogWriter::with_storage(Box::new(storage), path, 0, policy, small_windows()).unwrap()
}

#[test]
fn a_failed_write_poisons_the_writer_for_good() {
    let dir = TempDir::new("fail-write");
    let path = dir.0.join("log-0.log");
    let writer = faulty_writer(&path, SyncPolicy::Always, 5, 0);
    let mut last = 0;
    for i in 0..4 {
        last = writer.append(&put(&format!("k{i}"), "1")).unwrap();
    }
    writer.wait_durable(last).unwrap();
    let err = writer.append(&put("k4", "1")).unwrap_err();
    assert_eq!(err.code(), "IO");
    assert!(err.to_string().contains("injected write failure"), "{err}");
    for i in 5..10 {
        let err = writer.append(&put(&format!("k{i}"), "1")).unwrap_err();
        assert_eq!(err.code(), "IO");
        assert!(
            err.to_string()
                .contains("refusing writes after an earlier I/O failure"),
            "{err}"
        );
    }
    assert_eq!(writer.len(), last, "nothing pretends to be appended");
    assert_eq!(writer.sync_now().unwrap_err().code(), "IO");
    assert_eq!(writer.close().unwrap_err().code(), "IO");
    assert!(writer.close().is_ok(), "close stays idempotent");

    let (seen, _) = replay_puts(&path);
    assert_eq!(seen.len(), 4);
}

#[test]
fn a_failed_sync_poisons_the_writer_and_the_unsynced_write_never_reports_durable() {
    let dir = TempDir::new("fail-sync");
    let path = dir.0.join("log-0.log");
    // Policy No: syncs happen only when asked, so the 2nd sync is the one for `second`.
    let writer = faulty_writer(&path, SyncPolicy::No, 0, 2);
    let first = writer.append(&put("a", "1")).unwrap();
    writer.sync_now().unwrap();
    assert_eq!(writer.durable_lsn(), first);
    let second = writer.append(&put("b", "2")).unwrap();
    let err = writer.wait_durable(second).unwrap_err();
    assert_eq!(err.code(), "IO");
    assert!(err.to_string().contains("injected sync failure"), "{err}");
    assert_eq!(
        writer.durable_lsn(),
        first,
        "the failed sync published nothing"
    );
    assert!(
        writer.wait_durable(first).is_ok(),
        "what was durable stays so"
    );
    let err = writer.append(&put("c", "3")).unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing writes after an earlier I/O failure"),
        "{err}"
    );
    assert_eq!(writer.sync_now().unwrap_err().code(), "IO");
    assert_eq!(writer.close().unwrap_err().code(), "IO");
}

#[test]
fn a_failed_sync_under_always_fails_the_waiters_of_that_batch() {
    let dir = TempDir::new("fail-sync-always");
    let path = dir.0.join("log-0.log");
    let writer = Arc::new(faulty_writer(&path, SyncPolicy::Always, 0, 1));
    let results: Vec<_> = (0..4)
        .map(|t| {
            let writer = Arc::clone(&writer);
            std::thread::spawn(move || {
                let lsn = writer.append(&put(&format!("k{t}"), "1"))?;
                writer.wait_durable(lsn)
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    // The first sync failed: nothing was ever durable, so no append can have succeeded
    // through wait_durable.
    assert!(results.iter().all(|r| r.is_err()), "{results:?}");
    assert_eq!(writer.durable_lsn(), 0);
    assert_eq!(writer.append(&put("z", "1")).unwrap_err().code(), "IO");
}

#[test]
fn the_writer_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LogWriter>();
}

#[test]
fn everysec_syncs_on_its_own_and_no_waits_for_an_explicit_sync() {
    let dir = TempDir::new("intervals");
    let every = LogWriter::create(
        &dir.0.join("log-0.log"),
        SyncPolicy::EverySec,
        small_windows(),
    )
    .unwrap();
    let never =
        LogWriter::create(&dir.0.join("log-1.log"), SyncPolicy::No, small_windows()).unwrap();
    let lsn_every = every.append(&put("a", "1")).unwrap();
    let lsn_never = never.append(&put("a", "1")).unwrap();
    let started = std::time::Instant::now();
    while every.durable_lsn() < lsn_every {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "everysec never synced"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(never.durable_lsn(), 0, "policy No synced on its own");
    assert_eq!(never.sync_count(), 0);
    never.sync_now().unwrap();
    assert_eq!(never.durable_lsn(), lsn_never);
    assert_eq!(never.sync_count(), 1);
}
