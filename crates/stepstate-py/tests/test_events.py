"""Change events: the exact event dicts, filters (group, key, condition), unsubscribing, when
callbacks run relative to the write, per-key commit order, async callbacks, what a failing
callback does (``listener_error_handler``, else the loop's exception handler), and the
``watch()`` async iterator."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from stepstate import StateError, StateManager, StateTypeError
from helpers import wait_for


def record(state, **filters):
    events = []
    off = state.on_change(events.append, **filters)
    return events, off


_markers = iter(range(1_000_000))


async def catch_up(state, events, group="g"):
    """Writes a marker and waits for its event in ``events``: delivery is in order, so every
    earlier write's event is in by then. Returns the events without the marker's."""
    marker = f"marker-{next(_markers)}"
    await state.set(group, marker, "marker")
    await wait_for(lambda: any(e["item_id"] == marker for e in events), what=f"the event of {group}/{marker}")
    return [e for e in events if e["item_id"] != marker]


def created(group, key, value):
    return {"type": "state", "event_type": "state:created", "group_id": group, "item_id": key, "old_value": None, "new_value": value}


def updated(group, key, old, new):
    return {"type": "state", "event_type": "state:updated", "group_id": group, "item_id": key, "old_value": old, "new_value": new}


def deleted(group, key, old, reason=None):
    event = {"type": "state", "event_type": "state:deleted", "group_id": group, "item_id": key, "old_value": old, "new_value": None}
    if reason is not None:
        event["reason"] = reason
    return event


# ---- event dicts ------------------------------------------------------------------------------


async def test_set_of_a_new_key_is_state_created_with_exactly_these_fields(state):
    events, _ = record(state)
    await state.set("orders", "o1", {"status": "new", "items": [1, 2]})
    await wait_for(lambda: len(events) == 1)
    assert events == [created("orders", "o1", {"status": "new", "items": [1, 2]})]
    assert sorted(events[0]) == ["event_type", "group_id", "item_id", "new_value", "old_value", "type"]


async def test_set_of_an_existing_key_and_update_are_state_updated(state):
    await state.set("orders", "o1", {"status": "new"})
    events, _ = record(state)
    await state.set("orders", "o1", {"status": "paid"})
    await state.update("orders", "o1", [{"type": "set", "path": "total", "value": 12.5}])
    await wait_for(lambda: len(events) == 2)
    assert events == [
        updated("orders", "o1", {"status": "new"}, {"status": "paid"}),
        updated("orders", "o1", {"status": "paid"}, {"status": "paid", "total": 12.5}),
    ]
    assert type(events[1]["new_value"]["total"]) is float


async def test_update_of_a_missing_key_is_state_created(state):
    events, _ = record(state)
    await state.update("counters", "c", [{"type": "increment", "path": "n", "by": 2}])
    await wait_for(lambda: len(events) == 1)
    assert events == [created("counters", "c", {"n": 2})]


async def test_delete_is_state_deleted_without_a_reason(state):
    await state.set("orders", "o1", "gone soon")
    events, _ = record(state)
    await state.delete("orders", "o1")
    await wait_for(lambda: len(events) == 1)
    assert events == [deleted("orders", "o1", "gone soon")]
    assert "reason" not in events[0]


async def test_clear_fires_one_deleted_event_with_reason_cleared_per_item_in_order(state):
    await state.set("g", "a", 1)
    await state.set("g", "b", {"two": 2})
    await state.set("g", "c", [3])
    await state.set("g", "a", 10)
    await state.set("other", "x", 0)
    events, _ = record(state)
    await state.clear("g")
    await wait_for(lambda: len(events) == 3)
    assert events == [deleted("g", "a", 10, "cleared"), deleted("g", "b", {"two": 2}, "cleared"), deleted("g", "c", [3], "cleared")]
    assert len(await catch_up(state, events, "other")) == 3


async def test_writes_that_change_nothing_fire_nothing(state):
    events, _ = record(state)
    assert await state.delete("g", "missing") is None
    await state.clear("unknown")
    with pytest.raises(StateError):
        await state.update("g", "k", [{"type": "test", "path": "a", "value": 1}])
    with pytest.raises(StateError):
        await state.set("g", "k", {1, 2})
    assert await catch_up(state, events) == []


async def test_events_carry_falsy_values_and_unusual_names_exactly(state):
    events, _ = record(state)
    name = 'k "quoted" é:/😀'
    for value in (0, False, "", None, 0.0):
        await state.set("a:b/c", name, value)
    await wait_for(lambda: len(events) == 5)
    assert [(e["group_id"], e["item_id"], e["old_value"], e["new_value"]) for e in events] == [
        ("a:b/c", name, None, 0),
        ("a:b/c", name, 0, False),
        ("a:b/c", name, False, ""),
        ("a:b/c", name, "", None),
        ("a:b/c", name, None, 0.0),
    ]
    assert events[1]["new_value"] is False and type(events[4]["new_value"]) is float


async def test_each_listener_gets_its_own_copy_of_the_event(state):
    first, _ = record(state)

    def vandal(event):
        event["new_value"]["n"] = 99
        event["item_id"] = "changed"

    state.on_change(vandal)
    last, _ = record(state)
    await state.set("g", "k", {"n": 1})
    await wait_for(lambda: len(first) == 1 and len(last) == 1)
    assert last == [created("g", "k", {"n": 1})]
    assert first == [created("g", "k", {"n": 1})]
    assert await state.get("g", "k") == {"n": 1}


# ---- filters ----------------------------------------------------------------------------------


async def test_a_group_filter_delivers_only_that_group(state):
    orders, _ = record(state, group="orders")
    await state.set("users", "u1", 1)
    await state.set("orders", "o1", 2)
    await state.set("orders-archive", "o1", 3)
    await state.set("orders", "o2", 4)
    assert await catch_up(state, orders, "orders") == [created("orders", "o1", 2), created("orders", "o2", 4)]


async def test_a_key_filter_delivers_only_that_key_of_that_group(state):
    everything, _ = record(state)
    one_key, _ = record(state, group="orders", key="o1")
    await state.set("orders", "o2", 1)
    await state.set("users", "o1", 2)
    await state.set("orders", "o1", 3)
    await state.delete("orders", "o1")
    await catch_up(state, everything, "orders")
    assert [(e["group_id"], e["item_id"], e["event_type"]) for e in one_key] == [
        ("orders", "o1", "state:created"),
        ("orders", "o1", "state:deleted"),
    ]


async def test_a_key_filter_without_a_group_matches_the_key_in_every_group(state):
    everything, _ = record(state)
    by_key, _ = record(state, key="id-1")
    await state.set("orders", "id-1", 1)
    await state.set("orders", "id-2", 2)
    await state.set("users", "id-1", 3)
    await catch_up(state, everything)
    assert [(e["group_id"], e["item_id"]) for e in by_key] == [("orders", "id-1"), ("users", "id-1")]


async def test_a_condition_delivers_only_the_events_it_accepts(state):
    everything, _ = record(state, group="orders")
    big, _ = record(state, group="orders", condition=lambda e: ((e["new_value"] or {}).get("total") or 0) > 100)
    await state.set("orders", "small", {"total": 5})
    await state.set("orders", "large", {"total": 500})
    await state.update("orders", "small", [{"type": "set", "path": "total", "value": 101}])
    await state.delete("orders", "large")
    await state.set("users", "rich", {"total": 1000})
    await catch_up(state, everything, "orders")
    assert [(e["item_id"], e["event_type"], e["new_value"]) for e in big] == [
        ("large", "state:created", {"total": 500}),
        ("small", "state:updated", {"total": 101}),
    ]


async def test_a_condition_that_raises_skips_the_event_and_is_reported(state):
    reported = []
    state.listener_error_handler = lambda err, event: reported.append((err, event))
    everything, _ = record(state)

    def condition(event):
        if event["item_id"] == "bad":
            raise RuntimeError("condition failed")
        return True

    guarded, _ = record(state, condition=condition)
    await state.set("g", "bad", 1)
    await state.set("g", "good", 2)
    await catch_up(state, everything)
    assert [e["item_id"] for e in guarded][:1] == ["good"]
    assert len(reported) == 1
    err, event = reported[0]
    assert isinstance(err, RuntimeError) and str(err) == "condition failed"
    assert event == created("g", "bad", 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"group": ""},
        {"group": 5},
        {"group": b"g"},
        {"group": "x" * 1025},
        {"key": ""},
        {"key": ["k"]},
        {"condition": "yes"},
        {"condition": True},
    ],
    ids=repr,
)
async def test_a_filter_of_the_wrong_shape_raises_invalid_argument(state, kwargs):
    with pytest.raises(StateTypeError) as caught:
        state.on_change(lambda e: None, **kwargs)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert isinstance(caught.value, TypeError)


async def test_a_callback_that_is_not_callable_raises_invalid_argument(state):
    for callback in ("not a function", None, 5):
        with pytest.raises(StateTypeError) as caught:
            state.on_change(callback)
        assert caught.value.code == "INVALID_ARGUMENT"


# ---- unsubscribing ----------------------------------------------------------------------------


async def test_unsubscribing_stops_delivery_and_is_harmless_twice(state):
    everything, _ = record(state)
    stopped, off = record(state)
    await state.set("g", "before", 1)
    await wait_for(lambda: len(stopped) == 1)
    assert off() is None
    off()
    await state.set("g", "after", 2)
    await state.delete("g", "before")
    await catch_up(state, everything)
    assert stopped == [created("g", "before", 1)]


async def test_unsubscribing_drops_events_committed_but_not_yet_delivered(state):
    everything, _ = record(state)
    stopped, off = record(state)
    await state.set("g", "k", 1)
    off()
    await catch_up(state, everything)
    assert stopped == []


async def test_events_of_writes_made_before_close_still_reach_their_listeners():
    state = StateManager()
    events, _ = record(state)
    await state.set("g", "k", 1)
    await state.delete("g", "k")
    await state.close()
    assert events == [created("g", "k", 1), deleted("g", "k", 1)]


# ---- delivery timing and order ----------------------------------------------------------------


async def test_callbacks_run_on_the_loop_after_the_write_has_returned(state):
    events, threads = [], []

    def listener(event):
        events.append(event)
        threads.append(threading.get_ident())

    state.on_change(listener)
    result = await state.set("g", "k", 1)
    assert result == 1
    assert events == [], "the callback must not run inside the write nor before it returns"
    await state.update("g", "k", [{"type": "set", "path": "", "value": 2}])
    await state.delete("g", "k")
    assert events == []
    await wait_for(lambda: len(events) == 3)
    assert set(threads) == {threading.get_ident()}


async def test_an_async_callback_may_write_to_the_store(state):
    async def mirror(event):
        if event["group_id"] == "orders":
            await state.set("audit", event["item_id"], {"saw": event["event_type"]})

    state.on_change(mirror)
    await state.set("orders", "o1", {"total": 1})
    await state.delete("orders", "o1")
    deadline = time.monotonic() + 5
    while await state.get("audit", "o1") != {"saw": "state:deleted"}:
        assert time.monotonic() < deadline, "the async callback's writes"
        await asyncio.sleep(0.005)


async def test_a_sync_callback_may_schedule_a_write(state):
    seen = []

    def on_order(event):
        seen.append(asyncio.ensure_future(state.set("audit", event["item_id"], event["new_value"])))

    state.on_change(on_order, group="orders")
    await state.set("orders", "o1", 5)
    await wait_for(lambda: len(seen) == 1)
    await seen[0]
    assert await state.get("audit", "o1") == 5


async def test_an_async_callback_that_never_finishes_does_not_hold_up_writers(state):
    calls = []

    async def stuck(event):
        calls.append(event)
        await asyncio.Event().wait()

    state.on_change(stuck)
    for n in range(1, 6):
        await asyncio.wait_for(state.set("g", "k", n), 2)
        await wait_for(lambda: len(calls) == n, what=f"call {n}")
    assert await state.get("g", "k") == 5


async def test_1000_concurrent_increments_of_one_key_arrive_in_commit_order(state):
    events, _ = record(state, group="counters", key="c")
    results = await asyncio.gather(*(state.update("counters", "c", [{"type": "increment", "path": "n", "by": 1}]) for _ in range(1000)))
    assert sorted(r["n"] for r in results) == list(range(1, 1001))
    await wait_for(lambda: len(events) == 1000, 10)
    assert [e["new_value"]["n"] for e in events] == list(range(1, 1001))
    assert [(e["old_value"] or {}).get("n", 0) for e in events] == list(range(1000))
    assert events[0]["event_type"] == "state:created"
    assert all(e["event_type"] == "state:updated" for e in events[1:])


async def test_events_of_different_keys_keep_each_keys_order(state):
    events, _ = record(state)
    for round_ in range(20):
        for key in ("a", "b", "c"):
            await state.set("g", key, round_)
    await wait_for(lambda: len(events) == 60)
    for key in ("a", "b", "c"):
        assert [e["new_value"] for e in events if e["item_id"] == key] == list(range(20))


# ---- failing listeners ------------------------------------------------------------------------


async def test_failing_listeners_are_reported_and_affect_neither_the_write_nor_other_listeners(state):
    reported = []
    state.listener_error_handler = lambda err, event: reported.append((err, event))
    before, _ = record(state)

    def sync_failure(event):
        raise ValueError("sync failure")

    async def async_failure(event):
        await asyncio.sleep(0)
        raise KeyError("async failure")

    state.on_change(sync_failure)
    state.on_change(async_failure)
    after, _ = record(state)

    assert await state.set("g", "k", {"n": 1}, with_old=True) == ({"n": 1}, None)
    assert await state.get("g", "k") == {"n": 1}
    await wait_for(lambda: len(reported) == 2 and len(after) == 1, what="two reports and the last listener")
    assert before == [created("g", "k", {"n": 1})]
    assert after == [created("g", "k", {"n": 1})]
    assert sorted(type(err).__name__ for err, _ in reported) == ["KeyError", "ValueError"]
    assert all(event == created("g", "k", {"n": 1}) for _, event in reported)

    # The failing listeners stay subscribed and keep being reported.
    await state.update("g", "k", [{"type": "increment", "path": "n", "by": 1}])
    await wait_for(lambda: len(reported) == 4 and len(after) == 2, what="the second round")
    assert [event["event_type"] for _, event in reported[2:]] == ["state:updated", "state:updated"]


async def test_without_a_handler_a_failing_listener_goes_to_the_loops_exception_handler(state):
    loop = asyncio.get_running_loop()
    contexts = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: contexts.append(context))
    try:
        assert state.listener_error_handler is None
        everything, _ = record(state)

        def failing(event):
            raise RuntimeError("listener failed")

        async def failing_later(event):
            raise LookupError("coroutine failed")

        state.on_change(failing)
        state.on_change(failing_later)
        await state.set("orders", "o1", 1)
        await wait_for(lambda: len(contexts) == 2, what="two reports")
        assert everything == [created("orders", "o1", 1)]
        by_type = {type(c["exception"]): c for c in contexts}
        assert set(by_type) == {RuntimeError, LookupError}
        for context in contexts:
            assert context["event"] == created("orders", "o1", 1)
            assert "orders" in context["message"] and "o1" in context["message"]
    finally:
        loop.set_exception_handler(previous)


# ---- watch ------------------------------------------------------------------------------------


async def test_watch_yields_the_changes_in_order(state):
    seen = []

    async def consume():
        async for event in state.watch("orders"):
            seen.append(event)
            if len(seen) == 3:
                break

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # the iterator subscribes when it first runs
    await state.set("orders", "o1", 1)
    await state.set("users", "u1", "ignored")
    await state.set("orders", "o1", 2)
    await state.delete("orders", "o1")
    await asyncio.wait_for(task, 5)
    assert seen == [created("orders", "o1", 1), updated("orders", "o1", 1, 2), deleted("orders", "o1", 2)]


async def test_watch_filters_by_key_and_condition(state):
    iterator = state.watch("orders", "o1", condition=lambda e: e["new_value"] is not None and e["new_value"] > 1)
    first = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await state.set("orders", "o2", 5)
    await state.set("orders", "o1", 1)
    await state.set("orders", "o1", 7)
    assert await asyncio.wait_for(first, 5) == updated("orders", "o1", 1, 7)
    await iterator.aclose()


async def test_watch_waits_for_the_next_event_when_none_is_buffered(state):
    iterator = state.watch()
    pending = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0.05)
    assert not pending.done()
    await state.set("g", "k", "v")
    assert await asyncio.wait_for(pending, 5) == created("g", "k", "v")
    await iterator.aclose()


async def test_watch_buffers_events_between_iterations(state):
    iterator = state.watch("g")
    first = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    for n in range(5):
        await state.set("g", "k", n)
    assert (await asyncio.wait_for(first, 5))["new_value"] == 0
    assert [(await asyncio.wait_for(iterator.__anext__(), 5))["new_value"] for _ in range(4)] == [1, 2, 3, 4]
    await iterator.aclose()


async def test_leaving_the_watch_loop_unsubscribes(state):
    listeners_before = len(state._listeners)
    async for event in _watch_after_write(state):
        assert event == created("orders", "o1", 1)
        break
    # The abandoned generator is finalized (and its `finally` unsubscribes) on the next turns.
    for _ in range(10):
        gc.collect()
        await asyncio.sleep(0)
    assert len(state._listeners) == listeners_before


async def _watch_after_write(state):
    iterator = state.watch("orders")
    first = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await state.set("orders", "o1", 1)
    yield await first
    async for event in iterator:
        yield event


async def test_a_closed_watch_iterator_is_done_and_unsubscribed(state):
    everything, _ = record(state)
    iterator = state.watch("orders")
    first = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await state.set("orders", "o1", 1)
    assert await asyncio.wait_for(first, 5) == created("orders", "o1", 1)
    await iterator.aclose()
    assert len(state._listeners) == 1  # only `everything`
    await state.set("orders", "o2", 2)
    await catch_up(state, everything, "orders")
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_closing_the_manager_ends_pending_watch_iterations():
    state = StateManager()
    seen = []

    async def loop_over():
        async for event in state.watch():
            seen.append(event)
        return "ended"

    task = asyncio.ensure_future(loop_over())
    iterator = state.watch("g")
    pending = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await state.set("g", "k", 1)
    assert await asyncio.wait_for(pending, 5) == created("g", "k", 1)
    await wait_for(lambda: len(seen) == 1)
    still_pending = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await state.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(still_pending, 5)
    assert await asyncio.wait_for(task, 5) == "ended"
    assert seen == [created("g", "k", 1)]


async def test_watch_on_a_closed_manager_raises_closed():
    state = StateManager()
    await state.close()
    with pytest.raises(StateError) as caught:
        async for _ in state.watch():
            pass
    assert caught.value.code == "CLOSED"


# ---- loops ------------------------------------------------------------------------------------


def test_a_listener_added_before_any_loop_runs_receives_events_on_each_loop_that_writes():
    # As a step module does at import time: the manager and its trigger exist before the loop.
    state = StateManager()
    events = []
    state.on_change(events.append, group="g")

    async def first():
        await state.set("g", "k", 1)
        await wait_for(lambda: len(events) == 1, what="the event on the first loop")

    async def second():
        await state.update("g", "k", [{"type": "set", "path": "", "value": 2}])
        await wait_for(lambda: len(events) == 2, what="the event on a second loop")
        await state.close()

    asyncio.run(first())
    asyncio.run(second())
    assert events == [created("g", "k", 1), updated("g", "k", 1, 2)]
