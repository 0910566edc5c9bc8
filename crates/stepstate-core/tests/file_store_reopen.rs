//! The file store across close and reopen: random rounds of every write method end in exactly
//! the state an in-memory engine reaches with the same operations (values and insertion
//! order), with and without compaction; TTLs keep their meaning across a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{dump, generations, open, poll, Rng, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::{open_shared, release_shared};
use stepstate_core::{Engine, EngineOptions, FileStore, Ttl};

const GROUPS: [&str; 4] = ["orders", "users", "a:b/c", "\u{e9}t\u{e9}"];
const KEYS: u64 = 8;

/// One write, as both engines receive it.
#[derive(Debug, Clone)]
enum Op {
    Set {
        group: &'static str,
        key: String,
        value: String,
        ttl: Ttl,
    },
    Update {
        group: &'static str,
        key: String,
        ops: String,
    },
    Delete {
        group: &'static str,
        key: String,
    },
    Clear {
        group: &'static str,
    },
}

fn random_value(rng: &mut Rng, i: u64) -> String {
    let pad = "p".repeat(rng.below(150) as usize);
    match rng.below(6) {
        0 => format!(r#""s{i}{pad}""#),
        1 => format!("{i}"),
        2 => format!(r#"[{i},"{pad}"]"#),
        3 => "null".to_string(),
        _ => format!(r#"{{"n":{},"pad":"{pad}","list":[]}}"#, rng.below(5)),
    }
}

fn random_update(rng: &mut Rng, i: u64) -> String {
    match rng.below(8) {
        0 => r#"[{"type":"increment","path":"n","by":1}]"#.to_string(),
        1 => format!(r#"[{{"type":"merge","value":{{"m":{i}}}}}]"#),
        2 => format!(r#"[{{"type":"append","path":"list","value":{i}}}]"#),
        3 => r#"[{"type":"set","path":"a.b","value":"x"}]"#.to_string(),
        4 => r#"[{"type":"remove","path":"n"}]"#.to_string(),
        // Usually fails with test.failed.
        5 => r#"[{"type":"test","path":"n","value":3},{"type":"increment","path":"n","by":10}]"#
            .to_string(),
        6 => format!(r#"[{{"op":"replace","path":"/n","value":{i}}}]"#),
        // Fails on anything whose `pad` is not a number.
        _ => r#"[{"type":"decrement","path":"pad","by":2}]"#.to_string(),
    }
}

fn random_op(rng: &mut Rng, i: u64) -> Op {
    let group = GROUPS[rng.below(GROUPS.len() as u64) as usize];
    let key = format!("k{}", rng.below(KEYS));
    match rng.below(100) {
        0..=39 => Op::Set {
            group,
            key,
            value: random_value(rng, i),
            ttl: if rng.chance(30) {
                Ttl::Millis(3_600_000)
            } else {
                Ttl::Default
            },
        },
        40..=74 => Op::Update {
            group,
            key,
            ops: random_update(rng, i),
        },
        75..=96 => Op::Delete { group, key },
        _ => Op::Clear { group },
    }
}

/// Applies `op` and describes its result (or error code), so both engines can be compared.
fn apply(engine: &Engine, op: &Op) -> String {
    let result = match op {
        Op::Set {
            group,
            key,
            value,
            ttl,
        } => engine
            .set(group, key, value, *ttl)
            .map(|old| format!("set {old:?}")),
        Op::Update { group, key, ops } => engine
            .update(group, key, ops)
            .map(|r| format!("update {} {:?}", r.new_value, r.old_value)),
        Op::Delete { group, key } => engine
            .delete(group, key)
            .map(|old| format!("delete {old:?}")),
        Op::Clear { group } => engine.clear(group).map(|n| format!("clear {n}")),
    };
    result.unwrap_or_else(|e| format!("error {}", e.code()))
}

/// How a round opens and closes the store.
#[derive(Debug, Clone, Copy)]
enum RoundKind {
    OpenAndClose,
    SharedAndRelease,
    CompactDirectly,
    CompactByItself,
}

#[test]
fn random_writes_of_every_method_survive_reopen_in_value_and_insertion_order() {
    let started = Instant::now();
    let dir = TempDir::new("reopen-loop");
    let model = Engine::new(EngineOptions::default());
    let mut rng = Rng::new(0x5eed_0001);
    let mut i = 0u64;
    let mut failed_updates = 0;
    let mut compactions_by_itself = 0;
    for round in 0..48u64 {
        let kind = match round % 4 {
            0 => RoundKind::OpenAndClose,
            1 => RoundKind::SharedAndRelease,
            2 => RoundKind::CompactDirectly,
            _ => RoundKind::CompactByItself,
        };
        let policy = [SyncPolicy::Always, SyncPolicy::EverySec, SyncPolicy::No][round as usize % 3];
        let compact_min_bytes = match kind {
            RoundKind::CompactByItself => 1024,
            _ => 64 << 20,
        };
        let options = common::file_options(dir.path(), policy, compact_min_bytes);
        let store = match kind {
            RoundKind::SharedAndRelease => open_shared(EngineOptions::default(), options).unwrap(),
            _ => FileStore::open(EngineOptions::default(), options).unwrap(),
        };
        assert_eq!(
            dump(&store),
            dump(&model),
            "round {round} ({kind:?}, {policy:?}): state after reopen"
        );
        let generation_at_open = generations(dir.path()).1.last().copied().unwrap_or(0);

        let ops = if matches!(kind, RoundKind::CompactByItself) {
            120
        } else {
            60
        };
        for n in 0..ops {
            let op = random_op(&mut rng, i);
            i += 1;
            let expected = apply(&model, &op);
            let got = apply(&store, &op);
            assert_eq!(got, expected, "round {round} op {n}: {op:?}");
            failed_updates += usize::from(got.starts_with("error"));
            if matches!(kind, RoundKind::CompactDirectly) && n == ops / 2 {
                store.compact().unwrap();
                let (snapshots, logs) = generations(dir.path());
                assert_eq!(
                    snapshots.len(),
                    1,
                    "one snapshot after compact: {snapshots:?}"
                );
                assert_eq!(logs, snapshots, "one log, the snapshot's: {logs:?}");
                assert_eq!(
                    dump(&store),
                    dump(&model),
                    "round {round}: state after compact"
                );
            }
        }
        match kind {
            RoundKind::CompactDirectly => {
                store.compact().unwrap();
                let (snapshots, logs) = generations(dir.path());
                assert_eq!(snapshots.len(), 1);
                assert_eq!(logs, snapshots);
            }
            RoundKind::CompactByItself => {
                // No more writes: the compaction started by the last threshold crossing ends
                // with one snapshot and its log.
                let settled = poll(Duration::from_secs(5), || {
                    let (snapshots, logs) = generations(dir.path());
                    snapshots.len() == 1 && logs == snapshots && snapshots[0] > generation_at_open
                });
                assert!(
                    settled,
                    "round {round}: compaction did not run by itself: {:?}",
                    generations(dir.path())
                );
                compactions_by_itself += 1;
            }
            _ => {}
        }
        assert_eq!(dump(&store), dump(&model), "round {round}: live state");
        match kind {
            RoundKind::SharedAndRelease => release_shared(&store).unwrap(),
            _ => store.close().unwrap(),
        }
        assert_eq!(
            store
                .set("orders", "late", "1", Ttl::Default)
                .unwrap_err()
                .code(),
            "CLOSED"
        );
    }
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    assert_eq!(dump(&store), dump(&model), "final reopen");
    assert!(!model.list_groups().is_empty());
    assert!(failed_updates > 20, "failing updates were exercised");
    assert_eq!(compactions_by_itself, 12);
    store.close().unwrap();
    eprintln!(
        "{i} random writes over 48 reopen rounds in {:?}",
        started.elapsed()
    );
}

#[test]
fn overwrite_keeps_its_place_and_delete_then_set_moves_to_the_end_across_compaction() {
    let dir = TempDir::new("order");
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    for key in ["a", "b", "c", "d"] {
        store
            .set("g", key, &format!("\"{key}1\""), Ttl::Default)
            .unwrap();
    }
    store.set("g", "a", "\"a2\"", Ttl::Default).unwrap(); // keeps its place
    store.delete("g", "b").unwrap();
    store.set("g", "b", "\"b2\"", Ttl::Default).unwrap(); // moves to the end
    store.compact().unwrap();
    store
        .update("g", "c", r#"[{"type":"set","path":"","value":"c2"}]"#)
        .unwrap(); // keeps its place
    store.delete("g", "a").unwrap();
    store
        .update("g", "a", r#"[{"type":"merge","value":{"x":1}}]"#)
        .unwrap(); // to the end
    let expected = r#"["c","d","b","a"]"#;
    assert_eq!(store.keys_json("g").unwrap(), expected);
    store.close().unwrap();

    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.keys_json("g").unwrap(), expected);
    assert_eq!(
        store.group_json("g").unwrap(),
        r#"["c2","d1","b2",{"x":1}]"#
    );
    store.compact().unwrap();
    store.close().unwrap();
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.keys_json("g").unwrap(), expected);
    store.close().unwrap();
}

#[test]
fn an_item_that_expired_while_closed_is_gone_and_one_that_has_not_keeps_its_expiry() {
    let dir = TempDir::new("ttl");
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    let written = Instant::now();
    store.set("g", "short", "1", Ttl::Millis(200)).unwrap();
    store.set("g", "long", "2", Ttl::Millis(1500)).unwrap();
    store.set("g", "forever", "3", Ttl::Default).unwrap();
    // `update` keeps the item's expiry.
    store
        .update("g", "long", r#"[{"type":"set","path":"","value":20}]"#)
        .unwrap();
    store.close().unwrap();

    std::thread::sleep(Duration::from_millis(250).saturating_sub(written.elapsed()));
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert!(
        written.elapsed() < Duration::from_millis(1400),
        "too slow to test"
    );
    assert_eq!(store.get("g", "short").unwrap(), None);
    assert_eq!(store.keys_json("g").unwrap(), r#"["long","forever"]"#);
    assert_eq!(store.get("g", "long").unwrap().as_deref(), Some("20"));
    // The remaining expiry survives a compaction too.
    store.compact().unwrap();
    store.close().unwrap();
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.get("g", "long").unwrap().as_deref(), Some("20"));

    assert!(poll(Duration::from_secs(5), || store
        .get("g", "long")
        .unwrap()
        .is_none()));
    let gone_after = written.elapsed();
    // Expiry times are whole wall-clock milliseconds: allow a few ms of rounding.
    assert!(
        gone_after >= Duration::from_millis(1490),
        "expired early, after {gone_after:?}"
    );
    assert_eq!(store.group_json("g").unwrap(), "[3]");
    store.close().unwrap();
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.group_json("g").unwrap(), "[3]");
    store.close().unwrap();
}

/// A key whose earlier item expired is absent, so writing it again puts it at the end; the
/// log must replay it there too.
#[test]
fn a_key_set_again_after_its_item_expired_stays_at_the_end_after_reopen() {
    let dir = TempDir::new("expired-order");
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    store.set("g", "a", "1", Ttl::Millis(150)).unwrap();
    store.set("g", "b", "2", Ttl::Default).unwrap();
    store.close().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // Recovery drops the expired `a` (without journaling it), so `a` is new again.
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.keys_json("g").unwrap(), r#"["b"]"#);
    set_a_again_and_check_it_stays_after_b_across_reopen(&store, dir.path());
}

/// The same through `set` on an item that expired while the store was open but before the
/// background sweep removed it (the sweep is stopped here to make the window deterministic).
#[test]
fn a_key_set_again_before_the_sweep_removed_its_expired_item_stays_at_the_end_after_reopen() {
    let dir = TempDir::new("expired-order-live");
    let store = open(dir.path(), SyncPolicy::EverySec, 64 << 20);
    store.shut_down(); // no background sweep: the expired item stays until written
    store.set("g", "a", "1", Ttl::Millis(100)).unwrap();
    store.set("g", "b", "2", Ttl::Default).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    set_a_again_and_check_it_stays_after_b_across_reopen(&store, dir.path());
}

/// Sets `a` of group `g` again (its earlier item has expired, `b` is live) and checks that it
/// comes after `b`, then closes and reopens the store and checks that again.
fn set_a_again_and_check_it_stays_after_b_across_reopen(store: &FileStore, dir: &Path) {
    store.set("g", "a", "3", Ttl::Default).unwrap();
    assert_eq!(store.keys_json("g").unwrap(), r#"["b","a"]"#);
    store.close().unwrap();

    let store = open(dir, SyncPolicy::EverySec, 64 << 20);
    assert_eq!(store.keys_json("g").unwrap(), r#"["b","a"]"#);
    store.close().unwrap();
}

/// Compaction snapshots the groups while writes go on into the new log, then recovery
/// replays that whole log over the snapshot. A key deleted and set again early in the new log,
/// followed by a new key, comes back in the wrong order: `z` deleted, `z` set, `y` set (live
/// order `[z, y]`), snapshot `[z, y]`, replay of `delete z, set z, set y` over it: `[y, z]`.
#[test]
fn writes_racing_a_compaction_keep_their_insertion_order_after_reopen() {
    let dir = TempDir::new("compaction-race");
    let store = open(dir.path(), SyncPolicy::No, 64 << 20);
    // Enough data in other groups that writing the snapshot takes a while.
    let pad = format!("\"{}\"", "b".repeat(200));
    for n in 0..20_000 {
        store
            .set(
                &format!("big{}", n % 64),
                &format!("k{n}"),
                &pad,
                Ttl::Default,
            )
            .unwrap();
    }
    store.close().unwrap();
    let mut reordered = Vec::new();
    for attempt in 0..10 {
        let store = open(dir.path(), SyncPolicy::No, 64 << 20);
        store.clear("g").unwrap();
        store.set("g", "z", "1", Ttl::Default).unwrap();
        let next_log = dir.path().join(format!(
            "log-{}.log",
            generations(dir.path()).1.last().unwrap() + 1
        ));
        let writer_store = store.clone();
        let writer = std::thread::spawn(move || {
            // As soon as compaction has started the new log (and so, a moment later, switched
            // to it), and most likely before the snapshot reaches group `g`:
            assert!(poll(Duration::from_secs(5), || next_log.exists()));
            std::thread::sleep(Duration::from_millis(1));
            writer_store.delete("g", "z").unwrap();
            writer_store.set("g", "z", "2", Ttl::Default).unwrap();
            writer_store.set("g", "y", "3", Ttl::Default).unwrap();
        });
        store.compact().unwrap();
        writer.join().unwrap();
        assert_eq!(store.keys_json("g").unwrap(), r#"["z","y"]"#);
        store.close().unwrap();
        let store = open(dir.path(), SyncPolicy::No, 64 << 20);
        let keys = store.keys_json("g").unwrap();
        if keys != r#"["z","y"]"# {
            reordered.push(format!("attempt {attempt}: {keys}"));
        }
        store.close().unwrap();
    }
    assert!(
        reordered.is_empty(),
        "live order [\"z\",\"y\"] came back as {reordered:?}"
    );
}
