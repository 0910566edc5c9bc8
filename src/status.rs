//! What the last in-process call of a JS thread reports beside its return value (the version
//! it read or wrote, whether the item was used before, the length of an update's new text,
//! the journal ticket of a write), kept in a `Float64Array` that JavaScript reads without a
//! call.
//!
//! Returning these with the value would cost an object or an array per call, and a function
//! per figure an N-API call each (about as much, for all of them, as a cached `get`). So each
//! JS thread has one array, made by the first `callStatus()` of the thread and
//! returned to every later caller: every copy of `lib/backend/native.js` on the thread reads
//! the one the binding writes. Each call writes the slots it reports before it returns, on
//! the thread that called it, and the caller reads them at once.

use napi::bindgen_prelude::{sys, Unknown};
use napi::{check_status, Env, Result};
use napi_derive::napi;
use std::cell::Cell;
use std::ptr;
use stepstate_core::Version;

/// The slots of the array; `lib/backend/native.js` names the same indices.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// The version of what the last `set`, `get`, `update` or `getGroup` wrote or read (0:
    /// none), which the read cache keeps beside the parsed value.
    Version = 0,
    /// The length in bytes of the JSON text the last `update` stored (for the read cache's
    /// budget when `update` sent only the changed members).
    Length = 1,
    /// 1 when the item the last `set`, `get` or `update` touched had been read, or written
    /// again, since it was created, else 0: the read cache keeps only values used again.
    Reused = 2,
    /// The journal ticket of the last write (0: it wrote nothing), for `sync: 'always'`.
    Ticket = 3,
    /// What the last `update` answered: 0 its usual answer (see `store::update`); 1 or more:
    /// it changed one member, to the number in [`Slot::Number`], whose name is what it
    /// returned (1) or the string at index `answer - 2` of `memberNames()` (2 and up).
    Answer = 4,
    /// The new value of the member named by an `update` whose [`Slot::Answer`] is 1 or more.
    Number = 5,
}

const SLOTS: usize = 6;

thread_local! {
    /// The data of this thread's array (null until made, and again once its env is gone).
    static DATA: Cell<*mut f64> = const { Cell::new(ptr::null_mut()) };
    /// The reference that keeps the array alive for the env's lifetime.
    static ARRAY: Cell<sys::napi_ref> = const { Cell::new(ptr::null_mut()) };
}

/// Writes `value` into `slot` of this thread's array, if JavaScript asked for one.
pub(crate) fn note(slot: Slot, value: f64) {
    let data = DATA.get();
    if !data.is_null() {
        // SAFETY: `data` points at SLOTS f64s of an ArrayBuffer's off-heap store, which the
        // reference in ARRAY keeps alive (a backing store never moves) until the env's cleanup
        // hook nulls DATA; only this thread writes it, and JS reads it on this thread only
        // between calls.
        unsafe { data.add(slot as usize).write(value) }
    }
}

/// Writes what a `set`, `get` or `update` reports of its item: its version (0: none) and
/// whether it was used before (see [`Slot`]).
pub(crate) fn note_item(version: Version, reused: bool) {
    let data = DATA.get();
    if !data.is_null() {
        // SAFETY: as in `note`.
        unsafe {
            data.add(Slot::Version as usize).write(version as f64);
            data.add(Slot::Reused as usize)
                .write(f64::from(u8::from(reused)));
        }
    }
}

/// This JS thread's status array (a `Float64Array` of 6: version, length, reused, ticket,
/// answer, number; see `Slot`), the same object on every call.
#[napi(ts_return_type = "Float64Array")]
pub fn call_status(env: &Env) -> Result<Unknown<'_>> {
    let raw_env = env.raw();
    let existing = ARRAY.get();
    if !existing.is_null() {
        let mut value = ptr::null_mut();
        check_status!(unsafe { sys::napi_get_reference_value(raw_env, existing, &mut value) })?;
        return Ok(unsafe { Unknown::from_raw_unchecked(raw_env, value) });
    }
    let (data, value) = new_float64_array(env, SLOTS)?;
    let mut reference = ptr::null_mut();
    check_status!(unsafe { sys::napi_create_reference(raw_env, value, 1, &mut reference) })?;
    check_status!(unsafe {
        sys::napi_add_env_cleanup_hook(raw_env, Some(forget), raw_env as *mut std::ffi::c_void)
    })?;
    ARRAY.set(reference);
    DATA.set(data);
    Ok(unsafe { Unknown::from_raw_unchecked(raw_env, value) })
}

/// A new `Float64Array` of `len` zeros over an ArrayBuffer of its own, and that buffer's data.
/// An ArrayBuffer's store is always off the V8 heap (a small typed array made alone may live
/// on it, and move), so the data stays where it is while the array lives.
pub(crate) fn new_float64_array(env: &Env, len: usize) -> Result<(*mut f64, sys::napi_value)> {
    let raw_env = env.raw();
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut array = ptr::null_mut();
    check_status!(unsafe {
        sys::napi_create_arraybuffer(
            raw_env,
            len * std::mem::size_of::<f64>(),
            &mut data,
            &mut buffer,
        )
    })?;
    check_status!(unsafe {
        sys::napi_create_typedarray(
            raw_env,
            sys::TypedarrayType::float64_array,
            len,
            buffer,
            0,
            &mut array,
        )
    })?;
    Ok((data.cast(), array))
}

/// The env is going away: stop writing into its array and let it go.
unsafe extern "C" fn forget(env: *mut std::ffi::c_void) {
    DATA.set(ptr::null_mut());
    let reference = ARRAY.replace(ptr::null_mut());
    if !reference.is_null() {
        unsafe { sys::napi_delete_reference(env.cast(), reference) };
    }
}
