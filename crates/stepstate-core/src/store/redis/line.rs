//! The line of a key's calls in one process: a call takes its place when it is made (not
//! when its task first runs, for tasks run in any order), so the calls of one key run in the
//! order they were made. Keys share the locks of 1,024 stripes; a write holds its stripe's lock
//! alone until answered, a get shares it until answered (a read of a whole group shares every
//! stripe's), and all are served first come, first served.

use std::future::Future;
use std::sync::Arc;

/// The lock of a stripe of keys: reads share it, a write holds it alone; both are served
/// first come, first served.
pub(super) type KeyLock = Arc<tokio::sync::RwLock<()>>;

/// A key's lock, held.
pub(super) enum Guard {
    #[allow(dead_code)] // held for its drop
    Read(tokio::sync::OwnedRwLockReadGuard<()>),
    #[allow(dead_code)] // held for its drop
    Write(tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// A call's place in the line of its key's calls (see `RedisStore::in_line`).
pub(super) enum Place {
    /// The key's lock, held.
    Held(Guard),
    /// Queued for the lock behind the calls made before.
    Queued(std::pin::Pin<Box<dyn Future<Output = Guard> + Send>>),
}

impl Place {
    /// A write's place in the line of `lock`, taken now: it holds the lock alone when it is
    /// free, or queues for it (the lock future polled once, so that it is in the queue from
    /// this moment).
    pub(super) fn write(lock: &KeyLock) -> Place {
        match Arc::clone(lock).try_write_owned() {
            Ok(guard) => Place::Held(Guard::Write(guard)),
            Err(_) => {
                let lock = Arc::clone(lock);
                Place::queue(Box::pin(
                    async move { Guard::Write(lock.write_owned().await) },
                ))
            }
        }
    }

    /// A read's place: it shares the lock with other reads, behind the writes before it.
    pub(super) fn read(lock: &KeyLock) -> Place {
        match Arc::clone(lock).try_read_owned() {
            Ok(guard) => Place::Held(Guard::Read(guard)),
            Err(_) => {
                let lock = Arc::clone(lock);
                Place::queue(Box::pin(
                    async move { Guard::Read(lock.read_owned().await) },
                ))
            }
        }
    }

    fn queue(mut queued: std::pin::Pin<Box<dyn Future<Output = Guard> + Send>>) -> Place {
        match queued
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(guard) => Place::Held(guard),
            std::task::Poll::Pending => Place::Queued(queued),
        }
    }

    /// Waits for the calls before; the lock, held until dropped.
    pub(super) async fn reached(self) -> Guard {
        match self {
            Place::Held(guard) => guard,
            Place::Queued(queued) => queued.await,
        }
    }
}

/// Waits for each of `places` in turn (a call in the lines of every key); the locks, held
/// until dropped.
pub(super) async fn reached_all(places: Vec<Place>) -> Vec<Guard> {
    let mut held = Vec::with_capacity(places.len());
    for place in places {
        held.push(place.reached().await);
    }
    held
}
