//! The file store under real `kill -9`: a child process (this test binary, run again with an
//! environment variable) writes and acknowledges, the parent kills it with SIGKILL at a random
//! moment, reopens the same directory and finds exactly the acknowledged writes (plus at most
//! the one in flight), for every sync policy, across compactions, again and again on the same
//! directory. Also: a live holder of the directory makes `open_file` fail with `LOCKED`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{open, Rng, TempDir};
use stepstate_core::log::SyncPolicy;
use stepstate_core::{Engine, EngineOptions, FileStore, Ttl};

const CHILD_DIR_ENV: &str = "STEPSTATE_FS_CRASH_DIR";
const CHILD_POLICY_ENV: &str = "STEPSTATE_FS_CRASH_POLICY";
const CHILD_COMPACT_ENV: &str = "STEPSTATE_FS_CRASH_COMPACT";
const CHILD_SEED_ENV: &str = "STEPSTATE_FS_CRASH_SEED";
const LOCK_CHILD_ENV: &str = "STEPSTATE_FS_LOCK_CHILD";

const CRASHES_PER_POLICY: u64 = 22;

fn policy_name(policy: SyncPolicy) -> &'static str {
    match policy {
        SyncPolicy::Always => "always",
        SyncPolicy::EverySec => "everysec",
        SyncPolicy::No => "no",
    }
}

fn policy_of(name: &str) -> SyncPolicy {
    match name {
        "always" => SyncPolicy::Always,
        "everysec" => SyncPolicy::EverySec,
        _ => SyncPolicy::No,
    }
}

/// The `i`th write of the child run with `seed`; the parent regenerates the same sequence.
#[derive(Debug)]
enum CrashOp {
    Set {
        group: String,
        key: String,
        value: String,
        ttl: Ttl,
    },
    Increment {
        key: String,
    },
    Delete {
        group: String,
        key: String,
    },
    Clear {
        group: String,
    },
}

fn crash_op(rng: &mut Rng, seed: u64, i: u64) -> CrashOp {
    let group = format!("g{}", rng.below(3));
    let key = format!("s{}", rng.below(8));
    match rng.below(100) {
        0..=49 => CrashOp::Set {
            group,
            key,
            value: format!(
                r#"{{"seed":{seed},"i":{i},"pad":"{}"}}"#,
                "x".repeat(rng.below(120) as usize)
            ),
            ttl: if rng.chance(20) {
                Ttl::Millis(3_600_000)
            } else {
                Ttl::Default
            },
        },
        50..=74 => CrashOp::Increment {
            key: format!("c{}", rng.below(4)),
        },
        75..=97 => CrashOp::Delete { group, key },
        _ => CrashOp::Clear { group },
    }
}

/// Applies the op; returns its journal ticket (0 when it wrote nothing).
fn apply_crash_op(engine: &Engine, op: &CrashOp) -> u64 {
    match op {
        CrashOp::Set {
            group,
            key,
            value,
            ttl,
        } => {
            engine
                .set_owned(group, key, value.clone(), *ttl)
                .unwrap()
                .ticket
        }
        CrashOp::Increment { key } => {
            engine
                .update(
                    "counters",
                    key,
                    r#"[{"type":"increment","path":"n","by":1}]"#,
                )
                .unwrap()
                .ticket
        }
        CrashOp::Delete { group, key } => engine
            .delete_owned(group, key)
            .unwrap()
            .map_or(0, |removed| removed.ticket),
        CrashOp::Clear { group } => engine.clear_ticketed(group).unwrap().1,
    }
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

/// In the child: open the store, then write and acknowledge until killed (10 s at most).
/// Under `Always` a write is acknowledged once the log reports its ticket durable.
fn run_crash_child(dir: &Path) {
    let policy = policy_of(&std::env::var(CHILD_POLICY_ENV).unwrap());
    let seed = env_u64(CHILD_SEED_ENV);
    // The parent closed the store before spawning us, but a sibling test thread of the parent
    // may be between fork and exec at that moment, and its forked copy shares the lock file's
    // open description (flock locks follow it) until it execs: retry LOCKED briefly.
    let options = common::file_options(dir, policy, env_u64(CHILD_COMPACT_ENV));
    let started = Instant::now();
    let store = loop {
        match FileStore::open(EngineOptions::default(), options.clone()) {
            Ok(store) => break store,
            Err(e) if e.code() == "LOCKED" && started.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("open_file: {e} ({})", e.code()),
        }
    };
    let durable = Arc::new((Mutex::new(0u64), Condvar::new()));
    let told = durable.clone();
    store.on_durable(Arc::new(move |ticket| {
        if let Ok(ticket) = ticket {
            let mut highest = told.0.lock().unwrap();
            *highest = (*highest).max(ticket);
            told.1.notify_all();
        }
    }));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "@@ready").unwrap();
    out.flush().unwrap();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(10) {
        let op = crash_op(&mut rng, seed, i);
        let ticket = apply_crash_op(&store, &op);
        if policy == SyncPolicy::Always {
            let mut highest = durable.0.lock().unwrap();
            while *highest < ticket {
                highest = durable.1.wait(highest).unwrap();
            }
            assert!(store.durable_ticket() >= ticket);
        }
        writeln!(out, "@@ack {i}").unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

/// Reads the child's stdout on a thread, sending every line that starts with `@@`.
fn watch_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("@@") {
                if send.send(line[at + 2..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    receive
}

fn wait_for_ready(lines: &Receiver<String>, stderr_path: &Path) {
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == "ready" => return,
            Ok(_) => {}
            Err(e) => panic!(
                "the child never became ready ({e:?}); its stderr:\n{}",
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            ),
        }
    }
}

/// Runs this test binary again as a child running only `test_name`; its stderr goes to
/// `stderr_path` for diagnosis.
fn spawn_self(test_name: &str, envs: &[(&str, String)], stderr_path: &Path) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_path).unwrap());
    for (name, value) in envs {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

/// Every group's items in insertion order: recovery must bring back the order too, also
/// after a crash during or after a compaction.
fn dump(engine: &Engine) -> Vec<(String, Vec<(String, String)>)> {
    engine
        .list_groups()
        .into_iter()
        .map(|group| {
            let items: Vec<(String, String)> = engine
                .entries(&group)
                .unwrap()
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect();
            (group, items)
        })
        .collect()
}

/// The visible state of `store`, with every item copied into a fresh in-memory engine.
fn copy_into_memory(store: &Engine) -> Arc<Engine> {
    let model = Engine::new(EngineOptions::default());
    for group in store.list_groups() {
        for entry in store.entries(&group).unwrap() {
            model
                .set(&group, &entry.key, &entry.value, Ttl::Default)
                .unwrap();
        }
    }
    model
}

fn crash_again_and_again(policy: SyncPolicy, test_name: &str) {
    let started = Instant::now();
    let dir = TempDir::new(&format!("crash-{}", policy_name(policy)));
    let stderr_path = dir.path().with_extension("stderr");
    let mut rng = Rng::new(0xc0ffee ^ policy as u64);
    let mut before = Engine::new(EngineOptions::default());
    let mut total_acks = 0;
    let mut in_flight_found = 0;
    let mut runs_with_compaction = 0;
    for run in 0..CRASHES_PER_POLICY {
        let compact_min_bytes: u64 = if run % 2 == 1 { 4096 } else { 64 << 20 };
        let seed = 1000 * (policy as u64 + 1) + run;
        let mut child = spawn_self(
            test_name,
            &[
                (CHILD_DIR_ENV, dir.path().display().to_string()),
                (CHILD_POLICY_ENV, policy_name(policy).to_string()),
                (CHILD_COMPACT_ENV, compact_min_bytes.to_string()),
                (CHILD_SEED_ENV, seed.to_string()),
            ],
            &stderr_path,
        );
        let lines = watch_lines(&mut child);
        wait_for_ready(&lines, &stderr_path);
        std::thread::sleep(Duration::from_millis(20 + rng.below(160)));
        child.kill().unwrap(); // SIGKILL: no close, no final sync, no destructor
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the child died by itself; its stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        let mut acked = 0u64;
        loop {
            match lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    let Some(i) = line.strip_prefix("ack ") else {
                        continue;
                    };
                    assert_eq!(i.parse::<u64>().unwrap(), acked, "acks in order");
                    acked += 1;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the child's stdout stayed open"),
            }
        }
        total_acks += acked;
        if generations_after(dir.path()) {
            runs_with_compaction += 1;
        }

        let store = open(dir.path(), policy, 64 << 20);
        let recovered = dump(&store);
        // Expected: the state before the run plus the acknowledged writes, plus perhaps the
        // one write that was in flight when the child died.
        let model = copy_into_memory(&before);
        let mut ops = Rng::new(seed);
        for i in 0..acked {
            apply_crash_op(&model, &crash_op(&mut ops, seed, i));
        }
        let acknowledged = dump(&model);
        if recovered != acknowledged {
            apply_crash_op(&model, &crash_op(&mut ops, seed, acked));
            assert_eq!(
                recovered,
                dump(&model),
                "run {run} ({policy:?}, compact_min_bytes {compact_min_bytes}): recovered state \
                 is neither the {acked} acknowledged writes nor those and the next one"
            );
            in_flight_found += 1;
        }
        before = copy_into_memory(&store);
        store.close().unwrap();
    }
    let _ = std::fs::remove_file(&stderr_path);
    assert!(total_acks > 200, "only {total_acks} writes acknowledged");
    assert!(runs_with_compaction > 0, "no crash left a compacted store");
    eprintln!(
        "{policy:?}: {CRASHES_PER_POLICY} crashes, {total_acks} acknowledged writes, \
         {in_flight_found} in-flight writes recovered too, {runs_with_compaction} runs \
         compacted, in {:?}",
        started.elapsed()
    );
}

/// True when the child left a snapshot (it compacted at least once, ever).
fn generations_after(dir: &Path) -> bool {
    !common::generations(dir).0.is_empty()
}

#[test]
fn sigkill_under_always_keeps_every_write_acknowledged_after_its_fsync() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        run_crash_child(Path::new(&dir));
        return;
    }
    crash_again_and_again(
        SyncPolicy::Always,
        "sigkill_under_always_keeps_every_write_acknowledged_after_its_fsync",
    );
}

#[test]
fn sigkill_under_everysec_keeps_every_acknowledged_write() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        run_crash_child(Path::new(&dir));
        return;
    }
    crash_again_and_again(
        SyncPolicy::EverySec,
        "sigkill_under_everysec_keeps_every_acknowledged_write",
    );
}

#[test]
fn sigkill_under_no_keeps_every_acknowledged_write() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        run_crash_child(Path::new(&dir));
        return;
    }
    crash_again_and_again(
        SyncPolicy::No,
        "sigkill_under_no_keeps_every_acknowledged_write",
    );
}

#[test]
fn a_store_held_by_a_live_process_is_locked_with_its_pid_until_that_process_is_killed() {
    if let Some(dir) = std::env::var_os(LOCK_CHILD_ENV) {
        let store = open(Path::new(&dir), SyncPolicy::No, 64 << 20);
        store.set("g", "held", "1", Ttl::Default).unwrap();
        println!("@@ready");
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let dir = TempDir::new("locked");
    let stderr_path = dir.path().with_extension("stderr");
    let mut child = spawn_self(
        "a_store_held_by_a_live_process_is_locked_with_its_pid_until_that_process_is_killed",
        &[(LOCK_CHILD_ENV, dir.path().display().to_string())],
        &stderr_path,
    );
    let lines = watch_lines(&mut child);
    wait_for_ready(&lines, &stderr_path);
    let options = common::file_options(dir.path(), SyncPolicy::No, 64 << 20);
    let err = FileStore::open(EngineOptions::default(), options.clone()).unwrap_err();
    assert_eq!(err.code(), "LOCKED");
    assert!(
        err.to_string().contains(&child.id().to_string()),
        "{err} names pid {}",
        child.id()
    );
    let err =
        stepstate_core::store::open_shared(EngineOptions::default(), options.clone()).unwrap_err();
    assert_eq!(err.code(), "LOCKED");

    child.kill().unwrap(); // SIGKILL: the lock file still names the dead child
    child.wait().unwrap();
    let store = FileStore::open(EngineOptions::default(), options).unwrap();
    assert_eq!(store.get("g", "held").unwrap().as_deref(), Some("1"));
    store.close().unwrap();
}
