//! The rules every write obeys, whatever the store: which names are valid, which values fit,
//! when an item expires, that an expired item counts as absent, what a `set`, an `update` or a
//! `delete` makes of the current item, and which change event it fires.
//!
//! They are plain functions of (current item, write, now, rules) so that every store applies
//! the same ones: the in-process engine under its group lock, and stores whose atomicity lives
//! elsewhere (a compare-and-set on a remote server, a per-key queue in front of a user's
//! adapter) around their own read and write. A store commits a write in one order: journal
//! (if it has a journal), apply, then publish the event ([`change`]), all while the item is
//! held, so that events of one key come in commit order.

use crate::error::{Error, Result};
use crate::events::{Change, EventType, Reason};
use crate::ops;
use crate::ttl;

/// Longest accepted group name or key, in bytes of UTF-8 (SPEC "Methods").
pub const MAX_NAME_BYTES: usize = 1024;

/// The settings of a store that decide what a write may store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Largest serialized value accepted by `set` and produced by `update`, in bytes of JSON
    /// text. `None` (the default) means no limit.
    pub max_value_bytes: Option<usize>,
    /// TTL given to items written by `set` without a TTL of their own (and to items that an
    /// `update` creates), in milliseconds. `None` (the default): such items never expire.
    pub default_ttl_ms: Option<u64>,
}

/// The TTL a `set` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The store's default TTL, if it has one; otherwise the item never expires.
    Default,
    /// Expire this many milliseconds after the write.
    Millis(u64),
}

impl Ttl {
    /// The TTL of a binding's argument: milliseconds as a float (rounded up), a negative
    /// number meaning the store's default.
    pub fn from_millis_arg(ttl_ms: f64) -> Ttl {
        if ttl_ms < 0.0 {
            Ttl::Default
        } else {
            Ttl::Millis(ttl_ms.ceil() as u64)
        }
    }
}

/// An item as a write sees it: its JSON text and its expiry (milliseconds since the Unix
/// epoch, 0 = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// The value's JSON text.
    pub value: &'a str,
    /// When it expires; 0 = never.
    pub expires_at_ms: u64,
}

/// What a `set` or `update` stores: the new text and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The new value's JSON text.
    pub value: T,
    /// When it expires; 0 = never.
    pub expires_at_ms: u64,
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

/// Checks the group and key of a call about one item.
pub fn check_item(group: &str, key: &str) -> Result<()> {
    check_name("group", group)?;
    check_name("key", key)
}

/// Whether an item that expires at `expires_at_ms` is still there at `now_ms`.
pub fn is_live(expires_at_ms: u64, now_ms: u64) -> bool {
    !ttl::is_expired(expires_at_ms, now_ms)
}

/// The current item as every write and read must see it: an expired item is absent.
pub fn live(item: Option<Item<'_>>, now_ms: u64) -> Option<Item<'_>> {
    item.filter(|item| is_live(item.expires_at_ms, now_ms))
}

impl Rules {
    /// Checks the size of a value's text against `max_value_bytes` (`VALUE_TOO_LARGE`).
    pub fn check_size(&self, text: &str) -> Result<()> {
        match self.max_value_bytes {
            Some(limit) if text.len() > limit => Err(Error::ValueTooLarge {
                size: text.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// The absolute expiry of an item written now with `ttl` (0 = never); `now_ms` reads the
    /// clock, only when the item expires.
    pub fn expires_at(&self, ttl: Ttl, now_ms: impl FnOnce() -> u64) -> u64 {
        let ttl_ms = match ttl {
            Ttl::Millis(ms) => Some(ms),
            Ttl::Default => self.default_ttl_ms,
        };
        ttl_ms.map_or(0, |ms| ttl::expires_at(now_ms(), ms))
    }

    /// A `set` of `value` (JSON text) with `ttl`: the value replaces whatever is there, with
    /// the expiry the TTL gives it.
    pub fn set<T: AsRef<str>>(
        &self,
        value: T,
        ttl: Ttl,
        now_ms: impl FnOnce() -> u64,
    ) -> Result<Stored<T>> {
        self.check_size(value.as_ref())?;
        Ok(Stored {
            expires_at_ms: self.expires_at(ttl, now_ms),
            value,
        })
    }

    /// An `update` of the live item `current` (`None`: absent, the ops start from `{}`) with
    /// parsed `ops`: all of them or none. An existing item keeps its expiry; a new one gets
    /// the default TTL. Also returns the members the ops changed, when only some members of an
    /// object changed (see [`ops::Applied`]).
    pub fn update(
        &self,
        current: Option<Item<'_>>,
        ops: &[ops::UpdateOp],
        now_ms: impl FnOnce() -> u64,
    ) -> Result<(Stored<String>, Option<String>)> {
        let applied = ops::apply_to_text_with_members(current.map(|item| item.value), ops)?;
        self.check_size(&applied.text)?;
        let expires_at_ms = match current {
            Some(item) => item.expires_at_ms,
            None => self.expires_at(Ttl::Default, now_ms),
        };
        Ok((
            Stored {
                value: applied.text,
                expires_at_ms,
            },
            applied.members,
        ))
    }
}

/// The change event of a committed write of `group`/`key` from `old` to `new` (`None`: absent
/// before, or removed), with the reason of a removal by expiry or clear.
pub fn change<'a>(
    group: &'a str,
    key: &'a str,
    old: Option<&'a str>,
    new: Option<&'a str>,
    reason: Option<Reason>,
) -> Change<'a> {
    let event_type = match (old, new) {
        (_, None) => EventType::Deleted,
        (Some(_), Some(_)) => EventType::Updated,
        (None, Some(_)) => EventType::Created,
    };
    Change {
        event_type,
        group,
        key,
        old_value: old,
        new_value: new,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_item_counts_as_absent() {
        let item = Item {
            value: "1",
            expires_at_ms: 100,
        };
        assert_eq!(live(Some(item), 99), Some(item));
        assert_eq!(live(Some(item), 100), None);
        let forever = Item {
            value: "1",
            expires_at_ms: 0,
        };
        assert_eq!(live(Some(forever), u64::MAX), Some(forever));
    }

    #[test]
    fn set_applies_the_ttl_it_asks_for_or_the_default_and_checks_the_size() {
        let rules = Rules {
            max_value_bytes: Some(3),
            default_ttl_ms: Some(50),
        };
        assert_eq!(
            rules
                .set("12", Ttl::Default, || 1000)
                .unwrap()
                .expires_at_ms,
            1050
        );
        assert_eq!(
            rules
                .set("12", Ttl::Millis(7), || 1000)
                .unwrap()
                .expires_at_ms,
            1007
        );
        assert_eq!(
            rules.set("1234", Ttl::Default, || 1000).unwrap_err().code(),
            "VALUE_TOO_LARGE"
        );
        assert_eq!(Rules::default().expires_at(Ttl::Default, || 1000), 0);
    }

    #[test]
    fn update_keeps_an_existing_expiry_and_gives_a_new_item_the_default() {
        let rules = Rules {
            max_value_bytes: None,
            default_ttl_ms: Some(50),
        };
        let ops = ops::parse_ops(r#"[{"type":"increment","path":"n","by":1}]"#).unwrap();
        let current = Item {
            value: r#"{"n":1}"#,
            expires_at_ms: 5000,
        };
        let (stored, _) = rules.update(Some(current), &ops, || 1000).unwrap();
        assert_eq!(stored.value, r#"{"n":2}"#);
        assert_eq!(stored.expires_at_ms, 5000);
        let (stored, _) = rules.update(None, &ops, || 1000).unwrap();
        assert_eq!(stored.value, r#"{"n":1}"#);
        assert_eq!(stored.expires_at_ms, 1050);
    }

    #[test]
    fn the_event_type_follows_from_the_old_and_new_values() {
        assert_eq!(
            change("g", "k", None, Some("1"), None).event_type,
            EventType::Created
        );
        assert_eq!(
            change("g", "k", Some("1"), Some("2"), None).event_type,
            EventType::Updated
        );
        assert_eq!(
            change("g", "k", Some("1"), None, None).event_type,
            EventType::Deleted
        );
    }
}
