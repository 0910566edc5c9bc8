//! Paths of update ops: parsing the three spellings a caller may use (a dotted string, an
//! array of literal segments, a JSON Pointer) into one list of segments, refusing the
//! prototype-polluting segments, and walking a JSON value to the slot a path names, creating
//! missing intermediate objects when an op writes.

use serde_json::{Map, Value};
use std::fmt;

/// Segments that would reach an object's prototype once the value is back in JavaScript;
/// any path containing one of them is refused with code `path.proto_polluted`.
pub const FORBIDDEN_SEGMENTS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// The deepest nesting of objects and arrays (counting the root container as 1) that an op may
/// write. serde_json refuses to read back text nested 128 levels deep, so a value written
/// deeper could never be updated again; the margin leaves room for a store that embeds the
/// value inside a record of its own. Deeper writes fail with code `path.too_deep`.
pub const MAX_NESTING: usize = 100;

/// A parsed op path: the list of segments from the root of the value to the target.
///
/// An empty list is the root value itself. Paths are only built by parsing an op (see
/// [`crate::ops::parse_ops`]) or as [`Path::root`], so every `Path` is free of the forbidden
/// segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    segments: Vec<String>,
    /// The path as the caller wrote it (compact JSON), for error messages.
    text: String,
}

/// Why a path given by a caller was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathProblem {
    /// Not a path at all (wrong JSON type, a bad pointer escape, an empty dotted segment):
    /// code `INVALID_OP`.
    Malformed(String),
    /// Names `__proto__`, `constructor` or `prototype`: code `path.proto_polluted`.
    ProtoPolluted(String),
}

impl Path {
    /// The root of the value, as an omitted path, `''` or `[]` give it.
    pub fn root() -> Path {
        Path {
            segments: Vec::new(),
            text: String::new(),
        }
    }

    /// The segments from the root to the target, already unescaped; empty for the root.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the path names the whole value.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Parses a path as it arrives in an op: a string (`''` root, `/...` JSON Pointer, else
    /// dotted) or an array of string segments taken literally.
    pub(crate) fn parse(raw: &Value) -> Result<Path, PathProblem> {
        let segments = match raw {
            Value::String(text) => parse_text(text)?,
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(position, item)| match item {
                    Value::String(segment) => Ok(segment.clone()),
                    other => Err(PathProblem::Malformed(format!(
                        "path element {position} is {}, not a string",
                        kind_of(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(PathProblem::Malformed(format!(
                    "path must be a string or an array of strings, got {}",
                    kind_of(other)
                )))
            }
        };
        if let Some(bad) = segments
            .iter()
            .find(|segment| FORBIDDEN_SEGMENTS.contains(&segment.as_str()))
        {
            return Err(PathProblem::ProtoPolluted(format!(
                "path {} contains the segment {bad:?}, which could pollute a JavaScript prototype",
                compact(raw)
            )));
        }
        let text = if segments.is_empty() {
            String::new()
        } else {
            compact(raw)
        };
        Ok(Path { segments, text })
    }
}

impl fmt::Display for Path {
    /// `the root`, or the path as the caller wrote it, e.g. `"a.b"`, `"/a/b"`, `["a.b","c"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            f.write_str("the root")
        } else {
            f.write_str(&self.text)
        }
    }
}

/// Splits a string path: `''` is the root, a leading `/` makes it a JSON Pointer, anything
/// else is dotted.
fn parse_text(text: &str) -> Result<Vec<String>, PathProblem> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(pointer) = text.strip_prefix('/') {
        return pointer
            .split('/')
            .map(|token| unescape_pointer_token(token, text))
            .collect();
    }
    let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(PathProblem::Malformed(format!(
            "dotted path {text:?} has an empty segment; use an array path (or a JSON Pointer) \
             for keys that are empty or contain dots"
        )));
    }
    Ok(segments)
}

/// RFC 6901 unescaping: `~1` is `/`, `~0` is `~`, any other `~` is an error.
fn unescape_pointer_token(token: &str, pointer: &str) -> Result<String, PathProblem> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            Some(other) => {
                return Err(PathProblem::Malformed(format!(
                    "JSON Pointer {pointer:?} has the invalid escape \"~{other}\" (only ~0 and ~1 exist)"
                )))
            }
            None => {
                return Err(PathProblem::Malformed(format!(
                    "JSON Pointer {pointer:?} has a lone \"~\" (write ~0 for a literal ~)"
                )))
            }
        }
    }
    Ok(out)
}

/// Compact JSON of a caller's value, for messages.
fn compact(raw: &Value) -> String {
    serde_json::to_string(raw).unwrap_or_else(|_| String::from("<path>"))
}

/// A short English name of a JSON value's type, with its article, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How deeply objects and arrays nest in `value`: 0 for a scalar, 1 for `{}` or `[1]`.
pub(crate) fn nesting_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting_of).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(nesting_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether a walk may change the value on its way to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// For writing ops: missing intermediate objects are created, and a path that cannot be
    /// walked (through a scalar, a bad array index) is an error.
    Create,
    /// For reading ops (`test`, `remove`, `replace`): nothing is changed, and a path that
    /// cannot be walked simply names nothing.
    Existing,
}

/// A failure to walk a path when writing: `(code, detail)`.
pub(crate) type WalkError = (&'static str, String);

/// The place a path names inside a value, ready to be read or written.
pub(crate) enum Slot<'v> {
    /// The whole value (an empty path).
    Root(&'v mut Value),
    /// A member of an object, present or not.
    Field {
        map: &'v mut Map<String, Value>,
        key: String,
    },
    /// An existing element of an array (`index < len`).
    Element {
        array: &'v mut Vec<Value>,
        index: usize,
    },
    /// The position just past the end of an array (`-`, or an index equal to its length):
    /// nothing is there yet, and writing there appends.
    End { array: &'v mut Vec<Value> },
    /// A top-level member held apart from its object (see `partial.rs`), present or not: what
    /// a [`Slot::Field`] of the root object would be.
    Member(&'v mut Option<Value>),
}

impl<'v> Slot<'v> {
    /// The value in the slot, if there is one.
    pub(crate) fn get(&self) -> Option<&Value> {
        match self {
            Slot::Root(value) => Some(value),
            Slot::Field { map, key } => map.get(key),
            Slot::Element { array, index } => array.get(*index),
            Slot::End { .. } => None,
            Slot::Member(member) => member.as_ref(),
        }
    }

    /// The value in the slot, mutably, if there is one.
    pub(crate) fn get_mut(&mut self) -> Option<&mut Value> {
        match self {
            Slot::Root(value) => Some(value),
            Slot::Field { map, key } => map.get_mut(key.as_str()),
            Slot::Element { array, index } => array.get_mut(*index),
            Slot::End { .. } => None,
            Slot::Member(member) => member.as_mut(),
        }
    }

    /// Writes `value` into the slot: replaces the root, an object member (keeping its place in
    /// key order) or an array element; appends at the end of an array.
    pub(crate) fn put(self, value: Value) {
        match self {
            Slot::Root(root) => *root = value,
            Slot::Field { map, key } => {
                map.insert(key, value);
            }
            Slot::Element { array, index } => {
                if let Some(element) = array.get_mut(index) {
                    *element = value;
                }
            }
            Slot::End { array } => array.push(value),
            Slot::Member(member) => *member = Some(value),
        }
    }

    /// Like [`Slot::put`], except that at an existing array element the value is inserted
    /// before it, shifting the rest (JSON Patch `add`).
    pub(crate) fn insert(self, value: Value) {
        match self {
            Slot::Element { array, index } => array.insert(index, value),
            other => other.put(value),
        }
    }

    /// Removes and returns the value in the slot; later array elements shift down, and the
    /// other members of an object keep their order. The root cannot be taken.
    pub(crate) fn take(self) -> Option<Value> {
        match self {
            Slot::Root(_) | Slot::End { .. } => None,
            Slot::Field { map, key } => map.shift_remove(key.as_str()),
            Slot::Member(member) => member.take(),
            Slot::Element { array, index } => {
                if index < array.len() {
                    Some(array.remove(index))
                } else {
                    None
                }
            }
        }
    }
}

/// Where an array path segment points.
enum ArrayPosition {
    Existing(usize),
    End,
    OutOfRange,
    NotAnIndex,
}

/// Reads a segment as an array index: `-`, `0`, or digits without a leading zero (RFC 6901).
fn array_position(segment: &str, len: usize) -> ArrayPosition {
    if segment == "-" {
        return ArrayPosition::End;
    }
    let digits_only = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (segment.len() > 1 && segment.starts_with('0')) {
        return ArrayPosition::NotAnIndex;
    }
    match segment.parse::<usize>() {
        Ok(index) if index < len => ArrayPosition::Existing(index),
        Ok(index) if index == len => ArrayPosition::End,
        _ => ArrayPosition::OutOfRange,
    }
}

/// Describes the first `upto` segments of a path for messages: `the root` or `"a.b"` (or an
/// array when a segment contains a dot).
fn describe_prefix(segments: &[String]) -> String {
    if segments.is_empty() {
        String::from("the root")
    } else if segments.iter().any(|s| s.contains('.') || s.is_empty()) {
        format!("{segments:?}")
    } else {
        format!("{:?}", segments.join("."))
    }
}

fn walk_error_not_container(segments: &[String], at: usize, container: &Value) -> WalkError {
    (
        "path.not_container",
        format!(
            "cannot reach {:?}: the value at {} is {}, not an object or array",
            segments[at],
            describe_prefix(&segments[..at]),
            kind_of(container)
        ),
    )
}

fn walk_error_index(
    segments: &[String],
    at: usize,
    len: usize,
    position: &ArrayPosition,
) -> WalkError {
    let where_ = describe_prefix(&segments[..at]);
    match position {
        ArrayPosition::NotAnIndex => (
            "path.invalid_index",
            format!(
                "{:?} is not an array index, and the value at {where_} is an array",
                segments[at]
            ),
        ),
        _ => (
            "path.index_out_of_range",
            format!(
                "index {} is past the end of the array at {where_} (length {len}; use \"-\" or {len} to append)",
                segments[at]
            ),
        ),
    }
}

/// Walks `root` along `path` to the slot it names.
///
/// With [`Walk::Create`], missing object members on the way are created as `{}` (and an
/// intermediate `-` or index equal to an array's length appends a new `{}`); walking into a
/// scalar, a non-index segment on an array, or an index past an array's end is an error.
/// With [`Walk::Existing`], nothing changes and any of those gives `Ok(None)`, as does a missing
/// member on the way; a missing final member still gives its [`Slot::Field`].
pub(crate) fn locate<'v>(
    root: &'v mut Value,
    path: &Path,
    walk: Walk,
) -> Result<Option<Slot<'v>>, WalkError> {
    let segments = path.segments();
    let Some((last, parents)) = segments.split_last() else {
        return Ok(Some(Slot::Root(root)));
    };
    let mut current: &'v mut Value = root;
    for (at, segment) in parents.iter().enumerate() {
        current = match current {
            Value::Object(map) => {
                if walk == Walk::Create {
                    map.entry(segment.clone())
                        .or_insert_with(|| Value::Object(Map::new()))
                } else {
                    match map.get_mut(segment.as_str()) {
                        Some(child) => child,
                        None => return Ok(None),
                    }
                }
            }
            Value::Array(array) => match array_position(segment, array.len()) {
                ArrayPosition::Existing(index) => &mut array[index],
                ArrayPosition::End if walk == Walk::Create => {
                    let index = array.len();
                    array.push(Value::Object(Map::new()));
                    &mut array[index]
                }
                position => {
                    if walk == Walk::Create {
                        return Err(walk_error_index(segments, at, array.len(), &position));
                    }
                    return Ok(None);
                }
            },
            scalar => {
                if walk == Walk::Create {
                    return Err(walk_error_not_container(segments, at, scalar));
                }
                return Ok(None);
            }
        };
    }
    let at = parents.len();
    match current {
        Value::Object(map) => Ok(Some(Slot::Field {
            map,
            key: last.clone(),
        })),
        Value::Array(array) => match array_position(last, array.len()) {
            ArrayPosition::Existing(index) => Ok(Some(Slot::Element { array, index })),
            ArrayPosition::End => Ok(Some(Slot::End { array })),
            position => {
                if walk == Walk::Create {
                    Err(walk_error_index(segments, at, array.len(), &position))
                } else {
                    Ok(None)
                }
            }
        },
        scalar => {
            if walk == Walk::Create {
                Err(walk_error_not_container(segments, at, scalar))
            } else {
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segments_of(raw: Value) -> Vec<String> {
        Path::parse(&raw).expect("path parses").segments().to_vec()
    }

    fn problem_of(raw: Value) -> PathProblem {
        Path::parse(&raw).expect_err("path is refused")
    }

    #[test]
    fn dotted_string_splits_on_dots() {
        assert_eq!(segments_of(json!("a.b.c")), ["a", "b", "c"]);
    }

    #[test]
    fn array_path_keeps_dots_inside_segments() {
        assert_eq!(segments_of(json!(["a.b", "c"])), ["a.b", "c"]);
    }

    #[test]
    fn empty_string_and_empty_array_are_the_root() {
        assert!(Path::parse(&json!("")).expect("parses").is_root());
        assert!(Path::parse(&json!([])).expect("parses").is_root());
        assert_eq!(Path::root().to_string(), "the root");
    }

    #[test]
    fn pointer_unescapes_tilde_one_and_tilde_zero() {
        assert_eq!(segments_of(json!("/a~1b/c~0d/~01")), ["a/b", "c~d", "~1"]);
    }

    #[test]
    fn pointer_slash_alone_names_the_empty_key() {
        assert_eq!(segments_of(json!("/")), [""]);
        assert_eq!(segments_of(json!("/a/")), ["a", ""]);
    }

    #[test]
    fn pointer_with_invalid_escape_is_malformed() {
        assert!(matches!(
            problem_of(json!("/a~2")),
            PathProblem::Malformed(_)
        ));
        assert!(matches!(
            problem_of(json!("/a~")),
            PathProblem::Malformed(_)
        ));
    }

    #[test]
    fn dotted_path_with_an_empty_segment_is_malformed() {
        for raw in ["a..b", ".a", "a.", "."] {
            assert!(
                matches!(problem_of(json!(raw)), PathProblem::Malformed(_)),
                "{raw}"
            );
        }
    }

    #[test]
    fn non_string_path_or_element_is_malformed() {
        assert!(matches!(problem_of(json!(3)), PathProblem::Malformed(_)));
        assert!(matches!(problem_of(json!(null)), PathProblem::Malformed(_)));
        assert!(matches!(
            problem_of(json!(["a", 1])),
            PathProblem::Malformed(_)
        ));
    }

    #[test]
    fn forbidden_segments_are_refused_in_every_spelling() {
        for raw in [
            json!("__proto__"),
            json!("a.constructor.b"),
            json!("/a/prototype"),
            json!(["x", "__proto__"]),
            json!("/__proto__"),
        ] {
            assert!(
                matches!(problem_of(raw.clone()), PathProblem::ProtoPolluted(_)),
                "{raw}"
            );
        }
    }

    #[test]
    fn lookalike_segments_are_allowed() {
        assert_eq!(
            segments_of(json!("__proto__x.Constructor")),
            ["__proto__x", "Constructor"]
        );
    }

    #[test]
    fn path_displays_as_the_caller_wrote_it() {
        let path = Path::parse(&json!(["a.b", "c"])).expect("parses");
        assert_eq!(path.to_string(), r#"["a.b","c"]"#);
        let path = Path::parse(&json!("a.b")).expect("parses");
        assert_eq!(path.to_string(), r#""a.b""#);
    }

    #[test]
    fn array_positions_follow_rfc_6901() {
        assert!(matches!(array_position("0", 2), ArrayPosition::Existing(0)));
        assert!(matches!(array_position("2", 2), ArrayPosition::End));
        assert!(matches!(array_position("-", 2), ArrayPosition::End));
        assert!(matches!(array_position("3", 2), ArrayPosition::OutOfRange));
        assert!(matches!(array_position("01", 2), ArrayPosition::NotAnIndex));
        assert!(matches!(array_position("-1", 2), ArrayPosition::NotAnIndex));
        assert!(matches!(array_position("x", 2), ArrayPosition::NotAnIndex));
        assert!(matches!(
            array_position("99999999999999999999999", 2),
            ArrayPosition::OutOfRange
        ));
    }

    #[test]
    fn create_walk_builds_missing_intermediate_objects() {
        let mut value = json!({});
        let path = Path::parse(&json!("a.b.c")).expect("parses");
        let slot = locate(&mut value, &path, Walk::Create).expect("walks");
        slot.expect("slot").put(json!(1));
        assert_eq!(value, json!({"a": {"b": {"c": 1}}}));
    }

    #[test]
    fn existing_walk_changes_nothing_and_finds_nothing_when_missing() {
        let mut value = json!({"a": 1});
        let path = Path::parse(&json!("x.y")).expect("parses");
        assert!(locate(&mut value, &path, Walk::Existing)
            .expect("walks")
            .is_none());
        let path = Path::parse(&json!("a.y")).expect("parses");
        assert!(locate(&mut value, &path, Walk::Existing)
            .expect("walks")
            .is_none());
        assert_eq!(value, json!({"a": 1}));
    }

    #[test]
    fn create_walk_through_a_scalar_is_not_container() {
        let mut value = json!({"a": 5});
        let path = Path::parse(&json!("a.b.c")).expect("parses");
        let Err((code, message)) = locate(&mut value, &path, Walk::Create) else {
            panic!("expected an error");
        };
        assert_eq!(code, "path.not_container");
        assert!(message.contains("a number"), "{message}");
    }

    #[test]
    fn nesting_counts_containers() {
        assert_eq!(nesting_of(&json!(1)), 0);
        assert_eq!(nesting_of(&json!([])), 1);
        assert_eq!(nesting_of(&json!({"a": [1, {"b": {}}]})), 4);
    }
}
