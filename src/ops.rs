//! The core's op engine as a pure function, for stores whose atomicity lives in JavaScript: a
//! user's adapter (`lib/backend/adapter.js`) queues the writes of each key, reads the current
//! value through the adapter, and has the new one computed here, so every store applies the
//! same ops with the same rules and error codes (`write.rs`, `ops/`), and JavaScript has no op
//! engine of its own. Nothing is stored: the caller writes the result back.

use crate::args::{js_text, Name, Text};
use crate::errors::to_js;
use napi::{Env, JsString, Result};
use napi_derive::napi;
use stepstate_core::ops;
use stepstate_core::write::{check_item, Item, Rules};

/// Applies `ops` (JSON text of an array of UpdateOps) to `current` (the value's JSON text, or
/// `null` when the key is absent: the ops start from `{}`), all of them or none, and returns
/// the new value's JSON text. `max_value_bytes` bounds the result (0: no limit), as for every
/// store. `group` and `key` are checked and named in error messages. Errors cross as every
/// call's do (`code \u{1f} opIndex \u{1f} message`, see errors.rs).
#[napi]
pub fn apply_ops<'env>(
    env: &'env Env,
    group: Name,
    key: Name,
    current: Option<Text>,
    ops: Text,
    max_value_bytes: f64,
) -> Result<JsString<'env>> {
    check_item(&group, &key).map_err(to_js)?;
    let parsed =
        ops::parse_ops_cached(&ops.0).map_err(|e| to_js(e.for_item("update", &group, &key)))?;
    let rules = Rules {
        max_value_bytes: (max_value_bytes >= 1.0).then_some(max_value_bytes as usize),
        default_ttl_ms: None,
    };
    let item = current.as_ref().map(|text| Item {
        value: &text.0,
        expires_at_ms: 0,
    });
    let (stored, _) = rules
        .update(item, &parsed, || 0)
        .map_err(|e| to_js(e.for_item("update", &group, &key)))?;
    js_text(env, &stored.value)
}
