//! The engine owns every group and key of one store: where items live, their insertion order,
//! the locks that make each write atomic, and the write path (`set`, `update`, `delete`,
//! `clear`).
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
use crate::ops;
use foldhash::fast::RandomState;
use parking_lot::RwLock;
use std::hash::BuildHasher;
use std::sync::Arc;

/// How many shards the group map is split into. A power of two, so a hash picks one with a mask.
pub const SHARDS: usize = 32;

/// Longest accepted group name or key, in bytes of UTF-8 (SPEC "Methods").
pub const MAX_NAME_BYTES: usize = 1024;

/// Settings of one engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Largest serialized value accepted by `set` and produced by `update`, in bytes of JSON
    /// text. `None` (the default) means no limit.
    pub max_value_bytes: Option<usize>,
}

/// What `set` and `update` return: the value now stored and the one it replaced, as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    /// The stored value after the write.
    pub new_value: String,
    /// The value before the write; `None` when the key was absent.
    pub old_value: Option<String>,
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
    value: Box<str>,
}

/// The items of one group in insertion order.
///
/// `slots` is the order; a removed item leaves a hole (`None`) so that removal is O(1), and the
/// holes are squeezed out once they outnumber the live items. `index` maps a key to its slot.
#[derive(Debug, Default)]
struct Group {
    index: HashMap<Arc<str>, usize>,
    slots: Vec<Option<Slot>>,
}

impl Group {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn get(&self, key: &str) -> Option<&Slot> {
        let position = *self.index.get(key)?;
        self.slots[position].as_ref()
    }

    /// Stores `value` under `key`, keeping the key's place when it exists; returns the old value.
    fn put(&mut self, key: &str, value: Box<str>) -> Option<Box<str>> {
        if let Some(&position) = self.index.get(key) {
            if let Some(slot) = self.slots[position].as_mut() {
                return Some(std::mem::replace(&mut slot.value, value));
            }
        }
        let key: Arc<str> = Arc::from(key);
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Some(Slot { key, value }));
        None
    }

    fn remove(&mut self, key: &str) -> Option<Box<str>> {
        let position = self.index.remove(key)?;
        let slot = self.slots[position].take()?;
        let holes = self.slots.len() - self.index.len();
        if holes > 32 && holes > self.index.len() {
            self.squeeze();
        }
        Some(slot.value)
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
}

/// Hash maps of the engine: foldhash, seeded per map, is several times faster than SipHash on
/// short keys and still randomized against crafted collisions.
type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;

type Shard = RwLock<HashMap<Arc<str>, Arc<RwLock<Group>>>>;

/// One store's state: every group, with atomic writes and lock-free-of-each-other groups.
pub struct Engine {
    shards: Box<[Shard]>,
    hasher: RandomState,
    options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Checks a group name or key: a non-empty string of at most [`MAX_NAME_BYTES`] bytes.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what} must be a non-empty string"
        )));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(name_too_long(what, name.len()));
    }
    Ok(())
}

/// The error for a group name or key of `len` bytes, more than [`MAX_NAME_BYTES`].
pub fn name_too_long(what: &str, len: usize) -> Error {
    Error::InvalidArgument(format!(
        "{what} is {len} bytes long; at most {MAX_NAME_BYTES} bytes are allowed"
    ))
}

fn check_item(group: &str, key: &str) -> Result<()> {
    check_name("group", group)?;
    check_name("key", key)
}

/// Appends `text` to `out` as a JSON string literal.
fn push_json_string(out: &mut String, text: &str) {
    // Serializing a &str into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineOptions::default())
    }
}

impl Engine {
    /// An empty store.
    pub fn new(options: EngineOptions) -> Engine {
        Engine {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: RandomState::default(),
            options,
        }
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn shard(&self, group: &str) -> &Shard {
        let hash = self.hasher.hash_one(group) as usize;
        &self.shards[hash & (SHARDS - 1)]
    }

    fn check_size(&self, text: &str) -> Result<()> {
        match self.options.max_value_bytes {
            Some(limit) if text.len() > limit => Err(Error::ValueTooLarge {
                size: text.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Runs `write` on the group, creating it when missing, with its shard held shared so that
    /// the group cannot vanish underneath. Removes the group afterwards if it is left empty.
    fn write_group<R>(&self, group: &str, write: impl FnOnce(&mut Group) -> R) -> R {
        let shard = self.shard(group);
        let (result, now_empty) = {
            let read = shard.read();
            if let Some(cell) = read.get(group) {
                let mut items = cell.write();
                let result = write(&mut items);
                (result, items.len() == 0)
            } else {
                drop(read);
                let mut map = shard.write();
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

    fn remove_if_empty(&self, group: &str) {
        let mut map = self.shard(group).write();
        if map.get(group).is_some_and(|cell| cell.read().len() == 0) {
            map.remove(group);
        }
    }

    /// Runs `read` on the group while it is read-locked; `None` when the group does not exist.
    fn read_group<R>(&self, group: &str, read: impl FnOnce(&Group) -> R) -> Option<R> {
        let map = self.shard(group).read();
        let cell = map.get(group)?;
        let items = cell.read();
        Some(read(&items))
    }

    /// Stores `value` (JSON text) under `group`/`key`, keeping the key's place if it exists.
    /// Returns the previous value's text, `None` when the key was absent.
    pub fn set(&self, group: &str, key: &str, value: &str) -> Result<Option<String>> {
        check_item(group, key)?;
        self.check_size(value)
            .map_err(|e| e.for_item("set", group, key))?;
        let old = self.write_group(group, |items| items.put(key, Box::from(value)));
        Ok(old.map(String::from))
    }

    /// Calls `read` with the value's text, or `None` when the key is absent; the group stays
    /// read-locked only for the duration of the call.
    pub fn get_with<R>(
        &self,
        group: &str,
        key: &str,
        read: impl FnOnce(Option<&str>) -> R,
    ) -> Result<R> {
        check_item(group, key)?;
        let map = self.shard(group).read();
        match map.get(group) {
            Some(cell) => {
                let items = cell.read();
                Ok(read(items.get(key).map(|slot| &*slot.value)))
            }
            None => Ok(read(None)),
        }
    }

    /// The value's text, or `None` when the key is absent.
    pub fn get(&self, group: &str, key: &str) -> Result<Option<String>> {
        self.get_with(group, key, |value| value.map(String::from))
    }

    /// Applies `ops_json` (the JSON text of an UpdateOp array) to the item atomically: all ops or
    /// none. A missing key starts from `{}`. On failure nothing changes and no key is created.
    pub fn update(&self, group: &str, key: &str, ops_json: &str) -> Result<WriteResult> {
        check_item(group, key)?;
        let ops = ops::parse_ops(ops_json).map_err(|e| e.for_item("update", group, key))?;
        self.write_group(group, |items| {
            let old = items.get(key).map(|slot| &*slot.value);
            let mut value = match old {
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| Error::Corrupt(format!("stored value is not JSON: {e}")))?,
                None => serde_json::Value::Object(serde_json::Map::new()),
            };
            ops::apply_ops(&mut value, &ops)?;
            let new_text = serde_json::to_string(&value)
                .map_err(|e| Error::InvalidValue(format!("result is not JSON: {e}")))?;
            self.check_size(&new_text)?;
            let old = items.put(key, Box::from(new_text.as_str()));
            Ok(WriteResult {
                new_value: new_text,
                old_value: old.map(String::from),
            })
        })
        .map_err(|e: Error| e.for_item("update", group, key))
    }

    /// Removes the item; returns its value's text, `None` when it was absent.
    pub fn delete(&self, group: &str, key: &str) -> Result<Option<String>> {
        check_item(group, key)?;
        let shard = self.shard(group);
        let (old, now_empty) = {
            let map = shard.read();
            let Some(cell) = map.get(group) else {
                return Ok(None);
            };
            let mut items = cell.write();
            let old = items.remove(key);
            (old, items.len() == 0)
        };
        if now_empty {
            self.remove_if_empty(group);
        }
        Ok(old.map(String::from))
    }

    /// Removes every item of the group; returns the removed items in insertion order.
    pub fn clear(&self, group: &str) -> Result<Vec<Entry>> {
        check_name("group", group)?;
        let removed = self.shard(group).write().remove(group);
        let Some(cell) = removed else {
            return Ok(Vec::new());
        };
        let items = std::mem::take(&mut *cell.write());
        Ok(items
            .slots
            .into_iter()
            .flatten()
            .map(|slot| Entry {
                key: slot.key.to_string(),
                value: slot.value.into(),
            })
            .collect())
    }

    /// The group's values as the text of one JSON array, in insertion order (`[]` when the
    /// group does not exist): one string crosses to JavaScript however many items there are.
    pub fn group_json(&self, group: &str) -> Result<String> {
        check_name("group", group)?;
        Ok(self
            .read_group(group, |items| {
                let mut out = String::with_capacity(2 + items.len() * 64);
                out.push('[');
                for (n, slot) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    out.push_str(&slot.value);
                }
                out.push(']');
                out
            })
            .unwrap_or_else(|| String::from("[]")))
    }

    /// The group's items as the text of a JSON array of `{"key":…,"value":…}` objects.
    pub fn entries_json(&self, group: &str) -> Result<String> {
        check_name("group", group)?;
        Ok(self
            .read_group(group, |items| {
                let mut out = String::with_capacity(2 + items.len() * 80);
                out.push('[');
                for (n, slot) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"key\":");
                    push_json_string(&mut out, &slot.key);
                    out.push_str(",\"value\":");
                    out.push_str(&slot.value);
                    out.push('}');
                }
                out.push(']');
                out
            })
            .unwrap_or_else(|| String::from("[]")))
    }

    /// The group's keys as the text of a JSON array of strings, in insertion order.
    pub fn keys_json(&self, group: &str) -> Result<String> {
        check_name("group", group)?;
        Ok(self
            .read_group(group, |items| {
                let mut out = String::with_capacity(2 + items.len() * 16);
                out.push('[');
                for (n, slot) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    push_json_string(&mut out, &slot.key);
                }
                out.push(']');
                out
            })
            .unwrap_or_else(|| String::from("[]")))
    }

    /// The group's items, in insertion order.
    pub fn entries(&self, group: &str) -> Result<Vec<Entry>> {
        check_name("group", group)?;
        Ok(self
            .read_group(group, |items| {
                items
                    .iter()
                    .map(|slot| Entry {
                        key: slot.key.to_string(),
                        value: slot.value.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The names of the non-empty groups, sorted (by UTF-16 code units, as JavaScript's default
    /// `sort` orders strings, so that the order is the one a JS user would get).
    pub fn list_groups(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.read();
            for (name, cell) in map.iter() {
                if cell.read().len() > 0 {
                    names.push(name.to_string());
                }
            }
        }
        names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        names
    }

    /// Number of items in the group (0 when it does not exist).
    pub fn group_len(&self, group: &str) -> usize {
        self.read_group(group, Group::len).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwriting_a_key_keeps_its_place_and_delete_then_set_moves_it_to_the_end() {
        let engine = Engine::default();
        engine.set("g", "a", "1").unwrap();
        engine.set("g", "b", "2").unwrap();
        engine.set("g", "a", "3").unwrap();
        assert_eq!(engine.group_json("g").unwrap(), "[3,2]");
        engine.delete("g", "a").unwrap();
        engine.set("g", "a", "4").unwrap();
        assert_eq!(engine.keys_json("g").unwrap(), r#"["b","a"]"#);
    }

    #[test]
    fn set_returns_the_previous_value_and_delete_returns_the_removed_one() {
        let engine = Engine::default();
        assert_eq!(engine.set("g", "k", "1").unwrap(), None);
        assert_eq!(engine.set("g", "k", "2").unwrap().as_deref(), Some("1"));
        assert_eq!(engine.delete("g", "k").unwrap().as_deref(), Some("2"));
        assert_eq!(engine.delete("g", "k").unwrap(), None);
    }

    #[test]
    fn empty_groups_vanish_from_list_groups() {
        let engine = Engine::default();
        engine.set("b", "k", "1").unwrap();
        engine.set("a", "k", "1").unwrap();
        engine.set("c", "k", "1").unwrap();
        assert_eq!(engine.list_groups(), ["a", "b", "c"]);
        engine.delete("b", "k").unwrap();
        assert_eq!(engine.clear("c").unwrap().len(), 1);
        assert_eq!(engine.list_groups(), ["a"]);
    }

    #[test]
    fn many_deletes_squeeze_holes_without_losing_order() {
        let engine = Engine::default();
        for n in 0..1000 {
            engine.set("g", &n.to_string(), &n.to_string()).unwrap();
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
        let engine = Engine::default();
        engine.set("g", "a\"b\\c\n", "{}").unwrap();
        assert_eq!(
            engine.entries_json("g").unwrap(),
            r#"[{"key":"a\"b\\c\n","value":{}}]"#
        );
    }

    #[test]
    fn names_must_be_non_empty_and_at_most_1024_bytes() {
        let engine = Engine::default();
        assert_eq!(
            engine.set("", "k", "1").unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        let long = "é".repeat(513);
        assert_eq!(
            engine.get("g", &long).unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        assert!(engine.set("g", &"x".repeat(1024), "1").is_ok());
    }

    #[test]
    fn max_value_bytes_rejects_large_values_and_keeps_the_store() {
        let engine = Engine::new(EngineOptions {
            max_value_bytes: Some(8),
        });
        engine.set("g", "k", "\"small\"").unwrap();
        let err = engine.set("g", "k", "\"far too large\"").unwrap_err();
        assert_eq!(err.code(), "VALUE_TOO_LARGE");
        assert_eq!(engine.get("g", "k").unwrap().as_deref(), Some("\"small\""));
    }

    #[test]
    fn list_groups_sorts_like_javascript() {
        let engine = Engine::default();
        // U+FF5E sorts after U+1F600 in UTF-8 but before it in UTF-16 code units.
        engine.set("\u{1F600}", "k", "1").unwrap();
        engine.set("\u{FF5E}", "k", "1").unwrap();
        assert_eq!(engine.list_groups(), ["\u{1F600}", "\u{FF5E}"]);
    }
}
