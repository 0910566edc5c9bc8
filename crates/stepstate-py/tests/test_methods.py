"""Every method of ``StateManager`` and what it returns: shapes, insertion order, unknown groups,
sorted groups, fresh copies, how values travel (falsy values, floats, big ints, unicode), and
closing. The ``state`` fixture is a memory store, or a file store with
``STEPSTATE_TEST_ADAPTER=file``, so every test here runs on both."""

from __future__ import annotations

import math
import os

import pytest

from stepstate import MAX_SAFE_INTEGER, SetResult, StateError, StateManager, StateTypeError
from helpers import snapshot

ADAPTER = os.environ.get("STEPSTATE_TEST_ADAPTER", "memory")


# ---- set --------------------------------------------------------------------------------------


async def test_set_returns_the_value_it_was_given(state):
    value = {"status": "pending", "total": 12}
    assert await state.set("orders", "o1", value) is value
    assert await state.get("orders", "o1") == {"status": "pending", "total": 12}


async def test_set_with_old_returns_a_set_result_with_none_for_an_absent_key(state):
    result = await state.set("orders", "o1", {"status": "pending"}, with_old=True)
    assert isinstance(result, SetResult)
    assert isinstance(result, tuple)
    assert result == SetResult(new_value={"status": "pending"}, old_value=None)
    assert result.new_value == {"status": "pending"}
    assert result.old_value is None
    assert result._fields == ("new_value", "old_value")


async def test_set_with_old_returns_the_replaced_value(state):
    await state.set("orders", "o1", {"status": "pending"})
    new, old = await state.set("orders", "o1", {"status": "paid"}, with_old=True)
    assert new == {"status": "paid"}
    assert old == {"status": "pending"}


async def test_set_with_old_reports_a_falsy_previous_value_as_it_was(state):
    for key, first, second in [("zero", 0, 1), ("no", False, True), ("empty", "", "x"), ("list", [], [1]), ("obj", {}, {"a": 1})]:
        await state.set("g", key, first)
        result = await state.set("g", key, second, with_old=True)
        assert result == (second, first)
        assert type(result.old_value) is type(first)


async def test_set_copies_the_value_so_later_mutation_of_the_argument_changes_nothing(state):
    value = {"list": [1], "inner": {"a": 1}}
    await state.set("g", "k", value)
    value["list"].append(2)
    value["inner"]["a"] = 2
    value["extra"] = True
    assert await state.get("g", "k") == {"list": [1], "inner": {"a": 1}}


# ---- get --------------------------------------------------------------------------------------


async def test_get_returns_none_for_a_key_never_set_in_a_known_or_unknown_group(state):
    await state.set("known", "a", 1)
    assert await state.get("known", "b") is None
    assert await state.get("unknown", "a") is None


async def test_get_returns_none_after_delete(state):
    await state.set("g", "k", {"a": 1})
    await state.delete("g", "k")
    assert await state.get("g", "k") is None


async def test_get_returns_a_fresh_copy_each_time(state):
    await state.set("g", "k", {"list": [1, 2], "inner": {"a": 1}})
    first = await state.get("g", "k")
    first["list"].append(3)
    first["inner"]["a"] = 99
    first["extra"] = True
    second = await state.get("g", "k")
    assert second == {"list": [1, 2], "inner": {"a": 1}}
    assert second is not first


# ---- list / get_group -------------------------------------------------------------------------


async def test_list_and_get_group_return_values_in_insertion_order(state):
    for key in ["c", "a", "b"]:
        await state.set("g", key, {"key": key})
    assert await state.list("g") == [{"key": "c"}, {"key": "a"}, {"key": "b"}]
    assert await state.get_group("g") == [{"key": "c"}, {"key": "a"}, {"key": "b"}]


async def test_overwriting_a_key_by_set_or_update_keeps_its_place(state):
    await state.set("g", "first", 1)
    await state.set("g", "second", 2)
    await state.set("g", "third", 3)
    await state.set("g", "first", 10)
    await state.update("g", "second", [{"type": "set", "path": "", "value": 20}])
    assert await state.list("g") == [10, 20, 3]
    assert await state.keys("g") == ["first", "second", "third"]


async def test_a_key_deleted_and_set_again_moves_to_the_end(state):
    await state.set("g", "first", 1)
    await state.set("g", "second", 2)
    await state.set("g", "third", 3)
    await state.delete("g", "first")
    await state.set("g", "first", 1)
    assert await state.list("g") == [2, 3, 1]
    assert await state.get_group("g") == [2, 3, 1]
    assert await state.keys("g") == ["second", "third", "first"]


async def test_list_returns_an_empty_list_for_an_unknown_group(state):
    await state.set("other", "k", 1)
    assert await state.list("missing") == []
    assert await state.get_group("missing") == []


async def test_list_includes_none_and_other_falsy_items(state):
    values = [0, False, "", None, [], {}, 0.0]
    for index, value in enumerate(values):
        await state.set("g", f"k{index}", value)
    listed = await state.list("g")
    assert listed == values
    assert [type(v) for v in listed] == [type(v) for v in values]
    assert await state.keys("g") == [f"k{i}" for i in range(len(values))]


async def test_list_returns_fresh_copies(state):
    await state.set("g", "k", {"n": [1]})
    listed = await state.list("g")
    listed[0]["n"].append(2)
    listed.append("junk")
    assert await state.list("g") == [{"n": [1]}]


# ---- entries ----------------------------------------------------------------------------------


async def test_entries_returns_key_value_dicts_in_insertion_order(state):
    await state.set("g", "b", {"n": 1})
    await state.set("g", "a", "two")
    await state.set("g", "b", {"n": 3})
    entries = await state.entries("g")
    assert entries == [{"key": "b", "value": {"n": 3}}, {"key": "a", "value": "two"}]
    assert all(isinstance(entry, dict) and sorted(entry) == ["key", "value"] for entry in entries)


async def test_entries_returns_an_empty_list_for_an_unknown_group(state):
    assert await state.entries("missing") == []


async def test_entries_returns_fresh_copies(state):
    await state.set("g", "k", {"a": 1})
    entries = await state.entries("g")
    entries[0]["value"]["a"] = 2
    entries[0]["key"] = "renamed"
    assert await state.entries("g") == [{"key": "k", "value": {"a": 1}}]


# ---- keys -------------------------------------------------------------------------------------


async def test_keys_returns_the_keys_in_insertion_order(state):
    for key in ["zeta", "alpha", "mid"]:
        await state.set("g", key, key)
    await state.set("g", "zeta", "again")
    assert await state.keys("g") == ["zeta", "alpha", "mid"]


async def test_keys_returns_an_empty_list_for_an_unknown_group(state):
    assert await state.keys("missing") == []


# ---- list_groups ------------------------------------------------------------------------------


async def test_list_groups_is_empty_for_a_new_store(state):
    assert await state.list_groups() == []


async def test_list_groups_returns_the_sorted_names_of_the_groups(state):
    for group in ["zeta", "alpha", "Beta", "mid:dle", "alpha/2", "émile", "漢字"]:
        await state.set(group, "k", 1)
    await state.set("alpha", "k2", 2)
    groups = await state.list_groups()
    assert groups == ["Beta", "alpha", "alpha/2", "mid:dle", "zeta", "émile", "漢字"]
    assert groups == sorted(groups)


async def test_list_groups_drops_a_group_once_its_last_key_is_deleted(state):
    await state.set("a", "k1", 1)
    await state.set("a", "k2", 2)
    await state.set("b", "k", 1)
    await state.delete("a", "k1")
    assert await state.list_groups() == ["a", "b"]
    await state.delete("a", "k2")
    assert await state.list_groups() == ["b"]


async def test_list_groups_drops_a_cleared_group(state):
    await state.set("a", "k", 1)
    await state.set("b", "k", 1)
    await state.clear("a")
    assert await state.list_groups() == ["b"]


# ---- delete -----------------------------------------------------------------------------------


async def test_delete_returns_the_removed_value_and_removes_only_that_key(state):
    await state.set("g", "a", {"a": 1})
    await state.set("g", "b", {"b": 2})
    assert await state.delete("g", "a") == {"a": 1}
    assert await state.get("g", "a") is None
    assert await state.entries("g") == [{"key": "b", "value": {"b": 2}}]


async def test_delete_returns_none_for_an_absent_key(state):
    await state.set("g", "a", 1)
    assert await state.delete("g", "missing") is None
    assert await state.delete("missing", "a") is None
    assert await state.list("g") == [1]


async def test_delete_returns_a_falsy_removed_value_as_it_was(state):
    await state.set("g", "zero", 0)
    await state.set("g", "no", False)
    await state.set("g", "empty", "")
    zero = await state.delete("g", "zero")
    assert zero == 0 and type(zero) is int
    assert await state.delete("g", "no") is False
    assert await state.delete("g", "empty") == ""
    assert await state.list_groups() == []


# ---- clear ------------------------------------------------------------------------------------


async def test_clear_removes_every_item_whatever_it_looks_like(state):
    values = [None, 0, False, "", [], {}, "plain", {"nested": {"deep": [1, {"x": None}]}}, '{"key":"json-looking"}']
    for index, value in enumerate(values):
        await state.set("g", f"item:{index}", value)
    await state.set("g", "g", "a key named like its group")
    assert await state.clear("g") is None
    assert await state.list("g") == []
    assert await state.entries("g") == []
    assert await state.keys("g") == []
    for index in range(len(values)):
        assert await state.get("g", f"item:{index}") is None
    assert await state.list_groups() == []


async def test_clear_leaves_other_groups_alone_even_with_the_same_prefix(state):
    await state.set("a", "k", 1)
    await state.set("a:b", "k", 2)
    await state.set("ab", "k", 3)
    await state.set("a/b", "k", 4)
    await state.clear("a")
    assert await state.list_groups() == ["a/b", "a:b", "ab"]
    assert await state.get("a:b", "k") == 2
    assert await state.get("ab", "k") == 3
    assert await state.get("a/b", "k") == 4


async def test_clear_of_an_unknown_group_succeeds_and_changes_nothing(state):
    await state.set("other", "k", 1)
    assert await state.clear("missing") is None
    assert await snapshot(state) == {"other": [{"key": "k", "value": 1}]}


async def test_a_cleared_group_can_be_filled_again(state):
    await state.set("g", "a", 1)
    await state.clear("g")
    assert await state.set("g", "a", 2, with_old=True) == (2, None)
    assert await state.entries("g") == [{"key": "a", "value": 2}]


# ---- update -----------------------------------------------------------------------------------


async def test_update_returns_the_new_value_and_stores_it(state):
    result = await state.update("g", "k", [{"type": "set", "path": "a", "value": 1}])
    assert result == {"a": 1}
    assert await state.get("g", "k") == {"a": 1}


async def test_update_with_old_returns_new_and_old_values(state):
    assert await state.update("g", "k", [{"type": "set", "path": "a", "value": 1}], with_old=True) == SetResult({"a": 1}, None)
    await state.set("g", "k", {"a": 1, "b": "x"})
    result = await state.update("g", "k", [{"type": "increment", "path": "a", "by": 2}], with_old=True)
    assert isinstance(result, SetResult)
    assert result.new_value == {"a": 3, "b": "x"}
    assert result.old_value == {"a": 1, "b": "x"}


async def test_the_value_update_returns_is_a_copy(state):
    await state.set("g", "k", {"items": [1]})
    result = await state.update("g", "k", [{"type": "append", "path": "items", "value": 2}])
    result["items"].append("junk")
    assert await state.get("g", "k") == {"items": [1, 2]}


# ---- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, False, "", None, [], {}, 0.0], ids=repr)
async def test_falsy_values_round_trip_exactly(state, value):
    assert await state.set("g", "k", value, with_old=True) == (value, None)
    got = await state.get("g", "k")
    assert got == value and type(got) is type(value)
    assert await state.list("g") == [value]
    assert await state.entries("g") == [{"key": "k", "value": value}]
    assert await state.keys("g") == ["k"]
    assert await state.list_groups() == ["g"]


async def test_set_of_none_stores_a_null_item(state):
    assert await state.set("g", "nothing", None) is None
    # get cannot tell null from absent, but the item exists: it is listed and can be deleted.
    assert await state.get("g", "nothing") is None
    assert await state.keys("g") == ["nothing"]
    assert await state.entries("g") == [{"key": "nothing", "value": None}]
    assert await state.set("g", "nothing", 1, with_old=True) == (1, None)
    await state.set("g", "nothing", None)
    assert await state.delete("g", "nothing") is None
    assert await state.list_groups() == []


async def test_bools_stay_bools_and_ints_stay_ints(state):
    await state.set("g", "k", {"t": True, "f": False, "one": 1, "zero": 0})
    got = await state.get("g", "k")
    assert got == {"t": True, "f": False, "one": 1, "zero": 0}
    assert type(got["t"]) is bool and type(got["f"]) is bool
    assert type(got["one"]) is int and type(got["zero"]) is int


async def test_floats_stay_floats(state):
    value = {"one": 1.0, "two": [2.0], "neg": -3.0, "big": 1e20, "tiny": 5e-324, "max": 1.7976931348623157e308, "sum": 0.1 + 0.2, "small": -2.5e-7}
    await state.set("g", "k", value)
    got = await state.get("g", "k")
    assert got == value
    assert type(got["one"]) is float and type(got["two"][0]) is float and type(got["neg"]) is float
    assert type(got["big"]) is float
    assert got["sum"] == 0.30000000000000004
    top = await state.set("g", "top", 1.0)
    assert type(await state.get("g", "top")) is float and top == 1.0


async def test_negative_zero_keeps_its_sign(state):
    await state.set("g", "k", -0.0)
    got = await state.get("g", "k")
    assert type(got) is float and got == 0.0 and math.copysign(1.0, got) == -1.0


async def test_floats_survive_an_update_of_another_field(state):
    await state.set("g", "k", {"price": 2.0, "n": 0})
    await state.update("g", "k", [{"type": "increment", "path": "n", "by": 1}])
    got = await state.get("g", "k")
    assert got == {"price": 2.0, "n": 1}
    assert type(got["price"]) is float and type(got["n"]) is int


async def test_ints_are_exact_up_to_the_safe_limit(state):
    assert MAX_SAFE_INTEGER == 2**53 - 1
    value = [2**53 - 1, -(2**53 - 1), 2**53 - 2, 9007199254740000, -1, 0, 2**31, 2**32 + 1]
    await state.set("g", "k", value)
    got = await state.get("g", "k")
    assert got == value
    assert all(type(n) is int for n in got)


async def test_strings_round_trip_exactly(state):
    text = 'quotes " and \\ backslash, newline\n, tab\t, NUL \x00, \x1f, emoji 😀, accents é, CJK 漢字, \u2028'
    await state.set("g", "k", {"text": text, text: "as a key"})
    assert await state.get("g", "k") == {"text": text, text: "as a key"}


async def test_nesting_of_100_levels_round_trips(state):
    value: dict = {}
    for _ in range(99):
        value = {"a": value}
    await state.set("g", "deep", value)
    assert await state.get("g", "deep") == value
    assert await state.list("g") == [value]


async def test_dict_key_order_is_kept(state):
    value = {"z": 1, "a": 2, "m": {"y": 1, "b": 2}}
    await state.set("g", "k", value)
    got = await state.get("g", "k")
    assert list(got) == ["z", "a", "m"]
    assert list(got["m"]) == ["y", "b"]


async def test_a_large_value_round_trips(state):
    big = "b" * 1_000_000
    await state.set("g", "big", {"s": big, "list": list(range(10_000))})
    assert await state.get("g", "big") == {"s": big, "list": list(range(10_000))}


# ---- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "group, key",
    [
        ("a:b", "c/d"),
        ("users/2024", "user:1"),
        ("émile", "漢字"),
        ("😀", "😀😀"),
        (" spaced ", "\t"),
        ("a.b", "/a/b"),
        ("__proto__", "constructor"),
        ("g\x00", "k\x00"),
    ],
)
async def test_any_characters_are_allowed_in_names(state, group, key):
    await state.set(group, key, {"n": 1})
    await state.update(group, key, [{"type": "increment", "path": "n", "by": 1}])
    assert await state.get(group, key) == {"n": 2}
    assert await state.entries(group) == [{"key": key, "value": {"n": 2}}]
    assert await state.list_groups() == [group]
    assert await state.delete(group, key) == {"n": 2}
    assert await state.list_groups() == []


async def test_names_of_exactly_1024_bytes_are_accepted(state):
    group = "é" * 512
    key = "k" * 1024
    emoji_key = "😀" * 256
    assert len(group.encode()) == 1024 and len(emoji_key.encode()) == 1024
    await state.set(group, key, 1)
    await state.update(group, emoji_key, [{"type": "increment", "path": "n", "by": 1}])
    assert await state.entries(group) == [{"key": key, "value": 1}, {"key": emoji_key, "value": {"n": 1}}]
    assert await state.list_groups() == [group]
    await state.clear(group)
    assert await state.list_groups() == []


async def test_groups_are_separate_namespaces(state):
    await state.set("orders", "id-1", {"kind": "order"})
    await state.set("users", "id-1", {"kind": "user"})
    await state.update("orders", "id-1", [{"type": "set", "path": "kind", "value": "changed"}])
    assert await state.get("users", "id-1") == {"kind": "user"}
    assert await state.delete("orders", "id-1") == {"kind": "changed"}
    assert await state.get("users", "id-1") == {"kind": "user"}
    assert await state.list_groups() == ["users"]


# ---- opening and closing ----------------------------------------------------------------------


async def test_state_manager_is_a_memory_store_by_default():
    state = StateManager()
    try:
        assert isinstance(state, StateManager)
        assert state.adapter == "memory"
        await state.set("g", "k", 1)
        assert await state.get("g", "k") == 1
    finally:
        await state.close()


async def test_open_resolves_to_a_working_memory_store():
    state = await StateManager.open()
    explicit = await StateManager.open(adapter="memory")
    try:
        assert isinstance(state, StateManager) and isinstance(explicit, StateManager)
        await state.set("g", "k", "first")
        assert await explicit.get("g", "k") is None
        assert await explicit.list_groups() == []
        assert await state.list_groups() == ["g"]
    finally:
        await state.close()
        await explicit.close()


async def test_async_with_open_closes_the_store_at_the_end_of_the_block():
    async with StateManager.open() as state:
        await state.set("g", "k", {"a": 1})
        assert await state.get("g", "k") == {"a": 1}
    with pytest.raises(StateError) as caught:
        await state.get("g", "k")
    assert caught.value.code == "CLOSED"


async def test_async_with_a_manager_closes_it():
    async with StateManager() as state:
        await state.set("g", "k", 1)
    with pytest.raises(StateError) as caught:
        await state.set("g", "k", 2)
    assert caught.value.code == "CLOSED"


async def test_async_with_closes_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"):
        async with StateManager.open() as state:
            await state.set("g", "k", 1)
            raise RuntimeError("boom")
    with pytest.raises(StateError) as caught:
        await state.list_groups()
    assert caught.value.code == "CLOSED"


async def test_close_twice_is_harmless(state):
    await state.set("g", "k", 1)
    assert await state.close() is None
    assert await state.close() is None


async def test_every_call_after_close_raises_closed(state):
    await state.set("g", "k", {"a": 1})
    await state.close()
    calls = {
        "set": lambda: state.set("g", "k", 2),
        "get": lambda: state.get("g", "k"),
        "get_group": lambda: state.get_group("g"),
        "list": lambda: state.list("g"),
        "entries": lambda: state.entries("g"),
        "keys": lambda: state.keys("g"),
        "list_groups": lambda: state.list_groups(),
        "delete": lambda: state.delete("g", "k"),
        "clear": lambda: state.clear("g"),
        "update": lambda: state.update("g", "k", [{"type": "increment", "path": "a", "by": 1}]),
    }
    for name, call in calls.items():
        with pytest.raises(StateError) as caught:
            await call()
        assert caught.value.code == "CLOSED", name
        assert not isinstance(caught.value, StateTypeError), name
        assert str(caught.value), name
    with pytest.raises(StateError) as caught:
        state.on_change(lambda event: None)
    assert caught.value.code == "CLOSED"


async def test_separate_memory_managers_share_nothing():
    first, second = StateManager(), StateManager()
    try:
        await first.set("g", "k", "first")
        assert await second.get("g", "k") is None
        await second.close()
        assert await first.get("g", "k") == "first"
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    "options",
    [
        {"adapter": "nope"},
        {"adapter": 5},
        {"unknown_option": 1},
        {"path": "/tmp/x"},  # path is a file-store option
        {"max_value_bytes": 0},
        {"max_value_bytes": -1},
        {"max_value_bytes": 1.5},
        {"max_value_bytes": "100"},
        {"max_value_bytes": True},
        {"ttl": 0},
        {"ttl": "5"},
    ],
    ids=repr,
)
async def test_bad_options_raise_invalid_argument_from_the_constructor_and_from_open(options):
    with pytest.raises(StateTypeError) as caught:
        StateManager(**options)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert isinstance(caught.value, TypeError)
    with pytest.raises(StateTypeError) as caught:
        await StateManager.open(**options)
    assert caught.value.code == "INVALID_ARGUMENT"


async def test_the_constructor_refuses_redis_and_points_to_open():
    with pytest.raises(StateTypeError) as caught:
        StateManager(adapter="redis", url="redis://127.0.0.1:1")
    assert caught.value.code == "INVALID_ARGUMENT"
    assert "StateManager.open" in str(caught.value)


async def test_repr_and_adapter_name_the_store(state):
    assert state.adapter == ADAPTER
    assert ADAPTER in repr(state)
    await state.close()
    assert "closed" in repr(state)
