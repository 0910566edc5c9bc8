//! The durable file store: a [`FileStore`] owns an [`Engine`] and the append-only log that
//! engine journals every change to before it becomes visible ([`Journal`]). It is recovered
//! from the newest snapshot plus the logs after it ([`recover`], read-only), and compacted in
//! the background (a new snapshot and a fresh log) when the log has grown well past the live
//! data.
//!
//! Within one process a directory is opened once: [`open_shared`] hands every opener of the
//! same path (any thread, including Node `worker_threads`) the same store, so atomicity and
//! change events hold across them; the last [`release_shared`] flushes, closes the log,
//! releases the directory lock and everything the store held.
//!
//! Write tickets: every journaled write gets a ticket, a number that only grows over the life
//! of the store (the log's byte offset plus the bytes of the logs before it), returned with
//! the write's result. Under [`SyncPolicy::Always`] a write is acknowledged once a durability
//! listener (see [`FileStore::on_durable`]) has reported a ticket at least as large.

pub mod check;
pub mod recover;

use crate::engine::{Engine, EngineOptions, Journal, Journaled};
use crate::error::{Error, Result};
use crate::log::writer::{FileStorage, LogStorage};
use crate::log::{LogRecord, LogWriter, SnapshotWriter, StoreFiles, SyncPolicy, WriterOptions};
use crate::text::{MappedStr, Text};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Settings of a file store.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// The store directory; created (mode 0700) when missing.
    pub path: PathBuf,
    /// When writes reach the disk: see [`SyncPolicy`]. Default `EverySec`.
    pub sync_policy: SyncPolicy,
    /// Tuning of the log writer (window size, sync interval).
    pub writer: WriterOptions,
    /// The log is compacted once it is larger than twice the live data and at least this many
    /// bytes. Default 64 MiB.
    pub compact_min_bytes: u64,
    /// Test hook (fault injection): builds the storage of every log file instead of the real
    /// `FileStorage`. Default `None`.
    #[doc(hidden)]
    pub storage: Option<StorageFactory>,
}

/// Builds the [`LogStorage`] of the log file at a path: `create` is true for a new log (which
/// must not exist yet), false to continue an existing one.
#[doc(hidden)]
pub type MakeStorage = dyn Fn(&Path, bool) -> std::io::Result<Box<dyn LogStorage>> + Send + Sync;

/// A [`MakeStorage`] for [`FileOptions::storage`]. For fault-injection tests only.
#[doc(hidden)]
#[derive(Clone)]
pub struct StorageFactory(pub Arc<MakeStorage>);

impl std::fmt::Debug for StorageFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageFactory")
    }
}

/// Opens the log of a store at `path` through `factory` when a test supplies one: a new log
/// (`continue_at: None`; it must not exist yet), or the existing one continued after its first
/// `valid_len` bytes (whatever follows, a dropped tail, is cut off and synced away).
fn open_log(
    path: &Path,
    continue_at: Option<u64>,
    policy: SyncPolicy,
    options: WriterOptions,
    factory: Option<&StorageFactory>,
) -> Result<LogWriter> {
    let storage: std::io::Result<Box<dyn LogStorage>> = match (factory, continue_at) {
        (Some(factory), _) => (factory.0)(path, continue_at.is_none()),
        (None, None) => FileStorage::create(path).map(|s| Box::new(s) as Box<dyn LogStorage>),
        (None, Some(_)) => FileStorage::open(path).map(|s| Box::new(s) as Box<dyn LogStorage>),
    };
    let storage =
        storage.map_err(|e| Error::Io(format!("cannot open log {}: {e}", path.display())))?;
    match continue_at {
        Some(valid_len) => LogWriter::continue_storage(storage, path, valid_len, policy, options),
        None => LogWriter::with_storage(storage, path, 0, policy, options),
    }
}

impl FileOptions {
    /// Default settings for the directory `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileOptions {
        FileOptions {
            path: path.into(),
            sync_policy: SyncPolicy::EverySec,
            writer: WriterOptions::default(),
            compact_min_bytes: 64 << 20,
            storage: None,
        }
    }
}

/// Told the durable ticket after each sync, or the error that stopped the log.
pub type DurableListener = Arc<dyn Fn(std::result::Result<u64, &Error>) + Send + Sync>;

/// Listeners told of the durable ticket after each sync, keyed for removal.
#[derive(Default)]
struct DurableListeners {
    next_id: AtomicU64,
    listeners: Mutex<Vec<(u64, DurableListener)>>,
}

impl DurableListeners {
    fn notify(&self, ticket: std::result::Result<u64, &Error>) {
        let listeners: Vec<DurableListener> = self
            .listeners
            .lock()
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        for listener in listeners {
            listener(ticket);
        }
    }
}

/// The log side of a file store: the [`Journal`] its engine records every change in.
struct FileJournal {
    dir: PathBuf,
    policy: SyncPolicy,
    writer_options: WriterOptions,
    storage: Option<StorageFactory>,
    /// The current log; `None` once the store is closed (the writer, its file and its
    /// watermark are released then). Writers hold it shared from append until their change is
    /// applied in memory; compaction takes it exclusively for the moment it switches logs, so
    /// that every write in an older log is visible in memory before the snapshot reads it.
    log: RwLock<Option<Arc<LogWriter>>>,
    generation: AtomicU64,
    /// Ticket of byte 0 of the current log.
    base: AtomicU64,
    compact_at: AtomicU64,
    compact_min_bytes: u64,
    compacting: AtomicBool,
    closed: AtomicBool,
    durable: Arc<DurableListeners>,
    /// The store, for the compaction a write may start.
    store: OnceLock<Weak<FileStore>>,
}

impl FileJournal {
    fn install_on_durable(&self, log: &LogWriter, base: u64) {
        let durable = self.durable.clone();
        log.set_on_durable(Box::new(move |lsn| {
            durable.notify(lsn.map(|lsn| base + lsn))
        }));
    }

    fn compact_threshold(&self, live_bytes: u64) -> u64 {
        self.compact_min_bytes.max(live_bytes.saturating_mul(2))
    }

    /// Starts a compaction on a thread of its own, unless one is running.
    fn start_compaction(&self) {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.store.get().and_then(Weak::upgrade);
        let spawned = store.map(|store| {
            std::thread::Builder::new()
                .name("stepstate-compaction".into())
                .spawn(move || {
                    // A failed compaction leaves the previous snapshot and every log since it:
                    // recovery stays complete, and the next threshold crossing tries again.
                    let _ = store.compact();
                    store.journal.compacting.store(false, Ordering::Release);
                })
        });
        if !matches!(spawned, Some(Ok(_))) {
            self.compacting.store(false, Ordering::Release);
        }
    }
}

impl Journal for FileJournal {
    fn append(&self, record: &LogRecord<'_>) -> Result<Journaled<'_>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let log = self.log.read();
        let lsn = match log.as_ref() {
            Some(writer) => writer.append(record)?,
            None => return Err(Error::Closed),
        };
        if lsn > self.compact_at.load(Ordering::Relaxed) {
            self.start_compaction();
        }
        Ok(Journaled {
            ticket: self.base.load(Ordering::Acquire) + lsn,
            position: (self.generation.load(Ordering::Acquire), lsn),
            hold: parking_lot::RwLockReadGuard::map(log, |_| &()),
        })
    }
}

/// A durable store: an [`Engine`] (which it dereferences to, for reads and writes) journaling
/// to a log in a locked directory.
pub struct FileStore {
    engine: Arc<Engine>,
    journal: Arc<FileJournal>,
    /// The locked directory; `None` once closed.
    files: Mutex<Option<StoreFiles>>,
    /// The snapshot maps that values of the engine ([`Text::Mapped`]) point into. A map is
    /// dropped only after every value pointing into it was re-pointed or copied to the heap
    /// (under its group's write lock), or dropped with the engine's items.
    maps: Mutex<Vec<memmap2::Mmap>>,
    /// Held by a compaction and by close, so that they never overlap.
    compaction: Mutex<()>,
    /// How many [`open_shared`] callers hold the store.
    handles: AtomicUsize,
}

impl std::ops::Deref for FileStore {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.journal.dir)
            .field("policy", &self.journal.policy)
            .finish_non_exhaustive()
    }
}

/// Lets the kernel drop the pages of a read-only file map from this process's memory (they
/// come back from the page cache, or the file, when read again).
fn release_pages(map: &memmap2::Mmap) {
    // SAFETY: the map is read-only and backed by a file that no one writes: after DONTNEED its
    // pages read back exactly as they were.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

impl FileStore {
    /// Opens (or creates) the file store at `file.path`: takes the directory lock, recovers
    /// (the newest snapshot, then the logs after it) and continues the last log. Fails with
    /// `LOCKED` when another process holds the directory, `CORRUPT` when a file is damaged
    /// where it must not be (the files are left untouched), `INVALID_ARGUMENT` when the
    /// directory holds files a store does not write, `IO` otherwise. Not shared: see
    /// [`open_shared`] for the in-process registry.
    pub fn open(options: EngineOptions, file: FileOptions) -> Result<Arc<FileStore>> {
        let files = StoreFiles::open(&file.path)?;
        let recovered = recover::recover(&files, options)?;
        let generation = files.active_generation();
        let log = open_log(
            &files.log_path(generation),
            recovered.active_len,
            file.sync_policy,
            file.writer.clone(),
            file.storage.as_ref(),
        )?;
        let journal = Arc::new(FileJournal {
            dir: files.dir().to_path_buf(),
            policy: file.sync_policy,
            writer_options: file.writer,
            storage: file.storage,
            log: RwLock::new(None),
            generation: AtomicU64::new(generation),
            base: AtomicU64::new(0),
            compact_at: AtomicU64::new(0),
            compact_min_bytes: file.compact_min_bytes,
            compacting: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            durable: Arc::default(),
            store: OnceLock::new(),
        });
        journal.compact_at.store(
            journal.compact_threshold(recovered.live_bytes),
            Ordering::Relaxed,
        );
        journal.install_on_durable(&log, 0);
        // The items recovery dropped because they expired while the store was closed are
        // deleted in the log too, so that a later write of the same key is replayed at the end
        // of its group, where the live store puts it.
        for (group, key) in &recovered.expired {
            log.append(&LogRecord::Delete { group, key })?;
        }
        *journal.log.write() = Some(Arc::new(log));
        let engine = recovered.engine;
        engine.attach_journal(journal.clone());
        let store = Arc::new(FileStore {
            engine,
            journal,
            files: Mutex::new(Some(files)),
            maps: Mutex::new(Vec::new()),
            compaction: Mutex::new(()),
            handles: AtomicUsize::new(0),
        });
        let _ = store.journal.store.set(Arc::downgrade(&store));
        if let Some(map) = recovered.snapshot_map {
            store.adopt_map(map);
        }
        Ok(store)
    }

    /// The engine, for callers that hold it beyond the store (the binding's handles).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Keeps `map`, which values of the engine point into, for as long as they do, and lets
    /// the kernel drop its pages from this process's memory: they stay in the page cache and
    /// come back on first read.
    fn adopt_map(&self, map: memmap2::Mmap) {
        release_pages(&map);
        self.maps.lock().push(map);
    }

    /// After a compaction installed the snapshot at `path`: points every value equal to its
    /// record in the new snapshot into a map of it (whether it was on the heap or in an older
    /// map), copies any value still in an older map to the heap, then drops the older maps, so
    /// that deleted snapshot files do not stay pinned on disk. Values keep their versions.
    /// When the new snapshot cannot be mapped, every mapped value moves to the heap instead.
    fn adopt_snapshot(&self, path: &Path) {
        let map = crate::log::map_snapshot(path).ok();
        if let Some(map) = &map {
            let parsed = crate::log::parse_snapshot(map, path, |record| {
                if let LogRecord::Put {
                    group, key, value, ..
                } = record
                {
                    self.engine.with_value_mut(group, key, |text| {
                        if **text == *value {
                            *text = Text::Mapped(MappedStr::new(value));
                        }
                    });
                }
                Ok(())
            });
            debug_assert!(parsed.is_ok(), "a snapshot just written reads back");
        }
        let keep: &[u8] = map.as_deref().unwrap_or(&[]);
        self.engine.for_each_value_mut(|text| {
            if let Text::Mapped(mapped) = text {
                if !mapped.is_within(keep) {
                    *text = Text::Heap(Box::from(&**text));
                }
            }
        });
        self.maps.lock().clear();
        if let Some(map) = map {
            self.adopt_map(map);
        }
    }

    /// How many values are served from snapshot maps, and how many maps are held (for tests
    /// and diagnostics).
    #[doc(hidden)]
    pub fn mapped_values(&self) -> (usize, usize) {
        let mut mapped = 0;
        self.engine.for_each_value_mut(|text| {
            mapped += usize::from(matches!(text, Text::Mapped(_)));
        });
        (mapped, self.maps.lock().len())
    }

    /// Writes every live item into `snapshot-<generation>`, one group at a time under its
    /// read lock; gives up (removing the temp file) once the store is closing. Returns the
    /// bytes of live data written.
    fn write_snapshot(&self, generation: u64) -> Result<u64> {
        let mut snapshot = SnapshotWriter::create(&self.journal.dir, generation)?;
        let mut live_bytes = 0u64;
        self.engine
            .visit_groups(|group, (written_in, log_offset), items| {
                if self.journal.closed.load(Ordering::Acquire) {
                    return Err(Error::Closed);
                }
                snapshot.put(&LogRecord::GroupMark {
                    group,
                    log_offset: if written_in == generation {
                        log_offset
                    } else {
                        0
                    },
                })?;
                for (key, value, expires_at_ms) in items {
                    live_bytes += (group.len() + key.len() + value.len()) as u64;
                    snapshot.put(&LogRecord::Put {
                        group,
                        key,
                        value,
                        expires_at_ms,
                    })?;
                }
                Ok(())
            })?;
        snapshot.finish()?;
        Ok(live_bytes)
    }

    /// Writes a new snapshot and starts a new log, then deletes the older files. Writers are
    /// held up only while the log is switched (one final sync of the old log); the snapshot
    /// is written one group at a time under that group's read lock.
    pub fn compact(&self) -> Result<()> {
        let journal = &*self.journal;
        let _running = self.compaction.lock();
        if journal.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let generation = journal.generation.load(Ordering::Acquire) + 1;
        let new_log = Arc::new(open_log(
            &journal.dir.join(crate::log::dir::log_file_name(generation)),
            None,
            journal.policy,
            journal.writer_options.clone(),
            journal.storage.as_ref(),
        )?);
        {
            let mut current = journal.log.write();
            let Some(old_log) = current.as_ref() else {
                return Err(Error::Closed);
            };
            old_log.close()?;
            let base = journal.base.load(Ordering::Acquire) + old_log.len();
            journal.install_on_durable(&new_log, base);
            journal.base.store(base, Ordering::Release);
            journal.generation.store(generation, Ordering::Release);
            *current = Some(new_log);
        }
        let live_bytes = self.write_snapshot(generation)?;
        if let Some(files) = self.files.lock().as_ref() {
            files.retire_before(generation)?;
        }
        self.adopt_snapshot(
            &journal
                .dir
                .join(crate::log::dir::snapshot_file_name(generation)),
        );
        journal
            .compact_at
            .store(journal.compact_threshold(live_bytes), Ordering::Relaxed);
        Ok(())
    }

    /// Registers `listener` to be told the durable ticket after each sync of the log (or the
    /// error that poisoned it); returns an id for [`FileStore::remove_on_durable`].
    pub fn on_durable(&self, listener: DurableListener) -> u64 {
        let durable = &self.journal.durable;
        let id = durable.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        durable.listeners.lock().push((id, listener));
        id
    }

    /// Removes a durability listener.
    pub fn remove_on_durable(&self, id: u64) {
        self.journal
            .durable
            .listeners
            .lock()
            .retain(|(i, _)| *i != id);
    }

    /// The store's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.journal.policy
    }

    /// The highest ticket known durable (synced to disk).
    pub fn durable_ticket(&self) -> u64 {
        // The base is read under the log guard: compaction switches both under the write lock,
        // so reading the base first could pair the old base with the new, empty log.
        let log = self.journal.log.read();
        self.journal.base.load(Ordering::Acquire) + log.as_ref().map_or(0, |log| log.durable_lsn())
    }

    /// Flushes everything acknowledged, closes the log and releases the directory lock, then
    /// everything the store holds: its file descriptors, threads, snapshot maps, items and
    /// listeners ([`Engine::release`]), even while something still holds the engine. Later
    /// calls fail with `CLOSED`. Idempotent.
    pub fn close(&self) -> Result<()> {
        let journal = &*self.journal;
        if journal.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.engine.shut_down();
        let _no_compaction = self.compaction.lock();
        let result = {
            let mut slot = journal.log.write();
            let result = slot.as_ref().map_or(Ok(()), |log| log.close());
            if let Some(log) = slot.take() {
                // Everything written is durable now (or never will be): the last ticket.
                journal.base.fetch_add(log.len(), Ordering::AcqRel);
            }
            result
        };
        self.files.lock().take();
        journal.durable.listeners.lock().clear();
        self.engine.release();
        // After the items: mapped values pointed into these maps.
        self.maps.lock().clear();
        result
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // The engine may outlive the store: its mapped values must go before the maps do.
        let _ = self.close();
    }
}

/// The file stores open in this process, by canonical directory.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<FileStore>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<FileStore>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn canonical(path: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .and_then(|()| path.canonicalize())
        .map_err(|e| Error::Io(format!("cannot open store {}: {e}", path.display())))
}

/// Opens the file store at `file.path`, or joins the store this process already has open
/// there (whose options then apply; `options` and `file` of later openers are ignored). Pair
/// every successful call with one [`release_shared`].
pub fn open_shared(options: EngineOptions, file: FileOptions) -> Result<Arc<FileStore>> {
    let key = canonical(&file.path)?;
    let mut open = registry().lock();
    let store = match open.get(&key) {
        Some(store) => store.clone(),
        None => {
            let store = FileStore::open(
                options,
                FileOptions {
                    path: key.clone(),
                    ..file
                },
            )?;
            open.insert(key, store.clone());
            store
        }
    };
    store.handles.fetch_add(1, Ordering::AcqRel);
    Ok(store)
}

/// Gives back one [`open_shared`]; the last one closes the store (flush, close the log,
/// release the lock and everything the store held) and returns the result of that close.
pub fn release_shared(store: &Arc<FileStore>) -> Result<()> {
    let mut open = registry().lock();
    if store.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
        return Ok(());
    }
    open.retain(|_, s| !Arc::ptr_eq(s, store));
    // Closed before the registry is unlocked, so that a new opener of the same path finds the
    // directory lock released.
    store.close()
}
