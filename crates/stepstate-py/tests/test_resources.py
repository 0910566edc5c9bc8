"""A closed manager leaves nothing behind: no file descriptor, no thread, whatever the store."""

from __future__ import annotations

import os

from stepstate import StateManager


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def cycle(open_manager, rounds: int = 50) -> None:
    # One round first, so that what is made once per process (the executor of file opens,
    # the module's own state) is there before counting.
    manager = await open_manager()
    await manager.close()
    fds, tasks = open_fds(), threads()
    for _ in range(rounds):
        manager = await open_manager()
        off = manager.on_change(lambda event: None)
        await manager.set("g", "k", {"n": 1})
        await manager.update("g", "k", [{"type": "increment", "path": "n", "by": 1}])
        off()
        await manager.close()
    assert open_fds() == fds
    assert threads() == tasks


async def test_closing_memory_managers_releases_their_descriptors_and_threads():
    async def open_manager():
        return StateManager()

    await cycle(open_manager)


async def test_closing_file_managers_releases_their_descriptors_and_threads(tmp_path):
    async def open_manager():
        return await StateManager.open(adapter="file", path=str(tmp_path / "store"), sync="always")

    await cycle(open_manager)


async def test_closing_redis_managers_releases_their_descriptors_and_threads(redis_server, redis_prefix):
    async def open_manager():
        return await StateManager.open(adapter="redis", url=redis_server.url, prefix=redis_prefix)

    await cycle(open_manager, rounds=20)


async def test_a_closed_manager_says_closed_rather_than_failing_on_its_socket(redis_server, redis_prefix):
    manager = await StateManager.open(adapter="redis", url=redis_server.url, prefix=redis_prefix)
    await manager.close()
    try:
        await manager.get("g", "k")
    except Exception as err:  # noqa: BLE001
        assert getattr(err, "code", None) == "CLOSED"
    else:
        raise AssertionError("a call after close must raise CLOSED")
