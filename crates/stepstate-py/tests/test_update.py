"""``update(group, key, ops)``: every op and JSON-Patch form, every path form, the arithmetic
guarantees, all-or-nothing application (no change, no key, no event), ``with_old``, the op
error codes with their ``op_index``, and atomicity under concurrency (tasks and threads)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from stepstate import SetResult, StateError, StateTypeError, StateValueError
from helpers import run_in_threads, snapshot, wait_for

ABSENT = object()
_keys = itertools.count()


async def value_after(state, start, ops):
    """Sets a fresh key to ``start`` (left absent for ABSENT), applies ``ops`` and checks that the
    stored value is the one returned. Returns that value."""
    key = f"k{next(_keys)}"
    if start is not ABSENT:
        await state.set("g", key, start)
    result = await state.update("g", key, ops)
    assert await state.get("g", key) == result
    return result


async def op_failure(state, start, ops, code, op_index):
    """Expects ``ops`` on a fresh key holding ``start`` (absent for ABSENT) to raise ``code`` at
    ``op_index``, with the store unchanged and no key created. Returns the error."""
    key = f"k{next(_keys)}"
    await state.set("other", "k", {"untouched": True})
    if start is not ABSENT:
        await state.set("g", key, start)
    before = await snapshot(state)
    with pytest.raises(StateError) as caught:
        await state.update("g", key, ops)
    err = caught.value
    assert err.code == code, str(err)
    assert err.op_index == op_index, str(err)
    assert await snapshot(state) == before
    if start is ABSENT:
        assert await state.get("g", key) is None
        assert key not in await state.keys("g")
    return err


OK_OP = {"type": "set", "path": "touched", "value": True}


# ---- set --------------------------------------------------------------------------------------


async def test_set_op_sets_a_field_and_keeps_the_others(state):
    assert await value_after(state, {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}, [{"type": "set", "path": "b.c", "value": 5}]) == {
        "a": 1,
        "b": {"c": 5, "d": 3},
        "e": [1],
    }


async def test_set_op_creates_missing_intermediate_objects(state):
    assert await value_after(state, {"a": 1}, [{"type": "set", "path": "x.y.z", "value": "deep"}]) == {"a": 1, "x": {"y": {"z": "deep"}}}


async def test_set_op_replaces_the_whole_value_at_the_root_path(state):
    assert await value_after(state, {"a": 1}, [{"type": "set", "path": "", "value": [1, 2]}]) == [1, 2]


async def test_set_op_stores_falsy_and_structured_values_as_given(state):
    result = await value_after(
        state,
        {},
        [
            {"type": "set", "path": "zero", "value": 0},
            {"type": "set", "path": "no", "value": False},
            {"type": "set", "path": "empty", "value": ""},
            {"type": "set", "path": "nothing", "value": None},
            {"type": "set", "path": "list", "value": [{"a": []}]},
            {"type": "set", "path": "float", "value": 2.0},
        ],
    )
    assert result == {"zero": 0, "no": False, "empty": "", "nothing": None, "list": [{"a": []}], "float": 2.0}
    assert result["no"] is False and type(result["float"]) is float


# ---- merge ------------------------------------------------------------------------------------


async def test_merge_is_shallow_into_the_root_when_the_path_is_omitted(state):
    assert await value_after(state, {"a": 1, "b": {"x": 1}}, [{"type": "merge", "value": {"b": {"y": 2}, "c": 3}}]) == {
        "a": 1,
        "b": {"y": 2},
        "c": 3,
    }


async def test_merge_into_the_root_with_an_empty_path(state):
    assert await value_after(state, {"a": 1}, [{"type": "merge", "path": "", "value": {"b": 2}}]) == {"a": 1, "b": 2}


async def test_merge_into_a_nested_object_keeps_its_other_fields(state):
    assert await value_after(
        state, {"profile": {"name": "Ada", "age": 36}, "id": 1}, [{"type": "merge", "path": "profile", "value": {"age": 37, "city": "London"}}]
    ) == {"profile": {"name": "Ada", "age": 37, "city": "London"}, "id": 1}


async def test_merge_creates_a_missing_target_object(state):
    assert await value_after(state, {"id": 1}, [{"type": "merge", "path": "a.b", "value": {"c": 1}}]) == {"id": 1, "a": {"b": {"c": 1}}}


# ---- increment / decrement --------------------------------------------------------------------


async def test_increment_and_decrement_an_existing_number(state):
    assert await value_after(
        state, {"n": 5, "m": 10}, [{"type": "increment", "path": "n", "by": 2}, {"type": "decrement", "path": "m", "by": 3}]
    ) == {"n": 7, "m": 7}


async def test_increment_and_decrement_accept_negative_amounts(state):
    assert await value_after(
        state, {"n": 5, "m": 5}, [{"type": "increment", "path": "n", "by": -7}, {"type": "decrement", "path": "m", "by": -1}]
    ) == {"n": -2, "m": 6}


async def test_increment_starts_from_zero_and_creates_intermediates(state):
    assert await value_after(
        state, {}, [{"type": "increment", "path": "stats.views", "by": 3}, {"type": "decrement", "path": "stats.stock", "by": 2}]
    ) == {"stats": {"views": 3, "stock": -2}}


async def test_integers_are_exact_up_to_the_edge_of_the_safe_range(state):
    result = await value_after(
        state,
        {"up": 2**53 - 2, "down": -(2**53 - 2), "big": 9007199254740000},
        [
            {"type": "increment", "path": "up", "by": 1},
            {"type": "decrement", "path": "down", "by": 1},
            {"type": "increment", "path": "big", "by": 991},
        ],
    )
    assert result == {"up": 2**53 - 1, "down": -(2**53 - 1), "big": 9007199254740991}
    assert all(type(n) is int for n in result.values())


async def test_leaving_the_safe_range_gives_the_javascript_double_never_a_wrong_int(state):
    result = await value_after(state, {"n": 2**53 - 1}, [{"type": "increment", "path": "n", "by": 1}])
    assert result == {"n": 2.0**53}
    assert type(result["n"]) is float


async def test_float_arithmetic_gives_the_ieee_result(state):
    result = await value_after(
        state,
        {"x": 0.1, "y": 0.3, "z": 1},
        [
            {"type": "increment", "path": "x", "by": 0.2},
            {"type": "decrement", "path": "y", "by": 0.1},
            {"type": "increment", "path": "z", "by": 0.5},
        ],
    )
    assert result == {"x": 0.1 + 0.2, "y": 0.3 - 0.1, "z": 1.5}
    assert all(type(n) is float for n in result.values())


async def test_several_ops_on_one_field_apply_in_order(state):
    assert await value_after(
        state,
        {"n": 1},
        [{"type": "increment", "path": "n", "by": 10}, {"type": "decrement", "path": "n", "by": 4}, {"type": "increment", "path": "n", "by": 0.5}],
    ) == {"n": 7.5}


async def test_increment_overflowing_to_infinity_fails(state):
    err = await op_failure(state, {"n": 1.7976931348623157e308}, [{"type": "increment", "path": "n", "by": 1.7976931348623157e308}], "increment.overflow", 0)
    assert "increment" in str(err)


# ---- append -----------------------------------------------------------------------------------


async def test_append_pushes_onto_an_array(state):
    assert await value_after(
        state, {"items": [1]}, [{"type": "append", "path": "items", "value": 2}, {"type": "append", "path": "items", "value": {"id": 3}}]
    ) == {"items": [1, 2, {"id": 3}]}


async def test_append_concatenates_strings(state):
    assert await value_after(state, {"log": "ab"}, [{"type": "append", "path": "log", "value": "cd"}]) == {"log": "abcd"}


async def test_append_to_the_root_when_the_path_is_omitted(state):
    assert await value_after(state, [1, 2], [{"type": "append", "value": 3}]) == [1, 2, 3]
    assert await value_after(state, "start", [{"type": "append", "value": "-end"}]) == "start-end"


# ---- remove -----------------------------------------------------------------------------------


async def test_remove_deletes_a_field_and_keeps_the_others(state):
    assert await value_after(state, {"a": 1, "b": {"c": 2, "d": 3}}, [{"type": "remove", "path": "b.c"}]) == {"a": 1, "b": {"d": 3}}


async def test_remove_of_a_missing_field_or_parent_is_a_no_op(state):
    assert await value_after(state, {"a": 1}, [{"type": "remove", "path": "missing"}, {"type": "remove", "path": "x.y.z"}]) == {"a": 1}


# ---- test -------------------------------------------------------------------------------------


async def test_test_op_lets_the_update_through_when_deep_equal(state):
    assert await value_after(
        state,
        {"status": "pending", "meta": {"tags": ["a", {"b": 1}], "n": None}},
        [
            {"type": "test", "path": "status", "value": "pending"},
            {"type": "test", "path": "meta", "value": {"n": None, "tags": ["a", {"b": 1}]}},
            {"type": "set", "path": "status", "value": "paid"},
        ],
    ) == {"status": "paid", "meta": {"tags": ["a", {"b": 1}], "n": None}}


async def test_test_op_is_compare_and_set(state):
    await state.set("orders", "o1", {"status": "pending", "total": 30})
    pay = [{"type": "test", "path": "status", "value": "pending"}, {"type": "set", "path": "status", "value": "paid"}]
    assert await state.update("orders", "o1", pay, with_old=True) == SetResult(
        {"status": "paid", "total": 30}, {"status": "pending", "total": 30}
    )
    before = await snapshot(state)
    with pytest.raises(StateError) as caught:
        await state.update("orders", "o1", pay)
    assert caught.value.code == "test.failed"
    assert caught.value.op_index == 0
    assert await snapshot(state) == before


async def test_test_op_compares_numbers_by_value(state):
    assert await value_after(
        state,
        {"n": 1.5, "m": 2},
        [
            {"type": "increment", "path": "n", "by": 1.5},
            {"type": "test", "path": "n", "value": 3},
            {"type": "increment", "path": "m", "by": 1},
            {"type": "test", "path": "m", "value": 3.0},
        ],
    ) == {"n": 3, "m": 3}


async def test_test_op_fails_when_the_value_differs(state):
    await op_failure(state, {"status": "paid"}, [OK_OP, {"type": "test", "path": "status", "value": "pending"}], "test.failed", 1)


async def test_test_op_fails_for_a_missing_field_even_against_none(state):
    await op_failure(state, {"a": 1}, [{"type": "test", "path": "missing", "value": None}], "test.failed", 0)


@pytest.mark.parametrize(
    "current, expected",
    [([1, 2], [2, 1]), ({"a": 1, "b": 2}, {"a": 1}), (0, False), (1, True), ("1", 1), (None, False), ([], {})],
    ids=repr,
)
async def test_test_op_fails_for_values_that_are_not_deep_equal(state, current, expected):
    await op_failure(state, {"v": current}, [{"type": "test", "path": "v", "value": expected}], "test.failed", 0)


# ---- JSON-Patch forms -------------------------------------------------------------------------


async def test_json_patch_add_and_replace_set_values_at_a_pointer(state):
    assert await value_after(
        state, {"a": {"keep": 1, "b": "old"}}, [{"op": "add", "path": "/a/c", "value": {"d": True}}, {"op": "replace", "path": "/a/b", "value": "new"}]
    ) == {"a": {"keep": 1, "b": "new", "c": {"d": True}}}


async def test_json_patch_replace_of_a_missing_member_sets_it(state):
    assert await value_after(state, {"name": "Ada"}, [{"op": "replace", "path": "/last_login", "value": "2024-05-01"}]) == {
        "name": "Ada",
        "last_login": "2024-05-01",
    }


async def test_json_patch_remove_deletes_the_field(state):
    assert await value_after(state, {"a": {"b": 1, "c": 2}}, [{"op": "remove", "path": "/a/b"}]) == {"a": {"c": 2}}


async def test_json_patch_increment_adds_its_value_from_zero_when_missing(state):
    assert await value_after(state, {"n": 40}, [{"op": "increment", "path": "/n", "value": 2}, {"op": "increment", "path": "/m", "value": -3}]) == {
        "n": 42,
        "m": -3,
    }


async def test_json_patch_test_guards_the_ops_after_it(state):
    assert await value_after(
        state, {"status": "pending"}, [{"op": "test", "path": "/status", "value": "pending"}, {"op": "replace", "path": "/status", "value": "paid"}]
    ) == {"status": "paid"}
    await op_failure(
        state, {"status": "paid"}, [{"op": "test", "path": "/status", "value": "pending"}, {"op": "replace", "path": "/status", "value": "x"}], "test.failed", 0
    )


async def test_json_patch_and_type_ops_mix_in_one_list(state):
    assert await value_after(
        state,
        {},
        [{"op": "add", "path": "/count", "value": 1}, {"type": "increment", "path": "count", "by": 1}, {"op": "increment", "path": "/count", "value": 1}],
    ) == {"count": 3}


# ---- paths ------------------------------------------------------------------------------------


async def test_dotted_paths_walk_nested_objects(state):
    assert await value_after(state, {}, [{"type": "set", "path": "a.b.c", "value": 1}]) == {"a": {"b": {"c": 1}}}


async def test_a_list_path_gives_literal_segments(state):
    assert await value_after(
        state, {}, [{"type": "set", "path": ["a.b", "c"], "value": 1}, {"type": "increment", "path": ["x.y"], "by": 2}]
    ) == {"a.b": {"c": 1}, "x.y": 2}


async def test_a_path_starting_with_slash_is_a_json_pointer_with_escapes(state):
    assert await value_after(
        state,
        {},
        [{"type": "set", "path": "/a~1b/c~0d", "value": 1}, {"type": "set", "path": "/x.y", "value": 2}, {"type": "set", "path": "/~01", "value": 3}],
    ) == {"a/b": {"c~d": 1}, "x.y": 2, "~1": 3}


async def test_the_pointer_slash_is_the_member_with_the_empty_name(state):
    assert await value_after(state, {"a": 1}, [{"type": "set", "path": "/", "value": "empty name"}]) == {"a": 1, "": "empty name"}


async def test_slashes_and_colons_stay_inside_dotted_segments(state):
    assert await value_after(state, {}, [{"type": "set", "path": "a/b.c:d", "value": 1}]) == {"a/b": {"c:d": 1}}


async def test_the_empty_path_is_the_root_value(state):
    assert await value_after(state, 5, [{"type": "increment", "path": "", "by": 1}]) == 6
    assert await value_after(state, {"a": 1}, [{"type": "test", "path": "", "value": {"a": 1}}, {"type": "set", "path": "", "value": "replaced"}]) == "replaced"


async def test_every_path_form_names_the_same_field(state):
    assert await value_after(
        state,
        {"a": {"b": 1}},
        [
            {"type": "increment", "path": "a.b", "by": 1},
            {"type": "increment", "path": ["a", "b"], "by": 1},
            {"type": "increment", "path": "/a/b", "by": 1},
            {"op": "increment", "path": "/a/b", "value": 1},
            {"type": "test", "path": "a.b", "value": 5},
        ],
    ) == {"a": {"b": 5}}


async def test_array_elements_are_reachable_by_index(state):
    assert await value_after(state, {"list": [1, {"n": 1}]}, [{"type": "increment", "path": "/list/1/n", "by": 1}, {"type": "set", "path": "list.0", "value": "x"}]) == {
        "list": ["x", {"n": 2}]
    }


# ---- a missing key ----------------------------------------------------------------------------


async def test_update_of_a_missing_key_starts_from_an_empty_dict(state):
    assert await state.update("g", "new", [{"type": "merge", "value": {"a": 1}}], with_old=True) == SetResult({"a": 1}, None)
    assert await state.get("g", "new") == {"a": 1}
    assert await state.list_groups() == ["g"]


async def test_a_missing_key_is_an_empty_dict_for_a_test_op(state):
    assert await value_after(state, ABSENT, [{"type": "test", "path": "", "value": {}}, {"type": "set", "path": "created", "value": True}]) == {"created": True}


async def test_with_old_returns_the_exact_value_replaced(state):
    await state.set("g", "k", {"n": 1, "f": 1.5})
    result = await state.update("g", "k", [{"type": "increment", "path": "n", "by": 1}], with_old=True)
    assert result == ({"n": 2, "f": 1.5}, {"n": 1, "f": 1.5})
    new, old = result
    assert new == result.new_value and old == result.old_value


async def test_ops_may_be_a_tuple(state):
    assert await value_after(state, {}, ({"type": "set", "path": "a", "value": 1},)) == {"a": 1}


async def test_an_empty_op_list_stores_the_value_unchanged(state):
    assert await value_after(state, {"a": 1}, []) == {"a": 1}
    assert await value_after(state, ABSENT, []) == {}


# ---- all or nothing ---------------------------------------------------------------------------


async def test_a_failing_op_after_successful_ones_leaves_the_value_unchanged(state):
    await op_failure(
        state,
        {"n": 1, "s": "text"},
        [{"type": "increment", "path": "n", "by": 1}, {"type": "set", "path": "t", "value": "new"}, {"type": "increment", "path": "s", "by": 1}],
        "increment.not_number",
        2,
    )


async def test_a_failing_update_of_a_missing_key_creates_no_key(state):
    await op_failure(state, ABSENT, [OK_OP, {"type": "set", "path": "a", "value": 1}, {"type": "test", "path": "a", "value": 2}], "test.failed", 2)
    assert await state.list_groups() == ["other"]


async def test_a_malformed_op_after_valid_ones_creates_no_key(state):
    await op_failure(state, ABSENT, [OK_OP, {"type": "frobnicate", "path": "a"}], "INVALID_OP", 1)
    assert await state.list_groups() == ["other"]


async def test_a_failed_update_fires_no_event(state):
    events = []
    state.on_change(events.append)
    await state.set("g", "k", {"n": 1, "s": "x"})
    failures = [
        [OK_OP, {"type": "increment", "path": "touched", "by": 1}],
        [{"type": "test", "path": "n", "value": 2}],
        [OK_OP, {"type": "nope"}],
        [OK_OP, {"type": "set", "path": "__proto__.x", "value": 1}],
    ]
    for ops in failures:
        with pytest.raises(StateError):
            await state.update("g", "k", ops)
        with pytest.raises(StateError):
            await state.update("g", "missing", ops)
    await state.set("g", "marker", 1)
    await wait_for(lambda: any(e["item_id"] == "marker" for e in events), what="the marker event")
    assert [(e["item_id"], e["event_type"]) for e in events] == [("k", "state:created"), ("marker", "state:created")]


async def test_a_failed_update_leaves_the_manager_usable(state):
    await state.set("g", "k", {"n": 1})
    with pytest.raises(StateValueError) as caught:
        await state.update("g", "k", [{"type": "increment", "path": "missing.deep", "by": float("nan")}])
    assert caught.value.code == "INVALID_OP"
    assert await state.update("g", "k", [{"type": "increment", "path": "n", "by": 1}], with_old=True) == ({"n": 2}, {"n": 1})


# ---- op failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("current", ["text", {"a": 1}, [1], None, True], ids=repr)
async def test_increment_of_a_non_number_fails_with_increment_not_number(state, current):
    await op_failure(state, {"v": current}, [OK_OP, {"type": "increment", "path": "v", "by": 1}], "increment.not_number", 1)


async def test_json_patch_increment_of_a_string_fails_with_increment_not_number(state):
    await op_failure(state, {"v": "text"}, [{"op": "increment", "path": "/v", "value": 1}], "increment.not_number", 0)


@pytest.mark.parametrize("current", ["text", {"a": 1}, None], ids=repr)
async def test_decrement_of_a_non_number_fails_with_decrement_not_number(state, current):
    await op_failure(state, {"v": current}, [OK_OP, OK_OP, {"type": "decrement", "path": "v", "by": 1}], "decrement.not_number", 2)


@pytest.mark.parametrize("current", ["text", 1, [1], None], ids=repr)
async def test_merge_into_a_non_object_fails_with_merge_target_not_object(state, current):
    await op_failure(state, {"v": current}, [OK_OP, {"type": "merge", "path": "v", "value": {"a": 1}}], "merge.target_not_object", 1)


async def test_merge_into_a_root_that_is_not_an_object_fails(state):
    await op_failure(state, [1, 2], [{"type": "merge", "value": {"a": 1}}], "merge.target_not_object", 0)


@pytest.mark.parametrize("current, value", [(1, "x"), ({"a": 1}, "x"), (True, "x"), ("text", 1), ("text", {"a": 1})], ids=repr)
async def test_append_onto_a_mismatched_type_fails_with_append_type_mismatch(state, current, value):
    await op_failure(state, {"v": current}, [OK_OP, {"type": "append", "path": "v", "value": value}], "append.type_mismatch", 1)


@pytest.mark.parametrize("current", [5, "text", None, False], ids=repr)
async def test_a_write_through_a_scalar_fails_with_path_not_container(state, current):
    await op_failure(state, {"a": current}, [OK_OP, {"type": "set", "path": "a.b", "value": 1}], "path.not_container", 1)
    await op_failure(state, {"a": current}, [{"type": "increment", "path": ["a", "b", "c"], "by": 1}], "path.not_container", 0)


async def test_an_op_error_names_the_group_key_and_op(state):
    await state.set("billing-group", "invoice-42", {"total": "not a number"})
    with pytest.raises(StateError) as caught:
        await state.update("billing-group", "invoice-42", [{"type": "increment", "path": "total", "by": 1}])
    message = str(caught.value)
    assert "billing-group" in message and "invoice-42" in message and "increment" in message


# ---- prototype-polluting paths ----------------------------------------------------------------

FORBIDDEN = ["__proto__", "constructor", "prototype"]


def _path_forms(segment):
    return [
        f"{segment}.x",
        f"a.{segment}",
        f"a.{segment}.b",
        segment,
        ["a", segment],
        f"/{segment}/x",
        f"/a/{segment}",
    ]


@pytest.mark.parametrize("path", [p for s in FORBIDDEN for p in _path_forms(s)], ids=repr)
async def test_prototype_polluting_segments_are_rejected_on_every_type_op(state, path):
    ops = [
        {"type": "set", "path": path, "value": {"polluted": True}},
        {"type": "merge", "path": path, "value": {"polluted": True}},
        {"type": "increment", "path": path, "by": 1},
        {"type": "decrement", "path": path, "by": 1},
        {"type": "append", "path": path, "value": "x"},
        {"type": "remove", "path": path},
        {"type": "test", "path": path, "value": None},
    ]
    for op in ops:
        err = await op_failure(state, {"a": {"b": 1}}, [OK_OP, op], "path.proto_polluted", 1)
        assert isinstance(err, StateError)
        await op_failure(state, ABSENT, [OK_OP, op], "path.proto_polluted", 1)


@pytest.mark.parametrize("segment", FORBIDDEN)
async def test_prototype_polluting_segments_are_rejected_in_json_patch_ops(state, segment):
    ops = [
        {"op": "add", "path": f"/{segment}/polluted", "value": True},
        {"op": "replace", "path": f"/a/{segment}", "value": True},
        {"op": "remove", "path": f"/{segment}"},
        {"op": "increment", "path": f"/a/{segment}/n", "value": 1},
        {"op": "test", "path": f"/{segment}", "value": None},
    ]
    for op in ops:
        await op_failure(state, {"a": {"b": 1}}, [OK_OP, OK_OP, op], "path.proto_polluted", 2)


@pytest.mark.parametrize("segment", FORBIDDEN)
async def test_a_forbidden_word_inside_an_escaped_segment_is_a_plain_key(state, segment):
    assert await value_after(state, {}, [{"type": "set", "path": f"/{segment}~1x", "value": 1}]) == {f"{segment}/x": 1}


# ---- malformed ops ----------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

MALFORMED = [
    ("unknown type", {"type": "frobnicate", "path": "a", "value": 1}),
    ("unknown op", {"op": "frobnicate", "path": "/a", "value": 1}),
    ("neither type nor op", {"path": "a", "value": 1}),
    ("None", None),
    ("a str", "set"),
    ("an int", 7),
    ("a list", [{"type": "set", "path": "a", "value": 1}]),
    ("set without path", {"type": "set", "value": 1}),
    ("increment without path", {"type": "increment", "by": 1}),
    ("decrement without path", {"type": "decrement", "by": 1}),
    ("remove without path", {"type": "remove"}),
    ("test without path", {"type": "test", "value": 1}),
    ("add without path", {"op": "add", "value": 1}),
    ("patch remove without path", {"op": "remove"}),
    ("numeric path", {"type": "set", "path": 5, "value": 1}),
    ("None path", {"type": "set", "path": None, "value": 1}),
    ("dict path", {"type": "remove", "path": {"a": 1}}),
    ("bool path", {"type": "increment", "path": True, "by": 1}),
    ("segment list holding an int", {"type": "set", "path": ["a", 1], "value": 1}),
    ("a tuple path (not JSON)", {"type": "set", "path": ("a", "b"), "value": 1}),
    ("numeric patch path", {"op": "replace", "path": 3, "value": 1}),
    ("increment by nan", {"type": "increment", "path": "n", "by": NAN}),
    ("increment by inf", {"type": "increment", "path": "n", "by": INF}),
    ("increment by -inf", {"type": "increment", "path": "n", "by": -INF}),
    ("increment by a numeric str", {"type": "increment", "path": "n", "by": "5"}),
    ("increment by None", {"type": "increment", "path": "n", "by": None}),
    ("increment by True", {"type": "increment", "path": "n", "by": True}),
    ("increment by a big int", {"type": "increment", "path": "n", "by": 2**53}),
    ("increment without by", {"type": "increment", "path": "n"}),
    ("decrement by nan", {"type": "decrement", "path": "n", "by": NAN}),
    ("decrement by inf", {"type": "decrement", "path": "n", "by": INF}),
    ("decrement by a str", {"type": "decrement", "path": "n", "by": "one"}),
    ("decrement without by", {"type": "decrement", "path": "n"}),
    ("patch increment by a str", {"op": "increment", "path": "/n", "value": "5"}),
    ("patch increment by nan", {"op": "increment", "path": "/n", "value": NAN}),
    ("patch increment without value", {"op": "increment", "path": "/n"}),
    ("merge of an int", {"type": "merge", "value": 5}),
    ("merge of a str", {"type": "merge", "path": "a", "value": "text"}),
    ("merge of a list", {"type": "merge", "value": [1]}),
    ("merge of None", {"type": "merge", "value": None}),
    ("merge without value", {"type": "merge", "path": "a"}),
    ("set without value", {"type": "set", "path": "a"}),
    ("set of a function", {"type": "set", "path": "a", "value": lambda: 1}),
    ("set of nan", {"type": "set", "path": "a", "value": NAN}),
    ("set of inf", {"type": "set", "path": "a", "value": INF}),
    ("set of a big int", {"type": "set", "path": "a", "value": 2**64}),
    ("set of a set", {"type": "set", "path": "a", "value": {1, 2}}),
    ("set of bytes", {"type": "set", "path": "a", "value": b"x"}),
    ("set of a tuple", {"type": "set", "path": "a", "value": (1, 2)}),
    ("set of an object", {"type": "set", "path": "a", "value": object()}),
    ("set of a dict with an int key", {"type": "set", "path": "a", "value": {1: "x"}}),
    ("append without value", {"type": "append", "path": "list"}),
    ("append of a function", {"type": "append", "path": "list", "value": lambda: 1}),
    ("test against nan", {"type": "test", "path": "n", "value": NAN}),
    ("test against a big int", {"type": "test", "path": "n", "value": 2**60}),
    ("add without value", {"op": "add", "path": "/a"}),
    ("replace of a function", {"op": "replace", "path": "/a", "value": lambda: 1}),
    ("patch test against a big int", {"op": "test", "path": "/n", "value": -(2**53)}),
    ("an op dict with an int key", {"type": "set", "path": "a", "value": 1, 5: "x"}),
]


@pytest.mark.parametrize("op", [op for _, op in MALFORMED], ids=[name for name, _ in MALFORMED])
async def test_a_malformed_op_raises_invalid_op_with_its_index(state, op):
    err = await op_failure(state, {"n": 1, "list": [], "a": {}}, [OK_OP, op], "INVALID_OP", 1)
    assert isinstance(err, StateValueError) and isinstance(err, ValueError)
    await op_failure(state, {"n": 1, "list": [], "a": {}}, [op], "INVALID_OP", 0)
    await op_failure(state, ABSENT, [OK_OP, OK_OP, OK_OP, op, OK_OP], "INVALID_OP", 3)


@pytest.mark.parametrize(
    "ops",
    [{"type": "set", "path": "a", "value": 1}, "set", None, 42, {"length": 1, 0: {"type": "set"}}, b"ops", iter([OK_OP])],
    ids=["a single op dict", "a str", "None", "an int", "a dict", "bytes", "an iterator"],
)
async def test_ops_that_are_not_a_list_raise_invalid_argument(state, ops):
    await state.set("g", "k", {"a": 0})
    before = await snapshot(state)
    with pytest.raises(StateTypeError) as caught:
        await state.update("g", "k", ops)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert isinstance(caught.value, TypeError)
    assert caught.value.op_index is None
    with pytest.raises(StateTypeError):
        await state.update("g", "absent", ops)
    assert await snapshot(state) == before


# ---- concurrency ------------------------------------------------------------------------------


async def test_10000_concurrent_increments_give_exactly_10000(state):
    results = await asyncio.gather(*(state.update("counters", "c", [{"type": "increment", "path": "n", "by": 1}]) for _ in range(10_000)))
    assert await state.get("counters", "c") == {"n": 10_000}
    assert sorted(r["n"] for r in results) == list(range(1, 10_001))


async def test_concurrent_increments_in_both_op_forms_on_several_fields(state):
    def ops(i):
        if i % 2:
            return [{"op": "increment", "path": "/a", "value": 1}, {"type": "decrement", "path": "b", "by": 2}]
        return [{"type": "increment", "path": "a", "by": 1}, {"op": "increment", "path": "/b", "value": -2}]

    await asyncio.gather(*(state.update("counters", "c", ops(i)) for i in range(2_000)))
    assert await state.get("counters", "c") == {"a": 2_000, "b": -4_000}


async def test_concurrent_compare_and_set_lets_exactly_one_writer_win(state):
    await state.set("orders", "o1", {"status": "pending"})
    claim = lambda who: state.update(  # noqa: E731
        "orders", "o1", [{"type": "test", "path": "status", "value": "pending"}, {"type": "set", "path": "status", "value": who}]
    )
    results = await asyncio.gather(*(claim(f"worker-{i}") for i in range(50)), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(err, StateError) and err.code == "test.failed" for err in losers)
    assert await state.get("orders", "o1") == winners[0]


async def test_increments_from_several_threads_each_with_its_own_loop_are_exact(state):
    threads, per_thread = 4, 2_500

    async def work():
        for _ in range(per_thread):
            await state.update("counters", "threads", [{"type": "increment", "path": "n", "by": 1}])

    assert await run_in_threads(work, threads) == []
    assert await state.get("counters", "threads") == {"n": threads * per_thread}
