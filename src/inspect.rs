//! Inspecting a file store without opening it (for `npx stepstate`, `lib/cli/`): who holds its
//! lock, its content as recovery reads it from disk, and a check of every checksum. Nothing
//! here takes the lock (beyond an instant's test), creates or writes a file, so it works on a
//! store another process has open and shows what was on disk at that moment.

use crate::errors::to_js;
use napi::bindgen_prelude::External;
use napi::Result;
use napi_derive::napi;
use std::path::Path;
use std::sync::Arc;
use stepstate_core::engine::EngineOptions;
use stepstate_core::log::dir::Plan;
use stepstate_core::store::file::check::{
    check_file, files_to_check, lock_holder, CheckedKind, Holder,
};
use stepstate_core::store::file::recover::recover;
use stepstate_core::Engine;

/// The pid of the process holding the store at `path`: `null` when nobody holds it (or there
/// is no `LOCK`), `0` when the holder's pid is not written in it.
#[napi]
pub fn file_holder(path: String) -> Result<Option<u32>> {
    match lock_holder(Path::new(&path)).map_err(to_js)? {
        Holder::Nobody => Ok(None),
        Holder::Process(pid) => Ok(Some(pid.unwrap_or(0))),
    }
}

/// A store as recovery read it from disk: an engine of its own, apart from any open store.
pub struct ReadOnlyStore {
    // Declared before the map, so dropped before it: values may point into the map.
    engine: Arc<Engine>,
    /// The snapshot's map (a `memmap2::Mmap`), kept as long as the engine whose values point
    /// into it.
    _snapshot_map: Option<Box<dyn std::any::Any + Send>>,
}

/// Reads the store at `path` as it is on disk (snapshot and logs, the rules of recovery: a
/// torn tail past what was synced is left out, damage is `CORRUPT` naming file and offset).
#[napi]
pub fn file_read(path: String) -> Result<External<ReadOnlyStore>> {
    let plan = Plan::read(Path::new(&path)).map_err(to_js)?;
    let recovered = recover(&plan, EngineOptions::default()).map_err(to_js)?;
    // Nothing of this engine should move by itself: what expires shows as absent anyway.
    recovered.engine.shut_down();
    Ok(External::new(ReadOnlyStore {
        engine: recovered.engine,
        _snapshot_map: recovered
            .snapshot_map
            .map(|map| Box::new(map) as Box<dyn std::any::Any + Send>),
    }))
}

/// The sorted names of the non-empty groups of a read store.
#[napi]
pub fn read_groups(store: &External<ReadOnlyStore>) -> Vec<String> {
    store.engine.list_groups()
}

/// A group's entries as the text of a JSON array of `{ key, value }`, in insertion order.
#[napi]
pub fn read_entries(store: &External<ReadOnlyStore>, group: String) -> Result<String> {
    store.engine.entries_json(&group).map_err(to_js)
}

/// A value's JSON text, `null` when absent.
#[napi]
pub fn read_get(
    store: &External<ReadOnlyStore>,
    group: String,
    key: String,
) -> Result<Option<String>> {
    store.engine.get(&group, &key).map_err(to_js)
}

/// A file that a check reads.
#[napi(object)]
pub struct FileToCheck {
    /// `"snapshot"` or `"log"`.
    pub kind: String,
    pub path: String,
}

/// What the check of one file found.
#[napi(object)]
pub struct CheckedFile {
    pub kind: String,
    pub path: String,
    /// Length in bytes.
    pub bytes: f64,
    /// Valid records read.
    pub records: f64,
    /// Bytes after a log's last valid record that recovery drops.
    pub dropped_tail_bytes: f64,
    /// Where the valid data ends in a damaged file.
    pub damage_offset: Option<f64>,
    /// Recovery's message for the damage, naming file and offset; absent when the file is
    /// sound.
    pub damage: Option<String>,
}

/// The files a check of the store at `path` reads, in recovery's order; `CORRUPT` when the
/// directory lacks a log recovery needs.
#[napi]
pub fn files_to_check_at(path: String) -> Result<Vec<FileToCheck>> {
    let plan = Plan::read(Path::new(&path)).map_err(to_js)?;
    Ok(files_to_check(&plan)
        .into_iter()
        .map(|(kind, path)| FileToCheck {
            kind: kind.name().to_string(),
            path: path.to_string_lossy().into_owned(),
        })
        .collect())
}

/// Checks every checksum of one file (`kind` is `"snapshot"` or `"log"`); damage is part of
/// the result, an unreadable file is `IO`.
#[napi]
pub fn check_store_file(kind: String, path: String) -> Result<CheckedFile> {
    let kind = if kind == "snapshot" {
        CheckedKind::Snapshot
    } else {
        CheckedKind::Log
    };
    let check = check_file(kind, Path::new(&path)).map_err(to_js)?;
    Ok(CheckedFile {
        kind: check.kind.name().to_string(),
        path: check.path.to_string_lossy().into_owned(),
        bytes: check.bytes as f64,
        records: check.records as f64,
        dropped_tail_bytes: check.dropped_tail_bytes as f64,
        damage_offset: check
            .damage
            .as_ref()
            .and_then(|d| d.offset)
            .map(|o| o as f64),
        damage: check.damage.map(|d| d.message),
    })
}
