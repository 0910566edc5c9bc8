//! The log writer: appends framed [`LogRecord`]s to a log file through a shared memory map,
//! and a background thread that makes them durable according to the [`SyncPolicy`].
//!
//! Why a memory map: an append is a `memcpy` into a `MAP_SHARED` mapping of the file, so it is
//! in the kernel's page cache the moment `append` returns. A process crash (`kill -9`, a panic
//! that aborts) therefore never loses an acknowledged append, without one `write` syscall per
//! record; only power loss depends on the sync policy. The file is extended with
//! `posix_fallocate` a window ahead of the write position (default 16 MiB), so the mapped
//! pages always have disk blocks behind them (no `SIGBUS` on a full disk) and read as zeros
//! past the end of the data. [`LogWriter::close`] truncates the file back to its data.
//!
//! After any failed extend, map, write or sync the writer is poisoned: every later append
//! fails with [`Error::Io`] rather than pretend (fjall's `Poisoned`, redb's `PreviousIo`),
//! because after a failed fsync the kernel may already have dropped the dirty pages.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memmap2::{MmapMut, MmapOptions};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::dir::sync_directory;
use super::record::{LogRecord, MAX_PAYLOAD_LEN};
use super::watermark::Watermark;
use crate::error::{Error, Result};

/// When appended records reach the disk, described by what a crash can lose (the loss
/// windows of Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `appendfsync always`: a record is durable once [`LogWriter::wait_durable`] returns for
    /// its sequence number; acknowledge writes only then and they survive a power loss. Syncs
    /// are group commits: the sync thread starts one as soon as anything is unsynced, and
    /// every append made meanwhile shares the next one. Safest and slowest.
    Always,
    /// `appendfsync everysec` (the default): dirty data is synced once per second. A process
    /// crash loses nothing acknowledged (the data is in the page cache); a power loss or
    /// kernel crash may lose about the last second of writes.
    #[default]
    EverySec,
    /// `appendfsync no`: never sync until [`LogWriter::close`]; the OS writes the pages back
    /// when it likes (typically within 30 seconds on Linux). A process crash loses nothing
    /// acknowledged; a power loss may lose whatever the OS had not written yet.
    No,
}

impl SyncPolicy {
    /// Every policy by the name the bindings and the README use.
    const NAMES: [(&'static str, SyncPolicy); 3] = [
        ("always", SyncPolicy::Always),
        ("everysec", SyncPolicy::EverySec),
        ("no", SyncPolicy::No),
    ];

    /// The policy called `name` (`always`, `everysec` or `no`), else `INVALID_ARGUMENT`.
    pub fn named(name: &str) -> Result<SyncPolicy> {
        SyncPolicy::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, policy)| *policy)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "sync must be 'always', 'everysec' or 'no', got {name:?}"
                ))
            })
    }

    /// The policy's name (`always`, `everysec` or `no`).
    pub fn name(self) -> &'static str {
        SyncPolicy::NAMES
            .iter()
            .find(|(_, known)| *known == self)
            .map_or("unknown", |(name, _)| name)
    }
}

/// Tuning of a [`LogWriter`]; `WriterOptions::default()` suits production.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Bytes of the file mapped (and allocated on disk) at a time, ahead of the write
    /// position. Default 16 MiB (it bounds the resident pages the log maps); rounded up to the page size. A record larger than this gets a
    /// window of its own size. Small values only make sense in tests.
    pub window_bytes: usize,
    /// Time between two syncs under [`SyncPolicy::EverySec`]. Default 1 second.
    pub everysec_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            window_bytes: 16 << 20,
            everysec_interval: Duration::from_secs(1),
        }
    }
}

/// The file operations of a [`LogWriter`], behind a trait so that tests can inject faults
/// (fail the Nth write or the Nth sync). Production uses [`FileStorage`].
#[doc(hidden)]
pub trait LogStorage: Send + Sync + 'static {
    /// Extends the file so that bytes `offset..offset + len` exist and have disk blocks.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;
    /// Maps `len` bytes at `offset` (a multiple of the page size) shared and writable.
    fn map(&self, offset: u64, len: usize) -> io::Result<MmapMut>;
    /// Copies `bytes` to the start of `dst` (a slice of a mapping, exactly `bytes.len()` long).
    fn write(&self, dst: &mut [u8], bytes: &[u8]) -> io::Result<()> {
        dst.copy_from_slice(bytes);
        Ok(())
    }
    /// Makes everything written so far durable.
    fn sync(&self) -> io::Result<()>;
    /// Sets the length of the file (used to drop the zero tail on close).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The length of the file now, to notice another program cutting it while it is mapped
    /// (touching a mapped page past the end of a file kills the process with `SIGBUS`).
    /// Storage that cannot tell answers `u64::MAX`.
    fn file_len(&self) -> io::Result<u64> {
        Ok(u64::MAX)
    }
}

/// The real [`LogStorage`]: a log file on disk.
#[doc(hidden)]
#[derive(Debug)]
pub struct FileStorage {
    file: File,
}

impl FileStorage {
    /// Creates a new log file (mode 0600; fails if it exists) and syncs its directory so that
    /// the file itself survives a power loss.
    pub fn create(path: &Path) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        if let Some(parent) = path.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            sync_directory(parent)?;
        }
        Ok(FileStorage { file })
    }

    /// Opens an existing log file for writing.
    pub fn open(path: &Path) -> io::Result<FileStorage> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(FileStorage { file })
    }
}

impl LogStorage for FileStorage {
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        allocate_file(&self.file, offset, len)
    }

    fn map(&self, offset: u64, len: usize) -> io::Result<MmapMut> {
        // SAFETY: the store directory is locked (`DirLock`), so no other process truncates or
        // rewrites this file while it is mapped, and the writer never truncates it before
        // dropping the mapping.
        unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len)
                .map_mut(&self.file)
        }
    }

    fn sync(&self) -> io::Result<()> {
        // On Linux, fdatasync writes back the dirty pages of every shared mapping of the file
        // (msync(MS_SYNC) is the same range fsync), including windows already unmapped.
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn file_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn allocate_file(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "log file offset too large",
        ));
    };
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, n) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => extend_sparse(file, offset + len),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn allocate_file(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let _ = file.as_raw_fd();
    extend_sparse(file, offset + len)
}

/// Fallback where the filesystem cannot preallocate: grow the file (sparse, zero-filled).
fn extend_sparse(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// Opens the watermark of the log at `path`, records `start_len` (the data already durable)
/// and syncs the directory, so that the watermark exists on disk before the first append: a
/// non-empty log without one was tampered with (see `watermark`).
fn start_watermark(path: &Path, start_len: u64) -> io::Result<Watermark> {
    let watermark = Watermark::open(path)?;
    watermark.record(start_len)?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync_directory(parent)?;
    Ok(watermark)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Told the new durable lsn after each successful sync, or the error that poisoned the writer
/// (after which nothing more becomes durable).
pub type DurableCallback = dyn Fn(std::result::Result<u64, &Error>) + Send + Sync;

struct Window {
    offset: u64,
    map: MmapMut,
    /// The thread faulting the window's pages in ahead of the writer (see `prefault`).
    prefault: Option<std::thread::JoinHandle<()>>,
}

impl Window {
    /// Maps `map` at `offset` and, with `prefault`, starts faulting its pages in, writable, on
    /// another thread: the first write to each page of a fresh window otherwise takes a page
    /// fault (reading the page in and marking it dirty) on the writing thread, about a third
    /// of what the log adds to a write. No byte of the window is touched, but its pages are
    /// dirty from then on, so a sync may write some not yet used (zeros, as the file already
    /// holds there) once before they are written again: up to one window of extra disk writes
    /// per window, in the background. Not done under `always`, where a sync that carries a
    /// window of zeros would delay the writes waiting on it.
    fn new(offset: u64, map: MmapMut, prefault: bool) -> Window {
        let (address, len) = (map.as_ptr() as usize, map.len());
        let prefault = prefault
            .then(|| {
                std::thread::Builder::new()
                    .name("stepstate-log-prefault".into())
                    .spawn(move || {
                        // SAFETY: the range is one live mapping: `Window`'s `Drop` joins this thread
                        // before the mapping is unmapped. MADV_POPULATE_WRITE (Linux 5.14) only
                        // populates page tables; where it is unknown it fails and nothing happens.
                        unsafe {
                            libc::madvise(
                                address as *mut libc::c_void,
                                len,
                                libc::MADV_POPULATE_WRITE,
                            );
                        }
                    })
                    .ok()
            })
            .flatten();
        Window {
            offset,
            map,
            prefault,
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some(prefault) = self.prefault.take() {
            let _ = prefault.join();
        }
    }
}

struct State {
    window: Option<Window>,
    /// End offset of the data appended so far (the last returned lsn).
    len: u64,
    /// Bytes of the file known to be allocated.
    allocated: u64,
    /// The message of the first I/O failure; set once, never cleared.
    poisoned: Option<String>,
    closing: bool,
    closed: bool,
    sync_requested: bool,
}

struct Shared {
    path: PathBuf,
    storage: Box<dyn LogStorage>,
    policy: SyncPolicy,
    interval: Duration,
    window_bytes: u64,
    page: u64,
    state: Mutex<State>,
    wake_syncer: Condvar,
    durable_changed: Condvar,
    durable: AtomicU64,
    syncs: AtomicU64,
    on_durable: Mutex<Option<Arc<DurableCallback>>>,
    /// Where the synced length is recorded for recovery (see `watermark`): after every sync,
    /// before the synced records are reported durable.
    watermark: Watermark,
}

/// Appends records to one log file; shared between threads through an `Arc`.
///
/// Every append returns a log sequence number (lsn): the file offset just past the record.
/// A record is durable once [`LogWriter::durable_lsn`] reaches its lsn. Appends are
/// serialized by an internal mutex held only for the copy into the mapping.
pub struct LogWriter {
    shared: Arc<Shared>,
    sync_thread: Mutex<Option<JoinHandle<()>>>,
}

thread_local! {
    static ENCODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LogWriter {
    /// Creates a new, empty log file at `path` (mode 0600; fails if it already exists) and
    /// starts its sync thread.
    pub fn create(path: &Path, policy: SyncPolicy, options: WriterOptions) -> Result<LogWriter> {
        let storage = FileStorage::create(path)
            .map_err(|e| Error::Io(format!("cannot create log {}: {e}", path.display())))?;
        Self::with_storage(Box::new(storage), path, 0, policy, options)
    }

    /// Continues an existing log whose first `valid_len` bytes are valid records (as reported
    /// by [`replay_log`](super::reader::replay_log)): anything after them, such as a torn
    /// last record, is cut off and synced away before the first append.
    pub fn open_append(
        path: &Path,
        valid_len: u64,
        policy: SyncPolicy,
        options: WriterOptions,
    ) -> Result<LogWriter> {
        let storage = FileStorage::open(path)
            .map_err(|e| Error::Io(format!("cannot open log {}: {e}", path.display())))?;
        Self::continue_storage(Box::new(storage), path, valid_len, policy, options)
    }

    /// [`LogWriter::open_append`] over any storage (for fault-injection tests).
    #[doc(hidden)]
    pub fn continue_storage(
        storage: Box<dyn LogStorage>,
        path: &Path,
        valid_len: u64,
        policy: SyncPolicy,
        options: WriterOptions,
    ) -> Result<LogWriter> {
        let io_err = |e: io::Error| Error::Io(format!("cannot open log {}: {e}", path.display()));
        storage.set_len(valid_len).map_err(io_err)?;
        storage.sync().map_err(io_err)?;
        Self::with_storage(storage, path, valid_len, policy, options)
    }

    /// Builds a writer over any storage whose first `start_len` bytes are data already
    /// durable. For fault-injection tests; `path` only names the log in messages.
    #[doc(hidden)]
    pub fn with_storage(
        storage: Box<dyn LogStorage>,
        path: &Path,
        start_len: u64,
        policy: SyncPolicy,
        options: WriterOptions,
    ) -> Result<LogWriter> {
        let page = page_size();
        let window_bytes = (options.window_bytes.max(1) as u64).div_ceil(page) * page;
        let watermark = start_watermark(path, start_len).map_err(|e| {
            Error::Io(format!(
                "cannot record the synced length of log {}: {e}",
                path.display()
            ))
        })?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            storage,
            policy,
            interval: options.everysec_interval,
            window_bytes,
            page,
            state: Mutex::new(State {
                window: None,
                len: start_len,
                allocated: start_len,
                poisoned: None,
                closing: false,
                closed: false,
                sync_requested: false,
            }),
            wake_syncer: Condvar::new(),
            durable_changed: Condvar::new(),
            durable: AtomicU64::new(start_len),
            syncs: AtomicU64::new(0),
            on_durable: Mutex::new(None),
            watermark,
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("stepstate-log-sync".into())
            .spawn(move || run_syncer(&thread_shared))
            .map_err(|e| Error::Io(format!("cannot start the log sync thread: {e}")))?;
        Ok(LogWriter {
            shared,
            sync_thread: Mutex::new(Some(handle)),
        })
    }

    /// Appends one record and returns its lsn (the end offset of the record in the file).
    ///
    /// The record is in the page cache when this returns (it survives a process crash); it
    /// is durable against power loss once [`LogWriter::wait_durable`] returns for the lsn.
    /// Fails with [`Error::ValueTooLarge`] for a payload over 1 GiB, [`Error::Closed`] after
    /// close, and [`Error::Io`] on an I/O failure now or earlier (the writer is poisoned).
    pub fn append(&self, record: &LogRecord<'_>) -> Result<u64> {
        let size = record.payload_len();
        if size > MAX_PAYLOAD_LEN {
            return Err(Error::ValueTooLarge {
                size,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        ENCODE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            record.encode_into(&mut buf);
            let result = self.append_frame(&buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            result
        })
    }

    fn append_frame(&self, bytes: &[u8]) -> Result<u64> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        if state.closing {
            return Err(Error::Closed);
        }
        if let Some(message) = &state.poisoned {
            return Err(refusing(message));
        }
        let start = state.len;
        let end = start + bytes.len() as u64;
        if let Err(e) = shared.ensure_window(&mut state, start, end) {
            return Err(shared.poison(&mut state, "cannot extend or map", e));
        }
        let written = match state.window.as_mut() {
            Some(window) => {
                let at = (start - window.offset) as usize;
                shared
                    .storage
                    .write(&mut window.map[at..at + bytes.len()], bytes)
            }
            None => Err(io::Error::other("no mapped window")),
        };
        if let Err(e) = written {
            return Err(shared.poison(&mut state, "cannot write", e));
        }
        state.len = end;
        if shared.policy == SyncPolicy::Always {
            shared.wake_syncer.notify_one();
        }
        Ok(end)
    }

    /// Bytes of data in the log (the lsn of the last record, or the starting length).
    pub fn len(&self) -> u64 {
        self.shared.state.lock().len
    }

    /// True when the log holds no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest lsn known durable: every record whose lsn is at most this has been synced.
    pub fn durable_lsn(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Number of successful syncs so far (for tests and metrics: under
    /// [`SyncPolicy::Always`] it shows how many appends shared each fsync).
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The path of the log file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Sets the function called by the sync thread, outside any lock, with the new durable lsn
    /// after each successful sync (the Node binding resolves waiting promises from it), and
    /// once with the error when the writer is poisoned (so waiters can be failed rather than
    /// left hanging). It must not block for long; a panic in it is caught and ignored.
    /// Replaces any earlier one.
    pub fn set_on_durable(&self, callback: Box<DurableCallback>) {
        *self.shared.on_durable.lock() = Some(Arc::from(callback));
    }

    /// Blocks until the record with this lsn is durable. Fails with [`Error::Io`] if the
    /// writer was poisoned before it became durable, and [`Error::Closed`] if the writer was
    /// closed without it (an lsn never returned by `append`). Under [`SyncPolicy::No`] it
    /// asks for a sync rather than wait for close.
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        loop {
            if shared.durable.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            if let Some(message) = &state.poisoned {
                return Err(refusing(message));
            }
            if state.closed {
                return Err(Error::Closed);
            }
            if shared.policy == SyncPolicy::No && !state.sync_requested {
                state.sync_requested = true;
                shared.wake_syncer.notify_one();
            }
            shared.durable_changed.wait(&mut state);
        }
    }

    /// Syncs everything appended so far and waits for it, whatever the policy. Fails with
    /// the poison error once the writer is poisoned, even if nothing is left to sync.
    pub fn sync_now(&self) -> Result<()> {
        let lsn = {
            let mut state = self.shared.state.lock();
            if let Some(message) = &state.poisoned {
                return Err(refusing(message));
            }
            if state.len > self.shared.durable.load(Ordering::Acquire) {
                state.sync_requested = true;
                self.shared.wake_syncer.notify_one();
            }
            state.len
        };
        self.wait_durable(lsn)
    }

    /// Syncs what was appended, stops the sync thread, truncates the file to its data (so the
    /// preallocated zero tail does not persist) and releases the mapping. Later appends fail
    /// with [`Error::Closed`]. Calling it again is harmless and returns `Ok`. Returns the
    /// poison error if an I/O failure happened (the file is then left as it is).
    pub fn close(&self) -> Result<()> {
        let Some(handle) = self.sync_thread.lock().take() else {
            return Ok(());
        };
        let shared = &*self.shared;
        {
            let mut state = shared.state.lock();
            state.closing = true;
            shared.wake_syncer.notify_all();
        }
        let joined = handle.join();
        let mut state = shared.state.lock();
        if joined.is_err() && state.poisoned.is_none() {
            state.poisoned = Some(format!(
                "the sync thread of log {} panicked",
                shared.path.display()
            ));
        }
        state.window = None;
        let result = match &state.poisoned {
            Some(message) => Err(refusing(message)),
            None => {
                let len = state.len;
                match shared
                    .storage
                    .set_len(len)
                    .and_then(|()| shared.storage.sync())
                    .and_then(|()| shared.watermark.record(len))
                {
                    Ok(()) => Ok(()),
                    Err(e) => Err(shared.poison(&mut state, "cannot truncate on close", e)),
                }
            }
        };
        state.closed = true;
        shared.durable_changed.notify_all();
        result
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.shared.path)
            .field("policy", &self.shared.policy)
            .field("durable_lsn", &self.durable_lsn())
            .finish_non_exhaustive()
    }
}

fn refusing(message: &str) -> Error {
    Error::Io(format!(
        "refusing writes after an earlier I/O failure: {message}"
    ))
}

impl Shared {
    /// Records the first I/O failure, wakes every waiter and returns the error for the caller.
    fn poison(&self, state: &mut State, what: &str, err: io::Error) -> Error {
        let message = format!("{what} log {}: {err}", self.path.display());
        let error = Error::Io(message.clone());
        if state.poisoned.is_none() {
            state.poisoned = Some(message.clone());
            if let Some(callback) = self.on_durable.lock().clone() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    callback(Err(&error))
                }));
            }
        }
        self.durable_changed.notify_all();
        self.wake_syncer.notify_all();
        error
    }

    /// Fails when the file is shorter than what the writer allocated: another program cut it,
    /// and a write to the mapped pages past its new end would kill the process (`SIGBUS`).
    fn check_not_cut(&self, state: &State) -> io::Result<()> {
        let len = self.storage.file_len()?;
        if len < state.allocated {
            return Err(io::Error::other(format!(
                "another program cut it to {len} bytes while the store was open (it had {}); \
                 the files of an open store must not be changed",
                state.allocated
            )));
        }
        Ok(())
    }

    /// Makes the current window cover `start..end`, mapping a new one (allocated on disk
    /// first) starting at `start` rounded down to the page size if needed.
    fn ensure_window(&self, state: &mut State, start: u64, end: u64) -> io::Result<()> {
        if let Some(window) = &state.window {
            if start >= window.offset && end <= window.offset + window.map.len() as u64 {
                return Ok(());
            }
        }
        state.window = None;
        // Allocating would silently extend a cut file with zeros over what it lost.
        self.check_not_cut(state)?;
        let offset = start - start % self.page;
        let len = (end - offset).max(self.window_bytes).div_ceil(self.page) * self.page;
        let map_len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "window too large"))?;
        if offset + len > state.allocated {
            self.storage
                .allocate(state.allocated, offset + len - state.allocated)?;
            state.allocated = offset + len;
        }
        let map = self.storage.map(offset, map_len)?;
        state.window = Some(Window::new(offset, map, self.policy != SyncPolicy::Always));
        Ok(())
    }
}

/// How often the sync thread checks that no other program cut the log while it is mapped.
const CUT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The sync thread: waits for work according to the policy, syncs without holding the lock,
/// records the synced length in the watermark, then publishes the durable lsn and calls the
/// callback; exits after the final sync on close. Once a second it also checks that the file
/// was not cut by another program, and poisons the writer if it was, so that later writes
/// fail with `IO` instead of killing the process.
fn run_syncer(shared: &Shared) {
    let mut state = shared.state.lock();
    let mut next_tick = Instant::now() + shared.interval;
    let mut next_check = Instant::now() + CUT_CHECK_INTERVAL;
    loop {
        if state.poisoned.is_some() {
            if state.closing {
                break;
            }
            shared.wake_syncer.wait(&mut state);
            continue;
        }
        let now = Instant::now();
        if now >= next_check {
            next_check = now + CUT_CHECK_INTERVAL;
            if let Err(e) = shared.check_not_cut(&state) {
                shared.poison(&mut state, "cannot keep writing", e);
                continue;
            }
        }
        let dirty = state.len > shared.durable.load(Ordering::Acquire);
        let due = dirty
            && (state.closing
                || state.sync_requested
                || match shared.policy {
                    SyncPolicy::Always => true,
                    SyncPolicy::EverySec => now >= next_tick,
                    SyncPolicy::No => false,
                });
        if !due {
            if state.closing {
                break;
            }
            state.sync_requested = false;
            let mut wake_at = next_check;
            if shared.policy == SyncPolicy::EverySec {
                if now >= next_tick {
                    next_tick = now + shared.interval;
                }
                wake_at = wake_at.min(next_tick);
            }
            shared.wake_syncer.wait_until(&mut state, wake_at);
            continue;
        }
        let target = state.len;
        state.sync_requested = false;
        // The watermark is recorded only once the log is synced (it must never claim more than
        // is on disk) and before anything is reported durable (it must cover every write
        // acknowledged under `always`).
        let synced = MutexGuard::unlocked(&mut state, || {
            shared.storage.sync().map_err(|e| ("cannot sync", e))?;
            shared
                .watermark
                .record(target)
                .map_err(|e| ("cannot record the synced length of", e))
        });
        if shared.policy == SyncPolicy::EverySec {
            next_tick = Instant::now() + shared.interval;
        }
        match synced {
            Ok(()) => {
                shared.durable.store(target, Ordering::Release);
                shared.syncs.fetch_add(1, Ordering::Relaxed);
                shared.durable_changed.notify_all();
                let callback = shared.on_durable.lock().clone();
                if let Some(callback) = callback {
                    MutexGuard::unlocked(&mut state, || {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            callback(Ok(target))
                        }));
                    });
                }
            }
            Err((what, e)) => {
                shared.poison(&mut state, what, e);
            }
        }
    }
}
