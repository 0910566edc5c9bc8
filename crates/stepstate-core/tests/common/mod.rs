//! Helpers shared by the `file_store_*` integration tests: temp directories, a seeded random
//! generator, a dump of an engine's whole state, and a look at a store directory's files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stepstate_core::log::{SyncPolicy, WriterOptions};
use stepstate_core::store::FileOptions;
use stepstate_core::{Engine, EngineOptions};

/// A fresh directory under the target's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("file-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: small, seeded, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// File options with small log windows and a fast everysec interval.
pub fn file_options(path: &Path, policy: SyncPolicy, compact_min_bytes: u64) -> FileOptions {
    let mut options = FileOptions::new(path);
    options.sync_policy = policy;
    options.writer = WriterOptions {
        window_bytes: 16 << 10,
        everysec_interval: Duration::from_millis(20),
    };
    options.compact_min_bytes = compact_min_bytes;
    options
}

pub fn open(path: &Path, policy: SyncPolicy, compact_min_bytes: u64) -> Arc<Engine> {
    Engine::open_file(
        EngineOptions::default(),
        file_options(path, policy, compact_min_bytes),
    )
    .unwrap_or_else(|e| panic!("open_file {}: {e} ({})", path.display(), e.code()))
}

/// The whole visible state: every listed group with its `entries_json` (insertion order
/// included).
pub fn dump(engine: &Engine) -> Vec<(String, String)> {
    engine
        .list_groups()
        .into_iter()
        .map(|group| {
            let entries = engine.entries_json(&group).unwrap();
            (group, entries)
        })
        .collect()
}

/// The store directory's snapshot and log files: (snapshot generations, log generations).
pub fn generations(dir: &Path) -> (Vec<u64>, Vec<u64>) {
    let mut snapshots = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(g) = name
            .strip_prefix("snapshot-")
            .and_then(|r| r.strip_suffix(".snap"))
        {
            snapshots.push(g.parse().unwrap());
        } else if let Some(g) = name
            .strip_prefix("log-")
            .and_then(|r| r.strip_suffix(".log"))
        {
            logs.push(g.parse().unwrap());
        }
    }
    snapshots.sort_unstable();
    logs.sort_unstable();
    (snapshots, logs)
}

/// Path of the log new writes go to (the newest one).
pub fn active_log(dir: &Path) -> PathBuf {
    let (_, logs) = generations(dir);
    dir.join(format!("log-{}.log", logs.last().expect("a log")))
}

/// Every file of the directory with its bytes.
pub fn file_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().into_string().unwrap(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// Polls `done` every few milliseconds for at most `limit`; returns whether it became true.
pub fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
