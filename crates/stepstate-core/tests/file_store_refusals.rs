//! What a file store refuses to open, leaving every file as it was: a log that lost part of
//! what was synced (acknowledged under `always`, or flushed by close), and a directory holding
//! files the store did not write.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    active_log, assert_open_fails_and_changes_nothing, file_contents, open, poll, set_len, TempDir,
};
use stepstate_core::log::watermark::watermark_path;
use stepstate_core::log::SyncPolicy;
use stepstate_core::{FileStore, Ttl};

/// Writes keys k0..k{count} under `always`, each acknowledged (durable) before the next, as
/// the Node binding acknowledges them; then closes the store cleanly.
fn write_acknowledged(dir: &Path, count: u64) {
    let store = open(dir, SyncPolicy::Always, 64 << 20);
    write_acknowledged_into(&store, 0..count);
    store.close().unwrap();
}

fn write_acknowledged_into(store: &FileStore, range: std::ops::Range<u64>) {
    for i in range {
        let value = format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(64));
        let ticket = store
            .set_owned("g", &format!("k{i}"), value, Ttl::Default)
            .unwrap()
            .ticket;
        assert!(
            poll(Duration::from_secs(10), || store.durable_ticket() >= ticket),
            "write {i} was never acknowledged"
        );
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_flipped_byte_in_the_middle_of_a_log_acknowledged_under_always_is_corrupt() {
    let dir = TempDir::new("always-flip");
    write_acknowledged(dir.path(), 200);
    let log = active_log(dir.path());
    flip_byte(&log, len_of(&log) / 2);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_damaged_last_record_of_a_cleanly_closed_log_is_corrupt() {
    let dir = TempDir::new("last-record");
    write_acknowledged(dir.path(), 50);
    let log = active_log(dir.path());
    flip_byte(&log, len_of(&log) - 3);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_few_bytes_cut_off_the_end_of_a_cleanly_closed_log_are_corrupt() {
    let dir = TempDir::new("cut-end");
    write_acknowledged(dir.path(), 50);
    let log = active_log(dir.path());
    set_len(&log, len_of(&log) - 3);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn the_active_log_cut_in_half_is_corrupt() {
    let dir = TempDir::new("active-half");
    write_acknowledged(dir.path(), 100);
    let log = active_log(dir.path());
    set_len(&log, len_of(&log) / 2);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn an_older_log_cut_in_half_is_corrupt() {
    // Two logs and no snapshot after them, as a crash during compaction leaves: log-1 is a
    // closed log of the same format, moved in beside log-0.
    let dir = TempDir::new("older-half");
    write_acknowledged(dir.path(), 100);
    let other = TempDir::new("older-half-source");
    write_acknowledged(other.path(), 10);
    for (from, to) in [
        ("log-0.log", "log-1.log"),
        ("log-0.log.synced", "log-1.log.synced"),
    ] {
        std::fs::rename(other.path().join(from), dir.path().join(to)).unwrap();
    }
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(store.keys_json("g").unwrap().matches(',').count(), 99);
    store.close().unwrap();

    let older = dir.path().join("log-0.log");
    set_len(&older, len_of(&older) / 2);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_deleted_active_log_is_corrupt() {
    let dir = TempDir::new("deleted-log");
    write_acknowledged(dir.path(), 20);
    std::fs::remove_file(active_log(dir.path())).unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_snapshot_whose_log_was_deleted_is_corrupt() {
    let dir = TempDir::new("snapshot-without-log");
    let store = open(dir.path(), SyncPolicy::Always, 64 << 20);
    write_acknowledged_into(&store, 0..20);
    store.compact().unwrap();
    write_acknowledged_into(&store, 20..30);
    store.close().unwrap();
    let log = active_log(dir.path());
    std::fs::remove_file(watermark_path(&log)).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_damaged_log_whose_watermark_is_missing_is_corrupt() {
    let dir = TempDir::new("no-watermark");
    write_acknowledged(dir.path(), 200);
    let log = active_log(dir.path());
    std::fs::remove_file(watermark_path(&log)).unwrap();
    flip_byte(&log, len_of(&log) / 2);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");

    // The last record damaged: without a watermark it cannot be told from a torn write.
    let dir = TempDir::new("no-watermark-tail");
    write_acknowledged(dir.path(), 20);
    let log = active_log(dir.path());
    std::fs::remove_file(watermark_path(&log)).unwrap();
    flip_byte(&log, len_of(&log) - 3);
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn an_intact_log_whose_watermark_is_missing_opens_with_everything() {
    let dir = TempDir::new("no-watermark-intact");
    write_acknowledged(dir.path(), 20);
    std::fs::remove_file(watermark_path(&active_log(dir.path()))).unwrap();
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert!(store.get("g", "k19").unwrap().is_some());
    assert_eq!(store.keys_json("g").unwrap().matches(',').count(), 19);
    store.close().unwrap();
}

#[test]
fn a_directory_holding_files_the_store_did_not_write_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("foreign-dir");
    std::fs::write(dir.path().join("notes.txt"), "my notes").unwrap();
    std::fs::write(dir.path().join("build.tmp"), "half a build").unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "INVALID_ARGUMENT");
    assert!(
        !dir.path().join("LOCK").exists(),
        "no lock file is left behind"
    );

    // The same once the store exists: a file put beside its own is not adopted or deleted.
    let dir = TempDir::new("foreign-beside-store");
    write_acknowledged(dir.path(), 3);
    std::fs::write(dir.path().join("data.tmp"), "someone else's").unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "INVALID_ARGUMENT");
}

#[test]
fn a_foreign_file_named_like_a_log_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("foreign-log");
    let text = "2026-11-26 server started\n".repeat(50);
    std::fs::write(dir.path().join("log-0.log"), &text).unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "INVALID_ARGUMENT");
    assert!(
        !dir.path().join("LOCK").exists(),
        "no lock file is left behind"
    );

    // In a store's directory, a log that is not one is damage, and is not truncated either.
    let dir = TempDir::new("foreign-log-in-store");
    write_acknowledged(dir.path(), 3);
    std::fs::remove_file(watermark_path(&active_log(dir.path()))).unwrap();
    std::fs::write(active_log(dir.path()), &text).unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
}

#[test]
fn a_lock_symlink_is_never_followed() {
    let dir = TempDir::new("lock-symlink");
    let outside = TempDir::new("lock-symlink-target");
    let target = outside.path().join("important.txt");
    std::fs::write(&target, "do not truncate me").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("LOCK")).unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "INVALID_ARGUMENT");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "do not truncate me"
    );
}

#[test]
fn a_lock_file_holding_something_else_than_a_pid_is_refused() {
    let dir = TempDir::new("lock-foreign");
    std::fs::write(dir.path().join("LOCK"), "keep this text").unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "INVALID_ARGUMENT");
}

#[test]
fn a_leftover_snapshot_temp_file_is_deleted_only_when_it_is_a_snapshot() {
    let dir = TempDir::new("temp-files");
    write_acknowledged(dir.path(), 3);
    let ours = dir.path().join("snapshot-5.snap.tmp");
    std::fs::write(&ours, b"STEPSNAP\x01\x00\x00\x00 and a torn rest").unwrap();
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert!(
        !ours.exists(),
        "a snapshot's leftover temp file is cleaned up"
    );
    store.close().unwrap();

    let before = file_contents(dir.path());
    let foreign = dir.path().join("snapshot-6.snap.tmp");
    std::fs::write(&foreign, "not a snapshot").unwrap();
    assert_open_fails_and_changes_nothing(dir.path(), "CORRUPT");
    std::fs::remove_file(&foreign).unwrap();
    assert_eq!(file_contents(dir.path()), before);
}
