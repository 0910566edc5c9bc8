//! Storage backends of the engine beyond memory: the durable file store ([`file`]) and the
//! exclusive lock on its directory ([`lock::DirLock`]).

pub mod file;
pub mod lock;

pub use file::{open_shared, release_shared, FileOptions};
pub use lock::DirLock;
