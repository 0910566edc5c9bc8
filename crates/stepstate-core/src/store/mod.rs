//! Storage backends of the engine. For now only the piece the file backend needs first: the
//! exclusive lock on a store directory ([`lock::DirLock`]).

pub mod lock;

pub use lock::DirLock;
