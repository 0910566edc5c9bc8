//! Keeping the runtime's worker awake for a moment while few calls are in flight.
//!
//! A call awaited alone costs, besides Redis's work, the time threads take to wake: the
//! caller's thread wakes the runtime's worker to send the call, Redis's reply wakes the worker,
//! and the worker wakes the caller. A sleeping thread, on a virtual machine above all, takes
//! tens of microseconds to wake: about as long as a local Redis takes to answer. So while at
//! most a few calls are in flight, a task keeps the worker awake: while a call waits for its
//! answer (up to [`FAST_ROUND_TRIP`] since the last call was made or answered), and for
//! [`LINGER`] after the last answer, long enough for the caller to take it and make its next
//! call. It yields, and a worker with nothing else to run then polls its sockets without
//! sleeping. A call made in that time is picked up, and a reply read, with no wake-up.
//!
//! Keeping awake only for `LINGER` after each call made or answered, as this did first, let the
//! worker fall asleep while a write script ran: an awaited `set` took 365-661 µs against
//! 216-284 µs now (and a `get` 111-220 µs either way), in alternated runs on one machine.
//!
//! The cost is the worker's time in those moments: the time the calls are in flight, and
//! `LINGER` after the last. It is paid only for a Redis that answers quickly (on the same
//! machine or network): once a call took longer than `FAST_ROUND_TRIP`, as calls to a distant
//! server do, the worker sleeps as usual until a call is answered within it again (a wake-up is
//! then a small part of a call's time). With many calls in flight the worker is busy anyway,
//! and the task sleeps. And one store's task at a time keeps a worker awake in a process: in
//! Node every store shares one worker, but in Python each manager has a runtime of its own, and
//! several busy threads would only compete for the cores.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Most calls in flight for which the worker is kept awake.
const MOST_IN_FLIGHT: usize = 4;
/// How long the worker stays awake after the last call in flight was answered.
const LINGER: Duration = Duration::from_micros(250);
/// The longest time from a call to its answer for which the worker is kept awake (and stays
/// awake for a call in flight): a local Redis answers in well under this, even with the
/// worker asleep.
const FAST_ROUND_TRIP: Duration = Duration::from_micros(500);

/// The calls of a store in flight, when one was last made or answered, and the wake-up of the
/// task that keeps the worker awake.
pub(super) struct Spin {
    in_flight: AtomicUsize,
    /// Nanoseconds after `start` of the last call made or answered.
    last_activity_ns: AtomicU64,
    /// Whether the last call answered took at most [`FAST_ROUND_TRIP`].
    fast: AtomicBool,
    start: Instant,
    wake: tokio::sync::Notify,
}

/// A call in flight, counted until dropped (answered, failed or given up), and when it was made
/// (nanoseconds after `Spin::start`).
pub(super) struct InFlight<'a>(&'a Spin, u64);

impl Default for Spin {
    fn default() -> Spin {
        Spin {
            in_flight: AtomicUsize::new(0),
            last_activity_ns: AtomicU64::new(0),
            fast: AtomicBool::new(true),
            start: Instant::now(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl Spin {
    /// Counts a call in flight until the returned value is dropped.
    pub(super) fn call(&self) -> InFlight<'_> {
        let now = self.touch();
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.wake.notify_one();
        }
        InFlight(self, now)
    }

    /// Records activity now; returns now.
    fn touch(&self) -> u64 {
        let now = self.elapsed_ns();
        self.last_activity_ns.store(now, Ordering::Release);
        now
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the worker should stay awake now.
    fn lingers(&self) -> bool {
        self.lingers_at(self.elapsed_ns())
    }

    /// Whether the worker should stay awake at `now_ns` (nanoseconds after `start`).
    fn lingers_at(&self, now_ns: u64) -> bool {
        if self.in_flight.load(Ordering::Acquire) > MOST_IN_FLIGHT
            || !self.fast.load(Ordering::Acquire)
        {
            return false;
        }
        let idle_ns = now_ns.saturating_sub(self.last_activity_ns.load(Ordering::Acquire));
        let limit = if self.in_flight.load(Ordering::Acquire) > 0 {
            FAST_ROUND_TRIP
        } else {
            LINGER
        };
        idle_ns <= limit.as_nanos() as u64
    }

    /// Records a call made at `made_ns` and answered (or given up) at `now_ns`.
    fn answered(&self, made_ns: u64, now_ns: u64) {
        self.last_activity_ns.store(now_ns, Ordering::Release);
        let fast = now_ns.saturating_sub(made_ns) <= FAST_ROUND_TRIP.as_nanos() as u64;
        self.fast.store(fast, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.answered(self.1, self.0.elapsed_ns());
    }
}

/// Whether a store's task is keeping a worker awake in this process (see the module).
static KEEPING_AWAKE: AtomicBool = AtomicBool::new(false);

/// The turn to keep a worker awake, held until dropped.
struct Turn;

impl Turn {
    /// The turn, unless another store's task has it.
    fn take() -> Option<Turn> {
        KEEPING_AWAKE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        KEEPING_AWAKE.store(false, Ordering::Release);
    }
}

/// The task that keeps the worker awake (see the module), until the store aborts it.
pub(super) async fn keep_awake(spin: std::sync::Arc<Spin>) {
    loop {
        spin.wake.notified().await;
        // Another store's task keeps a worker awake: this one tries again at its next call.
        let Some(_turn) = Turn::take() else {
            continue;
        };
        while spin.lingers() {
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    /// A call counted in flight, made at `made_ns`, whose answer the test records itself.
    fn call_at(spin: &Spin, made_ns: u64) -> u64 {
        std::mem::forget(spin.call());
        spin.last_activity_ns.store(made_ns, Ordering::Release);
        made_ns
    }

    #[test]
    fn the_worker_lingers_after_quick_calls_and_not_after_a_slow_one() {
        let spin = Spin::default();
        let t = 10_000 * US;
        let made = call_at(&spin, t);
        assert!(spin.lingers_at(t + 80 * US), "a call in flight");
        assert!(
            spin.lingers_at(t + 400 * US),
            "a call in flight for longer than LINGER"
        );
        assert!(
            !spin.lingers_at(t + 600 * US),
            "unanswered for longer than FAST_ROUND_TRIP"
        );
        spin.answered(made, t + 50 * US);
        assert!(spin.lingers_at(t + 250 * US), "just after a quick answer");
        assert!(!spin.lingers_at(t + 400 * US), "long after the last call");

        let made = call_at(&spin, t + 1_000 * US);
        spin.answered(made, t + 2_000 * US); // 1 ms: a distant server
        let made = call_at(&spin, t + 2_010 * US);
        assert!(
            !spin.lingers_at(t + 2_020 * US),
            "a call in flight after a slow one"
        );
        spin.answered(made, t + 2_060 * US);
        assert!(spin.lingers_at(t + 2_070 * US), "a quick answer again");
    }

    #[test]
    fn one_store_at_a_time_keeps_a_worker_awake() {
        let turn = Turn::take().expect("nobody else has the turn in these tests");
        assert!(
            Turn::take().is_none(),
            "a second store while the first has the turn"
        );
        drop(turn);
        let again = Turn::take();
        assert!(again.is_some(), "the turn once the first let go");
    }

    #[test]
    fn the_worker_does_not_linger_for_many_calls_in_flight() {
        let spin = Spin::default();
        let now = spin.elapsed_ns();
        for _ in 0..MOST_IN_FLIGHT {
            call_at(&spin, now);
        }
        assert!(spin.lingers_at(now));
        call_at(&spin, now);
        assert!(!spin.lingers_at(now));
    }
}
