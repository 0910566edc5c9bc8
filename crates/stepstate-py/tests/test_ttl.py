"""TTL: ``set(..., ttl=seconds)``, the store-wide default ``ttl``, expired items vanishing from
every read at once, the expiry event that fires whether or not anyone reads the key,
``update`` keeping an item's expiry, and the rejection of invalid TTLs. Expiry is observed by
polling with a deadline, never by sleeping a fixed time and hoping."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from stepstate import StateManager, StateTypeError
from helpers import wait_for as wait_for_condition


#: Generous bound for "gone after its TTL": the TTL plus about a second of sweep and load.
EXPIRY_DEADLINE = 3.0


def wait_for(predicate, timeout=EXPIRY_DEADLINE, what="the condition"):
    return wait_for_condition(predicate, timeout, what, interval=0.005)


async def wait_until_gone(state, group, key):
    async def gone():
        return await state.get(group, key) is None

    await wait_for(gone, what=f"{group}/{key} to expire")


# ---- set with ttl -----------------------------------------------------------------------------


async def test_an_item_is_readable_at_first_and_gone_once_its_ttl_in_seconds_has_passed(state):
    started = time.monotonic()
    await state.set("sessions", "s1", {"user": "u1"}, ttl=0.15)
    assert await state.get("sessions", "s1") == {"user": "u1"}
    await wait_until_gone(state, "sessions", "s1")
    # Seconds, not milliseconds, and never early.
    assert time.monotonic() - started >= 0.149


async def test_expired_items_are_invisible_to_every_read_at_once(state):
    await state.set("g", "short", "a", ttl=0.15)
    await state.set("g", "long", "b")
    await state.set("g", "short2", "c", ttl=0.15)
    await state.set("h", "only", "d", ttl=0.15)
    assert await state.list_groups() == ["g", "h"]
    assert await state.keys("g") == ["short", "long", "short2"]
    # Past the expiry time, without waiting for any sweep, nothing shows the items any more.
    await asyncio.sleep(0.2)
    assert await state.get("g", "short") is None
    assert await state.get("g", "short2") is None
    assert await state.list("g") == ["b"]
    assert await state.get_group("g") == ["b"]
    assert await state.entries("g") == [{"key": "long", "value": "b"}]
    assert await state.keys("g") == ["long"]
    assert await state.list("h") == []
    assert await state.entries("h") == []
    assert await state.keys("h") == []
    assert await state.list_groups() == ["g"]
    assert await state.get("g", "long") == "b"


async def test_an_expired_key_is_absent_for_the_next_set_update_and_delete(state):
    await state.set("g", "k", "old", ttl=0.1)
    await state.set("g", "other", "old", ttl=0.1)
    await state.set("g", "counter", {"n": 41, "extra": True}, ttl=0.1)
    await asyncio.sleep(0.15)
    assert await state.set("g", "k", "new", with_old=True) == ("new", None)
    assert await state.delete("g", "other") is None
    assert await state.update("g", "counter", [{"type": "increment", "path": "n", "by": 1}], with_old=True) == ({"n": 1}, None)
    assert await state.get("g", "k") == "new"


async def test_a_later_set_without_ttl_makes_the_item_permanent(state):
    await state.set("g", "k", 1, ttl=0.1)
    await state.set("g", "k", 2)
    await state.set("g", "marker", 0, ttl=0.2)
    await wait_until_gone(state, "g", "marker")
    assert await state.get("g", "k") == 2


async def test_a_later_set_with_a_longer_ttl_keeps_the_item(state):
    await state.set("g", "k", 1, ttl=0.1)
    await state.set("g", "k", 2, ttl=60)
    await state.set("g", "marker", 0, ttl=0.3)
    await wait_until_gone(state, "g", "marker")
    assert await state.get("g", "k") == 2


async def test_a_fractional_or_tiny_ttl_still_expires(state):
    await state.set("g", "tiny", 1, ttl=0.0001)
    await state.set("g", "int", 2, ttl=1)
    await wait_until_gone(state, "g", "tiny")
    assert await state.get("g", "int") == 2


# ---- the expiry event -------------------------------------------------------------------------


async def test_expiry_fires_state_deleted_with_reason_expired_within_about_a_second_without_reads(state):
    events = []
    state.on_change(events.append, group="sessions")
    started = time.monotonic()
    await state.set("sessions", "s1", {"user": "u1"}, ttl=0.2)
    # No reads: only the store's own sweep can notice the expiry.
    await wait_for(lambda: len(events) == 2, 0.2 + 1.5, "the expiry event")
    elapsed = time.monotonic() - started
    assert events[1] == {
        "type": "state",
        "event_type": "state:deleted",
        "group_id": "sessions",
        "item_id": "s1",
        "old_value": {"user": "u1"},
        "new_value": None,
        "reason": "expired",
    }
    assert elapsed >= 0.199


async def test_expiry_fires_once_per_expired_item_and_not_for_items_deleted_or_made_permanent(state):
    expired = []
    state.on_change(lambda e: expired.append(e) if e.get("reason") == "expired" else None)
    await state.set("g", "expires", 1, ttl=0.1)
    await state.set("g", "deleted", 2, ttl=0.1)
    await state.set("g", "kept", 3, ttl=0.1)
    await state.delete("g", "deleted")
    await state.set("g", "kept", 4)
    await state.set("g", "last", 5, ttl=0.3)
    await wait_for(lambda: any(e["item_id"] == "last" for e in expired), what="the last expiry event")
    assert [(e["item_id"], e["old_value"]) for e in expired] == [("expires", 1), ("last", 5)]
    assert await state.get("g", "kept") == 4


async def test_the_expiry_event_of_an_item_read_after_expiry_fires_exactly_once(state):
    events = []
    state.on_change(events.append, group="g")
    await state.set("g", "k", "v", ttl=0.1)
    await asyncio.sleep(0.15)
    assert await state.get("g", "k") is None
    await wait_for(lambda: len(events) == 2, what="the expiry event")
    await state.set("g", "marker", 1)
    await wait_for(lambda: len(events) == 3, what="the marker event")
    assert [(e["item_id"], e["event_type"], e.get("reason")) for e in events] == [
        ("k", "state:created", None),
        ("k", "state:deleted", "expired"),
        ("marker", "state:created", None),
    ]


# ---- update and expiry ------------------------------------------------------------------------


async def test_update_keeps_the_expiry_of_the_item(state):
    expired = []
    state.on_change(lambda e: expired.append(e) if e.get("reason") == "expired" else None)
    started = time.monotonic()
    await state.set("counters", "c", {"n": 0}, ttl=0.3)
    assert await state.update("counters", "c", [{"type": "increment", "path": "n", "by": 1}], with_old=True) == ({"n": 1}, {"n": 0})
    assert await state.get("counters", "c") == {"n": 1}
    await wait_until_gone(state, "counters", "c")
    assert time.monotonic() - started >= 0.299
    await wait_for(lambda: len(expired) == 1, what="the expiry event")
    assert expired[0]["old_value"] == {"n": 1}


async def test_update_of_a_permanent_item_does_not_give_it_a_default_ttl(make_state):
    state = await make_state(ttl=0.15)
    await state.set("g", "forever", {"n": 0}, ttl=3600)
    await state.update("g", "forever", [{"type": "increment", "path": "n", "by": 1}])
    await state.set("g", "marker", 0)
    await wait_until_gone(state, "g", "marker")
    assert await state.get("g", "forever") == {"n": 1}


# ---- the default ttl option -------------------------------------------------------------------


async def test_the_default_ttl_applies_to_set_without_ttl_and_an_explicit_ttl_overrides_it(make_state):
    state = await make_state(ttl=0.15)
    await state.set("g", "default", 1)
    await state.set("g", "explicit", 2, ttl=60)
    await state.set("g", "shorter", 3, ttl=0.05)
    assert await state.keys("g") == ["default", "explicit", "shorter"]
    await wait_until_gone(state, "g", "default")
    assert await state.get("g", "shorter") is None
    assert await state.get("g", "explicit") == 2
    assert await state.keys("g") == ["explicit"]


async def test_the_default_ttl_applies_to_a_key_created_by_update(make_state):
    state = await make_state(ttl=0.15)
    await state.update("g", "k", [{"type": "increment", "path": "n", "by": 1}])
    assert await state.get("g", "k") == {"n": 1}
    await wait_until_gone(state, "g", "k")


async def test_the_default_ttl_works_through_the_constructor_too():
    state = StateManager(ttl=0.1)
    try:
        await state.set("g", "k", "v")
        assert await state.get("g", "k") == "v"
        await wait_until_gone(state, "g", "k")
    finally:
        await state.close()


async def test_there_is_no_default_ttl_unless_given(state):
    await state.set("g", "forever", 1)
    await state.set("g", "brief", 2, ttl=0.1)
    await wait_until_gone(state, "g", "brief")
    assert await state.get("g", "forever") == 1


# ---- invalid ttl values -----------------------------------------------------------------------

INVALID = [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, "5", True, False, {}, [1], b"1"]


@pytest.mark.parametrize("ttl", INVALID, ids=repr)
async def test_set_with_an_invalid_ttl_raises_invalid_argument_and_changes_nothing(state, ttl):
    await state.set("g", "existing", {"keep": True})
    events = []
    state.on_change(events.append)
    for key, value in (("existing", {"keep": False}), ("new", 1)):
        with pytest.raises(StateTypeError) as caught:
            await state.set("g", key, value, ttl=ttl)
        assert caught.value.code == "INVALID_ARGUMENT"
        assert isinstance(caught.value, TypeError)
        assert "ttl" in str(caught.value)
    assert await state.entries("g") == [{"key": "existing", "value": {"keep": True}}]
    await state.set("g", "marker", 0)
    await wait_for(lambda: len(events) > 0, 5, "the marker event")
    assert [e["item_id"] for e in events] == ["marker"]


@pytest.mark.parametrize("ttl", INVALID, ids=repr)
async def test_an_invalid_store_ttl_raises_invalid_argument(ttl, tmp_path):
    with pytest.raises(StateTypeError) as caught:
        await StateManager.open(ttl=ttl)
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(StateTypeError):
        StateManager(ttl=ttl)
    with pytest.raises(StateTypeError):
        await StateManager.open(adapter="file", path=str(tmp_path / "store"), ttl=ttl)
    assert not (tmp_path / "store").exists()
