//! The Node.js binding: the one place `#[napi]` appears. Thin glue over `stepstate-core`.
//!
//! Every call is a synchronous N-API function over a store handle (a tagged external, see
//! [`HandleRef`]), and values cross as JSON text both ways; `index.js` wraps these functions
//! into the Promise-returning `StateManager` class. Errors cross as one string
//! `code \u{1f} opIndex \u{1f} message` that `index.js` turns back into a `StateError` (see
//! `fromNative` there), so JavaScript always branches on `err.code`.

use napi::bindgen_prelude::{
    AsyncTask, Either, External, FromNapiValue, Function, ToNapiValue, TypeName, ValidateNapiValue,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Task;
use napi::{sys, Env, JsString, Result, Status, ValueType};
use napi_derive::napi;
use parking_lot::Mutex;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use stepstate_core::engine::{name_too_long, MAX_NAME_BYTES};
use stepstate_core::events::{EventQueue, Filter};
use stepstate_core::log::SyncPolicy;
use stepstate_core::store::file::{last_ticket as thread_last_ticket, open_shared, release_shared};
use stepstate_core::store::FileOptions;
use stepstate_core::{Engine, EngineOptions, Error, GroupRead, Ttl, Version};

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
#[repr(C)]
pub struct Handle {
    /// [`HANDLE_TAG`], checked on every call so that a foreign external is refused.
    tag: u64,
    engine: Arc<Engine>,
    closed: AtomicBool,
    /// Whether this handle holds one reference of a shared file store (see `open_shared`).
    shared_file: bool,
}

/// The first field of every [`Handle`] ("STEPSTAT").
const HANDLE_TAG: u64 = u64::from_le_bytes(*b"STEPSTAT");

impl Handle {
    fn new(engine: Arc<Engine>, shared_file: bool) -> Handle {
        Handle {
            tag: HANDLE_TAG,
            engine,
            closed: AtomicBool::new(false),
            shared_file,
        }
    }

    /// Closes the handle once; the last handle of a file store closes the store.
    fn close(&self) -> stepstate_core::Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if self.shared_file {
            release_shared(&self.engine)
        } else {
            self.engine.release();
            Ok(())
        }
    }

    /// The engine, unless this handle was closed (`CLOSED`).
    fn engine(&self) -> napi::Result<&Engine> {
        if self.closed.load(Ordering::Acquire) {
            return Err(to_js(Error::Closed));
        }
        Ok(&self.engine)
    }
}

/// A manager that was garbage-collected without `close()` still gives back its reference,
/// so the directory lock is not held forever.
impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// V8's largest string on 64-bit platforms, in units (`v8::String::kMaxLength`, 2^29 − 24).
const MAX_JS_STRING_LENGTH: usize = (1 << 29) - 24;

/// A JS string with `text`'s contents. ASCII text (most JSON) is handed to V8 as Latin-1,
/// which it copies as is, instead of decoding UTF-8: several times faster for large texts.
///
/// V8 refuses to make a string of more than [`MAX_JS_STRING_LENGTH`] bytes of UTF-8 or Latin-1;
/// such a text is refused here with `VALUE_TOO_LARGE` rather than an empty generic failure. A
/// single value never gets there (see `MAX_VALUE_TEXT_BYTES`); a whole group may.
fn js_text<'env>(env: &'env Env, text: &str) -> Result<JsString<'env>> {
    if text.len() > MAX_JS_STRING_LENGTH {
        return Err(to_js(Error::TooLongToReadBack {
            what: "the reply",
            size: text.len(),
            limit: MAX_JS_STRING_LENGTH,
        }));
    }
    if text.is_ascii() {
        env.create_string_latin1(text.as_bytes())
    } else {
        env.create_string(text)
    }
}

/// A value's JSON text from a JS string, converted in one pass: the generic `String`
/// conversion first scans the whole string for its UTF-8 length, then converts it; a string
/// of n UTF-16 units needs at most 3n bytes of UTF-8, and n is known without a scan.
pub struct Text(String);

impl ValidateNapiValue for Text {}

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let not_a_string = || {
            to_js(Error::InvalidArgument(
                "a value's JSON text must be a string".into(),
            ))
        };
        let mut units = 0;
        let status = unsafe {
            sys::napi_get_value_string_utf16(env, value, std::ptr::null_mut(), 0, &mut units)
        };
        if status != sys::Status::napi_ok {
            return Err(not_a_string());
        }
        let capacity = units * 3 + 1;
        let mut bytes: Vec<u8> = Vec::with_capacity(capacity);
        let mut written = 0;
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                bytes.as_mut_ptr().cast(),
                capacity,
                &mut written,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(not_a_string());
        }
        // SAFETY: napi wrote `written` bytes of valid UTF-8 (lone surrogates are replaced).
        unsafe {
            bytes.set_len(written);
            Ok(Text(String::from_utf8_unchecked(bytes)))
        }
    }
}

/// A [`Handle`] passed back from JavaScript, read with one `napi_get_value_external`.
///
/// napi-rs's `External<T>` checks every access against a process-wide `Mutex<HashMap>` of
/// payloads; that would make every call, from every thread, take one shared lock. The handle
/// is instead a plain external whose first field is [`HANDLE_TAG`].
pub struct HandleRef(*const Handle);

impl std::ops::Deref for HandleRef {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        // SAFETY: `from_napi_value` checked the pointer is a live Handle (the external being
        // an argument of the current call keeps it alive until the call returns).
        unsafe { &*self.0 }
    }
}

impl ValidateNapiValue for HandleRef {}

impl FromNapiValue for HandleRef {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut data = std::ptr::null_mut();
        let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
        // SAFETY: every external this module creates points to a `#[repr(C)]` struct whose
        // first field is a u64 tag; only handles carry HANDLE_TAG.
        if status != sys::Status::napi_ok
            || data.is_null()
            || unsafe { *(data as *const u64) } != HANDLE_TAG
        {
            return Err(to_js(Error::InvalidArgument(
                "not a stepstate store handle".into(),
            )));
        }
        Ok(HandleRef(data as *const Handle))
    }
}

/// A new handle, given to JavaScript as an external that owns it until garbage collection.
pub struct NewHandle(Handle);

unsafe extern "C" fn drop_handle(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: `data` is the Box::into_raw of `to_napi_value` below, finalized once.
    drop(unsafe { Box::from_raw(data as *mut Handle) });
}

impl ToNapiValue for NewHandle {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let data = Box::into_raw(Box::new(value.0));
        let mut external = std::ptr::null_mut();
        let status = unsafe {
            sys::napi_create_external(
                env,
                data.cast(),
                Some(drop_handle),
                std::ptr::null_mut(),
                &mut external,
            )
        };
        if status != sys::Status::napi_ok {
            drop(unsafe { Box::from_raw(data) });
            return Err(to_js(Error::Io("cannot create the store handle".into())));
        }
        Ok(external)
    }
}

/// The JS type napi-rs names in messages for the argument and result types defined here.
macro_rules! js_type {
    ($($rust:ty => $name:literal, $kind:ident;)*) => {$(
        impl TypeName for $rust {
            fn type_name() -> &'static str {
                $name
            }
            fn value_type() -> ValueType {
                ValueType::$kind
            }
        }
    )*};
}

js_type! {
    Name => "string", String;
    Text => "string", String;
    HandleRef => "External", External;
    NewHandle => "External", External;
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
pub fn open_memory(max_value_bytes: f64, default_ttl_ms: f64) -> NewHandle {
    let options = EngineOptions {
        max_value_bytes: positive(max_value_bytes).map(|n| n as usize),
        default_ttl_ms: positive(default_ttl_ms).map(|ms| ms.ceil() as u64),
        ..EngineOptions::default()
    };
    NewHandle(Handle::new(Engine::new(options), false))
}

/// Opening a file store: recovery runs on the libuv thread pool, off the JS thread.
pub struct OpenFile {
    options: Option<(EngineOptions, FileOptions)>,
}

impl Task for OpenFile {
    type Output = Arc<Engine>;
    type JsValue = NewHandle;

    fn compute(&mut self) -> Result<Self::Output> {
        let (options, file) = self
            .options
            .take()
            .ok_or_else(|| to_js(Error::Io("the store is already open".into())))?;
        open_shared(options, file).map_err(to_js)
    }

    fn resolve(&mut self, _env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        Ok(NewHandle(Handle::new(engine, true)))
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
    let sync_policy = match sync.as_str() {
        "always" => SyncPolicy::Always,
        "everysec" => SyncPolicy::EverySec,
        "no" => SyncPolicy::No,
        other => {
            return Err(to_js(Error::InvalidArgument(format!(
                "sync must be 'always', 'everysec' or 'no', got {other:?}"
            ))))
        }
    };
    let options = EngineOptions {
        max_value_bytes: positive(max_value_bytes).map(|n| n as usize),
        default_ttl_ms: positive(default_ttl_ms).map(|ms| ms.ceil() as u64),
        ..EngineOptions::default()
    };
    let mut file = FileOptions::new(path);
    file.sync_policy = sync_policy;
    if let Some(bytes) = positive(compact_min_bytes) {
        file.compact_min_bytes = bytes as u64;
    }
    Ok(AsyncTask::new(OpenFile {
        options: Some((options, file)),
    }))
}

/// The ticket of the last write this thread journaled (see `watchDurable`).
#[napi]
pub fn last_ticket() -> f64 {
    thread_last_ticket() as f64
}

type DurableCallback = ThreadsafeFunction<f64, (), f64, Status, false, true>;

/// A JS callback told the durable ticket after each sync of a file store's log. The callback
/// is released by `unwatchDurable`: it holds the JS function, which holds this watch, so
/// waiting for garbage collection would keep both forever.
pub struct DurableWatch {
    engine: Arc<Engine>,
    id: u64,
    callback: Arc<Mutex<Option<DurableCallback>>>,
}

/// Like [`Subscription`]'s, a watch dropped unclosed stops being told.
impl Drop for DurableWatch {
    fn drop(&mut self) {
        self.engine.remove_on_durable(self.id);
    }
}

/// Calls `callback(ticket)` on this JS thread after each sync of the log; writes whose
/// ticket is at most that are on disk. `callback(-1)` means the log failed: pending writes
/// will never be durable. The callback is unref'd; `durableRef` holds the
/// process open while acknowledgements are pending.
#[napi]
pub fn watch_durable(
    handle: HandleRef,
    callback: Function<f64, ()>,
) -> Result<External<DurableWatch>> {
    let engine = handle.engine()?;
    let callback = Arc::new(Mutex::new(Some(
        callback
            .build_threadsafe_function::<f64>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?,
    )));
    let notify = callback.clone();
    // A ticket, or -1 when the log failed and nothing more will become durable.
    let id = engine.on_durable(Arc::new(move |ticket| {
        let value = ticket.map_or(-1.0, |ticket| ticket as f64);
        if let Some(callback) = notify.lock().as_ref() {
            callback.call(value, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }));
    Ok(External::new(DurableWatch {
        engine: handle.engine.clone(),
        id,
        callback,
    }))
}

/// Makes the durability callback keep the process alive (`true`) or not (`false`).
// `refer`/`unref` are deprecated as a way of counting references to the function; here they are
// used for what napi_ref/unref_threadsafe_function do: tell the event loop to wait or not.
#[allow(deprecated)]
#[napi]
pub fn durable_ref(env: Env, watch: &External<DurableWatch>, keep_alive: bool) -> Result<()> {
    match watch.callback.lock().as_mut() {
        Some(callback) if keep_alive => callback.refer(&env),
        Some(callback) => callback.unref(&env),
        None => Ok(()),
    }
}

/// Stops durability callbacks and releases the callback; idempotent.
#[napi]
pub fn unwatch_durable(watch: &External<DurableWatch>) {
    watch.engine.remove_on_durable(watch.id);
    drop(watch.callback.lock().take());
}

/// The sync policy of the store (`always`, `everysec` or `no`), or `memory`.
#[napi]
pub fn sync_policy(handle: HandleRef) -> Result<&'static str> {
    Ok(match handle.engine()?.sync_policy() {
        Some(SyncPolicy::Always) => "always",
        Some(SyncPolicy::EverySec) => "everysec",
        Some(SyncPolicy::No) => "no",
        None => "memory",
    })
}

thread_local! {
    /// The version of what the last `set`, `get`, `update` or `getGroup` of this JS thread
    /// wrote or read (see `lastVersion`).
    static LAST_VERSION: std::cell::Cell<Version> = const { std::cell::Cell::new(0) };
    /// The length in bytes of the JSON text the last `update` of this JS thread stored.
    static LAST_LENGTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The length in bytes of the JSON text that the last `update` of this thread stored (for
/// the read cache's budget when `update` sent only the changed members).
#[napi]
pub fn last_length() -> f64 {
    LAST_LENGTH.get() as f64
}

/// The version of the value (or group) that the last `set`, `get`, `update` or `getGroup`
/// call of this thread wrote or read; 0 when there was none. `index.js` keeps it
/// beside the parsed value in its read cache.
#[napi]
pub fn last_version() -> f64 {
    LAST_VERSION.get() as f64
}

/// The version a caller says it holds a copy of (0: none).
fn known(version: f64) -> Version {
    if version >= 1.0 {
        version as Version
    } else {
        0
    }
}

/// A text the caller may already hold: `true` when its version is `known` (no string is made),
/// the text otherwise; null when there is none.
type MaybeKnown<'env> = Option<Either<JsString<'env>, bool>>;

fn maybe_known<'env>(
    env: &'env Env,
    item: Option<(&str, Version)>,
    known: Version,
) -> Result<MaybeKnown<'env>> {
    Ok(match item {
        None => None,
        Some((_, version)) if version == known => Some(Either::B(true)),
        Some((text, _)) => Some(Either::A(js_text(env, text)?)),
    })
}

/// Stores a value (JSON text) with a TTL in milliseconds (negative: the store's default);
/// returns the previous value's text (`true` when its version is `known_old`) or null. The new
/// value's version is then `lastVersion()`.
#[napi]
pub fn set<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    value: Text,
    ttl_ms: f64,
    known_old: f64,
) -> Result<MaybeKnown<'env>> {
    let ttl = if ttl_ms < 0.0 {
        Ttl::Default
    } else {
        Ttl::Millis(ttl_ms.ceil() as u64)
    };
    let replaced = handle.engine()?.set_owned(&group, &key, value.0, ttl);
    keep_alive_for_pending_events(env);
    let replaced = replaced.map_err(to_js)?;
    LAST_VERSION.set(replaced.version);
    let old = replaced
        .old
        .as_deref()
        .map(|old| (old, replaced.old_version));
    maybe_known(env, old, known(known_old))
}

/// The value's text (`true` when its version is `known`), or null. The JS string is made
/// straight from the stored text while the group is read-locked, with no intermediate copy.
#[napi]
pub fn get<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    known_version: f64,
) -> Result<MaybeKnown<'env>> {
    handle
        .engine()?
        .get_versioned(&group, &key, |item| {
            LAST_VERSION.set(item.map_or(0, |(_, version)| version));
            maybe_known(env, item, known(known_version))
        })
        .map_err(to_js)?
}

/// Applies ops (JSON text of an array); returns the JSON text `[new_value, old_value]`. When
/// the old value's version is `known_old` (the caller holds it parsed), returns instead the
/// members that changed as a JSON object (`{"paid":1}`: set them on a copy of the old value),
/// or `[new_value]` when the update was not one of only some members.
#[napi]
pub fn update<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    ops: Text,
    known_old: f64,
) -> Result<JsString<'env>> {
    let result = handle.engine()?.update(&group, &key, &ops.0);
    keep_alive_for_pending_events(env);
    let result = result.map_err(to_js)?;
    LAST_VERSION.set(result.version);
    LAST_LENGTH.set(result.new_value.len());
    let holds_old = result.old_value.is_some() && result.old_version == known(known_old);
    if let (true, Some(members)) = (holds_old, &result.changed_members) {
        return js_text(env, members);
    }
    // The caller holds the old value already: leave it out.
    let old = (!holds_old).then(|| result.old_value.as_deref().unwrap_or("null"));
    let mut pair = String::with_capacity(3 + result.new_value.len() + old.map_or(0, str::len));
    pair.push('[');
    pair.push_str(&result.new_value);
    if let Some(old) = old {
        pair.push(',');
        pair.push_str(old);
    }
    pair.push(']');
    js_text(env, &pair)
}

/// Removes an item; returns its value's text (`true` when its version is `known_old`) or null.
#[napi]
pub fn delete<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    known_old: f64,
) -> Result<MaybeKnown<'env>> {
    let old = handle.engine()?.delete_owned(&group, &key);
    keep_alive_for_pending_events(env);
    let old = old.map_err(to_js)?;
    maybe_known(
        env,
        old.as_ref().map(|(text, v)| (&**text, *v)),
        known(known_old),
    )
}

/// Removes every item of a group; returns how many were removed.
#[napi]
pub fn clear(env: Env, handle: HandleRef, group: Name) -> Result<u32> {
    let removed = handle.engine()?.clear(&group).map_err(to_js)?;
    keep_alive_for_pending_events(&env);
    Ok(removed as u32)
}

/// The group's values as the JSON text of an array, in insertion order; `true` when the
/// caller's copy of version `known` is still current. The group's version is then
/// `lastVersion()` (0 for a group that does not exist).
#[napi]
pub fn get_group<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    known_version: f64,
) -> Result<Either<JsString<'env>, bool>> {
    let read = handle
        .engine()?
        .group_json_since(&group, known(known_version))
        .map_err(to_js)?;
    Ok(match read {
        GroupRead::Unchanged => Either::B(true),
        GroupRead::Changed { text, version } => {
            LAST_VERSION.set(version);
            Either::A(js_text(env, &text)?)
        }
    })
}

/// The group's items as the JSON text of an array of `{ key, value }`.
#[napi]
pub fn entries<'env>(env: &'env Env, handle: HandleRef, group: Name) -> Result<JsString<'env>> {
    let text = handle.engine()?.entries_json(&group).map_err(to_js)?;
    js_text(env, &text)
}

/// The group's keys as the JSON text of an array of strings.
#[napi]
pub fn keys<'env>(env: &'env Env, handle: HandleRef, group: Name) -> Result<JsString<'env>> {
    let text = handle.engine()?.keys_json(&group).map_err(to_js)?;
    js_text(env, &text)
}

/// The sorted names of non-empty groups.
#[napi]
pub fn list_groups(handle: HandleRef) -> Result<Vec<String>> {
    Ok(handle.engine()?.list_groups())
}

/// Closes this handle; later calls through it fail with `CLOSED`. The last handle of a file
/// store flushes the log and releases the directory lock. Idempotent.
#[napi]
pub fn close(handle: HandleRef) -> Result<()> {
    handle.close().map_err(to_js)
}

/// One change listener's subscription: its queue of undelivered events.
pub struct Subscription {
    engine: Arc<Engine>,
    id: u64,
    queue: Arc<EventQueue>,
    ready: Arc<Mutex<Option<EventCallback>>>,
}

/// A subscription garbage-collected without `unsubscribe` (its manager dropped unclosed) leaves
/// the engine too, which may outlive it (a file store shared with other managers).
impl Drop for Subscription {
    fn drop(&mut self) {
        self.engine.events().unsubscribe(self.id);
    }
}

type EventCallback = ThreadsafeFunction<(), (), (), Status, false, true>;

thread_local! {
    /// Callbacks of subscriptions owned by this JS thread that a write on this same thread has
    /// just given events: the write function refs them before returning, so the process does
    /// not exit before the events of its own writes are delivered.
    static PENDING_HERE: std::cell::RefCell<Vec<Arc<Mutex<Option<EventCallback>>>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

// `refer`/`unref` are deprecated as reference counting; here they tell the event loop whether
// to wait for the callback, which is what napi_ref/unref_threadsafe_function are for.
#[allow(deprecated)]
fn set_keep_alive(env: &Env, callback: &Mutex<Option<EventCallback>>, keep_alive: bool) {
    let mut callback = callback.lock();
    let Some(callback) = callback.as_mut() else {
        return; // unsubscribed: released already
    };
    let _ = if keep_alive {
        callback.refer(env)
    } else {
        callback.unref(env)
    };
}

/// Holds the process open until the events queued by this thread's last write are delivered.
fn keep_alive_for_pending_events(env: &Env) {
    PENDING_HERE.with(|pending| {
        for callback in pending.borrow_mut().drain(..) {
            set_keep_alive(env, &callback, true);
        }
    });
}

/// Subscribes to change events matching `group`/`key` (null: any). `ready` is called (on this
/// JS thread, never inside a write) whenever events are waiting; it then calls
/// `drainEvents`. The callback is unref'd: a listener never keeps the process alive by
/// itself, except until the events of a write made on this same thread are delivered.
#[napi]
pub fn subscribe(
    handle: HandleRef,
    group: Option<String>,
    key: Option<String>,
    ready: Function<(), ()>,
) -> Result<External<Subscription>> {
    let engine = handle.engine()?;
    let ready: Arc<Mutex<Option<EventCallback>>> = Arc::new(Mutex::new(Some(
        ready
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|_| Ok(()))?,
    )));
    let owner = std::thread::current().id();
    let callback = ready.clone();
    let notify = Box::new(move || {
        let delivered = callback.lock().as_ref().is_some_and(|ready| {
            ready.call((), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        });
        if delivered && std::thread::current().id() == owner {
            PENDING_HERE.with(|pending| pending.borrow_mut().push(callback.clone()));
        }
        delivered
    });
    let (id, queue) = engine.events().subscribe(Filter { group, key }, notify);
    Ok(External::new(Subscription {
        engine: handle.engine.clone(),
        id,
        queue,
        ready,
    }))
}

/// Takes the subscription's waiting events as the JSON text of an array.
#[napi]
pub fn drain_events<'env>(
    env: &'env Env,
    subscription: &External<Subscription>,
) -> Result<JsString<'env>> {
    set_keep_alive(env, &subscription.ready, false);
    js_text(env, &subscription.queue.drain())
}

/// Ends a subscription; idempotent. The callback is released here, not when the external is
/// collected: it holds the JS function that holds the external, a cycle through a GC root.
#[napi]
pub fn unsubscribe(env: Env, subscription: &External<Subscription>) {
    subscription.engine.events().unsubscribe(subscription.id);
    set_keep_alive(&env, &subscription.ready, false);
    let released = subscription.ready.lock().take();
    drop(released);
}
