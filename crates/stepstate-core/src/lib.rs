//! stepstate-core: grouped key-value state for workflow steps, with no napi dependency.
//!
//! Crate map:
//! - [`engine`]: groups, keys, insertion order, per-group locking, the write path.
//! - [`ops`]: the UpdateOp engine (one file per op, path parsing, a dispatch enum).
//! - [`error`]: the single error type and its stable codes.
//! - [`events`]: change events, filtered per subscriber and queued for batched delivery.
//! - [`ttl`]: clocks, expiry times and the per-shard expiry index of the background sweep.
//! - [`log`]: the durable file format: checksummed records, the log writer, recovery, snapshots.
//! - [`store`]: what a durable store needs besides its files (the directory lock).
//!
//! Values live in the engine as JSON text: the binding hands over `JSON.stringify` output and
//! returns text for `JSON.parse`, which is several times cheaper than converting through a
//! tree of N-API values. Only `update` parses a value, applies ops and serializes it again.

pub mod engine;
pub mod error;
pub mod events;
pub mod log;
pub mod ops;
pub mod store;
pub mod ttl;

pub use engine::{Engine, EngineOptions, Entry, GroupRead, Replaced, Ttl, Version, WriteResult};
pub use error::{Error, Result};
