//! The writer and reader tasks of a Redis store: a process's writes that wait at the same
//! moment go to Redis in one call of the write script, and its gets in one pipeline, so that
//! Redis starts one script, and the process writes to its socket once, per batch.

use std::sync::Arc;

use redis::Value;

use super::RedisStore;
use crate::engine::Version;
use crate::error::Result;

/// One write, as the write script takes it (see `scripts.rs`).
pub(super) enum Write {
    Set {
        json: Arc<str>,
        ttl_ms: u64,
        /// The version whose text the caller holds (0: none): the script then leaves that
        /// text out of its reply.
        known: Version,
    },
    CompareAndSet {
        expected: Version,
        json: Arc<str>,
        ttl_ms: u64,
    },
    Delete,
    Clear,
}

/// A write waiting for the writer task, and where its reply goes.
pub(super) struct Pending {
    pub(super) write: Write,
    pub(super) group: String,
    pub(super) key: String,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Value>>,
}

/// A read waiting for the reader task, and where its reply goes.
pub(super) struct PendingRead {
    pub(super) items: String,
    pub(super) key: String,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<ReadReply>>,
}

/// An item's payload (none: absent), and the server's time (ms) once the batch was read.
pub(super) type ReadReply = (Option<String>, u64);

/// Most reads one pipeline carries.
const BATCH_READS: usize = 256;

/// Most writes one call of the write script carries, and about the most bytes of values in a
/// batch: the calls waiting beyond that go in the next one.
const BATCH_WRITES: usize = 256;
const BATCH_BYTES: usize = 1 << 20;
/// How many writes must wait before another batch goes while one is out (see
/// `write_batches`): with 64 writes in flight, 16 to 24 measured fastest (about a tenth more
/// than one batch at a time), 8 and 48 no faster than one.
const SECOND_BATCH: usize = 16;
/// Most batches out at once. With two, Redis sat idle while the Node thread and the runtime's
/// worker, sharing two cores with it, made the next batch from the answers to the last: `set`s
/// at 64 in flight, alternated in one process, ran 7-10% faster with three (and no faster with
/// four), `update`s likewise, mixed traffic the same.
const MOST_BATCHES_OUT: usize = 3;

/// A call waiting in a batch.
trait Waiting {
    type Reply;
    /// Whether its caller stopped waiting (its call timed out).
    fn given_up(&self) -> bool;
    fn answer(self, reply: Result<Self::Reply>);
}

impl Waiting for Pending {
    type Reply = Value;
    fn given_up(&self) -> bool {
        self.reply.is_closed()
    }
    fn answer(self, reply: Result<Value>) {
        let _ = self.reply.send(reply);
    }
}

impl Waiting for PendingRead {
    type Reply = ReadReply;
    fn given_up(&self) -> bool {
        self.reply.is_closed()
    }
    fn answer(self, reply: Result<ReadReply>) {
        let _ = self.reply.send(reply);
    }
}

/// Adds the calls waiting in `queue` to `batch`, up to `most` calls and about [`BATCH_BYTES`]
/// of values (`bytes` of each).
fn take_waiting<P>(
    queue: &mut tokio::sync::mpsc::UnboundedReceiver<P>,
    batch: &mut Vec<P>,
    most: usize,
    bytes: impl Fn(&P) -> usize,
) {
    let mut total: usize = batch.iter().map(&bytes).sum();
    while batch.len() < most && total < BATCH_BYTES {
        match queue.try_recv() {
            Ok(next) => {
                total += bytes(&next);
                batch.push(next);
            }
            Err(_) => break,
        }
    }
}

/// Drops the calls of `batch` whose callers stopped waiting (never sent late); whether any
/// remain.
fn still_waited_for<P: Waiting>(batch: &mut Vec<P>) -> bool {
    batch.retain(|pending| !pending.given_up());
    !batch.is_empty()
}

/// Hands each call of `batch` its reply, in order, or the batch's error.
fn answer<P: Waiting>(batch: Vec<P>, replies: Result<Vec<P::Reply>>) {
    match replies {
        Ok(replies) => {
            for (pending, reply) in batch.into_iter().zip(replies) {
                pending.answer(Ok(reply));
            }
        }
        Err(err) => {
            for pending in batch {
                pending.answer(Err(err.clone()));
            }
        }
    }
}

impl Write {
    /// About the bytes it adds to a batch.
    fn bytes(&self) -> usize {
        match self {
            Write::Set { json, .. } | Write::CompareAndSet { json, .. } => json.len(),
            Write::Delete | Write::Clear => 0,
        }
    }
}

/// The writer task: sends the writes waiting in `queue` to Redis, many in one call of the write
/// script, and hands each its reply. While no batch is out, the writes waiting go at once; while
/// some are, the next goes only once `SECOND_BATCH` writes wait (and never more than
/// `MOST_BATCHES_OUT` at once): so writes that trickle in make up bigger batches, each paying
/// for one call, while a busy process keeps Redis working on one batch as the next arrives.
/// (Two writes of one key are never in flight together: a write holds its key's lock until
/// answered.) A write whose caller stopped waiting
/// (its call timed out) before it was sent is dropped, never sent late.
pub(super) async fn write_batches(
    store: std::sync::Weak<RedisStore>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Pending>,
) {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut waiting: Vec<Pending> = Vec::new();
    loop {
        if in_flight.is_empty() {
            if waiting.is_empty() {
                match queue.recv().await {
                    Some(first) => waiting.push(first),
                    None => return,
                }
            }
        } else {
            tokio::select! {
                _ = in_flight.join_next() => continue,
                next = queue.recv() => match next {
                    Some(next) => waiting.push(next),
                    None => return,
                },
            }
            if in_flight.len() >= MOST_BATCHES_OUT || waiting.len() + queue.len() < SECOND_BATCH {
                continue;
            }
        }
        let mut batch = std::mem::take(&mut waiting);
        take_waiting(&mut queue, &mut batch, BATCH_WRITES, |pending| {
            pending.write.bytes()
        });
        if !still_waited_for(&mut batch) {
            continue;
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        in_flight.spawn(async move {
            let replies = store.send_batch(&batch).await;
            drop(store);
            answer(batch, replies);
        });
    }
}

/// The reader task: sends the reads waiting in `queue` to Redis, all that wait at once in one
/// pipeline of `HGET`s, and hands each its reply. Reads never conflict, so a pipeline goes as
/// soon as it is made, beside those still out: one write to the socket and one reply to parse
/// for many reads, instead of one each.
pub(super) async fn read_batches(
    store: std::sync::Weak<RedisStore>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<PendingRead>,
) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(first) = queue.recv().await {
        while in_flight.try_join_next().is_some() {}
        // The tasks of the calls made meanwhile run first and queue their reads: woken by the
        // first, this task would otherwise run before them and send each read alone.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        take_waiting(&mut queue, &mut batch, BATCH_READS, |_| 0);
        if !still_waited_for(&mut batch) {
            continue;
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        in_flight.spawn(async move {
            let replies = store.send_reads(&batch).await;
            drop(store);
            let replies = replies.map(|(payloads, server_ms)| {
                payloads
                    .into_iter()
                    .map(|payload| (payload, server_ms))
                    .collect()
            });
            answer(batch, replies);
        });
    }
}
