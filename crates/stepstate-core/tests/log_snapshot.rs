//! Snapshots and the store directory: snapshots read back exactly, any damage is `CORRUPT`,
//! leftovers of an interrupted snapshot are ignored and removed, and recovery plans pick the
//! newest snapshot with the logs after it.

mod common;

use std::path::Path;

use common::TempDir;
use common::{read_snapshot, write_snapshot};
use stepstate_core::log::snapshot::SNAPSHOT_MAGIC;
use stepstate_core::log::{LogRecord, StoreFiles};

fn items(n: usize) -> Vec<(String, String, String, u64)> {
    (0..n)
        .map(|i| {
            (
                format!("group{}", i % 3),
                format!("key:{i}"),
                format!(r#"{{"i":{i},"tags":["a","b"]}}"#),
                (i as u64) * 1000,
            )
        })
        .collect()
}

fn puts(items: &[(String, String, String, u64)]) -> impl Iterator<Item = LogRecord<'_>> {
    items.iter().map(|(g, k, v, e)| LogRecord::Put {
        group: g,
        key: k,
        value: v,
        expires_at_ms: *e,
    })
}

fn read_all(path: &Path) -> stepstate_core::Result<Vec<(String, String, String, u64)>> {
    let mut out = Vec::new();
    let count = read_snapshot(path, |record| {
        match record {
            LogRecord::Put {
                group,
                key,
                value,
                expires_at_ms,
            } => out.push((
                group.to_string(),
                key.to_string(),
                value.to_string(),
                expires_at_ms,
            )),
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    })?;
    assert_eq!(count as usize, out.len());
    Ok(out)
}

#[test]
fn a_snapshot_reads_back_every_record_in_order() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("roundtrip");
    let data = items(1000);
    write_snapshot(&dir.0, 7, puts(&data)).unwrap();
    let path = dir.0.join("snapshot-7.snap");
    assert_eq!(read_all(&path).unwrap(), data);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], SNAPSHOT_MAGIC);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!dir.0.join("snapshot-7.snap.tmp").exists());

    write_snapshot(&dir.0, 8, std::iter::empty()).unwrap();
    assert!(read_all(&dir.0.join("snapshot-8.snap")).unwrap().is_empty());
}

#[test]
fn any_flipped_byte_or_truncation_of_a_snapshot_is_corrupt() {
    let dir = TempDir::new("flipped");
    let data = items(20);
    write_snapshot(&dir.0, 1, puts(&data)).unwrap();
    let path = dir.0.join("snapshot-1.snap");
    let original = std::fs::read(&path).unwrap();
    for offset in 0..original.len() {
        let mut damaged = original.clone();
        damaged[offset] ^= 0x04;
        std::fs::write(&path, &damaged).unwrap();
        let err = read_all(&path).unwrap_err();
        assert_eq!(err.code(), "CORRUPT", "byte {offset}: {err}");
    }
    for len in [0, 5, 20, 100, original.len() - 4, original.len() - 1] {
        std::fs::write(&path, &original[..len]).unwrap();
        assert_eq!(
            read_all(&path).unwrap_err().code(),
            "CORRUPT",
            "length {len}"
        );
    }
    let mut longer = original.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    assert_eq!(read_all(&path).unwrap_err().code(), "CORRUPT");
}

#[test]
fn opening_a_store_ignores_and_removes_an_interrupted_snapshot() {
    let dir = TempDir::new("leftover");
    let store = dir.0.join("store");
    {
        let files = StoreFiles::open(&store).unwrap();
        assert_eq!(files.snapshot_generation(), None);
        assert!(files.log_generations().is_empty());
        assert_eq!(files.active_generation(), 0);
        std::fs::write(files.log_path(0), b"").unwrap();
        std::fs::write(files.log_path(1), b"").unwrap();
        // A crash while writing snapshot 1: only its temp file exists.
        std::fs::write(store.join("snapshot-1.snap.tmp"), b"STEPSNAP half").unwrap();
    }
    let files = StoreFiles::open(&store).unwrap();
    assert_eq!(files.snapshot_generation(), None);
    assert_eq!(files.log_generations(), &[0, 1]);
    assert_eq!(files.active_generation(), 1);
    assert!(!store.join("snapshot-1.snap.tmp").exists());
}

#[test]
fn the_recovery_plan_is_the_newest_snapshot_and_the_logs_from_it_and_retire_removes_the_rest() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("plan");
    let store = dir.0.join("store");
    {
        let files = StoreFiles::open(&store).unwrap();
        let mode = std::fs::metadata(&store).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        for g in 0..=3 {
            std::fs::write(files.log_path(g), b"").unwrap();
        }
        write_snapshot(&store, 1, puts(&items(3))).unwrap();
        write_snapshot(&store, 2, puts(&items(5))).unwrap();
    }
    let files = StoreFiles::open(&store).unwrap();
    assert_eq!(files.snapshot_generation(), Some(2));
    assert_eq!(
        files.snapshot_to_load(),
        Some(store.join("snapshot-2.snap"))
    );
    assert_eq!(files.log_generations(), &[2, 3]);
    assert_eq!(
        files
            .log_generations()
            .iter()
            .map(|&g| files.log_path(g))
            .collect::<Vec<_>>(),
        vec![store.join("log-2.log"), store.join("log-3.log")]
    );
    assert_eq!(files.active_generation(), 3);

    assert_eq!(files.retire_before(4).unwrap_err().code(), "IO");
    files.retire_before(2).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["LOCK", "log-2.log", "log-3.log", "snapshot-2.snap"]);
}

#[test]
fn a_missing_log_between_the_snapshot_and_the_newest_log_is_corrupt() {
    let dir = TempDir::new("gap");
    let store = dir.0.join("store");
    {
        let files = StoreFiles::open(&store).unwrap();
        std::fs::write(files.log_path(0), b"").unwrap();
        std::fs::write(files.log_path(2), b"").unwrap();
    }
    let err = StoreFiles::open(&store).unwrap_err();
    assert_eq!(err.code(), "CORRUPT");
    assert!(err.to_string().contains("log-1.log"), "{err}");
}

#[test]
fn a_store_already_open_cannot_be_opened_again() {
    let dir = TempDir::new("locked");
    let store = dir.0.join("store");
    let files = StoreFiles::open(&store).unwrap();
    assert_eq!(StoreFiles::open(&store).unwrap_err().code(), "LOCKED");
    drop(files);
    StoreFiles::open(&store).unwrap();
}
