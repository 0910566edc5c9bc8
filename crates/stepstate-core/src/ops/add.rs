//! JSON Patch `{ op: 'add', path, value }` (RFC 6902 section 4.1): sets an object member, or
//! inserts into an array.

use super::path::{Path, Slot};
use super::set::write_value;
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::Value;

/// Adds `value` at `path`: an object member is added or replaced; in an array, an index up to
/// the length inserts before that element (shifting the rest) and `-` appends; the root is
/// replaced. Unlike RFC 6902, missing intermediate objects are created, as for every write in
/// this engine.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOp {
    /// Where to add.
    pub path: Path,
    /// The JSON to add.
    pub value: Value,
}

impl AddOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<AddOp> {
        Ok(AddOp {
            path: fields.path()?,
            value: fields.value()?.clone(),
        })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        write_value(target, ctx, &self.value, Slot::insert)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn add_inserts_into_an_array_before_the_index() {
        let value = apply_json(
            json!({"l": [1, 3]}),
            json!([{"op": "add", "path": "/l/1", "value": 2}]),
        );
        assert_eq!(value, json!({"l": [1, 2, 3]}));
    }

    #[test]
    fn add_at_dash_or_at_the_length_appends() {
        let value = apply_json(
            json!({"l": [1]}),
            json!([{"op": "add", "path": "/l/-", "value": 2}, {"op": "add", "path": "/l/2", "value": 3}]),
        );
        assert_eq!(value, json!({"l": [1, 2, 3]}));
    }

    #[test]
    fn add_past_the_length_is_index_out_of_range() {
        let code = code_of(
            json!({"l": [1]}),
            json!([{"op": "add", "path": "/l/3", "value": 2}]),
        );
        assert_eq!(code, "path.index_out_of_range");
    }

    #[test]
    fn add_sets_an_object_member_and_creates_intermediates() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/a", "value": 2}, {"op": "add", "path": "/x/y", "value": 3}]),
        );
        assert_eq!(value, json!({"a": 2, "x": {"y": 3}}));
    }

    #[test]
    fn add_at_the_root_replaces_the_value() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"op": "add", "path": "", "value": "s"}]),
        );
        assert_eq!(value, json!("s"));
    }

    #[test]
    fn add_of_a_pointer_with_escapes_writes_the_unescaped_key() {
        let value = apply_json(
            json!({}),
            json!([{"op": "add", "path": "/a~1b/c~0d", "value": 1}]),
        );
        assert_eq!(value, json!({"a/b": {"c~d": 1}}));
    }

    #[test]
    fn add_without_a_value_is_invalid_op() {
        assert_eq!(invalid_op_index(json!([{"op": "add", "path": "/a"}])), 0);
    }
}
