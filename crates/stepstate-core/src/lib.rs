//! stepstate-core: grouped key-value state for workflow steps, with no napi dependency.
//!
//! Crate map:
//! - [`engine`]: groups, keys, insertion order, per-group locking, the write path.
//! - [`ops`]: the UpdateOp engine (one file per op, path parsing, a dispatch enum).
//! - [`error`]: the single error type and its stable codes.
//!
//! Values live in the engine as JSON text: the binding hands over `JSON.stringify` output and
//! returns text for `JSON.parse`, which is several times cheaper than converting through a
//! tree of N-API values. Only `update` parses a value, applies ops and serializes it again.

pub mod engine;
pub mod error;
pub mod ops;

pub use engine::{Engine, EngineOptions, Entry, WriteResult};
pub use error::{Error, Result};
