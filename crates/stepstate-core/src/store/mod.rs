//! Stores beyond memory: the durable file store ([`file`]), which owns an engine and its log,
//! and the Redis store ([`redis`]), shared by every process on the same Redis and prefix.

pub mod file;
pub mod redis;

pub use self::redis::{GroupRead, RedisOptions, RedisStore};
pub use file::{open_shared, release_shared, FileOptions, FileStore};
