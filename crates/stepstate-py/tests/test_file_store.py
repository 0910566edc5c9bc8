"""The file store with real processes and real files: reopening keeps everything (values,
order, TTL), the ``sync`` policies, writes acknowledged before a ``kill -9`` survive it, the
directory lock across processes (``LOCKED`` with the holder's pid), managers of one path in one
process sharing one engine (also from threads), and refusing directories it did not write."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from stepstate import StateError, StateManager, StateTypeError
from helpers import run_in_threads, snapshot


async def open_file(path, **options):
    return await StateManager.open(adapter="file", path=str(path), **options)


def store_files(path: Path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name != "LOCK"}


def run_python(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout)


def start_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_line(process: subprocess.Popen, timeout: float = 20) -> str:
    """The next stdout line of ``process`` (fails the test if it dies or stays silent)."""
    result: list = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        process.kill()
        raise AssertionError(f"the child printed nothing; stderr: {process.stderr.read()}")
    return result[0].strip()


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL


HOLD_OPEN = """
import asyncio, sys
from stepstate import StateManager

async def main():
    state = await StateManager.open(adapter="file", path=sys.argv[1])
    await state.set("g", "holder", "child")
    print("open", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""

TRY_OPEN = """
import asyncio, json, sys
from stepstate import StateManager, StateError

async def main():
    try:
        state = await StateManager.open(adapter="file", path=sys.argv[1])
    except StateError as err:
        print(json.dumps({"code": err.code, "message": str(err)}))
        return
    print(json.dumps({"value": await state.get("g", "k")}))
    await state.close()

asyncio.run(main())
"""


# ---- reopening --------------------------------------------------------------------------------


async def test_reopening_brings_back_every_group_key_value_and_the_order(tmp_path):
    state = await open_file(tmp_path)
    await state.set("orders", "a", {"status": "pending", "n": 1})
    await state.set("orders", "b", {"status": "pending", "n": 2})
    await state.set("orders", "c", 0)
    await state.set("orders", "a", {"status": "paid", "n": 1})  # keeps its place
    await state.delete("orders", "b")
    await state.set("orders", "b", False)  # moves to the end
    await state.update("orders", "a", [{"type": "increment", "path": "n", "by": 41}])
    await state.set("users", "u:1", "ü/😀")
    await state.set("users", "u/2", {"price": 1.0, "big": 2**53 - 1, "none": None, "neg0": -0.0})
    await state.set("gone", "x", 1)
    await state.clear("gone")
    before = await snapshot(state)
    await state.close()

    reopened = await open_file(tmp_path)
    try:
        assert await snapshot(reopened) == before
        assert before["orders"] == [
            {"key": "a", "value": {"status": "paid", "n": 42}},
            {"key": "c", "value": 0},
            {"key": "b", "value": False},
        ]
        assert await reopened.list_groups() == ["orders", "users"]
        value = await reopened.get("users", "u/2")
        assert type(value["price"]) is float and value["big"] == 2**53 - 1
        assert str(value["neg0"]) == "-0.0"
    finally:
        await reopened.close()


async def test_the_constructor_opens_a_file_store_at_once(tmp_path):
    state = StateManager(adapter="file", path=str(tmp_path / "store"))
    try:
        assert state.adapter == "file"
        assert (tmp_path / "store").is_dir()
        await state.set("g", "k", [1, 2])
    finally:
        await state.close()
    async with StateManager.open(adapter="file", path=str(tmp_path / "store")) as again:
        assert await again.get("g", "k") == [1, 2]


def test_the_constructor_needs_no_running_loop(tmp_path):
    state = StateManager(adapter="file", path=str(tmp_path))

    async def use():
        await state.set("g", "k", 1)
        value = await state.get("g", "k")
        await state.close()
        return value

    assert asyncio.run(use()) == 1


async def test_async_with_closes_so_the_store_reopens_with_everything(tmp_path):
    async with StateManager.open(adapter="file", path=str(tmp_path), sync="no") as state:
        for i in range(100):
            await state.set("g", f"k{i}", {"i": i})
    with pytest.raises(StateError) as caught:
        await state.get("g", "k0")
    assert caught.value.code == "CLOSED"
    async with StateManager.open(adapter="file", path=str(tmp_path)) as reopened:
        assert await reopened.keys("g") == [f"k{i}" for i in range(100)]


async def test_the_directory_is_created_owner_only_with_owner_only_files(tmp_path):
    path = tmp_path / "nested" / "store"
    state = await open_file(path)
    await state.set("g", "k", 1)
    await state.close()
    assert path.stat().st_mode & 0o777 == 0o700
    names = [p.name for p in path.iterdir()]
    assert names
    for p in path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p.name


async def test_ttl_survives_a_restart_and_what_expired_while_closed_is_gone(tmp_path):
    state = await open_file(tmp_path)
    await state.set("g", "short", 1, ttl=0.1)
    await state.set("g", "long", 2, ttl=1.0)
    await state.set("g", "forever", 3)
    await state.close()
    await asyncio.sleep(0.2)  # `short` expires while the store is closed
    reopened = await open_file(tmp_path)
    try:
        assert await reopened.keys("g") == ["long", "forever"]
        deadline = time.monotonic() + 5
        while await reopened.get("g", "long") is not None:
            assert time.monotonic() < deadline, "`long` kept its expiry across the restart"
            await asyncio.sleep(0.02)
        assert await reopened.keys("g") == ["forever"]
    finally:
        await reopened.close()


async def test_a_default_ttl_given_at_reopen_does_not_shorten_items_written_before(tmp_path):
    state = await open_file(tmp_path)
    await state.set("g", "forever", 1)
    await state.close()
    reopened = await open_file(tmp_path, ttl=0.1)
    try:
        await reopened.set("g", "brief", 2)
        deadline = time.monotonic() + 3
        while await reopened.get("g", "brief") is not None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await reopened.get("g", "forever") == 1
    finally:
        await reopened.close()


# ---- sync policies ----------------------------------------------------------------------------


@pytest.mark.parametrize("sync", ["always", "everysec", "no"])
async def test_every_sync_policy_stores_and_reopens(tmp_path, sync):
    state = await open_file(tmp_path, sync=sync)
    events = []
    state.on_change(events.append)
    results = await asyncio.gather(*(state.update("g", "n", [{"type": "increment", "path": "count", "by": 1}]) for _ in range(200)))
    assert sorted(r["count"] for r in results) == list(range(1, 201))
    await state.set("g", "k", {"sync": sync})
    assert await state.delete("g", "k") == {"sync": sync}
    await state.set("g", "k", {"sync": sync})
    await state.clear("other")
    deadline = time.monotonic() + 5
    while len(events) < 203:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    await state.close()
    async with StateManager.open(adapter="file", path=str(tmp_path), sync=sync) as reopened:
        assert await reopened.entries("g") == [{"key": "n", "value": {"count": 200}}, {"key": "k", "value": {"sync": sync}}]


@pytest.mark.parametrize("sync", ["sometimes", "ALWAYS", "", 1, None, True])
async def test_an_unknown_sync_policy_raises_invalid_argument(tmp_path, sync):
    with pytest.raises(StateTypeError) as caught:
        await open_file(tmp_path / "store", sync=sync)
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(StateTypeError):
        StateManager(adapter="file", path=str(tmp_path / "store"), sync=sync)


@pytest.mark.parametrize("path", ["", None, 42, b"/tmp/x"], ids=repr)
async def test_a_bad_path_raises_invalid_argument(path):
    with pytest.raises(StateTypeError) as caught:
        await StateManager.open(adapter="file", path=path)
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(StateTypeError):
        StateManager(adapter="file", path=path)


async def test_unknown_file_options_raise_invalid_argument(tmp_path):
    with pytest.raises(StateTypeError) as caught:
        await open_file(tmp_path, compact_min_bytes=-1)
    assert caught.value.code == "INVALID_ARGUMENT"


# ---- crash safety -----------------------------------------------------------------------------

WRITE_THEN_SLEEP = """
import asyncio, sys
from stepstate import StateManager

async def main():
    state = await StateManager.open(adapter="file", path=sys.argv[1], sync=sys.argv[2])
    await state.set("crash", "acknowledged", {"value": "written before the kill", "n": 1.5})
    print("acked", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.mark.parametrize("sync", ["always", "everysec", "no"])
async def test_a_write_acknowledged_before_kill_9_survives(tmp_path, sync):
    child = start_python(WRITE_THEN_SLEEP, str(tmp_path), sync)
    assert read_line(child) == "acked"
    kill_9(child)
    async with StateManager.open(adapter="file", path=str(tmp_path), sync=sync) as state:
        assert await state.get("crash", "acknowledged") == {"value": "written before the kill", "n": 1.5}


WRITE_MANY = """
import asyncio, sys
from stepstate import StateManager

async def main():
    state = await StateManager.open(adapter="file", path=sys.argv[1], sync=sys.argv[2])
    start = (await state.get("counters", "acked") or {}).get("count", 0)
    print("ready", flush=True)
    for i in range(start, start + 100000):
        await state.set("crash", f"k{i % 50}", {"n": i})
        value = await state.update("counters", "acked", [{"op": "increment", "path": "/count", "value": 1}])
        print(f"acked {i} {value['count']}", flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("sync", ["always", "everysec", "no"])
async def test_every_acknowledged_write_survives_kill_9_in_the_middle_of_a_burst(tmp_path, sync):
    for crash, kill_after in enumerate((5, 60)):
        child = start_python(WRITE_MANY, str(tmp_path), sync)
        assert read_line(child) == "ready"
        acked = []
        for _ in range(kill_after):
            acked.append(read_line(child))
        kill_9(child)
        acked += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
        last_i, last_count = (int(x) for x in acked[-1].split()[1:])
        async with StateManager.open(adapter="file", path=str(tmp_path), sync=sync) as state:
            counter = await state.get("counters", "acked")
            assert counter["count"] >= last_count, (crash, acked[-1])
            latest = {}
            for line in acked:
                i = int(line.split()[1])
                latest[f"k{i % 50}"] = i
            for key, n in latest.items():
                value = await state.get("crash", key)
                assert value is not None and value["n"] >= n, (crash, key, n, value)


# ---- the directory lock -----------------------------------------------------------------------


async def test_a_second_process_gets_locked_with_the_holder_pid_and_a_dead_holder_does_not_block(tmp_path):
    holder = start_python(HOLD_OPEN, str(tmp_path))
    try:
        assert read_line(holder) == "open"
        with pytest.raises(StateError) as caught:
            await open_file(tmp_path)
        assert caught.value.code == "LOCKED"
        assert str(holder.pid) in str(caught.value)
        assert not isinstance(caught.value, (TypeError, ValueError))
        with pytest.raises(StateError) as caught:
            StateManager(adapter="file", path=str(tmp_path))
        assert caught.value.code == "LOCKED"
    finally:
        kill_9(holder)
    async with StateManager.open(adapter="file", path=str(tmp_path)) as state:
        assert await state.get("g", "holder") == "child"
        await state.set("g", "k", "mine now")
        assert await state.get("g", "k") == "mine now"


async def test_this_process_holds_the_lock_against_others_with_its_pid(tmp_path):
    state = await open_file(tmp_path)
    try:
        await state.set("g", "k", 1)
        result = run_python(TRY_OPEN, str(tmp_path))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["code"] == "LOCKED"
        assert str(os.getpid()) in report["message"]
    finally:
        await state.close()


async def test_close_releases_the_lock_for_another_process(tmp_path):
    state = await open_file(tmp_path)
    await state.set("g", "k", {"from": "parent"})
    await state.close()
    result = run_python(TRY_OPEN, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"value": {"from": "parent"}}


async def test_the_lock_is_held_until_the_last_manager_of_the_path_closes(tmp_path):
    first = await open_file(tmp_path)
    second = await open_file(tmp_path)
    await first.set("g", "k", 1)
    await first.close()
    assert await second.get("g", "k") == 1  # still open through `second`
    report = json.loads(run_python(TRY_OPEN, str(tmp_path)).stdout)
    assert report["code"] == "LOCKED"
    await second.close()
    assert json.loads(run_python(TRY_OPEN, str(tmp_path)).stdout) == {"value": 1}


# ---- sharing one store inside a process -------------------------------------------------------


async def test_managers_of_one_path_share_one_engine(tmp_path):
    first = await open_file(tmp_path)
    second = await open_file(tmp_path / ".")
    try:
        seen_by_second = []
        second.on_change(seen_by_second.append)
        await first.set("g", "k", {"via": "first"})
        assert await second.get("g", "k") == {"via": "first"}
        await asyncio.gather(*((first if i % 2 else second).update("g", "n", [{"type": "increment", "path": "count", "by": 1}]) for i in range(1000)))
        assert await first.get("g", "n") == {"count": 1000}
        deadline = time.monotonic() + 5
        while len(seen_by_second) < 1001:
            assert time.monotonic() < deadline, "events of writes through `first` reach listeners of `second`"
            await asyncio.sleep(0.005)
        assert seen_by_second[0]["new_value"] == {"via": "first"}
        await first.close()
        assert await second.get("g", "n") == {"count": 1000}
        await second.set("g", "after", True)
    finally:
        await first.close()
        await second.close()
    async with StateManager.open(adapter="file", path=str(tmp_path)) as reopened:
        assert await reopened.keys("g") == ["k", "n", "after"]


async def test_threads_with_managers_of_one_path_give_exact_increments(tmp_path):
    threads, per_thread = 4, 500

    async def work():
        async with StateManager.open(adapter="file", path=str(tmp_path)) as state:
            for _ in range(per_thread):
                await state.update("shared", "counter", [{"type": "increment", "path": "count", "by": 1}])

    async with StateManager.open(adapter="file", path=str(tmp_path)) as state:
        assert await run_in_threads(work, threads) == []
        assert await state.get("shared", "counter") == {"count": threads * per_thread}
    async with StateManager.open(adapter="file", path=str(tmp_path)) as reopened:
        assert await reopened.get("shared", "counter") == {"count": threads * per_thread}


# ---- directories it did not write -------------------------------------------------------------


async def test_a_directory_holding_foreign_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StateTypeError) as caught:
        await open_file(tmp_path)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert "notes.txt" in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


async def test_a_path_that_is_a_file_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("data")
    with pytest.raises(StateError) as caught:
        await open_file(target)
    assert caught.value.code == "IO"
    assert str(target) in str(caught.value)
    assert target.read_text() == "data"


async def test_an_empty_existing_directory_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    async with StateManager.open(adapter="file", path=str(tmp_path / "empty")) as state:
        await state.set("g", "k", 1)
        assert await state.get("g", "k") == 1


# ---- damage -----------------------------------------------------------------------------------


async def test_a_flipped_byte_in_the_log_refuses_to_open_with_corrupt_and_changes_no_file(tmp_path):
    state = await open_file(tmp_path)
    for i in range(10):
        await state.set("g", f"k{i}", {"i": i, "pad": "p" * 50})
    await state.close()
    log = max(tmp_path.glob("log-*.log"), key=lambda p: p.stat().st_size)
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x40
    log.write_bytes(bytes(data))
    before = store_files(tmp_path)
    with pytest.raises(StateError) as caught:
        await open_file(tmp_path)
    assert caught.value.code == "CORRUPT"
    assert store_files(tmp_path) == before
