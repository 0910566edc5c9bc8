//! The Redis store for Python. Each manager owns a small tokio runtime (one worker thread) on
//! which the core's async `RedisStore` runs; a call checks and converts its arguments at once
//! (so bad input raises before anything is sent), starts a task and returns. The task's result
//! waits in a list, and the manager's wake socket tells the asyncio loop, which takes the
//! results (`take_done`) and resolves the futures. No tokio thread ever takes the GIL.

use crate::errors::to_py;
use crate::store::{engine_options, name, Subscription};
use crate::value::{from_json, from_json_or_none, ops_to_json, to_json};
use crate::waker::Waker;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stepstate_core::events::Filter;
use stepstate_core::store::{GroupRead, RedisOptions, RedisStore};
use stepstate_core::{Error, Ttl};

/// What a finished call gives back, converted to Python objects by `take_done`.
enum Reply {
    Nothing,
    /// A value's text, or None.
    Value(Option<String>),
    /// An update's new value, with the old one when asked for.
    Updated {
        new: String,
        old: Option<Option<String>>,
    },
    Count(usize),
    Names(Vec<String>),
    /// JSON text of a list (values, entries or keys).
    Json(String),
}

/// Results of finished calls and the futures waiting for them.
#[derive(Default)]
struct Calls {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Py<PyAny>>>,
    done: Mutex<Vec<(u64, Result<Reply, Error>)>>,
}

/// One manager's connection to Redis.
#[pyclass(frozen, module = "stepstate._native")]
pub struct Redis {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    store: Arc<Mutex<Option<Arc<RedisStore>>>>,
    waker: Arc<Waker>,
    calls: Arc<Calls>,
}

impl Redis {
    /// The open store, `CLOSED` after `close()` (or before `open` finished).
    fn store(&self) -> PyResult<Arc<RedisStore>> {
        self.store
            .lock()
            .clone()
            .ok_or_else(|| to_py(Error::Closed))
    }

    /// Runs `work` on the runtime; its result resolves `future` through `take_done`.
    fn start<F>(&self, future: Py<PyAny>, work: F) -> PyResult<()>
    where
        F: Future<Output = Result<Reply, Error>> + Send + 'static,
    {
        let runtime = self.runtime.lock();
        let Some(runtime) = runtime.as_ref() else {
            return Err(to_py(Error::Closed));
        };
        let id = self.calls.next.fetch_add(1, Ordering::Relaxed);
        self.calls.waiting.lock().insert(id, future);
        let calls = self.calls.clone();
        let waker = self.waker.clone();
        runtime.spawn(async move {
            let result = work.await;
            let was_empty = {
                let mut done = calls.done.lock();
                done.push((id, result));
                done.len() == 1
            };
            if was_empty {
                waker.wake();
            }
        });
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Redis {
    fn shut_down(&self) {
        if let Some(store) = self.store.lock().take() {
            store.close();
        }
        if let Some(runtime) = self.runtime.lock().take() {
            // Waits (briefly: no task blocks) for the worker thread to drop the connections and end.
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// The whole-group reads, each one JSON text of a list.
impl Redis {
    fn read_group(
        &self,
        future: Py<PyAny>,
        group: &Bound<'_, PyAny>,
        read: GroupRead,
    ) -> PyResult<()> {
        // Called now, not in the task: the read comes after the writes made before it.
        let text = self.store()?.read_group(name(group, "group")?, read);
        self.start(future, async move { Ok(Reply::Json(text.await?)) })
    }
}

fn text_reply(text: Option<String>) -> Reply {
    Reply::Value(text)
}

#[pymethods]
impl Redis {
    #[new]
    fn new() -> PyResult<Redis> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stepstate-redis")
            .enable_all()
            .build()
            .map_err(|err| to_py(Error::Io(format!("cannot start the Redis runtime: {err}"))))?;
        Ok(Redis {
            runtime: Mutex::new(Some(runtime)),
            store: Arc::default(),
            waker: Arc::new(Waker::new().map_err(|err| to_py(Error::Io(err.to_string())))?),
            calls: Arc::default(),
        })
    }

    /// Connects to Redis at `url`; the change events under `prefix` are read from the first
    /// subscription on, and about `events_kept` of them kept (0: the default).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (future, url, prefix, command_timeout_ms, max_value_bytes, default_ttl_ms, events_kept, tls_ca=None))]
    fn open(
        &self,
        future: Py<PyAny>,
        url: String,
        prefix: String,
        command_timeout_ms: f64,
        max_value_bytes: u64,
        default_ttl_ms: f64,
        events_kept: u64,
        tls_ca: Option<String>,
    ) -> PyResult<()> {
        let mut options = RedisOptions::new(url);
        options.prefix = prefix;
        if events_kept > 0 {
            options.events_kept = events_kept;
        }
        options.tls_ca = tls_ca.map(String::into_bytes);
        if command_timeout_ms > 0.0 {
            options.command_timeout = Duration::from_millis(command_timeout_ms.ceil() as u64);
        }
        options.rules = engine_options(max_value_bytes, default_ttl_ms).rules();
        let slot = self.store.clone();
        self.start(future, async move {
            let store = RedisStore::open(options).await?;
            *slot.lock() = Some(store);
            Ok(Reply::Nothing)
        })
    }

    fn get(
        &self,
        future: Py<PyAny>,
        group: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        // Called now, not in the task: a call takes its place in its key's line when made.
        let get = self.store()?.get(group, key);
        self.start(future, async move {
            Ok(text_reply(get.await?.map(|(text, _)| text)))
        })
    }

    fn set(
        &self,
        future: Py<PyAny>,
        group: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl_ms: f64,
    ) -> PyResult<()> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let store = self.store()?;
        let text = to_json(value).map_err(|err| to_py(err.for_item("set", group, key)))?;
        let set = store.set(group, key, text, Ttl::from_millis_arg(ttl_ms));
        self.start(future, async move {
            Ok(text_reply(set.await?.old.map(String::from)))
        })
    }

    fn update(
        &self,
        future: Py<PyAny>,
        group: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        ops: &Bound<'_, PyAny>,
        with_old: bool,
    ) -> PyResult<()> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let store = self.store()?;
        let ops = ops_to_json(ops).map_err(|err| to_py(err.for_item("update", group, key)))?;
        let update = store.update(group, key, &ops);
        self.start(future, async move {
            let result = update.await?;
            Ok(Reply::Updated {
                new: result.new_value,
                old: with_old.then_some(result.old_value),
            })
        })
    }

    fn delete(
        &self,
        future: Py<PyAny>,
        group: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (group, key) = (name(group, "group")?, name(key, "key")?);
        let delete = self.store()?.delete(group, key);
        self.start(future, async move {
            Ok(text_reply(
                delete.await?.map(|removed| String::from(removed.old)),
            ))
        })
    }

    fn clear(&self, future: Py<PyAny>, group: &Bound<'_, PyAny>) -> PyResult<()> {
        // Called now, not in the task: a clear comes after the writes made before it.
        let clear = self.store()?.clear(name(group, "group")?);
        self.start(future, async move { Ok(Reply::Count(clear.await?)) })
    }

    fn list(&self, future: Py<PyAny>, group: &Bound<'_, PyAny>) -> PyResult<()> {
        self.read_group(future, group, GroupRead::Values)
    }

    fn entries(&self, future: Py<PyAny>, group: &Bound<'_, PyAny>) -> PyResult<()> {
        self.read_group(future, group, GroupRead::Entries)
    }

    fn keys(&self, future: Py<PyAny>, group: &Bound<'_, PyAny>) -> PyResult<()> {
        self.read_group(future, group, GroupRead::Keys)
    }

    fn list_groups(&self, future: Py<PyAny>) -> PyResult<()> {
        let store = self.store()?;
        self.start(future, async move {
            Ok(Reply::Names(store.list_groups().await?))
        })
    }

    /// The finished calls as `(future, ok, result)`: the result is the value when `ok`, the
    /// exception otherwise.
    fn take_done<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.waker.clear();
        let done = std::mem::take(&mut *self.calls.done.lock());
        let out = PyList::empty(py);
        for (id, result) in done {
            let Some(future) = self.calls.waiting.lock().remove(&id) else {
                continue;
            };
            let outcome = result
                .map_err(to_py)
                .and_then(|reply| reply_value(py, reply));
            let (ok, value) = match outcome {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_bound(py).into_any()),
            };
            let ok = pyo3::types::PyBool::new(py, ok).to_owned().into_any();
            out.append(PyTuple::new(py, [future.into_bound(py), ok, value])?)?;
        }
        Ok(out)
    }

    /// The file descriptor that becomes readable when calls finish or events wait.
    fn wake_fd(&self) -> i32 {
        self.waker.fd()
    }

    /// Subscribes to the changes (of every process on the prefix) of `group` (None: all) and
    /// `key` (None: all), from now on.
    #[pyo3(signature = (group=None, key=None))]
    fn subscribe(&self, group: Option<String>, key: Option<String>) -> PyResult<Subscription> {
        let store = self.store()?;
        let since = store.follow();
        Ok(Subscription::new(
            store,
            since,
            &self.waker,
            Filter { group, key },
        ))
    }

    /// Closes the store: its sweep and event reader stop, its connections and its runtime's
    /// thread go. Returns the futures of calls still waiting, which will never finish (the
    /// caller fails them with `CLOSED`). The wake socket closes too: the loop must have stopped
    /// watching it. Returns at once, even while Redis is down.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        py.detach(|| self.shut_down());
        self.waker.close();
        let waiting: Vec<Py<PyAny>> = self.calls.waiting.lock().drain().map(|(_, f)| f).collect();
        PyList::new(py, waiting)
    }
}

/// A reply as a Python object.
fn reply_value(py: Python<'_>, reply: Reply) -> Result<Bound<'_, PyAny>, PyErr> {
    Ok(match reply {
        Reply::Nothing => py.None().into_bound(py),
        Reply::Value(text) => from_json_or_none(py, text.as_deref())?,
        Reply::Json(text) => from_json(py, &text)?,
        Reply::Updated { new, old: None } => from_json(py, &new)?,
        Reply::Updated {
            new,
            old: Some(old),
        } => {
            let new = from_json(py, &new)?;
            let old = from_json_or_none(py, old.as_deref())?;
            PyTuple::new(py, [new, old])?.into_any()
        }
        Reply::Count(n) => n.into_pyobject(py)?.into_any(),
        Reply::Names(names) => PyList::new(py, names)?.into_any(),
    })
}
