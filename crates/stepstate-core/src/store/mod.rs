//! Stores built on the engine beyond memory: the durable file store ([`file`]).

pub mod file;

pub use file::{open_shared, release_shared, FileOptions, FileStore};
