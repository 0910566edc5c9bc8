//! The one mapping from core errors to JavaScript errors.
//!
//! An error crosses as one string `code \u{1f} opIndex \u{1f} message`, which
//! `lib/errors.js` (`fromNative`) turns back into a `StateError`, so JavaScript always
//! branches on `err.code`.

use stepstate_core::Error;

/// The JavaScript error of a core error: its SPEC code, the failing op's index (empty when
/// none) and its message.
pub(crate) fn to_js(err: Error) -> napi::Error {
    napi::Error::from_reason(error_text(&err))
}

/// The string a core error crosses as (see the module's doc): also the rejection of a Redis
/// call, which reaches JavaScript as text in a batch of completions (`redis.rs`).
pub(crate) fn error_text(err: &Error) -> String {
    let op_index = err.op_index().map(|n| n.to_string()).unwrap_or_default();
    format!("{}\u{1f}{}\u{1f}{}", err.code(), op_index, err)
}
