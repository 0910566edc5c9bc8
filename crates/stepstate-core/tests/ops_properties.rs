//! Property tests of the UpdateOp engine: random values and random op lists (well-formed,
//! malformed, deep and odd paths) never panic; a failed update leaves the original untouched
//! when applied as the engine does (to a copy that is dropped on error); every successful
//! result is JSON that reads back as itself; integer increments are exact; a `test` of the
//! current value always passes.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use stepstate_core::ops::{apply_ops, apply_to_text, apply_to_text_with_members, parse_ops};

const CASES: u32 = 384;

fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![Just(1e308), Just(-1e308), Just(0.1), Just(0.5), Just(-0.0)]
            .prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "0", "1", "items", "n", "s"]).prop_map(String::from),
        1 => prop::sample::select(vec!["", "-", "01", "x.y", "a/b", "~", "__proto__", "constructor"])
            .prop_map(String::from),
        1 => "\\PC{0,4}",
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// A segment for paths: likely keys and indexes, the special ones, and noise.
fn segment() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c", "n", "s", "items", "0", "1", "2", "-"]).prop_map(String::from),
        1 => prop::sample::select(vec![
            "", "01", "-1", "99999999999999999999999", "x.y", "a/b", "~", "~1", "__proto__",
            "constructor", "prototype",
        ])
        .prop_map(String::from),
        1 => "\\PC{0,5}",
    ]
    .boxed()
}

fn segments() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        8 => prop::collection::vec(segment(), 0..5),
        1 => prop::collection::vec(segment(), 90..130),
    ]
    .boxed()
}

fn pointer_of(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Paths in every spelling, plus malformed ones.
fn path() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => segments().prop_map(|s| Value::from(s.join("."))),
        3 => segments().prop_map(|s| Value::from(s.into_iter().map(Value::from).collect::<Vec<_>>())),
        3 => segments().prop_map(|s| Value::from(pointer_of(&s))),
        1 => "\\PC{0,8}".prop_map(Value::from),
        1 => prop::sample::select(vec!["/a~2", "/~", "a..b", "."]).prop_map(Value::from),
        1 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
    ]
    .boxed()
}

fn op_name() -> BoxedStrategy<(Option<&'static str>, Option<&'static str>)> {
    let types = vec![
        "set",
        "merge",
        "increment",
        "decrement",
        "append",
        "remove",
        "test",
        "add",
        "bogus",
    ];
    let ops = vec![
        "add",
        "replace",
        "test",
        "remove",
        "increment",
        "set",
        "move",
    ];
    prop_oneof![
        6 => prop::sample::select(types).prop_map(|t| (Some(t), None)),
        4 => prop::sample::select(ops).prop_map(|o| (None, Some(o))),
        1 => Just((Some("set"), Some("add"))),
        1 => Just((None, None)),
    ]
    .boxed()
}

/// One op object, most well-formed, some missing or mistyped fields.
fn op() -> BoxedStrategy<Value> {
    let shaped = (
        op_name(),
        prop::option::weighted(0.9, path()),
        prop::option::weighted(
            0.85,
            prop_oneof![3 => json_value(), 1 => prop::collection::vec((key(), json_value()), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()))],
        ),
        prop::option::weighted(0.8, scalar()),
    )
        .prop_map(|((type_name, op_name), path, value, by)| {
            let mut object = Map::new();
            if let Some(name) = type_name {
                object.insert("type".into(), name.into());
            }
            if let Some(name) = op_name {
                object.insert("op".into(), name.into());
            }
            if let Some(path) = path {
                object.insert("path".into(), path);
            }
            if let Some(value) = value {
                object.insert("value".into(), value);
            }
            if let Some(by) = by {
                object.insert("by".into(), by);
            }
            Value::Object(object)
        });
    prop_oneof![8 => well_formed_op(), 3 => shaped, 1 => json_value()].boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (-1000i64..1000).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        1 => prop::sample::select(vec![0.1, 0.5, 1e308, -1e308, 9007199254740991.0]).prop_map(Value::from),
    ]
    .boxed()
}

fn object() -> BoxedStrategy<Value> {
    prop::collection::vec((key(), json_value()), 0..3)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
        .boxed()
}

/// Paths that usually parse: common segments in every spelling, sometimes very deep.
fn good_path() -> BoxedStrategy<Value> {
    let common = || {
        prop::sample::select(vec!["a", "b", "c", "n", "s", "items", "0", "1", "2", "-"])
            .prop_map(String::from)
    };
    let clean = prop_oneof![
        12 => prop::collection::vec(common(), 0..5),
        1 => prop::collection::vec(common(), 90..130),
    ];
    prop_oneof![
        6 => clean.prop_map(|s| {
            if s.is_empty() {
                Value::from("")
            } else {
                Value::from(s.join("."))
            }
        }),
        2 => segments().prop_map(|s| Value::from(s.into_iter().map(Value::from).collect::<Vec<_>>())),
        2 => segments().prop_map(|s| Value::from(pointer_of(&s))),
        1 => path(),
    ]
    .boxed()
}

/// Ops whose fields match their name, so that most lists get past parsing.
fn well_formed_op() -> BoxedStrategy<Value> {
    prop_oneof![
        (good_path(), json_value())
            .prop_map(|(p, v)| json!({"type": "set", "path": p, "value": v})),
        (prop::option::of(good_path()), object()).prop_map(|(p, v)| match p {
            Some(p) => json!({"type": "merge", "path": p, "value": v}),
            None => json!({"type": "merge", "value": v}),
        }),
        (good_path(), number(), any::<bool>()).prop_map(|(p, by, down)| {
            json!({"type": if down { "decrement" } else { "increment" }, "path": p, "by": by})
        }),
        (prop::option::of(good_path()), json_value()).prop_map(|(p, v)| match p {
            Some(p) => json!({"type": "append", "path": p, "value": v}),
            None => json!({"type": "append", "value": v}),
        }),
        good_path().prop_map(|p| json!({"type": "remove", "path": p})),
        (good_path(), json_value())
            .prop_map(|(p, v)| json!({"type": "test", "path": p, "value": v})),
        (
            prop::sample::select(vec!["add", "replace", "test"]),
            good_path(),
            json_value()
        )
            .prop_map(|(name, p, v)| json!({"op": name, "path": p, "value": v})),
        good_path().prop_map(|p| json!({"op": "remove", "path": p})),
        (good_path(), number())
            .prop_map(|(p, v)| json!({"op": "increment", "path": p, "value": v})),
    ]
    .boxed()
}

/// Op lists: mostly well-formed ones that reach the apply step, some mixed with malformed ops.
fn op_list() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::collection::vec(well_formed_op(), 1..5).prop_map(Value::Array),
        1 => prop::collection::vec(op(), 0..5).prop_map(Value::Array),
    ]
    .boxed()
}

/// Ops that each write one top-level member and nothing else (`set`, `increment`, `decrement`
/// of a one-segment path, in each spelling), the most common updates, which `partial.rs` applies
/// to the members held apart from their object.
fn member_write() -> BoxedStrategy<Value> {
    let name = || {
        prop::sample::select(vec!["a", "b", "n", "s", "new", "a\"q", "é"]).prop_map(String::from)
    };
    let path = || {
        prop_oneof![
            3 => name().prop_map(Value::from),
            1 => name().prop_map(|n| json!([n])),
        ]
    };
    prop_oneof![
        (path(), json_value()).prop_map(|(p, v)| json!({"type": "set", "path": p, "value": v})),
        (path(), number(), any::<bool>()).prop_map(|(p, by, down)| {
            json!({"type": if down { "decrement" } else { "increment" }, "path": p, "by": by})
        }),
        (path(), number()).prop_map(|(p, v)| json!({"op": "increment", "path": p, "value": v})),
    ]
    .boxed()
}

/// Stored objects with members the member writes name, numbers among them, as text.
fn stored_object() -> BoxedStrategy<String> {
    let name = prop::sample::select(vec!["a", "b", "n", "s", "other", "a\"q", "é"]);
    let value = prop_oneof![2 => number(), 1 => json_value()];
    prop::collection::vec((name, value), 0..6)
        .prop_map(|members| {
            let mut seen = Vec::new();
            let members: Vec<String> = members
                .iter()
                .filter(|(name, _)| {
                    let first = !seen.contains(name);
                    seen.push(*name);
                    first
                })
                .map(|(name, value)| format!("{}:{}", Value::from(*name), value))
                .collect();
            format!("{{{}}}", members.join(","))
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn member_writes_give_exactly_what_the_full_tree_gives(
        stored in stored_object(),
        ops in prop::collection::vec(member_write(), 1..6),
    ) {
        let parsed = parse_ops(&Value::Array(ops).to_string()).expect("member writes parse");
        let mut tree: Value = serde_json::from_str(&stored).expect("stored text parses");
        let full = apply_ops(&mut tree, &parsed)
            .map(|()| serde_json::to_string(&tree).expect("result serializes"));
        let applied = apply_to_text_with_members(Some(&stored), &parsed);
        prop_assert_eq!(applied.as_ref().map(|a| a.text.clone()).map_err(Clone::clone), full);
        // The changed members, set in order on the old value, give the new value.
        if let Ok(applied) = applied {
            if let Some(members) = applied.members {
                let members: serde_json::Map<String, Value> =
                    serde_json::from_str(&members).expect("members are a JSON object");
                let mut patched: Value = serde_json::from_str(&stored).expect("stored text parses");
                let object = patched.as_object_mut().expect("an object");
                for (name, value) in members {
                    object.insert(name, value);
                }
                prop_assert_eq!(serde_json::to_string(&patched).expect("serializes"), applied.text);
            }
        }
    }

    #[test]
    fn random_ops_never_panic_and_failures_leave_the_original_unchanged(
        original in json_value(),
        ops in op_list(),
    ) {
        let Ok(parsed) = parse_ops(&ops.to_string()) else {
            return Ok(());
        };
        // What the engine does: apply to a copy, keep it only on success.
        let mut copy = original.clone();
        match apply_ops(&mut copy, &parsed) {
            Ok(()) => {
                let text = serde_json::to_string(&copy).expect("result serializes");
                let reread: Value = serde_json::from_str(&text).expect("result reads back");
                prop_assert_eq!(reread, copy);
            }
            Err(err) => {
                prop_assert!(err.op_index().is_some_and(|i| i < parsed.len()), "{:?}", err);
                prop_assert!(err.to_string().starts_with("op "), "{}", err);
                drop(copy);
                let kept: Value = serde_json::from_str(&original.to_string()).expect("original reads back");
                prop_assert_eq!(kept, original);
            }
        }
    }

    #[test]
    fn applying_to_stored_text_gives_exactly_what_the_full_tree_gives(
        original in prop_oneof![3 => object(), 1 => json_value()],
        ops in op_list(),
    ) {
        let Ok(parsed) = parse_ops(&ops.to_string()) else {
            return Ok(());
        };
        let stored = serde_json::to_string(&original).expect("original serializes");
        let mut tree = original.clone();
        let full = apply_ops(&mut tree, &parsed)
            .map(|()| serde_json::to_string(&tree).expect("result serializes"));
        prop_assert_eq!(apply_to_text(Some(&stored), &parsed), full);
    }

    #[test]
    fn the_changed_members_set_on_the_old_value_give_the_new_value(
        original in object(),
        ops in op_list(),
    ) {
        let Ok(parsed) = parse_ops(&ops.to_string()) else {
            return Ok(());
        };
        let stored = serde_json::to_string(&original).expect("original serializes");
        let Ok(applied) = apply_to_text_with_members(Some(&stored), &parsed) else {
            return Ok(());
        };
        let Some(members) = applied.members else {
            return Ok(());
        };
        // What the JS read cache does with them: set each member, in order, on a copy.
        let members: serde_json::Map<String, Value> =
            serde_json::from_str(&members).expect("members are a JSON object");
        let mut patched = original.clone();
        let object = patched.as_object_mut().expect("an object");
        for (name, value) in members {
            object.insert(name, value);
        }
        let new: Value = serde_json::from_str(&applied.text).expect("new text reads back");
        prop_assert_eq!(
            serde_json::to_string(&patched).expect("serializes"),
            serde_json::to_string(&new).expect("serializes")
        );
    }

    #[test]
    fn parse_errors_name_an_op_index_within_the_list(ops in op_list()) {
        let count = ops.as_array().map_or(0, Vec::len);
        if let Err(err) = parse_ops(&ops.to_string()) {
            let index = err.op_index().expect("parse errors of an array name an op");
            prop_assert!(index < count);
            prop_assert!(matches!(err.code(), "INVALID_OP" | "path.proto_polluted"), "{}", err.code());
        }
    }

    #[test]
    fn parse_ops_never_panics_on_arbitrary_text(text in "\\PC{0,64}") {
        let _ = parse_ops(&text);
    }

    #[test]
    fn parse_ops_never_panics_on_json_like_text(text in "[\\[\\]{}\",:0-9a-z~/._ -]{0,64}") {
        let _ = parse_ops(&text);
    }

    #[test]
    fn increments_of_random_integers_are_exact(
        start in -(1i64 << 40)..(1i64 << 40),
        steps in prop::collection::vec((any::<bool>(), -(1i64 << 40)..(1i64 << 40)), 0..8),
    ) {
        let ops: Vec<Value> = steps
            .iter()
            .map(|(down, by)| json!({"type": if *down { "decrement" } else { "increment" }, "path": "n", "by": by}))
            .collect();
        let parsed = parse_ops(&Value::from(ops).to_string()).expect("parses");
        let mut value = json!({"n": start});
        apply_ops(&mut value, &parsed).expect("applies");
        let expected = steps
            .iter()
            .fold(i128::from(start), |acc, (down, by)| if *down { acc - i128::from(*by) } else { acc + i128::from(*by) });
        prop_assert_eq!(value["n"].as_i64().map(i128::from), Some(expected));
    }

    #[test]
    fn a_test_of_the_current_value_always_passes(original in json_value(), choice in any::<prop::sample::Index>()) {
        let mut paths: Vec<Vec<String>> = Vec::new();
        collect_paths(&original, &mut Vec::new(), &mut paths);
        let chosen = choice.get(&paths).clone();
        let Some(expected) = value_at(&original, &chosen) else {
            return Err(TestCaseError::fail("collected path must resolve"));
        };
        if chosen.iter().any(|s| ["__proto__", "constructor", "prototype"].contains(&s.as_str())) {
            return Ok(());
        }
        let mut ops = vec![json!({"type": "test", "path": chosen.clone(), "value": expected.clone()})];
        ops.push(json!({"op": "test", "path": pointer_of(&chosen), "value": expected}));
        let parsed = parse_ops(&Value::from(ops).to_string()).expect("parses");
        let mut copy = original.clone();
        prop_assert!(apply_ops(&mut copy, &parsed).is_ok());
        prop_assert_eq!(copy, original);
    }

    #[test]
    fn a_prototype_segment_anywhere_is_always_refused(
        before in prop::collection::vec(segment(), 0..3),
        bad in prop::sample::select(vec!["__proto__", "constructor", "prototype"]),
        after in prop::collection::vec(segment(), 0..3),
        spelling in 0..3u8,
    ) {
        let mut all = before;
        all.push(bad.to_string());
        all.extend(after);
        let path = match spelling {
            0 => Value::from(all.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>()),
            1 => Value::from(pointer_of(&all)),
            _ => Value::from(all.join(".")),
        };
        // A dotted spelling of odd segments reads back differently (an empty segment is
        // malformed, a segment with a dot splits, a leading "/" makes a pointer): skip those.
        let dotted_is_faithful = !all.iter().any(|s| s.is_empty() || s.contains('.'))
            && !all[0].starts_with('/');
        prop_assume!(spelling != 2 || dotted_is_faithful);
        let ops = json!([{"type": "set", "path": path, "value": 1}]);
        let err = parse_ops(&ops.to_string()).expect_err("refused");
        prop_assert_eq!(err.code(), "path.proto_polluted");
    }

    #[test]
    fn set_then_test_of_the_same_path_passes(original in json_value(), value in json_value(), path in segments()) {
        // "-" names a new element each time, so it cannot be read back by the same path.
        prop_assume!(!path.iter().any(|s| s == "-"));
        let ops = json!([
            {"type": "set", "path": path.clone(), "value": value.clone()},
            {"type": "test", "path": path, "value": value}
        ]);
        let Ok(parsed) = parse_ops(&ops.to_string()) else {
            return Ok(());
        };
        let mut copy = original;
        match apply_ops(&mut copy, &parsed) {
            Ok(()) => {}
            // The set may fail on its path; it must never be the test that fails after it.
            Err(err) => prop_assert_eq!(err.op_index(), Some(0), "{}", err),
        }
    }
}

/// Every path to a value inside `value` (the root included), as literal segments.
fn collect_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(key.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(index.to_string());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn value_at<'v>(value: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

mod common;

/// What an update did: the new value's text, or the error's code and op index.
fn outcome(
    result: stepstate_core::Result<stepstate_core::WriteResult>,
) -> Result<String, (String, Option<usize>)> {
    result
        .map(|written| written.new_value)
        .map_err(|err| (err.code().to_string(), err.op_index()))
}

#[test]
fn random_op_lists_give_the_same_values_and_errors_on_memory_and_on_redis() {
    use proptest::test_runner::{Config, TestRunner};
    use stepstate_core::store::{RedisOptions, RedisStore};
    use stepstate_core::{Engine, EngineOptions, Ttl};
    let Some(_server) = common::redis::RedisServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut options = RedisOptions::new(_server.url());
    options.prefix = "props:".into();
    let redis = runtime.block_on(RedisStore::open(options)).unwrap();
    let memory = Engine::new(EngineOptions::default());
    let mut runner = TestRunner::new(Config::with_cases(96));
    let strategy = (prop_oneof![3 => object(), 1 => json_value()], op_list());
    let cases = std::cell::Cell::new(0u64);
    runner
        .run(&strategy, |(original, ops)| {
            cases.set(cases.get() + 1);
            let original = original.to_string();
            let ops = ops.to_string();
            let key = format!("k{}", cases.get());
            memory.set("g", &key, &original, Ttl::Default).unwrap();
            let on_memory = outcome(memory.update("g", &key, &ops));
            let on_redis = runtime.block_on(async {
                redis
                    .set("g", &key, original.clone(), Ttl::Default)
                    .await
                    .unwrap();
                outcome(redis.update("g", &key, &ops).await)
            });
            prop_assert_eq!(&on_memory, &on_redis);
            // A failed update changed nothing on either.
            let stored = runtime.block_on(redis.get("g", &key)).unwrap();
            prop_assert_eq!(memory.get("g", &key).unwrap(), stored.map(|(text, _)| text));
            Ok(())
        })
        .unwrap();
}
