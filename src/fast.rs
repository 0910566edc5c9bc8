//! The per-call store functions (`get`, `set`, `update`, `delete`), registered as plain N-API
//! callbacks.
//!
//! A `#[napi]` function's generated callback also opens and closes a borrow scope on every
//! call (napi-rs tracks borrowed class instances across async work), which costs about 1,200
//! instructions: about a third of a cached `get` in all. These four take no class instances
//! and start no async work, so each is registered here as a callback that reads its
//! arguments, calls the function in `store.rs` and converts its result, nothing else. The
//! conversions are the same `FromNapiValue`/`ToNapiValue` the macro would use.

use crate::args::{Name, Text};
use crate::handle::HandleRef;
use crate::store;
use napi::bindgen_prelude::{sys, FromNapiValue, Object, ToNapiValue};
use napi::{check_status, Env, JsError, JsValue, Result};
use napi_derive::napi;
use std::ffi::CStr;
use std::ptr;

/// Defines `unsafe extern "C" fn $callback(env, info)` that calls `store::$function(&env,
/// args...)` with its arguments converted to the given types, returns its result as a JS
/// value, and throws its error.
macro_rules! callback {
    ($callback:ident => $function:ident($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $callback(
            raw_env: sys::napi_env,
            info: sys::napi_callback_info,
        ) -> sys::napi_value {
            const ARGS: usize = [$(stringify!($arg)),*].len();
            let call = || -> Result<sys::napi_value> {
                // Missing arguments read as `undefined`, which every conversion rejects.
                let mut argv = [ptr::null_mut(); ARGS];
                let mut argc = ARGS;
                check_status!(unsafe {
                    sys::napi_get_cb_info(
                        raw_env,
                        info,
                        &mut argc,
                        argv.as_mut_ptr(),
                        ptr::null_mut(),
                        ptr::null_mut(),
                    )
                })?;
                let mut argv = argv.into_iter();
                $(let $arg = unsafe { <$ty>::from_napi_value(raw_env, argv.next().unwrap()) }?;)*
                let env = Env::from_raw(raw_env);
                let result = store::$function(&env, $($arg),*)?;
                unsafe { ToNapiValue::to_napi_value(raw_env, result) }
            };
            match call() {
                Ok(value) => value,
                Err(err) => {
                    unsafe { JsError::from(err).throw_into(raw_env) };
                    ptr::null_mut()
                }
            }
        }
    };
}

callback!(set_callback => set(handle: HandleRef, group: Name, key: Name, value: Text, ttl_ms: f64, known_old: f64));
callback!(get_callback => get(handle: HandleRef, group: Name, key: Name, known: f64));
callback!(update_callback => update(handle: HandleRef, group: Name, key: Name, ops: Text, known_old: f64));
callback!(delete_callback => delete(handle: HandleRef, group: Name, key: Name, known_old: f64));

/// Adds the callbacks to the module's exports, under their JS names (binding.d.ts, which
/// napi-rs writes from `#[napi]` items, does not list them; `store.rs` documents each).
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object, env: Env) -> Result<()> {
    let calls: [(&CStr, sys::napi_callback); 4] = [
        (c"set", Some(set_callback)),
        (c"get", Some(get_callback)),
        (c"update", Some(update_callback)),
        (c"delete", Some(delete_callback)),
    ];
    for (name, callback) in calls {
        let mut function = ptr::null_mut();
        check_status!(unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr(),
                name.count_bytes() as isize,
                callback,
                ptr::null_mut(),
                &mut function,
            )
        })?;
        check_status!(unsafe {
            sys::napi_set_named_property(env.raw(), exports.raw(), name.as_ptr(), function)
        })?;
    }
    Ok(())
}
