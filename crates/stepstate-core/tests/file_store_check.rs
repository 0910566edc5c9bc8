//! The read-only check of a store directory (`store::file::check`): a clean store passes with
//! every file counted, a flipped byte is reported with its file and offset, the holder of an
//! open store is named, and nothing in the directory changes.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{active_log, file_contents, open, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::file::check::{check_store, lock_holder, CheckedKind, Holder};
use stepstate_core::Ttl;

fn write_some(dir: &std::path::Path) {
    let store = open(dir, SyncPolicy::Always, u64::MAX);
    for i in 0..20 {
        store
            .engine()
            .set(
                "g",
                &format!("k{i}"),
                &format!(r#"{{"i":{i}}}"#),
                Ttl::Default,
            )
            .unwrap();
    }
    store.close().unwrap();
}

#[test]
fn a_clean_store_checks_every_record_and_changes_nothing() {
    let dir = TempDir::new("check-clean");
    write_some(dir.path());
    let before = file_contents(dir.path());
    let mut seen = 0;
    let checks = check_store(dir.path(), |_| seen += 1).unwrap();
    assert_eq!(seen, checks.len());
    let log = checks.last().unwrap();
    assert_eq!(log.kind, CheckedKind::Log);
    assert_eq!(log.records, 20);
    assert!(checks.iter().all(|c| c.damage.is_none()));
    assert_eq!(file_contents(dir.path()), before);
}

#[test]
fn a_flipped_byte_is_reported_with_its_file_and_offset() {
    let dir = TempDir::new("check-flipped");
    write_some(dir.path());
    let log = active_log(dir.path());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 40).unwrap();
    file.write_all_at(&[byte[0] ^ 0xff], 40).unwrap();
    let checks = check_store(dir.path(), |_| {}).unwrap();
    let last = checks.last().unwrap();
    assert_eq!(last.path, log);
    let damage = last.damage.as_ref().expect("damage reported");
    let offset = damage.offset.expect("an offset");
    assert!(offset <= 40, "damage at {offset}, the byte flipped was 40");
    assert!(damage.message.contains(&log.display().to_string()));
    assert!(damage.message.contains(&format!("offset {offset}")));
}

#[test]
fn the_holder_of_an_open_store_is_named_and_a_closed_one_has_none() {
    let dir = TempDir::new("check-holder");
    assert_eq!(lock_holder(dir.path()).unwrap(), Holder::Nobody);
    let store = open(dir.path(), SyncPolicy::No, u64::MAX);
    assert_eq!(
        lock_holder(dir.path()).unwrap(),
        Holder::Process(Some(std::process::id()))
    );
    store.close().unwrap();
    assert_eq!(lock_holder(dir.path()).unwrap(), Holder::Nobody);
}
