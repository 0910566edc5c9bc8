//! Damaged files and failing disks at the engine level: a torn or garbage tail is dropped and
//! the store opens with the prefix; damage before the tail (log or snapshot) fails `open_file`
//! with `CORRUPT` and touches nothing; an injected write or sync failure fails that write with
//! `IO`, refuses every later write and keeps reads working.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{
    active_log, append_bytes, assert_open_fails_and_changes_nothing, dump, file_contents,
    file_options, generations, open, set_len, Faults, FaultyStorage, Rng, TempDir,
};
use stepstate_core::log::watermark::Watermark;
use stepstate_core::log::writer::{FileStorage, LogStorage};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::file::StorageFactory;
use stepstate_core::{Engine, EngineOptions, FileStore, Ttl};

fn write_numbered(store: &Engine, range: std::ops::Range<u64>) {
    for i in range {
        store
            .set(
                "g",
                &format!("k{i}"),
                &format!(r#"{{"i":{i}}}"#),
                Ttl::Default,
            )
            .unwrap();
    }
}

fn keys(store: &Engine) -> String {
    store.keys_json("g").unwrap()
}

fn keys_of(range: std::ops::Range<u64>) -> String {
    let keys: Vec<String> = range.map(|i| format!("\"k{i}\"")).collect();
    format!("[{}]", keys.join(","))
}

fn garbage(len: usize) -> Vec<u8> {
    let mut rng = Rng::new(len as u64);
    (0..len).map(|_| (rng.below(255) + 1) as u8).collect()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

/// Writes keys `range` and closes; then sets the log's watermark back to its length before
/// the last of them, as a crash before that record was synced leaves it.
fn write_with_last_unsynced(dir: &Path, policy: SyncPolicy, range: std::ops::Range<u64>) {
    let store = open(dir, policy, 64 << 20);
    write_numbered(&store, range.start..range.end - 1);
    store.close().unwrap();
    let log = active_log(dir);
    let before_last = std::fs::metadata(&log).unwrap().len();
    let store = open(dir, policy, 64 << 20);
    write_numbered(&store, range.end - 1..range.end);
    store.close().unwrap();
    Watermark::open(&log).unwrap().record(before_last).unwrap();
}

#[test]
fn a_log_cut_in_the_middle_of_its_last_unsynced_record_opens_with_the_prefix_and_continues() {
    let dir = TempDir::new("torn");
    write_with_last_unsynced(dir.path(), SyncPolicy::No, 0..50);
    let log = active_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    set_len(&log, len - 3);

    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(keys(&store), keys_of(0..49));
    store.set("g", "after", "1", Ttl::Default).unwrap();
    store.close().unwrap();
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(store.get("g", "after").unwrap().as_deref(), Some("1"));
    assert_eq!(store.get("g", "k49").unwrap(), None);
    assert_eq!(store.list_groups(), ["g"]);
    store.close().unwrap();
}

#[test]
fn garbage_after_the_synced_records_is_dropped_with_or_without_a_torn_record_before_it() {
    let dir = TempDir::new("garbage");
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    write_numbered(&store, 0..50);
    store.close().unwrap();
    let log = active_log(dir.path());
    append_bytes(&log, &garbage(100));

    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(keys(&store), keys_of(0..50));
    store.close().unwrap();
    write_with_last_unsynced(dir.path(), SyncPolicy::EverySec, 50..60);

    let len = std::fs::metadata(&log).unwrap().len();
    set_len(&log, len - 7);
    append_bytes(&log, &garbage(33));
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(keys(&store), keys_of(0..59));
    store.close().unwrap();
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_log_is_corrupt_and_leaves_every_file_unchanged() {
    let dir = TempDir::new("flip-log");
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    write_numbered(&store, 0..200);
    store.close().unwrap();
    let log = active_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    flip_byte(&log, len / 2);
    let before = file_contents(dir.path());

    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
    // And again: still corrupt, still untouched.
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
    assert_eq!(file_contents(dir.path()), before);
}

#[test]
fn a_flipped_byte_in_the_snapshot_is_corrupt_and_leaves_every_file_unchanged() {
    let dir = TempDir::new("flip-snapshot");
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    write_numbered(&store, 0..200);
    store.compact().unwrap();
    write_numbered(&store, 200..220);
    store.close().unwrap();
    let (snapshots, _) = generations(dir.path());
    assert_eq!(snapshots.len(), 1);
    let snapshot = dir.path().join(format!("snapshot-{}.snap", snapshots[0]));
    let len = std::fs::metadata(&snapshot).unwrap().len();
    flip_byte(&snapshot, len / 2);

    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

fn open_faulty(dir: &Path, policy: SyncPolicy) -> (Arc<FileStore>, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let shared = faults.clone();
    let mut options = file_options(dir, policy, 64 << 20);
    options.storage = Some(StorageFactory(Arc::new(move |path, create| {
        if create && shared.fail_create.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected create failure"));
        }
        let inner = if create {
            FileStorage::create(path)?
        } else {
            FileStorage::open(path)?
        };
        Ok(Box::new(FaultyStorage {
            inner,
            faults: shared.clone(),
        }) as Box<dyn LogStorage>)
    })));
    let store = FileStore::open(EngineOptions::default(), options).unwrap();
    (store, faults)
}

/// Every kind of write fails with `IO` once the log is poisoned; nothing changes.
fn assert_writes_refused(store: &Engine) {
    let refused = [
        store.set("g", "new", "1", Ttl::Default).map(|_| ()),
        store.set("g", "a", "1", Ttl::Default).map(|_| ()),
        store
            .update("g", "a", r#"[{"type":"set","path":"","value":1}]"#)
            .map(|_| ()),
        store.delete("g", "a").map(|_| ()),
        store.clear("g").map(|_| ()),
    ];
    for result in refused {
        assert_eq!(result.unwrap_err().code(), "IO");
    }
}

#[test]
fn a_failed_log_write_fails_that_write_with_io_changes_nothing_and_refuses_later_writes() {
    type Write = fn(&Engine) -> stepstate_core::Result<()>;
    let failing_writes: [(&str, Write); 4] = [
        ("set", |s| {
            s.set("g", "a", r#""new""#, Ttl::Default).map(|_| ())
        }),
        ("update", |s| {
            s.update("g", "a", r#"[{"type":"set","path":"","value":"new"}]"#)
                .map(|_| ())
        }),
        ("delete", |s| s.delete("g", "a").map(|_| ())),
        ("clear", |s| s.clear("g").map(|_| ())),
    ];
    for (name, failing_write) in failing_writes {
        let dir = TempDir::new(&format!("fail-write-{name}"));
        let (store, faults) = open_faulty(dir.path(), SyncPolicy::EverySec);
        store.set("g", "a", r#""old""#, Ttl::Default).unwrap();
        store.set("g", "b", r#""b""#, Ttl::Default).unwrap();
        store.set("h", "c", r#""c""#, Ttl::Default).unwrap();
        let state = dump(&store);
        faults
            .fail_write
            .store(faults.writes.load(Ordering::SeqCst) + 1, Ordering::SeqCst);

        let err = failing_write(&store).unwrap_err();
        assert_eq!(err.code(), "IO", "{name}: {err}");
        assert_eq!(dump(&store), state, "{name} changed the store");
        assert_eq!(store.get("g", "a").unwrap().as_deref(), Some(r#""old""#));
        assert_writes_refused(&store);
        // Reads keep working.
        assert_eq!(dump(&store), state);
        assert_eq!(store.list_groups(), ["g", "h"]);
        assert_eq!(keys(&store), r#"["a","b"]"#);
        assert_eq!(store.close().unwrap_err().code(), "IO");

        let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
        assert_eq!(dump(&store), state, "{name}: state after reopen");
        store.close().unwrap();
    }
}

#[test]
fn a_failed_fsync_under_always_reports_io_to_the_waiter_and_refuses_later_writes() {
    let dir = TempDir::new("fail-sync");
    let (store, faults) = open_faulty(dir.path(), SyncPolicy::Always);
    let (tell, told) = mpsc::channel();
    store.on_durable(Arc::new(move |ticket| {
        let _ = tell.send(ticket.map_err(|e| e.code()));
    }));
    let wait_for = |ticket: u64| loop {
        match told.recv_timeout(Duration::from_secs(5)).unwrap() {
            Ok(durable) if durable >= ticket => return Ok(durable),
            Ok(_) => {}
            Err(code) => return Err(code),
        }
    };
    let ticket = store
        .set_owned("g", "a", r#""old""#.into(), Ttl::Default)
        .unwrap()
        .ticket;
    assert!(wait_for(ticket).is_ok());
    assert!(store.durable_ticket() >= ticket);
    faults
        .fail_sync
        .store(faults.syncs.load(Ordering::SeqCst) + 1, Ordering::SeqCst);

    // The append succeeds; the sync that would acknowledge it fails, and the waiter is told.
    let ticket = store
        .set_owned("g", "a", r#""new""#.into(), Ttl::Default)
        .unwrap()
        .ticket;
    assert_eq!(wait_for(ticket), Err("IO"));
    assert!(store.durable_ticket() < ticket, "never reported durable");
    assert_writes_refused(&store);
    // Reads keep working. The unacknowledged write stays visible in memory: it was applied
    // before its fsync, as group commit requires (the caller got IO instead of an ack).
    assert_eq!(store.get("g", "a").unwrap().as_deref(), Some(r#""new""#));
    assert_eq!(store.list_groups(), ["g"]);
    assert_eq!(store.close().unwrap_err().code(), "IO");
}

#[test]
fn a_compaction_that_cannot_create_its_log_fails_with_io_and_the_store_goes_on() {
    let dir = TempDir::new("fail-compaction");
    let (store, faults) = open_faulty(dir.path(), SyncPolicy::EverySec);
    write_numbered(&store, 0..20);
    faults.fail_create.store(true, Ordering::SeqCst);
    assert_eq!(store.compact().unwrap_err().code(), "IO");
    write_numbered(&store, 20..30);
    faults.fail_create.store(false, Ordering::SeqCst);
    store.compact().unwrap();
    write_numbered(&store, 30..40);
    store.close().unwrap();
    let (snapshots, logs) = generations(dir.path());
    assert_eq!(snapshots.len(), 1);
    assert_eq!(logs, snapshots);
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(keys(&store), keys_of(0..40));
    store.close().unwrap();
}
