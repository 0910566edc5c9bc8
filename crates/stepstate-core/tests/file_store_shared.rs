//! One engine per directory per process: `open_shared` hands every opener of a path, however
//! spelled, the same engine, so updates from many threads never lose each other, and the
//! store closes only with the last `release_shared`.

mod common;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use common::{file_options, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::{open_shared, release_shared};
use stepstate_core::{EngineOptions, FileStore, Ttl};

fn shared(path: &Path) -> Arc<FileStore> {
    open_shared(
        EngineOptions::default(),
        file_options(path, SyncPolicy::EverySec, 64 << 20),
    )
    .unwrap()
}

/// `path` relative to the current directory, spelled with `./` and `..` components.
fn relative_spelling(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let cwd: Vec<Component> = cwd.components().collect();
    let target: Vec<Component> = path.components().collect();
    let common = cwd.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::from(".");
    for _ in common..cwd.len() {
        relative.push("..");
    }
    for part in &target[common..] {
        relative.push(part);
    }
    relative
}

#[test]
fn open_shared_returns_the_same_engine_for_every_spelling_of_the_path() {
    let dir = TempDir::new("spellings");
    let path = dir.path().join("store");
    let first = shared(&path);
    let spellings = [
        path.clone(),
        PathBuf::from(format!("{}/", path.display())),
        path.join("."),
        dir.path()
            .join("..")
            .join(dir.path().file_name().unwrap())
            .join("store"),
        relative_spelling(&path),
    ];
    for spelling in &spellings {
        let again = shared(spelling);
        assert!(
            Arc::ptr_eq(&first, &again),
            "{} opened another engine",
            spelling.display()
        );
    }
    first.set("g", "k", "1", Ttl::Default).unwrap();
    for _ in &spellings {
        release_shared(&first).unwrap();
        // Still open while any handle remains.
        first.set("g", "k", "2", Ttl::Default).unwrap();
    }
    release_shared(&first).unwrap();
    assert_eq!(
        first.set("g", "k", "3", Ttl::Default).unwrap_err().code(),
        "CLOSED"
    );
    // Released with the last handle: the engine holds nothing any more.
    assert_eq!(first.get("g", "k").unwrap_err().code(), "CLOSED");

    // Closed for real: a fresh open (not shared) can take the lock.
    let reopened = FileStore::open(
        EngineOptions::default(),
        file_options(&relative_spelling(&path), SyncPolicy::EverySec, 64 << 20),
    )
    .unwrap();
    assert_eq!(reopened.get("g", "k").unwrap().as_deref(), Some("2"));
    reopened.close().unwrap();
}

#[test]
fn eight_threads_with_their_own_handles_increment_one_key_exactly_8000_times() {
    let dir = TempDir::new("threads");
    let path = dir.path().to_path_buf();
    let keeper = shared(&path);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = shared(&path);
                for _ in 0..1000 {
                    store
                        .update(
                            "counters",
                            "hits",
                            r#"[{"type":"increment","path":"n","by":1}]"#,
                        )
                        .unwrap();
                }
                release_shared(&store).unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        keeper.get("counters", "hits").unwrap().as_deref(),
        Some(r#"{"n":8000}"#)
    );
    release_shared(&keeper).unwrap();

    let store = shared(&path);
    assert!(
        !Arc::ptr_eq(&store, &keeper),
        "a new engine after the last release"
    );
    assert_eq!(
        store.get("counters", "hits").unwrap().as_deref(),
        Some(r#"{"n":8000}"#)
    );
    release_shared(&store).unwrap();
}

#[test]
fn a_write_through_the_remaining_handle_works_after_the_first_release_and_survives() {
    let dir = TempDir::new("release");
    let a = shared(dir.path());
    let b = shared(dir.path());
    assert!(Arc::ptr_eq(&a, &b));
    a.set("g", "x", "1", Ttl::Default).unwrap();
    release_shared(&a).unwrap();
    b.set("g", "y", "2", Ttl::Default).unwrap();
    b.update("g", "x", r#"[{"type":"set","path":"","value":10}]"#)
        .unwrap();
    release_shared(&b).unwrap();
    assert_eq!(b.delete("g", "x").unwrap_err().code(), "CLOSED");

    let c = shared(dir.path());
    assert_eq!(c.group_json("g").unwrap(), "[10,2]");
    release_shared(&c).unwrap();
}
