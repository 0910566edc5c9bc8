//! Recovery, read-only: the plan of a store directory (which snapshot, which logs), the snapshot,
//! then the logs after it, into a new [`Engine`]. Nothing on disk changes and no lock is taken:
//! what opening a store does afterwards (take the lock, delete leftover temp files, cut a
//! dropped tail off the active log, journal the deletion of what expired) belongs to
//! [`FileStore::open`](super::FileStore::open), so a reader can recover a store that another
//! process holds and see what was on disk at that moment.

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::{Engine, EngineOptions};
use crate::error::Result;
use crate::log::dir::Plan;
use crate::log::LogRecord;
use crate::text::{MappedStr, Text};

/// What recovery found.
pub struct Recovered {
    /// The store's state: every item as last committed, minus what expired while it was closed.
    pub engine: Arc<Engine>,
    /// The map of the snapshot that recovered values still point into ([`Text::Mapped`]); it
    /// must outlive them.
    pub snapshot_map: Option<memmap2::Mmap>,
    /// Bytes of valid records in the newest log, where appending continues; `None` when there
    /// is no log yet.
    pub active_len: Option<u64>,
    /// Bytes of live data (names and values), for the compaction threshold.
    pub live_bytes: u64,
    /// The items dropped because they expired while the store was closed.
    pub expired: Vec<(Arc<str>, Arc<str>)>,
}

/// Loads the store planned by `plan` into a new engine with `options`: the newest snapshot,
/// then every log after it in order. Fails with `CORRUPT` when a file is damaged where it must
/// not be (see [`replay_log`](crate::log::replay_log)), `IO` when a file cannot be read.
pub fn recover(plan: &Plan, options: EngineOptions) -> Result<Recovered> {
    let engine = Engine::new(options);
    // Per group, the offset in the snapshot's own log up to which the snapshot already holds
    // its changes (see `LogRecord::GroupMark`).
    let mut marks: HashMap<String, u64> = HashMap::new();
    // The snapshot's values stay in its map, out of the heap.
    let mut snapshot_map = None;
    if let Some(snapshot) = plan.snapshot_to_load() {
        let map = crate::log::map_snapshot(&snapshot)?;
        crate::log::parse_snapshot(&map, &snapshot, |record| {
            match record {
                LogRecord::GroupMark { group, log_offset } => {
                    marks.insert(group.to_owned(), log_offset);
                }
                record => engine.apply_recovered(&record, |value| {
                    let mapped = MappedStr::new(value);
                    debug_assert!(mapped.is_within(&map));
                    Text::Mapped(mapped)
                }),
            }
            Ok(())
        })?;
        snapshot_map = Some(map);
    }
    let snapshot_generation = plan.snapshot_generation().unwrap_or(0);
    let mut active_len = None;
    for &log_generation in plan.log_generations() {
        let skip_marked = log_generation == snapshot_generation && !marks.is_empty();
        let mut offset = 0u64;
        let stats = crate::log::replay_log(&plan.log_path(log_generation), |record| {
            offset += record.encoded_len() as u64;
            let already_in_snapshot = skip_marked
                && record
                    .group()
                    .and_then(|group| marks.get(group))
                    .is_some_and(|&mark| offset <= mark);
            if !already_in_snapshot {
                engine.apply_recovered(&record, |value| Text::Heap(Box::from(value)));
            }
            Ok(())
        })?;
        active_len = Some(stats.valid_len);
    }
    let (live_bytes, expired) = engine.finish_recovery();
    Ok(Recovered {
        engine,
        snapshot_map,
        active_len,
        live_bytes,
        expired,
    })
}
