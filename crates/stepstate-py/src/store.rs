//! The in-process stores (memory and file) for Python: each call is one synchronous call into
//! the engine, with the GIL held (it takes microseconds); values cross as Python objects
//! converted to and from the stored JSON text in Rust (`value.rs`). Only opening a file store
//! (recovery) releases the GIL.
//!
//! Nothing here runs Python code from another thread: change events and durable
//! acknowledgements wake the asyncio loop through a socket ([`Waker`]), and the loop then
//! takes them (`Subscription.drain`, `Store.durable_ticket`).

use crate::errors::{invalid_argument, to_py};
use crate::utf8::utf8;
use crate::value::{from_json, from_json_or_none, ops_to_json, to_json};
use crate::waker::Waker;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use stepstate_core::events::{EventQueue, Filter, Publisher};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::file::{open_shared, release_shared};
use stepstate_core::store::FileOptions;
use stepstate_core::{Engine, EngineOptions, Error, FileStore, Ttl};

thread_local! {
    /// The journal ticket of the last write this thread made (see `Store.last_ticket`).
    static LAST_TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A group name or key: a `str`, else `INVALID_ARGUMENT` (the engine checks the rest).
pub fn name<'a>(value: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    let text = value.cast::<PyString>().map_err(|_| {
        let kind = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        invalid_argument(format!("{what} must be a non-empty str, got {kind}"))
    })?;
    utf8(text).ok_or_else(|| invalid_argument(format!("{what} is not valid Unicode")))
}

/// The engine options: `max_value_bytes` and `default_ttl_ms` of 0 mean none.
pub fn engine_options(max_value_bytes: u64, default_ttl_ms: f64) -> EngineOptions {
    EngineOptions {
        max_value_bytes: (max_value_bytes > 0).then_some(max_value_bytes as usize),
        default_ttl_ms: (default_ttl_ms > 0.0).then(|| default_ttl_ms.ceil() as u64),
        ..EngineOptions::default()
    }
}

/// A memory or file store, as one `StateManager` holds it.
#[pyclass(frozen, module = "stepstate._native")]
pub struct Store {
    engine: Arc<Engine>,
    /// The file store this manager holds one reference of (see `open_shared`); `None` in
    /// memory.
    file: Option<Arc<FileStore>>,
    closed: AtomicBool,
    waker: Arc<Waker>,
    /// The durability listener's id, once `watch_durable` registered it.
    durable_listener: AtomicU64,
    /// Set when the log failed: pending writes will never be durable.
    durable_failed: Arc<AtomicBool>,
}

impl Store {
    fn new(engine: Arc<Engine>, file: Option<Arc<FileStore>>) -> PyResult<Store> {
        Ok(Store {
            engine,
            file,
            closed: AtomicBool::new(false),
            waker: Arc::new(Waker::new().map_err(|err| to_py(Error::Io(err.to_string())))?),
            durable_listener: AtomicU64::new(0),
            durable_failed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn engine(&self) -> PyResult<&Engine> {
        if self.closed.load(Ordering::Acquire) {
            return Err(to_py(Error::Closed));
        }
        Ok(&self.engine)
    }

    fn file(&self) -> PyResult<Option<&Arc<FileStore>>> {
        self.engine()?;
        Ok(self.file.as_ref())
    }
}

/// A manager garbage-collected without `close()` still gives back its reference, so that the
/// directory lock is not held forever.
impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close_store();
    }
}

impl Store {
    /// A whole-group read (`list`, `entries`, `keys`): the engine's JSON text, as Python objects.
    fn read_group<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
        read: fn(&Engine, &str) -> Result<String, Error>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let group = name(group, "group")?;
        let text = read(self.engine()?, group).map_err(to_py)?;
        from_json(py, &text)
    }

    fn close_store(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.file {
            Some(store) => {
                let listener = self.durable_listener.swap(0, Ordering::AcqRel);
                if listener != 0 {
                    store.remove_on_durable(listener);
                }
                release_shared(store)
            }
            None => {
                self.engine.release();
                Ok(())
            }
        }
    }
}

#[pymethods]
impl Store {
    /// A new in-memory store.
    #[staticmethod]
    fn memory(max_value_bytes: u64, default_ttl_ms: f64) -> PyResult<Store> {
        Store::new(
            Engine::new(engine_options(max_value_bytes, default_ttl_ms)),
            None,
        )
    }

    /// Opens (or joins, within this process) the file store in directory `path`; recovery
    /// runs with the GIL released.
    #[staticmethod]
    fn open_file(
        py: Python<'_>,
        path: std::path::PathBuf,
        sync: &str,
        max_value_bytes: u64,
        default_ttl_ms: f64,
    ) -> PyResult<Store> {
        let policy = SyncPolicy::named(sync).map_err(to_py)?;
        let options = engine_options(max_value_bytes, default_ttl_ms);
        let mut file = FileOptions::new(path);
        file.sync_policy = policy;
        let store = py.detach(|| open_shared(options, file)).map_err(to_py)?;
        Store::new(store.engine().clone(), Some(store))
    }

    /// The value, or None.
    fn get<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        // The text is copied out so that no Python object is made while the group is locked
        // (making one may run a finalizer that writes to this store).
        let text = self
            .engine()?
            .get_with(group, key, |text| text.map(String::from))
            .map_err(to_py)?;
        from_json_or_none(py, text.as_deref())
    }

    /// Stores `value` with a TTL in milliseconds (negative: the default); returns the
    /// previous value, or None.
    fn set<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        ttl_ms: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let engine = self.engine()?;
        let text = to_json(value).map_err(|err| to_py(err.for_item("set", group, key)))?;
        let replaced = engine
            .set_owned(group, key, text, Ttl::from_millis_arg(ttl_ms))
            .map_err(to_py)?;
        LAST_TICKET.set(replaced.ticket);
        from_json_or_none(py, replaced.old.as_deref())
    }

    /// Applies `ops` atomically; returns the new value, or `(new, old)` with `with_old`.
    fn update<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        ops: &Bound<'py, PyAny>,
        with_old: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let engine = self.engine()?;
        let ops = ops_to_json(ops).map_err(|err| to_py(err.for_item("update", group, key)))?;
        let result = engine.update(group, key, &ops).map_err(to_py)?;
        LAST_TICKET.set(result.ticket);
        let new = from_json(py, &result.new_value)?;
        if !with_old {
            return Ok(new);
        }
        let old = from_json_or_none(py, result.old_value.as_deref())?;
        Ok(PyTuple::new(py, [new, old])?.into_any())
    }

    /// Removes an item; returns its value, or None.
    fn delete<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let removed = self.engine()?.delete_owned(group, key).map_err(to_py)?;
        LAST_TICKET.set(removed.as_ref().map_or(0, |removed| removed.ticket));
        from_json_or_none(py, removed.as_ref().map(|removed| &*removed.old))
    }

    /// Removes every item of a group; returns how many were removed.
    fn clear(&self, group: &Bound<'_, PyAny>) -> PyResult<usize> {
        let group = name(group, "group")?;
        let (removed, ticket) = self.engine()?.clear_ticketed(group).map_err(to_py)?;
        LAST_TICKET.set(ticket);
        Ok(removed)
    }

    /// The group's values in insertion order.
    fn list<'py>(&self, py: Python<'py>, group: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.read_group(py, group, Engine::group_json)
    }

    /// The group's items as `{"key": ..., "value": ...}` dicts in insertion order.
    fn entries<'py>(
        &self,
        py: Python<'py>,
        group: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.read_group(py, group, Engine::entries_json)
    }

    /// The group's keys in insertion order.
    fn keys<'py>(&self, py: Python<'py>, group: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.read_group(py, group, Engine::keys_json)
    }

    /// The sorted names of non-empty groups.
    fn list_groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.engine()?.list_groups())
    }

    /// Closes this manager's hold on the store; the last one of a file store flushes the log
    /// and releases the directory lock. The wake socket closes too: the loop must have stopped
    /// watching it. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let closed = py.detach(|| self.close_store()).map_err(to_py);
        self.waker.close();
        closed
    }

    /// The sync policy (`always`, `everysec`, `no`), or `memory`.
    fn sync_policy(&self) -> PyResult<&'static str> {
        Ok(self
            .file()?
            .map_or("memory", |store| store.sync_policy().name()))
    }

    /// The journal ticket of the last write this thread made through any store (0: none, or
    /// a memory store): the write is durable once `durable_ticket()` reaches it.
    #[staticmethod]
    fn last_ticket() -> u64 {
        LAST_TICKET.get()
    }

    /// The highest ticket known to be on disk. Raises `IO` once the log failed: writes not
    /// yet durable never will be.
    fn durable_ticket(&self) -> PyResult<u64> {
        let Some(store) = self.file()? else {
            return Ok(u64::MAX);
        };
        if self.durable_failed.load(Ordering::Acquire) {
            return Err(to_py(Error::Io(
                "the log failed: the write may not be on disk".into(),
            )));
        }
        Ok(store.durable_ticket())
    }

    /// Wakes the waker after each sync of the log (once per store; later calls do nothing).
    fn watch_durable(&self) -> PyResult<()> {
        let Some(store) = self.file()? else {
            return Ok(());
        };
        if self.durable_listener.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let waker = self.waker.clone();
        let failed = self.durable_failed.clone();
        let id = store.on_durable(Arc::new(move |ticket| {
            if ticket.is_err() {
                failed.store(true, Ordering::Release);
            }
            waker.wake();
        }));
        self.durable_listener.store(id, Ordering::Release);
        Ok(())
    }

    /// The file descriptor that becomes readable when events or acknowledgements wait.
    fn wake_fd(&self) -> i32 {
        self.waker.fd()
    }

    /// Empties the wake socket (before taking what waits, so that no wake-up is lost).
    fn clear_wake(&self) {
        self.waker.clear();
    }

    /// Subscribes to the changes of `group` (None: all) and `key` (None: all).
    #[pyo3(signature = (group=None, key=None))]
    fn subscribe(&self, group: Option<String>, key: Option<String>) -> PyResult<Subscription> {
        self.engine()?;
        Ok(Subscription::new(
            self.engine.clone(),
            0,
            &self.waker,
            Filter { group, key },
        ))
    }
}

/// One listener's subscription: its queue of events not yet taken.
#[pyclass(frozen, module = "stepstate._native")]
pub struct Subscription {
    source: Arc<dyn Publisher>,
    id: u64,
    queue: Arc<EventQueue>,
}

impl Subscription {
    pub fn new(
        source: Arc<dyn Publisher>,
        since: u128,
        waker: &Arc<Waker>,
        filter: Filter,
    ) -> Subscription {
        let waker = waker.clone();
        let (id, queue) = source.events().subscribe_since(
            filter,
            Box::new(move || {
                waker.wake();
                true
            }),
            since,
        );
        Subscription { source, id, queue }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.source.events().unsubscribe(self.id);
    }
}

#[pymethods]
impl Subscription {
    /// Takes the waiting events, oldest first, as a list of event dicts.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(py, &self.queue.drain())
    }

    /// Ends the subscription; idempotent.
    fn close(&self) {
        self.source.events().unsubscribe(self.id);
    }
}
