//! Values recovered from a snapshot are served from a read-only map of it instead of the heap:
//! they read back exactly, leave the map when written, and a compaction points every value
//! still equal to the new snapshot into a map of that one and lets the older map (and its
//! deleted file) go, also while other threads write.

mod common;

use std::collections::BTreeMap;

use common::{dump, generations, open, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::Ttl;

fn value(n: u64, round: u64) -> String {
    format!(
        r#"{{"n":{n},"round":{round},"pad":"{}"}}"#,
        "p".repeat((n % 50) as usize)
    )
}

#[test]
fn recovered_values_stay_in_the_snapshot_map_until_written_and_move_with_compaction() {
    let dir = TempDir::new("mapped");
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    let mut model = BTreeMap::new();
    for n in 0..500 {
        let (group, key) = (format!("g{}", n % 5), format!("k{n}"));
        store.set(&group, &key, &value(n, 0), Ttl::Default).unwrap();
        model.insert((group, key), value(n, 0));
    }
    store.compact().unwrap();
    store.close().unwrap();

    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(
        store.mapped_values(),
        (500, 1),
        "every value in the one snapshot map"
    );
    let expected_dump = dump(&store);
    for ((group, key), text) in &model {
        assert_eq!(
            store.get(group, key).unwrap().as_deref(),
            Some(text.as_str())
        );
    }
    // Writes move values out of the map; what they return is the old text, intact.
    for n in 0..10 {
        let (group, key) = (format!("g{}", n % 5), format!("k{n}"));
        let old = store.set(&group, &key, &value(n, 1), Ttl::Default).unwrap();
        assert_eq!(old.as_deref(), Some(value(n, 0).as_str()));
        model.insert((group, key), value(n, 1));
    }
    for n in 10..15 {
        let (group, key) = (format!("g{}", n % 5), format!("k{n}"));
        assert_eq!(store.delete(&group, &key).unwrap(), Some(value(n, 0)));
        model.remove(&(group, key));
    }
    for n in 15..20 {
        let (group, key) = (format!("g{}", n % 5), format!("k{n}"));
        let result = store
            .update(
                &group,
                &key,
                r#"[{"type":"increment","path":"round","by":2}]"#,
            )
            .unwrap();
        assert_eq!(result.old_value.as_deref(), Some(value(n, 0).as_str()));
        assert_eq!(result.new_value, value(n, 2));
        model.insert((group, key), value(n, 2));
    }
    assert_eq!(store.mapped_values(), (480, 1));
    assert_ne!(dump(&store), expected_dump);

    // A compaction while another thread keeps writing: afterwards every live value that the
    // new snapshot holds is in its map, the old map is gone, and every value reads back right.
    let writer_store = store.clone();
    let writer = std::thread::spawn(move || {
        let mut written = Vec::new();
        for round in 3..40u64 {
            let n = 100 + round;
            let (group, key) = (format!("g{}", n % 5), format!("k{n}"));
            writer_store
                .set(&group, &key, &value(n, round), Ttl::Default)
                .unwrap();
            written.push(((group, key), value(n, round)));
        }
        written
    });
    let (snapshots_before, _) = generations(dir.path());
    store.compact().unwrap();
    for (item, text) in writer.join().unwrap() {
        model.insert(item, text);
    }
    let (snapshots_after, _) = generations(dir.path());
    assert_ne!(snapshots_before, snapshots_after);
    assert_eq!(
        snapshots_after.len(),
        1,
        "the older snapshot file is deleted"
    );
    let (mapped, maps) = store.mapped_values();
    assert_eq!(maps, 1, "only the new snapshot stays mapped");
    // 495 live items; only the 37 the writer may have changed after the snapshot passed their
    // group can be on the heap.
    assert_eq!(model.len(), 495);
    assert!(
        (495 - 37..=495).contains(&mapped),
        "values the new snapshot holds are in its map: {mapped}"
    );
    for ((group, key), text) in &model {
        assert_eq!(
            store.get(group, key).unwrap().as_deref(),
            Some(text.as_str()),
            "{group}/{key}"
        );
    }
    assert_eq!(
        dump(&store)
            .iter()
            .map(|(_, entries)| entries.matches("\"key\"").count())
            .sum::<usize>(),
        model.len()
    );
    store.close().unwrap();

    // And the same state comes back from the new files.
    let reopened = open(dir.path(), SyncPolicy::No, 64 << 20);
    for ((group, key), text) in &model {
        assert_eq!(
            reopened.get(group, key).unwrap().as_deref(),
            Some(text.as_str())
        );
    }
    reopened.close().unwrap();
}

#[test]
fn an_in_memory_engine_maps_nothing() {
    let engine = stepstate_core::Engine::new(stepstate_core::EngineOptions::default());
    engine.set("g", "k", "1", Ttl::Default).unwrap();
    let mut mapped = 0;
    engine.for_each_value_mut(|text| {
        mapped += usize::from(matches!(text, stepstate_core::text::Text::Mapped(_)));
    });
    assert_eq!(mapped, 0);
}
