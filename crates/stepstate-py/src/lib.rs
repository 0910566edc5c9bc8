//! stepstate for Python: the PyO3 binding of the same core as the Node package
//! (`crates/stepstate-core`), built with maturin into the package `stepstate`
//! (`python/stepstate/`), whose `StateManager` is the public face. This module, `_native`,
//! holds the stores and nothing of asyncio:
//! - `value.rs`: Python values as the stored JSON text, and back (no `json` module);
//! - `store.rs`: the memory and file stores (synchronous calls) and event subscriptions;
//! - `redis.rs`: the Redis store (calls run on a tokio runtime, finished through the wake socket);
//! - `waker.rs`: the socket that wakes the asyncio loop from other threads, without the GIL;
//! - `errors.rs`: core errors as `stepstate.StateError`;
//! - `utf8.rs`: reading a `str` without a copy under the stable ABI.

mod errors;
mod redis;
mod store;
mod utf8;
mod value;
mod waker;

use pyo3::prelude::*;

/// The extension's allocator, as the Node addon's (see `src/lib.rs` there): a Redis call's
/// strings are made on the caller's thread and freed on the runtime's worker, and mimalloc
/// frees another thread's block without taking a lock. Local-dynamic TLS, as in any library
/// loaded with `dlopen`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Python value of the JSON text `text` (for tests and tools).
#[pyfunction]
fn loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    value::from_json(py, text)
}

/// The JSON text stepstate stores for `value`, or `StateError` `INVALID_VALUE`.
#[pyfunction]
fn dumps(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value::to_json(value).map_err(errors::to_py)
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<store::Store>()?;
    module.add_class::<store::Subscription>()?;
    module.add_class::<redis::Redis>()?;
    module.add_function(wrap_pyfunction!(loads, module)?)?;
    module.add_function(wrap_pyfunction!(dumps, module)?)?;
    module.add("MAX_SAFE_INTEGER", value::MAX_SAFE_INTEGER)?;
    Ok(())
}
