//! `{ type: 'append', path?, value }`: pushes onto an array, or concatenates onto a string;
//! the root when the path is omitted or `''`.

use super::path::{kind_of, nesting_of, Path};
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::Value;

/// Pushes `value` as one element onto the array at `path` (an array value is pushed whole, not
/// spread), or appends it to the string there when both are strings. A missing target becomes
/// `[value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendOp {
    /// The array or string to extend; the root when omitted.
    pub path: Path,
    /// The element to push, or the string to concatenate.
    pub value: Value,
}

impl AppendOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<AppendOp> {
        Ok(AppendOp {
            path: fields.optional_path()?,
            value: fields.value()?.clone(),
        })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        ctx.check_nesting(1 + nesting_of(&self.value))?;
        ctx.write_at(target, |mut slot| match (slot.get_mut(), &self.value) {
            (Some(Value::Array(items)), value) => {
                items.push(value.clone());
                Ok(())
            }
            (Some(Value::String(text)), Value::String(tail)) => {
                text.push_str(tail);
                Ok(())
            }
            (Some(Value::String(_)), value) => Err(ctx.fail(
                "append.type_mismatch",
                format!(
                    "cannot append {} to a string (only a string)",
                    kind_of(value)
                ),
            )),
            (Some(other), _) => Err(ctx.fail(
                "append.type_mismatch",
                format!("the target is {}, not an array or a string", kind_of(other)),
            )),
            (None, value) => {
                slot.put(Value::Array(vec![value.clone()]));
                Ok(())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn append_pushes_onto_an_array() {
        let value = apply_json(
            json!({"log": [1]}),
            json!([{"type": "append", "path": "log", "value": 2}]),
        );
        assert_eq!(value, json!({"log": [1, 2]}));
    }

    #[test]
    fn append_of_an_array_pushes_it_as_one_element() {
        let value = apply_json(
            json!({"log": [1]}),
            json!([{"type": "append", "path": "log", "value": [2, 3]}]),
        );
        assert_eq!(value, json!({"log": [1, [2, 3]]}));
    }

    #[test]
    fn append_of_a_string_onto_a_string_concatenates() {
        let value = apply_json(
            json!({"s": "ab"}),
            json!([{"type": "append", "path": "s", "value": "cd"}]),
        );
        assert_eq!(value, json!({"s": "abcd"}));
    }

    #[test]
    fn append_to_a_missing_target_creates_a_one_element_array() {
        let value = apply_json(
            json!({}),
            json!([{"type": "append", "path": "a.log", "value": "x"}]),
        );
        assert_eq!(value, json!({"a": {"log": ["x"]}}));
    }

    #[test]
    fn append_without_a_path_pushes_onto_a_root_array() {
        let value = apply_json(json!([1]), json!([{"type": "append", "value": 2}]));
        assert_eq!(value, json!([1, 2]));
    }

    #[test]
    fn append_to_an_object_root_is_type_mismatch() {
        assert_eq!(
            code_of(json!({}), json!([{"type": "append", "value": 1}])),
            "append.type_mismatch"
        );
    }

    #[test]
    fn append_of_a_non_string_onto_a_string_is_type_mismatch() {
        let code = code_of(
            json!({"s": "ab"}),
            json!([{"type": "append", "path": "s", "value": 1}]),
        );
        assert_eq!(code, "append.type_mismatch");
    }

    #[test]
    fn append_to_a_number_null_or_object_is_type_mismatch() {
        for current in [
            json!({"a": 1}),
            json!({"a": null}),
            json!({"a": {}}),
            json!({"a": true}),
        ] {
            let code = code_of(
                current,
                json!([{"type": "append", "path": "a", "value": 1}]),
            );
            assert_eq!(code, "append.type_mismatch");
        }
    }

    #[test]
    fn append_without_a_value_is_invalid_op() {
        assert_eq!(
            invalid_op_index(json!([{"type": "append", "path": "a"}])),
            0
        );
    }
}
