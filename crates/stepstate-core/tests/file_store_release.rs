//! Closing the last handle of a file store releases everything it held (file descriptors,
//! threads, snapshot maps, items), even while something still references the engine, as a
//! subscription or durability watch not yet collected by JavaScript does. One test per binary:
//! it counts this process's descriptors and threads.

mod common;

use std::sync::Arc;

use common::{open, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::{open_shared, release_shared};
use stepstate_core::{Engine, EngineOptions, Ttl};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn a_thousand_open_close_cycles_leave_no_descriptor_thread_map_or_item_behind() {
    let dir = TempDir::new("cycles");
    // A store with a snapshot, so that every open maps one.
    let store = open(dir.path(), SyncPolicy::Always, 64 << 20);
    for i in 0..200 {
        store
            .set("g", &format!("k{i}"), &"7".repeat(100), Ttl::Default)
            .unwrap();
    }
    store.compact().unwrap();
    store.close().unwrap();
    drop(store);

    let fds_before = open_descriptors();
    let threads_before = threads();
    let mut kept: Vec<Arc<Engine>> = Vec::new();
    for cycle in 0..1000 {
        let mut file = common::file_options(dir.path(), SyncPolicy::Always, 64 << 20);
        file.sync_policy = if cycle % 2 == 0 {
            SyncPolicy::Always
        } else {
            SyncPolicy::EverySec
        };
        let engine = open_shared(EngineOptions::default(), file).unwrap();
        engine
            .set("g", "k0", &cycle.to_string(), Ttl::Millis(60_000))
            .unwrap();
        let (id, _queue) = engine
            .events()
            .subscribe(stepstate_core::events::Filter::default(), Box::new(|| true));
        let _ = id;
        // The snapshot's values stay mapped, except the one just written.
        assert_eq!(engine.mapped_values(), (199, 1));
        release_shared(&engine).unwrap();
        // Still referenced (as a JS subscription would hold it), but closed: it holds nothing.
        assert_eq!(engine.mapped_values(), (0, 0));
        assert!(engine.list_groups().is_empty());
        assert!(!engine.events().has_subscribers());
        kept.push(engine.engine().clone());
    }
    // Threads that were told to stop (the expiry sweep) exit within their sleep interval.
    assert!(
        common::poll(std::time::Duration::from_secs(5), || threads()
            <= threads_before + 2),
        "{} threads after 1000 cycles, {threads_before} before",
        threads()
    );
    let fds_after = open_descriptors();
    assert!(
        fds_after <= fds_before + 2,
        "{fds_after} descriptors open after 1000 cycles, {fds_before} before"
    );
    drop(kept);

    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(store.get("g", "k0").unwrap().as_deref(), Some("999"));
    store.close().unwrap();
}
