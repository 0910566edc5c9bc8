//! Arguments and results as they cross N-API: group names and keys read onto the stack
//! ([`Name`]), values' JSON text read in one pass ([`Text`]), and JSON text given back as a JS
//! string ([`js_text`]). These conversions are the per-call cost of every store call, so each
//! makes as few N-API calls and copies as it can.

use crate::errors::to_js;
use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Env, JsString, Result, ValueType};
use std::mem::MaybeUninit;
use stepstate_core::write::{name_too_long, MAX_NAME_BYTES};
use stepstate_core::Error;

/// Bytes of a name read onto the stack: most names fit, and a `Name` stays small enough to
/// move for nothing (a name may be up to `MAX_NAME_BYTES`; a longer one goes to the heap).
const INLINE_NAME: usize = 128;

/// A group name or key, read from a JS string: onto the stack with one N-API call and no
/// allocation when it is shorter than [`INLINE_NAME`] bytes of UTF-8 (the generic `String`
/// conversion makes two calls and a heap copy), onto the heap otherwise.
pub struct Name(NameBytes);

enum NameBytes {
    Inline {
        len: u8,
        buf: [MaybeUninit<u8>; INLINE_NAME],
    },
    Heap(String),
}

impl Name {
    pub(crate) fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: napi_get_value_string_utf8 initialized `len` bytes with valid UTF-8.
            NameBytes::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                    buf.as_ptr().cast::<u8>(),
                    usize::from(*len),
                ))
            },
            NameBytes::Heap(name) => name,
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl ValidateNapiValue for Name {}

/// Reads the JS string `value` as UTF-8 into `buf`, a buffer of `size` bytes (at most
/// `size - 1` bytes of text, whole characters only, lone surrogates replaced); the bytes
/// written, or `None` when `value` is not a string.
unsafe fn read_utf8(
    env: sys::napi_env,
    value: sys::napi_value,
    buf: *mut std::ffi::c_char,
    size: usize,
) -> Option<usize> {
    let mut len = 0;
    let status = unsafe { sys::napi_get_value_string_utf8(env, value, buf, size, &mut len) };
    (status == sys::Status::napi_ok).then_some(len)
}

impl FromNapiValue for Name {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let not_a_string = || {
            to_js(Error::InvalidArgument(
                "group and key must be strings".into(),
            ))
        };
        let mut buf = [MaybeUninit::uninit(); INLINE_NAME];
        let len = unsafe { read_utf8(env, value, buf.as_mut_ptr().cast(), INLINE_NAME) }
            .ok_or_else(not_a_string)?;
        // A string cut short fills the buffer to within 3 bytes (whole characters only).
        if len + 4 < INLINE_NAME {
            return Ok(Name(NameBytes::Inline {
                len: len as u8,
                buf,
            }));
        }
        let full =
            unsafe { read_utf8(env, value, std::ptr::null_mut(), 0) }.ok_or_else(not_a_string)?;
        if full > MAX_NAME_BYTES {
            return Err(to_js(name_too_long("group or key", full)));
        }
        let mut bytes = vec![0u8; full + 1];
        let len = unsafe { read_utf8(env, value, bytes.as_mut_ptr().cast(), full + 1) }
            .ok_or_else(not_a_string)?;
        bytes.truncate(len);
        String::from_utf8(bytes)
            .map(|name| Name(NameBytes::Heap(name)))
            .map_err(|_| not_a_string())
    }
}

/// V8's largest string on 64-bit platforms, in units (`v8::String::kMaxLength`, 2^29 − 24).
const MAX_JS_STRING_LENGTH: usize = (1 << 29) - 24;

/// A JS string with `text`'s contents. ASCII text (most JSON) is handed to V8 as Latin-1,
/// which it copies as is, instead of decoding UTF-8: several times faster for large texts.
///
/// V8 refuses to make a string of more than [`MAX_JS_STRING_LENGTH`] bytes of UTF-8 or Latin-1;
/// such a text is refused here with `VALUE_TOO_LARGE` rather than an empty generic failure. A
/// single value never gets there (see `MAX_VALUE_TEXT_BYTES`); a whole group may.
pub(crate) fn js_text<'env>(env: &'env Env, text: &str) -> Result<JsString<'env>> {
    if text.len() > MAX_JS_STRING_LENGTH {
        return Err(to_js(Error::TooLongToReadBack {
            what: "the reply",
            size: text.len(),
            limit: MAX_JS_STRING_LENGTH,
        }));
    }
    if text.is_ascii() {
        env.create_string_latin1(text.as_bytes())
    } else {
        env.create_string(text)
    }
}

/// A value's JSON text from a JS string, converted in one pass: the generic `String`
/// conversion first scans the whole string for its UTF-8 length, then converts it; a string
/// of n UTF-16 units needs at most 3n bytes of UTF-8, and n is known without a scan.
pub struct Text(pub(crate) String);

impl ValidateNapiValue for Text {}

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let not_a_string = || {
            to_js(Error::InvalidArgument(
                "a value's JSON text must be a string".into(),
            ))
        };
        let mut units = 0;
        let status = unsafe {
            sys::napi_get_value_string_utf16(env, value, std::ptr::null_mut(), 0, &mut units)
        };
        if status != sys::Status::napi_ok {
            return Err(not_a_string());
        }
        let capacity = units * 3 + 1;
        let mut bytes: Vec<u8> = Vec::with_capacity(capacity);
        let written = unsafe { read_utf8(env, value, bytes.as_mut_ptr().cast(), capacity) }
            .ok_or_else(not_a_string)?;
        // SAFETY: napi wrote `written` bytes of valid UTF-8 (lone surrogates are replaced).
        unsafe {
            bytes.set_len(written);
            Ok(Text(String::from_utf8_unchecked(bytes)))
        }
    }
}

/// The JS type napi-rs names in messages for the argument and result types defined here.
macro_rules! js_type {
    ($($rust:ty => $name:literal, $kind:ident;)*) => {$(
        impl TypeName for $rust {
            fn type_name() -> &'static str {
                $name
            }
            fn value_type() -> ValueType {
                ValueType::$kind
            }
        }
    )*};
}
pub(crate) use js_type;

js_type! {
    Name => "string", String;
    Text => "string", String;
}
