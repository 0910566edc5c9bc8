//! Applying ops to a stored value given as JSON text, parsing only what the ops touch.
//!
//! A typical update changes one or two fields of an object (`increment 'paid'`, `set
//! 'status'`). Parsing the whole value into a tree and serializing it back costs far more
//! than the change, so when every op addresses a member of a top-level object, only the
//! members the ops name are parsed; the others are carried over as the exact text they were
//! stored as. The result is the same text the full path would produce, member for member:
//!
//! - the ops only read and write below the members they name, so they see the same values;
//! - members keep their order and new members go to the end, as in a full parse with
//!   `preserve_order`, because this path is not taken when an op may remove a top-level
//!   member (which a later op could then re-add at the end).
//!
//! Anything else (a root path, a removal at depth one, a value that is not an object) takes
//! the full path: parse, [`apply_ops`], serialize.

use super::{apply_ops, UpdateOp};
use crate::error::{Error, Result};
use crate::json::push_json_string;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Applies `ops` to the stored value `stored` (JSON text; `None` starts from `{}`) and returns
/// the new value's JSON text. All or nothing: on error nothing was changed anywhere.
pub fn apply_to_text(stored: Option<&str>, ops: &[UpdateOp]) -> Result<String> {
    Ok(apply_to_text_with_members(stored, ops)?.text)
}

/// What [`apply_to_text_with_members`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new value's JSON text.
    pub text: String,
    /// When the update changed only some members of a top-level object: those members, as the
    /// text of a JSON object of name to new value, in the order of the new value. Setting
    /// them, in that order, on a copy of the old value gives the new one (a caller that holds
    /// the old value parsed need not parse the whole new text).
    pub members: Option<String>,
}

/// [`apply_to_text`] that also tells which top-level members changed, when the ops touched
/// only some of them.
///
/// A result longer than [`super::MAX_VALUE_TEXT_BYTES`] fails with `VALUE_TOO_LARGE` (it could
/// never be read back); its nesting is bounded by the ops (`path.too_deep`).
pub fn apply_to_text_with_members(stored: Option<&str>, ops: &[UpdateOp]) -> Result<Applied> {
    apply_within(stored, ops, super::MAX_VALUE_TEXT_BYTES)
}

/// [`apply_to_text_with_members`] with a result of at most `limit` bytes.
fn apply_within(stored: Option<&str>, ops: &[UpdateOp], limit: usize) -> Result<Applied> {
    let applied = apply_unchecked(stored, ops)?;
    if applied.text.len() > limit {
        return Err(Error::TooLongToReadBack {
            what: "the updated value",
            size: applied.text.len(),
            limit,
        });
    }
    Ok(applied)
}

fn apply_unchecked(stored: Option<&str>, ops: &[UpdateOp]) -> Result<Applied> {
    let whole = |text: Result<String>| {
        text.map(|text| Applied {
            text,
            members: None,
        })
    };
    match stored {
        Some(text) if takes_fast_path(ops) => match RawMembers::parse(text) {
            Some(members) => apply_to_members(&members, ops),
            None => whole(apply_to_tree(text, ops)),
        },
        Some(text) => whole(apply_to_tree(text, ops)),
        None => {
            let mut value = Value::Object(Map::new());
            apply_ops(&mut value, ops)?;
            whole(to_text(&value))
        }
    }
}

/// Whether every op names a top-level member and none can remove one.
fn takes_fast_path(ops: &[UpdateOp]) -> bool {
    ops.iter().all(|op| {
        let depth = op.path().segments().len();
        depth > 0 && !(depth == 1 && matches!(op, UpdateOp::Remove(_)))
    })
}

fn apply_to_tree(text: &str, ops: &[UpdateOp]) -> Result<String> {
    // `set` stores JSON.stringify output unparsed; the one thing serde_json refuses in it is
    // nesting deeper than 128 levels.
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| Error::InvalidValue(format!("the stored value cannot be updated: {e}")))?;
    apply_ops(&mut value, ops)?;
    to_text(&value)
}

fn to_text(value: &Value) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::InvalidValue(format!("result is not JSON: {e}")))
}

fn apply_to_members(members: &RawMembers<'_>, ops: &[UpdateOp]) -> Result<Applied> {
    if ops.iter().all(|op| op.member_written().is_some()) {
        return apply_to_written_members(members, ops);
    }
    let touched = |key: &str| ops.iter().any(|op| op.path().segments()[0] == key);
    let mut partial = Map::new();
    for (key, raw) in &members.0 {
        if touched(key) {
            partial.insert(key.to_string(), parse_member(raw)?);
        }
    }
    let mut partial = Value::Object(partial);
    apply_ops(&mut partial, ops)?;
    let Value::Object(mut changed) = partial else {
        // Ops below the root never replace the root itself.
        return Err(Error::InvalidValue(
            "an update replaced the whole value".into(),
        ));
    };

    let mut rewrite = Rewrite::new(members);
    for (key, raw) in &members.0 {
        if touched(key) {
            match changed.shift_remove(key.as_ref()) {
                Some(value) => rewrite.change(key, &value)?,
                // A member gone is not a change a caller can set: it gets the whole text.
                None => rewrite.lose_changes(),
            }
        } else {
            rewrite.keep(key, raw);
        }
    }
    for (key, value) in changed {
        rewrite.change(&key, &value)?;
    }
    Ok(rewrite.finish())
}

/// [`apply_to_members`] of ops that each write one member and nothing else (`set`, `increment`
/// and `decrement` of one-segment paths: a counter's update, a status set beside it). The
/// members they write are held in a short list, each apart from its object (`Slot::Member`),
/// instead of in an object of their own, whose map hashes every name it holds and looks up
/// again: that was most of the time the ops took. The text is the same, built the same way: a
/// written member that was stored keeps its place (the first, if a name was stored twice, with
/// the last one's value, as a full parse does), new ones go to the end in the order the ops
/// first wrote them.
fn apply_to_written_members(members: &RawMembers<'_>, ops: &[UpdateOp]) -> Result<Applied> {
    let written_by_ops = |key: &str| ops.iter().any(|op| op.member_written() == Some(key));
    // (name, value, whether it was stored)
    let mut written: Vec<(&str, Option<Value>, bool)> = Vec::with_capacity(ops.len());
    for (key, raw) in &members.0 {
        if written_by_ops(key) {
            let value = Some(parse_member(raw)?);
            match written.iter_mut().find(|(name, ..)| *name == key.as_ref()) {
                Some(twice) => twice.1 = value,
                None => written.push((key.as_ref(), value, true)),
            }
        }
    }
    for (index, op) in ops.iter().enumerate() {
        let name = op.member_written().unwrap_or_default();
        let at = match written.iter().position(|(written, ..)| *written == name) {
            Some(at) => at,
            None => {
                written.push((name, None, false));
                written.len() - 1
            }
        };
        op.apply_to_member(&mut written[at].1, index)?;
    }

    let mut rewrite = Rewrite::new(members);
    for (key, raw) in &members.0 {
        match written.iter_mut().find(|(name, ..)| *name == key.as_ref()) {
            Some((_, value, _)) => match value.take() {
                Some(value) => rewrite.change(key, &value)?,
                // A name stored twice: its second place is gone, which a caller that sets
                // members cannot do; it gets the whole text.
                None => rewrite.lose_changes(),
            },
            None => rewrite.keep(key, raw),
        }
    }
    for (name, value, stored) in &written {
        if let (false, Some(value)) = (stored, value) {
            rewrite.change(name, value)?;
        }
    }
    Ok(rewrite.finish())
}

/// The new text of a stored object, written member by member in order, and beside it the text
/// of the members that changed (see [`Applied::members`]), until a change comes that a caller
/// could not make by setting members.
struct Rewrite {
    text: String,
    changes: Option<String>,
}

impl Rewrite {
    fn new(members: &RawMembers<'_>) -> Rewrite {
        let mut text = String::with_capacity(members.len_hint() + 16);
        text.push('{');
        Rewrite {
            text,
            changes: Some(String::with_capacity(64) + "{"),
        }
    }

    /// A member as it was stored.
    fn keep(&mut self, key: &str, raw: &RawValue) {
        push_member(&mut self.text, key, raw.get());
    }

    /// A member with a new value, written straight into the new text (a `String` of its own
    /// per changed member was an allocation and a copy more, about a tenth of what a
    /// counter's increment cost here), and copied from there to the changes.
    fn change(&mut self, key: &str, value: &Value) -> Result<()> {
        let start = self.text.len();
        if start > 1 {
            self.text.push(',');
        }
        let member = self.text.len();
        push_key(&mut self.text, key);
        // SAFETY: serde_json writes UTF-8 only, and on an error the text is cut back to where
        // it was (a `Value` holds nothing it cannot write, but the error is kept all the same).
        let written = serde_json::to_writer(unsafe { self.text.as_mut_vec() }, value);
        if let Err(e) = written {
            unsafe { self.text.as_mut_vec().truncate(start) };
            return Err(Error::InvalidValue(format!("result is not JSON: {e}")));
        }
        if let Some(changes) = self.changes.as_mut() {
            if changes.len() > 1 {
                changes.push(',');
            }
            changes.push_str(&self.text[member..]);
        }
        Ok(())
    }

    /// The changes are not members a caller can set: it gets the whole text.
    fn lose_changes(&mut self) {
        self.changes = None;
    }

    fn finish(mut self) -> Applied {
        self.text.push('}');
        if let Some(changes) = self.changes.as_mut() {
            changes.push('}');
        }
        Applied {
            text: self.text,
            members: self.changes,
        }
    }
}

/// A stored member's value, parsed.
fn parse_member(raw: &RawValue) -> Result<Value> {
    serde_json::from_str(raw.get())
        .map_err(|e| Error::InvalidValue(format!("the stored value cannot be updated: {e}")))
}

/// Appends `"key":text` to the text of an object being written (after a comma unless first).
fn push_member(out: &mut String, key: &str, text: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    push_key(out, key);
    out.push_str(text);
}

fn push_key(out: &mut String, key: &str) {
    push_json_string(out, key);
    out.push(':');
}

/// The members of a top-level JSON object, each value left as its raw text.
struct RawMembers<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawMembers<'a> {
    /// `None` when `text` is not an object (or not JSON).
    fn parse(text: &'a str) -> Option<RawMembers<'a>> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let members = deserializer.deserialize_map(MembersVisitor).ok()?;
        deserializer.end().ok()?;
        Some(members)
    }

    fn len_hint(&self) -> usize {
        self.0
            .iter()
            .map(|(key, raw)| key.len() + raw.get().len() + 4)
            .sum()
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = RawMembers<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            members.push((key.0, raw));
        }
        Ok(RawMembers(members))
    }
}

/// A member name, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::parse_ops;

    /// The full path, for comparison.
    fn full(stored: &str, ops: &str) -> Result<String> {
        apply_to_tree(stored, &parse_ops(ops).unwrap())
    }

    fn fast(stored: &str, ops: &str) -> Result<String> {
        apply_to_text(Some(stored), &parse_ops(ops).unwrap())
    }

    #[test]
    fn an_update_whose_result_is_longer_than_can_be_read_back_is_value_too_large() {
        let ops = parse_ops(r#"[{"type":"append","path":"s","value":"abc"}]"#).unwrap();
        let stored = r#"{"s":"0123456789"}"#;
        let fits = apply_within(Some(stored), &ops, stored.len() + 3).unwrap();
        assert_eq!(fits.text, r#"{"s":"0123456789abc"}"#);
        let err = apply_within(Some(stored), &ops, stored.len() + 2).unwrap_err();
        assert_eq!(err.code(), "VALUE_TOO_LARGE");
        let err = apply_within(None, &ops, 5).unwrap_err();
        assert_eq!(err.code(), "VALUE_TOO_LARGE");
    }

    #[test]
    fn the_new_and_old_values_of_an_update_fit_in_one_javascript_string_together() {
        let v8_max_string_length = (1 << 29) - 24;
        assert!(2 * crate::ops::MAX_VALUE_TEXT_BYTES + "[,]".len() <= v8_max_string_length);
    }

    #[test]
    fn touched_members_change_in_place_and_untouched_ones_keep_their_exact_text() {
        let stored = r#"{"id":"o1","total":1.50,"paid":0,"items":[{"q":1e2}],"status":"pending"}"#;
        let ops = r#"[{"type":"increment","path":"paid","by":1},{"type":"set","path":"status","value":"paid"}]"#;
        assert_eq!(
            fast(stored, ops).unwrap(),
            r#"{"id":"o1","total":1.50,"paid":1,"items":[{"q":1e2}],"status":"paid"}"#
        );
    }

    #[test]
    fn new_members_go_to_the_end_like_the_full_path() {
        let stored = r#"{"a":1,"b":{"c":2}}"#;
        let ops = r#"[{"type":"set","path":"z.y","value":3},{"type":"set","path":"b.d","value":4},{"type":"remove","path":"b.c"}]"#;
        assert_eq!(fast(stored, ops).unwrap(), full(stored, ops).unwrap());
        assert_eq!(
            fast(stored, ops).unwrap(),
            r#"{"a":1,"b":{"d":4},"z":{"y":3}}"#
        );
    }

    #[test]
    fn escaped_names_and_many_changed_members_come_out_as_the_full_path_writes_them() {
        let stored = r#"{"q\"uote":1,"back\\slash":2,"t\u0009ab":3,"plain":4}"#;
        let mut ops: Vec<String> = ["q\\\"uote", "back\\\\slash", "t\\tab", "plain"]
            .iter()
            .map(|path| format!(r#"{{"type":"increment","path":"{path}","by":1}}"#))
            .collect();
        // Many new members besides.
        ops.extend((0..32).map(|i| format!(r#"{{"type":"set","path":"n{i}\"x","value":{i}}}"#)));
        let ops = format!("[{}]", ops.join(","));
        let changed = fast(stored, &ops).unwrap();
        assert_eq!(changed, full(stored, &ops).unwrap());
        assert!(
            changed.starts_with(r#"{"q\"uote":2,"back\\slash":3,"t\tab":4,"plain":5,"n0\"x":0,"#),
            "{changed}"
        );
    }

    #[test]
    fn a_failing_op_fails_the_fast_path_with_the_same_error() {
        let stored = r#"{"a":"text","b":1}"#;
        let ops =
            r#"[{"type":"increment","path":"b","by":1},{"type":"increment","path":"a","by":1}]"#;
        assert_eq!(
            fast(stored, ops).unwrap_err(),
            full(stored, ops).unwrap_err()
        );
    }

    #[test]
    fn root_ops_top_level_removals_and_non_objects_take_the_full_path() {
        for (stored, ops) in [
            (r#"{"a":1}"#, r#"[{"type":"merge","value":{"b":2}}]"#),
            (
                r#"{"a":1,"b":2}"#,
                r#"[{"type":"remove","path":"a"},{"type":"set","path":"a","value":3}]"#,
            ),
            (r#"[1,2]"#, r#"[{"type":"set","path":"0","value":3}]"#),
            (r#""text""#, r#"[{"type":"set","path":"a","value":3}]"#),
        ] {
            assert_eq!(fast(stored, ops), full(stored, ops), "{stored} {ops}");
        }
        assert_eq!(
            fast(
                r#"{"a":1,"b":2}"#,
                r#"[{"type":"remove","path":"a"},{"type":"set","path":"a","value":3}]"#
            )
            .unwrap(),
            r#"{"b":2,"a":3}"#
        );
    }

    #[test]
    fn cached_op_lists_parse_once_and_errors_are_not_cached() {
        let text = r#"[{"type":"increment","path":"n","by":1}]"#;
        let first = crate::ops::parse_ops_cached(text).unwrap();
        let second = crate::ops::parse_ops_cached(text).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &second));
        assert_eq!(&*first, parse_ops(text).unwrap().as_slice());
        let bad = r#"[{"type":"nope","path":"n"}]"#;
        assert_eq!(
            crate::ops::parse_ops_cached(bad).unwrap_err().code(),
            "INVALID_OP"
        );
        assert_eq!(
            crate::ops::parse_ops_cached(bad).unwrap_err().code(),
            "INVALID_OP"
        );
    }

    /// Sets `members` on the parsed `stored`, as the JS read cache does.
    fn with_members(stored: &str, members: &str) -> Value {
        let mut value: Value = serde_json::from_str(stored).unwrap();
        let members: Map<String, Value> = serde_json::from_str(members).unwrap();
        let object = value.as_object_mut().unwrap();
        for (key, member) in members {
            object.insert(key, member);
        }
        value
    }

    #[test]
    fn the_changed_members_turn_the_old_value_into_the_new_one() {
        let stored = r#"{"id":"o1","paid":0,"b":{"c":2},"status":"pending"}"#;
        let ops = r#"[{"type":"increment","path":"paid","by":1},{"type":"set","path":"z","value":[1]},{"type":"remove","path":"b.c"},{"type":"set","path":"status","value":"paid"}]"#;
        let applied = apply_to_text_with_members(Some(stored), &parse_ops(ops).unwrap()).unwrap();
        assert_eq!(
            applied.members.as_deref(),
            Some(r#"{"paid":1,"b":{},"status":"paid","z":[1]}"#)
        );
        let new: Value = serde_json::from_str(&applied.text).unwrap();
        assert_eq!(
            with_members(stored, applied.members.as_deref().unwrap()),
            new
        );
        // The full path has no members to give.
        for (stored, ops) in [
            (r#"{"a":1}"#, r#"[{"type":"merge","value":{"b":2}}]"#),
            (r#"[1]"#, r#"[{"type":"set","path":"0","value":2}]"#),
        ] {
            let applied = apply_to_text_with_members(Some(stored), &parse_ops(ops).unwrap());
            assert_eq!(applied.unwrap().members, None, "{stored} {ops}");
        }
        let created = apply_to_text_with_members(None, &parse_ops(ops).unwrap()).unwrap();
        assert_eq!(created.members, None);
    }

    #[test]
    fn a_written_member_stored_twice_keeps_its_first_place_with_the_last_value() {
        // No JSON.stringify writes a name twice; a full parse reads such text so, and so do
        // both partial paths (the second one for an op that writes below a member).
        let stored = r#"{"a":1,"b":2,"a":3}"#;
        for ops in [
            r#"[{"type":"increment","path":"a","by":1}]"#,
            r#"[{"type":"increment","path":"a","by":1},{"type":"set","path":"c.d","value":0}]"#,
        ] {
            let applied = apply_to_text_with_members(Some(stored), &parse_ops(ops).unwrap());
            let applied = applied.unwrap();
            assert_eq!(applied.text, full(stored, ops).unwrap(), "{ops}");
            assert!(
                applied.text.starts_with(r#"{"a":4,"b":2"#),
                "{}",
                applied.text
            );
            assert_eq!(applied.members, None, "{ops}");
        }
    }

    #[test]
    fn escaped_member_names_survive() {
        let stored = r#"{"a\"b":1,"\u00e9":2,"plain":3}"#;
        let ops = r#"[{"type":"increment","path":["a\"b"],"by":1}]"#;
        let result: Value = serde_json::from_str(&fast(stored, ops).unwrap()).unwrap();
        assert_eq!(result, serde_json::json!({"a\"b": 2, "é": 2, "plain": 3}));
    }
}
