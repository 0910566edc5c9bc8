//! Store handles: how JavaScript holds a store. A [`Handle`] is one `StateManager`'s view of
//! an engine, given to JavaScript as a tagged external ([`NewHandle`]) and read back on every
//! call with one N-API call and a tag check ([`HandleRef`]), without napi-rs's shared registry
//! of externals.

use crate::args::js_type;
use crate::errors::to_js;
use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Result, ValueType};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use stepstate_core::store::file::release_shared;
use stepstate_core::{Engine, Error, FileStore};

/// One `StateManager`'s view of an engine. Closing a handle makes its later calls fail with
/// `CLOSED` without touching other handles that share the engine.
#[repr(C)]
pub struct Handle {
    /// [`HANDLE_TAG`], checked on every call so that a foreign external is refused.
    tag: u64,
    pub(crate) engine: Arc<Engine>,
    closed: AtomicBool,
    /// The file store this handle holds one reference of (see `open_shared`); `None` for a
    /// memory store.
    file: Option<Arc<FileStore>>,
}

/// The first field of every [`Handle`] ("STEPSTAT").
const HANDLE_TAG: u64 = u64::from_le_bytes(*b"STEPSTAT");

impl Handle {
    /// A handle on a memory store's engine.
    pub(crate) fn memory(engine: Arc<Engine>) -> Handle {
        Handle {
            tag: HANDLE_TAG,
            engine,
            closed: AtomicBool::new(false),
            file: None,
        }
    }

    /// A handle holding one reference of a shared file store.
    pub(crate) fn file(store: Arc<FileStore>) -> Handle {
        Handle {
            tag: HANDLE_TAG,
            engine: store.engine().clone(),
            closed: AtomicBool::new(false),
            file: Some(store),
        }
    }

    /// Closes the handle once; the last handle of a file store closes the store.
    pub(crate) fn close(&self) -> stepstate_core::Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.file {
            Some(store) => release_shared(store),
            None => {
                self.engine.release();
                Ok(())
            }
        }
    }

    /// The file store, unless this handle was closed (`CLOSED`); `None` for a memory store.
    pub(crate) fn file_store(&self) -> napi::Result<Option<&Arc<FileStore>>> {
        self.engine()?;
        Ok(self.file.as_ref())
    }

    /// The engine, unless this handle was closed (`CLOSED`).
    pub(crate) fn engine(&self) -> napi::Result<&Engine> {
        if self.closed.load(Ordering::Acquire) {
            return Err(to_js(Error::Closed));
        }
        Ok(&self.engine)
    }
}

/// A manager that was garbage-collected without `close()` still gives back its reference,
/// so the directory lock is not held forever.
impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A [`Handle`] passed back from JavaScript, read with one `napi_get_value_external`.
///
/// napi-rs's `External<T>` checks every access against a process-wide `Mutex<HashMap>` of
/// payloads; that would make every call, from every thread, take one shared lock. The handle
/// is instead a plain external whose first field is [`HANDLE_TAG`].
pub struct HandleRef(*const Handle);

impl std::ops::Deref for HandleRef {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        // SAFETY: `from_napi_value` checked the pointer is a live Handle (the external being
        // an argument of the current call keeps it alive until the call returns).
        unsafe { &*self.0 }
    }
}

impl ValidateNapiValue for HandleRef {}

impl FromNapiValue for HandleRef {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut data = std::ptr::null_mut();
        let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
        // SAFETY: every external this module creates points to a `#[repr(C)]` struct whose
        // first field is a u64 tag; only handles carry HANDLE_TAG.
        if status != sys::Status::napi_ok
            || data.is_null()
            || unsafe { *(data as *const u64) } != HANDLE_TAG
        {
            return Err(to_js(Error::InvalidArgument(
                "not a stepstate store handle".into(),
            )));
        }
        Ok(HandleRef(data as *const Handle))
    }
}

/// A new handle, given to JavaScript as an external that owns it until garbage collection.
pub struct NewHandle(pub(crate) Handle);

unsafe extern "C" fn drop_handle(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    // SAFETY: `data` is the Box::into_raw of `to_napi_value` below, finalized once.
    drop(unsafe { Box::from_raw(data as *mut Handle) });
}

impl ToNapiValue for NewHandle {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let data = Box::into_raw(Box::new(value.0));
        let mut external = std::ptr::null_mut();
        let status = unsafe {
            sys::napi_create_external(
                env,
                data.cast(),
                Some(drop_handle),
                std::ptr::null_mut(),
                &mut external,
            )
        };
        if status != sys::Status::napi_ok {
            drop(unsafe { Box::from_raw(data) });
            return Err(to_js(Error::Io("cannot create the store handle".into())));
        }
        Ok(external)
    }
}

js_type! {
    HandleRef => "External", External;
    NewHandle => "External", External;
}
