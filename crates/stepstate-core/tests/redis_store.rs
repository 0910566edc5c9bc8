//! The Redis store against real `redis-server` processes that the tests start on free loopback
//! ports (never the one on 6379) and stop by pid. Without a `redis-server` binary the tests say
//! so loudly and pass, except under `CI=true`, where that is a failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use stepstate_core::store::{RedisOptions, RedisStore};
use stepstate_core::Ttl;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A plain connection to the server, to look at or change what the store keeps.
async fn admin(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn open(server: &RedisServer, prefix: &str) -> Arc<RedisStore> {
    let mut options = RedisOptions::new(server.url());
    options.prefix = prefix.into();
    RedisStore::open(options).await.unwrap()
}

#[test]
fn set_get_delete_and_insertion_order_behave_as_in_memory() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let store = open(&server, "t1:").await;
        assert_eq!(
            store
                .set("g", "a", "1".into(), Ttl::Default)
                .await
                .unwrap()
                .old,
            None
        );
        store
            .set("g", "b", "[]".into(), Ttl::Default)
            .await
            .unwrap();
        let replaced = store
            .set("g", "a", "{}".into(), Ttl::Default)
            .await
            .unwrap();
        assert_eq!(replaced.old.as_deref(), Some("1"));
        assert!(replaced.version > replaced.old_version);
        assert_eq!(store.group_json("g").await.unwrap(), "[{},[]]");
        let removed = store.delete("g", "a").await.unwrap().unwrap();
        assert_eq!(&*removed.old, "{}");
        assert_eq!(store.delete("g", "a").await.unwrap(), None);
        store
            .set("g", "a", "9007199254740991".into(), Ttl::Default)
            .await
            .unwrap();
        assert_eq!(store.keys_json("g").await.unwrap(), r#"["b","a"]"#);
        assert_eq!(
            store.entries_json("g").await.unwrap(),
            r#"[{"key":"b","value":[]},{"key":"a","value":9007199254740991}]"#
        );
        assert_eq!(
            store.get("g", "a").await.unwrap().unwrap().0,
            "9007199254740991"
        );
        assert_eq!(store.get("g", "zz").await.unwrap(), None);
        store
            .set("a:b/c", "é\u{1F600}", "\"x\"".into(), Ttl::Default)
            .await
            .unwrap();
        assert_eq!(store.list_groups().await.unwrap(), ["a:b/c", "g"]);
        assert_eq!(store.clear("g").await.unwrap(), 2);
        assert_eq!(store.list_groups().await.unwrap(), ["a:b/c"]);
        assert_eq!(store.group_json("g").await.unwrap(), "[]");
    });
}

#[test]
fn concurrent_updates_from_two_stores_lose_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        // Two stores are two sets of connections, as two processes would have.
        let first = open(&server, "t2:").await;
        let second = open(&server, "t2:").await;
        let mut tasks = Vec::new();
        for store in [first.clone(), second.clone(), first.clone(), second.clone()] {
            tasks.push(tokio::spawn(async move {
                for _ in 0..250 {
                    store
                        .update("c", "n", r#"[{"type":"increment","path":"n","by":1}]"#)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            first.get("c", "n").await.unwrap().unwrap().0,
            r#"{"n":1000}"#
        );
    });
}

#[test]
fn old_values_are_exact_whether_this_process_holds_them_or_another_wrote_since() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let first = open(&server, "t9:").await;
        let second = open(&server, "t9:").await;
        let n = |n: u32| format!(r#"{{"n":{n}}}"#);
        let set = |store: &Arc<RedisStore>, value: u32| store.set("g", "k", n(value), Ttl::Default);
        let old = |text: Option<Box<str>>| text.map(String::from);
        assert_eq!(old(set(&first, 1).await.unwrap().old), None);
        // The old value is the one this process wrote, which Redis need not send back...
        assert_eq!(old(set(&first, 2).await.unwrap().old), Some(n(1)));
        // ...or the one another process wrote since, which it must.
        assert_eq!(old(set(&second, 3).await.unwrap().old), Some(n(2)));
        assert_eq!(old(set(&first, 4).await.unwrap().old), Some(n(3)));
        let ops = r#"[{"type":"increment","path":"n","by":1}]"#;
        let updated = first.update("g", "k", ops).await.unwrap();
        assert_eq!((updated.old_value, updated.new_value), (Some(n(4)), n(5)));
        assert_eq!(old(set(&second, 10).await.unwrap().old), Some(n(5)));
        // This process's value is stale: its compare-and-set fails, and the ops run on 10.
        let updated = first.update("g", "k", ops).await.unwrap();
        assert_eq!((updated.old_value, updated.new_value), (Some(n(10)), n(11)));
        let updated = second.update("g", "k", ops).await.unwrap();
        assert_eq!((updated.old_value, updated.new_value), (Some(n(11)), n(12)));
        assert_eq!(first.get("g", "k").await.unwrap().unwrap().0, n(12));
    });
}

/// How many `EVALSHA` calls the server answered since its statistics were last reset.
async fn script_calls(admin: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(admin)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn an_update_of_an_item_this_process_never_saw_reads_it_first_and_stores_with_one_script_call() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let first = open(&server, "t-unseen:").await;
        let second = open(&server, "t-unseen:").await;
        let mut admin = admin(&server).await;
        let ops = r#"[{"type":"increment","path":"n","by":1}]"#;
        let mut fewest = u64::MAX;
        for attempt in 0..3 {
            let key = format!("k{attempt}");
            first
                .set("g", &key, r#"{"n":1}"#.into(), Ttl::Default)
                .await
                .unwrap();
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut admin)
                .await
                .unwrap();
            let updated = second.update("g", &key, ops).await.unwrap();
            assert_eq!(
                (updated.old_value.as_deref(), updated.new_value.as_str()),
                (Some(r#"{"n":1}"#), r#"{"n":2}"#)
            );
            fewest = fewest.min(script_calls(&mut admin).await);
        }
        // A compare-and-set made on a guess would fail and take a second script call. The
        // expiry sweeps of the two stores (every 250 ms) may add one to an attempt, not to all.
        assert_eq!(fewest, 1, "script calls of the update");
        // An item absent everywhere is read as absent, then created by the one script call.
        let created = second.update("g", "new", ops).await.unwrap();
        assert_eq!(
            (created.old_value, created.new_value.as_str()),
            (None, r#"{"n":1}"#)
        );
        first.close();
        second.close();
    });
}

#[test]
fn writes_batched_together_get_distinct_versions_that_keep_growing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let store = open(&server, "t10:").await;
        let other = open(&server, "t10:").await;
        let ops = r#"[{"type":"increment","path":"n","by":1}]"#;
        let mut highest = std::collections::HashMap::<&str, u64>::new();
        for round in 0..3u32 {
            // Made together, the calls travel in few batches, each writing several keys of
            // the same groups (sets and compare-and-sets), from two processes.
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..40u32 {
                let (store, group) = match i % 4 {
                    0 | 1 => (store.clone(), "g"),
                    2 => (other.clone(), "g"),
                    _ => (store.clone(), "h"),
                };
                let key = format!("k{i}");
                calls.spawn(async move {
                    let version = if round == 1 && i % 2 == 0 {
                        store.update(group, &key, ops).await.unwrap().version
                    } else {
                        let value = format!(r#"{{"n":{round}}}"#);
                        store
                            .set(group, &key, value, Ttl::Default)
                            .await
                            .unwrap()
                            .version
                    };
                    (group, version)
                });
            }
            let mut seen = std::collections::HashMap::<&str, Vec<u64>>::new();
            while let Some(done) = calls.join_next().await {
                let (group, version) = done.unwrap();
                seen.entry(group).or_default().push(version);
            }
            for (group, mut versions) in seen {
                versions.sort_unstable();
                let count = versions.len();
                versions.dedup();
                assert_eq!(
                    versions.len(),
                    count,
                    "versions of group {group} are distinct"
                );
                let floor = highest.get(group).copied().unwrap_or(0);
                assert!(
                    versions[0] > floor,
                    "group {group}: later writes, higher versions"
                );
                highest.insert(group, *versions.last().unwrap());
            }
        }
        // Every key kept its place from its first write: k0, k1, k2, k4, ... in the order
        // their first batch stored them, each once.
        let keys: Vec<String> = serde_json::from_str(&store.keys_json("g").await.unwrap()).unwrap();
        assert_eq!(keys.len(), 30);
        let distinct: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), 30);
        assert_eq!(store.get("g", "k0").await.unwrap().unwrap().0, r#"{"n":2}"#);
    });
}

#[test]
fn a_failing_update_changes_nothing_and_reports_its_op() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let store = open(&server, "t3:").await;
        store
            .set("g", "k", r#"{"s":"x"}"#.into(), Ttl::Default)
            .await
            .unwrap();
        let err = store
            .update(
                "g",
                "k",
                r#"[{"type":"set","path":"a","value":1},{"type":"increment","path":"s","by":1}]"#,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "increment.not_number");
        assert_eq!(err.op_index(), Some(1));
        assert_eq!(
            store.get("g", "k").await.unwrap().unwrap().0,
            r#"{"s":"x"}"#
        );
        let err = store
            .update("g", "new", r#"[{"type":"test","path":"a","value":1}]"#)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "test.failed");
        assert_eq!(store.get("g", "new").await.unwrap(), None);
    });
}

#[test]
fn expiry_follows_the_server_clock_and_is_swept_once_with_its_event() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let first = open(&server, "t4:").await;
        let second = open(&server, "t4:").await;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for store in [&first, &second] {
            let tx = tx.clone();
            let since = store.follow();
            let (_, queue) =
                store
                    .events()
                    .subscribe_since(Default::default(), Box::new(|| true), since);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let drained = queue.drain();
                    if drained != "[]" && tx.send(drained).is_err() {
                        return;
                    }
                }
            });
        }
        first
            .set("g", "k", "1".into(), Ttl::Millis(300))
            .await
            .unwrap();
        assert!(first.get("g", "k").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(350)).await;
        // Invisible at once, whether or not a sweep ran yet.
        assert_eq!(second.get("g", "k").await.unwrap(), None);
        assert_eq!(second.group_json("g").await.unwrap(), "[]");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut seen = String::new();
        while let Ok(batch) = rx.try_recv() {
            seen.push_str(&batch);
        }
        // Each of the two listeners saw the creation and exactly one expiry.
        assert_eq!(seen.matches("state:created").count(), 2, "{seen}");
        assert_eq!(seen.matches("\"reason\":\"expired\"").count(), 2, "{seen}");
        assert!(second.list_groups().await.unwrap().is_empty());
    });
}

#[test]
fn an_unreachable_server_fails_within_the_timeout_and_a_restarted_one_is_used_again() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let mut options = RedisOptions::new(server.url());
        options.prefix = "t5:".into();
        options.command_timeout = Duration::from_millis(800);
        let store = RedisStore::open(options.clone()).await.unwrap();
        store.set("g", "k", "1".into(), Ttl::Default).await.unwrap();
        server.stop();
        let started = std::time::Instant::now();
        let err = store.get("g", "k").await.unwrap_err();
        assert_eq!(err.code(), "BACKEND_UNAVAILABLE", "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let err = RedisStore::open(options.clone()).await.unwrap_err();
        assert_eq!(err.code(), "BACKEND_UNAVAILABLE");

        server.restart();
        let mut answered = None;
        for _ in 0..50 {
            match store.set("g", "k", "2".into(), Ttl::Default).await {
                Ok(_) => {
                    answered = Some(());
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(answered.is_some(), "the store never came back");
        assert_eq!(store.get("g", "k").await.unwrap().unwrap().0, "2");
    });
}

#[test]
fn rediss_connects_to_a_server_whose_certificate_the_given_authority_signed() {
    let dir = common::TempDir::new("redis-tls");
    let (ca, cert, key) = common::redis::make_certificates(dir.path());
    let Some(server) = RedisServer::start_tls(&cert, &key, &ca) else {
        return;
    };
    runtime().block_on(async {
        assert!(server.url().starts_with("rediss://"));
        let mut options = RedisOptions::new(server.url());
        options.prefix = "tls:".into();
        options.command_timeout = Duration::from_secs(3);
        // Without the authority, the server's certificate is not trusted.
        let err = RedisStore::open(options.clone()).await.unwrap_err();
        assert_eq!(err.code(), "BACKEND_UNAVAILABLE", "{err}");
        options.tls_ca = Some(std::fs::read(&ca).unwrap());
        let store = RedisStore::open(options).await.unwrap();
        store
            .set("g", "k", r#"{"over":"tls"}"#.into(), Ttl::Default)
            .await
            .unwrap();
        assert_eq!(
            store.get("g", "k").await.unwrap().unwrap().0,
            r#"{"over":"tls"}"#
        );
    });
}

/// CPU time (user and system) that the threads named `name` of this process have used.
fn cpu_of_threads(name: &str) -> Duration {
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended
        };
        let (comm, rest) = stat.split_once(") ").unwrap();
        if !comm.ends_with(&format!("({name}")) {
            continue;
        }
        let fields: Vec<&str> = rest.split(' ').collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

#[test]
fn the_worker_kept_awake_for_awaited_calls_sleeps_once_they_stop() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("spin-check")
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = open(&server, "t-spin:").await;
        // Awaited one at a time: the worker stays awake between them.
        for i in 0..300 {
            store
                .set("g", &format!("k{}", i % 10), format!("{i}"), Ttl::Default)
                .await
                .unwrap();
            store.get("g", "k1").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = cpu_of_threads("spin-check");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let idle = cpu_of_threads("spin-check") - before;
        // Awake all along, it would have used about the whole second; asleep, it wakes only
        // for the expiry sweep (4 round trips).
        assert!(
            idle < Duration::from_millis(100),
            "the worker used {idle:?} of 1 s with no calls"
        );
        store.close();
    });
}

/// The events the store's stream holds (prefix `t-trim:`): each entry holds a script call's events by position, `u`
/// taking five values (kind, group, key, old, new) and the other kinds four, then padding.
async fn events_in_stream(admin: &mut redis::aio::MultiplexedConnection) -> u64 {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("t-trim:events")
        .arg("-")
        .arg("+")
        .query_async(admin)
        .await
        .unwrap();
    let mut events = 0;
    for (_, values) in entries {
        let mut at = 0;
        while at < values.len() && !values[at].is_empty() {
            at += if values[at] == "u" { 5 } else { 4 };
            events += 1;
        }
        assert_eq!(at + at % 2, values.len(), "an entry of whole events");
    }
    events
}

#[test]
fn the_event_stream_keeps_about_events_kept_events_whether_writes_come_alone_or_in_batches() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let mut options = RedisOptions::new(server.url());
        options.prefix = "t-trim:".into();
        options.events_kept = 1000;
        let store = RedisStore::open(options).await.unwrap();
        let mut admin = admin(&server).await;
        // Awaited one at a time: one event per script.
        for i in 0..1500 {
            store
                .set("g", &format!("k{}", i % 50), format!("{i}"), Ttl::Default)
                .await
                .unwrap();
        }
        let alone = events_in_stream(&mut admin).await;
        // Many in flight: batches of events per script (at most 256 writes each).
        let calls: Vec<_> = (0..5000)
            .map(|i| {
                tokio::spawn(store.set("g", &format!("k{}", i % 500), format!("{i}"), Ttl::Default))
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let batched = events_in_stream(&mut admin).await;
        // A clear of 500 items: 500 events in one script.
        store.clear("g").await.unwrap();
        let cleared = events_in_stream(&mut admin).await;
        // Trimmed as each mark is made (one per 1000 / 16 = 62 events), to the entry of the
        // newest mark at least 1000 events old: the stream keeps at least 1000 events, and at
        // most 1000 more the events from that mark to the next (62 and a call's), those since
        // the last mark (likewise), and its own entry's.
        for (when, length, most_per_call) in [
            ("alone", alone, 1),
            ("batched", batched, 256),
            ("cleared", cleared, 500),
        ] {
            assert!(
                (1000..=1000 + 2 * 62 + 3 * most_per_call).contains(&length),
                "{when}: {length} events kept for events_kept 1000"
            );
        }
        store.close();
    });
}

#[test]
fn a_group_read_whose_script_must_be_loaded_again_sees_no_write_made_after_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let store = open(&server, "t-reload:").await;
        let mut admin = admin(&server).await;
        for round in 0..20 {
            let group = format!("g{round}");
            store
                .set(&group, "a", "1".into(), Ttl::Default)
                .await
                .unwrap();
            // As after a restart of the server: every script must be loaded again. A write
            // loads the write script; the group read's script is still missing.
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async::<()>(&mut admin)
                .await
                .unwrap();
            store
                .set(&group, "b", "2".into(), Ttl::Default)
                .await
                .unwrap();
            let read = tokio::spawn(store.keys_json(&group));
            let later = tokio::spawn(store.set(&group, "c", "3".into(), Ttl::Default));
            assert_eq!(
                read.await.unwrap().unwrap(),
                r#"["a","b"]"#,
                "round {round}"
            );
            later.await.unwrap().unwrap();
            assert_eq!(store.keys_json(&group).await.unwrap(), r#"["a","b","c"]"#);
        }
        store.close();
    });
}

#[test]
fn a_get_of_an_item_near_its_expiry_sees_no_write_made_after_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    runtime().block_on(async {
        let store = open(&server, "t-near-expiry:").await;
        for round in 0..40 {
            let key = format!("k{round}");
            // Read a few milliseconds before its expiry: too close to judge by the bounds on
            // the server's clock that this process keeps.
            store
                .set("g", &key, "1".into(), Ttl::Millis(400))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(395)).await;
            let read = tokio::spawn(store.get("g", &key));
            let later = tokio::spawn(store.set("g", &key, "2".into(), Ttl::Default));
            let seen = read.await.unwrap().unwrap().map(|(json, _)| json);
            assert!(
                seen.as_deref() != Some("2"),
                "round {round}: a get saw a write made after it"
            );
            later.await.unwrap().unwrap();
            let now = store.get("g", &key).await.unwrap();
            assert_eq!(now.map(|(json, _)| json).as_deref(), Some("2"));
        }
        store.close();
    });
}
