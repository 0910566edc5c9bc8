//! Waking the asyncio loop from any thread without the GIL: a socket pair whose reading end
//! the loop watches (`loop.add_reader`). A writer thread, the log's sync thread, the TTL sweep
//! or a tokio task writes one byte; the loop then takes what waits (events, acknowledgements,
//! finished Redis calls). Nothing here takes the GIL, so no engine lock is ever held while
//! waiting for it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The two ends of the wake socket; both close when the owner is dropped.
pub struct Waker {
    read: UnixStream,
    write: UnixStream,
}

impl Waker {
    pub fn new() -> std::io::Result<Waker> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(Waker { read, write })
    }

    /// Makes the reading end readable. A full socket already holds a wake-up, so a write
    /// that would block is dropped.
    pub fn wake(&self) {
        let _ = (&self.write).write(&[1]);
    }

    /// The reading end, for `loop.add_reader`.
    pub fn fd(&self) -> i32 {
        self.read.as_raw_fd()
    }

    /// Reads every waiting byte.
    pub fn clear(&self) {
        let mut buf = [0u8; 256];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }
}
