//! The JS strings of the member names an in-process `update` answers with (a counter's name,
//! see `store::update`), kept and handed out again: the same few names come back call after
//! call, and a string made anew each time cost V8 an allocation, and JavaScript, which sets the
//! member by that name, a lookup of the name in V8's string table (a name used as a property
//! key is interned, and a string already interned is not looked up again: about 360 of the
//! 12,700 instructions of one of 10,000 concurrent increments in a callgrind profile).
//!
//! Each JS thread keeps its own [`KEPT`] most recent names in a JS array held by an N-API
//! reference (Node 20 refers to objects only, not to strings), released when the thread's
//! environment is torn down. JavaScript holds the same array (`memberNames()`), so a name kept
//! there crosses as its index: reading an element through N-API (`napi_get_element`, with its
//! `TryCatch` and generic property lookup) took about 660 instructions, a tenth of the
//! binding's whole `update`, where JavaScript's own array load takes a few.

use crate::args::js_text;
use napi::bindgen_prelude::{sys, Unknown};
use napi::{check_status, Env, JsString, JsValue, Result};
use napi_derive::napi;
use std::cell::RefCell;
use std::ptr;

/// How many names a thread keeps: a handler's counters are few.
const KEPT: usize = 16;

/// A thread's names: the array holding their JS strings (null until the first use), each name
/// at its index in `kept`, the index the next new name replaces once it is full, and the
/// environment the reference belongs to.
struct Names {
    env: sys::napi_env,
    array: sys::napi_ref,
    kept: Vec<Box<str>>,
    next: usize,
}

impl Names {
    /// No names, for no environment.
    const NONE: Names = Names {
        env: ptr::null_mut(),
        array: ptr::null_mut(),
        kept: Vec::new(),
        next: 0,
    };
}

thread_local! {
    static NAMES: RefCell<Names> = const { RefCell::new(Names::NONE) };
}

/// Where a name's JS string is.
pub(crate) enum KeptName<'env> {
    /// At this index of the thread's array, kept from an earlier call.
    At(usize),
    /// Made now (and kept in the array from now on).
    New(JsString<'env>),
}

/// Runs `f` on this thread's names, made for `env` first if they are not.
fn with_names<T>(env: sys::napi_env, f: impl FnOnce(&mut Names) -> Result<T>) -> Result<T> {
    NAMES.with_borrow_mut(|names| {
        if names.env != env {
            // A thread's first use (or, were there ever two, another environment's: the
            // references of one are not the other's).
            let mut array = ptr::null_mut();
            check_status!(unsafe { sys::napi_create_array(env, &mut array) })?;
            let mut reference = ptr::null_mut();
            check_status!(unsafe { sys::napi_create_reference(env, array, 1, &mut reference) })?;
            check_status!(unsafe {
                sys::napi_add_env_cleanup_hook(env, Some(release), env.cast())
            })?;
            *names = Names {
                env,
                array: reference,
                ..Names::NONE
            };
        }
        f(names)
    })
}

/// The array of this thread's kept names, the one an `update` whose answer is a kept name
/// points into (the same array on every call of the thread).
#[napi(ts_return_type = "string[]")]
pub fn member_names(env: &Env) -> Result<Unknown<'_>> {
    let raw_env = env.raw();
    with_names(raw_env, |names| {
        let mut array = ptr::null_mut();
        check_status!(unsafe { sys::napi_get_reference_value(raw_env, names.array, &mut array) })?;
        Ok(unsafe { Unknown::from_raw_unchecked(raw_env, array) })
    })
}

/// The JS string of `name`: where it is kept, when this thread kept it before (no N-API
/// call), or a new one, kept from now on.
pub(crate) fn kept_name<'env>(env: &'env Env, name: &str) -> Result<KeptName<'env>> {
    let raw_env = env.raw();
    with_names(raw_env, |names| {
        if let Some(at) = names.kept.iter().position(|kept| **kept == *name) {
            return Ok(KeptName::At(at));
        }
        let value = js_text(env, name)?;
        let at = if names.kept.len() < KEPT {
            names.kept.push(name.into());
            names.kept.len() - 1
        } else {
            let at = names.next;
            names.next = (at + 1) % KEPT;
            names.kept[at] = name.into();
            at
        };
        let mut array = ptr::null_mut();
        check_status!(unsafe { sys::napi_get_reference_value(raw_env, names.array, &mut array) })?;
        check_status!(unsafe { sys::napi_set_element(raw_env, array, at as u32, value.raw()) })?;
        Ok(KeptName::New(value))
    })
}

/// Releases a thread's names when its environment is torn down.
unsafe extern "C" fn release(env: *mut std::ffi::c_void) {
    NAMES.with_borrow_mut(|names| {
        if !names.array.is_null() {
            unsafe { sys::napi_delete_reference(env.cast(), names.array) };
        }
        *names = Names::NONE;
    });
}
