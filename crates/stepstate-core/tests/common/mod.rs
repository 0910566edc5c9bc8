//! Helpers shared by the integration tests: temp directories, damaging files, a log storage
//! that fails on demand, a seeded random generator, a dump of an engine's whole state, and a
//! look at a store directory's files.
#![allow(dead_code)]

pub mod redis;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memmap2::MmapMut;
use stepstate_core::log::writer::{FileStorage, LogStorage};
use stepstate_core::log::{map_snapshot, parse_snapshot, LogRecord, SnapshotWriter};
use stepstate_core::log::{SyncPolicy, WriterOptions};
use stepstate_core::store::FileOptions;
use stepstate_core::{Engine, EngineOptions, FileStore};

/// A fresh directory under the target's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `<test binary>-<name>-<pid>`, e.g. `log-writer-closed-4242`: unique per test binary run
    /// as long as `name` is unique within the binary.
    pub fn new(name: &str) -> TempDir {
        let binary = env!("CARGO_CRATE_NAME").replace('_', "-");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{binary}-{name}-{}", std::process::id()));
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

/// Cuts (or extends with zeros) the file at `path` to `len` bytes.
pub fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Appends `bytes` to the file at `path`.
pub fn append_bytes(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Counts the writes and syncs of every [`FaultyStorage`] sharing it, and fails the ones it is
/// told to.
#[derive(Default)]
pub struct Faults {
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
    /// Fail the write with this number (1-based, counted over every storage); 0 = never.
    pub fail_write: AtomicU64,
    /// Fail the sync with this number (1-based, counted over every storage); 0 = never.
    pub fail_sync: AtomicU64,
    /// For a storage factory: fail the creation of new log files while set.
    pub fail_create: AtomicBool,
}

/// A log storage over a real file that fails the write or sync its [`Faults`] name.
pub struct FaultyStorage {
    pub inner: FileStorage,
    pub faults: Arc<Faults>,
}

impl LogStorage for FaultyStorage {
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.allocate(offset, len)
    }
    fn map(&self, offset: u64, len: usize) -> io::Result<MmapMut> {
        self.inner.map(offset, len)
    }
    fn write(&self, dst: &mut [u8], bytes: &[u8]) -> io::Result<()> {
        let n = self.faults.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.faults.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure"));
        }
        self.inner.write(dst, bytes)
    }
    fn sync(&self) -> io::Result<()> {
        let n = self.faults.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected sync failure (EIO)"));
        }
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
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

pub fn open(path: &Path, policy: SyncPolicy, compact_min_bytes: u64) -> Arc<FileStore> {
    FileStore::open(
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

/// Opening the store in `dir` fails with `code` and leaves every file as it was.
pub fn assert_open_fails_and_changes_nothing(dir: &Path, code: &str) {
    let before = file_contents(dir);
    let err = FileStore::open(
        EngineOptions::default(),
        file_options(dir, SyncPolicy::No, 64 << 20),
    )
    .unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(file_contents(dir), before, "open_file changed the files");
}

/// Writes `snapshot-<generation>.snap` in `dir` from `records` with a [`SnapshotWriter`].
pub fn write_snapshot<'r>(
    dir: &Path,
    generation: u64,
    records: impl Iterator<Item = LogRecord<'r>>,
) -> stepstate_core::Result<()> {
    let mut writer = SnapshotWriter::create(dir, generation)?;
    for record in records {
        writer.put(&record)?;
    }
    writer.finish()
}

/// Reads the snapshot at `path`, calling `on_record` for each record; returns how many.
pub fn read_snapshot(
    path: &Path,
    on_record: impl FnMut(LogRecord<'_>) -> stepstate_core::Result<()>,
) -> stepstate_core::Result<u64> {
    let map = map_snapshot(path)?;
    parse_snapshot(&map, path, on_record)
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
