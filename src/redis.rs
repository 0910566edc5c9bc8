//! The Redis store's calls. Unlike the in-process stores', each is async: it runs on the tokio
//! runtime napi-rs runs, and completes once Redis has answered (or `commandTimeout` has
//! passed). Stores are held in a registry and named by a number, which an async call can carry
//! across threads.
//!
//! The hot calls (`get`, `set`, `update`, `delete`) are not napi `async fn`s: each of those
//! makes a promise and a threadsafe function of its own, and wakes the JS thread once per call.
//! Instead a call is started synchronously with a number JavaScript chose, and its outcome
//! joins the store's queue of [`Completions`]; one threadsafe function tells JavaScript when
//! the queue stops being empty, and JavaScript takes every outcome waiting in one call
//! (`redisDrain`), so calls that complete together cost one wake-up. The other way likewise:
//! a call started waits in its store's queue until JavaScript hands every call started in the
//! same turn to the runtime at once (`redisFlush`), so that they cost one wake-up of its worker.

use crate::args::{js_text, Name, Text};
use crate::errors::{error_text, to_js};
use crate::events::{subscribe_to, Subscription};
use crate::options::{engine_options, positive};
use crate::status::new_float64_array;
use crate::store::{known, update_answer};
use napi::bindgen_prelude::{
    spawn, sys, Array, External, FromNapiRef, FromNapiValue, Function, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stepstate_core::store::{GroupRead, RedisOptions, RedisStore};
use stepstate_core::{Error, Ttl, Version};

fn stores() -> &'static Mutex<HashMap<u32, Arc<RedisStore>>> {
    static STORES: OnceLock<Mutex<HashMap<u32, Arc<RedisStore>>>> = OnceLock::new();
    STORES.get_or_init(Mutex::default)
}

/// The open store named `id`; `CLOSED` once it was closed.
fn store(id: u32) -> Result<Arc<RedisStore>> {
    stores()
        .lock()
        .get(&id)
        .cloned()
        .ok_or_else(|| to_js(Error::Closed))
}

type ReadyCallback = ThreadsafeFunction<(), (), (), Status, false, true>;

/// What a call answers: a text (none, or `Known`: the value JavaScript said it holds), with the
/// version of the item read or written (0: none) and the length of its stored text (which the
/// read cache counts), as `store.rs` answers for the in-process stores.
pub(crate) struct Answer {
    text: AnswerText,
    version: Version,
    length: usize,
}

enum AnswerText {
    None,
    Known,
    Text(String),
}

impl Answer {
    /// No item (or a call that answers with none).
    fn none() -> Answer {
        Answer {
            text: AnswerText::None,
            version: 0,
            length: 0,
        }
    }

    /// A text about no one item (a whole group's).
    fn text(text: String) -> Answer {
        Answer {
            text: AnswerText::Text(text),
            version: 0,
            length: 0,
        }
    }
}

impl AnswerText {
    /// A value at `version`: `Known` when JavaScript holds that version already.
    fn value(text: String, version: Version, known: Version) -> AnswerText {
        if version != 0 && version == known {
            AnswerText::Known
        } else {
            AnswerText::Text(text)
        }
    }
}

/// The outcome of one started call: its answer, or the error's text (see `errors.rs`).
type Outcome = std::result::Result<Answer, String>;

/// The outcomes of a store's started calls that JavaScript has not taken yet, and the callback
/// that tells it some are waiting. One per store, held by JavaScript (an external) so that the
/// calls in flight when the store closes still complete.
pub struct Completions {
    queue: Mutex<CompletionQueue>,
    /// Released by `redisRelease`: it holds the JS function, which holds this external.
    ready: Mutex<Option<ReadyCallback>>,
    /// The calls started and not yet handed to the runtime (see [`redis_flush`]).
    started: Mutex<Vec<Call>>,
}

/// A started call's work, up to queueing its outcome.
type Call = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct CompletionQueue {
    /// (call number, outcome) in the order the calls completed.
    done: Vec<(u32, Outcome)>,
    /// Whether `ready` was called since JavaScript last drained: it is called only when the
    /// queue stops being empty, so a burst of completions costs one wake-up.
    notified: bool,
}

impl Completions {
    /// Queues the outcome of call `call`, and wakes JavaScript if nothing was waiting.
    fn finish(&self, call: u32, outcome: std::result::Result<Answer, Error>) {
        let outcome = outcome.map_err(|err| error_text(&err));
        let wake = {
            let mut queue = self.queue.lock();
            queue.done.push((call, outcome));
            !std::mem::replace(&mut queue.notified, true)
        };
        if wake {
            if let Some(ready) = self.ready.lock().as_ref() {
                ready.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        }
    }
}

/// A store's completion queue as an argument (the external `redisCompletions` made); the
/// external, an argument of the current call, outlives it.
pub(crate) struct CompletionsArg(&'static Arc<Completions>);

impl FromNapiValue for CompletionsArg {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let external = unsafe { External::<Arc<Completions>>::from_napi_ref(env, value) }?;
        Ok(CompletionsArg(external))
    }
}

/// Starts call `call` on store `id` (`CLOSED` once closed): `work` is called now (a call takes
/// its place in its key's line when made), its future waits in `completions` for
/// [`redis_flush`] to hand it to the runtime, and the outcome goes to `completions`.
fn start<F, Fut>(id: u32, completions: &Arc<Completions>, call: u32, work: F) -> Result<()>
where
    F: FnOnce(Arc<RedisStore>) -> Fut,
    Fut: Future<Output = std::result::Result<Answer, Error>> + Send + 'static,
{
    let work = work(store(id)?);
    let outcomes = Arc::clone(completions);
    // Boxed where it is made: the call's future holds its whole state (about a kilobyte), and
    // spawning moves the task's future several times before it is in place.
    let call: Call = Box::pin(async move { outcomes.finish(call, work.await) });
    completions.started.lock().push(call);
    Ok(())
}

/// Hands the calls started since the last flush to the runtime. JavaScript calls it once per
/// turn in which it started calls (a microtask queued by the first): each spawn from this
/// thread wakes the runtime's worker when it sleeps, a write to an eventfd that took about a
/// seventh of the JS thread's time with 64 `set`s in flight; the calls that one turn of
/// JavaScript starts (those whose callers an answer woke) now cost one.
#[napi]
pub fn redis_flush(completions: &External<Arc<Completions>>) {
    let mut calls = std::mem::take(&mut *completions.started.lock());
    match calls.len() {
        0 => {}
        1 => {
            if let Some(call) = calls.pop() {
                spawn(call);
            }
        }
        _ => {
            spawn(async move {
                for call in calls {
                    napi::tokio::spawn(call);
                }
            });
        }
    }
}

/// The completion queue of store `id`: `ready` is called (on this JS thread) whenever outcomes
/// are waiting, and then takes them with `redisDrain`. The callback is unref'd: `redisHold`
/// keeps the process alive while calls are in flight.
#[napi]
pub fn redis_completions(id: u32, ready: Function<(), ()>) -> Result<External<Arc<Completions>>> {
    store(id)?;
    let ready = ready
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(|_| Ok(()))?;
    Ok(External::new(Arc::new(Completions {
        queue: Mutex::new(CompletionQueue::default()),
        ready: Mutex::new(Some(ready)),
        started: Mutex::new(Vec::new()),
    })))
}

/// Makes the completion callback keep the process alive (`true`: calls are in flight) or not.
// `refer`/`unref` are deprecated as reference counting; here they tell the event loop whether
// to wait for the callback, which is what napi_ref/unref_threadsafe_function are for.
#[allow(deprecated)]
#[napi]
pub fn redis_hold(
    env: Env,
    completions: &External<Arc<Completions>>,
    keep_alive: bool,
) -> Result<()> {
    match completions.ready.lock().as_mut() {
        Some(ready) if keep_alive => ready.refer(&env),
        Some(ready) => ready.unref(&env),
        None => Ok(()),
    }
}

/// How many numbers of `redisDrain`'s array each outcome takes.
const DRAINED: usize = 4;

/// What an outcome answers, in `redisDrain`'s numbers: none (null), the value of the version
/// JavaScript said it holds (`true`), a text, or an error's text.
const NO_TEXT: f64 = 0.0;
const KNOWN: f64 = 1.0;
const TEXT: f64 = 2.0;
const FAILED: f64 = 3.0;

/// Takes the waiting outcomes: `[numbers, ...texts]`, where `numbers` is a `Float64Array` of
/// `[call, answer, version, length]` per outcome (`answer`: 0 none, 1 the value of the version
/// JavaScript said it holds, 2 a text, 3 an error's text (see `errors.rs`); `version` and
/// `length`: of the item read or written, see [`Answer`]) and `texts` are the texts of the
/// outcomes that have one, in order. The numbers are copied into the array at once, not set
/// one by one: each element set through N-API costs about a thousand instructions, and calls
/// answered without a text (a held value) then cost none.
#[napi(ts_return_type = "[Float64Array, ...string[]]")]
pub fn redis_drain<'env>(
    env: &'env Env,
    completions: &External<Arc<Completions>>,
) -> Result<Array<'env>> {
    let done = {
        let mut queue = completions.queue.lock();
        queue.notified = false;
        std::mem::take(&mut queue.done)
    };
    let mut numbers = Vec::with_capacity(done.len() * DRAINED);
    let mut texts = Vec::new();
    for (call, outcome) in &done {
        let (answer, version, length) = match outcome {
            Err(text) => {
                texts.push(text.as_str());
                (FAILED, 0, 0)
            }
            Ok(answer) => {
                let kind = match &answer.text {
                    AnswerText::None => NO_TEXT,
                    AnswerText::Known => KNOWN,
                    AnswerText::Text(text) => {
                        texts.push(text.as_str());
                        TEXT
                    }
                };
                (kind, answer.version, answer.length)
            }
        };
        numbers.extend([f64::from(*call), answer, version as f64, length as f64]);
    }
    let mut out = env.create_array((1 + texts.len()) as u32)?;
    out.set(0, float64_array(env, &numbers)?)?;
    for (n, text) in texts.into_iter().enumerate() {
        out.set(1 + n as u32, js_text(env, text)?)?;
    }
    Ok(out)
}

/// A new `Float64Array` holding `numbers`.
fn float64_array<'env>(env: &'env Env, numbers: &[f64]) -> Result<Unknown<'env>> {
    let (data, array) = new_float64_array(env, numbers.len())?;
    if !numbers.is_empty() {
        // SAFETY: the array was just made with room for `numbers.len()` f64s, and nothing else
        // holds it yet.
        unsafe { std::ptr::copy_nonoverlapping(numbers.as_ptr(), data, numbers.len()) };
    }
    // SAFETY: a value of this env, just made.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), array) })
}

/// Releases the completion callback once JavaScript expects no more outcomes (the store is
/// closed and nothing is in flight); idempotent.
#[napi]
pub fn redis_release(completions: &External<Arc<Completions>>) {
    let released = completions.ready.lock().take();
    drop(released);
}

/// Starts storing a value (JSON text) with a TTL in milliseconds (negative: the store's
/// default); call `call` answers with the previous value's text (`Known` when its version is
/// `known_old`) or none, and the new value's version.
#[allow(clippy::too_many_arguments)] // the call's arguments, as JavaScript passes them
pub(crate) fn redis_set_start(
    id: u32,
    completions: CompletionsArg,
    call: u32,
    group: Name,
    key: Name,
    value: Text,
    ttl_ms: f64,
    known_old: f64,
) -> Result<()> {
    let ttl = Ttl::from_millis_arg(ttl_ms);
    let known_old = known(known_old);
    let length = value.0.len();
    start(id, completions.0, call, move |store| {
        let set = store.set(group.as_str(), key.as_str(), value.0, ttl);
        async move {
            let replaced = set.await?;
            Ok(Answer {
                text: match replaced.old {
                    Some(old) => AnswerText::value(old.into(), replaced.old_version, known_old),
                    None => AnswerText::None,
                },
                version: replaced.version,
                length,
            })
        }
    })
}

/// Starts reading a value; call `call` answers with its text (`Known` when its version is
/// `known`) and version, or none.
pub(crate) fn redis_get_start(
    id: u32,
    completions: CompletionsArg,
    call: u32,
    group: Name,
    key: Name,
    known_version: f64,
) -> Result<()> {
    let known_version = known(known_version);
    start(id, completions.0, call, move |store| {
        let get = store.get(group.as_str(), key.as_str());
        async move {
            Ok(match get.await? {
                Some((text, version)) => Answer {
                    length: text.len(),
                    text: AnswerText::value(text, version, known_version),
                    version,
                },
                None => Answer::none(),
            })
        }
    })
}

/// Starts applying ops (JSON text of an array); call `call` answers as `update` does in
/// `store.rs`: when the old value's version is `known_old`, the changed members `{...}` (if the
/// ops changed only some members of an object) or `[new_value]`; otherwise
/// `[new_value, old_value]`; with the new value's version and length.
pub(crate) fn redis_update_start(
    id: u32,
    completions: CompletionsArg,
    call: u32,
    group: Name,
    key: Name,
    ops: Text,
    known_old: f64,
) -> Result<()> {
    let known_old = known(known_old);
    start(id, completions.0, call, move |store| {
        let update = store.update(group.as_str(), key.as_str(), &ops.0);
        async move {
            let result = update.await?;
            Ok(Answer {
                text: AnswerText::Text(update_answer(&result, known_old).into_owned()),
                version: result.version,
                length: result.new_value.len(),
            })
        }
    })
}

/// Starts removing an item; call `call` answers with its value's text (`Known` when its version
/// is `known_old`), or none.
pub(crate) fn redis_delete_start(
    id: u32,
    completions: CompletionsArg,
    call: u32,
    group: Name,
    key: Name,
    known_old: f64,
) -> Result<()> {
    let known_old = known(known_old);
    start(id, completions.0, call, move |store| {
        let delete = store.delete(group.as_str(), key.as_str());
        async move {
            Ok(match delete.await? {
                Some(removed) => Answer {
                    text: AnswerText::value(removed.old.into(), removed.old_version, known_old),
                    ..Answer::none()
                },
                None => Answer::none(),
            })
        }
    })
}

/// Connects to Redis at `url` (the change events under `prefix` are read from the first
/// subscription on); resolves with the store's number. `command_timeout_ms` bounds every call
/// (0: the default, 5 s); `events_kept` is about how many events the stream keeps (0: the
/// default); `tls_ca` is the certificate authority (PEM) a `rediss://` server's certificate
/// must be signed by, instead of the system's.
#[napi]
pub async fn redis_open(
    url: String,
    prefix: String,
    command_timeout_ms: f64,
    max_value_bytes: f64,
    default_ttl_ms: f64,
    events_kept: f64,
    tls_ca: Option<String>,
) -> Result<u32> {
    let mut options = RedisOptions::new(url);
    options.prefix = prefix;
    if let Some(kept) = positive(events_kept) {
        options.events_kept = kept as u64;
    }
    options.tls_ca = tls_ca.map(String::into_bytes);
    if let Some(ms) = positive(command_timeout_ms) {
        options.command_timeout = Duration::from_millis(ms.ceil() as u64);
    }
    options.rules = engine_options(max_value_bytes, default_ttl_ms).rules();
    let store = RedisStore::open(options).await.map_err(to_js)?;
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    stores().lock().insert(id, store);
    Ok(id)
}

/// Starts removing every item of a group; the outcome of call `call` is null.
#[napi]
pub fn redis_clear_start(
    id: u32,
    completions: &External<Arc<Completions>>,
    call: u32,
    group: Name,
) -> Result<()> {
    start(id, completions, call, move |store| {
        let clear = store.clear(group.as_str());
        async move { clear.await.map(|_| Answer::none()) }
    })
}

/// Starts reading a whole group; the outcome of call `call` is the JSON text of an array in
/// insertion order of its values (`read` "values"), its `{ key, value }` items ("entries") or
/// its keys ("keys").
#[napi]
pub fn redis_read_group_start(
    id: u32,
    completions: &External<Arc<Completions>>,
    call: u32,
    group: Name,
    read: String,
) -> Result<()> {
    let read = match read.as_str() {
        "entries" => GroupRead::Entries,
        "keys" => GroupRead::Keys,
        _ => GroupRead::Values,
    };
    start(id, completions, call, move |store| {
        let text = store.read_group(group.as_str(), read);
        async move { text.await.map(Answer::text) }
    })
}

/// The sorted names of non-empty groups.
#[napi]
pub async fn redis_list_groups(id: u32) -> Result<Vec<String>> {
    store(id)?.list_groups().await.map_err(to_js)
}

/// Subscribes to the change events (of every process on the prefix) matching `group`/`key`;
/// as `subscribe` for in-process stores.
#[napi]
pub fn redis_subscribe(
    id: u32,
    group: Option<String>,
    key: Option<String>,
    ready: Function<(), ()>,
) -> Result<External<Subscription>> {
    let store = store(id)?;
    let since = store.follow();
    subscribe_to(store, since, group, key, ready)
}

/// Closes the store: its sweep and event reader stop and its connections go; later calls
/// reject with `CLOSED`. Returns at once, even while Redis is down. Idempotent.
#[napi]
pub fn redis_close(id: u32) {
    if let Some(store) = stores().lock().remove(&id) {
        store.close();
    }
}

/// The tokio runtime of the Redis calls: one worker thread. A call's task, the connection's
/// driver task and the event reader then run on one thread, so an awaited call wakes another
/// thread twice (JS to the worker, the worker to JS) instead of also handing work between
/// workers; on a machine of few cores the spare workers only competed with Node and Redis.
#[napi_derive::module_init]
fn one_worker_runtime() {
    let runtime = napi::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build();
    if let Ok(runtime) = runtime {
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }
}
