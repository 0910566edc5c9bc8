//! JSON Patch `{ op: 'replace', path, value }` (RFC 6902 section 4.3): writes a value at a
//! path, the way `set` does. RFC 6902 would fail when nothing is there; the documented examples
//! of this kind of state store (a login that `replace`s a `last_login` the user was created
//! without) use it to set a missing member, so it does, and a strict precondition is a `test`
//! before it.

use super::path::{Path, Slot};
use super::set::write_value;
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::Value;

/// Writes `value` at `path` exactly as [`super::SetOp`] does: an existing member or element is
/// overwritten (keeping its place), a missing object member is added, missing intermediate
/// objects are created, `-` or an index equal to an array's length appends, an index past it is
/// `path.index_out_of_range`, and the root is replaced. Nothing is inserted before an existing
/// element (that is `add`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaceOp {
    /// Where to write; missing intermediate objects are created.
    pub path: Path,
    /// The JSON written there.
    pub value: Value,
}

impl ReplaceOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<ReplaceOp> {
        Ok(ReplaceOp {
            path: fields.path()?,
            value: fields.value()?.clone(),
        })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        write_value(target, ctx, &self.value, Slot::put)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn replace_overwrites_an_existing_member_or_element() {
        let value = apply_json(
            json!({"a": 1, "l": [1, 2]}),
            json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "replace", "path": "/l/1", "value": 3}]),
        );
        assert_eq!(value, json!({"a": 2, "l": [1, 3]}));
    }

    #[test]
    fn replace_of_a_missing_member_sets_it_as_the_login_example_does() {
        let value = apply_json(
            json!({"name": "Ada", "login_count": 0}),
            json!([
                {"op": "increment", "path": "/login_count", "value": 1},
                {"op": "replace", "path": "/last_login", "value": "2024-01-01T00:00:00Z"}
            ]),
        );
        assert_eq!(
            value,
            json!({"name": "Ada", "login_count": 1, "last_login": "2024-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn replace_of_a_missing_member_creates_missing_intermediate_objects_like_set() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/x/y/z", "value": 0}]),
        );
        assert_eq!(value, json!({"a": 1, "x": {"y": {"z": 0}}}));
    }

    #[test]
    fn replace_in_an_array_overwrites_or_appends_at_the_end_like_set_and_never_inserts() {
        let value = apply_json(
            json!({"l": [1, 2]}),
            json!([
                {"op": "replace", "path": "/l/0", "value": 9},
                {"op": "replace", "path": "/l/2", "value": 3},
                {"op": "replace", "path": "/l/-", "value": 4}
            ]),
        );
        assert_eq!(value, json!({"l": [9, 2, 3, 4]}));
    }

    #[test]
    fn replace_past_the_end_of_an_array_or_through_a_scalar_still_fails() {
        let code = code_of(
            json!({"l": [1]}),
            json!([{"op": "replace", "path": "/l/5", "value": 0}]),
        );
        assert_eq!(code, "path.index_out_of_range");
        let code = code_of(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/a/b", "value": 0}]),
        );
        assert_eq!(code, "path.not_container");
    }

    #[test]
    fn a_test_before_replace_keeps_the_strict_rfc_6902_precondition() {
        let code = code_of(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/x", "value": null}, {"op": "replace", "path": "/x", "value": 0}]),
        );
        assert_eq!(code, "test.failed");
    }

    #[test]
    fn replace_at_the_root_replaces_the_value() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": [1]}]),
        );
        assert_eq!(value, json!([1]));
    }

    #[test]
    fn replace_without_a_value_is_invalid_op() {
        assert_eq!(
            invalid_op_index(json!([{"op": "replace", "path": "/a"}])),
            0
        );
    }
}
