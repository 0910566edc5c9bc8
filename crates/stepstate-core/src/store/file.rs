//! The durable file store: an [`Engine`] whose every write is journaled to an append-only log
//! before it becomes visible, recovered from the newest snapshot plus the logs after it, and
//! compacted in the background (a new snapshot and a fresh log) when the log has grown well
//! past the live data.
//!
//! Within one process a directory is opened once: [`open_shared`] hands every opener of the
//! same path (any thread, including Node `worker_threads`) the same engine, so atomicity and
//! change events hold across them; the last [`release_shared`] flushes, closes the log and
//! releases the directory lock.
//!
//! Write tickets: every journaled write gets a ticket, a number that only grows over the life
//! of the store (the log's byte offset plus the bytes of the logs before it), readable right
//! after the write with [`last_ticket`] on the writing thread. Under
//! [`SyncPolicy::Always`] a write is acknowledged once a durability listener (see
//! [`Engine::on_durable`]) has reported a ticket at least as large.

use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::log::writer::LogStorage;
use crate::log::{LogRecord, LogWriter, StoreFiles, SyncPolicy, WriterOptions};
use parking_lot::{Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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

/// Creates the log at `path`, through `factory` when a test supplies one.
fn create_log(
    path: &Path,
    policy: SyncPolicy,
    options: WriterOptions,
    factory: Option<&StorageFactory>,
) -> Result<LogWriter> {
    let Some(factory) = factory else {
        return LogWriter::create(path, policy, options);
    };
    let storage = (factory.0)(path, true)
        .map_err(|e| Error::Io(format!("cannot create log {}: {e}", path.display())))?;
    LogWriter::with_storage(storage, path, 0, policy, options)
}

/// Continues the log at `path` after its first `valid_len` bytes, through `factory` when a
/// test supplies one (like [`LogWriter::open_append`]: the rest is cut off and synced).
fn continue_log(
    path: &Path,
    valid_len: u64,
    policy: SyncPolicy,
    options: WriterOptions,
    factory: Option<&StorageFactory>,
) -> Result<LogWriter> {
    let Some(factory) = factory else {
        return LogWriter::open_append(path, valid_len, policy, options);
    };
    let io_err = |e: std::io::Error| Error::Io(format!("cannot open log {}: {e}", path.display()));
    let storage = (factory.0)(path, false).map_err(io_err)?;
    storage.set_len(valid_len).map_err(io_err)?;
    storage.sync().map_err(io_err)?;
    LogWriter::with_storage(storage, path, valid_len, policy, options)
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

thread_local! {
    static LAST_TICKET: Cell<u64> = const { Cell::new(0) };
}

/// The ticket of the last write journaled by this thread (0 before any).
pub fn last_ticket() -> u64 {
    LAST_TICKET.with(Cell::get)
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

/// The durable half of a file-backed engine.
pub(crate) struct Durability {
    files: Mutex<Option<StoreFiles>>,
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
    compaction: Mutex<()>,
    closed: AtomicBool,
    durable: Arc<DurableListeners>,
    handles: AtomicUsize,
}

impl Durability {
    fn install_on_durable(&self, log: &LogWriter, base: u64) {
        let durable = self.durable.clone();
        log.set_on_durable(Box::new(move |lsn| {
            durable.notify(lsn.map(|lsn| base + lsn))
        }));
    }

    fn compact_threshold(&self, live_bytes: u64) -> u64 {
        self.compact_min_bytes.max(live_bytes.saturating_mul(2))
    }
}

/// A journaled write: holds the current log shared (so that it cannot be switched) until the
/// change is applied in memory, and says where in which log the record ended.
pub(crate) struct Journaled<'a> {
    _log: parking_lot::RwLockReadGuard<'a, Option<Arc<LogWriter>>>,
    /// The generation of the log the record went to.
    pub generation: u64,
    /// The offset just past the record in that log.
    pub lsn: u64,
}

impl Engine {
    /// Opens (or creates) the file store at `file.path`: takes the directory lock, loads the
    /// newest snapshot, replays the logs after it and continues the last one. Fails with
    /// `LOCKED` when another process holds the directory, `CORRUPT` when a file is damaged
    /// before its tail (the files are left untouched), `IO` otherwise. Not shared: see
    /// [`open_shared`] for the in-process registry.
    pub fn open_file(options: EngineOptions, file: FileOptions) -> Result<Arc<Engine>> {
        let files = StoreFiles::open(&file.path)?;
        let engine = Engine::new(options);
        // Per group, the offset in the snapshot's own log up to which the snapshot already
        // holds its changes (see `LogRecord::GroupMark`).
        let mut marks: HashMap<String, u64> = HashMap::new();
        // The snapshot's values stay in its map, out of the heap (see `Engine::adopt_map`).
        let mut snapshot_map = None;
        if let Some(snapshot) = files.snapshot_to_load() {
            let map = crate::log::map_snapshot(&snapshot)?;
            crate::log::parse_snapshot(&map, &snapshot, |record| {
                match record {
                    LogRecord::GroupMark { group, log_offset } => {
                        marks.insert(group.to_owned(), log_offset);
                    }
                    record => engine.apply_recovered_mapped(&record, &map),
                }
                Ok(())
            })?;
            snapshot_map = Some(map);
        }
        let snapshot_generation = files.snapshot_generation().unwrap_or(0);
        let generation = files.active_generation();
        let mut active_len = None;
        for (position, &log_generation) in files.log_generations().iter().enumerate() {
            let skip_marked = log_generation == snapshot_generation && !marks.is_empty();
            let mut offset = 0u64;
            let stats = crate::log::replay_log(&files.log_path(log_generation), |record| {
                offset += record.encoded_len() as u64;
                let already_in_snapshot = skip_marked
                    && record
                        .group()
                        .and_then(|group| marks.get(group))
                        .is_some_and(|&mark| offset <= mark);
                if !already_in_snapshot {
                    engine.apply_recovered(&record);
                }
                Ok(())
            })?;
            if position + 1 == files.log_generations().len() {
                active_len = Some(stats.valid_len);
            }
        }
        let (live_bytes, expired) = engine.finish_recovery();
        if let Some(map) = snapshot_map {
            engine.adopt_map(map);
        }
        let log_path = files.log_path(generation);
        let log = match active_len {
            Some(valid_len) => continue_log(
                &log_path,
                valid_len,
                file.sync_policy,
                file.writer.clone(),
                file.storage.as_ref(),
            )?,
            None => create_log(
                &log_path,
                file.sync_policy,
                file.writer.clone(),
                file.storage.as_ref(),
            )?,
        };
        let durability = Durability {
            dir: files.dir().to_path_buf(),
            files: Mutex::new(Some(files)),
            policy: file.sync_policy,
            writer_options: file.writer,
            storage: file.storage,
            generation: AtomicU64::new(generation),
            base: AtomicU64::new(0),
            compact_at: AtomicU64::new(0),
            compact_min_bytes: file.compact_min_bytes,
            compacting: AtomicBool::new(false),
            compaction: Mutex::new(()),
            closed: AtomicBool::new(false),
            durable: Arc::default(),
            handles: AtomicUsize::new(0),
            log: RwLock::new(None),
        };
        durability
            .compact_at
            .store(durability.compact_threshold(live_bytes), Ordering::Relaxed);
        durability.install_on_durable(&log, 0);
        // The items recovery dropped because they expired while the store was closed are
        // deleted in the log too, so that a later write of the same key is replayed at the end
        // of its group, where the live store puts it.
        for (group, key) in &expired {
            log.append(&LogRecord::Delete { group, key })?;
        }
        *durability.log.write() = Some(Arc::new(log));
        engine.attach_durability(durability);
        Ok(engine)
    }

    /// Journals `record` if the store is durable. The returned guard must be held until the
    /// change is applied in memory. Sets this thread's [`last_ticket`].
    pub(crate) fn journal(
        &self,
        record: &crate::log::LogRecord<'_>,
    ) -> Result<Option<Journaled<'_>>> {
        let Some(durability) = self.durability() else {
            return Ok(None);
        };
        if durability.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let log = durability.log.read();
        let lsn = match log.as_ref() {
            Some(writer) => writer.append(record)?,
            None => return Err(Error::Closed),
        };
        LAST_TICKET.with(|t| t.set(durability.base.load(Ordering::Acquire) + lsn));
        if lsn > durability.compact_at.load(Ordering::Relaxed)
            && !durability.compacting.swap(true, Ordering::AcqRel)
        {
            self.start_compaction();
        }
        Ok(Some(Journaled {
            _log: log,
            generation: durability.generation.load(Ordering::Acquire),
            lsn,
        }))
    }

    fn start_compaction(&self) {
        let Some(engine) = self.strong() else { return };
        let spawned = std::thread::Builder::new()
            .name("stepstate-compaction".into())
            .spawn(move || {
                // A failed compaction leaves the previous snapshot and every log since it:
                // recovery stays complete, and the next threshold crossing tries again.
                let _ = engine.compact();
                if let Some(durability) = engine.durability() {
                    durability.compacting.store(false, Ordering::Release);
                }
            });
        if spawned.is_err() {
            if let Some(durability) = self.durability() {
                durability.compacting.store(false, Ordering::Release);
            }
        }
    }

    /// Writes a new snapshot and starts a new log, then deletes the older files. Writers are
    /// held up only while the log is switched (one final sync of the old log); the snapshot
    /// is written one group at a time under that group's read lock.
    pub fn compact(&self) -> Result<()> {
        let Some(durability) = self.durability() else {
            return Ok(());
        };
        let _running = durability.compaction.lock();
        if durability.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let generation = durability.generation.load(Ordering::Acquire) + 1;
        let new_log = Arc::new(create_log(
            &durability
                .dir
                .join(crate::log::dir::log_file_name(generation)),
            durability.policy,
            durability.writer_options.clone(),
            durability.storage.as_ref(),
        )?);
        {
            let mut current = durability.log.write();
            let Some(old_log) = current.as_ref() else {
                return Err(Error::Closed);
            };
            old_log.close()?;
            let base = durability.base.load(Ordering::Acquire) + old_log.len();
            durability.install_on_durable(&new_log, base);
            durability.base.store(base, Ordering::Release);
            durability.generation.store(generation, Ordering::Release);
            *current = Some(new_log);
        }
        let live_bytes = self.write_snapshot(&durability.dir, generation, &durability.closed)?;
        if let Some(files) = durability.files.lock().as_ref() {
            files.retire_before(generation)?;
        }
        self.adopt_snapshot(
            &durability
                .dir
                .join(crate::log::dir::snapshot_file_name(generation)),
        );
        durability
            .compact_at
            .store(durability.compact_threshold(live_bytes), Ordering::Relaxed);
        Ok(())
    }

    /// Registers `listener` to be told the durable ticket after each sync of the log (or the
    /// error that poisoned it); returns an id for [`Engine::remove_on_durable`]. No-op (id 0)
    /// for an in-memory engine.
    pub fn on_durable(&self, listener: DurableListener) -> u64 {
        let Some(durability) = self.durability() else {
            return 0;
        };
        let id = durability.durable.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        durability.durable.listeners.lock().push((id, listener));
        id
    }

    /// Removes a durability listener.
    pub fn remove_on_durable(&self, id: u64) {
        if let Some(durability) = self.durability() {
            durability
                .durable
                .listeners
                .lock()
                .retain(|(i, _)| *i != id);
        }
    }

    /// The store's sync policy; `None` for an in-memory engine.
    pub fn sync_policy(&self) -> Option<SyncPolicy> {
        self.durability().map(|d| d.policy)
    }

    /// The highest ticket known durable (synced to disk).
    pub fn durable_ticket(&self) -> u64 {
        self.durability().map_or(0, |d| {
            // The base is read under the log guard: compaction switches both under the write
            // lock, so reading the base first could pair the old base with the new, empty log.
            let log = d.log.read();
            d.base.load(Ordering::Acquire) + log.as_ref().map_or(0, |log| log.durable_lsn())
        })
    }

    /// Flushes everything acknowledged, closes the log and releases the directory lock, then
    /// everything the store holds: its file descriptors, threads, snapshot maps, items and
    /// listeners ([`Engine::release`]), even while something still holds the engine. Later
    /// calls fail with `CLOSED`. Idempotent.
    pub fn close_file(&self) -> Result<()> {
        let Some(durability) = self.durability() else {
            return Ok(());
        };
        if durability.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shut_down();
        let _no_compaction = durability.compaction.lock();
        let result = {
            let mut slot = durability.log.write();
            let result = slot.as_ref().map_or(Ok(()), |log| log.close());
            if let Some(log) = slot.take() {
                // Everything written is durable now (or never will be): the last ticket.
                durability.base.fetch_add(log.len(), Ordering::AcqRel);
            }
            result
        };
        durability.files.lock().take();
        durability.durable.listeners.lock().clear();
        self.release();
        result
    }
}

/// The engines of the file stores open in this process, by canonical directory.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Engine>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Engine>>>> = OnceLock::new();
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

/// Opens the file store at `file.path`, or joins the engine this process already has open
/// there (whose options then apply; `options` and `file` of later openers are ignored). Pair
/// every successful call with one [`release_shared`].
pub fn open_shared(options: EngineOptions, file: FileOptions) -> Result<Arc<Engine>> {
    let key = canonical(&file.path)?;
    let mut open = registry().lock();
    let engine = match open.get(&key) {
        Some(engine) => engine.clone(),
        None => {
            let engine = Engine::open_file(
                options,
                FileOptions {
                    path: key.clone(),
                    ..file
                },
            )?;
            open.insert(key, engine.clone());
            engine
        }
    };
    if let Some(durability) = engine.durability() {
        durability.handles.fetch_add(1, Ordering::AcqRel);
    }
    Ok(engine)
}

/// Gives back one [`open_shared`]; the last one closes the store (flush, close the log,
/// release the lock) and returns the result of that close.
pub fn release_shared(engine: &Arc<Engine>) -> Result<()> {
    let Some(durability) = engine.durability() else {
        return Ok(());
    };
    let mut open = registry().lock();
    if durability.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
        return Ok(());
    }
    open.retain(|_, e| !Arc::ptr_eq(e, engine));
    // Closed before the registry is unlocked, so that a new opener of the same path finds the
    // directory lock released.
    engine.close_file()
}
