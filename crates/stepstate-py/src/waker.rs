//! Waking the asyncio loop from any thread without the GIL: a socket pair whose reading end
//! the loop watches (`loop.add_reader`). A writer thread, the log's sync thread, the TTL sweep
//! or a tokio task writes one byte; the loop then takes what waits (events, acknowledgements,
//! finished Redis calls). Nothing here takes the GIL, so no engine lock is ever held while
//! waiting for it.

use parking_lot::Mutex;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The two ends of the wake socket, until [`Waker::close`] (or the owner's drop) closes them.
pub struct Waker {
    /// (reading end, writing end).
    ends: Mutex<Option<(UnixStream, UnixStream)>>,
}

impl Waker {
    pub fn new() -> std::io::Result<Waker> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Waker {
            ends: Mutex::new(Some((read, write))),
        })
    }

    /// Makes the reading end readable. A full socket already holds a wake-up, so a write
    /// that would block is dropped; after `close` nothing happens.
    pub fn wake(&self) {
        if let Some((_, write)) = &*self.ends.lock() {
            let _ = (&*write).write(&[1]);
        }
    }

    /// The reading end, for `loop.add_reader`; -1 once closed.
    pub fn fd(&self) -> i32 {
        self.ends
            .lock()
            .as_ref()
            .map_or(-1, |(read, _)| read.as_raw_fd())
    }

    /// Reads every waiting byte.
    pub fn clear(&self) {
        if let Some((read, _)) = &*self.ends.lock() {
            let mut buf = [0u8; 256];
            while matches!((&*read).read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// Closes both ends (the loop must have stopped watching the reading end first).
    pub fn close(&self) {
        drop(self.ends.lock().take());
    }
}
