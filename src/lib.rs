//! The Node.js binding: the one place `#[napi]` appears. Thin glue over `stepstate-core`.
//!
//! Every call is a synchronous N-API function over a handle (an `External`), and values cross
//! as JSON text both ways; `index.js` wraps these functions into the Promise-returning
//! `StateManager` class. Errors cross as one string `code \u{1f} opIndex \u{1f} message` that
//! `index.js` turns back into a `StateError` (see `throwFrom` there), so JavaScript always
//! branches on `err.code`.

use napi::bindgen_prelude::{External, FromNapiValue, Function, TypeName, ValidateNapiValue};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{sys, Env, JsString, Result, Status, ValueType};
use napi_derive::napi;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use stepstate_core::engine::{name_too_long, MAX_NAME_BYTES};
use stepstate_core::events::{EventQueue, Filter};
use stepstate_core::{Engine, EngineOptions, Error, Ttl};

/// Room for a name: any string of at most `MAX_NAME_BYTES` bytes fits, and N-API writes only
/// whole characters, so a longer string always fills more than `MAX_NAME_BYTES` bytes of it.
const NAME_BUFFER: usize = MAX_NAME_BYTES + 8;

/// A group name or key, read from a JS string into a buffer on the stack: one N-API call and no
/// allocation per argument (the generic `String` conversion makes two calls and a heap copy).
pub struct Name {
    len: usize,
    buf: [MaybeUninit<u8>; NAME_BUFFER],
}

impl Name {
    fn as_str(&self) -> &str {
        // SAFETY: napi_get_value_string_utf8 initialized `len` bytes with valid UTF-8.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.buf.as_ptr().cast::<u8>(),
                self.len,
            ))
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl TypeName for Name {
    fn type_name() -> &'static str {
        "string"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ValidateNapiValue for Name {}

impl FromNapiValue for Name {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut name = Name {
            len: 0,
            buf: [MaybeUninit::uninit(); NAME_BUFFER],
        };
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                name.buf.as_mut_ptr().cast(),
                NAME_BUFFER,
                &mut name.len,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(to_js(Error::InvalidArgument(
                "group and key must be strings".into(),
            )));
        }
        if name.len > MAX_NAME_BYTES {
            let mut full = 0;
            unsafe {
                sys::napi_get_value_string_utf8(env, value, std::ptr::null_mut(), 0, &mut full)
            };
            return Err(to_js(name_too_long("group or key", full)));
        }
        Ok(name)
    }
}

/// One `StateManager`'s view of an engine. Closing a handle makes its later calls fail with
/// `CLOSED` without touching other handles that share the engine.
pub struct Handle {
    engine: Arc<Engine>,
    closed: AtomicBool,
}

impl Handle {
    fn engine(&self) -> napi::Result<&Engine> {
        if self.closed.load(Ordering::Acquire) {
            return Err(to_js(Error::Closed));
        }
        Ok(&self.engine)
    }
}

/// The one mapping from core errors to JavaScript errors.
fn to_js(err: Error) -> napi::Error {
    let op_index = err.op_index().map(|n| n.to_string()).unwrap_or_default();
    napi::Error::from_reason(format!("{}\u{1f}{}\u{1f}{}", err.code(), op_index, err))
}

/// Reads an optional positive number passed as 0 for "not set".
fn positive(value: f64) -> Option<f64> {
    (value > 0.0).then_some(value)
}

/// Opens an in-memory store. `max_value_bytes` and `default_ttl_ms` of 0 mean none.
#[napi]
pub fn open_memory(max_value_bytes: f64, default_ttl_ms: f64) -> External<Handle> {
    let options = EngineOptions {
        max_value_bytes: positive(max_value_bytes).map(|n| n as usize),
        default_ttl_ms: positive(default_ttl_ms).map(|ms| ms.ceil() as u64),
        ..EngineOptions::default()
    };
    External::new(Handle {
        engine: Engine::new(options),
        closed: AtomicBool::new(false),
    })
}

/// Stores a value (JSON text) with a TTL in milliseconds (negative: the store's default);
/// returns the previous value's text or null.
#[napi]
pub fn set(
    handle: &External<Handle>,
    group: Name,
    key: Name,
    value: String,
    ttl_ms: f64,
) -> Result<Option<String>> {
    let ttl = if ttl_ms < 0.0 {
        Ttl::Default
    } else {
        Ttl::Millis(ttl_ms.ceil() as u64)
    };
    handle
        .engine()?
        .set(&group, &key, &value, ttl)
        .map_err(to_js)
}

/// The value's text, or null. The JS string is made straight from the stored text while the
/// group is read-locked, with no intermediate copy.
#[napi]
pub fn get<'env>(
    env: &'env Env,
    handle: &External<Handle>,
    group: Name,
    key: Name,
) -> Result<Option<JsString<'env>>> {
    handle
        .engine()?
        .get_with(&group, &key, |text| {
            text.map(|text| env.create_string(text)).transpose()
        })
        .map_err(to_js)?
}

/// Applies ops (JSON text of an array); returns the JSON text `[new_value, old_value]`.
#[napi]
pub fn update(handle: &External<Handle>, group: Name, key: Name, ops: String) -> Result<String> {
    let result = handle.engine()?.update(&group, &key, &ops).map_err(to_js)?;
    let old = result.old_value.as_deref().unwrap_or("null");
    let mut pair = String::with_capacity(3 + result.new_value.len() + old.len());
    pair.push('[');
    pair.push_str(&result.new_value);
    pair.push(',');
    pair.push_str(old);
    pair.push(']');
    Ok(pair)
}

/// Removes an item; returns its value's text or null.
#[napi]
pub fn delete(handle: &External<Handle>, group: Name, key: Name) -> Result<Option<String>> {
    handle.engine()?.delete(&group, &key).map_err(to_js)
}

/// Removes every item of a group; returns how many were removed.
#[napi]
pub fn clear(handle: &External<Handle>, group: Name) -> Result<u32> {
    let removed = handle.engine()?.clear(&group).map_err(to_js)?;
    Ok(removed as u32)
}

/// The group's values as the JSON text of an array, in insertion order.
#[napi]
pub fn get_group(handle: &External<Handle>, group: Name) -> Result<String> {
    handle.engine()?.group_json(&group).map_err(to_js)
}

/// The group's items as the JSON text of an array of `{ key, value }`.
#[napi]
pub fn entries(handle: &External<Handle>, group: Name) -> Result<String> {
    handle.engine()?.entries_json(&group).map_err(to_js)
}

/// The group's keys as the JSON text of an array of strings.
#[napi]
pub fn keys(handle: &External<Handle>, group: Name) -> Result<String> {
    handle.engine()?.keys_json(&group).map_err(to_js)
}

/// The sorted names of non-empty groups.
#[napi]
pub fn list_groups(handle: &External<Handle>) -> Result<Vec<String>> {
    Ok(handle.engine()?.list_groups())
}

/// Closes this handle; later calls through it fail with `CLOSED`. Idempotent.
#[napi]
pub fn close(handle: &External<Handle>) {
    if !handle.closed.swap(true, Ordering::AcqRel) {
        handle.engine.shut_down();
    }
}

/// One change listener's subscription: its queue of undelivered events.
pub struct Subscription {
    engine: Arc<Engine>,
    id: u64,
    queue: Arc<EventQueue>,
}

/// Subscribes to change events matching `group`/`key` (null: any). `ready` is called (on this
/// JS thread, never inside a write) whenever events are waiting; it then calls
/// `drainEvents`. The callback is unref'd: it never keeps the process alive by itself.
#[napi]
pub fn subscribe(
    handle: &External<Handle>,
    group: Option<String>,
    key: Option<String>,
    ready: Function<(), ()>,
) -> Result<External<Subscription>> {
    let engine = handle.engine()?;
    let ready = ready
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(|_| Ok(()))?;
    let notify =
        Box::new(move || ready.call((), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok);
    let (id, queue) = engine.events().subscribe(Filter { group, key }, notify);
    Ok(External::new(Subscription {
        engine: handle.engine.clone(),
        id,
        queue,
    }))
}

/// Takes the subscription's waiting events as the JSON text of an array.
#[napi]
pub fn drain_events(subscription: &External<Subscription>) -> String {
    subscription.queue.drain()
}

/// Ends a subscription; idempotent.
#[napi]
pub fn unsubscribe(subscription: &External<Subscription>) {
    subscription.engine.events().unsubscribe(subscription.id);
}
