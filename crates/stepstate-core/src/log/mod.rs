//! The durable file store's building blocks: the record format, the log writer, log replay,
//! snapshots, the layout of a store directory and its lock. The file store decides what to
//! write and when to compact; this module makes it land on disk safely and reads it back.
//!
//! # A store directory
//!
//! ```text
//! <dir>/                    mode 0700; nothing else may be in it
//!   LOCK                    created first; exclusive flock while a process has the store open;
//!                           holds its pid
//!   snapshot-<gen>.snap     every item as of the start of log <gen> (absent for gen 0)
//!   log-<gen>.log           the changes made after snapshot <gen>, in commit order
//!   log-<gen>.log.synced    how many bytes of that log are known synced (see `watermark`)
//!   snapshot-<gen>.snap.tmp a snapshot being written; deleted at open if a crash left it
//! ```
//!
//! Recovery reads the [`Plan`] (which snapshot, which logs; no lock needed), loads the newest
//! snapshot `S` (or starts empty when there is none, `S = 0`), then replays `log-S`,
//! `log-S+1`, ... in order; new writes continue the last log.
//!
//! Compaction, run by the file store: at a moment when no write is in flight, start
//! `log-<G+1>` and send every later write to it; then write every group, one at a time under
//! its read lock, into `snapshot-<G+1>` with a [`SnapshotWriter`] (temp file, fsync, rename,
//! fsync of the directory). A group's changes made while the snapshot is written may be in
//! both the snapshot and `log-<G+1>`: the snapshot records, per group, up to where in
//! `log-<G+1>` it already holds them ([`LogRecord::GroupMark`]), and recovery skips those. Then
//! [`dir::StoreFiles::retire_before`]`(G+1)` deletes the older snapshots and logs. A crash at
//! any step leaves either the old snapshot with every log since it, or the new complete
//! snapshot with its log: never a gap.
//!
//! Every file is created with mode 0600.

pub mod dir;
pub mod lock;
pub mod reader;
pub mod record;
pub mod snapshot;
pub mod watermark;
pub mod writer;

pub use dir::{Plan, StoreFiles};
pub use lock::DirLock;
pub use reader::{replay_log, ReplayStats};
pub use record::LogRecord;
pub use snapshot::{map_snapshot, parse_snapshot, SnapshotWriter};
pub use writer::{LogWriter, SyncPolicy, WriterOptions};
