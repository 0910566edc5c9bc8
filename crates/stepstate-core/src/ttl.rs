//! Time and expiry: the clock the engine reads (replaceable by a manual one in tests), the
//! conversion of a TTL in milliseconds to an absolute expiry time, and the per-shard expiry index
//! the background sweep uses so that it looks only at items that are due, never at everything.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The engine's notion of now, in milliseconds since the Unix epoch. Expiry times are absolute
/// wall-clock times so that they keep their meaning across restarts of a durable store.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: makes TTL tests exact and instant.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A manual clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now_ms: AtomicU64::new(now_ms),
        })
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// The absolute expiry time of an item written at `now_ms` with a TTL of `ttl_ms`
/// milliseconds; at least one millisecond in the future.
pub fn expires_at(now_ms: u64, ttl_ms: u64) -> u64 {
    now_ms.saturating_add(ttl_ms.max(1))
}

/// Whether an item with expiry `expires_at_ms` (0 = never) is expired at `now_ms`.
pub fn is_expired(expires_at_ms: u64, now_ms: u64) -> bool {
    expires_at_ms != 0 && expires_at_ms <= now_ms
}

/// One shard's items that carry an expiry, ordered by due time. Entries are not removed when an
/// item is overwritten or deleted; the sweep skips an entry whose item no longer has that
/// exact expiry time, so the write path only ever inserts.
#[derive(Debug, Default)]
pub struct ExpiryIndex {
    due: Mutex<BTreeSet<Due>>,
}

/// An entry of [`ExpiryIndex`]: when the item is due (ms), its group and its key.
type Due = (u64, Arc<str>, Arc<str>);

impl ExpiryIndex {
    /// Records that `group`/`key` is due at `expires_at_ms`.
    pub fn insert(&self, expires_at_ms: u64, group: Arc<str>, key: Arc<str>) {
        self.due.lock().insert((expires_at_ms, group, key));
    }

    /// Takes every entry due at or before `now_ms`, earliest first.
    pub fn take_due(&self, now_ms: u64) -> Vec<(u64, Arc<str>, Arc<str>)> {
        let mut due = self.due.lock();
        let mut taken = Vec::new();
        while let Some(first) = due.first() {
            if first.0 > now_ms {
                break;
            }
            if let Some(entry) = due.pop_first() {
                taken.push(entry);
            }
        }
        taken
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.due.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_due_returns_only_entries_at_or_before_now_in_order() {
        let index = ExpiryIndex::default();
        let name = |s: &str| Arc::<str>::from(s);
        index.insert(30, name("g"), name("c"));
        index.insert(10, name("g"), name("a"));
        index.insert(20, name("g"), name("b"));
        let due: Vec<_> = index.take_due(20).into_iter().map(|e| e.2).collect();
        assert_eq!(due, [name("a"), name("b")]);
        let rest: Vec<_> = index.take_due(u64::MAX).into_iter().map(|e| e.0).collect();
        assert_eq!(rest, [30]);
    }

    #[test]
    fn expiry_is_at_least_one_millisecond_ahead() {
        assert_eq!(expires_at(100, 0), 101);
        assert!(!is_expired(0, u64::MAX));
        assert!(is_expired(100, 100));
    }
}
