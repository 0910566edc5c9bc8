//! The store calls of the in-process backend (memory and file stores): set, get, update,
//! delete (registered as plain callbacks by `fast.rs`), clear, get_group, entries, keys,
//! list_groups and close, each one synchronous N-API call over a handle, values crossing as
//! JSON text both ways. A read or write passes the version of the copy the caller holds, and
//! gets `true` instead of a text it already has.

use crate::args::{js_text, Name, Text};
use crate::durable::note_ticket;
use crate::errors::to_js;
use crate::events::keep_alive_for_pending_events;
use crate::handle::HandleRef;
use crate::names::{kept_name, KeptName};
use crate::status::{note, note_item, Slot};
use napi::bindgen_prelude::Either;
use napi::{Env, JsString, Result};
use napi_derive::napi;
use std::borrow::Cow;
use stepstate_core::{GroupRead, Ttl, Version, WriteResult};

/// The version a caller says it holds a copy of (0: none).
pub(crate) fn known(version: f64) -> Version {
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
/// value's version is then the status's version (`callStatus()`).
pub(crate) fn set<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    value: Text,
    ttl_ms: f64,
    known_old: f64,
) -> Result<MaybeKnown<'env>> {
    let replaced = handle
        .engine()?
        .set_owned(&group, &key, value.0, Ttl::from_millis_arg(ttl_ms));
    keep_alive_for_pending_events(env);
    let replaced = replaced.map_err(to_js)?;
    note_item(replaced.version, replaced.reused);
    note_ticket(replaced.ticket);
    let old = replaced
        .old
        .as_deref()
        .map(|old| (old, replaced.old_version));
    maybe_known(env, old, known(known_old))
}

/// The value's text (`true` when its version is `known`), or null. The JS string is made
/// straight from the stored text while the group is read-locked, with no intermediate copy.
pub(crate) fn get<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    known_version: f64,
) -> Result<MaybeKnown<'env>> {
    handle
        .engine()?
        .get_tracked(&group, &key, |item| {
            note_item(
                item.map_or(0, |(_, version, _)| version),
                item.is_some_and(|(_, _, used)| used),
            );
            maybe_known(
                env,
                item.map(|(text, version, _)| (text, version)),
                known(known_version),
            )
        })
        .map_err(to_js)?
}

/// Applies ops (JSON text of an array); returns the JSON text `[new_value, old_value]`. When
/// the old value's version is `known_old` (the caller holds it parsed), returns instead the
/// members that changed as a JSON object (`{"paid":1}`: set them on a copy of the old value),
/// or `[new_value]` when the update was not one of only some members. When the one member
/// that changed is now a number (a counter's increment), returns only its name, with the
/// number in the status's `Number` slot and `Answer` set to 1 (else 0): a `JSON.parse` of a
/// one-member object costs JavaScript more than the rest of what it does with the answer. A
/// name this thread answered with before is not returned (null) but pointed to: `Answer` is
/// then 2 plus its index in `memberNames()` (see `names.rs`).
pub(crate) fn update<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    ops: Text,
    known_old: f64,
) -> Result<Option<JsString<'env>>> {
    let result = handle.engine()?.update(&group, &key, &ops.0);
    keep_alive_for_pending_events(env);
    let result = result.map_err(to_js)?;
    note_item(result.version, result.reused);
    note_ticket(result.ticket);
    note(Slot::Length, result.new_value.len() as f64);
    let answer = update_answer(&result, known(known_old));
    if let Cow::Borrowed(members) = answer {
        if let Some((name, number)) = one_number(members) {
            note(Slot::Number, number);
            return Ok(match kept_name(env, name)? {
                KeptName::At(at) => {
                    note(Slot::Answer, 2.0 + at as f64);
                    None
                }
                KeptName::New(text) => {
                    note(Slot::Answer, 1.0);
                    Some(text)
                }
            });
        }
    }
    note(Slot::Answer, 0.0);
    js_text(env, &answer).map(Some)
}

/// The name and value of `members` when it is `{"<name>":<number>}` and the name has no escape
/// (so it is the text between the quotes as it is); `None` for anything else.
fn one_number(members: &str) -> Option<(&str, f64)> {
    let inner = members.strip_prefix("{\"")?.strip_suffix('}')?;
    // A quote in a name is escaped, so the first quote ends an unescaped one. (A byte search:
    // `split_once("\":")` set up a substring searcher on every call.)
    let end = inner.bytes().position(|b| b == b'"')?;
    let (name, number) = (&inner[..end], inner[end + 1..].strip_prefix(':')?);
    let is_number_text = !number.is_empty()
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if name.contains('\\') || !is_number_text {
        return None;
    }
    // Parsed as JSON.parse would: the nearest double.
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| (name, n))
}

/// What an update answers a caller that holds the old value at version `known_old`: the changed
/// members `{...}` when the ops changed only some members of an object, else `[new_value]`;
/// a caller that does not hold it gets `[new_value, old_value]`.
pub(crate) fn update_answer(result: &WriteResult, known_old: Version) -> Cow<'_, str> {
    let holds_old = result.old_value.is_some() && result.old_version == known_old;
    if let (true, Some(members)) = (holds_old, &result.changed_members) {
        return Cow::Borrowed(members);
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
    Cow::Owned(pair)
}

/// Removes an item; returns its value's text (`true` when its version is `known_old`) or null.
pub(crate) fn delete<'env>(
    env: &'env Env,
    handle: HandleRef,
    group: Name,
    key: Name,
    known_old: f64,
) -> Result<MaybeKnown<'env>> {
    let old = handle.engine()?.delete_owned(&group, &key);
    keep_alive_for_pending_events(env);
    let old = old.map_err(to_js)?;
    note_ticket(old.as_ref().map_or(0, |removed| removed.ticket));
    maybe_known(
        env,
        old.as_ref()
            .map(|removed| (&*removed.old, removed.old_version)),
        known(known_old),
    )
}

/// Removes every item of a group; returns how many were removed.
#[napi]
pub fn clear(env: Env, handle: HandleRef, group: Name) -> Result<u32> {
    let (removed, ticket) = handle.engine()?.clear_ticketed(&group).map_err(to_js)?;
    note_ticket(ticket);
    keep_alive_for_pending_events(&env);
    Ok(removed as u32)
}

/// The group's values as the JSON text of an array, in insertion order; `true` when the
/// caller's copy of version `known` is still current. The group's version (0 for a group that
/// does not exist) is then in the call status (`callStatus()`).
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
            note(Slot::Version, version as f64);
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
