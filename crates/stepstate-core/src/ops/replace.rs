//! JSON Patch `{ op: 'replace', path, value }` (RFC 6902 section 4.3): overwrites a value that
//! must already exist.

use super::path::{locate, nesting_of, Path, Walk};
use super::{OpContext, OpFields};
use crate::error::Result;
use serde_json::Value;

/// Replaces the existing value at `path` (the root included); a missing target fails with
/// `replace.missing`, as RFC 6902 requires, and nothing is created.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaceOp {
    /// What to overwrite; it must exist.
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
        ctx.check_nesting(nesting_of(&self.value))?;
        let existing = match locate(target, &self.path, Walk::Existing) {
            Ok(Some(mut slot)) => slot
                .get_mut()
                .map(|existing| *existing = self.value.clone()),
            _ => None,
        };
        existing.ok_or_else(|| {
            ctx.fail(
                "replace.missing",
                "nothing is there to replace (use add or set to create it)",
            )
        })
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
    fn replace_of_a_missing_target_is_replace_missing() {
        for path in ["/x", "/a/b", "/l/2", "/l/-", "/x/y/z"] {
            let code = code_of(
                json!({"a": 1, "l": [1, 2]}),
                json!([{"op": "replace", "path": path, "value": 0}]),
            );
            assert_eq!(code, "replace.missing", "{path}");
        }
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
