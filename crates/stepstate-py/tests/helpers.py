"""What several test modules share: reading a whole store, and waiting for a condition."""

from __future__ import annotations

import asyncio
import threading
import time


async def snapshot(state):
    """Everything the store holds, as {group: entries}."""
    return {group: await state.entries(group) for group in await state.list_groups()}


async def wait_for(predicate, timeout=5.0, what="the condition", interval=0.002):
    """Waits until `predicate()` (which may return an awaitable) is true, or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def run_in_threads(work, threads):
    """Runs `work()` (a coroutine function) in `threads` threads at once, each on an event loop
    of its own, while this loop keeps running; returns what they raised."""
    errors = []

    def run():
        try:
            asyncio.run(work())
        except BaseException as err:  # noqa: BLE001 - returned to the test
            errors.append(err)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        await asyncio.sleep(0.01)
    return errors
