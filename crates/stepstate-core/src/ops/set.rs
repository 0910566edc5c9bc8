//! `{ type: 'set', path, value }`: writes a value at a path, creating missing intermediate
//! objects; at the root it replaces the whole value.

use super::path::{nesting_of, Path, Slot};
use super::{OpContext, OpFields, Target};
use crate::error::Result;
use serde_json::Value;

/// Writes `value` at `path`: an object member is inserted or replaced (keeping its place in key
/// order), an existing array element is replaced, and `-` or an index equal to the array's
/// length appends.
#[derive(Debug, Clone, PartialEq)]
pub struct SetOp {
    /// Where to write; the root replaces the whole value with any JSON.
    pub path: Path,
    /// The JSON written there.
    pub value: Value,
}

impl SetOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<SetOp> {
        Ok(SetOp {
            path: fields.path()?,
            value: fields.value()?.clone(),
        })
    }

    pub(crate) fn apply<'v>(
        &self,
        target: impl Into<Target<'v>>,
        ctx: &OpContext<'_>,
    ) -> Result<()> {
        write_value(target, ctx, &self.value, Slot::put)
    }
}

/// Writes a copy of `value` at the op's path with `place` ([`Slot::put`] for `set`,
/// [`Slot::insert`] for `add`), after checking that the result stays within
/// [`super::path::MAX_NESTING`].
pub(super) fn write_value<'v>(
    target: impl Into<Target<'v>>,
    ctx: &OpContext<'_>,
    value: &Value,
    place: fn(Slot<'v>, Value),
) -> Result<()> {
    ctx.check_nesting(nesting_of(value))?;
    ctx.write_at(target, |slot| {
        place(slot, value.clone());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of};
    use serde_json::json;

    #[test]
    fn set_writes_a_nested_field_and_creates_intermediates() {
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": "a.b", "value": 1}]),
        );
        assert_eq!(value, json!({"a": {"b": 1}}));
    }

    #[test]
    fn set_at_the_root_replaces_the_whole_value_with_any_json() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"type": "set", "path": "", "value": [1, 2]}]),
        );
        assert_eq!(value, json!([1, 2]));
        let value = apply_json(
            json!({"a": 1}),
            json!([{"type": "set", "path": [], "value": null}]),
        );
        assert_eq!(value, json!(null));
    }

    #[test]
    fn set_replacing_a_field_keeps_its_place_in_key_order() {
        let value = apply_json(
            json!({"a": 1, "b": 2, "c": 3}),
            json!([{"type": "set", "path": "b", "value": 20}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"a":1,"b":20,"c":3}"#
        );
    }

    #[test]
    fn set_on_an_array_index_replaces_and_at_length_appends() {
        let value = apply_json(
            json!({"items": [1, 2]}),
            json!([
                {"type": "set", "path": "items.0", "value": 10},
                {"type": "set", "path": "items.2", "value": 3},
                {"type": "set", "path": "/items/-", "value": 4}
            ]),
        );
        assert_eq!(value, json!({"items": [10, 2, 3, 4]}));
    }

    #[test]
    fn set_past_the_end_of_an_array_is_index_out_of_range() {
        let code = code_of(
            json!({"items": [1]}),
            json!([{"type": "set", "path": "items.5", "value": 0}]),
        );
        assert_eq!(code, "path.index_out_of_range");
    }

    #[test]
    fn set_with_a_word_on_an_array_is_invalid_index() {
        let code = code_of(
            json!({"items": [1]}),
            json!([{"type": "set", "path": "items.x", "value": 0}]),
        );
        assert_eq!(code, "path.invalid_index");
    }

    #[test]
    fn set_through_a_scalar_or_null_is_not_container() {
        let code = code_of(
            json!({"a": "text"}),
            json!([{"type": "set", "path": "a.b", "value": 0}]),
        );
        assert_eq!(code, "path.not_container");
        let code = code_of(
            json!({"a": null}),
            json!([{"type": "set", "path": "a.b", "value": 0}]),
        );
        assert_eq!(code, "path.not_container");
    }

    #[test]
    fn set_through_an_array_element_reaches_inside_it() {
        let value = apply_json(
            json!({"items": [{"n": 1}]}),
            json!([{"type": "set", "path": ["items", "0", "n"], "value": 2}]),
        );
        assert_eq!(value, json!({"items": [{"n": 2}]}));
    }

    #[test]
    fn set_with_a_key_containing_a_dot_uses_an_array_path() {
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": ["a.b"], "value": 1}]),
        );
        assert_eq!(value, json!({"a.b": 1}));
    }

    #[test]
    fn set_that_would_nest_too_deep_is_path_too_deep() {
        let path: Vec<String> = (0..super::super::path::MAX_NESTING)
            .map(|i| format!("k{i}"))
            .collect();
        let code = code_of(
            json!({}),
            json!([{"type": "set", "path": path, "value": {}}]),
        );
        assert_eq!(code, "path.too_deep");
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": path, "value": 1}]),
        );
        assert!(value.is_object());
    }

    #[test]
    fn set_through_dash_appends_a_new_object_to_fill_in() {
        let value = apply_json(
            json!({"items": [{"n": 1}]}),
            json!([{"type": "set", "path": "/items/-/n", "value": 2}]),
        );
        assert_eq!(value, json!({"items": [{"n": 1}, {"n": 2}]}));
    }

    #[test]
    fn set_through_an_index_past_the_end_is_index_out_of_range() {
        let code = code_of(
            json!({"items": []}),
            json!([{"type": "set", "path": "items.3.n", "value": 2}]),
        );
        assert_eq!(code, "path.index_out_of_range");
    }

    #[test]
    fn set_with_a_pointer_reaches_empty_and_slashed_keys() {
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": "/", "value": 1}, {"type": "set", "path": "/a~1b", "value": 2}]),
        );
        assert_eq!(value, json!({"": 1, "a/b": 2}));
    }

    #[test]
    fn set_creates_objects_not_arrays_for_numeric_segments() {
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": "a.0", "value": 1}]),
        );
        assert_eq!(value, json!({"a": {"0": 1}}));
    }

    #[test]
    fn walk_errors_name_the_op_the_path_and_the_obstacle() {
        let ops =
            crate::ops::parse_ops(r#"[{"type":"set","path":"a.b.c","value":1}]"#).expect("parses");
        let mut value = json!({"a": {"b": 7}});
        let err = crate::ops::apply_ops(&mut value, &ops).expect_err("fails");
        assert_eq!(
            err.to_string(),
            r#"op 0 (set at "a.b.c"): cannot reach "c": the value at "a.b" is a number, not an object or array"#
        );
    }
}
