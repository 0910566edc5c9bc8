//! Change events and TTL of the engine, driven by a manual clock so that every expiry boundary
//! is exact and instant: when an item stops being visible, what the sweep removes and what it
//! tells subscribers, how `update`, overwrites, `delete` and `clear` treat expiry, which writes
//! fire nothing, per-key commit order under concurrency, and that filters keep other groups'
//! writes from ever waking a subscriber.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use stepstate_core::events::{EventQueue, Filter};
use stepstate_core::ttl::ManualClock;
use stepstate_core::{Engine, EngineOptions, Ttl};

/// The clock reading every test starts from (an arbitrary, realistic epoch time in ms).
const START_MS: u64 = 1_700_000_000_000;

/// An engine on a manual clock at [`START_MS`], with `default_ttl_ms` as its default TTL.
/// Its background sweep is shut down, so that only the test's own `sweep_expired` calls remove
/// expired items and the counts they return are exact.
fn engine_with_clock(default_ttl_ms: Option<u64>) -> (Arc<Engine>, Arc<ManualClock>) {
    let clock = ManualClock::new(START_MS);
    let engine = Engine::new(EngineOptions {
        default_ttl_ms,
        clock: clock.clone(),
        ..EngineOptions::default()
    });
    engine.shut_down();
    (engine, clock)
}

/// One subscriber: its queue and how many times its notify callback was called.
struct Subscriber {
    queue: Arc<EventQueue>,
    notified: Arc<AtomicUsize>,
}

impl Subscriber {
    fn new(engine: &Engine, group: Option<&str>, key: Option<&str>) -> Subscriber {
        let notified = Arc::new(AtomicUsize::new(0));
        let counter = notified.clone();
        let (_, queue) = engine.events().subscribe(
            Filter {
                group: group.map(String::from),
                key: key.map(String::from),
            },
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                true
            }),
        );
        Subscriber { queue, notified }
    }

    fn all(engine: &Engine) -> Subscriber {
        Subscriber::new(engine, None, None)
    }

    /// Takes the waiting events, parsed.
    fn events(&self) -> Vec<Value> {
        let text = self.queue.drain();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("drain gave invalid JSON {text}: {e}"))
    }

    fn notify_calls(&self) -> usize {
        self.notified.load(Ordering::SeqCst)
    }
}

fn created(group: &str, key: &str, new_value: Value) -> Value {
    json!({"type": "state", "event_type": "state:created", "group_id": group, "item_id": key,
           "old_value": null, "new_value": new_value})
}

fn updated(group: &str, key: &str, old_value: Value, new_value: Value) -> Value {
    json!({"type": "state", "event_type": "state:updated", "group_id": group, "item_id": key,
           "old_value": old_value, "new_value": new_value})
}

fn deleted(group: &str, key: &str, old_value: Value) -> Value {
    json!({"type": "state", "event_type": "state:deleted", "group_id": group, "item_id": key,
           "old_value": old_value, "new_value": null})
}

fn removed(group: &str, key: &str, old_value: Value, reason: &str) -> Value {
    json!({"type": "state", "event_type": "state:deleted", "group_id": group, "item_id": key,
           "old_value": old_value, "new_value": null, "reason": reason})
}

fn get(engine: &Engine, group: &str, key: &str) -> Option<String> {
    engine.get(group, key).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Expiry boundaries and visibility
// ---------------------------------------------------------------------------------------------

#[test]
fn an_item_is_visible_until_its_expiry_time_and_gone_exactly_at_it() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("1"));
    clock.advance(99);
    assert_eq!(
        get(&engine, "g", "k").as_deref(),
        Some("1"),
        "one ms before expiry"
    );
    clock.advance(1);
    assert_eq!(get(&engine, "g", "k"), None, "expired at expires_at == now");
    clock.advance(1);
    assert_eq!(get(&engine, "g", "k"), None);
}

#[test]
fn a_ttl_of_zero_milliseconds_still_keeps_the_item_for_one_millisecond() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(0)).unwrap();
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("1"));
    clock.advance(1);
    assert_eq!(get(&engine, "g", "k"), None);
}

#[test]
fn expired_items_are_invisible_to_every_read_before_any_sweep() {
    let (engine, clock) = engine_with_clock(None);
    engine
        .set("g", "a", r#"{"n":1}"#, Ttl::Millis(100))
        .unwrap();
    engine.set("g", "b", r#"{"n":2}"#, Ttl::Default).unwrap();
    engine
        .set("g", "c", r#"{"n":3}"#, Ttl::Millis(100))
        .unwrap();
    engine.set("h", "x", "true", Ttl::Millis(100)).unwrap();
    assert_eq!(engine.list_groups(), ["g", "h"]);

    clock.advance(100);
    assert_eq!(get(&engine, "g", "a"), None);
    assert_eq!(get(&engine, "g", "c"), None);
    assert_eq!(get(&engine, "h", "x"), None);
    assert_eq!(get(&engine, "g", "b").as_deref(), Some(r#"{"n":2}"#));
    assert_eq!(engine.group_json("g").unwrap(), r#"[{"n":2}]"#);
    assert_eq!(
        engine.entries_json("g").unwrap(),
        r#"[{"key":"b","value":{"n":2}}]"#
    );
    assert_eq!(engine.keys_json("g").unwrap(), r#"["b"]"#);
    let entries = engine.entries("g").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].key, "b");
    assert_eq!(engine.group_json("h").unwrap(), "[]");
    assert_eq!(engine.entries_json("h").unwrap(), "[]");
    assert_eq!(engine.keys_json("h").unwrap(), "[]");
    assert!(engine.entries("h").unwrap().is_empty());
    assert_eq!(
        engine.list_groups(),
        ["g"],
        "a group whose items all expired is not listed"
    );
}

#[test]
fn an_item_without_ttl_on_a_store_without_default_never_expires() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Default).unwrap();
    engine
        .update("g", "u", r#"[{"type":"set","path":"a","value":1}]"#)
        .unwrap();
    clock.advance(10 * 365 * 24 * 3600 * 1000);
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("1"));
    assert_eq!(get(&engine, "g", "u").as_deref(), Some(r#"{"a":1}"#));
}

// ---------------------------------------------------------------------------------------------
// The sweep
// ---------------------------------------------------------------------------------------------

#[test]
fn sweep_removes_only_due_items_and_fires_one_expired_event_each() {
    let (engine, clock) = engine_with_clock(None);
    engine
        .set("g", "a", r#"{"n":1}"#, Ttl::Millis(100))
        .unwrap();
    engine
        .set("g", "b", r#"{"n":2}"#, Ttl::Millis(200))
        .unwrap();
    engine.set("g", "c", r#"{"n":3}"#, Ttl::Default).unwrap();
    engine.set("h", "x", "\"x\"", Ttl::Millis(150)).unwrap();
    let subscriber = Subscriber::all(&engine);

    clock.advance(99);
    assert_eq!(engine.sweep_expired(), 0, "nothing is due yet");
    assert_eq!(subscriber.notify_calls(), 0);

    clock.advance(1);
    assert_eq!(engine.sweep_expired(), 1);
    assert_eq!(subscriber.notify_calls(), 1);
    assert_eq!(
        subscriber.events(),
        [removed("g", "a", json!({"n": 1}), "expired")]
    );
    assert_eq!(engine.keys_json("g").unwrap(), r#"["b","c"]"#);

    clock.advance(100);
    assert_eq!(engine.sweep_expired(), 2);
    // Different groups may sit in different shards, so their order is not specified.
    let mut events = subscriber.events();
    events.sort_by_key(|event| event["item_id"].as_str().map(String::from));
    assert_eq!(
        events,
        [
            removed("g", "b", json!({"n": 2}), "expired"),
            removed("h", "x", json!("x"), "expired"),
        ]
    );
    assert_eq!(engine.keys_json("g").unwrap(), r#"["c"]"#);
    assert_eq!(engine.list_groups(), ["g"]);

    clock.advance(1_000_000);
    assert_eq!(engine.sweep_expired(), 0, "each item expires once");
    assert!(subscriber.events().is_empty());
    assert_eq!(get(&engine, "g", "c").as_deref(), Some(r#"{"n":3}"#));
}

#[test]
fn reads_of_an_expired_item_fire_nothing_and_the_sweep_still_reports_it_once() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "7", Ttl::Millis(10)).unwrap();
    let subscriber = Subscriber::all(&engine);
    clock.advance(10);
    assert_eq!(get(&engine, "g", "k"), None);
    assert_eq!(engine.group_json("g").unwrap(), "[]");
    assert!(engine.list_groups().is_empty());
    assert_eq!(subscriber.notify_calls(), 0);
    assert_eq!(engine.sweep_expired(), 1);
    assert_eq!(
        subscriber.events(),
        [removed("g", "k", json!(7), "expired")]
    );
}

// ---------------------------------------------------------------------------------------------
// How writes treat expiry
// ---------------------------------------------------------------------------------------------

#[test]
fn update_keeps_the_items_expiry() {
    let (engine, clock) = engine_with_clock(Some(10_000));
    engine
        .set("g", "k", r#"{"n":0}"#, Ttl::Millis(100))
        .unwrap();
    clock.advance(60);
    let result = engine
        .update("g", "k", r#"[{"type":"increment","path":"n","by":1}]"#)
        .unwrap();
    assert_eq!(result.new_value, r#"{"n":1}"#);
    clock.advance(39);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some(r#"{"n":1}"#));
    clock.advance(1);
    assert_eq!(
        get(&engine, "g", "k"),
        None,
        "the update neither extended the TTL nor applied the default"
    );
    let subscriber = Subscriber::all(&engine);
    assert_eq!(engine.sweep_expired(), 1);
    assert_eq!(
        subscriber.events(),
        [removed("g", "k", json!({"n": 1}), "expired")]
    );
}

#[test]
fn update_keeps_an_item_without_expiry_without_expiry_even_with_a_default_ttl() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", r#"{"n":0}"#, Ttl::Default).unwrap();
    engine
        .update("g", "k", r#"[{"type":"increment","path":"n","by":1}]"#)
        .unwrap();
    clock.advance(1_000_000_000);
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some(r#"{"n":1}"#));
}

#[test]
fn set_without_ttl_uses_the_default_ttl_and_an_explicit_ttl_overrides_it() {
    let (engine, clock) = engine_with_clock(Some(100));
    engine.set("g", "default", "1", Ttl::Default).unwrap();
    engine.set("g", "longer", "2", Ttl::Millis(500)).unwrap();
    engine.set("g", "shorter", "3", Ttl::Millis(50)).unwrap();
    engine
        .update(
            "g",
            "created-by-update",
            r#"[{"type":"set","path":"a","value":1}]"#,
        )
        .unwrap();

    clock.advance(50);
    assert_eq!(get(&engine, "g", "shorter"), None);
    assert_eq!(get(&engine, "g", "default").as_deref(), Some("1"));
    clock.advance(49);
    assert_eq!(get(&engine, "g", "default").as_deref(), Some("1"));
    clock.advance(1);
    assert_eq!(get(&engine, "g", "default"), None);
    assert_eq!(
        get(&engine, "g", "created-by-update"),
        None,
        "an item created by update gets the default TTL"
    );
    assert_eq!(get(&engine, "g", "longer").as_deref(), Some("2"));
    assert_eq!(engine.sweep_expired(), 3);
    clock.advance(399);
    assert_eq!(get(&engine, "g", "longer").as_deref(), Some("2"));
    assert_eq!(engine.sweep_expired(), 0);
    clock.advance(1);
    assert_eq!(get(&engine, "g", "longer"), None);
    assert_eq!(engine.sweep_expired(), 1);
    assert!(engine.list_groups().is_empty());
}

#[test]
fn overwriting_an_item_with_a_longer_ttl_is_not_expired_early_by_the_old_index_entry() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    clock.advance(50);
    engine.set("g", "k", "2", Ttl::Millis(1000)).unwrap(); // now due at +1050
    let subscriber = Subscriber::all(&engine);
    clock.advance(50); // the first write's due time
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("2"));
    assert_eq!(subscriber.notify_calls(), 0);
    clock.advance(949);
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("2"));
    clock.advance(1);
    assert_eq!(engine.sweep_expired(), 1);
    assert_eq!(
        subscriber.events(),
        [removed("g", "k", json!(2), "expired")]
    );
}

#[test]
fn overwriting_an_item_without_ttl_removes_its_expiry() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    engine.set("g", "k", "2", Ttl::Default).unwrap();
    clock.advance(100);
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("2"));
}

#[test]
fn a_key_deleted_and_set_again_is_not_expired_by_the_deleted_items_ttl() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    engine.delete("g", "k").unwrap();
    engine.set("g", "k", "2", Ttl::Millis(300)).unwrap();
    clock.advance(100);
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("2"));
    clock.advance(200);
    assert_eq!(engine.sweep_expired(), 1);
}

#[test]
fn overwriting_an_item_with_a_shorter_ttl_expires_it_at_the_new_time() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(1000)).unwrap();
    engine.set("g", "k", "2", Ttl::Millis(100)).unwrap();
    clock.advance(100);
    assert_eq!(get(&engine, "g", "k"), None);
    assert_eq!(engine.sweep_expired(), 1);
    clock.advance(900);
    assert_eq!(engine.sweep_expired(), 0);
}

#[test]
fn update_of_an_expired_item_starts_from_an_empty_object_and_fires_expired_then_created() {
    let (engine, clock) = engine_with_clock(None);
    engine
        .set("g", "k", r#"{"n":5,"keep":true}"#, Ttl::Millis(100))
        .unwrap();
    clock.advance(100);
    let subscriber = Subscriber::all(&engine);
    let result = engine
        .update("g", "k", r#"[{"type":"increment","path":"n","by":1}]"#)
        .unwrap();
    assert_eq!(result.new_value, r#"{"n":1}"#);
    assert_eq!(result.old_value, None);
    assert_eq!(
        subscriber.events(),
        [
            removed("g", "k", json!({"n": 5, "keep": true}), "expired"),
            created("g", "k", json!({"n": 1})),
        ]
    );
    assert_eq!(
        engine.sweep_expired(),
        0,
        "the expired item is already gone"
    );
    assert!(subscriber.events().is_empty());
    clock.advance(1_000_000);
    assert_eq!(
        get(&engine, "g", "k").as_deref(),
        Some(r#"{"n":1}"#),
        "without a default TTL the recreated item does not expire"
    );
}

#[test]
fn set_over_an_expired_item_returns_no_old_value_and_fires_expired_then_created() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    clock.advance(100);
    let subscriber = Subscriber::all(&engine);
    assert_eq!(engine.set("g", "k", "2", Ttl::Default).unwrap(), None);
    assert_eq!(
        subscriber.events(),
        [
            removed("g", "k", json!(1), "expired"),
            created("g", "k", json!(2)),
        ]
    );
    assert_eq!(engine.sweep_expired(), 0);
    assert_eq!(get(&engine, "g", "k").as_deref(), Some("2"));
}

#[test]
fn delete_of_an_expired_item_returns_none_and_fires_only_an_expired_event() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "k", "1", Ttl::Millis(100)).unwrap();
    clock.advance(100);
    let subscriber = Subscriber::all(&engine);
    assert_eq!(engine.delete("g", "k").unwrap(), None);
    assert_eq!(
        subscriber.events(),
        [removed("g", "k", json!(1), "expired")]
    );
    assert_eq!(engine.sweep_expired(), 0);
    assert!(subscriber.events().is_empty());
    assert!(engine.list_groups().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Events of each write
// ---------------------------------------------------------------------------------------------

#[test]
fn set_update_and_delete_fire_events_of_the_exact_shape() {
    let (engine, _clock) = engine_with_clock(None);
    let subscriber = Subscriber::all(&engine);
    engine
        .set("orders", "o1", r#"{"status":"new"}"#, Ttl::Default)
        .unwrap();
    engine
        .set("orders", "o1", r#"{"status":"paid"}"#, Ttl::Default)
        .unwrap();
    engine
        .update(
            "orders",
            "o1",
            r#"[{"type":"set","path":"total","value":12}]"#,
        )
        .unwrap();
    engine.update("orders", "o2", r#"[]"#).unwrap();
    assert_eq!(
        engine.delete("orders", "o1").unwrap().as_deref(),
        Some(r#"{"status":"paid","total":12}"#)
    );
    assert_eq!(
        subscriber.events(),
        [
            created("orders", "o1", json!({"status": "new"})),
            updated(
                "orders",
                "o1",
                json!({"status": "new"}),
                json!({"status": "paid"})
            ),
            updated(
                "orders",
                "o1",
                json!({"status": "paid"}),
                json!({"status": "paid", "total": 12})
            ),
            created("orders", "o2", json!({})),
            deleted("orders", "o1", json!({"status": "paid", "total": 12})),
        ]
    );
}

#[test]
fn clear_fires_one_cleared_event_per_item_in_insertion_order() {
    let (engine, _clock) = engine_with_clock(None);
    engine.set("g", "a", "1", Ttl::Default).unwrap();
    engine.set("g", "b", "2", Ttl::Default).unwrap();
    engine.set("g", "c", "3", Ttl::Default).unwrap();
    engine.set("g", "a", "10", Ttl::Default).unwrap(); // keeps its place
    engine.delete("g", "b").unwrap();
    engine.set("g", "b", "20", Ttl::Default).unwrap(); // moves to the end
    engine.set("other", "x", "0", Ttl::Default).unwrap();
    let subscriber = Subscriber::all(&engine);
    assert_eq!(engine.clear("g").unwrap(), 3);
    assert_eq!(subscriber.notify_calls(), 1);
    assert_eq!(
        subscriber.events(),
        [
            removed("g", "a", json!(10), "cleared"),
            removed("g", "c", json!(3), "cleared"),
            removed("g", "b", json!(20), "cleared"),
        ]
    );
    assert_eq!(engine.list_groups(), ["other"]);
    assert_eq!(engine.clear("g").unwrap(), 0);
    assert!(
        subscriber.events().is_empty(),
        "clearing an empty group fires nothing"
    );
}

#[test]
fn clear_reports_already_expired_items_as_expired_and_counts_only_live_ones() {
    let (engine, clock) = engine_with_clock(None);
    engine.set("g", "short", "1", Ttl::Millis(10)).unwrap();
    engine.set("g", "long", "2", Ttl::Default).unwrap();
    clock.advance(10);
    let subscriber = Subscriber::all(&engine);
    assert_eq!(engine.clear("g").unwrap(), 1);
    assert_eq!(
        subscriber.events(),
        [
            removed("g", "short", json!(1), "expired"),
            removed("g", "long", json!(2), "cleared"),
        ]
    );
    assert_eq!(engine.sweep_expired(), 0);
    assert!(subscriber.events().is_empty());
}

#[test]
fn deleting_a_missing_key_or_a_rejected_write_fires_nothing() {
    let clock = ManualClock::new(START_MS);
    let engine = Engine::new(EngineOptions {
        max_value_bytes: Some(16),
        clock: clock.clone(),
        ..EngineOptions::default()
    });
    engine.shut_down();
    engine.set("g", "k", r#"{"s":"x"}"#, Ttl::Default).unwrap();
    let subscriber = Subscriber::all(&engine);

    assert_eq!(engine.delete("g", "missing").unwrap(), None);
    assert_eq!(engine.delete("no-such-group", "k").unwrap(), None);
    let rejected = [
        r#"[{"type":"test","path":"s","value":"y"},{"type":"set","path":"s","value":"z"}]"#,
        r#"[{"type":"increment","path":"s","by":1}]"#,
        r#"[{"type":"set","path":"s","value":"much too long for the limit"}]"#,
        r#"[{"type":"nonsense","path":"s"}]"#,
    ];
    for ops in rejected {
        assert!(
            engine.update("g", "k", ops).is_err(),
            "{ops} must be rejected"
        );
    }
    for ops in [rejected[0], rejected[2], rejected[3]] {
        assert!(
            engine.update("g", "new", ops).is_err(),
            "{ops} must be rejected on a new key"
        );
    }
    assert!(engine
        .set("g", "k", r#""much too long for the limit""#, Ttl::Default)
        .is_err());
    assert!(engine.set("", "k", "1", Ttl::Default).is_err());
    assert!(engine.clear("no-such-group").is_ok());

    assert_eq!(subscriber.notify_calls(), 0);
    assert_eq!(subscriber.queue.drain(), "[]");
    assert_eq!(engine.keys_json("g").unwrap(), r#"["k"]"#);
}

#[test]
fn notify_is_called_once_per_batch_and_again_after_a_drain() {
    let (engine, _clock) = engine_with_clock(None);
    let subscriber = Subscriber::all(&engine);
    for n in 0..10 {
        engine.set("g", "k", &n.to_string(), Ttl::Default).unwrap();
    }
    assert_eq!(subscriber.notify_calls(), 1);
    assert_eq!(subscriber.events().len(), 10);
    engine.delete("g", "k").unwrap();
    assert_eq!(subscriber.notify_calls(), 2);
    assert_eq!(subscriber.events(), [deleted("g", "k", json!(9))]);
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

#[test]
fn a_group_filter_receives_every_key_of_its_group_and_nothing_else() {
    let (engine, _clock) = engine_with_clock(None);
    let orders = Subscriber::new(&engine, Some("orders"), None);
    engine.set("orders", "o1", "1", Ttl::Default).unwrap();
    engine.set("users", "o1", "2", Ttl::Default).unwrap();
    engine.set("orders2", "o1", "3", Ttl::Default).unwrap();
    engine.set("orders", "o2", "4", Ttl::Default).unwrap();
    engine.clear("users").unwrap();
    engine.delete("orders", "o1").unwrap();
    assert_eq!(
        orders.events(),
        [
            created("orders", "o1", json!(1)),
            created("orders", "o2", json!(4)),
            deleted("orders", "o1", json!(1)),
        ]
    );
}

#[test]
fn a_key_filter_receives_only_that_key_of_that_group() {
    let (engine, clock) = engine_with_clock(None);
    let one_key = Subscriber::new(&engine, Some("orders"), Some("o1"));
    let key_in_any_group = Subscriber::new(&engine, None, Some("o1"));
    engine.set("orders", "o1", "1", Ttl::Millis(100)).unwrap();
    engine.set("orders", "o2", "2", Ttl::Millis(100)).unwrap();
    engine.set("users", "o1", "3", Ttl::Default).unwrap();
    clock.advance(100);
    assert_eq!(engine.sweep_expired(), 2);
    assert_eq!(
        one_key.events(),
        [
            created("orders", "o1", json!(1)),
            removed("orders", "o1", json!(1), "expired"),
        ]
    );
    let mut any_group = key_in_any_group.events();
    assert_eq!(any_group.len(), 3);
    any_group.retain(|event| event["group_id"] == "users");
    assert_eq!(any_group, [created("users", "o1", json!(3))]);
}

#[test]
fn a_removed_subscriber_receives_nothing_more() {
    let (engine, _clock) = engine_with_clock(None);
    let notified = Arc::new(AtomicUsize::new(0));
    let counter = notified.clone();
    let (id, queue) = engine.events().subscribe(
        Filter::default(),
        Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        }),
    );
    engine.set("g", "k", "1", Ttl::Default).unwrap();
    assert_eq!(
        queue.drain(),
        r#"[{"type":"state","event_type":"state:created","group_id":"g","item_id":"k","old_value":null,"new_value":1}]"#
    );
    engine.events().unsubscribe(id);
    engine.events().unsubscribe(id);
    engine.set("g", "k", "2", Ttl::Default).unwrap();
    assert_eq!(queue.drain(), "[]");
    assert_eq!(notified.load(Ordering::SeqCst), 1);
    assert!(!engine.events().has_subscribers());
}

#[test]
fn many_writes_to_other_groups_never_call_notify() {
    let (engine, clock) = engine_with_clock(None);
    let watched = Subscriber::new(&engine, Some("watched"), None);
    let watched_key = Subscriber::new(&engine, Some("other-0"), Some("never-written"));
    for n in 0..10_000 {
        let group = format!("other-{}", n % 50);
        let key = format!("k{}", n % 7);
        engine
            .set(&group, &key, &n.to_string(), Ttl::Millis(5))
            .unwrap();
        engine
            .update(
                &group,
                &key,
                r#"[{"type":"set","path":"","value":{"a":1}}]"#,
            )
            .unwrap();
        if n % 3 == 0 {
            engine.delete(&group, &key).unwrap();
        }
        if n % 1000 == 999 {
            engine.clear(&group).unwrap();
            clock.advance(10);
            engine.sweep_expired();
        }
    }
    assert_eq!(watched.notify_calls(), 0);
    assert_eq!(watched.queue.drain(), "[]");
    assert_eq!(watched_key.notify_calls(), 0);
    assert_eq!(watched_key.queue.drain(), "[]");
    engine.set("watched", "k", "1", Ttl::Default).unwrap();
    assert_eq!(watched.notify_calls(), 1);
    assert_eq!(watched.events(), [created("watched", "k", json!(1))]);
}

// ---------------------------------------------------------------------------------------------
// Order under concurrency
// ---------------------------------------------------------------------------------------------

/// The events per key, in the order the subscriber received them.
fn by_key(events: Vec<Value>) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut keys = std::collections::BTreeMap::<String, Vec<Value>>::new();
    for event in events {
        let key = format!(
            "{}/{}",
            event["group_id"].as_str().unwrap(),
            event["item_id"].as_str().unwrap()
        );
        keys.entry(key).or_default().push(event);
    }
    keys
}

#[test]
fn each_keys_events_carry_strictly_increasing_counters_under_concurrent_updates() {
    const THREADS: usize = 4;
    const KEYS: usize = 3;
    const ROUNDS: usize = 400;
    let (engine, _clock) = engine_with_clock(None);
    let subscriber = Arc::new(Subscriber::all(&engine));

    // A drainer takes batches while the writers run, as the JS thread does.
    let writers_done = Arc::new(AtomicBool::new(false));
    let drainer = {
        let subscriber = subscriber.clone();
        let writers_done = writers_done.clone();
        thread::spawn(move || {
            let mut received = Vec::new();
            loop {
                let finished = writers_done.load(Ordering::SeqCst);
                received.extend(subscriber.events());
                if finished {
                    return received;
                }
                thread::yield_now();
            }
        })
    };
    let barrier = Arc::new(Barrier::new(THREADS));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = engine.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                for round in 0..ROUNDS {
                    let key = format!("k{}", (round + t) % KEYS);
                    engine
                        .update(
                            "counters",
                            &key,
                            r#"[{"type":"increment","path":"n","by":1}]"#,
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    writers_done.store(true, Ordering::SeqCst);
    let received = drainer.join().unwrap();

    assert_eq!(received.len(), THREADS * ROUNDS);
    let keys = by_key(received);
    assert_eq!(keys.len(), KEYS);
    let mut total = 0;
    for (key, events) in keys {
        let counters: Vec<u64> = events
            .iter()
            .map(|event| event["new_value"]["n"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=counters.len() as u64).collect();
        assert_eq!(counters, expected, "events of {key} out of commit order");
        assert_eq!(events[0]["event_type"], "state:created");
        assert_eq!(
            engine
                .get("counters", key.trim_start_matches("counters/"))
                .unwrap(),
            Some(format!("{{\"n\":{}}}", counters.len()))
        );
        total += counters.len();
    }
    assert_eq!(total, THREADS * ROUNDS);
}

/// Where a key's events stop forming a chain, if they do: every event's `old_value` must be the
/// previous event's `new_value` (null for the first event and after a removal).
fn chain_break(events: &[Value], key: &str) -> Option<String> {
    let mut current = Value::Null;
    for (position, event) in events.iter().enumerate() {
        if event["old_value"] != current {
            return Some(format!(
                "event {position} of {key} ({event}) does not follow a value of {current}: \
                 events out of commit order"
            ));
        }
        current = event["new_value"].clone();
    }
    None
}

fn assert_chained(events: &[Value], key: &str) {
    if let Some(message) = chain_break(events, key) {
        panic!("{message}");
    }
}

/// What one thread of the test below does in each round.
type Work = Box<dyn Fn(&Engine, u64) + Send>;

#[test]
fn events_of_one_key_stay_in_commit_order_while_other_threads_delete_clear_and_expire_it() {
    const ROUNDS: u64 = 3000;
    let (engine, clock) = engine_with_clock(None);
    let subscriber = Subscriber::new(&engine, Some("g"), None);
    let barrier = Arc::new(Barrier::new(4));
    let spawn = |work: Work| {
        let engine = engine.clone();
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            for round in 0..ROUNDS {
                work(&engine, round);
            }
        })
    };
    let clock_for_sweeper = clock.clone();
    let threads = vec![
        spawn(Box::new(|engine, round| {
            engine
                .set("g", "k", &round.to_string(), Ttl::Millis(3))
                .unwrap();
        })),
        spawn(Box::new(|engine, _| {
            // Fails (and fires nothing) while the value is a number; creates an object otherwise.
            let _ = engine.update("g", "k", r#"[{"type":"set","path":"by","value":"update"}]"#);
        })),
        spawn(Box::new(|engine, round| {
            if round % 2 == 0 {
                engine.clear("g").unwrap();
            } else {
                engine.delete("g", "k").unwrap();
            }
        })),
        spawn(Box::new(move |engine, _| {
            clock_for_sweeper.advance(1);
            engine.sweep_expired();
        })),
    ];
    for thread in threads {
        thread.join().unwrap();
    }
    let events = subscriber.events();
    assert!(events.len() as u64 >= ROUNDS);
    let keys = by_key(events);
    for (key, events) in &keys {
        assert_chained(events, key);
    }
}

#[test]
fn a_write_racing_with_clear_cannot_have_its_event_delivered_before_the_cleared_event() {
    // Deterministic form of the race: while `clear` publishes its first event, another thread
    // writes the key that `clear` removes next, and the notify callback waits (bounded) for
    // that write. An engine that publishes `clear`'s events under the locks that order writes
    // makes the writer wait until `clear` is done; one that publishes after releasing them
    // lets the new item's `created` event slip in before the old item's `cleared` event.
    let (engine, _clock) = engine_with_clock(None);
    engine.set("g", "a", "1", Ttl::Default).unwrap();
    engine.set("g", "k", r#""old""#, Ttl::Default).unwrap();

    let writer: Arc<std::sync::Mutex<Option<thread::JoinHandle<()>>>> = Arc::default();
    let fired = Arc::new(AtomicBool::new(false));
    let weak_engine = Arc::downgrade(&engine);
    let notify = {
        let writer = writer.clone();
        let fired = fired.clone();
        Box::new(move || {
            if !fired.swap(true, Ordering::SeqCst) {
                let engine = weak_engine.upgrade().unwrap();
                let (done, wait) = std::sync::mpsc::channel();
                *writer.lock().unwrap() = Some(thread::spawn(move || {
                    engine.set("g", "k", r#""new""#, Ttl::Default).unwrap();
                    let _ = done.send(());
                }));
                let _ = wait.recv_timeout(std::time::Duration::from_millis(500));
            }
            true
        })
    };
    let (_, queue) = engine.events().subscribe(
        Filter {
            group: Some("g".into()),
            key: None,
        },
        notify,
    );
    assert_eq!(engine.clear("g").unwrap(), 2);
    let handle = writer.lock().unwrap().take();
    handle.expect("clear fired an event").join().unwrap();

    let events: Vec<Value> = serde_json::from_str(&queue.drain()).unwrap();
    let keys = by_key(events);
    assert_eq!(
        keys["g/k"],
        [
            removed("g", "k", json!("old"), "cleared"),
            created("g", "k", json!("new")),
        ],
        "the events of g/k must follow commit order"
    );
    assert_eq!(get(&engine, "g", "k").as_deref(), Some(r#""new""#));
}
