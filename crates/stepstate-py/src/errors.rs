//! The one mapping from core errors to Python exceptions: `stepstate.StateError` with the
//! SPEC's `code` and the failing op's `op_index`, raised as its `TypeError` subclass for bad
//! arguments (`INVALID_ARGUMENT`) and its `ValueError` subclass for values and ops that are
//! not acceptable (`INVALID_VALUE`, `INVALID_OP`, `VALUE_TOO_LARGE`). The classes live in
//! `stepstate/_errors.py`, so that Python code can subclass, pickle and document them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use stepstate_core::Error;

static ERRORS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception of a core error.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| {
        let make = || -> PyResult<PyErr> {
            let module = ERRORS.get_or_try_init(py, || {
                py.import("stepstate._errors")
                    .map(|m| m.into_any().unbind())
            })?;
            let make: Bound<'_, PyAny> = module.bind(py).getattr("_make")?;
            let exception = make.call1((err.code(), err.op_index(), err.to_string()))?;
            Ok(PyErr::from_value(exception))
        };
        make().unwrap_or_else(|failure| failure)
    })
}

/// A `TypeError` subclass `StateError` with code `INVALID_ARGUMENT`.
pub fn invalid_argument(message: impl Into<String>) -> PyErr {
    to_py(Error::InvalidArgument(message.into()))
}
