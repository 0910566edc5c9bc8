//! The per-call store functions (`get`, `set`, `update`, `delete`, and the Redis store's
//! `redis*Start` of the same four), registered as plain N-API callbacks.
//!
//! A `#[napi]` function's generated callback also opens and closes a borrow scope on every
//! call (napi-rs tracks borrowed class instances across async work), which callgrind counts
//! at about 2,000 instructions, a malloc and a free among them: nearly half of a native `get`.
//! These take no class instances and start no napi-rs async work (a Redis call spawns its
//! own task and reports through its queue), so each is registered here as a callback that
//! reads its arguments, calls the function in `store.rs` or `redis.rs` and converts its
//! result, nothing else. The conversions are the same `FromNapiValue`/`ToNapiValue` the
//! macro would use.

use crate::args::{Name, Text};
use crate::handle::HandleRef;
use crate::redis::{self, CompletionsArg};
use crate::store;
use napi::bindgen_prelude::{sys, FromNapiValue, Object, ToNapiValue};
use napi::{check_status, Env, JsError, JsValue, Result};
use napi_derive::napi;
use std::ffi::CStr;
use std::ptr;

/// Defines `unsafe extern "C" fn $callback(env, info)` that calls `$function(args...)` (with
/// `&env` first, given `env`) with its arguments converted to the given types, returns its
/// result as a JS value, and throws its error.
macro_rules! callback {
    ($callback:ident => $function:path, $($arg:ident: $ty:ty),*) => {
        callback!(@define $callback, |_env| $function($($arg),*), $($arg: $ty),*);
    };
    ($callback:ident => env $function:path, $($arg:ident: $ty:ty),*) => {
        callback!(@define $callback, |env| $function(env, $($arg),*), $($arg: $ty),*);
    };
    (@define $callback:ident, |$env:ident| $call:expr, $($arg:ident: $ty:ty),*) => {
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
                let $env = &Env::from_raw(raw_env);
                let result = $call?;
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

callback!(set => env store::set, handle: HandleRef, group: Name, key: Name, value: Text, ttl_ms: f64, known_old: f64);
callback!(get => env store::get, handle: HandleRef, group: Name, key: Name, known: f64);
callback!(update => env store::update, handle: HandleRef, group: Name, key: Name, ops: Text, known_old: f64);
callback!(delete => env store::delete, handle: HandleRef, group: Name, key: Name, known_old: f64);
callback!(redis_set => redis::redis_set_start, id: u32, completions: CompletionsArg, call: u32, group: Name, key: Name, value: Text, ttl_ms: f64, known_old: f64);
callback!(redis_get => redis::redis_get_start, id: u32, completions: CompletionsArg, call: u32, group: Name, key: Name, known: f64);
callback!(redis_update => redis::redis_update_start, id: u32, completions: CompletionsArg, call: u32, group: Name, key: Name, ops: Text, known_old: f64);
callback!(redis_delete => redis::redis_delete_start, id: u32, completions: CompletionsArg, call: u32, group: Name, key: Name, known_old: f64);

/// Adds the callbacks to the module's exports, under their JS names (binding.d.ts, which
/// napi-rs writes from `#[napi]` items, does not list them; `store.rs` documents each).
#[napi(module_exports)]
pub fn register_fast_calls(exports: Object, env: Env) -> Result<()> {
    let calls: [(&CStr, sys::napi_callback); 8] = [
        (c"set", Some(set)),
        (c"get", Some(get)),
        (c"update", Some(update)),
        (c"delete", Some(delete)),
        (c"redisSetStart", Some(redis_set)),
        (c"redisGetStart", Some(redis_get)),
        (c"redisUpdateStart", Some(redis_update)),
        (c"redisDeleteStart", Some(redis_delete)),
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
