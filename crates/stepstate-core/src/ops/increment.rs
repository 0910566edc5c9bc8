//! `{ type: 'increment' | 'decrement', path, by }` and JSON Patch `{ op: 'increment', path,
//! value }`: number arithmetic that is exact on safe integers and otherwise behaves exactly
//! like JavaScript's `+` and `-` on doubles.

use super::path::{kind_of, Path};
use super::{OpContext, OpFields, Target};
use crate::error::Result;
use serde_json::{Number, Value};

/// JavaScript's `Number.MAX_SAFE_INTEGER`, 2^53 - 1: the largest integer every step below and
/// above which is still a distinct double.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Adds `by` to the number at `path` (`increment`) or subtracts it (`decrement`, which shares
/// this type); a missing target starts from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementOp {
    /// The number to change; created (from 0) when missing.
    pub path: Path,
    /// The finite amount to add or subtract; may be negative or fractional.
    pub by: Number,
}

impl IncrementOp {
    /// Parses `{ type: 'increment' | 'decrement', path, by }`, or with `amount_field` `"value"`
    /// the JSON Patch `{ op: 'increment', path, value }`.
    pub(crate) fn from_fields(fields: &OpFields<'_>, amount_field: &str) -> Result<IncrementOp> {
        Ok(IncrementOp {
            path: fields.path()?,
            by: fields.finite_number(amount_field)?,
        })
    }

    /// Applies the op; `subtract` makes it a decrement.
    pub(crate) fn apply<'v>(
        &self,
        target: impl Into<Target<'v>>,
        ctx: &OpContext<'_>,
        subtract: bool,
    ) -> Result<()> {
        let (not_number, overflow) = if subtract {
            ("decrement.not_number", "decrement.overflow")
        } else {
            ("increment.not_number", "increment.overflow")
        };
        ctx.check_nesting(0)?;
        ctx.write_at(target, |mut slot| {
            let zero = Number::from(0);
            let current = match slot.get() {
                Some(Value::Number(current)) => current,
                Some(other) => {
                    return Err(ctx.fail(
                        not_number,
                        format!("value is {}, not a number", kind_of(other)),
                    ))
                }
                None => &zero,
            };
            let Some(result) = step(current, &self.by, subtract) else {
                return Err(ctx.fail(
                    overflow,
                    format!(
                        "{current} {} {} is beyond the largest JSON number (it would be Infinity)",
                        if subtract { '-' } else { '+' },
                        self.by
                    ),
                ));
            };
            match slot.get_mut() {
                Some(existing) => *existing = Value::Number(result),
                None => slot.put(Value::Number(result)),
            }
            Ok(())
        })
    }
}

/// An integer JSON number, widened so that sums of two never overflow.
fn as_integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

/// `current + by` (or `current - by`): exact when both are integers and the result is a safe
/// integer, else the IEEE double result JavaScript computes. `None` when that is infinite.
///
/// When either number was written as a float (`1.0`, `1.5`), the result stays one (`3.0`, not
/// `3`): JavaScript reads both alike, and Python, which tells `int` from `float`, gets back the
/// kind it stored.
pub(crate) fn step(current: &Number, by: &Number, subtract: bool) -> Option<Number> {
    let integers = (as_integer(current), as_integer(by));
    if let (Some(a), Some(b)) = integers {
        let exact = if subtract { a - b } else { a + b };
        if exact.abs() <= i128::from(MAX_SAFE_INTEGER) {
            return i64::try_from(exact).ok().map(Number::from);
        }
    }
    let a = current.as_f64()?;
    let b = by.as_f64()?;
    let result = if subtract { a - b } else { a + b };
    match integers {
        (Some(_), Some(_)) => number_from_double(result),
        _ if result.is_finite() => Number::from_f64(result),
        _ => None,
    }
}

/// The JSON number JavaScript's `JSON.stringify` would write for a double: integral values in
/// the safe range (and -0) become integers, other finite values stay doubles; infinities and
/// NaN have no JSON form and give `None`.
pub(crate) fn number_from_double(double: f64) -> Option<Number> {
    if !double.is_finite() {
        return None;
    }
    if double.fract() == 0.0 && double.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: an integral double within 2^53 converts to i64 without rounding.
        return Some(Number::from(double as i64));
    }
    Number::from_f64(double)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{apply_json, code_of, invalid_op_index};
    use serde_json::json;

    #[test]
    fn increment_on_missing_field_starts_from_zero() {
        let value = apply_json(
            json!({}),
            json!([{"type": "increment", "path": "count", "by": 5}]),
        );
        assert_eq!(value, json!({"count": 5}));
    }

    #[test]
    fn decrement_on_missing_field_starts_from_zero() {
        let value = apply_json(
            json!({}),
            json!([{"type": "decrement", "path": "a.count", "by": 2}]),
        );
        assert_eq!(value, json!({"a": {"count": -2}}));
    }

    #[test]
    fn increment_of_integers_is_exact_up_to_the_safe_limit() {
        let value = apply_json(
            json!({"n": MAX_SAFE_INTEGER - 1}),
            json!([{"type": "increment", "path": "n", "by": 1}]),
        );
        assert_eq!(value, json!({"n": MAX_SAFE_INTEGER}));
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"n":9007199254740991}"#
        );
    }

    #[test]
    fn increment_past_the_safe_limit_behaves_as_javascript_doubles() {
        let value = apply_json(
            json!({"n": MAX_SAFE_INTEGER}),
            json!([{"type": "increment", "path": "n", "by": 2}]),
        );
        // In JavaScript 9007199254740991 + 2 === 9007199254740992.
        assert_eq!(value["n"].as_f64(), Some(9_007_199_254_740_992.0));
    }

    #[test]
    fn floats_stay_floats_as_in_javascript() {
        let value = apply_json(
            json!({"x": 0.1}),
            json!([{"type": "increment", "path": "x", "by": 0.2}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"x":0.30000000000000004}"#
        );
    }

    #[test]
    fn an_integral_float_result_stays_a_float() {
        // JavaScript reads 1.0 as 1; Python reads it as the float it stored.
        let value = apply_json(
            json!({"x": 0.5}),
            json!([{"type": "increment", "path": "x", "by": 0.5}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"x":1.0}"#
        );
        let value = apply_json(
            json!({"x": 1.0}),
            json!([{"type": "increment", "path": "x", "by": 1}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"x":2.0}"#
        );
    }

    #[test]
    fn integers_stay_integers() {
        let value = apply_json(
            json!({"x": 1}),
            json!([{"type": "increment", "path": "x", "by": 2}]),
        );
        assert_eq!(
            serde_json::to_string(&value).expect("serializes"),
            r#"{"x":3}"#
        );
    }

    #[test]
    fn negative_and_fractional_amounts_work() {
        let value = apply_json(
            json!({"a": 10, "b": 1}),
            json!([
                {"type": "increment", "path": "a", "by": -3},
                {"type": "decrement", "path": "b", "by": 0.25}
            ]),
        );
        assert_eq!(value, json!({"a": 7, "b": 0.75}));
    }

    #[test]
    fn json_patch_increment_takes_its_amount_from_value() {
        let value = apply_json(
            json!({"a": {"n": 1}}),
            json!([{"op": "increment", "path": "/a/n", "value": 2}]),
        );
        assert_eq!(value, json!({"a": {"n": 3}}));
    }

    #[test]
    fn increment_of_a_string_is_not_number() {
        let code = code_of(
            json!({"paid": "yes"}),
            json!([{"type": "increment", "path": "paid", "by": 1}]),
        );
        assert_eq!(code, "increment.not_number");
        let code = code_of(
            json!({"paid": null}),
            json!([{"type": "decrement", "path": "paid", "by": 1}]),
        );
        assert_eq!(code, "decrement.not_number");
    }

    #[test]
    fn increment_message_names_the_op_and_path() {
        let ops = crate::ops::parse_ops(
            r#"[{"type":"set","path":"a","value":1},{"type":"set","path":"b","value":1},
                {"type":"increment","path":"paid","by":1}]"#,
        )
        .expect("parses");
        let mut value = json!({"paid": "no"});
        let err = crate::ops::apply_ops(&mut value, &ops).expect_err("fails");
        assert_eq!(
            err.to_string(),
            r#"op 2 (increment at "paid"): value is a string, not a number"#
        );
        assert_eq!(err.op_index(), Some(2));
    }

    #[test]
    fn increment_that_overflows_to_infinity_is_refused() {
        let code = code_of(
            json!({"x": 1e308}),
            json!([{"type": "increment", "path": "x", "by": 1e308}]),
        );
        assert_eq!(code, "increment.overflow");
        let code = code_of(
            json!({"x": -1e308}),
            json!([{"type": "decrement", "path": "x", "by": 1e308}]),
        );
        assert_eq!(code, "decrement.overflow");
    }

    #[test]
    fn increment_at_the_root_of_a_number_works() {
        let value = apply_json(
            json!(1),
            json!([{"type": "increment", "path": "", "by": 1}]),
        );
        assert_eq!(value, json!(2));
    }

    #[test]
    fn increment_with_a_missing_or_non_finite_amount_is_invalid_op() {
        for op in [
            json!({"type": "increment", "path": "a"}),
            json!({"type": "increment", "path": "a", "by": null}),
            json!({"type": "increment", "path": "a", "by": "1"}),
            json!({"type": "decrement", "path": "a", "by": true}),
            json!({"op": "increment", "path": "/a", "by": 1}),
            json!({"op": "increment", "path": "/a", "value": null}),
        ] {
            assert_eq!(
                invalid_op_index(json!([{"type": "set", "path": "z", "value": 0}, op])),
                1
            );
        }
    }

    #[test]
    fn large_unsigned_integers_fall_back_to_doubles() {
        let current = Number::from(u64::MAX);
        let result = step(&current, &Number::from(1), false).expect("finite");
        assert_eq!(result.as_f64(), Some(u64::MAX as f64 + 1.0));
    }

    #[test]
    fn increment_reaches_array_elements_and_appends_at_dash() {
        let value = apply_json(
            json!({"l": [1, 2]}),
            json!([
                {"op": "increment", "path": "/l/1", "value": 10},
                {"type": "increment", "path": "/l/-", "by": 3}
            ]),
        );
        assert_eq!(value, json!({"l": [1, 12, 3]}));
    }
}
