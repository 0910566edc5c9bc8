//! Python values as the JSON text the core stores, and back.
//!
//! Writing walks the Python object once and writes JSON text straight into a `String`: `dict`
//! with `str` keys, `list`, `str`, `int` within the safe-integer range, finite `float`, `bool`
//! and `None` (subclasses included), nothing else. Everything else is refused with
//! `INVALID_VALUE` naming where it was found, so nothing is stored that Node or Python could not
//! give back as it was written: a `set`, `bytes`, a `tuple`, a `datetime`, NaN, a dict with a
//! non-string key, or an int JavaScript would round. Reading parses the text with serde_json
//! into Python objects directly, with no tree in between.
//!
//! A float keeps a decimal point or an exponent (`1.0`, not `1`), so that Python reads back a
//! float where it wrote one; JavaScript reads both as the same number.

use crate::utf8::utf8;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use stepstate_core::ops::path::MAX_NESTING;
use stepstate_core::ops::MAX_VALUE_TEXT_BYTES;
use stepstate_core::Error;

/// The largest integer JavaScript represents exactly (`Number.MAX_SAFE_INTEGER`, 2^53 − 1).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// `value` as JSON text, or `INVALID_VALUE` saying what is not JSON and where.
pub fn to_json(value: &Bound<'_, PyAny>) -> Result<String, Error> {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value, 0).map_err(|problem| Error::InvalidValue(problem.message()))?;
    if out.len() > MAX_VALUE_TEXT_BYTES {
        return Err(Error::TooLongToReadBack {
            what: "the value",
            size: out.len(),
            limit: MAX_VALUE_TEXT_BYTES,
        });
    }
    Ok(out)
}

/// What made a value not JSON, with the path to it (`at ["items"][3]`).
pub struct Problem {
    what: String,
    /// Path segments, innermost first (pushed while unwinding).
    path: Vec<String>,
}

impl Problem {
    fn new(what: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            path: Vec::new(),
        }
    }

    fn within(mut self, segment: String) -> Problem {
        self.path.push(segment);
        self
    }

    /// The message: what was found, and where when it was not the value itself.
    pub fn message(&self) -> String {
        if self.path.is_empty() {
            return format!("the value is not JSON: {}", self.what);
        }
        let mut at = String::new();
        for segment in self.path.iter().rev() {
            at.push_str(segment);
        }
        format!("the value is not JSON: {} at {at}", self.what)
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".into())
}

fn write_value(out: &mut String, value: &Bound<'_, PyAny>, depth: usize) -> Result<(), Problem> {
    if let Ok(text) = value.cast::<PyString>() {
        let text = utf8(text)
            .ok_or_else(|| Problem::new("a str that is not valid Unicode (a lone surrogate)"))?;
        push_string(out, text);
    } else if let Ok(dict) = value.cast::<PyDict>() {
        if depth >= MAX_NESTING {
            return Err(too_deep());
        }
        out.push('{');
        for (n, (key, member)) in dict.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let Ok(key) = key.cast::<PyString>() else {
                return Err(Problem::new(format!(
                    "a dict key of type {} (keys must be str)",
                    type_name(&key)
                )));
            };
            let key =
                utf8(key).ok_or_else(|| Problem::new("a dict key that is not valid Unicode"))?;
            push_string(out, key);
            out.push(':');
            write_value(out, &member, depth + 1)
                .map_err(|problem| problem.within(format!("[{key:?}]")))?;
        }
        out.push('}');
    } else if let Ok(list) = value.cast::<PyList>() {
        if depth >= MAX_NESTING {
            return Err(too_deep());
        }
        out.push('[');
        for (n, member) in list.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_value(out, &member, depth + 1)
                .map_err(|problem| problem.within(format!("[{n}]")))?;
        }
        out.push(']');
    } else if value.is_none() {
        out.push_str("null");
    } else if let Ok(flag) = value.cast::<PyBool>() {
        out.push_str(if flag.is_true() { "true" } else { "false" });
    } else if value.cast::<PyInt>().is_ok() {
        match value.extract::<i64>() {
            Ok(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&n) => {
                let _ = write!(out, "{n}");
            }
            _ => {
                return Err(Problem::new(format!(
                    "the int {} is outside the safe-integer range ±(2**53 - 1), which JavaScript \
                     cannot hold exactly (store it as a str)",
                    value.str().map(|s| s.to_string()).unwrap_or_default()
                )))
            }
        }
    } else if let Ok(float) = value.cast::<PyFloat>() {
        let number = float.value();
        if !number.is_finite() {
            return Err(Problem::new(format!("the float {number} (not finite)")));
        }
        out.push_str(ryu::Buffer::new().format_finite(number));
    } else {
        return Err(Problem::new(format!("a {}", type_name(value))));
    }
    Ok(())
}

fn too_deep() -> Problem {
    Problem::new(format!(
        "dicts/lists nested more than {MAX_NESTING} levels deep (or a cycle)"
    ))
}

/// Appends `text` as a JSON string literal.
fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// The Python value of JSON text the store holds.
///
/// serde_json refuses a `\uXXXX` escape of a lone surrogate, which JavaScript's
/// `JSON.stringify` writes for a string holding one (a Node process may store such a string);
/// Python's `json.loads` reads it into a `str` holding that surrogate, so text serde_json
/// refuses is read by `json.loads` instead (the slow path, for such text only).
pub fn from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    ValueSeed(py).deserialize(&mut deserializer).or_else(|err| {
        json_loads(py, text)
            .map_err(|_| PyValueError::new_err(format!("stored JSON could not be read: {err}")))
    })
}

static JSON_LOADS: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let loads = JSON_LOADS.get_or_try_init(py, || {
        py.import("json")?.getattr("loads").map(Bound::unbind)
    })?;
    loads.bind(py).call1((text,))
}

/// The Python value of an optional text: `None` for `None`.
pub fn from_json_or_none<'py>(py: Python<'py>, text: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    match text {
        Some(text) => from_json(py, text),
        None => Ok(py.None().into_bound(py)),
    }
}

/// Builds a Python value while serde_json parses.
#[derive(Clone, Copy)]
struct ValueSeed<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for ValueSeed<'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for ValueSeed<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, flag).to_owned().into_any())
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, n).into_any())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, n).into_any())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, n).into_any())
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, text).into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(member) = seq.next_element_seed(self)? {
            members.push(member);
        }
        PyList::new(self.0, members)
            .map(Bound::into_any)
            .map_err(serde::de::Error::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            let member = map.next_value_seed(self)?;
            dict.set_item(key, member)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(dict.into_any())
    }
}

/// Builds a dict key (a Python str) without an intermediate `String` when the key has no
/// escapes, and without a new string at all for a key seen before (see [`KEYS`]).
struct KeySeed<'py>(Python<'py>);

/// Dict keys already made, by text: the same few names (`id`, `status`, `items`...) come
/// back in every value of a group, and a cached key costs neither a new string nor its hash
/// (Python caches a str's hash on the object). Short keys only, and at most
/// [`MAX_CACHED_KEYS`] of them, after which new keys are simply made each time.
static KEYS: parking_lot::Mutex<Option<KeyCache>> = parking_lot::Mutex::new(None);
/// The cached keys of [`KEYS`], by text.
type KeyCache = HashMap<Box<str>, Py<PyString>, foldhash::fast::RandomState>;
/// How many keys [`KEYS`] holds at most.
const MAX_CACHED_KEYS: usize = 4096;
/// The longest key [`KEYS`] holds, in bytes.
const MAX_CACHED_KEY_BYTES: usize = 32;

fn key_string<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyString> {
    if text.len() > MAX_CACHED_KEY_BYTES {
        return PyString::new(py, text);
    }
    // The GIL is held, so the lock is never contended.
    let mut keys = KEYS.lock();
    let keys = keys.get_or_insert_with(HashMap::default);
    if let Some(key) = keys.get(text) {
        return key.bind(py).clone();
    }
    let key = PyString::new(py, text);
    if keys.len() < MAX_CACHED_KEYS {
        keys.insert(text.into(), key.clone().unbind());
    }
    key
}

impl<'de, 'py> DeserializeSeed<'de> for KeySeed<'py> {
    type Value = Bound<'py, PyString>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'py> Visitor<'de> for KeySeed<'py> {
    type Value = Bound<'py, PyString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(key_string(self.0, text))
    }
}

/// The JSON text of an UpdateOp list: `INVALID_ARGUMENT` when `ops` is not a list (or tuple),
/// `INVALID_OP` with the op's index when an op is not JSON (a NaN `by`, a set as a value...).
/// The op engine checks the rest.
pub fn ops_to_json(ops: &Bound<'_, PyAny>) -> Result<String, Error> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = ops.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = ops.cast::<pyo3::types::PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(Error::InvalidArgument(format!(
            "ops must be a list of update ops, got {}",
            type_name(ops)
        )));
    };
    let mut out = String::with_capacity(64 * items.len() + 2);
    out.push('[');
    for (index, op) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_value(&mut out, op, 1).map_err(|problem| {
            Error::invalid_op(index, format!("op {index}: {}", problem.message()))
        })?;
    }
    out.push(']');
    Ok(out)
}
