//! The UpdateOp engine: parses the op list of `update(group, key, ops)` (the JSON text of
//! `JSON.stringify(ops)`) into [`UpdateOp`]s, and applies them in order to a parsed value. It
//! owns the op semantics of SPEC "UpdateOp"; the engine owns atomicity, since it applies the ops
//! to a fresh copy and keeps the copy only if [`apply_ops`] returns `Ok`. One file per op, plus
//! [`path`] for path parsing and walking.
//!
//! # Op forms
//!
//! `{type:'set'|'merge'|'increment'|'decrement'|'append'|'remove'|'test', ...}` and the JSON
//! Patch forms `{op:'add'|'replace'|'test'|'remove'|'increment', ...}`; the fields of each are
//! on its type ([`SetOp`], [`MergeOp`], [`IncrementOp`], [`AppendOp`], [`RemoveOp`],
//! [`TestOp`], [`AddOp`], [`ReplaceOp`]). Unknown extra fields are ignored. Every form accepts
//! every path spelling (a dotted string, an array of segments, a JSON Pointer).
//!
//! # Error codes
//!
//! Parsing ([`parse_ops`]) checks every op before any is applied, so a malformed op anywhere
//! fails the update even when an earlier `test` would also fail:
//! - `INVALID_ARGUMENT` ([`Error::InvalidArgument`]): the text is not JSON or not an array.
//! - `path.too_deep` (with `opIndex`): an op nested too deep for the JSON parser (128 levels),
//!   which is deeper than any value may be ([`path::MAX_NESTING`]).
//! - `INVALID_OP` (with `opIndex`): an op that is not an object; both or neither of `type` and
//!   `op`, or one that is not a string; an unknown name (`{op:'set'}` and `{type:'add'}` are
//!   unknown too, with a hint); a missing path where one is required; a path that is not a
//!   string or an array of strings; a JSON Pointer with an escape other than `~0`/`~1`; a
//!   dotted path with an empty segment (`'a..b'`, `'a.'`); a missing `value` where required
//!   (`undefined` is dropped by `JSON.stringify`, so use `null`); a `by` (or JSON Patch
//!   increment `value`) that is missing or not a number (NaN and ±Infinity arrive as `null`);
//!   a merge `value` that is not an object.
//! - `path.proto_polluted`: a path segment, or a key of a merge value, that is `__proto__`,
//!   `constructor` or `prototype`.
//!
//! Applying ([`apply_ops`]) stops at the first op that cannot apply:
//! - `path.not_container`: a write walks into (or below) a string, number, boolean or null.
//! - `path.invalid_index`: a write uses a segment that is not an index (`'x'`, `'01'`, `'-1'`)
//!   on an array.
//! - `path.index_out_of_range`: a write uses an index past the end of an array (an index equal
//!   to the length, or `-`, appends).
//! - `path.too_deep`: the written value would end up nested deeper than
//!   [`path::MAX_NESTING`] objects/arrays, which could not be read back.
//! - `VALUE_TOO_LARGE` ([`Error::TooLongToReadBack`]): the result's JSON text is longer than
//!   [`MAX_VALUE_TEXT_BYTES`], which could not be read back.
//! - `increment.not_number` / `decrement.not_number`: the target exists and is not a number.
//! - `increment.overflow` / `decrement.overflow`: the double result is ±Infinity (e.g.
//!   `1e308 + 1e308`), which JSON cannot hold.
//! - `merge.target_not_object`: the merge target exists and is not an object (arrays and null
//!   included).
//! - `append.type_mismatch`: the append target is neither an array nor a string, or it is a
//!   string and the value is not.
//! - `remove.root`: a remove of the root (`''` or `[]`); use `delete(group, key)` instead.
//! - `test.failed`: the value at the path is not deep-equal to the expected value, or nothing
//!   is there.
//!
//! Messages name the op: `op 2 (increment at "paid"): value is a string, not a number`.
//!
//! # Decisions where SPEC is silent
//!
//! - Reads never fail on their path: `remove` of anything missing (a missing member, an
//!   index past the end, a path through a scalar) is a no-op in both forms, and `test` of it
//!   fails with `test.failed`.
//! - Writes create missing intermediates as objects (`set 'a.0'` on `{}` gives
//!   `{"a":{"0":...}}`), never arrays; on an existing array an intermediate `-` or index equal
//!   to the length appends a new `{}`.
//! - `set` on an array index replaces that element; `add` inserts before it (RFC 6902).
//!   Both append at `-` or at the length, and both create missing intermediates (RFC 6902 would
//!   require the parent to exist).
//! - JSON Patch `replace` writes exactly as `set` does: of a missing member it sets it (RFC 6902
//!   would fail), since the documented examples use it that way (a login `replace`s a
//!   `last_login` the user was created without). A `test` before it is the strict
//!   precondition.
//! - Removing an array element shifts the later ones down (like `splice`), leaving no hole;
//!   removing or merging object members keeps the order of the other keys.
//! - `append` pushes its value as one element even when it is an array; a missing target
//!   becomes `[value]`, even for a string value; `null` is a value, not a missing target.
//! - Numbers: integer arithmetic is exact while the result is a safe integer
//!   (±(2^53 − 1)); otherwise it is the double arithmetic JavaScript does. A double result that
//!   is integral and safe is written as an integer (`0.5 + 0.5` is stored as `1`, `-0` as `0`),
//!   so the stored text is what `JSON.stringify` would have written.
//! - `test` equality ignores object key order and compares numbers by value (`1` equals
//!   `1.0`).
//! - A merge value's keys are checked against the prototype names like path segments; the
//!   values written by `set`, `add`, `append` and `merge` are not searched for such keys.

pub mod add;
pub mod append;
pub mod increment;
pub mod merge;
pub mod partial;
pub mod path;
pub mod remove;
pub mod replace;
pub mod set;
pub mod test;

pub use add::AddOp;
pub use append::AppendOp;
pub use increment::IncrementOp;
pub use merge::MergeOp;
pub use partial::{apply_to_text, apply_to_text_with_members, Applied};
pub use path::Path;
pub use remove::RemoveOp;
pub use replace::ReplaceOp;
pub use set::SetOp;
pub use test::TestOp;

use crate::error::{Error, Result};
use path::{kind_of, PathProblem, MAX_NESTING};
use serde_json::{Map, Number, Value};

/// One parsed update op, ready to apply. Both spellings of an op (`{type:'test'}` and
/// `{op:'test'}`, `{type:'remove'}` and `{op:'remove'}`, `{type:'increment', by}` and
/// `{op:'increment', value}`) parse to the same variant, since they behave the same.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOp {
    /// `{ type: 'set', path, value }`.
    Set(SetOp),
    /// `{ type: 'merge', path?, value }`.
    Merge(MergeOp),
    /// `{ type: 'increment', path, by }` or `{ op: 'increment', path, value }`.
    Increment(IncrementOp),
    /// `{ type: 'decrement', path, by }`: subtracts `by`.
    Decrement(IncrementOp),
    /// `{ type: 'append', path?, value }`.
    Append(AppendOp),
    /// `{ type: 'remove', path }` or `{ op: 'remove', path }`.
    Remove(RemoveOp),
    /// `{ type: 'test', path, value }` or `{ op: 'test', path, value }`.
    Test(TestOp),
    /// `{ op: 'add', path, value }`.
    Add(AddOp),
    /// `{ op: 'replace', path, value }`.
    Replace(ReplaceOp),
}

impl UpdateOp {
    /// The op's name as messages show it: `set`, `merge`, `increment`, ...
    pub fn name(&self) -> &'static str {
        match self {
            UpdateOp::Set(_) => "set",
            UpdateOp::Merge(_) => "merge",
            UpdateOp::Increment(_) => "increment",
            UpdateOp::Decrement(_) => "decrement",
            UpdateOp::Append(_) => "append",
            UpdateOp::Remove(_) => "remove",
            UpdateOp::Test(_) => "test",
            UpdateOp::Add(_) => "add",
            UpdateOp::Replace(_) => "replace",
        }
    }

    /// The path the op acts on (the root for a merge or append without one).
    pub fn path(&self) -> &Path {
        match self {
            UpdateOp::Set(op) => &op.path,
            UpdateOp::Merge(op) => &op.path,
            UpdateOp::Increment(op) | UpdateOp::Decrement(op) => &op.path,
            UpdateOp::Append(op) => &op.path,
            UpdateOp::Remove(op) => &op.path,
            UpdateOp::Test(op) => &op.path,
            UpdateOp::Add(op) => &op.path,
            UpdateOp::Replace(op) => &op.path,
        }
    }

    /// Applies this op, the `op_index`-th of its list, to `value`. On error `value` may be
    /// partly changed; callers apply to a copy (see [`apply_ops`]).
    pub fn apply(&self, value: &mut Value, op_index: usize) -> Result<()> {
        let ctx = self.context(op_index);
        match self {
            UpdateOp::Set(op) => op.apply(value, &ctx),
            UpdateOp::Merge(op) => op.apply(value, &ctx),
            UpdateOp::Increment(op) => op.apply(value, &ctx, false),
            UpdateOp::Decrement(op) => op.apply(value, &ctx, true),
            UpdateOp::Append(op) => op.apply(value, &ctx),
            UpdateOp::Remove(op) => op.apply(value, &ctx),
            UpdateOp::Test(op) => op.apply(value, &ctx),
            UpdateOp::Add(op) => op.apply(value, &ctx),
            UpdateOp::Replace(op) => op.apply(value, &ctx),
        }
    }

    /// The top-level member this op writes, when that is all it does: a `set`, `increment` or
    /// `decrement` whose path is one segment.
    pub(crate) fn member_written(&self) -> Option<&str> {
        let path = match self {
            UpdateOp::Set(op) => &op.path,
            UpdateOp::Increment(op) | UpdateOp::Decrement(op) => &op.path,
            _ => return None,
        };
        match path.segments() {
            [name] => Some(name),
            _ => None,
        }
    }

    /// [`UpdateOp::apply`] of an op that writes one member (see [`UpdateOp::member_written`]) to
    /// that member held apart from its object (`None`: absent): the same code as on the object,
    /// with the same outcome and errors. Any other op fails with `INVALID_VALUE`.
    pub(crate) fn apply_to_member(
        &self,
        member: &mut Option<Value>,
        op_index: usize,
    ) -> Result<()> {
        let ctx = self.context(op_index);
        let one_member = self.member_written().is_some();
        match self {
            UpdateOp::Set(op) if one_member => op.apply(member, &ctx),
            UpdateOp::Increment(op) if one_member => op.apply(member, &ctx, false),
            UpdateOp::Decrement(op) if one_member => op.apply(member, &ctx, true),
            _ => Err(Error::InvalidValue(format!(
                "op {op_index} ({}) does not write one member only",
                self.name()
            ))),
        }
    }

    fn context(&self, op_index: usize) -> OpContext<'_> {
        OpContext {
            index: op_index,
            name: self.name(),
            path: self.path(),
        }
    }
}

/// The largest JSON text, in bytes of UTF-8, of a value a store keeps: half of V8's largest
/// string (2^29 − 24 units), less the 3 bytes of `[,]`, so that a value, and an update's new and
/// old values together, can always be handed back to JavaScript (which turns UTF-8 of more than
/// 2^29 − 24 bytes into no string at all). The result of an `update` longer than this fails with
/// `VALUE_TOO_LARGE`; the Node.js binding checks `set` against the same number.
pub const MAX_VALUE_TEXT_BYTES: usize = ((1 << 29) - 24 - 3) / 2;

/// Parses `ops_json`, the text of `JSON.stringify(ops)`, into ops, checking every op before
/// returning (see the module docs for the codes).
pub fn parse_ops(ops_json: &str) -> Result<Vec<UpdateOp>> {
    let parsed: Value = serde_json::from_str(ops_json).map_err(|err| {
        if err.to_string().starts_with("recursion limit exceeded") {
            too_deep_op(ops_json)
        } else {
            Error::InvalidArgument(format!("ops is not valid JSON: {err}"))
        }
    })?;
    let Value::Array(items) = parsed else {
        return Err(Error::InvalidArgument(format!(
            "ops must be an array of update ops, got {}",
            kind_of(&parsed)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, raw)| parse_op(index, raw))
        .collect()
}

/// The `path.too_deep` error of the first op in `ops_json` (an array) nested deeper than
/// serde_json parses (128 levels), which is deeper than any value may be
/// ([`MAX_NESTING`]): the op's position is found by walking the text, on this error path only.
fn too_deep_op(ops_json: &str) -> Error {
    let (mut depth, mut index, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in ops_json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                // The op list is depth 1, an op object depth 2, its value's containers below.
                if depth > MAX_NESTING + 2 {
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => index += 1,
            _ => {}
        }
    }
    Error::op(
        "path.too_deep",
        index,
        format!(
            "op {index}: nests objects/arrays more than {MAX_NESTING} deep, more than a stored value may have"
        ),
    )
}

/// How many distinct op lists [`parse_ops_cached`] keeps per thread before starting over.
pub const PARSED_OPS_CACHE: usize = 256;

thread_local! {
    static PARSED_OPS: std::cell::RefCell<
        std::collections::HashMap<Box<str>, std::sync::Arc<[UpdateOp]>, foldhash::fast::RandomState>,
    > = std::cell::RefCell::default();
}

/// [`parse_ops`] with a per-thread cache keyed by the JSON text: workflow handlers send the
/// same few op lists over and over, and a lookup costs a fraction of a parse. Only lists that
/// parse are kept; the cache empties itself when it reaches [`PARSED_OPS_CACHE`] entries.
pub fn parse_ops_cached(ops_json: &str) -> Result<std::sync::Arc<[UpdateOp]>> {
    if let Some(ops) = PARSED_OPS.with(|cache| cache.borrow().get(ops_json).cloned()) {
        return Ok(ops);
    }
    let ops: std::sync::Arc<[UpdateOp]> = parse_ops(ops_json)?.into();
    PARSED_OPS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= PARSED_OPS_CACHE {
            cache.clear();
        }
        cache.insert(Box::from(ops_json), ops.clone());
    });
    Ok(ops)
}

/// Applies `ops` in order to `value`, stopping at (and returning) the first error. On error
/// `value` may hold the effects of the earlier ops: callers apply to a copy and drop it.
pub fn apply_ops(value: &mut Value, ops: &[UpdateOp]) -> Result<()> {
    for (index, op) in ops.iter().enumerate() {
        op.apply(value, index)?;
    }
    Ok(())
}

/// Names accepted in `type`.
const TYPE_NAMES: [&str; 7] = [
    "set",
    "merge",
    "increment",
    "decrement",
    "append",
    "remove",
    "test",
];
/// Names accepted in `op` (JSON Patch style).
const PATCH_NAMES: [&str; 5] = ["add", "replace", "test", "remove", "increment"];

fn parse_op(index: usize, raw: &Value) -> Result<UpdateOp> {
    let Value::Object(object) = raw else {
        return Err(Error::invalid_op(
            index,
            format!(
                "op {index}: must be an object such as {{\"type\":\"set\",\"path\":\"a\",\"value\":1}}, got {}",
                kind_of(raw)
            ),
        ));
    };
    let (patch_form, name) = match (object.get("type"), object.get("op")) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_op(
                index,
                format!("op {index}: has both \"type\" and \"op\"; give one"),
            ))
        }
        (None, None) => {
            return Err(Error::invalid_op(
                index,
                format!("op {index}: has neither \"type\" nor \"op\""),
            ))
        }
        (Some(Value::String(name)), None) => (false, name.as_str()),
        (None, Some(Value::String(name))) => (true, name.as_str()),
        (Some(other), None) | (None, Some(other)) => {
            let field = if object.contains_key("type") {
                "type"
            } else {
                "op"
            };
            return Err(Error::invalid_op(
                index,
                format!(
                    "op {index}: \"{field}\" must be a string, got {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let fields = OpFields {
        index,
        name,
        object,
    };
    let op = match (patch_form, name) {
        (false, "set") => UpdateOp::Set(SetOp::from_fields(&fields)?),
        (false, "merge") => UpdateOp::Merge(MergeOp::from_fields(&fields)?),
        (false, "increment") => UpdateOp::Increment(IncrementOp::from_fields(&fields, "by")?),
        (false, "decrement") => UpdateOp::Decrement(IncrementOp::from_fields(&fields, "by")?),
        (false, "append") => UpdateOp::Append(AppendOp::from_fields(&fields)?),
        (false, "remove") | (true, "remove") => UpdateOp::Remove(RemoveOp::from_fields(&fields)?),
        (false, "test") | (true, "test") => UpdateOp::Test(TestOp::from_fields(&fields)?),
        (true, "add") => UpdateOp::Add(AddOp::from_fields(&fields)?),
        (true, "replace") => UpdateOp::Replace(ReplaceOp::from_fields(&fields)?),
        (true, "increment") => UpdateOp::Increment(IncrementOp::from_fields(&fields, "value")?),
        (patch_form, unknown) => return Err(unknown_name(index, patch_form, unknown)),
    };
    Ok(op)
}

fn unknown_name(index: usize, patch_form: bool, name: &str) -> Error {
    let shown: String = name.chars().take(40).collect();
    let (field, known, other_field, other_known) = if patch_form {
        ("op", &PATCH_NAMES[..], "type", &TYPE_NAMES[..])
    } else {
        ("type", &TYPE_NAMES[..], "op", &PATCH_NAMES[..])
    };
    let hint = if other_known.contains(&name) {
        format!(" (did you mean {other_field}: {name:?}?)")
    } else {
        String::new()
    };
    Error::invalid_op(
        index,
        format!(
            "op {index}: unknown {field} {shown:?}; expected one of {}{hint}",
            known.join(", ")
        ),
    )
}

/// The fields of one op object being parsed, with the op's position and name for messages.
pub(crate) struct OpFields<'a> {
    index: usize,
    name: &'a str,
    object: &'a Map<String, Value>,
}

impl OpFields<'_> {
    /// An `INVALID_OP` error naming this op.
    pub(crate) fn invalid(&self, detail: impl std::fmt::Display) -> Error {
        Error::invalid_op(
            self.index,
            format!("op {} ({}): {detail}", self.index, self.name),
        )
    }

    /// A `path.proto_polluted` error naming this op.
    pub(crate) fn proto_polluted(&self, detail: impl std::fmt::Display) -> Error {
        Error::op(
            "path.proto_polluted",
            self.index,
            format!("op {} ({}): {detail}", self.index, self.name),
        )
    }

    /// The required `path`.
    pub(crate) fn path(&self) -> Result<Path> {
        match self.object.get("path") {
            Some(raw) => self.parse_path(raw),
            None => Err(self.invalid("path is missing (use '' for the root)")),
        }
    }

    /// The optional `path`: the root when absent.
    pub(crate) fn optional_path(&self) -> Result<Path> {
        match self.object.get("path") {
            Some(raw) => self.parse_path(raw),
            None => Ok(Path::root()),
        }
    }

    fn parse_path(&self, raw: &Value) -> Result<Path> {
        Path::parse(raw).map_err(|problem| match problem {
            PathProblem::Malformed(detail) => self.invalid(detail),
            PathProblem::ProtoPolluted(detail) => self.proto_polluted(detail),
        })
    }

    /// The required `value` (any JSON, `null` included).
    pub(crate) fn value(&self) -> Result<&Value> {
        self.object.get("value").ok_or_else(|| {
            self.invalid("value is missing (undefined is dropped by JSON.stringify; use null)")
        })
    }

    /// A required finite number in `field` (`by`, or `value` for JSON Patch increment).
    pub(crate) fn finite_number(&self, field: &str) -> Result<Number> {
        match self.object.get(field) {
            Some(Value::Number(number)) => Ok(number.clone()),
            Some(Value::Null) => Err(self.invalid(format!(
                "{field} must be a finite number, got null (NaN and Infinity become null in JSON)"
            ))),
            Some(other) => Err(self.invalid(format!(
                "{field} must be a finite number, got {}",
                kind_of(other)
            ))),
            None => Err(self.invalid(format!("{field} is missing (a finite number)"))),
        }
    }
}

/// Where a writing op writes: a whole value, walked along the op's path, or the top-level
/// member that a one-segment path names, held apart from its object (see `partial.rs`).
pub(crate) enum Target<'v> {
    Tree(&'v mut Value),
    Member(&'v mut Option<Value>),
}

impl<'v> From<&'v mut Value> for Target<'v> {
    fn from(value: &'v mut Value) -> Target<'v> {
        Target::Tree(value)
    }
}

impl<'v> From<&'v mut Option<Value>> for Target<'v> {
    fn from(member: &'v mut Option<Value>) -> Target<'v> {
        Target::Member(member)
    }
}

/// The op being applied, for error messages: `op 2 (increment at "paid")`.
pub(crate) struct OpContext<'a> {
    index: usize,
    name: &'static str,
    path: &'a Path,
}

impl OpContext<'_> {
    /// An op error with its dotted `code`, naming this op.
    pub(crate) fn fail(&self, code: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::op(
            code,
            self.index,
            format!(
                "op {} ({} at {}): {detail}",
                self.index, self.name, self.path
            ),
        )
    }

    /// Turns a failed walk of the path into an op error.
    pub(crate) fn walk_failed(&self, (code, detail): path::WalkError) -> Error {
        self.fail(code, detail)
    }

    /// Walks `target` to this op's path for a write (creating missing intermediate objects)
    /// and hands the slot to `write`; a path that cannot be walked fails with its `path.*`
    /// code. Every writing op (`set`, `add`, `merge`, `increment`, `append`) goes through here.
    pub(crate) fn write_at<'v>(
        &self,
        target: impl Into<Target<'v>>,
        write: impl FnOnce(path::Slot<'v>) -> Result<()>,
    ) -> Result<()> {
        match target.into() {
            Target::Member(member) => write(path::Slot::Member(member)),
            Target::Tree(target) => match path::locate(target, self.path, path::Walk::Create) {
                Ok(Some(slot)) => write(slot),
                Ok(None) => Ok(()),
                Err(failure) => Err(self.walk_failed(failure)),
            },
        }
    }

    /// Fails with `path.too_deep` if writing a value nested `value_nesting` levels at this
    /// op's path would nest the result deeper than [`MAX_NESTING`].
    pub(crate) fn check_nesting(&self, value_nesting: usize) -> Result<()> {
        let total = self.path.segments().len().saturating_add(value_nesting);
        if total > MAX_NESTING {
            return Err(self.fail(
                "path.too_deep",
                format!(
                    "the result would nest {total} objects/arrays deep, more than the {MAX_NESTING} a stored value may have"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{apply_ops, parse_ops, UpdateOp};
    use crate::error::Error;
    use serde_json::{json, Value};

    /// Parses `ops`, applies them to `value` and returns the result; panics on any error.
    pub(crate) fn apply_json(mut value: Value, ops: Value) -> Value {
        let ops = parse_ops(&ops.to_string()).expect("ops parse");
        apply_ops(&mut value, &ops).expect("ops apply");
        value
    }

    /// An object nested `levels` objects deep: `{"a":{"a":...{}}}`.
    fn nested_object(levels: usize) -> String {
        format!(
            "{}{}",
            "{\"a\":".repeat(levels - 1) + "{",
            "}".repeat(levels)
        )
    }

    #[test]
    fn an_op_value_nested_too_deep_to_parse_is_path_too_deep_at_its_index() {
        let ops = format!(
            r#"[{{"type":"set","path":"a","value":"[{{}}]"}},{{"op":"add","path":"/b","value":{}}}]"#,
            nested_object(300)
        );
        match parse_ops(&ops) {
            Err(err) => {
                assert_eq!(err.code(), "path.too_deep");
                assert_eq!(err.op_index(), Some(1));
            }
            Ok(_) => panic!("an op nested 300 deep parsed"),
        }
    }

    #[test]
    fn an_op_value_nested_deeper_than_a_value_may_be_is_path_too_deep_at_its_index() {
        for levels in [101, 125, 126, 127, 128, 200] {
            let ops = format!(
                r#"[{{"type":"set","path":"","value":{}}}]"#,
                nested_object(levels)
            );
            let code = match parse_ops(&ops) {
                Ok(parsed) => {
                    let err = apply_ops(&mut json!({}), &parsed).unwrap_err();
                    assert_eq!(err.op_index(), Some(0), "{levels}");
                    err.code()
                }
                Err(err) => {
                    assert_eq!(err.op_index(), Some(0), "{levels}");
                    err.code()
                }
            };
            assert_eq!(code, "path.too_deep", "{levels}");
        }
    }

    /// Parses and applies `ops`, expecting an error, and returns its code.
    pub(crate) fn code_of(mut value: Value, ops: Value) -> &'static str {
        match parse_ops(&ops.to_string()) {
            Ok(parsed) => apply_ops(&mut value, &parsed)
                .expect_err("ops should fail")
                .code(),
            Err(err) => err.code(),
        }
    }

    /// Parses `ops`, expecting `INVALID_OP`, and returns its op index.
    pub(crate) fn invalid_op_index(ops: Value) -> usize {
        match parse_ops(&ops.to_string()) {
            Err(Error::InvalidOp { op_index, .. }) => op_index,
            other => panic!("expected INVALID_OP, got {other:?}"),
        }
    }

    #[test]
    fn ops_that_are_not_an_array_are_invalid_argument() {
        for text in ["{}", "1", "null", "\"set\"", "", "[", "not json"] {
            let err = parse_ops(text).expect_err("refused");
            assert_eq!(err.code(), "INVALID_ARGUMENT", "{text}");
        }
    }

    #[test]
    fn an_empty_op_list_parses_and_changes_nothing() {
        assert_eq!(apply_json(json!({"a": 1}), json!([])), json!({"a": 1}));
    }

    #[test]
    fn an_op_that_is_not_an_object_is_invalid_op_with_its_index() {
        assert_eq!(
            invalid_op_index(json!([{"type": "remove", "path": "a"}, 1])),
            1
        );
        assert_eq!(invalid_op_index(json!([null])), 0);
        assert_eq!(invalid_op_index(json!([[]])), 0);
    }

    #[test]
    fn an_op_with_both_or_neither_type_and_op_is_invalid() {
        assert_eq!(
            invalid_op_index(json!([{"type": "set", "op": "add", "path": "a", "value": 1}])),
            0
        );
        assert_eq!(invalid_op_index(json!([{"path": "a", "value": 1}])), 0);
        assert_eq!(
            invalid_op_index(json!([{"type": 1, "path": "a", "value": 1}])),
            0
        );
        assert_eq!(
            invalid_op_index(json!([{"op": null, "path": "a", "value": 1}])),
            0
        );
    }

    #[test]
    fn unknown_names_are_invalid_op_with_a_hint_across_forms() {
        assert_eq!(
            invalid_op_index(json!([{"type": "upsert", "path": "a"}])),
            0
        );
        assert_eq!(
            invalid_op_index(json!([{"op": "move", "from": "/a", "path": "/b"}])),
            0
        );
        let err = parse_ops(r#"[{"op":"set","path":"a","value":1}]"#).expect_err("refused");
        assert!(
            err.to_string().contains("did you mean type: \"set\"?"),
            "{err}"
        );
        let err = parse_ops(r#"[{"type":"add","path":"a","value":1}]"#).expect_err("refused");
        assert!(
            err.to_string().contains("did you mean op: \"add\"?"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_malformed_path_is_invalid_op() {
        for op in [
            json!({"type": "set", "value": 1}),
            json!({"type": "set", "path": 1, "value": 1}),
            json!({"type": "set", "path": null, "value": 1}),
            json!({"type": "set", "path": ["a", 2], "value": 1}),
            json!({"type": "set", "path": "a..b", "value": 1}),
            json!({"op": "add", "path": "/a~2b", "value": 1}),
            json!({"type": "increment", "by": 1}),
            json!({"op": "remove"}),
            json!({"type": "test", "value": 1}),
            json!({"type": "merge", "path": {}, "value": {}}),
            json!({"type": "append", "path": true, "value": 1}),
        ] {
            assert_eq!(invalid_op_index(json!([op.clone()])), 0, "{op}");
        }
    }

    #[test]
    fn a_missing_value_is_invalid_op() {
        for name in ["set", "append", "test"] {
            assert_eq!(invalid_op_index(json!([{"type": name, "path": "a"}])), 0);
        }
        for name in ["add", "replace", "test"] {
            assert_eq!(invalid_op_index(json!([{"op": name, "path": "/a"}])), 0);
        }
    }

    #[test]
    fn a_prototype_segment_is_proto_polluted_in_every_op_and_path_form() {
        for op in [
            json!({"type": "set", "path": "__proto__.admin", "value": true}),
            json!({"type": "set", "path": "a.constructor.prototype", "value": 1}),
            json!({"type": "merge", "path": ["prototype"], "value": {}}),
            json!({"type": "increment", "path": "/__proto__/n", "by": 1}),
            json!({"type": "remove", "path": "constructor"}),
            json!({"op": "add", "path": "/a/__proto__", "value": 1}),
            json!({"op": "test", "path": "/constructor", "value": 1}),
            json!({"type": "append", "path": ["x", "__proto__"], "value": 1}),
        ] {
            let err = parse_ops(&json!([op.clone()]).to_string()).expect_err("refused");
            assert_eq!(err.code(), "path.proto_polluted", "{op}");
            assert_eq!(err.op_index(), Some(0));
        }
    }

    #[test]
    fn both_spellings_of_test_remove_and_increment_parse_to_the_same_op() {
        let typed = parse_ops(r#"[{"type":"test","path":"/a","value":1},{"type":"remove","path":"/a"},{"type":"increment","path":"/a","by":2}]"#)
            .expect("parses");
        let patch = parse_ops(r#"[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/a"},{"op":"increment","path":"/a","value":2}]"#)
            .expect("parses");
        assert_eq!(typed, patch);
        assert!(matches!(typed[2], UpdateOp::Increment(_)));
    }

    #[test]
    fn extra_fields_are_ignored() {
        let value = apply_json(
            json!({}),
            json!([{"type": "set", "path": "a", "value": 1, "note": "x"}]),
        );
        assert_eq!(value, json!({"a": 1}));
    }

    #[test]
    fn apply_stops_at_the_first_failing_op_and_reports_its_index() {
        let ops = parse_ops(
            r#"[{"type":"set","path":"a","value":1},{"type":"test","path":"a","value":2},{"type":"increment","path":"s","by":1}]"#,
        )
        .expect("parses");
        let mut value = json!({"s": "x"});
        let err = apply_ops(&mut value, &ops).expect_err("fails");
        assert_eq!((err.code(), err.op_index()), ("test.failed", Some(1)));
    }

    #[test]
    fn a_malformed_op_later_in_the_list_fails_before_anything_applies() {
        let err = parse_ops(r#"[{"type":"test","path":"a","value":1},{"type":"nope"}]"#)
            .expect_err("refused");
        assert_eq!((err.code(), err.op_index()), ("INVALID_OP", Some(1)));
    }

    #[test]
    fn the_order_flow_from_the_spec_applies() {
        let value = apply_json(
            json!({"status": "pending", "total": 10, "items": ["a"]}),
            json!([
                {"type": "test", "path": "status", "value": "pending"},
                {"type": "set", "path": "status", "value": "paid"},
                {"type": "increment", "path": "total", "by": 5},
                {"type": "append", "path": "items", "value": "b"},
                {"type": "merge", "path": "meta", "value": {"by": "u1"}},
                {"op": "replace", "path": "/total", "value": 16},
                {"op": "remove", "path": "/items/0"}
            ]),
        );
        assert_eq!(
            value,
            json!({"status": "paid", "total": 16, "items": ["b"], "meta": {"by": "u1"}})
        );
    }

    #[test]
    fn every_op_reports_its_name_and_path() {
        let ops = parse_ops(
            r#"[{"type":"set","path":"a","value":1},{"type":"merge","value":{}},{"type":"increment","path":"a","by":1},
                {"type":"decrement","path":"a","by":1},{"type":"append","path":["l"],"value":1},{"type":"remove","path":"a"},
                {"type":"test","path":"a","value":1},{"op":"add","path":"/a","value":1},{"op":"replace","path":"/a","value":1}]"#,
        )
        .expect("parses");
        let names: Vec<_> = ops.iter().map(UpdateOp::name).collect();
        assert_eq!(
            names,
            [
                "set",
                "merge",
                "increment",
                "decrement",
                "append",
                "remove",
                "test",
                "add",
                "replace"
            ]
        );
        assert!(ops[1].path().is_root());
        assert_eq!(ops[4].path().segments(), ["l"]);
    }
}
