//! Change events to JavaScript: a subscription per listener, whose queue a JS callback drains
//! on a later turn of the event loop (never inside a write), and the bookkeeping that keeps
//! the process alive until the events of this thread's own writes are delivered
//! ([`keep_alive_for_pending_events`], called by every write in `store.rs`).

use crate::args::js_text;
use crate::handle::HandleRef;
use napi::bindgen_prelude::{External, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsString, Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use std::sync::Arc;
use stepstate_core::events::Publisher;
use stepstate_core::events::{EventQueue, Filter};

/// One change listener's subscription: its queue of undelivered events.
pub struct Subscription {
    source: Arc<dyn Publisher>,
    id: u64,
    queue: Arc<EventQueue>,
    ready: Arc<Mutex<Option<EventCallback>>>,
}

/// A subscription garbage-collected without `unsubscribe` (its manager dropped unclosed) leaves
/// the store too, which may outlive it (a file store shared with other managers).
impl Drop for Subscription {
    fn drop(&mut self) {
        self.source.events().unsubscribe(self.id);
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
pub(crate) fn keep_alive_for_pending_events(env: &Env) {
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
    handle.engine()?;
    subscribe_to(handle.engine.clone(), 0, group, key, ready)
}

/// Subscribes `ready` to the events of `source` (see [`subscribe`]) after position `since` (see
/// `EventBus::subscribe_since`; 0 for an in-process store).
pub(crate) fn subscribe_to(
    source: Arc<dyn Publisher>,
    since: u128,
    group: Option<String>,
    key: Option<String>,
    ready: Function<(), ()>,
) -> Result<External<Subscription>> {
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
    let (id, queue) = source
        .events()
        .subscribe_since(Filter { group, key }, notify, since);
    Ok(External::new(Subscription {
        source,
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
    subscription.source.events().unsubscribe(subscription.id);
    set_keep_alive(&env, &subscription.ready, false);
    let released = subscription.ready.lock().take();
    drop(released);
}
