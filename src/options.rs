//! Opening a store: the options JavaScript passes (plain numbers, 0 for "not set", and the
//! sync policy's name), built once into the core's [`EngineOptions`] and [`FileOptions`], and
//! the calls that open a memory or a file store with them.

use crate::errors::to_js;
use crate::handle::{Handle, HandleRef, NewHandle};
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result, Task};
use napi_derive::napi;
use std::sync::Arc;
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::file::open_shared;
use stepstate_core::store::FileOptions;
use stepstate_core::{Engine, EngineOptions, Error, FileStore};

/// Reads an optional positive number passed as 0 for "not set".
pub(crate) fn positive(value: f64) -> Option<f64> {
    (value > 0.0).then_some(value)
}

/// The engine's options, the same for every store: `max_value_bytes` and `default_ttl_ms` of
/// 0 mean none.
pub(crate) fn engine_options(max_value_bytes: f64, default_ttl_ms: f64) -> EngineOptions {
    EngineOptions {
        max_value_bytes: positive(max_value_bytes).map(|n| n as usize),
        default_ttl_ms: positive(default_ttl_ms).map(|ms| ms.ceil() as u64),
        ..EngineOptions::default()
    }
}

/// Opens an in-memory store. `max_value_bytes` and `default_ttl_ms` of 0 mean none.
#[napi]
pub fn open_memory(max_value_bytes: f64, default_ttl_ms: f64) -> NewHandle {
    let options = engine_options(max_value_bytes, default_ttl_ms);
    NewHandle(Handle::memory(Engine::new(options)))
}

/// Opening a file store: recovery runs on the libuv thread pool, off the JS thread.
pub struct OpenFile {
    options: Option<(EngineOptions, FileOptions)>,
}

impl Task for OpenFile {
    type Output = Arc<FileStore>;
    type JsValue = NewHandle;

    fn compute(&mut self) -> Result<Self::Output> {
        let (options, file) = self
            .options
            .take()
            .ok_or_else(|| to_js(Error::Io("the store is already open".into())))?;
        open_shared(options, file).map_err(to_js)
    }

    fn resolve(&mut self, _env: Env, store: Self::Output) -> Result<Self::JsValue> {
        Ok(NewHandle(Handle::file(store)))
    }
}

/// Opens (or joins, within this process) the file store in directory `path`. `sync` is
/// `always`, `everysec` or `no`; `compact_min_bytes` of 0 keeps the default.
#[napi]
pub fn open_file(
    path: String,
    sync: String,
    max_value_bytes: f64,
    default_ttl_ms: f64,
    compact_min_bytes: f64,
) -> Result<AsyncTask<OpenFile>> {
    let sync_policy = SyncPolicy::named(&sync).map_err(to_js)?;
    let options = engine_options(max_value_bytes, default_ttl_ms);
    let mut file = FileOptions::new(path);
    file.sync_policy = sync_policy;
    if let Some(bytes) = positive(compact_min_bytes) {
        file.compact_min_bytes = bytes as u64;
    }
    Ok(AsyncTask::new(OpenFile {
        options: Some((options, file)),
    }))
}

/// The sync policy of the store (`always`, `everysec` or `no`), or `memory`.
#[napi]
pub fn sync_policy(handle: HandleRef) -> Result<&'static str> {
    Ok(handle
        .file_store()?
        .map_or("memory", |store| store.sync_policy().name()))
}
