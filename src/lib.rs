//! The Node.js binding: the one place `#[napi]` appears. Thin glue over `stepstate-core`.
//!
//! Every call of an in-process store is a synchronous N-API function over a store handle (a
//! tagged external, see [`HandleRef`]), and values cross as JSON text both ways;
//! `lib/backend/native.js` wraps these functions into the in-process backend of the
//! Promise-returning `StateManager` (index.js). The Redis store's calls are async
//! (`lib/backend/redis.js`).
//! Errors cross as one string `code \u{1f} opIndex \u{1f} message` that `lib/errors.js` turns
//! back into a `StateError` (see `fromNative` there), so JavaScript always branches on
//! `err.code`.
//!
//! One file per concern:
//! - `args.rs`: names, values' text and replies as they cross N-API ([`Name`], [`Text`]);
//! - `handle.rs`: store handles ([`Handle`], [`HandleRef`], [`NewHandle`]);
//! - `options.rs`: store options, built once for every store, and opening memory and file stores;
//! - `store.rs`: the store calls (set, get, update, delete, clear, reads, close);
//! - `fast.rs`: the per-item calls (set, get, update, delete, in process and on Redis)
//!   registered as plain N-API callbacks;
//! - `events.rs`: change event subscriptions;
//! - `status.rs`: what a call reports beside its value, in an array JS reads without a call;
//! - `durable.rs`: acknowledgements of durable writes;
//! - `redis.rs`: the Redis store's async calls;
//! - `ops.rs`: the op engine as a pure function over JSON text, for a user's adapter;
//! - `inspect.rs`: reading a file store without its lock, and checking its files (the CLI);
//! - `errors.rs`: the one mapping of core errors to JavaScript errors.

// napi-rs registers the module only outside test builds, so in a test build (`cargo clippy
// --all-targets`) all that only the registration reaches looks unused. The crate has no Rust
// tests of its own: the JS suites test it.
#![cfg_attr(test, allow(dead_code))]

mod args;
mod durable;
mod errors;
mod events;
mod fast;
mod handle;
mod inspect;
mod names;
mod ops;
mod options;
mod redis;
mod status;
mod store;

pub use args::{Name, Text};
pub use durable::{durable_ref, unwatch_durable, watch_durable, DurableWatch};
pub use events::{drain_events, subscribe, unsubscribe, Subscription};
pub use handle::{Handle, HandleRef, NewHandle};
pub use inspect::{
    check_store_file, file_holder, file_read, files_to_check_at, read_entries, read_get,
    read_groups, CheckedFile, FileToCheck, ReadOnlyStore,
};
pub use ops::apply_ops;
pub use options::{open_file, open_memory, sync_policy, OpenFile};
pub use redis::{
    redis_clear_start, redis_close, redis_completions, redis_drain, redis_hold, redis_list_groups,
    redis_open, redis_read_group_start, redis_release, redis_subscribe, Completions,
};
pub use status::call_status;
pub use store::{clear, close, entries, get_group, keys, list_groups};

/// The addon's allocator. A Redis call's strings are made on the JavaScript thread and freed on
/// the runtime's worker, and its reply the other way round; with the system's malloc each such
/// free takes the lock of the other thread's arena, and the two threads, busy at once, met on
/// those locks (a futex wait and wake on either side, about a twentieth of each thread's time
/// at 64 calls in flight). mimalloc frees another thread's block without a lock. Its
/// local-dynamic TLS model is the one that works in a library loaded with `dlopen`, as an
/// addon is. Version 2: version 3 left a million items reopened from a file store holding
/// 312 MB resident against 211 MB with the system's malloc; version 2 holds 221 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
