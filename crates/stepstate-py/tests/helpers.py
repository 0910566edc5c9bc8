"""What several test modules share: reading a whole store, and waiting for a condition."""

from __future__ import annotations

import asyncio
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
