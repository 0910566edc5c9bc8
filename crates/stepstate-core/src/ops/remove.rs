//! `{ type: 'remove', path }` and JSON Patch `{ op: 'remove', path }`: deletes an object member
//! or an array element. Removing something that is not there is a no-op.

use super::path::{locate, Path, Walk};
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::Value;

/// Deletes the member or element at `path`. Later array elements shift down (like `splice`,
/// leaving no hole); other object members keep their order. A missing target, including one
/// behind a missing or scalar parent, is a no-op (RFC 6902 would fail; a state store's
/// "make sure it is gone" reads better). The root cannot be removed (`remove.root`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoveOp {
    /// What to delete; never the root.
    pub path: Path,
}

impl RemoveOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<RemoveOp> {
        Ok(RemoveOp {
            path: fields.path()?,
        })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        if self.path.is_root() {
            return Err(ctx.fail(
                "remove.root",
                "the whole value cannot be removed by an update; use delete(group, key), or set the root",
            ));
        }
        if let Ok(Some(slot)) = locate(target, &self.path, Walk::Existing) {
            slot.take();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn remove_deletes_a_field_and_keeps_the_order_of_the_rest() {
        let value = apply_json(
            json!({"a": 1, "b": 2, "c": 3}),
            json!([{"type": "remove", "path": "a"}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"b":2,"c":3}"#
        );
    }

    #[test]
    fn remove_of_an_array_element_shifts_the_rest_down() {
        let value = apply_json(
            json!({"l": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/l/0"}]),
        );
        assert_eq!(value, json!({"l": [2, 3]}));
    }

    #[test]
    fn remove_of_a_missing_field_is_a_no_op_in_both_forms() {
        let original = json!({"a": {"b": 1}, "n": 5, "l": [1]});
        for op in [
            json!({"type": "remove", "path": "x"}),
            json!({"type": "remove", "path": "a.x.y"}),
            json!({"type": "remove", "path": "n.x"}),
            json!({"op": "remove", "path": "/l/5"}),
            json!({"op": "remove", "path": "/l/-"}),
            json!({"op": "remove", "path": "/l/x"}),
        ] {
            assert_eq!(apply_json(original.clone(), json!([op])), original);
        }
    }

    #[test]
    fn remove_of_the_root_is_remove_root() {
        assert_eq!(
            code_of(json!({"a": 1}), json!([{"type": "remove", "path": ""}])),
            "remove.root"
        );
        assert_eq!(
            code_of(json!({"a": 1}), json!([{"op": "remove", "path": []}])),
            "remove.root"
        );
    }

    #[test]
    fn remove_without_a_path_is_invalid_op() {
        assert_eq!(invalid_op_index(json!([{"type": "remove"}])), 0);
    }
}
