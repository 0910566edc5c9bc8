//! A Python `str` read as `&str` without a copy.
//!
//! The package is built for the stable ABI of CPython 3.9+ (abi3). PyO3 gives a `&str` of a
//! `str` only on 3.10+ there (`PyUnicode_AsUTF8AndSize` joined the stable ABI in 3.10); on 3.9
//! it encodes a new `bytes` object for every string read, which would cost every call (names)
//! and every string inside a value. `PyUnicode_AsUTF8AndSize` has been exported by every
//! CPython 3 (it is in `unicodeobject.h` since 3.3), so it is declared here and used on all of
//! them: it returns the string's cached UTF-8, made once per string object.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::os::raw::c_char;

extern "C" {
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const c_char;
}

/// The UTF-8 of `text`, borrowed from the string object; `None` for a string that is not
/// valid Unicode (a lone surrogate), with the Python error cleared.
pub fn utf8<'a>(text: &'a Bound<'_, PyString>) -> Option<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `text` is a live str object; the returned buffer lives as long as it does (the
    // borrow of `text` bounds 'a), and it holds `size` bytes of valid UTF-8.
    unsafe {
        let data = PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), size as usize);
        Some(std::str::from_utf8_unchecked(bytes))
    }
}
