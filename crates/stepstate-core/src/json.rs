//! JSON text the crate builds by hand: string literals inside the arrays, entries, events and
//! updated objects it assembles from stored texts without parsing them.

/// Appends `text` to `out` as a JSON string literal, escaped as `serde_json` escapes it.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    // serde_json escapes only `"`, `\` and control characters: a text without them is its
    // own literal between quotes. Names and member names almost never have them, and an
    // update then makes no String per member name it writes out.
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    // Serializing a &str into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

#[cfg(test)]
mod tests {
    use super::push_json_string;

    #[test]
    fn a_string_literal_is_what_serde_json_makes_of_it() {
        let texts = [
            "",
            "plain",
            "a:b/c",
            "quote \" inside",
            "back\\slash",
            "tab\tnew\nline\r",
            "\u{0}\u{1f}\u{7f}",
            "ünïcødé ✓ 😀",
            "\u{2028}\u{2029}",
            "</script>",
        ];
        for text in texts {
            let mut out = String::from("x");
            push_json_string(&mut out, text);
            assert_eq!(
                out,
                format!("x{}", serde_json::to_string(text).unwrap()),
                "{text:?}"
            );
        }
    }
}
