//! `{ type: 'merge', path?, value: {...} }`: a shallow merge, like `Object.assign(target, value)`
//! in JavaScript; the root when the path is omitted or `''`.

use super::path::{kind_of, nesting_of, Path, FORBIDDEN_SEGMENTS};
use super::{OpContext, OpFields};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Copies the members of `value` onto the object at `path`: existing keys are overwritten in
/// place (keeping their order), new keys are added at the end. A missing target becomes a copy
/// of `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOp {
    /// The object to merge into; the root when omitted.
    pub path: Path,
    /// The members to copy; none may be named `__proto__`, `constructor` or `prototype`.
    pub value: Map<String, Value>,
}

impl MergeOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<MergeOp> {
        let path = fields.optional_path()?;
        let value = match fields.value()? {
            Value::Object(map) => map.clone(),
            other => {
                return Err(fields.invalid(format!(
                    "value must be an object to merge, got {}",
                    kind_of(other)
                )))
            }
        };
        if let Some(key) = forbidden_key(&value) {
            return Err(fields.proto_polluted(format!(
                "value has the key {key:?}, which could pollute a JavaScript prototype"
            )));
        }
        Ok(MergeOp { path, value })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        if let Some(key) = forbidden_key(&self.value) {
            return Err(ctx.fail(
                "path.proto_polluted",
                format!("value has the key {key:?}, which could pollute a JavaScript prototype"),
            ));
        }
        let depth = 1 + self.value.values().map(nesting_of).max().unwrap_or(0);
        ctx.check_nesting(depth)?;
        ctx.write_at(target, |mut slot| match slot.get_mut() {
            Some(Value::Object(existing)) => {
                for (key, member) in &self.value {
                    existing.insert(key.clone(), member.clone());
                }
                Ok(())
            }
            Some(other) => Err(merge_target_not_object(ctx, other)),
            None => {
                slot.put(Value::Object(self.value.clone()));
                Ok(())
            }
        })
    }
}

fn merge_target_not_object(ctx: &OpContext<'_>, target: &Value) -> Error {
    ctx.fail(
        "merge.target_not_object",
        format!("the target is {}, not an object", kind_of(target)),
    )
}

fn forbidden_key(value: &Map<String, Value>) -> Option<&str> {
    value
        .keys()
        .map(String::as_str)
        .find(|key| FORBIDDEN_SEGMENTS.contains(key))
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn merge_without_a_path_merges_into_the_root() {
        let value = apply_json(
            json!({"a": 1, "b": 2}),
            json!([{"type": "merge", "value": {"b": 3, "c": 4}}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"a":1,"b":3,"c":4}"#
        );
    }

    #[test]
    fn merge_with_an_empty_path_merges_into_the_root() {
        let value = apply_json(
            json!({"a": 1}),
            json!([{"type": "merge", "path": "", "value": {"b": 2}}]),
        );
        assert_eq!(value, json!({"a": 1, "b": 2}));
    }

    #[test]
    fn merge_is_shallow() {
        let value = apply_json(
            json!({"profile": {"name": "a", "tags": {"x": 1}}}),
            json!([{"type": "merge", "path": "profile", "value": {"tags": {"y": 2}}}]),
        );
        assert_eq!(value, json!({"profile": {"name": "a", "tags": {"y": 2}}}));
    }

    #[test]
    fn merge_into_a_missing_target_creates_the_object() {
        let value = apply_json(
            json!({}),
            json!([{"type": "merge", "path": "a.b", "value": {"x": 1}}]),
        );
        assert_eq!(value, json!({"a": {"b": {"x": 1}}}));
    }

    #[test]
    fn merge_into_a_non_object_is_target_not_object() {
        for current in [
            json!({"a": [1]}),
            json!({"a": 1}),
            json!({"a": null}),
            json!({"a": "s"}),
        ] {
            let code = code_of(
                current,
                json!([{"type": "merge", "path": "a", "value": {"x": 1}}]),
            );
            assert_eq!(code, "merge.target_not_object");
        }
        let code = code_of(json!([1]), json!([{"type": "merge", "value": {"x": 1}}]));
        assert_eq!(code, "merge.target_not_object");
    }

    #[test]
    fn merge_value_that_is_not_an_object_is_invalid_op() {
        for bad in [json!([1]), json!(1), json!(null), json!("s")] {
            assert_eq!(
                invalid_op_index(json!([{"type": "merge", "value": bad}])),
                0
            );
        }
        assert_eq!(invalid_op_index(json!([{"type": "merge", "path": "a"}])), 0);
    }

    #[test]
    fn merge_of_a_prototype_key_is_proto_polluted() {
        let code = code_of(
            json!({}),
            json!([{"type": "merge", "value": {"__proto__": {"admin": true}}}]),
        );
        assert_eq!(code, "path.proto_polluted");
    }
}
