//! `{ type: 'test', path, value }` and JSON Patch `{ op: 'test', path, value }`: a precondition
//! that makes an update conditional (compare-and-set).

use super::path::{locate, Path, Walk};
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::{Number, Value};

/// Fails the update with `test.failed` unless the value at `path` deep-equals `value`.
///
/// Equality is JSON equality as JavaScript sees it: object key order does not matter, numbers
/// compare by value (`1` equals `1.0`). A missing field equals nothing, not even `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOp {
    /// What to compare; the root compares the whole value.
    pub path: Path,
    /// The expected JSON.
    pub value: Value,
}

impl TestOp {
    pub(crate) fn from_fields(fields: &OpFields<'_>) -> Result<TestOp> {
        Ok(TestOp {
            path: fields.path()?,
            value: fields.value()?.clone(),
        })
    }

    pub(crate) fn apply(&self, target: &mut Value, ctx: &OpContext<'_>) -> Result<()> {
        let found = match locate(target, &self.path, Walk::Existing) {
            Ok(Some(slot)) => slot.get().cloned(),
            _ => None,
        };
        match found {
            Some(actual) if json_equal(&actual, &self.value) => Ok(()),
            Some(actual) => Err(ctx.fail(
                "test.failed",
                format!(
                    "value is {}, expected {}",
                    preview(&actual),
                    preview(&self.value)
                ),
            )),
            None => Err(ctx.fail(
                "test.failed",
                format!("nothing is there, expected {}", preview(&self.value)),
            )),
        }
    }
}

/// Deep JSON equality as JavaScript's structural comparison would see it: key order ignored,
/// numbers compared by value.
pub(crate) fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, x)| b.get(key).is_some_and(|y| json_equal(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Integers compare exactly; anything else by double value.
fn numbers_equal(a: &Number, b: &Number) -> bool {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// Compact JSON of a value for a message, cut to a readable length.
fn preview(value: &Value) -> String {
    const LIMIT: usize = 80;
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.len() <= LIMIT {
        return text;
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn test_that_matches_lets_the_next_ops_apply() {
        let value = apply_json(
            json!({"status": "pending"}),
            json!([
                {"type": "test", "path": "status", "value": "pending"},
                {"type": "set", "path": "status", "value": "paid"}
            ]),
        );
        assert_eq!(value, json!({"status": "paid"}));
    }

    #[test]
    fn test_that_differs_is_test_failed_with_both_values_in_the_message() {
        let ops = crate::ops::parse_ops(r#"[{"type":"test","path":"status","value":"pending"}]"#)
            .expect("parses");
        let mut value = json!({"status": "paid"});
        let err = crate::ops::apply_ops(&mut value, &ops).expect_err("fails");
        assert_eq!(err.code(), "test.failed");
        assert_eq!(
            err.to_string(),
            r#"op 0 (test at "status"): value is "paid", expected "pending""#
        );
    }

    #[test]
    fn a_missing_field_equals_nothing_not_even_null() {
        let code = code_of(
            json!({}),
            json!([{"type": "test", "path": "a", "value": null}]),
        );
        assert_eq!(code, "test.failed");
        let code = code_of(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a/b", "value": null}]),
        );
        assert_eq!(code, "test.failed");
    }

    #[test]
    fn a_present_null_equals_null() {
        apply_json(
            json!({"a": null}),
            json!([{"type": "test", "path": "a", "value": null}]),
        );
    }

    #[test]
    fn deep_equality_ignores_key_order_and_number_spelling() {
        apply_json(
            json!({"a": {"x": 1, "y": [1.0, {"z": true}]}}),
            json!([{"op": "test", "path": "/a", "value": {"y": [1, {"z": true}], "x": 1.0}}]),
        );
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!(0), &json!(false)));
    }

    #[test]
    fn test_of_the_root_compares_the_whole_value() {
        apply_json(
            json!({"a": 1}),
            json!([{"type": "test", "path": "", "value": {"a": 1}}]),
        );
        assert_eq!(
            code_of(
                json!({"a": 1}),
                json!([{"type": "test", "path": "", "value": {}}])
            ),
            "test.failed"
        );
    }

    #[test]
    fn test_without_a_value_is_invalid_op() {
        assert_eq!(invalid_op_index(json!([{"type": "test", "path": "a"}])), 0);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);
        assert!(preview(&json!(long)).len() < 100);
        let wide = "é".repeat(100);
        assert!(preview(&json!(wide)).ends_with("..."));
    }
}
