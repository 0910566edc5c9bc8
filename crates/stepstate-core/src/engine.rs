//! The engine owns every group and key of one in-process store: where items live, their
//! insertion order, their versions, and the locks that make each write atomic. What a write
//! does is decided by the rules of [`write`](crate::write); the engine applies them under the
//! item's group lock in the one order every store follows (journal, apply, publish). A durable
//! store gives it a [`Journal`] that records each change before it becomes visible; without
//! one the store lives in memory only. The engine knows nothing of files.
//!
//! Layout: groups are spread over [`SHARDS`] shards, each a `RwLock<HashMap<group, Group>>`, and
//! each group has its own `RwLock`. A read takes one shard lock *shared* and its group lock
//! shared, so reads never contend on a lock common to all groups; writes to different groups
//! only meet on a shard lock held shared. A shard is locked exclusively only to create or
//! remove a group (a group vanishes when its last item goes).
//!
//! Values are JSON text. `get` hands the text to a closure while the group is read-locked, so
//! the caller (the Node binding) can copy it straight into its own string type.

use crate::error::{Error, Result};
use crate::events::{EventBus, Publisher, Reason};
use crate::json::push_json_string;
use crate::log::LogRecord;
use crate::ops;
use crate::text::Text;
use crate::ttl::{Clock, ExpiryIndex, SystemClock};
use crate::write::{self, check_name, Item, Rules, Stored};
use foldhash::fast::RandomState;
use parking_lot::RwLock;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// An item's group and key.
pub type ItemName = (Arc<str>, Arc<str>);

pub use crate::write::{Ttl, MAX_NAME_BYTES};

/// How many shards the group map is split into. A power of two, so a hash picks one with a mask.
pub const SHARDS: usize = 32;

/// How often the background sweep looks for expired items. Expiry events fire within about
/// this long after the expiry time (SPEC asks for "about a second").
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Settings of one engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Largest serialized value accepted by `set` and produced by `update`, in bytes of JSON
    /// text. `None` (the default) means no limit.
    pub max_value_bytes: Option<usize>,
    /// TTL given to items written by `set` without a TTL of their own (and to items that an
    /// `update` creates), in milliseconds. `None` (the default): such items never expire.
    pub default_ttl_ms: Option<u64>,
    /// The clock that decides expiry; the system clock unless a test supplies a manual one.
    pub clock: Arc<dyn Clock>,
}

impl EngineOptions {
    /// The write rules these settings give.
    pub fn rules(&self) -> Rules {
        Rules {
            max_value_bytes: self.max_value_bytes,
            default_ttl_ms: self.default_ttl_ms,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_value_bytes: None,
            default_ttl_ms: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A version of an item or a group: every write gives the item and its group a new one, drawn
/// from one counter per engine, so a version is never reused, even by an item that was deleted
/// and set again. A caller that remembers the value it saw at some version (the JS read cache)
/// can ask whether it is still current without copying the text. 0 means "none".
pub type Version = u64;

/// What `update` returns: the value now stored and the one it replaced, as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    /// The stored value after the write.
    pub new_value: String,
    /// The value before the write; `None` when the key was absent.
    pub old_value: Option<String>,
    /// The version of the replaced value (0 when the key was absent).
    pub old_version: Version,
    /// The version of the stored value.
    pub version: Version,
    /// When the ops changed only some members of an object: those members, as the text of a
    /// JSON object of name to new value (see [`ops::Applied`]).
    pub changed_members: Option<String>,
    /// The journal's ticket for the write (0 without a journal): see [`Journaled::ticket`].
    pub ticket: u64,
    /// As [`Replaced::reused`].
    pub reused: bool,
}

/// What [`Engine::set_owned`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Replaced {
    /// The value before the write, as stored; `None` when the key was absent.
    pub old: Option<Box<str>>,
    /// The version of `old` (0 when the key was absent).
    pub old_version: Version,
    /// The version of the value written.
    pub version: Version,
    /// The journal's ticket for the write (0 without a journal): see [`Journaled::ticket`].
    pub ticket: u64,
    /// Whether the key existed and had been read, or written again, since it was created: a
    /// caller's cache keeps a value only when it is used again, so a key written or read once
    /// costs it nothing.
    pub reused: bool,
}

/// What [`Engine::delete_owned`] returns for a key that was there.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    /// The removed value, as stored.
    pub old: Box<str>,
    /// Its version.
    pub old_version: Version,
    /// The journal's ticket for the removal (0 without a journal).
    pub ticket: u64,
}

/// Where an engine records each change before it becomes visible: a durable store's log. The
/// engine calls it under the item's group lock and applies the change while it holds the
/// returned [`Journaled`]; it never learns how or where the record is kept.
pub trait Journal: Send + Sync {
    /// Records `record`, or fails (then nothing changes): `CLOSED` once the store is closed,
    /// `IO` when the record cannot be written.
    fn append(&self, record: &LogRecord<'_>) -> Result<Journaled<'_>>;
}

/// A recorded change, holding what the journal needs held until the change is applied (a log
/// that must not be switched meanwhile).
pub struct Journaled<'a> {
    /// A number that only grows over the life of the store, for waiting until the change is
    /// durable (see the file store's acknowledgements).
    pub ticket: u64,
    /// Where the record went, in the journal's own terms; kept on the item's group (see
    /// [`Engine::visit_groups`]).
    pub position: (u64, u64),
    /// Released once the change is applied.
    pub hold: parking_lot::MappedRwLockReadGuard<'a, ()>,
}

/// What a committed change of one item replaced and became.
struct Committed {
    /// The item it replaced: its text and version.
    old: Option<(Text, Version)>,
    /// Whether the replaced item had been used since it was created (see [`Replaced::reused`]).
    reused: bool,
    version: Version,
    ticket: u64,
}

/// What [`Engine::group_json_since`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRead {
    /// The group has not changed since the version the caller knows, and none of its items has
    /// expired since: the caller's copy is current.
    Unchanged,
    /// The group's values as the text of one JSON array, and the group's version (0 when the
    /// group does not exist).
    Changed { text: String, version: Version },
}

/// One item of a group, as listed by [`Engine::entries`].
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The item's key.
    pub key: String,
    /// The item's value as JSON text.
    pub value: String,
}

/// One stored item.
#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    value: Text,
    /// Milliseconds since the Unix epoch at which the item expires; 0 = never.
    expires_at_ms: u64,
    version: Version,
    /// Whether the item was read, or written again, since it was created: a caller's cache
    /// keeps only what is used again (see [`Replaced::reused`]). Set under a read lock too.
    used: AtomicBool,
}

impl Slot {
    fn is_live(&self, now_ms: u64) -> bool {
        write::is_live(self.expires_at_ms, now_ms)
    }

    fn item(&self) -> Item<'_> {
        Item {
            value: &self.value,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

/// Hash maps of the engine: foldhash, seeded per map, is several times faster than SipHash on
/// short keys and still randomized against crafted collisions.
type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;

/// The items of one group in insertion order.
///
/// `slots` is the order; a removed item leaves a hole (`None`) so that removal is O(1), and the
/// holes are squeezed out once they outnumber the live items. `index` maps a key to its slot.
#[derive(Debug, Default)]
struct Group {
    index: HashMap<Arc<str>, usize>,
    slots: Vec<Option<Slot>>,
    /// Where the journal put the last change to this group ([`Journaled::position`]).
    last_write: (u64, u64),
    /// The version of the last change to this group.
    version: Version,
}

impl Group {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn get(&self, key: &str) -> Option<&Slot> {
        let position = *self.index.get(key)?;
        self.slots[position].as_ref()
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Slot> {
        let position = *self.index.get(key)?;
        self.slots[position].as_mut()
    }

    /// Stores `value` under `key` with its expiry and version, keeping the key's place when it
    /// exists; returns the old value and its version.
    fn put(
        &mut self,
        key: &str,
        value: Text,
        expires_at_ms: u64,
        version: Version,
    ) -> Option<(Text, Version, bool)> {
        self.version = version;
        if let Some(&position) = self.index.get(key) {
            if let Some(slot) = self.slots[position].as_mut() {
                slot.expires_at_ms = expires_at_ms;
                let old_version = std::mem::replace(&mut slot.version, version);
                let was_used = slot.used.swap(true, Ordering::Relaxed);
                return Some((
                    std::mem::replace(&mut slot.value, value),
                    old_version,
                    was_used,
                ));
            }
        }
        let key: Arc<str> = Arc::from(key);
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Some(Slot {
            key,
            value,
            expires_at_ms,
            version,
            used: AtomicBool::new(false),
        }));
        None
    }

    /// Removes the item; the group takes `version` as its new one.
    fn remove(&mut self, key: &str, version: Version) -> Option<Slot> {
        let position = self.index.remove(key)?;
        self.version = version;
        let slot = self.slots[position].take()?;
        let holes = self.slots.len() - self.index.len();
        if holes > 32 && holes > self.index.len() {
            self.squeeze();
        }
        Some(slot)
    }

    /// Drops the holes left by removals and renumbers the index.
    fn squeeze(&mut self) {
        self.slots.retain(Option::is_some);
        for (position, slot) in self.slots.iter().enumerate() {
            if let Some(slot) = slot {
                self.index.insert(slot.key.clone(), position);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
    }

    fn has_live(&self, now_ms: u64) -> bool {
        self.iter().any(|slot| slot.is_live(now_ms))
    }
}

/// One shard: its groups, and the expiry index of their items.
#[derive(Default)]
struct Shard {
    groups: RwLock<HashMap<Arc<str>, Arc<RwLock<Group>>>>,
    expiry: ExpiryIndex,
}

/// One store's state: every group, with atomic writes and lock-free-of-each-other groups.
pub struct Engine {
    shards: Box<[Shard]>,
    hasher: RandomState,
    options: EngineOptions,
    events: EventBus,
    sweeper_started: AtomicBool,
    shut_down: AtomicBool,
    /// Set by [`Engine::release`]: every later call fails with `CLOSED`.
    released: AtomicBool,
    /// The last [`Version`] handed out.
    versions: AtomicU64,
    this: Weak<Engine>,
    /// Where changes are recorded before they become visible; unset for an in-memory store.
    journal: OnceLock<Arc<dyn Journal>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds the JSON array text of a group's live items, one `write_item` per item.
fn json_array(
    items: &Group,
    now_ms: u64,
    mut write_item: impl FnMut(&mut String, &Slot),
) -> String {
    let mut out = String::with_capacity(2 + items.len() * 64);
    out.push('[');
    for slot in items.iter().filter(|slot| slot.is_live(now_ms)) {
        if out.len() > 1 {
            out.push(',');
        }
        write_item(&mut out, slot);
    }
    out.push(']');
    out
}

impl Engine {
    /// An empty store.
    pub fn new(options: EngineOptions) -> Arc<Engine> {
        Arc::new_cyclic(|this| Engine {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::default(),
            options,
            events: EventBus::default(),
            sweeper_started: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            released: AtomicBool::new(false),
            versions: AtomicU64::new(0),
            this: this.clone(),
            journal: OnceLock::new(),
        })
    }

    /// Makes every later change go through `journal` first. Once only: a second journal is
    /// ignored.
    pub fn attach_journal(&self, journal: Arc<dyn Journal>) {
        let _ = self.journal.set(journal);
    }

    /// Applies one record found by recovery, as it was committed: no checks, no events, no
    /// journal; `text` makes the stored text of a `Put`'s value. Expired items are kept in
    /// place until [`Engine::finish_recovery`], so that a later overwrite in the log finds them
    /// where the live store had them.
    pub fn apply_recovered(&self, record: &LogRecord<'_>, text: impl FnOnce(&str) -> Text) {
        match *record {
            LogRecord::Put {
                group,
                key,
                value,
                expires_at_ms,
            } => self.write_group(group, |items| {
                items.put(key, text(value), expires_at_ms, self.next_version());
            }),
            LogRecord::Delete { group, key } => {
                self.write_existing_group(group, |items| items.remove(key, self.next_version()));
            }
            LogRecord::Clear { group } => {
                self.shard(group).groups.write().remove(group);
            }
            LogRecord::GroupMark { .. } => {}
        }
    }

    /// Calls `visit` with the text of `group`/`key`, if it exists, under its group's write lock
    /// (a durable store re-points values into a new snapshot's map). Versions do not change.
    pub fn with_value_mut(&self, group: &str, key: &str, visit: impl FnOnce(&mut Text)) {
        self.write_existing_group(group, |items| {
            if let Some(slot) = items.get_mut(key) {
                visit(&mut slot.value);
            }
        });
    }

    /// Calls `visit` with the text of every item, one group at a time under its write lock.
    pub fn for_each_value_mut(&self, mut visit: impl FnMut(&mut Text)) {
        for shard in self.shards.iter() {
            let groups = shard.groups.read();
            for cell in groups.values() {
                let mut items = cell.write();
                for slot in items.slots.iter_mut().flatten() {
                    visit(&mut slot.value);
                }
            }
        }
    }

    /// Calls `visit` for every group, one at a time under its read lock, with its name, the
    /// journal position of its last change and its live items (key, text, expiry) in
    /// insertion order; stops at the first error `visit` returns. A durable store writes its
    /// snapshots with it.
    pub fn visit_groups(
        &self,
        mut visit: impl FnMut(
            &str,
            (u64, u64),
            &mut dyn Iterator<Item = (&str, &str, u64)>,
        ) -> Result<()>,
    ) -> Result<()> {
        let now_ms = self.now_ms();
        for shard in self.shards.iter() {
            let groups: Vec<(Arc<str>, Arc<RwLock<Group>>)> = shard
                .groups
                .read()
                .iter()
                .map(|(name, cell)| (name.clone(), cell.clone()))
                .collect();
            for (name, cell) in groups {
                let items = cell.read();
                let mut live = items
                    .iter()
                    .filter(|slot| slot.is_live(now_ms))
                    .map(|slot| (&*slot.key, &*slot.value, slot.expires_at_ms));
                visit(&name, items.last_write, &mut live)?;
            }
        }
        Ok(())
    }

    /// Ends recovery: drops the items that expired while the store was closed (no events:
    /// nobody could listen yet), indexes the remaining expiries for the sweep, and returns the
    /// bytes of live data and the dropped items (which the caller deletes in the log).
    pub fn finish_recovery(&self) -> (u64, Vec<ItemName>) {
        let now_ms = self.now_ms();
        let mut live_bytes = 0u64;
        let mut expiring = Vec::new();
        let mut dropped = Vec::new();
        for shard in self.shards.iter() {
            let mut groups = shard.groups.write();
            groups.retain(|name, cell| {
                let mut items = cell.write();
                let expired: Vec<Arc<str>> = items
                    .iter()
                    .filter(|slot| !slot.is_live(now_ms))
                    .map(|slot| slot.key.clone())
                    .collect();
                for key in expired {
                    items.remove(&key, self.next_version());
                    dropped.push((name.clone(), key));
                }
                for slot in items.iter() {
                    live_bytes += (name.len() + slot.key.len() + slot.value.len()) as u64;
                    if slot.expires_at_ms != 0 {
                        expiring.push((name.clone(), slot.key.clone(), slot.expires_at_ms));
                    }
                }
                items.len() > 0
            });
        }
        for (group, key, expires_at_ms) in expiring {
            self.schedule_expiry(&group, &key, expires_at_ms);
        }
        (live_bytes, dropped)
    }

    /// The subscribers to this engine's change events.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Stops the background sweep. Reads and writes keep working; nothing expires by itself
    /// any more (expired items stay invisible to reads).
    pub fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    /// Checks a call's group (and key): `CLOSED` once the engine was released, then
    /// [`check_name`].
    fn check_open(&self, group: &str, key: Option<&str>) -> Result<()> {
        if self.released.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        check_name("group", group)?;
        key.map_or(Ok(()), |key| check_name("key", key))
    }

    /// Drops everything the store holds: every item, the expiry index and every change
    /// subscriber (with what its callback holds), and stops the sweep. For a
    /// store that is closed: whatever still references the engine (a subscription's handle
    /// that JavaScript has not collected yet) keeps only the empty shell.
    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
        self.shut_down();
        for shard in self.shards.iter() {
            drop(std::mem::take(&mut *shard.groups.write()));
            shard.expiry.clear();
        }
        self.events.unsubscribe_all();
    }

    /// A version no item or group has had before.
    fn next_version(&self) -> Version {
        self.versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn shard(&self, group: &str) -> &Shard {
        let hash = self.hasher.hash_one(group) as usize;
        &self.shards[hash & (SHARDS - 1)]
    }

    fn now_ms(&self) -> u64 {
        self.options.clock.now_ms()
    }

    fn rules(&self) -> Rules {
        self.options.rules()
    }

    /// Records a new expiry in the shard's index and makes sure the sweep runs.
    fn schedule_expiry(&self, group: &str, key: &str, expires_at_ms: u64) {
        if expires_at_ms == 0 {
            return;
        }
        self.shard(group)
            .expiry
            .insert(expires_at_ms, Arc::from(group), Arc::from(key));
        if !self.sweeper_started.swap(true, Ordering::AcqRel) {
            self.start_sweeper();
        }
    }

    fn start_sweeper(&self) {
        let engine = self.this.clone();
        let spawned = std::thread::Builder::new()
            .name("stepstate-expiry".into())
            .spawn(move || loop {
                std::thread::sleep(SWEEP_INTERVAL);
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if engine.shut_down.load(Ordering::Acquire) {
                    return;
                }
                engine.sweep_expired();
            });
        if spawned.is_err() {
            // Without a thread, expired items still vanish from reads and are removed when
            // written; only their events wait. Let the next TTL write try again.
            self.sweeper_started.store(false, Ordering::Release);
        }
    }

    /// Removes the item if it has expired, firing its expiry event; the caller then sees the
    /// key as absent ([`write::live`]). Returns whether it removed something. Journaled like a
    /// delete, so that replay puts a later write of the key at the end of its group, as the
    /// live store does.
    fn remove_if_expired(&self, group: &str, items: &mut Group, key: &str) -> Result<bool> {
        // The clock is read only for an item that can expire.
        let expired = items.get(key).is_some_and(|slot| {
            slot.expires_at_ms != 0 && write::live(Some(slot.item()), self.now_ms()).is_none()
        });
        if expired {
            self.commit(group, items, key, None, Some(Reason::Expired))?;
        }
        Ok(expired)
    }

    /// Records a change to `items` in the journal, if there is one, and remembers where it
    /// went. The returned guard must be held until the change is applied.
    fn journal_into(
        &self,
        items: &mut Group,
        record: &LogRecord<'_>,
    ) -> Result<Option<Journaled<'_>>> {
        let Some(journal) = self.journal.get() else {
            return Ok(None);
        };
        let journaled = journal.append(record)?;
        items.last_write = journaled.position;
        Ok(Some(journaled))
    }

    /// Commits one change of `group`/`key` under the group's write lock, in the order every
    /// write follows: journal, apply (`new`: the item to store; `None`: remove it), publish
    /// the event. Fails (changing nothing) only when the journal refuses.
    fn commit(
        &self,
        group: &str,
        items: &mut Group,
        key: &str,
        new: Option<Stored<Box<str>>>,
        reason: Option<Reason>,
    ) -> Result<Committed> {
        let record = match &new {
            Some(stored) => LogRecord::Put {
                group,
                key,
                value: &stored.value,
                expires_at_ms: stored.expires_at_ms,
            },
            None => LogRecord::Delete { group, key },
        };
        let journaled = self.journal_into(items, &record)?;
        let ticket = journaled.as_ref().map_or(0, |journaled| journaled.ticket);
        let version = self.next_version();
        let (old, reused) = match new {
            Some(stored) => {
                match items.put(key, Text::Heap(stored.value), stored.expires_at_ms, version) {
                    Some((text, version, used)) => (Some((text, version)), used),
                    None => (None, false),
                }
            }
            None => (
                items
                    .remove(key, version)
                    .map(|slot| (slot.value, slot.version)),
                false,
            ),
        };
        if self.events.has_subscribers() {
            let new_value = items.get(key).map(|slot| &*slot.value);
            let old_value = old.as_ref().map(|(text, _)| &**text);
            self.events
                .publish(&write::change(group, key, old_value, new_value, reason));
        }
        drop(journaled);
        Ok(Committed {
            old,
            reused,
            version,
            ticket,
        })
    }

    /// Runs `write` on the group, creating it when missing, with its shard held shared so that
    /// the group cannot vanish underneath. Removes the group afterwards if it is left empty.
    fn write_group<R>(&self, group: &str, write: impl FnOnce(&mut Group) -> R) -> R {
        let shard = self.shard(group);
        let (result, now_empty) = {
            let read = shard.groups.read();
            if let Some(cell) = read.get(group) {
                let mut items = cell.write();
                let result = write(&mut items);
                (result, items.len() == 0)
            } else {
                drop(read);
                let mut map = shard.groups.write();
                let cell = map.entry(Arc::from(group)).or_default().clone();
                let mut items = cell.write();
                let result = write(&mut items);
                let now_empty = items.len() == 0;
                drop(items);
                if now_empty {
                    map.remove(group);
                }
                return result;
            }
        };
        if now_empty {
            self.remove_if_empty(group);
        }
        result
    }

    /// Runs `write` on the group if it exists (`None` otherwise), like [`Engine::write_group`].
    fn write_existing_group<R>(
        &self,
        group: &str,
        write: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
        let (result, now_empty) = {
            let map = self.shard(group).groups.read();
            let cell = map.get(group)?;
            let mut items = cell.write();
            let result = write(&mut items);
            (result, items.len() == 0)
        };
        if now_empty {
            self.remove_if_empty(group);
        }
        Some(result)
    }

    fn remove_if_empty(&self, group: &str) {
        let mut map = self.shard(group).groups.write();
        if map.get(group).is_some_and(|cell| cell.read().len() == 0) {
            map.remove(group);
        }
    }

    /// Runs `read` on the group while it is read-locked; `None` when the group does not exist.
    fn read_group<R>(&self, group: &str, read: impl FnOnce(&Group) -> R) -> Option<R> {
        let map = self.shard(group).groups.read();
        let cell = map.get(group)?;
        let items = cell.read();
        Some(read(&items))
    }

    /// Stores `value` (JSON text) under `group`/`key`, keeping the key's place if it exists,
    /// with the expiry `ttl` asks for. Returns the previous value's text, `None` when the key
    /// was absent (or expired).
    pub fn set(&self, group: &str, key: &str, value: &str, ttl: Ttl) -> Result<Option<String>> {
        Ok(self
            .set_owned(group, key, value.to_owned(), ttl)?
            .old
            .map(String::from))
    }

    /// [`Engine::set`] that takes the value's text by value and returns the old one as stored,
    /// sparing a copy each way, with the versions of both and the journal's ticket (the
    /// binding's hot path).
    pub fn set_owned(&self, group: &str, key: &str, value: String, ttl: Ttl) -> Result<Replaced> {
        self.check_open(group, Some(key))?;
        let stored = self
            .rules()
            .set(value.into_boxed_str(), ttl, || self.now_ms())
            .map_err(|e| e.for_item("set", group, key))?;
        let expires_at_ms = stored.expires_at_ms;
        let committed = self.write_group(group, |items| {
            self.remove_if_expired(group, items, key)?;
            self.commit(group, items, key, Some(stored), None)
        })?;
        self.schedule_expiry(group, key, expires_at_ms);
        let (old, old_version) = match committed.old {
            Some((old, version)) => (Some(old.into_boxed()), version),
            None => (None, 0),
        };
        Ok(Replaced {
            old,
            old_version,
            version: committed.version,
            ticket: committed.ticket,
            reused: committed.reused,
        })
    }

    /// Calls `read` with the value's text, or `None` when the key is absent or expired; the
    /// group stays read-locked only for the duration of the call.
    pub fn get_with<R>(
        &self,
        group: &str,
        key: &str,
        read: impl FnOnce(Option<&str>) -> R,
    ) -> Result<R> {
        self.get_versioned(group, key, |item| read(item.map(|(text, _)| text)))
    }

    /// [`Engine::get_with`] that also passes the value's [`Version`].
    pub fn get_versioned<R>(
        &self,
        group: &str,
        key: &str,
        read: impl FnOnce(Option<(&str, Version)>) -> R,
    ) -> Result<R> {
        self.get_tracked(group, key, |item| {
            read(item.map(|(text, version, _)| (text, version)))
        })
    }

    /// [`Engine::get_versioned`] that also passes whether the item was used (read, or written
    /// again) before this read since it was created (see [`Replaced::reused`]).
    pub fn get_tracked<R>(
        &self,
        group: &str,
        key: &str,
        read: impl FnOnce(Option<(&str, Version, bool)>) -> R,
    ) -> Result<R> {
        self.check_open(group, Some(key))?;
        let map = self.shard(group).groups.read();
        let Some(cell) = map.get(group) else {
            return Ok(read(None));
        };
        let items = cell.read();
        let slot = items
            .get(key)
            .filter(|slot| slot.expires_at_ms == 0 || slot.is_live(self.now_ms()));
        Ok(read(slot.map(|slot| {
            // Read first: most reads of a hot item find it set and write nothing.
            let used = slot.used.load(Ordering::Relaxed) || slot.used.swap(true, Ordering::Relaxed);
            (&*slot.value, slot.version, used)
        })))
    }

    /// The value's text, or `None` when the key is absent or expired.
    pub fn get(&self, group: &str, key: &str) -> Result<Option<String>> {
        self.get_with(group, key, |value| value.map(String::from))
    }

    /// Applies `ops_json` (the JSON text of an UpdateOp array) to the item atomically: all ops or
    /// none. A missing key starts from `{}` (and gets the default TTL, if any); an existing item
    /// keeps its expiry. On failure nothing changes and no key is created.
    pub fn update(&self, group: &str, key: &str, ops_json: &str) -> Result<WriteResult> {
        self.check_open(group, Some(key))?;
        let ops = ops::parse_ops_cached(ops_json).map_err(|e| e.for_item("update", group, key))?;
        let mut new_expiry = 0;
        let result = self
            .write_group(group, |items| {
                self.remove_if_expired(group, items, key)?;
                let current = items.get(key).map(Slot::item);
                let (stored, changed_members) =
                    self.rules().update(current, &ops, || self.now_ms())?;
                if current.is_none() {
                    new_expiry = stored.expires_at_ms;
                }
                let new_value = stored.value;
                let stored = Stored {
                    value: Box::from(new_value.as_str()),
                    expires_at_ms: stored.expires_at_ms,
                };
                let committed = self.commit(group, items, key, Some(stored), None)?;
                let (old_value, old_version) = match committed.old {
                    Some((old, version)) => (Some(String::from(old.into_boxed())), version),
                    None => (None, 0),
                };
                Ok(WriteResult {
                    new_value,
                    old_value,
                    old_version,
                    version: committed.version,
                    changed_members,
                    ticket: committed.ticket,
                    reused: committed.reused,
                })
            })
            .map_err(|e: Error| e.for_item("update", group, key))?;
        self.schedule_expiry(group, key, new_expiry);
        Ok(result)
    }

    /// Removes the item; returns its value's text, `None` when it was absent (or expired).
    pub fn delete(&self, group: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .delete_owned(group, key)?
            .map(|removed| String::from(removed.old)))
    }

    /// [`Engine::delete`] that returns the removed text as stored, with its version and the
    /// journal's ticket.
    pub fn delete_owned(&self, group: &str, key: &str) -> Result<Option<Removed>> {
        self.check_open(group, Some(key))?;
        let removed = self.write_existing_group(group, |items| {
            if self.remove_if_expired(group, items, key)? || items.get(key).is_none() {
                return Ok::<_, Error>(None);
            }
            let committed = self.commit(group, items, key, None, None)?;
            Ok(committed.old.map(|(old, old_version)| Removed {
                old: old.into_boxed(),
                old_version,
                ticket: committed.ticket,
            }))
        });
        Ok(removed.transpose()?.flatten())
    }

    /// Removes every item of the group, firing a `cleared` event for each (an `expired` one for
    /// items whose TTL had already run out); returns how many live items were removed.
    pub fn clear(&self, group: &str) -> Result<usize> {
        Ok(self.clear_ticketed(group)?.0)
    }

    /// [`Engine::clear`] that also returns the journal's ticket (0 when nothing was removed or
    /// without a journal).
    pub fn clear_ticketed(&self, group: &str) -> Result<(usize, u64)> {
        self.check_open(group, None)?;
        // Everything happens under the shard's write lock, events included: a write that
        // re-creates the group afterwards must wait, so its event follows the cleared ones.
        let mut map = self.shard(group).groups.write();
        let Some(cell) = map.get(group).cloned() else {
            return Ok((0, 0));
        };
        // Journal, apply, publish, as every write.
        let journaled = self.journal_into(&mut cell.write(), &LogRecord::Clear { group })?;
        let ticket = journaled.as_ref().map_or(0, |journaled| journaled.ticket);
        map.remove(group);
        let items = std::mem::take(&mut *cell.write());
        drop(journaled);
        let now_ms = self.now_ms();
        let mut live = 0;
        for slot in items.slots.iter().flatten() {
            let reason = if slot.is_live(now_ms) {
                live += 1;
                Reason::Cleared
            } else {
                Reason::Expired
            };
            self.events.publish(&write::change(
                group,
                &slot.key,
                Some(&slot.value),
                None,
                Some(reason),
            ));
        }
        Ok((live, ticket))
    }

    /// Removes every item whose expiry time has passed, firing its `expired` event; returns how
    /// many were removed. The background sweep calls this every [`SWEEP_INTERVAL`]; it looks
    /// only at index entries that are due.
    pub fn sweep_expired(&self) -> usize {
        let now_ms = self.now_ms();
        let mut removed = 0;
        for shard in self.shards.iter() {
            for (due, group, key) in shard.expiry.take_due(now_ms) {
                let expired = self.write_existing_group(&group, |items| {
                    let is_due = items
                        .get(&key)
                        .is_some_and(|slot| slot.expires_at_ms == due);
                    // Journaled so that replay need not rely on the clock; if the journal
                    // refuses (closed or failed), the item stays, invisible, and recovery
                    // drops it.
                    is_due
                        && self
                            .commit(&group, items, &key, None, Some(Reason::Expired))
                            .is_ok()
                });
                removed += usize::from(expired == Some(true));
            }
        }
        removed
    }

    /// The group's live values as the text of one JSON array, in insertion order (`[]` when
    /// the group does not exist): one string crosses to JavaScript however many items there are.
    pub fn group_json(&self, group: &str) -> Result<String> {
        match self.group_json_since(group, 0)? {
            GroupRead::Changed { text, .. } => Ok(text),
            GroupRead::Unchanged => unreachable!("no group has version 0"),
        }
    }

    /// [`Engine::group_json`] for a caller that holds the group's values as of version `known`:
    /// `Unchanged` when they are still current (nothing written or removed since, nothing
    /// expired since), so that no text need be made.
    pub fn group_json_since(&self, group: &str, known: Version) -> Result<GroupRead> {
        self.check_open(group, None)?;
        let now_ms = self.now_ms();
        Ok(self
            .read_group(group, |items| {
                // Expiry changes what a read sees without a write; a copy made when every item
                // was live is current only while every item still is.
                if known != 0
                    && items.version == known
                    && items.iter().all(|slot| slot.is_live(now_ms))
                {
                    return GroupRead::Unchanged;
                }
                GroupRead::Changed {
                    text: json_array(items, now_ms, |out, slot| out.push_str(&slot.value)),
                    version: items.version,
                }
            })
            .unwrap_or_else(|| GroupRead::Changed {
                text: String::from("[]"),
                version: 0,
            }))
    }

    /// The group's live items as the text of a JSON array of `{"key":…,"value":…}` objects.
    pub fn entries_json(&self, group: &str) -> Result<String> {
        self.check_open(group, None)?;
        let now_ms = self.now_ms();
        Ok(self
            .read_group(group, |items| {
                json_array(items, now_ms, |out, slot| {
                    out.push_str("{\"key\":");
                    push_json_string(out, &slot.key);
                    out.push_str(",\"value\":");
                    out.push_str(&slot.value);
                    out.push('}');
                })
            })
            .unwrap_or_else(|| String::from("[]")))
    }

    /// The group's live keys as the text of a JSON array of strings, in insertion order.
    pub fn keys_json(&self, group: &str) -> Result<String> {
        self.check_open(group, None)?;
        let now_ms = self.now_ms();
        Ok(self
            .read_group(group, |items| {
                json_array(items, now_ms, |out, slot| push_json_string(out, &slot.key))
            })
            .unwrap_or_else(|| String::from("[]")))
    }

    /// The group's live items, in insertion order.
    pub fn entries(&self, group: &str) -> Result<Vec<Entry>> {
        self.check_open(group, None)?;
        let now_ms = self.now_ms();
        Ok(self
            .read_group(group, |items| {
                items
                    .iter()
                    .filter(|slot| slot.is_live(now_ms))
                    .map(|slot| Entry {
                        key: slot.key.to_string(),
                        value: slot.value.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The names of the groups with at least one live item, sorted by UTF-16 code units (the
    /// order JavaScript's default `sort` gives, so that a JS user sees the order they expect).
    pub fn list_groups(&self) -> Vec<String> {
        let now_ms = self.now_ms();
        let mut names: Vec<String> = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.groups.read();
            for (name, cell) in map.iter() {
                if cell.read().has_live(now_ms) {
                    names.push(name.to_string());
                }
            }
        }
        names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        names
    }
}

impl Publisher for Engine {
    fn events(&self) -> &EventBus {
        Engine::events(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwriting_a_key_keeps_its_place_and_delete_then_set_moves_it_to_the_end() {
        let engine = Engine::new(EngineOptions::default());
        engine.set("g", "a", "1", Ttl::Default).unwrap();
        engine.set("g", "b", "2", Ttl::Default).unwrap();
        engine.set("g", "a", "3", Ttl::Default).unwrap();
        assert_eq!(engine.group_json("g").unwrap(), "[3,2]");
        engine.delete("g", "a").unwrap();
        engine.set("g", "a", "4", Ttl::Default).unwrap();
        assert_eq!(engine.keys_json("g").unwrap(), r#"["b","a"]"#);
    }

    #[test]
    fn set_returns_the_previous_value_and_delete_returns_the_removed_one() {
        let engine = Engine::new(EngineOptions::default());
        assert_eq!(engine.set("g", "k", "1", Ttl::Default).unwrap(), None);
        assert_eq!(
            engine.set("g", "k", "2", Ttl::Default).unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(engine.delete("g", "k").unwrap().as_deref(), Some("2"));
        assert_eq!(engine.delete("g", "k").unwrap(), None);
    }

    #[test]
    fn empty_groups_vanish_from_list_groups() {
        let engine = Engine::new(EngineOptions::default());
        engine.set("b", "k", "1", Ttl::Default).unwrap();
        engine.set("a", "k", "1", Ttl::Default).unwrap();
        engine.set("c", "k", "1", Ttl::Default).unwrap();
        assert_eq!(engine.list_groups(), ["a", "b", "c"]);
        engine.delete("b", "k").unwrap();
        assert_eq!(engine.clear("c").unwrap(), 1);
        assert_eq!(engine.list_groups(), ["a"]);
    }

    #[test]
    fn many_deletes_squeeze_holes_without_losing_order() {
        let engine = Engine::new(EngineOptions::default());
        for n in 0..1000 {
            engine
                .set("g", &n.to_string(), &n.to_string(), Ttl::Default)
                .unwrap();
        }
        for n in (0..1000).filter(|n| n % 3 != 0) {
            engine.delete("g", &n.to_string()).unwrap();
        }
        let expected: Vec<String> = (0..1000)
            .filter(|n| n % 3 == 0)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            engine.group_json("g").unwrap(),
            format!("[{}]", expected.join(","))
        );
        assert_eq!(engine.get("g", "999").unwrap().as_deref(), Some("999"));
        assert_eq!(engine.get("g", "998").unwrap(), None);
    }

    #[test]
    fn entries_and_keys_escape_keys_as_json_strings() {
        let engine = Engine::new(EngineOptions::default());
        engine.set("g", "a\"b\\c\n", "{}", Ttl::Default).unwrap();
        assert_eq!(
            engine.entries_json("g").unwrap(),
            r#"[{"key":"a\"b\\c\n","value":{}}]"#
        );
    }

    #[test]
    fn names_must_be_non_empty_and_at_most_1024_bytes() {
        let engine = Engine::new(EngineOptions::default());
        assert_eq!(
            engine.set("", "k", "1", Ttl::Default).unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        let long = "é".repeat(513);
        assert_eq!(
            engine.get("g", &long).unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        assert!(engine
            .set("g", &"x".repeat(1024), "1", Ttl::Default)
            .is_ok());
    }

    #[test]
    fn max_value_bytes_rejects_large_values_and_keeps_the_store() {
        let engine = Engine::new(EngineOptions {
            max_value_bytes: Some(8),
            ..EngineOptions::default()
        });
        engine.set("g", "k", "\"small\"", Ttl::Default).unwrap();
        let err = engine
            .set("g", "k", "\"far too large\"", Ttl::Default)
            .unwrap_err();
        assert_eq!(err.code(), "VALUE_TOO_LARGE");
        assert_eq!(engine.get("g", "k").unwrap().as_deref(), Some("\"small\""));
    }

    #[test]
    fn list_groups_sorts_like_javascript() {
        let engine = Engine::new(EngineOptions::default());
        // U+FF5E sorts after U+1F600 in UTF-8 but before it in UTF-16 code units.
        engine.set("\u{1F600}", "k", "1", Ttl::Default).unwrap();
        engine.set("\u{FF5E}", "k", "1", Ttl::Default).unwrap();
        assert_eq!(engine.list_groups(), ["\u{1F600}", "\u{FF5E}"]);
    }

    fn version_of(engine: &Engine, group: &str, key: &str) -> Option<Version> {
        engine
            .get_versioned(group, key, |item| item.map(|(_, version)| version))
            .unwrap()
    }

    #[test]
    fn every_write_gives_a_new_version_and_a_recreated_item_never_reuses_one() {
        let engine = Engine::new(EngineOptions::default());
        let first = engine
            .set_owned("g", "k", "1".into(), Ttl::Default)
            .unwrap();
        assert_eq!((first.old, first.old_version), (None, 0));
        assert_eq!(version_of(&engine, "g", "k"), Some(first.version));
        let second = engine
            .set_owned("g", "k", "2".into(), Ttl::Default)
            .unwrap();
        assert_eq!(second.old.as_deref(), Some("1"));
        assert_eq!(second.old_version, first.version);
        assert!(second.version > first.version);
        let updated = engine
            .update("g", "k", r#"[{"type":"set","path":"","value":3}]"#)
            .unwrap();
        assert_eq!(updated.old_version, second.version);
        assert!(updated.version > second.version);
        let removed = engine.delete_owned("g", "k").unwrap().unwrap();
        assert_eq!((&*removed.old, removed.old_version), ("3", updated.version));
        assert_eq!(version_of(&engine, "g", "k"), None);
        // The group vanished with its last item; the same key set again is a new version.
        let again = engine
            .set_owned("g", "k", "3".into(), Ttl::Default)
            .unwrap();
        assert!(again.version > updated.version);
        engine.clear("g").unwrap();
        let after_clear = engine
            .set_owned("g", "k", "3".into(), Ttl::Default)
            .unwrap();
        assert!(after_clear.version > again.version);
    }

    #[test]
    fn a_group_read_is_unchanged_until_any_item_of_it_changes() {
        let engine = Engine::new(EngineOptions::default());
        engine.set("g", "a", "1", Ttl::Default).unwrap();
        engine.set("g", "b", "2", Ttl::Default).unwrap();
        engine.set("other", "a", "1", Ttl::Default).unwrap();
        let GroupRead::Changed { text, version } = engine.group_json_since("g", 0).unwrap() else {
            panic!("version 0 is never current")
        };
        assert_eq!(text, "[1,2]");
        assert_eq!(
            engine.group_json_since("g", version).unwrap(),
            GroupRead::Unchanged
        );
        engine.set("other", "a", "2", Ttl::Default).unwrap();
        assert_eq!(
            engine.group_json_since("g", version).unwrap(),
            GroupRead::Unchanged
        );
        let changes: [&dyn Fn(); 4] = [
            &|| drop(engine.set("g", "a", "1", Ttl::Default).unwrap()),
            &|| {
                drop(
                    engine
                        .update("g", "b", r#"[{"type":"set","path":"","value":5}]"#)
                        .unwrap(),
                )
            },
            &|| drop(engine.delete("g", "a").unwrap()),
            &|| drop(engine.set("g", "c", "7", Ttl::Default).unwrap()),
        ];
        let mut known = version;
        for change in changes {
            change();
            let GroupRead::Changed { text, version } = engine.group_json_since("g", known).unwrap()
            else {
                panic!("a change to the group must change its version")
            };
            assert_eq!(text, engine.group_json("g").unwrap());
            assert_ne!(version, known);
            known = version;
        }
        engine.clear("g").unwrap();
        assert_eq!(
            engine.group_json_since("g", known).unwrap(),
            GroupRead::Changed {
                text: "[]".into(),
                version: 0
            }
        );
    }

    #[test]
    fn a_group_read_is_not_current_once_an_item_of_it_expired() {
        let clock = crate::ttl::ManualClock::new(1_000);
        let engine = Engine::new(EngineOptions {
            clock: clock.clone(),
            ..EngineOptions::default()
        });
        engine.set("g", "a", "1", Ttl::Millis(500)).unwrap();
        engine.set("g", "b", "2", Ttl::Default).unwrap();
        let GroupRead::Changed { version, .. } = engine.group_json_since("g", 0).unwrap() else {
            panic!("version 0 is never current")
        };
        clock.advance(499);
        assert_eq!(
            engine.group_json_since("g", version).unwrap(),
            GroupRead::Unchanged
        );
        clock.advance(1);
        // (The background sweep may or may not have removed the item by now.)
        let GroupRead::Changed { text, .. } = engine.group_json_since("g", version).unwrap() else {
            panic!("an expired item makes the group's copy stale")
        };
        assert_eq!(text, "[2]");
        assert_eq!(version_of(&engine, "g", "a"), None);
    }
}
