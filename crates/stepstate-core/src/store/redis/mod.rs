//! The Redis store: the same contract as the in-process stores, shared by every process (and
//! machine) that opens the same Redis with the same prefix.
//!
//! The rules are the core's ([`write`](crate::write), [`ops`](crate::ops)): `update` runs the
//! Rust op engine on the value it holds and stores the result with a compare-and-set on the
//! item's version (a small script, [`scripts`]), retried when another process got there first.
//! Within one process, the calls of one key run in the order they were made ([`line`]), so a
//! process never conflicts with itself, and the last version it saw of each key is kept so that
//! an uncontended update costs one round trip. Writes and gets travel in batches ([`batch`]). Every write records its change event in a bounded
//! Redis stream in the same atomic step; a reader task turns the stream into the store's
//! [`EventBus`], resuming where it stopped after a dropped connection. Expiry is decided by the
//! server's clock; any process sweeps, and each expired item is removed exactly once.
//!
//! Every call is async (tokio) and bounded by `command_timeout`: when Redis cannot be reached
//! it fails with `BACKEND_UNAVAILABLE`, and the connection comes back by itself when Redis does.

mod batch;
mod line;
mod scripts;
mod spin;

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use crate::engine::{Removed, Replaced, Version, WriteResult};
use crate::error::{Error, Result};
use crate::events::{Change, EventBus, EventType, Publisher, Reason};
use crate::json::push_json_string;
use crate::ops;
use crate::ttl;
use crate::write::{check_item, check_name, Item, Rules, Ttl};
use batch::{read_batches, write_batches, Pending, PendingRead, ReadReply, Write};
use line::{reached_all, Guard, KeyLock, Place};
use scripts::Scripts;

/// Settings of a Redis store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user[:password]@]host[:port][/db]` (or `rediss://` for TLS).
    pub url: String,
    /// Prepended to every key the store uses, so that several stores share one Redis. Default
    /// `stepstate:`.
    pub prefix: String,
    /// How long a call waits for Redis (to connect, and to answer) before it fails with
    /// `BACKEND_UNAVAILABLE`. Default 5 seconds.
    pub command_timeout: Duration,
    /// Value size and default TTL (see [`Rules`]).
    pub rules: Rules,
    /// The change events kept in the stream for listeners that reconnect (at least this many,
    /// and about an eighth more; see `commit` in `scripts.rs`). Default 100,000.
    pub events_kept: u64,
    /// For `rediss://`: the certificate authority (PEM) to trust instead of the system's, for
    /// a server with a certificate of its own making. Default `None`.
    pub tls_ca: Option<Vec<u8>>,
}

impl RedisOptions {
    /// Default settings for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            prefix: "stepstate:".into(),
            command_timeout: Duration::from_secs(5),
            rules: Rules::default(),
            events_kept: 100_000,
            tls_ca: None,
        }
    }
}

/// How often a process sweeps expired items (any process may; each item goes once).
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// Most items one sweep removes.
const SWEEP_LIMIT: u32 = 500;
/// Stripes of the per-key write locks of one process (a read waits for the writes before it
/// in its stripe).
const KEY_LOCKS: usize = 1024;
/// How long one read of the event stream waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(500);
/// How long the event reader waits after a read that found entries before it reads again, so
/// that the writes of that time come in one reply: without it every write, even one awaited at
/// a time, costs Redis and this process a whole read of the stream of its own.
const READ_PAUSE: Duration = Duration::from_millis(1);
/// Most stream entries one read takes: each holds the events of one call of a write script
/// (one to a few hundred).
const READ_ENTRIES: u64 = 100;
/// Most versions remembered for one-round-trip updates.
const KNOWN_VERSIONS: usize = 10_000;
/// How many values of the write script's reply answer each write (see `scripts.rs`).
const ANSWER_VALUES: usize = 3;
/// How far the server's clock may have drifted from this process's since it was last read, per
/// unit of time elapsed (1,000 ppm: twice what NTP ever slews).
const CLOCK_DRIFT_PER_MS: f64 = 0.001;
/// A fixed allowance on top of the drift, in microseconds (50 ms).
const CLOCK_MARGIN_US: i64 = 50_000;

/// What this process knows of the Redis server's clock, from the sweep's replies (every
/// [`SWEEP_INTERVAL`]) and the `TIME` that ends each pipeline of gets: bounds on the server's
/// time at any instant of this process's monotonic clock, from which the event reader starts
/// (see [`RedisStore::follow`]). Expiry itself is always judged by the server's time: in the
/// scripts, and for a get by the `TIME` read with it.
struct ServerClock {
    /// The zero of this process's clock, in microseconds.
    epoch: std::time::Instant,
    /// (lowest, highest) server time minus local time, in microseconds, and when measured.
    offset: Mutex<Option<(i64, i64, i64)>>,
}

impl ServerClock {
    fn new() -> ServerClock {
        ServerClock {
            epoch: std::time::Instant::now(),
            offset: Mutex::new(None),
        }
    }

    /// This process's time in microseconds since `epoch`.
    fn local_us(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    /// Notes that the server's clock read `server_ms` (truncated to the millisecond) at some
    /// instant between `sent` and `received` (local microseconds).
    fn observe(&self, server_ms: u64, sent: i64, received: i64) {
        let server_us = i64::try_from(server_ms).unwrap_or(i64::MAX / 2) * 1000;
        let reading = (server_us - received, server_us + 1000 - sent, received);
        let mut offset = self.offset.lock();
        // A slow answer gives wide bounds: keep a narrower recent reading instead.
        let keep_old = offset.is_some_and(|(low, high, at)| {
            received - at < 1_000_000 && high - low < reading.1 - reading.0
        });
        if !keep_old {
            *offset = Some(reading);
        }
    }

    /// The earliest the server's time can be now, in milliseconds, by the last reading and
    /// the drift allowed since (however old the reading: the bound only widens); `None`
    /// before any reading.
    fn earliest_ms(&self) -> Option<u64> {
        let (low, _, at) = (*self.offset.lock())?;
        let now = self.local_us();
        let slack = CLOCK_MARGIN_US + ((now - at) as f64 * CLOCK_DRIFT_PER_MS) as i64;
        u64::try_from((now + low - slack) / 1000).ok()
    }
}

/// The keys of one group that reads use (the write script makes the same names, and the
/// group's version counter `…:n`, from the prefix).
struct GroupKeys {
    items: String,
    order: String,
}

/// What [`RedisStore::read_group`] gives of a group's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRead {
    /// The values (`getGroup`).
    Values,
    /// `{"key":…,"value":…}` objects (`entries`).
    Entries,
    /// The keys.
    Keys,
}

/// The last version and text a process saw of each item, under the hash of its (group, key)
/// as the key locks hash it: every write looks its item up, and a lookup by the names would
/// first copy them into a key (two allocations, and two more to free). Two items whose
/// hashes meet take turns in the one place: this only spares round trips.
type KnownVersions = HashMap<u64, Known, foldhash::fast::RandomState>;

/// What this process last saw of an item.
struct Known {
    group: Box<str>,
    key: Box<str>,
    version: Version,
    text: Arc<str>,
}

impl Known {
    fn is(&self, group: &str, key: &str) -> bool {
        &*self.key == key && &*self.group == group
    }
}

/// One store on a Redis server.
pub struct RedisStore {
    connection: ConnectionManager,
    client: redis::Client,
    options: RedisOptions,
    scripts: Scripts,
    groups_key: String,
    expiry_key: String,
    stream_key: String,
    events: Arc<EventBus>,
    key_locks: Box<[KeyLock]>,
    /// The writes waiting for the writer task, which sends them to Redis in batches.
    writes: tokio::sync::mpsc::UnboundedSender<Pending>,
    /// The reads waiting for the reader task, which sends them to Redis in pipelines.
    reads: tokio::sync::mpsc::UnboundedSender<PendingRead>,
    hasher: foldhash::fast::RandomState,
    /// The last version and text this process saw of each key.
    known: Mutex<KnownVersions>,
    /// Bounds on the server's time (see [`ServerClock`]).
    clock: ServerClock,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The runtime the store was opened in, which its background tasks run on.
    runtime: tokio::runtime::Handle,
    /// The newest stream position this process wrote or read: a subscriber made now gets only
    /// the events after it (the ones committed after it subscribed).
    position: Mutex<u128>,
    reader_started: AtomicBool,
    /// The calls in flight, and the task that keeps the worker awake while they are few.
    spin: Arc<spin::Spin>,
    closed: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.options.prefix)
            .finish_non_exhaustive()
    }
}

/// The error of a Redis failure: unreachable, refused, timed out or rejected credentials are
/// `BACKEND_UNAVAILABLE`; anything else the server answered is `IO`.
fn backend_error(err: redis::RedisError) -> Error {
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || matches!(err.kind(), redis::ErrorKind::AuthenticationFailed)
    {
        Error::BackendUnavailable(format!("Redis is unavailable: {err}"))
    } else {
        Error::Io(format!("Redis failed: {err}"))
    }
}

/// An item payload `<version>:<expires_at_ms>:<json>` (as stored, and as the scripts hand it on
/// in replies and events) split into its parts.
fn parse_payload(payload: &str) -> Result<(Version, u64, &str)> {
    let bad = || {
        Error::Io(format!(
            "Redis holds an item stepstate did not write: {payload:.40}"
        ))
    };
    let (version, rest) = payload.split_once(':').ok_or_else(bad)?;
    let (expires, json) = rest.split_once(':').ok_or_else(bad)?;
    Ok((
        version.parse().map_err(|_| bad())?,
        expires.parse().map_err(|_| bad())?,
        json,
    ))
}

/// The JSON of an old item a script's reply hands on as stored (none: there was none).
fn old_json(payload: Option<&Value>) -> Result<Option<Box<str>>> {
    match payload.and_then(text) {
        Some(payload) => Ok(Some(Box::from(parse_payload(&payload)?.2))),
        None => Ok(None),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The stream entry id `<ms>-<seq>` of a position (see [`stream_position`]).
fn stream_id(position: u128) -> String {
    format!("{}-{}", position >> 64, position as u64)
}

/// A bulk string's text, borrowed (none for another value or invalid UTF-8).
fn bulk_str(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

/// The JSON of a payload as stored (`<version>:<expires_at_ms>:<json>`).
fn payload_json(payload: Option<&str>) -> Option<&str> {
    parse_payload(payload?).ok().map(|(_, _, json)| json)
}

/// What an event's kind in the stream says: its type, its reason, and how many values the
/// event takes by position (the kind, group and key, then its old and new payloads, or the one
/// of them it has).
fn event_kind(kind: &str) -> Option<(EventType, Option<Reason>, usize)> {
    Some(match kind {
        "c" => (EventType::Created, None, 4),
        "u" => (EventType::Updated, None, 5),
        "d" => (EventType::Deleted, None, 4),
        "e" => (EventType::Deleted, Some(Reason::Expired), 4),
        "x" => (EventType::Deleted, Some(Reason::Cleared), 4),
        _ => return None,
    })
}

/// The changes of one entry of the event stream, in order: the events of a script call one
/// after another, each a kind and its fields by position (see `scripts.rs`). An entry of an
/// earlier version of this store, one event with named fields (`t`, `g`, `k`, `o`, `n`, `r`),
/// is read too. What cannot be read ends the entry's changes.
fn entry_changes<'a>(values: &[Option<&'a str>]) -> Vec<Change<'a>> {
    let change = |(event_type, reason, _), group, key, old, new| {
        Some(Change {
            event_type,
            group: group?,
            key: key?,
            old_value: payload_json(old),
            new_value: payload_json(new),
            reason,
        })
    };
    if values.first() == Some(&Some("t")) {
        let field = |name: &str| {
            values
                .chunks(2)
                .find(|pair| pair[0] == Some(name))
                .and_then(|pair| pair.get(1).copied().flatten())
        };
        let kind = match (field("t"), field("r")) {
            (None, _) => return Vec::new(),
            (Some(kind @ ("c" | "u")), _) => kind,
            (Some(_), Some("expired")) => "e",
            (Some(_), Some("cleared")) => "x",
            (Some(_), _) => "d",
        };
        let (group, key, old, new) = (field("g"), field("k"), field("o"), field("n"));
        return event_kind(kind)
            .and_then(|kind| change(kind, group, key, old, new))
            .into_iter()
            .collect();
    }
    let mut changes = Vec::new();
    let mut at = 0;
    while let Some(Some(kind)) = values.get(at) {
        // The padding, or a kind this version cannot read, ends the entry.
        let Some(kind @ (event_type, _, width)) = event_kind(kind) else {
            break;
        };
        let field = |n: usize| values.get(at + n).copied().flatten();
        let (old, new) = match event_type {
            EventType::Created => (None, field(3)),
            EventType::Updated => (field(3), field(4)),
            EventType::Deleted => (field(3), None),
        };
        let Some(change) = change(kind, field(1), field(2), old, new) else {
            break;
        };
        changes.push(change);
        at += width;
    }
    changes
}

/// A stream entry id `<ms>-<seq>` as one ordered number.
fn stream_position(id: &str) -> u128 {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (u128::from(ms.parse::<u64>().unwrap_or(0)) << 64) | u128::from(seq.parse::<u64>().unwrap_or(0))
}

/// A number in a script's reply: an integer, or the decimal text of one (the scripts keep the
/// versions they read as text).
fn integer(value: &Value) -> u64 {
    match value {
        Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        Value::BulkString(digits) => std::str::from_utf8(digits)
            .ok()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The text of a JSON array of `items`, each written by `write_item`.
fn json_array<T>(
    items: &[T],
    mut write_item: impl FnMut(&mut String, &T) -> Result<()>,
) -> Result<String> {
    let mut out = String::from("[");
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        write_item(&mut out, item)?;
    }
    out.push(']');
    Ok(out)
}

fn unexpected(what: &str, value: &Value) -> Error {
    Error::Io(format!("unexpected reply from Redis to {what}: {value:?}"))
}

impl RedisStore {
    /// Connects to the Redis at `options.url` and starts the expiry sweep. Fails with
    /// `BACKEND_UNAVAILABLE` within `command_timeout` when Redis cannot be reached or rejects
    /// the credentials, `INVALID_ARGUMENT` for a malformed URL. Must run inside a tokio runtime.
    pub async fn open(options: RedisOptions) -> Result<Arc<RedisStore>> {
        let bad_url = |e: redis::RedisError| {
            Error::InvalidArgument(format!(
                "url {:?} is not a Redis URL: {e}",
                redact(&options.url)
            ))
        };
        let client = match &options.tls_ca {
            Some(ca) => redis::Client::build_with_tls(
                options.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            None => redis::Client::open(options.url.as_str()),
        }
        .map_err(bad_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.command_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            options.command_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| unreachable_within(&options))?
        .map_err(backend_error)?;
        let prefix = &options.prefix;
        let (writes, waiting) = tokio::sync::mpsc::unbounded_channel();
        let (reads, reads_waiting) = tokio::sync::mpsc::unbounded_channel();
        let store = Arc::new(RedisStore {
            writes,
            reads,
            connection,
            client,
            groups_key: format!("{prefix}groups"),
            expiry_key: format!("{prefix}expiry"),
            stream_key: format!("{prefix}events"),
            scripts: Scripts::new(),
            events: Arc::new(EventBus::default()),
            key_locks: (0..KEY_LOCKS)
                .map(|_| Arc::new(tokio::sync::RwLock::new(())))
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            known: Mutex::new(HashMap::default()),
            clock: ServerClock::new(),
            tasks: Mutex::new(Vec::new()),
            runtime: tokio::runtime::Handle::current(),
            position: Mutex::new(0),
            reader_started: AtomicBool::new(false),
            spin: Arc::default(),
            closed: AtomicBool::new(false),
            options,
        });
        // A first round trip, so that a wrong password or an unreachable server fails open; it
        // also reads the server's clock, which `follow` needs.
        store.sweep().await?;
        let writer = Arc::downgrade(&store);
        store
            .tasks
            .lock()
            .push(tokio::spawn(write_batches(writer, waiting)));
        let reader = Arc::downgrade(&store);
        store
            .tasks
            .lock()
            .push(tokio::spawn(read_batches(reader, reads_waiting)));
        store
            .tasks
            .lock()
            .push(tokio::spawn(spin::keep_awake(Arc::clone(&store.spin))));
        let sweeper = Arc::downgrade(&store);
        store.tasks.lock().push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_INTERVAL).await;
                let Some(store) = sweeper.upgrade() else {
                    return;
                };
                let _ = store.sweep().await;
            }
        }));
        Ok(store)
    }

    /// The subscribers to this store's change events (from every process on the prefix), as
    /// read by the reader [`RedisStore::follow`] starts. Subscribe with
    /// [`EventBus::subscribe_since`] at the position `follow` returns, so as to get only what
    /// is committed afterwards.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The newest position in the event stream this process wrote or read.
    fn position(&self) -> u128 {
        *self.position.lock()
    }

    fn advance(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.advance_to(stream_position(id));
        }
    }

    fn advance_to(&self, position: u128) {
        let mut newest = self.position.lock();
        if position > *newest {
            *newest = position;
        }
    }

    /// Where a subscriber made now starts: it gets the events after the returned position (the
    /// ones committed after it subscribed). Starts the event reader on the first call: a
    /// process that never listens never reads the stream, which would otherwise cost it (and
    /// Redis) a read of every other write, its own included.
    ///
    /// The reader, started now, reads from a little before the server's time now, by the
    /// bounds on its clock ([`ServerClock::earliest_ms`]): it cannot miss what is committed
    /// after this call. What other processes committed in those few milliseconds before it
    /// may be delivered, as it may be to a subscriber made while the reader lags behind; this
    /// process's own writes that returned before the call never are.
    pub fn follow(self: &Arc<Self>) -> u128 {
        if !self.closed.load(Ordering::Acquire) && !self.reader_started.swap(true, Ordering::AcqRel)
        {
            // `open` read the clock, so there is a bound.
            let start = u128::from(self.clock.earliest_ms().unwrap_or(0).saturating_sub(1)) << 64;
            let from = start.max(self.position());
            self.advance_to(from);
            self.read_events(stream_id(from));
        }
        self.position()
    }

    /// Spawns the task that reads the event stream after `last_id` into [`RedisStore::events`]
    /// until the store closes, reconnecting when its connection drops.
    fn read_events(self: &Arc<Self>, mut last_id: String) {
        let reader = Arc::downgrade(self);
        let client = self.client.clone();
        let stream = self.stream_key.clone();
        let timeout = self.options.command_timeout;
        self.tasks.lock().push(self.runtime.spawn(async move {
            let mut connection = None;
            loop {
                if reader
                    .upgrade()
                    .is_none_or(|store| store.closed.load(Ordering::Acquire))
                {
                    return;
                }
                if connection.is_none() {
                    // Replies may take the whole block time and then some: a shorter wait
                    // would take an idle stream for a dropped connection.
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(Some(READ_BLOCK + timeout));
                    match tokio::time::timeout(
                        timeout,
                        client.get_multiplexed_async_connection_with_config(&config),
                    )
                    .await
                    {
                        Ok(Ok(c)) => connection = Some(c),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = connection.as_mut() else {
                    continue;
                };
                let read: redis::RedisResult<Value> = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(READ_ENTRIES)
                    .arg("BLOCK")
                    .arg(READ_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(&last_id)
                    .query_async(c)
                    .await;
                match read {
                    Ok(value) => {
                        let Some(store) = reader.upgrade() else {
                            return;
                        };
                        let found = !matches!(value, Value::Nil);
                        store.deliver(&value, &mut last_id);
                        drop(store);
                        if found {
                            tokio::time::sleep(READ_PAUSE).await;
                        }
                    }
                    Err(_) => {
                        // Reconnect and resume after the last entry delivered: nothing is
                        // lost (while the stream keeps it) and nothing comes twice.
                        connection = None;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    /// Publishes the events of the entries of an `XREAD` reply and advances `last_id` past
    /// them.
    fn deliver(&self, reply: &Value, last_id: &mut String) {
        let Value::Array(streams) = reply else { return };
        for stream in streams {
            let Value::Array(parts) = stream else {
                continue;
            };
            let Some(Value::Array(entries)) = parts.get(1) else {
                continue;
            };
            for entry in entries {
                let Value::Array(entry) = entry else { continue };
                let (Some(id), Some(Value::Array(values))) =
                    (entry.first().and_then(text), entry.get(1))
                else {
                    continue;
                };
                let position = stream_position(&id);
                self.advance(Some(&id));
                if self.events.has_subscribers() {
                    let values: Vec<Option<&str>> = values.iter().map(bulk_str).collect();
                    for change in entry_changes(&values) {
                        self.events.publish_at(&change, position);
                    }
                }
                *last_id = id;
            }
        }
    }

    /// Runs one Redis call within `command_timeout`.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        match tokio::time::timeout(self.options.command_timeout, call).await {
            Ok(result) => result.map_err(backend_error),
            Err(_) => Err(unreachable_within(&self.options)),
        }
    }

    /// The group's items hash (as in [`RedisStore::group_keys`]).
    fn items_key(&self, group: &str) -> String {
        format!("{}{{{group}}}:i", self.options.prefix)
    }

    fn group_keys(&self, group: &str) -> GroupKeys {
        let prefix = &self.options.prefix;
        GroupKeys {
            items: format!("{prefix}{{{group}}}:i"),
            order: format!("{prefix}{{{group}}}:o"),
        }
    }

    /// Runs `batch` in one call of the write script; returns the writes' answers, in order, each
    /// an array of its [`ANSWER_VALUES`] values (see `scripts.rs`).
    async fn send_batch(&self, batch: &[Pending]) -> Result<Vec<Value>> {
        let mut invocation = self.scripts.write.prepare_invoke();
        invocation
            .key(&self.groups_key)
            .key(&self.expiry_key)
            .key(&self.stream_key)
            .arg(&self.options.prefix)
            .arg(self.maxlen())
            .arg(self.version_seed());
        for pending in batch {
            let (group, key) = (&pending.group, &pending.key);
            match &pending.write {
                Write::Set {
                    json,
                    ttl_ms,
                    known,
                } => invocation
                    .arg("s")
                    .arg(group)
                    .arg(key)
                    .arg(&**json)
                    .arg(*ttl_ms)
                    .arg(*known),
                Write::CompareAndSet {
                    expected,
                    json,
                    ttl_ms,
                } => invocation
                    .arg("c")
                    .arg(group)
                    .arg(key)
                    .arg(*expected)
                    .arg(&**json)
                    .arg(*ttl_ms),
                Write::Delete => invocation.arg("d").arg(group).arg(key).arg(0).arg(0).arg(0),
                Write::Clear => invocation.arg("x").arg(group).arg(key).arg(0).arg(0).arg(0),
            };
        }
        let mut connection = self.connection.clone();
        let reply: Value = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        match reply {
            Value::Array(mut replies) if replies.len() == ANSWER_VALUES * batch.len() + 1 => {
                // The batch's last event: its writes' events are all committed by now.
                let last_event = replies.pop();
                self.advance(last_event.as_ref().and_then(text).as_deref());
                let mut values = replies.into_iter();
                Ok(batch
                    .iter()
                    .map(|_| Value::Array(values.by_ref().take(ANSWER_VALUES).collect()))
                    .collect())
            }
            other => Err(unexpected("a batch of writes", &other)),
        }
    }

    /// Has the reader task `HGET` the item (with the reads waiting beside it, in one
    /// pipeline); its payload, and the server's time (ms) once it was read.
    async fn read(&self, group: &str, key: &str) -> Result<ReadReply> {
        self.batched(&self.reads, |reply| PendingRead {
            items: self.items_key(group),
            key: key.to_owned(),
            reply,
        })
        .await
    }

    /// `HGET`s the reads of `batch` in one pipeline, followed by a `TIME`; their payloads, in
    /// order, with the server's time (ms) once it had read them, which judges their expiry.
    async fn send_reads(&self, batch: &[PendingRead]) -> Result<(Vec<Option<String>>, u64)> {
        let mut pipeline = redis::pipe();
        for pending in batch {
            pipeline.cmd("HGET").arg(&pending.items).arg(&pending.key);
        }
        pipeline.cmd("TIME");
        let mut connection = self.connection.clone();
        let sent = self.clock.local_us();
        let mut replies: Vec<Value> = self
            .bounded(async move { pipeline.query_async(&mut connection).await })
            .await?;
        let received = self.clock.local_us();
        let unexpected = |replies: usize| {
            Error::Io(format!(
                "unexpected reply from Redis to {} reads: {replies} replies",
                batch.len()
            ))
        };
        if replies.len() != batch.len() + 1 {
            return Err(unexpected(replies.len()));
        }
        let time = replies.pop().ok_or_else(|| unexpected(0))?;
        let (seconds, micros): (u64, u64) = redis::from_redis_value(time)
            .map_err(|e| Error::Io(format!("unexpected reply from Redis to TIME: {e}")))?;
        let server_ms = seconds * 1000 + micros / 1000;
        self.clock.observe(server_ms, sent, received);
        let payloads = redis::from_redis_value(Value::Array(replies))
            .map_err(|e| Error::Io(format!("unexpected reply from Redis to HGET: {e}")))?;
        Ok((payloads, server_ms))
    }

    /// Has the writer task send `write` (with the writes waiting beside it); its reply.
    async fn write(&self, group: &str, key: &str, write: Write) -> Result<Value> {
        self.batched(&self.writes, |reply| Pending {
            write,
            group: group.to_owned(),
            key: key.to_owned(),
            reply,
        })
        .await
    }

    /// Queues a call for a batching task (`call` makes it around the channel of its reply) and
    /// waits for its reply within `command_timeout`. A call still waiting when this gives up is
    /// dropped, never sent late (see [`batch`]).
    async fn batched<P, R>(
        &self,
        queue: &tokio::sync::mpsc::UnboundedSender<P>,
        call: impl FnOnce(tokio::sync::oneshot::Sender<Result<R>>) -> P,
    ) -> Result<R> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (reply, replied) = tokio::sync::oneshot::channel();
        let _in_flight = self.spin.call();
        queue.send(call(reply)).map_err(|_| Error::Closed)?;
        match tokio::time::timeout(self.options.command_timeout, replied).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(unreachable_within(&self.options)),
        }
    }

    /// Takes a write's place in the line of the calls of `key` in this process, now, when the
    /// call is made: the lock serves its waiters first come, first served from their first
    /// poll, and a call's task may well run after the task of a call made later. A write holds
    /// its place until answered; a get (`Place::read`, shared with other reads) too.
    fn in_line(&self, group: &str, key: &str) -> Place {
        Place::write(self.key_lock(group, key))
    }

    fn key_lock(&self, group: &str, key: &str) -> &KeyLock {
        &self.key_locks[self.item_hash(group, key) as usize % KEY_LOCKS]
    }

    fn item_hash(&self, group: &str, key: &str) -> u64 {
        self.hasher.hash_one((group, key))
    }

    /// Places in the lines of every key (a `clear`, which holds them until answered: after
    /// every write made before it, and before every call made after it).
    fn in_every_line(&self) -> Vec<Place> {
        self.key_locks.iter().map(Place::write).collect()
    }

    /// Read places in the lines of every key (a read of a whole group waits behind the writes
    /// made before it, and lets go once it is answered).
    fn after_every_write(&self) -> Vec<Place> {
        self.key_locks.iter().map(Place::read).collect()
    }

    fn remember(&self, group: &str, key: &str, seen: Option<(Version, Arc<str>)>) {
        let hash = self.item_hash(group, key);
        let mut known = self.known.lock();
        match (seen, known.get_mut(&hash)) {
            (Some((version, text)), Some(entry)) if entry.is(group, key) => {
                entry.version = version;
                entry.text = text;
            }
            (Some((version, text)), _) => {
                if known.len() >= KNOWN_VERSIONS {
                    known.clear();
                }
                let (group, key) = (group.into(), key.into());
                known.insert(
                    hash,
                    Known {
                        group,
                        key,
                        version,
                        text,
                    },
                );
            }
            (None, Some(entry)) if entry.is(group, key) => {
                known.remove(&hash);
            }
            (None, _) => {}
        }
    }

    fn known_version(&self, group: &str, key: &str) -> Option<(Version, Arc<str>)> {
        let hash = self.item_hash(group, key);
        self.known
            .lock()
            .get(&hash)
            .filter(|entry| entry.is(group, key))
            .map(|entry| (entry.version, Arc::clone(&entry.text)))
    }

    fn maxlen(&self) -> u64 {
        self.options.events_kept
    }

    /// Where a group's version counter starts when the group is new: a random number below
    /// 2^40, so that versions seen before Redis lost its data (a restart without persistence,
    /// a failover, FLUSHALL) do not come back for other values, which a compare-and-set would
    /// take for the value it knew.
    fn version_seed(&self) -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        self.hasher.hash_one(nanos) & ((1 << 40) - 1)
    }

    /// Stores `value` (JSON text) with `ttl`; returns the previous value as it was replaced.
    /// The call takes its place in its key's line when made (see [`RedisStore::in_line`]).
    pub fn set(
        self: &Arc<Self>,
        group: &str,
        key: &str,
        value: String,
        ttl: Ttl,
    ) -> impl Future<Output = Result<Replaced>> + Send + 'static {
        let place = self.in_line(group, key);
        let (store, group, key) = (Arc::clone(self), group.to_owned(), key.to_owned());
        async move { store.set_in_line(place, &group, &key, value, ttl).await }
    }

    async fn set_in_line(
        &self,
        place: Place,
        group: &str,
        key: &str,
        value: String,
        ttl: Ttl,
    ) -> Result<Replaced> {
        check_item(group, key)?;
        self.options
            .rules
            .check_size(&value)
            .map_err(|e| e.for_item("set", group, key))?;
        let ttl_ms = match ttl {
            Ttl::Millis(ms) => ms,
            Ttl::Default => self.options.rules.default_ttl_ms.unwrap_or(0),
        };
        let json: Arc<str> = Arc::from(value);
        let _in_line = place.reached().await;
        // The text this process holds of the item, if any: Redis sends back the old value only
        // when it is another.
        let known = self.known_version(group, key);
        let reply = self
            .write(
                group,
                key,
                Write::Set {
                    json: json.clone(),
                    ttl_ms,
                    known: known.as_ref().map_or(0, |(version, _)| *version),
                },
            )
            .await?;
        let Value::Array(parts) = &reply else {
            return Err(unexpected("set", &reply));
        };
        let old = match (parts.first(), known) {
            (Some(Value::Int(1)), Some((_, text))) => Some(Box::from(&*text)),
            (first, _) => old_json(first)?,
        };
        let old_version = parts.get(1).map_or(0, integer);
        let version = parts.get(2).map_or(0, integer);
        self.remember(group, key, Some((version, json)));
        Ok(Replaced {
            old,
            old_version,
            version,
            ticket: 0,
            reused: false,
        })
    }

    /// The value's text and version, or `None` when absent or expired, after the writes of the
    /// key this process made before the call (see [`RedisStore::in_line`]).
    ///
    /// A plain `HGET`, as cheap for Redis as any client's, in a pipeline that ends with a `TIME`:
    /// an item with an expiry is judged by the server's time once it had been read, as the
    /// scripts judge it, with no second round trip (which a write made after the get could
    /// come before).
    pub fn get(
        self: &Arc<Self>,
        group: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<(String, Version)>>> + Send + 'static {
        let place = Place::read(self.key_lock(group, key));
        let (store, group, key) = (Arc::clone(self), group.to_owned(), key.to_owned());
        async move {
            // Held (shared with other reads) until the call has its answer, so that a write made
            // later is answered after it: the process learns of the two in the order they were
            // made (a read cache relies on it), and remembers the later version.
            let held = place.reached().await;
            store.get_now(&group, &key, held).await
        }
    }

    async fn get_now(
        &self,
        group: &str,
        key: &str,
        _held: Guard,
    ) -> Result<Option<(String, Version)>> {
        check_item(group, key)?;
        Ok(self
            .read_live(group, key)
            .await?
            .map(|(version, json)| (String::from(&*json), version)))
    }

    /// The item's version and text, read now (`None`: absent or expired), which this process
    /// then remembers.
    async fn read_live(&self, group: &str, key: &str) -> Result<Option<(Version, Arc<str>)>> {
        let (reply, server_ms) = self.read(group, key).await?;
        let Some(payload) = reply else {
            return Ok(None);
        };
        let (version, expires_at_ms, json) = parse_payload(&payload)?;
        // By the server's time at the read, with the engine's rule (as `expired` in scripts.rs).
        if ttl::is_expired(expires_at_ms, server_ms) {
            return Ok(None);
        }
        let json: Arc<str> = Arc::from(json);
        self.remember(group, key, Some((version, json.clone())));
        Ok(Some((version, json)))
    }

    /// Applies `ops_json` atomically across processes: the core's op engine runs on the value
    /// this process holds, and a compare-and-set stores the result only if no one changed the
    /// item meanwhile; otherwise the ops run again on the current value. All ops or none.
    /// The call takes its place in its key's line when made (see [`RedisStore::in_line`]).
    pub fn update(
        self: &Arc<Self>,
        group: &str,
        key: &str,
        ops_json: &str,
    ) -> impl Future<Output = Result<WriteResult>> + Send + 'static {
        let place = self.in_line(group, key);
        let (store, group, key) = (Arc::clone(self), group.to_owned(), key.to_owned());
        let ops_json = ops_json.to_owned();
        async move { store.update_in_line(place, &group, &key, &ops_json).await }
    }

    async fn update_in_line(
        &self,
        place: Place,
        group: &str,
        key: &str,
        ops_json: &str,
    ) -> Result<WriteResult> {
        check_item(group, key)?;
        let ops = ops::parse_ops_cached(ops_json).map_err(|e| e.for_item("update", group, key))?;
        let _in_line = place.reached().await;
        // The value this process last saw: if it is current, one round trip does it. One it
        // never saw (or forgot) is read first, with a plain `HGET` in the pipeline of reads:
        // it costs the same round trip as a compare-and-set bound to fail, and Redis a small
        // part of a script's time.
        let mut current: Option<(Version, Arc<str>)> = match self.known_version(group, key) {
            Some(known) => Some(known),
            None => self.read_live(group, key).await?,
        };
        loop {
            let item = current.as_ref().map(|(_, value)| Item {
                value,
                expires_at_ms: 0,
            });
            let (stored, changed_members) = self
                .options
                .rules
                .update(item, &ops, || 0)
                .map_err(|e| e.for_item("update", group, key))?;
            let json: Arc<str> = Arc::from(stored.value.as_str());
            let write = Write::CompareAndSet {
                expected: current.as_ref().map_or(0, |(version, _)| *version),
                json: json.clone(),
                ttl_ms: self.options.rules.default_ttl_ms.unwrap_or(0),
            };
            let reply = self.write(group, key, write).await?;
            let Value::Array(parts) = &reply else {
                return Err(unexpected("update", &reply));
            };
            if parts.first().map_or(0, integer) == 1 {
                // Stored over the value at the expected version: the one the ops ran on.
                let old_value = current.map(|(_, value)| String::from(&*value));
                let old_version = parts.get(1).map_or(0, integer);
                let version = parts.get(2).map_or(0, integer);
                self.remember(group, key, Some((version, json)));
                return Ok(WriteResult {
                    new_value: stored.value,
                    old_value,
                    old_version,
                    version,
                    changed_members,
                    ticket: 0,
                    reused: false,
                });
            }
            // Someone else wrote first: apply the ops again to what is there now.
            current = match parts.get(1).and_then(text) {
                Some(payload) => {
                    let (version, _, json) = parse_payload(&payload)?;
                    Some((version, Arc::from(json)))
                }
                None => None,
            };
        }
    }

    /// Removes the item; returns the removed value, `None` when it was absent or expired.
    /// The call takes its place in its key's line when made (see [`RedisStore::in_line`]).
    pub fn delete(
        self: &Arc<Self>,
        group: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Removed>>> + Send + 'static {
        let place = self.in_line(group, key);
        let (store, group, key) = (Arc::clone(self), group.to_owned(), key.to_owned());
        async move { store.delete_in_line(place, &group, &key).await }
    }

    async fn delete_in_line(
        &self,
        place: Place,
        group: &str,
        key: &str,
    ) -> Result<Option<Removed>> {
        check_item(group, key)?;
        let _in_line = place.reached().await;
        let reply = self.write(group, key, Write::Delete).await?;
        self.remember(group, key, None);
        match &reply {
            Value::Nil => Ok(None),
            Value::Array(parts) => {
                let Some(old) = old_json(parts.first())? else {
                    return Ok(None);
                };
                Ok(Some(Removed {
                    old,
                    old_version: parts.get(1).map_or(0, integer),
                    ticket: 0,
                }))
            }
            other => Err(unexpected("delete", other)),
        }
    }

    /// Removes every item of the group; returns how many live items it removed.
    /// The call comes after every write this process made before it, and before every call
    /// made after it (see [`RedisStore::in_every_line`]).
    pub fn clear(
        self: &Arc<Self>,
        group: &str,
    ) -> impl Future<Output = Result<usize>> + Send + 'static {
        let places = self.in_every_line();
        let (store, group) = (Arc::clone(self), group.to_owned());
        async move {
            let _in_line = reached_all(places).await;
            store.clear_now(&group).await
        }
    }

    async fn clear_now(&self, group: &str) -> Result<usize> {
        check_name("group", group)?;
        let reply = self.write(group, "", Write::Clear).await?;
        self.known.lock().retain(|_, entry| &*entry.group != group);
        let Value::Array(parts) = &reply else {
            return Err(unexpected("clear", &reply));
        };
        Ok(parts.first().map_or(0, integer) as usize)
    }

    /// The group's live items in insertion order: (key, payload) pairs.
    async fn group_items(&self, group: &str) -> Result<Vec<(String, String)>> {
        check_name("group", group)?;
        let keys = self.group_keys(group);
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.group.prepare_invoke();
        invocation.key(keys.items).key(keys.order);
        let reply: Vec<String> = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        let mut items = Vec::with_capacity(reply.len() / 2);
        let mut parts = reply.into_iter();
        while let (Some(key), Some(payload)) = (parts.next(), parts.next()) {
            items.push((key, payload));
        }
        Ok(items)
    }

    /// A read of the whole group, after the writes this process made before it: the text of a
    /// JSON array, in insertion order, of its live values, items or keys (`read`).
    pub fn read_group(
        self: &Arc<Self>,
        group: &str,
        read: GroupRead,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        let before = self.after_every_write();
        let (store, group) = (Arc::clone(self), group.to_owned());
        async move {
            let items = {
                // Held until answered, not only sent: the group's script may have to be
                // loaded first (a server that restarted, or never ran it), a round trip that
                // a write made after the read could otherwise overtake.
                let _in_line = reached_all(before).await;
                store.group_items(&group).await?
            };
            match read {
                GroupRead::Values => json_array(&items, |out, (_, payload)| {
                    out.push_str(parse_payload(payload)?.2);
                    Ok(())
                }),
                GroupRead::Entries => json_array(&items, |out, (key, payload)| {
                    out.push_str("{\"key\":");
                    push_json_string(out, key);
                    out.push_str(",\"value\":");
                    out.push_str(parse_payload(payload)?.2);
                    out.push('}');
                    Ok(())
                }),
                GroupRead::Keys => json_array(&items, |out, (key, _)| {
                    push_json_string(out, key);
                    Ok(())
                }),
            }
        }
    }

    /// The group's live values as the text of one JSON array, in insertion order.
    pub fn group_json(
        self: &Arc<Self>,
        group: &str,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.read_group(group, GroupRead::Values)
    }

    /// The group's live items as the text of a JSON array of `{"key":…,"value":…}`.
    pub fn entries_json(
        self: &Arc<Self>,
        group: &str,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.read_group(group, GroupRead::Entries)
    }

    /// The group's live keys as the text of a JSON array, in insertion order.
    pub fn keys_json(
        self: &Arc<Self>,
        group: &str,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.read_group(group, GroupRead::Keys)
    }

    /// The names of the groups with at least one live item, sorted by UTF-16 code units (as
    /// JavaScript sorts strings). Sweeps what is due first, so that a group whose last item
    /// expired is not listed.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        self.sweep().await?;
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.groups.prepare_invoke();
        invocation.key(&self.groups_key);
        let mut names: Vec<String> = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        Ok(names)
    }

    /// Removes expired items with their events (at most a bounded number per call); returns
    /// how many. Its reply also tells the server's time, for [`ServerClock`].
    pub async fn sweep(&self) -> Result<usize> {
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.sweep.prepare_invoke();
        invocation
            .key(&self.groups_key)
            .key(&self.expiry_key)
            .key(&self.stream_key)
            .arg(&self.options.prefix)
            .arg(self.maxlen())
            .arg(SWEEP_LIMIT);
        let sent = self.clock.local_us();
        let (removed, server_ms): (u64, u64) = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        self.clock.observe(server_ms, sent, self.clock.local_us());
        Ok(removed as usize)
    }

    /// Stops the sweep and the event reader and drops every subscriber; later calls fail with
    /// `CLOSED`. Returns at once, whether or not Redis can be reached. Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.events.unsubscribe_all();
        self.known.lock().clear();
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn unreachable_within(options: &RedisOptions) -> Error {
    Error::BackendUnavailable(format!(
        "Redis at {} did not answer within {} ms",
        redact(&options.url),
        options.command_timeout.as_millis()
    ))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Publisher for RedisStore {
    fn events(&self) -> &EventBus {
        RedisStore::events(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry's changes as (kind, group, key, old, new, reason) to compare.
    fn read_entry(values: &[&str]) -> Vec<String> {
        let values: Vec<Option<&str>> = values.iter().map(|v| Some(*v)).collect();
        entry_changes(&values)
            .iter()
            .map(|c| {
                format!(
                    "{:?} {} {} {:?} {:?} {:?}",
                    c.event_type, c.group, c.key, c.old_value, c.new_value, c.reason
                )
            })
            .collect()
    }

    #[test]
    fn a_stream_entry_holds_a_calls_events_by_position() {
        let entry = [
            "c",
            "g",
            "k1",
            "7:0:{\"n\":1}", //
            "u",
            "g",
            "k1",
            "7:0:{\"n\":1}",
            "8:0:{\"n\":2}", //
            "d",
            "g:x",
            "k:2",
            "3:0:true", //
            "e",
            "g",
            "k3",
            "4:99:null", //
            "x",
            "h",
            "",
            "5:0:\"s\"", //
            "",          // the padding to an even number of values
        ];
        assert_eq!(
            read_entry(&entry),
            [
                "Created g k1 None Some(\"{\\\"n\\\":1}\") None",
                "Updated g k1 Some(\"{\\\"n\\\":1}\") Some(\"{\\\"n\\\":2}\") None",
                "Deleted g:x k:2 Some(\"true\") None None",
                "Deleted g k3 Some(\"null\") None Some(Expired)",
                "Deleted h  Some(\"\\\"s\\\"\") None Some(Cleared)",
            ]
        );
        // What this version cannot read ends the entry; a short event is not read.
        assert_eq!(
            read_entry(&["c", "g", "k", "1:0:1", "?", "g", "k", "2:0:2"]).len(),
            1
        );
        assert_eq!(
            read_entry(&["u", "g", "k", "1:0:1"]).len(),
            1,
            "new value missing"
        );
        // An entry of one event with named fields, as earlier versions wrote.
        assert_eq!(
            read_entry(&["t", "d", "g", "g", "k", "k", "o", "1:0:[]", "r", "cleared"]),
            ["Deleted g k Some(\"[]\") None Some(Cleared)"]
        );
    }

    #[test]
    fn payloads_split_into_version_expiry_and_json() {
        assert_eq!(
            parse_payload("12:0:{\"a\":\"1:2\"}").unwrap(),
            (12, 0, "{\"a\":\"1:2\"}")
        );
        assert_eq!(parse_payload("nonsense").unwrap_err().code(), "IO");
    }

    #[test]
    fn the_earliest_server_time_follows_the_last_reading_less_the_margin() {
        let clock = ServerClock::new();
        assert_eq!(clock.earliest_ms(), None, "no reading yet");
        // The server said 1,000,000 ms between local 0 and 1,000 µs: at local 0 it was at
        // least 999,999 ms; the earliest it can be now is that, plus the time since, less the
        // margin and the drift.
        clock.observe(1_000_000, 0, 1_000);
        let elapsed_ms = (clock.local_us() / 1000) as u64;
        let earliest = clock.earliest_ms().unwrap();
        let margin_ms = (CLOCK_MARGIN_US / 1000) as u64;
        assert!(
            earliest <= 1_000_000 + elapsed_ms - margin_ms,
            "{earliest} is not below the reading less the margin"
        );
        assert!(
            earliest + margin_ms + 2 >= 999_999,
            "{earliest} is more than the margin below the reading"
        );
    }

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            redact("redis://u:secret@host:1/0"),
            "redis://u:***@host:1/0"
        );
        assert_eq!(redact("redis://host:1"), "redis://host:1");
    }
}
