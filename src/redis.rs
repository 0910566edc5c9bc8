//! The Redis store's calls. Unlike the in-process stores', each is async: it resolves on the
//! tokio runtime napi-rs runs, once Redis has answered (or `commandTimeout` has passed). Stores
//! are held in a registry and named by a number, which an async call can carry across threads.

use crate::errors::to_js;
use crate::events::{subscribe_to, Source, Subscription};
use crate::options::{engine_options, positive};
use napi::bindgen_prelude::{External, Function};
use napi::Result;
use napi_derive::napi;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stepstate_core::store::{RedisOptions, RedisStore};
use stepstate_core::{Error, Ttl};

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

/// Connects to Redis at `url` and starts following the change events under `prefix`; resolves
/// with the store's number. `command_timeout_ms` bounds every call (0: the default, 5 s);
/// `tls_ca` is the certificate authority (PEM) a `rediss://` server's certificate must be
/// signed by, instead of the system's.
#[napi]
pub async fn redis_open(
    url: String,
    prefix: String,
    command_timeout_ms: f64,
    max_value_bytes: f64,
    default_ttl_ms: f64,
    tls_ca: Option<String>,
) -> Result<u32> {
    let mut options = RedisOptions::new(url);
    options.prefix = prefix;
    options.tls_ca = tls_ca.map(String::into_bytes);
    if let Some(ms) = positive(command_timeout_ms) {
        options.command_timeout = Duration::from_millis(ms.ceil() as u64);
    }
    options.rules = engine_options(max_value_bytes, default_ttl_ms).rules();
    let store = RedisStore::open(options).await.map_err(to_js)?;
    store.listen().await.map_err(to_js)?;
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    stores().lock().insert(id, store);
    Ok(id)
}

/// Stores a value (JSON text) with a TTL in milliseconds (negative: the store's default);
/// resolves with the previous value's text, or null.
#[napi]
pub async fn redis_set(
    id: u32,
    group: String,
    key: String,
    value: String,
    ttl_ms: f64,
) -> Result<Option<String>> {
    let ttl = if ttl_ms < 0.0 {
        Ttl::Default
    } else {
        Ttl::Millis(ttl_ms.ceil() as u64)
    };
    let replaced = store(id)?
        .set(&group, &key, value, ttl)
        .await
        .map_err(to_js)?;
    Ok(replaced.old.map(String::from))
}

/// The value's text, or null.
#[napi]
pub async fn redis_get(id: u32, group: String, key: String) -> Result<Option<String>> {
    let item = store(id)?.get(&group, &key).await.map_err(to_js)?;
    Ok(item.map(|(text, _)| text))
}

/// Applies ops (JSON text of an array); resolves with the JSON text `[new_value, old_value]`.
#[napi]
pub async fn redis_update(id: u32, group: String, key: String, ops: String) -> Result<String> {
    let result = store(id)?.update(&group, &key, &ops).await.map_err(to_js)?;
    let old = result.old_value.as_deref().unwrap_or("null");
    let mut pair = String::with_capacity(3 + result.new_value.len() + old.len());
    pair.push('[');
    pair.push_str(&result.new_value);
    pair.push(',');
    pair.push_str(old);
    pair.push(']');
    Ok(pair)
}

/// Removes an item; resolves with its value's text, or null.
#[napi]
pub async fn redis_delete(id: u32, group: String, key: String) -> Result<Option<String>> {
    let removed = store(id)?.delete(&group, &key).await.map_err(to_js)?;
    Ok(removed.map(|removed| String::from(removed.old)))
}

/// Removes every item of a group; resolves with how many were removed.
#[napi]
pub async fn redis_clear(id: u32, group: String) -> Result<u32> {
    let removed = store(id)?.clear(&group).await.map_err(to_js)?;
    Ok(removed as u32)
}

/// The group's values as the JSON text of an array, in insertion order.
#[napi]
pub async fn redis_get_group(id: u32, group: String) -> Result<String> {
    store(id)?.group_json(&group).await.map_err(to_js)
}

/// The group's items as the JSON text of an array of `{ key, value }`.
#[napi]
pub async fn redis_entries(id: u32, group: String) -> Result<String> {
    store(id)?.entries_json(&group).await.map_err(to_js)
}

/// The group's keys as the JSON text of an array of strings.
#[napi]
pub async fn redis_keys(id: u32, group: String) -> Result<String> {
    store(id)?.keys_json(&group).await.map_err(to_js)
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
    let since = store.position();
    subscribe_to(Source::Redis(store), since, group, key, ready)
}

/// Closes the store: its sweep and event reader stop and its connections go; later calls
/// reject with `CLOSED`. Returns at once, even while Redis is down. Idempotent.
#[napi]
pub fn redis_close(id: u32) {
    if let Some(store) = stores().lock().remove(&id) {
        store.close();
    }
}
