//! The one error type of the engine. Every failure a caller can see is a variant here, and
//! [`Error::code`] gives the stable string code of the public contract (SPEC "Errors"), which
//! the Node.js binding passes through unchanged so that JavaScript branches on `err.code`.

use std::fmt;

/// Every way an operation on a store can fail.
///
/// Messages name the group, key and op where they are known; callers branch on [`Error::code`],
/// never on the message text.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A group or key that is empty, longer than 1024 bytes, or otherwise not acceptable;
    /// `ops` that is not an array. Code `INVALID_ARGUMENT`.
    InvalidArgument(String),
    /// A value that is not JSON (undefined, NaN, a BigInt, a cycle...). Code `INVALID_VALUE`.
    InvalidValue(String),
    /// A malformed update op: unknown `type`/`op`, missing path, a non-number `by`...
    /// Code `INVALID_OP`; `op_index` is the position of the op in the list.
    InvalidOp { op_index: usize, message: String },
    /// A well-formed op that cannot apply to the current value, e.g. `increment.not_number`,
    /// `test.failed`, `path.proto_polluted`. `code` is one of the dotted op codes.
    Op {
        code: &'static str,
        op_index: usize,
        message: String,
    },
    /// A value whose serialized JSON is larger than the store's `maxValueBytes`.
    /// Code `VALUE_TOO_LARGE`.
    ValueTooLarge { size: usize, limit: usize },
    /// JSON text longer than can be given back to the caller: a value longer than
    /// [`crate::ops::MAX_VALUE_TEXT_BYTES`] (it could be stored but never read), or a reply
    /// (a whole group, say) longer than the binding's largest string. `what` names it
    /// (`the value`). Code `VALUE_TOO_LARGE`.
    TooLongToReadBack {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// The store directory is locked by another process. Code `LOCKED`.
    Locked(String),
    /// The files of a durable store are damaged before their tail. Code `CORRUPT`.
    Corrupt(String),
    /// The store (or this handle on it) was closed. Code `CLOSED`.
    Closed,
    /// A remote backend could not be reached. Code `BACKEND_UNAVAILABLE`.
    BackendUnavailable(String),
    /// An I/O failure of a durable store; after one, the store refuses further writes.
    /// Code `IO`.
    Io(String),
}

impl Error {
    /// The stable code of the public contract, e.g. `INVALID_OP` or `increment.not_number`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::InvalidValue(_) => "INVALID_VALUE",
            Error::InvalidOp { .. } => "INVALID_OP",
            Error::Op { code, .. } => code,
            Error::ValueTooLarge { .. } | Error::TooLongToReadBack { .. } => "VALUE_TOO_LARGE",
            Error::Locked(_) => "LOCKED",
            Error::Corrupt(_) => "CORRUPT",
            Error::Closed => "CLOSED",
            Error::BackendUnavailable(_) => "BACKEND_UNAVAILABLE",
            Error::Io(_) => "IO",
        }
    }

    /// The position of the failing op in an `update` op list, when the error comes from one.
    pub fn op_index(&self) -> Option<usize> {
        match self {
            Error::InvalidOp { op_index, .. } | Error::Op { op_index, .. } => Some(*op_index),
            _ => None,
        }
    }

    /// Prefixes the message with the item it concerns, so that every message names its group
    /// and key (the op is already named by the op engine).
    pub fn for_item(self, action: &str, group: &str, key: &str) -> Error {
        let context = |message: String| format!("{action} {group:?}/{key:?}: {message}");
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(context(m)),
            Error::InvalidValue(m) => Error::InvalidValue(context(m)),
            Error::InvalidOp { op_index, message } => Error::InvalidOp {
                op_index,
                message: context(message),
            },
            Error::Op {
                code,
                op_index,
                message,
            } => Error::Op {
                code,
                op_index,
                message: context(message),
            },
            other => other,
        }
    }

    /// Shorthand for an op failure with its dotted code.
    pub fn op(code: &'static str, op_index: usize, message: impl Into<String>) -> Error {
        Error::Op {
            code,
            op_index,
            message: message.into(),
        }
    }

    /// Shorthand for a malformed op.
    pub fn invalid_op(op_index: usize, message: impl Into<String>) -> Error {
        Error::InvalidOp {
            op_index,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m)
            | Error::InvalidValue(m)
            | Error::Locked(m)
            | Error::Corrupt(m)
            | Error::BackendUnavailable(m)
            | Error::Io(m) => f.write_str(m),
            Error::InvalidOp { message, .. } | Error::Op { message, .. } => f.write_str(message),
            Error::ValueTooLarge { size, limit } => write!(
                f,
                "value is {size} bytes of JSON, more than maxValueBytes ({limit})"
            ),
            Error::TooLongToReadBack { what, size, limit } => write!(
                f,
                "{what} is {size} bytes of JSON, more than the {limit} that can be read back"
            ),
            Error::Closed => f.write_str("the store is closed"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err.to_string())
    }
}

/// Result of every fallible engine call.
pub type Result<T> = std::result::Result<T, Error>;
