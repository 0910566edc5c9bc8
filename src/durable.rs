//! Durable acknowledgements of `sync: 'always'` file stores: the ticket of the last write a JS
//! thread journaled, and a callback told each durable ticket after the log's sync thread
//! syncs, so that `lib/backend/native.js` resolves a write only once it is on disk.

use crate::errors::to_js;
use crate::handle::HandleRef;
use crate::status::{note, Slot};
use napi::bindgen_prelude::{External, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Result, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use std::sync::Arc;
use stepstate_core::{Error, FileStore};

/// Remembers the ticket of the write this thread just made (0: it wrote nothing), which
/// `lib/backend/native.js` reads from the call status (see `status.rs`) to wait for it.
pub(crate) fn note_ticket(ticket: u64) {
    note(Slot::Ticket, ticket as f64);
}

type DurableCallback = ThreadsafeFunction<f64, (), f64, Status, false, true>;

/// A JS callback told the durable ticket after each sync of a file store's log. The callback
/// is released by `unwatchDurable`: it holds the JS function, which holds this watch, so
/// waiting for garbage collection would keep both forever.
pub struct DurableWatch {
    store: Arc<FileStore>,
    id: u64,
    callback: Arc<Mutex<Option<DurableCallback>>>,
}

/// Like [`Subscription`](crate::events::Subscription)'s, a watch dropped unclosed stops being told.
impl Drop for DurableWatch {
    fn drop(&mut self) {
        self.store.remove_on_durable(self.id);
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
    let Some(store) = handle.file_store()? else {
        return Err(to_js(Error::InvalidArgument(
            "only a file store has durable acknowledgements".into(),
        )));
    };
    let callback = Arc::new(Mutex::new(Some(
        callback
            .build_threadsafe_function::<f64>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?,
    )));
    let notify = callback.clone();
    // A ticket, or -1 when the log failed and nothing more will become durable.
    let id = store.on_durable(Arc::new(move |ticket| {
        let value = ticket.map_or(-1.0, |ticket| ticket as f64);
        if let Some(callback) = notify.lock().as_ref() {
            callback.call(value, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }));
    Ok(External::new(DurableWatch {
        store: store.clone(),
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
    watch.store.remove_on_durable(watch.id);
    drop(watch.callback.lock().take());
}
