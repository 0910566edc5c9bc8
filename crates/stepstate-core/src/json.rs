//! JSON text the crate builds by hand: string literals inside the arrays, entries, events and
//! updated objects it assembles from stored texts without parsing them.

/// Appends `text` to `out` as a JSON string literal.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    // Serializing a &str into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}
