//! Keeping the runtime's worker awake for a moment while few calls are in flight.
//!
//! A call awaited alone costs, besides Redis's work, the time threads take to wake: the
//! caller's thread wakes the runtime's worker to send the call, Redis's reply wakes the worker,
//! and the worker wakes the caller. A sleeping thread, on a virtual machine above all, takes
//! tens of microseconds to wake: about as long as a local Redis takes to answer. So while at
//! most a few calls are in flight, a task keeps the worker awake for [`LINGER`] after each call
//! is made or answered: it yields, and a worker with nothing else to run then polls its sockets
//! without sleeping. A call made in that time is picked up, and a reply read, with no wake-up.
//!
//! The cost is the worker's time in those moments: with a Redis that answers within `LINGER`
//! (on the same machine or network), about the time the calls are in flight; with a slower
//! one, `LINGER` per call at most. With many calls in flight the worker is busy anyway, and the
//! task sleeps.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Most calls in flight for which the worker is kept awake.
const MOST_IN_FLIGHT: usize = 4;
/// How long the worker stays awake after a call was made or answered.
const LINGER: Duration = Duration::from_micros(100);

/// The calls of a store in flight, when one was last made or answered, and the wake-up of the
/// task that keeps the worker awake.
pub(super) struct Spin {
    in_flight: AtomicUsize,
    /// Nanoseconds after `start` of the last call made or answered.
    last_activity_ns: AtomicU64,
    start: Instant,
    wake: tokio::sync::Notify,
}

/// A call in flight, counted until dropped (answered, failed or given up).
pub(super) struct InFlight<'a>(&'a Spin);

impl Default for Spin {
    fn default() -> Spin {
        Spin {
            in_flight: AtomicUsize::new(0),
            last_activity_ns: AtomicU64::new(0),
            start: Instant::now(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Spin {
    /// Counts a call in flight until the returned value is dropped.
    pub(super) fn call(&self) -> InFlight<'_> {
        self.touch();
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.wake.notify_one();
        }
        InFlight(self)
    }

    fn touch(&self) {
        self.last_activity_ns
            .store(self.elapsed_ns(), Ordering::Release);
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the worker should stay awake now.
    fn lingers(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) > MOST_IN_FLIGHT {
            return false;
        }
        let idle_ns = self
            .elapsed_ns()
            .saturating_sub(self.last_activity_ns.load(Ordering::Acquire));
        idle_ns <= LINGER.as_nanos() as u64
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The task that keeps the worker awake (see the module), until the store aborts it.
pub(super) async fn keep_awake(spin: std::sync::Arc<Spin>) {
    loop {
        spin.wake.notified().await;
        while spin.lingers() {
            tokio::task::yield_now().await;
        }
    }
}
