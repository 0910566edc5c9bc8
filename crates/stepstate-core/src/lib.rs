//! stepstate-core: grouped key-value state for workflow steps, with no napi dependency.
//!
//! Crate map (each module depends only on those listed before it):
//! - [`error`]: the single error type and its stable codes.
//! - [`json`], [`text`]: JSON text built by hand; a stored value's text (heap or mapped).
//! - [`ttl`]: clocks, expiry times and the per-shard expiry index of the background sweep.
//! - [`ops`]: the UpdateOp engine (one file per op, path parsing, a dispatch enum).
//! - [`events`]: change events, filtered per subscriber and queued for batched delivery.
//! - [`log`]: the durable file format: checksummed records, the log writer, replay, snapshots,
//!   the layout of a store directory and its lock.
//! - [`write`]: the rules every write obeys in every store (names, sizes, TTL, expiry counts
//!   as absent, what set/update/delete make of an item, the change event).
//! - [`engine`]: the in-process map: shards, group locks, insertion order, versions; commits
//!   through `write`, with an optional [`engine::Journal`] (none: a memory store).
//! - [`store`]: stores built on the engine: the durable file store (which owns an engine and
//!   its log, with read-only recovery and background compaction).
//!
//! Values live as JSON text: the binding hands over `JSON.stringify` output and returns text
//! for `JSON.parse`, which is several times cheaper than converting through a tree of N-API
//! values. Only `update` parses a value, applies ops and serializes it again.

pub mod engine;
pub mod error;
pub mod events;
mod json;
pub mod log;
pub mod ops;
pub mod store;
pub mod text;
pub mod ttl;
pub mod write;

pub use engine::{
    Engine, EngineOptions, Entry, GroupRead, Removed, Replaced, Ttl, Version, WriteResult,
};
pub use error::{Error, Result};
pub use store::file::FileStore;
