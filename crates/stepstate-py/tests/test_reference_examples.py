"""The Python state reference's examples, written as a user of a step-based workflow framework
writes them: steps that create a user with ``set``, record logins with JSON-Patch ops through
``update`` (whose result is the updated user), a change trigger filtered with
``condition=lambda e: e["group_id"] == "users"`` that reads ``group_id``, ``item_id``,
``old_value`` and ``new_value``, and a step that lists the users. Each runs as a complete
example on the store under test (memory, or file with ``STEPSTATE_TEST_ADAPTER=file``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from stepstate import StateError, StateManager
from helpers import wait_for


# ---- the steps, as the reference writes them ---------------------------------------------------


async def create_user(state, user_id: str, name: str, email: str):
    user = {"id": user_id, "name": name, "email": email, "login_count": 0, "last_login": None}
    await state.set("users", user_id, user)
    return user


async def record_login(state, user_id: str, at: str):
    user = await state.update(
        "users",
        user_id,
        [
            {"op": "increment", "path": "/login_count", "value": 1},
            {"op": "replace", "path": "/last_login", "value": at},
        ],
    )
    return user


async def list_users(state):
    return await state.list("users")


def install_user_trigger(state, log):
    """A state trigger: runs for every change of the ``users`` group."""

    async def on_user_change(event):
        group_id = event["group_id"]
        item_id = event["item_id"]
        old_value = event["old_value"]
        new_value = event["new_value"]
        if old_value is None:
            log.append(f"{group_id}/{item_id} created: {new_value['name']}")
        elif new_value is None:
            log.append(f"{group_id}/{item_id} deleted")
        elif new_value["login_count"] != old_value["login_count"]:
            log.append(f"{group_id}/{item_id} logged in {new_value['login_count']} time(s)")

    return state.on_change(on_user_change, condition=lambda e: e["group_id"] == "users")


# ---- the examples ------------------------------------------------------------------------------


async def test_users_logins_trigger_and_listing_as_a_complete_example(state):
    log = []
    off = install_user_trigger(state, log)

    ada = await create_user(state, "u1", "Ada", "ada@example.com")
    assert ada == {"id": "u1", "name": "Ada", "email": "ada@example.com", "login_count": 0, "last_login": None}
    await create_user(state, "u2", "Alan", "alan@example.com")
    await state.set("orders", "o1", {"user": "u1", "total": 30})  # not a user: the trigger ignores it

    first = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc).isoformat()
    second = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc).isoformat()
    user = await record_login(state, "u1", first)
    assert user == {"id": "u1", "name": "Ada", "email": "ada@example.com", "login_count": 1, "last_login": first}
    assert user["login_count"] == 1
    user = await record_login(state, "u1", second)
    assert user["login_count"] == 2 and user["last_login"] == second

    users = await list_users(state)
    assert [u["name"] for u in users] == ["Ada", "Alan"]
    assert users[0] == {"id": "u1", "name": "Ada", "email": "ada@example.com", "login_count": 2, "last_login": second}
    assert await state.get("users", "u1") == users[0]
    assert await state.list_groups() == ["orders", "users"]

    await state.delete("users", "u2")
    await wait_for(lambda: len(log) == 5)
    assert log == [
        "users/u1 created: Ada",
        "users/u2 created: Alan",
        "users/u1 logged in 1 time(s)",
        "users/u1 logged in 2 time(s)",
        "users/u2 deleted",
    ]
    off()
    await create_user(state, "u3", "Grace", "grace@example.com")
    await state.set("users", "marker", {"name": "marker", "login_count": 0})
    await asyncio.sleep(0.05)
    assert len(log) == 5
    assert [u["name"] for u in await list_users(state)] == ["Ada", "Grace", "marker"]


async def test_the_trigger_receives_the_reference_fields(state):
    received = []
    state.on_change(received.append, condition=lambda e: e["group_id"] == "users")
    await create_user(state, "u1", "Ada", "ada@example.com")
    await record_login(state, "u1", "2026-11-26T10:00:00Z")
    await state.set("sessions", "s1", {"user": "u1"})
    await state.set("users", "marker", {})
    await wait_for(lambda: any(e["item_id"] == "marker" for e in received))
    login = received[1]
    assert login["type"] == "state"
    assert login["event_type"] == "state:updated"
    assert login["group_id"] == "users"
    assert login["item_id"] == "u1"
    assert login["old_value"]["login_count"] == 0 and login["old_value"]["last_login"] is None
    assert login["new_value"]["login_count"] == 1 and login["new_value"]["last_login"] == "2026-11-26T10:00:00Z"
    assert all(e["group_id"] == "users" for e in received)
    assert len(received) == 3


async def test_a_login_of_a_user_that_does_not_exist_yet_creates_the_record(state):
    user = await record_login(state, "new-user", "2026-11-26T10:00:00Z")
    assert user == {"login_count": 1, "last_login": "2026-11-26T10:00:00Z"}


async def test_concurrent_logins_are_all_counted(state):
    await create_user(state, "u1", "Ada", "ada@example.com")
    results = await asyncio.gather(*(record_login(state, "u1", f"2026-11-26T10:00:{s:02d}Z") for s in range(60)))
    assert sorted(r["login_count"] for r in results) == list(range(1, 61))
    assert (await state.get("users", "u1"))["login_count"] == 60


async def test_the_state_manager_quick_start_runs_as_written(tmp_path):
    """The README's quick start, end to end: memory, then a file store, with watch."""
    state = StateManager()
    await state.set("users", "u1", {"name": "Ada", "login_count": 0})
    user = await state.update(
        "users",
        "u1",
        [
            {"op": "increment", "path": "/login_count", "value": 1},
            {"op": "replace", "path": "/last_login", "value": "2026-11-26T10:00:00Z"},
        ],
    )
    assert user["login_count"] == 1

    printed = []
    off = state.on_change(lambda e: printed.append((e["event_type"], e["item_id"])), condition=lambda e: e["group_id"] == "users")

    async def watch_orders(seen):
        async for event in state.watch("orders"):
            seen.append(event["item_id"])
            if len(seen) == 2:
                break

    seen = []
    watcher = asyncio.ensure_future(watch_orders(seen))
    await asyncio.sleep(0)
    await state.set("orders", "o1", {"status": "pending"})
    await state.update("users", "u1", [{"type": "set", "path": "name", "value": "Ada L."}])
    await state.set("orders", "o2", {"status": "pending"})
    await asyncio.wait_for(watcher, 5)
    assert seen == ["o1", "o2"]
    await wait_for(lambda: printed == [("state:updated", "u1")])
    off()
    await state.close()

    async with StateManager.open(adapter="file", path=str(tmp_path / ".stepstate"), sync="everysec") as local:
        await local.set("users", "u1", user)
        assert await local.get("users", "u1") == user
    async with StateManager.open(adapter="file", path=str(tmp_path / ".stepstate")) as local:
        assert await local.list("users") == [user]


async def test_a_parallel_merge_step_fires_once_all_tasks_are_done(state):
    """The reference's parallel-merge pattern: parallel steps each mark their task done with an
    atomic update; a trigger whose condition sees the last one proceeds exactly once."""
    tasks = ["fetch", "resize", "scan", "index"]
    await state.set("jobs", "j1", {"total": len(tasks), "done": 0, "finished": []})
    merged = []
    state.on_change(
        merged.append,
        group="jobs",
        condition=lambda e: e["new_value"] is not None and e["new_value"]["done"] == e["new_value"]["total"],
    )

    async def task_step(name):
        await asyncio.sleep(0)
        return await state.update("jobs", "j1", [{"type": "increment", "path": "done", "by": 1}, {"type": "append", "path": "finished", "value": name}])

    await asyncio.gather(*(task_step(name) for name in tasks))
    await state.set("jobs", "marker", {"total": 1, "done": 1})
    await wait_for(lambda: any(e["item_id"] == "marker" for e in merged))
    assert [e["item_id"] for e in merged] == ["j1", "marker"]
    assert sorted(merged[0]["new_value"]["finished"]) == sorted(tasks)


async def test_a_guarded_status_transition_happens_once(state):
    """Compare-and-set from the reference: only a pending order can be paid."""
    await state.set("orders", "o1", {"status": "pending", "total": 99.99})
    pay = [{"op": "test", "path": "/status", "value": "pending"}, {"op": "replace", "path": "/status", "value": "paid"}]
    order = await state.update("orders", "o1", pay)
    assert order == {"status": "paid", "total": 99.99}
    try:
        await state.update("orders", "o1", pay)
    except StateError as err:
        assert err.code == "test.failed" and err.op_index == 0
    else:
        raise AssertionError("paying twice must fail")
    assert await state.get("orders", "o1") == {"status": "paid", "total": 99.99}
