"""The Redis store from Python, against a private redis-server (``redis_server``, never 6379):
every method and result shape, the ops, the error codes, atomic increments from one and from
two managers, change events across managers and on expiry, a server that dies and comes back,
and close."""

from __future__ import annotations

import asyncio
import math
import subprocess
import time

import pytest

from stepstate import SetResult, StateError, StateManager, StateTypeError, StateValueError
from helpers import wait_for


def wait_for_slowly(predicate, timeout=5.0, what="the condition"):
    return wait_for(predicate, timeout, what, interval=0.01)

from conftest import _free_port


@pytest.fixture
async def open_manager(redis_server, redis_prefix):
    """``await open_manager(**options)``: a manager on the test's prefix, closed at the end."""
    managers = []

    async def open_(**options):
        options.setdefault("url", redis_server.url)
        options.setdefault("prefix", redis_prefix)
        manager = await StateManager.open(adapter="redis", **options)
        managers.append(manager)
        return manager

    yield open_
    for manager in managers:
        await manager.close()


@pytest.fixture
async def state(open_manager):
    return await open_manager()


async def raises(awaitable, code):
    with pytest.raises(StateError) as info:
        await awaitable
    assert info.value.code == code, str(info.value)
    return info.value


ORDER = {
    "id": "order-1",
    "customer": {"id": "cust-1", "name": "Ada Lovelace", "tags": ["vip", "ünï©ødé ✓"]},
    "items": [{"sku": "sku-1", "qty": 2, "price": 19.99}, {"sku": "sku-2", "qty": 1, "price": 1.5}],
    "paid": 0,
    "ok": True,
    "note": None,
}


# ---- methods and shapes -----------------------------------------------------------------


async def test_repr_and_adapter(state):
    assert state.adapter == "redis"
    assert "redis" in repr(state) and "open" in repr(state)


async def test_set_get_delete_shapes(state):
    assert await state.get("orders", "o1") is None
    assert await state.set("orders", "o1", ORDER) == ORDER
    got = await state.get("orders", "o1")
    assert got == ORDER
    got["paid"] = 99  # a fresh copy: the store is unchanged
    assert (await state.get("orders", "o1"))["paid"] == 0

    result = await state.set("orders", "o1", {"v": 2}, with_old=True)
    assert isinstance(result, SetResult)
    assert result == SetResult({"v": 2}, ORDER)
    assert result.new_value == {"v": 2} and result.old_value == ORDER
    assert await state.set("orders", "o2", 1, with_old=True) == SetResult(1, None)

    assert await state.delete("orders", "o1") == {"v": 2}
    assert await state.delete("orders", "o1") is None
    assert await state.get("orders", "o1") is None


@pytest.mark.parametrize(
    "value",
    [0, False, "", None, [], {}, 1.5, -0.25, 2**53 - 1, -(2**53 - 1), "ünï©ødé ✓ 𝄞", [1, "a", None, [2, {"b": []}]]],
)
async def test_values_round_trip_exactly(state, value):
    await state.set("values", "v", value)
    got = await state.get("values", "v")
    assert got == value and type(got) is type(value)
    assert await state.list("values") == [value]


async def test_float_stays_float_and_int_stays_int(state):
    await state.set("n", "k", {"f": 1.0, "i": 1})
    got = await state.get("n", "k")
    assert type(got["f"]) is float and type(got["i"]) is int


async def test_names_with_any_characters(state):
    names = ["a:b", "a/b", "ünï ©ødé", "{braces}", "x" * 1024, "👍"]
    for i, name in enumerate(names):
        await state.set(name, name, i)
    for i, name in enumerate(names):
        assert await state.get(name, name) == i
        assert await state.keys(name) == [name]
    assert await state.list_groups() == sorted(names)


async def test_list_entries_keys_in_insertion_order(state):
    for key in ["c", "a", "b"]:
        await state.set("g", key, {"key": key})
    await state.set("g", "a", {"key": "a", "again": True})  # overwriting keeps the place
    assert await state.keys("g") == ["c", "a", "b"]
    await state.delete("g", "c")
    await state.set("g", "c", {"key": "c"})  # delete then set moves it to the end
    assert await state.keys("g") == ["a", "b", "c"]
    assert await state.list("g") == [{"key": "a", "again": True}, {"key": "b"}, {"key": "c"}]
    assert await state.get_group("g") == await state.list("g")
    assert await state.entries("g") == [
        {"key": "a", "value": {"key": "a", "again": True}},
        {"key": "b", "value": {"key": "b"}},
        {"key": "c", "value": {"key": "c"}},
    ]
    assert await state.list("unknown") == []
    assert await state.entries("unknown") == []
    assert await state.keys("unknown") == []


async def test_list_groups_and_clear(state):
    assert await state.list_groups() == []
    await state.set("zeta", "k", 1)
    await state.set("alpha", "k", 1)
    await state.set("alpha", "j", 2)
    assert await state.list_groups() == ["alpha", "zeta"]
    events = []
    state.on_change(events.append, group="alpha")
    assert await state.clear("alpha") is None
    assert await state.list("alpha") == []
    assert await state.list_groups() == ["zeta"]
    await wait_for_slowly(lambda: len(events) == 2, what="two cleared events")
    assert sorted(e["item_id"] for e in events) == ["j", "k"]
    assert all(e["event_type"] == "state:deleted" and e["reason"] == "cleared" and e["new_value"] is None for e in events)
    await state.clear("never-there")


async def test_many_items_in_one_group(state):
    values = [{"i": i, "s": "x" * (i % 50)} for i in range(2000)]
    await asyncio.gather(*(state.set("big", f"k{i:04}", v) for i, v in enumerate(values)))
    listed = await state.list("big")
    assert sorted(listed, key=lambda v: v["i"]) == values
    assert sorted(await state.keys("big")) == [f"k{i:04}" for i in range(2000)]


# ---- TTL ----------------------------------------------------------------------------------


async def test_ttl_expires_and_update_keeps_expiry(state):
    await state.set("s", "short", {"n": 0}, ttl=0.4)
    await state.set("s", "long", {"n": 0})
    assert await state.update("s", "short", [{"type": "increment", "path": "n", "by": 1}]) == {"n": 1}
    await asyncio.sleep(0.8)
    assert await state.get("s", "short") is None
    assert await state.keys("s") == ["long"]


async def test_default_ttl_option(open_manager):
    state = await open_manager(ttl=0.3)
    await state.set("s", "k", 1)
    await state.set("s", "kept", 1, ttl=30)
    await asyncio.sleep(0.7)
    assert await state.get("s", "k") is None
    assert await state.get("s", "kept") == 1


# ---- ops ----------------------------------------------------------------------------------


async def test_update_returns_new_value_and_with_old(state):
    assert await state.update("u", "k", [{"type": "set", "path": "a.b", "value": 1}]) == {"a": {"b": 1}}
    result = await state.update("u", "k", [{"type": "increment", "path": "a.b", "by": 2}], with_old=True)
    assert result == SetResult({"a": {"b": 3}}, {"a": {"b": 1}})
    first = await state.update("u", "new", [{"type": "set", "path": "x", "value": True}], with_old=True)
    assert first == SetResult({"x": True}, None)


async def test_every_op(state):
    await state.set("u", "k", {"n": 10, "tags": ["a"], "s": "ab", "obj": {"x": 1}, "gone": 1})
    new = await state.update(
        "u",
        "k",
        [
            {"type": "set", "path": "deep.er.path", "value": [1]},
            {"type": "merge", "path": "obj", "value": {"y": 2}},
            {"type": "merge", "value": {"top": "level"}},
            {"type": "increment", "path": "n", "by": 5},
            {"type": "decrement", "path": "n", "by": 2.5},
            {"type": "increment", "path": "fresh", "by": 1},
            {"type": "append", "path": "tags", "value": "b"},
            {"type": "append", "path": "s", "value": "cd"},
            {"type": "remove", "path": "gone"},
            {"type": "remove", "path": "never"},
            {"type": "test", "path": "obj.x", "value": 1},
            {"type": "set", "path": ["lit.eral", "seg"], "value": "ok"},
            {"type": "set", "path": "/po~1inter/a~0b", "value": 3},
        ],
    )
    assert new == {
        "n": 12.5,
        "tags": ["a", "b"],
        "s": "abcd",
        "obj": {"x": 1, "y": 2},
        "deep": {"er": {"path": [1]}},
        "top": "level",
        "fresh": 1,
        "lit.eral": {"seg": "ok"},
        "po/inter": {"a~b": 3},
    }
    assert await state.get("u", "k") == new


async def test_json_patch_ops(state):
    new = await state.update(
        "u",
        "p",
        [
            {"op": "add", "path": "/status", "value": "new"},
            {"op": "replace", "path": "/status", "value": "paid"},
            {"op": "replace", "path": "/missing", "value": 1},
            {"op": "increment", "path": "/count", "value": 3},
            {"op": "test", "path": "/status", "value": "paid"},
            {"op": "add", "path": "/drop", "value": 1},
            {"op": "remove", "path": "/drop"},
        ],
    )
    assert new == {"status": "paid", "missing": 1, "count": 3}


async def test_root_set_and_merge(state):
    assert await state.update("u", "r", [{"type": "set", "path": "", "value": [1, 2]}]) == [1, 2]
    assert await state.update("u", "r", [{"type": "append", "path": "", "value": 3}]) == [1, 2, 3]


@pytest.mark.parametrize(
    "ops,code,index",
    [
        ([{"type": "set", "path": "a", "value": 1}, {"type": "increment", "path": "s", "by": 1}], "increment.not_number", 1),
        ([{"type": "merge", "path": "s", "value": {"a": 1}}], "merge.target_not_object", 0),
        ([{"type": "append", "path": "n", "value": 1}], "append.type_mismatch", 0),
        ([{"type": "test", "path": "s", "value": "other"}], "test.failed", 0),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "__proto__.x", "value": 1}], "path.proto_polluted", 1),
        ([{"type": "set", "path": "s.inner", "value": 1}], "path.not_container", 0),
        ([{"type": "remove", "path": ""}], "remove.root", 0),
        ([{"type": "increment", "path": "n", "by": 1.7e308}, {"type": "increment", "path": "n", "by": 1.7e308}], "increment.overflow", 1),
    ],
)
async def test_failing_op_changes_nothing(state, ops, code, index):
    before = {"s": "text", "n": 1}
    await state.set("u", "k", before)
    events = []
    state.on_change(events.append, group="u", key="k")
    err = await raises(state.update("u", "k", ops), code)
    assert err.op_index == index
    assert isinstance(err, StateError)
    assert await state.get("u", "k") == before
    # nothing is created for a missing key either
    with pytest.raises(StateError):
        await state.update("u", "absent", [{"type": "set", "path": "a", "value": 1}, {"type": "test", "path": "s", "value": "x"}])
    assert await state.get("u", "absent") is None
    # a later write's event arrives, and no event of the failed update came before it
    await state.set("u", "k", {"after": True})
    await wait_for_slowly(lambda: events, what="the event of the later set")
    await asyncio.sleep(0.05)
    assert [e["new_value"] for e in events] == [{"after": True}]


@pytest.mark.parametrize(
    "ops,index",
    [
        ([{"type": "explode", "path": "a"}], 0),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "increment", "path": "a", "by": "1"}], 1),
        ([{"type": "increment", "path": "a", "by": math.nan}], 0),
        ([{"type": "set", "value": 1}], 0),
        ([{"type": "set", "path": 5, "value": 1}], 0),
        ([{"type": "merge", "value": [1]}], 0),
        ([{"type": "set", "op": "add", "path": "a", "value": 1}], 0),
        ([{"op": "move", "from": "/a", "path": "/b"}], 0),
        (["not an object"], 0),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "a", "value": float("inf")}], 1),
    ],
)
async def test_malformed_op_is_invalid_op_before_anything_is_sent(state, ops, index):
    err = await raises(state.update("u", "k", ops), "INVALID_OP")
    assert isinstance(err, StateValueError) and isinstance(err, ValueError)
    assert err.op_index == index
    assert await state.get("u", "k") is None


async def test_increment_integers_exact_and_floats_stay_floats(state):
    big = 2**53 - 10
    await state.set("n", "k", {"i": big, "f": 0.1})
    new = await state.update("n", "k", [{"type": "increment", "path": "i", "by": 9}, {"type": "increment", "path": "f", "by": 0.2}])
    assert new["i"] == 2**53 - 1 and type(new["i"]) is int
    assert new["f"] == 0.1 + 0.2


# ---- argument and value errors ------------------------------------------------------------


BAD_NAMES = ["", 5, None, b"bytes", "x" * 1025, "é" * 513]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
async def test_bad_group_or_key_is_invalid_argument(state, bad):
    for call in (
        lambda: state.get(bad, "k"),
        lambda: state.get("g", bad),
        lambda: state.set(bad, "k", 1),
        lambda: state.set("g", bad, 1),
        lambda: state.update(bad, "k", []),
        lambda: state.delete("g", bad),
        lambda: state.list(bad),
        lambda: state.entries(bad),
        lambda: state.keys(bad),
        lambda: state.clear(bad),
    ):
        err = await raises(call(), "INVALID_ARGUMENT")
        assert isinstance(err, StateTypeError) and isinstance(err, TypeError)
    assert await state.list_groups() == []


async def test_other_invalid_arguments(state, redis_server):
    for ops in ({"type": "set"}, "ops", None, 5):
        await raises(state.update("g", "k", ops), "INVALID_ARGUMENT")
    for ttl in (0, -1, math.inf, math.nan, "5", True):
        await raises(state.set("g", "k", 1, ttl=ttl), "INVALID_ARGUMENT")
    with pytest.raises(StateTypeError):
        state.on_change("not callable")
    with pytest.raises(StateTypeError):
        state.on_change(print, group="")
    await raises(StateManager.open(adapter="redis", url="http://127.0.0.1:1"), "INVALID_ARGUMENT")
    await raises(StateManager.open(adapter="redis", url=redis_server.url, prefix=5), "INVALID_ARGUMENT")
    await raises(StateManager.open(adapter="redis", url=redis_server.url, command_timeout=0), "INVALID_ARGUMENT")
    await raises(StateManager.open(adapter="redis", url=redis_server.url, max_value_bytes=-3), "INVALID_ARGUMENT")
    for events_kept in (0, -5, 1.5, "100", True):
        await raises(StateManager.open(adapter="redis", url=redis_server.url, events_kept=events_kept), "INVALID_ARGUMENT")
    with pytest.raises(TypeError):
        await StateManager.open(adapter="redis", url=redis_server.url, no_such_option=1)
    with pytest.raises(StateTypeError):
        StateManager(adapter="redis", url=redis_server.url)
    assert await state.list_groups() == []


async def test_invalid_values_store_nothing(state):
    cyclic: dict = {}
    cyclic["self"] = cyclic
    for value in (math.nan, math.inf, -math.inf, {"a": [math.nan]}, object(), {1: "non-str key"}, b"bytes", cyclic, {"s": {1, 2}}):
        err = await raises(state.set("g", "k", value), "INVALID_VALUE")
        assert isinstance(err, StateValueError)
    assert await state.get("g", "k") is None
    assert await state.list_groups() == []


async def test_value_too_large(open_manager):
    state = await open_manager(max_value_bytes=100)
    await state.set("g", "k", {"s": "x" * 50})
    await raises(state.set("g", "k", {"s": "x" * 200}), "VALUE_TOO_LARGE")
    await raises(state.update("g", "k", [{"type": "append", "path": "s", "value": "y" * 100}]), "VALUE_TOO_LARGE")
    assert await state.get("g", "k") == {"s": "x" * 50}


async def test_invalid_argument_is_raised_before_anything_is_sent(redis_server, open_manager):
    """With the server gone a call that reached Redis would wait for command_timeout; one with
    a bad argument raises INVALID_ARGUMENT (and a bad value INVALID_VALUE) at once."""
    state = await open_manager(command_timeout=5)
    redis_server.stop()
    try:
        started = time.monotonic()
        await raises(state.get("", "k"), "INVALID_ARGUMENT")
        await raises(state.set("g", "k", 1, ttl=-1), "INVALID_ARGUMENT")
        await raises(state.update("g", "k", "ops"), "INVALID_ARGUMENT")
        await raises(state.set("g", "k", math.nan), "INVALID_VALUE")
        await raises(state.update("g", "k", [{"type": "nope", "path": "a"}]), "INVALID_OP")
        assert time.monotonic() - started < 0.5
        # the coroutine raises on its first step, before it ever yields to the loop
        with pytest.raises(StateTypeError):
            state.get(7, "k").send(None)
    finally:
        redis_server.start()


# ---- atomicity -------------------------------------------------------------------------


async def test_events_kept_bounds_the_event_stream(open_manager, redis_server, redis_prefix):
    """Each event holds the old and the new value: ``events_kept`` bounds how many the stream
    keeps (about: it is trimmed as each mark is made, one per ``events_kept / 16`` events, to
    the entry of the newest mark at least that many events old)."""
    state = await open_manager(events_kept=50)
    for _ in range(4):
        await asyncio.gather(*(state.set("g", f"k{i % 100}", {"i": i}) for i in range(500)))
    listing = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "XRANGE", f"{redis_prefix}events", "-", "+"],
        capture_output=True, text=True, check=True,
    ).stdout
    # An entry holds a script call's events one after another, each its kind (c, u, d, e, x)
    # and fields by position: here the group "g", keys "k…" and payloads, so a line of one of
    # those letters alone starts an event.
    events = sum(1 for line in listing.splitlines() if line in ("c", "u", "d", "e", "x"))
    assert 50 <= events < 400


async def test_2000_concurrent_increments_from_one_manager(state):
    ops = [{"type": "increment", "path": "count", "by": 1}]
    results = await asyncio.gather(*(state.update("c", "k", ops) for _ in range(2000)))
    assert await state.get("c", "k") == {"count": 2000}
    assert sorted(r["count"] for r in results) == list(range(1, 2001))


async def test_calls_in_flight_together_run_per_key_in_the_order_made(state):
    # Writes go to Redis in batches; each key's calls, reads included, still run in the order
    # they were made: every set sees the value the call before it on its key left.
    calls = []
    for i in range(300):
        key = f"k{i % 5}"
        if i % 3 == 0:
            calls.append(state.set("order", key, {"i": i}, with_old=True))
        elif i % 3 == 1:
            calls.append(state.update("order", key, [{"type": "set", "path": "u", "value": i}]))
        else:
            calls.append(state.get("order", key))
    results = await asyncio.gather(*calls)
    # The call before call i on its key is call i - 5: an update before a set, a get before an
    # update, a set before a get.
    for i in range(5, 300):
        before = results[i - 5]
        if i % 3 == 0:
            assert results[i].old_value == before, i
        elif i % 3 == 1:
            assert results[i] == {**(before or {}), "u": i}, i
        else:
            assert results[i] == before.new_value, i


async def test_a_clear_in_flight_comes_after_the_writes_made_before_it(state):
    for _ in range(20):
        calls = [state.set("cleared", f"k{i}", {"i": i}) for i in range(30)]
        calls.append(state.clear("cleared"))
        calls += [state.update("cleared", f"k{i}", [{"type": "set", "path": "after", "value": True}]) for i in range(0, 30, 3)]
        calls.append(state.keys("cleared"))
        results = await asyncio.gather(*calls)
        # The clear removed every item set before it, and none written after it.
        assert sorted(results[-1]) == sorted(f"k{i}" for i in range(0, 30, 3))
        assert all(value == {"after": True} for value in await state.list("cleared"))
        await state.clear("cleared")


async def test_2000_concurrent_increments_from_two_managers(open_manager):
    a, b = await open_manager(), await open_manager()
    ops = [{"op": "increment", "path": "/count", "value": 1}]
    results = await asyncio.gather(*(m.update("c", "k", ops) for _ in range(1000) for m in (a, b)))
    assert await a.get("c", "k") == {"count": 2000}
    assert await b.get("c", "k") == {"count": 2000}
    assert sorted(r["count"] for r in results) == list(range(1, 2001))


async def test_compare_and_set_across_managers(open_manager):
    a, b = await open_manager(), await open_manager()
    await a.set("jobs", "j", {"status": "pending"})
    claim = [{"type": "test", "path": "status", "value": "pending"}, {"type": "set", "path": "status", "value": "taken"}]
    outcomes = await asyncio.gather(*(m.update("jobs", "j", claim) for m in (a, b) for _ in range(10)), return_exceptions=True)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1 and won[0] == {"status": "taken"}
    assert all(isinstance(e, StateError) and e.code == "test.failed" and e.op_index == 0 for e in lost)


# ---- events -------------------------------------------------------------------------------


async def test_events_shapes(state):
    events = []
    off = state.on_change(events.append)
    await state.set("g", "k", {"v": 1})
    await state.update("g", "k", [{"type": "increment", "path": "v", "by": 1}])
    await state.delete("g", "k")
    await state.delete("g", "k")  # missing: nothing fires
    await wait_for_slowly(lambda: len(events) == 3, what="three events")
    assert events == [
        {"type": "state", "event_type": "state:created", "group_id": "g", "item_id": "k", "old_value": None, "new_value": {"v": 1}},
        {"type": "state", "event_type": "state:updated", "group_id": "g", "item_id": "k", "old_value": {"v": 1}, "new_value": {"v": 2}},
        {"type": "state", "event_type": "state:deleted", "group_id": "g", "item_id": "k", "old_value": {"v": 2}, "new_value": None},
    ]
    off()
    await state.set("g", "k", 1)
    await asyncio.sleep(0.2)
    assert len(events) == 3


async def test_events_from_another_manager_once_each_in_order(open_manager):
    listener_side, writer = await open_manager(), await open_manager()
    every, of_k1, conditioned, async_seen = [], [], [], []

    async def async_listener(event):
        await asyncio.sleep(0)
        async_seen.append(event)

    listener_side.on_change(every.append)
    listener_side.on_change(of_k1.append, group="counters", key="k1")
    listener_side.on_change(conditioned.append, group="counters", condition=lambda e: e["new_value"]["n"] % 10 == 0)
    listener_side.on_change(async_listener, group="counters", key="k2")
    ops = [{"type": "increment", "path": "n", "by": 1}]
    n = 200
    await asyncio.gather(
        *(writer.update("counters", "k1", ops) for _ in range(n)),
        *(writer.update("counters", "k2", ops) for _ in range(n)),
        writer.set("other", "x", {"n": 0}),
    )
    await wait_for_slowly(lambda: len(every) == 2 * n + 1 and len(async_seen) == n, timeout=10, what="every event")
    await asyncio.sleep(0.2)  # and nothing more comes
    assert len(every) == 2 * n + 1
    for key in ("k1", "k2"):
        mine = [e["new_value"]["n"] for e in every if e["item_id"] == key]
        assert mine == list(range(1, n + 1))
    assert [e["new_value"]["n"] for e in of_k1] == list(range(1, n + 1))
    assert [e["old_value"] for e in of_k1][:2] == [None, {"n": 1}]
    assert [e["event_type"] for e in of_k1][:2] == ["state:created", "state:updated"]
    assert [e["new_value"]["n"] for e in async_seen] == list(range(1, n + 1))
    assert sorted((e["item_id"], e["new_value"]["n"]) for e in conditioned) == sorted(
        (k, i) for k in ("k1", "k2") for i in range(10, n + 1, 10)
    )


async def test_watch_iterator(open_manager):
    reader, writer = await open_manager(), await open_manager()
    seen = []

    async def consume():
        async for event in reader.watch("w", "k"):
            seen.append(event["new_value"])
            if len(seen) == 3:
                break

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    for i in range(3):
        await writer.set("w", "k", i)
    await asyncio.wait_for(task, 5)
    assert seen == [0, 1, 2]


async def test_listener_errors_reach_the_handler_and_spare_others(open_manager):
    state = await open_manager()
    failures, good = [], []
    state.listener_error_handler = lambda err, event: failures.append((err, event["item_id"]))

    def bad(event):
        raise RuntimeError("listener bug")

    async def bad_async(event):
        raise KeyError("async listener bug")

    state.on_change(bad)
    state.on_change(bad_async)
    state.on_change(good.append)
    assert await state.set("g", "k", 1) == 1
    await wait_for_slowly(lambda: len(failures) == 2 and len(good) == 1, what="both failures reported")
    assert sorted(type(err).__name__ for err, _ in failures) == ["KeyError", "RuntimeError"]


async def test_ttl_expiry_event_seen_once_by_each_of_two_managers(open_manager):
    a, b = await open_manager(), await open_manager()
    seen_a, seen_b = [], []
    a.on_change(seen_a.append, group="sessions")
    b.on_change(seen_b.append, group="sessions")
    await a.set("sessions", "s1", {"user": "ada"}, ttl=0.5)
    set_at = time.monotonic()

    def expired(events):
        return [e for e in events if e["event_type"] == "state:deleted"]

    await wait_for_slowly(lambda: expired(seen_a) and expired(seen_b), timeout=5, what="both managers to hear the expiry")
    assert time.monotonic() - set_at < 0.5 + 2.0
    await asyncio.sleep(1.0)  # both sweeps ran again: still once each
    for seen in (seen_a, seen_b):
        assert [e["event_type"] for e in seen] == ["state:created", "state:deleted"]
        gone = seen[1]
        assert gone["reason"] == "expired" and gone["old_value"] == {"user": "ada"} and gone["new_value"] is None
        assert gone["group_id"] == "sessions" and gone["item_id"] == "s1"
    assert await b.get("sessions", "s1") is None


# ---- a server that dies and comes back; open against nothing; close -----------------------


async def test_server_down_then_back(redis_server, open_manager):
    state = await open_manager(command_timeout=1)
    other = await open_manager(command_timeout=1)
    seen = []
    state.on_change(seen.append)
    await state.set("jobs", "j1", {"step": 1})
    assert await other.get("jobs", "j1") == {"step": 1}

    redis_server.stop()
    try:
        calls = {
            "get": lambda: state.get("jobs", "j1"),
            "set": lambda: state.set("jobs", "j2", {"step": 1}),
            "update": lambda: state.update("jobs", "j1", [{"type": "increment", "path": "step", "by": 1}]),
            "delete": lambda: state.delete("jobs", "j1"),
            "list": lambda: state.list("jobs"),
            "entries": lambda: state.entries("jobs"),
            "keys": lambda: state.keys("jobs"),
            "list_groups": lambda: state.list_groups(),
            "clear": lambda: state.clear("jobs"),
        }
        for name, call in calls.items():
            started = time.monotonic()
            err = await raises(call(), "BACKEND_UNAVAILABLE")
            elapsed = time.monotonic() - started
            assert elapsed < 2.5, f"{name} took {elapsed:.2f}s to fail: {err}"
        started = time.monotonic()
        outcomes = await asyncio.gather(*(state.get("jobs", f"j{i}") for i in range(8)), return_exceptions=True)
        assert all(isinstance(o, StateError) and o.code == "BACKEND_UNAVAILABLE" for o in outcomes), outcomes
        assert time.monotonic() - started < 2.5

        # close() while the server is down returns promptly, and the manager is closed
        started = time.monotonic()
        await other.close()
        assert time.monotonic() - started < 0.5
        await raises(other.get("jobs", "j1"), "CLOSED")
    finally:
        redis_server.start()

    # back on the same port (empty): the same manager works again, and its listener hears it
    deadline = time.monotonic() + 15
    while True:
        try:
            await state.set("jobs", "j3", {"step": 3})
            break
        except StateError as err:
            assert err.code == "BACKEND_UNAVAILABLE"
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    assert await state.get("jobs", "j3") == {"step": 3}
    assert await state.update("jobs", "j3", [{"type": "increment", "path": "step", "by": 1}], with_old=True) == SetResult(
        {"step": 4}, {"step": 3}
    )
    assert await state.keys("jobs") == ["j3"]
    await wait_for_slowly(
        lambda: any(e["item_id"] == "j3" and (e["new_value"] or {}).get("step") == 4 for e in seen),
        timeout=10,
        what="the listener to hear a write made after the restart",
    )
    # a manager opened now sees the same state
    fresh = await open_manager()
    assert await fresh.get("jobs", "j3") == {"step": 4}


async def test_open_against_nothing_is_backend_unavailable():
    port = _free_port()
    started = time.monotonic()
    err = await raises(
        StateManager.open(adapter="redis", url=f"redis://127.0.0.1:{port}", prefix="nothing:", command_timeout=1),
        "BACKEND_UNAVAILABLE",
    )
    assert time.monotonic() - started < 3, err
    # also with host/port options, and as an async context manager
    with pytest.raises(StateError) as info:
        async with StateManager.open(adapter="redis", host="127.0.0.1", port=port, command_timeout=1):
            pass
    assert info.value.code == "BACKEND_UNAVAILABLE"


async def test_host_port_db_options(redis_server, redis_prefix):
    async with StateManager.open(adapter="redis", host="127.0.0.1", port=redis_server.port, db=3, prefix=redis_prefix) as a:
        await a.set("g", "k", "in db 3")
        async with StateManager.open(adapter="redis", url=redis_server.url + "/3", prefix=redis_prefix) as same:
            assert await same.get("g", "k") == "in db 3"
        async with StateManager.open(adapter="redis", url=redis_server.url + "/0", prefix=redis_prefix) as other_db:
            assert await other_db.get("g", "k") is None
    assert a._closed


async def test_calls_after_close_raise_closed(open_manager):
    state = await open_manager()
    await state.set("g", "k", 1)
    events = []
    state.on_change(events.append)
    await state.close()
    await state.close()  # idempotent
    assert "closed" in repr(state)
    for call in (
        lambda: state.get("g", "k"),
        lambda: state.set("g", "k", 1),
        lambda: state.update("g", "k", []),
        lambda: state.delete("g", "k"),
        lambda: state.list("g"),
        lambda: state.entries("g"),
        lambda: state.keys("g"),
        lambda: state.list_groups(),
        lambda: state.clear("g"),
    ):
        await raises(call(), "CLOSED")
    with pytest.raises(StateError) as info:
        state.on_change(print)
    assert info.value.code == "CLOSED"


async def test_close_with_calls_in_flight(open_manager):
    state = await open_manager()
    pending = [asyncio.ensure_future(state.update("c", "k", [{"type": "increment", "path": "n", "by": 1}])) for _ in range(200)]
    await asyncio.sleep(0)
    await state.close()
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, StateError) and e.code == "CLOSED" for e in failed), failed
    assert len(done) + len(failed) == 200


async def test_cancelled_call_does_not_break_the_manager(state):
    task = asyncio.ensure_future(state.get("g", "k"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await state.set("g", "k", 1) == 1
    assert await state.get("g", "k") == 1


async def test_manager_used_from_a_second_event_loop(redis_server, redis_prefix):
    """asyncio.run twice with one manager: the wake socket moves to the new loop."""
    manager = await StateManager.open(adapter="redis", url=redis_server.url, prefix=redis_prefix)
    try:
        await manager.set("g", "k", 1)

        def in_other_loop():
            return asyncio.run(manager.get("g", "k"))

        assert await asyncio.get_running_loop().run_in_executor(None, in_other_loop) == 1
        assert await manager.get("g", "k") == 1
    finally:
        await manager.close()
