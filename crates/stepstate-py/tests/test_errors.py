"""How calls fail: bad group and key names, values that are not JSON (as Python spells them),
big ints, ``max_value_bytes``, the exception classes and codes of every rejection, ``op_index``,
messages that name the group and key, and proof that no rejected call changes the store."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import pickle
import uuid

import pytest

from stepstate import StateError, StateTypeError, StateValueError
from helpers import snapshot



async def seed(state):
    await state.set("users", "u1", {"name": "Ada", "visits": 1})
    await state.set("users", "u2", {"name": "Alan", "visits": 0})
    await state.set("orders", "o1", {"status": "pending", "items": ["a"]})
    await state.set("g", "k", "existing")
    return state


async def rejects_unchanged(state, call, code, kind=StateError):
    """Awaits ``call()``, expects ``kind`` with ``code``, and checks that the store is as before."""
    before = await snapshot(state)
    with pytest.raises(kind) as caught:
        await call()
    assert caught.value.code == code, str(caught.value)
    assert str(caught.value)
    assert await snapshot(state) == before
    return caught.value


# ---- names ------------------------------------------------------------------------------------

BAD_NAMES = [
    ("empty", ""),
    ("int", 42),
    ("None", None),
    ("dict", {"name": "g"}),
    ("list", ["g"]),
    ("bytes", b"g"),
    ("float", 1.5),
    ("1025 ascii bytes", "x" * 1025),
    ("1025 bytes of two-byte chars", "é" * 512 + "x"),
    ("1028 bytes of emoji", "😀" * 257),
    ("lone surrogate", "a\ud800b"),
]

GROUP_CALLS = {
    "set": lambda s, n: s.set(n, "k", 1),
    "get": lambda s, n: s.get(n, "k"),
    "get_group": lambda s, n: s.get_group(n),
    "list": lambda s, n: s.list(n),
    "entries": lambda s, n: s.entries(n),
    "keys": lambda s, n: s.keys(n),
    "delete": lambda s, n: s.delete(n, "k"),
    "clear": lambda s, n: s.clear(n),
    "update": lambda s, n: s.update(n, "k", [{"type": "set", "path": "a", "value": 1}]),
}

KEY_CALLS = {
    "set": lambda s, n: s.set("g", n, 1),
    "get": lambda s, n: s.get("g", n),
    "delete": lambda s, n: s.delete("g", n),
    "update": lambda s, n: s.update("g", n, [{"type": "set", "path": "a", "value": 1}]),
}


@pytest.mark.parametrize("method", list(GROUP_CALLS))
async def test_a_bad_group_raises_invalid_argument_and_changes_nothing(state, method):
    await seed(state)
    for label, name in BAD_NAMES:
        err = await rejects_unchanged(state, lambda: GROUP_CALLS[method](state, name), "INVALID_ARGUMENT", StateTypeError)
        assert isinstance(err, TypeError), label
        assert not isinstance(err, ValueError), label
        assert err.op_index is None
        assert "group" in str(err), (label, str(err))


@pytest.mark.parametrize("method", list(KEY_CALLS))
async def test_a_bad_key_raises_invalid_argument_and_changes_nothing(state, method):
    await seed(state)
    for label, name in BAD_NAMES:
        err = await rejects_unchanged(state, lambda: KEY_CALLS[method](state, name), "INVALID_ARGUMENT", StateTypeError)
        assert isinstance(err, TypeError), label
        assert "key" in str(err), (label, str(err))


# ---- values that are not JSON -----------------------------------------------------------------


class Point:
    def __init__(self):
        self.x = 1


class Color(enum.Enum):
    RED = "red"


def _nested(levels):
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _cycles():
    cyclic: dict = {"name": "loop"}
    cyclic["self"] = cyclic
    cyclic_list: list = [1]
    cyclic_list.append([cyclic_list])
    deep: dict = {"a": {"b": {"c": {}}}}
    deep["a"]["b"]["c"]["back"] = deep["a"]
    return [("a dict cycle", cyclic), ("a list cycle", cyclic_list), ("a deep cycle", deep)]


INVALID_VALUES = [
    ("a set", {1, 2}),
    ("a frozenset", frozenset()),
    ("bytes", b"x"),
    ("a bytearray", bytearray(b"x")),
    ("a tuple", (1, 2)),
    ("an empty tuple", ()),
    ("a datetime", datetime.datetime(2024, 5, 1, 10, 0)),
    ("a date", datetime.date(2024, 5, 1)),
    ("a Decimal", decimal.Decimal("1.5")),
    ("a Fraction", fractions.Fraction(1, 3)),
    ("a complex", 1 + 2j),
    ("a UUID", uuid.UUID(int=1)),
    ("an Enum", Color.RED),
    ("an object", object()),
    ("an instance", Point()),
    ("a function", lambda: 1),
    ("a class", Point),
    ("a generator", (i for i in range(3))),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("2**53", 2**53),
    ("-(2**53)", -(2**53)),
    ("2**64", 2**64),
    ("10**30", 10**30),
    ("a dict with an int key", {1: "a"}),
    ("a dict with a tuple key", {("a",): 1}),
    ("a dict with a None key", {None: 1}),
    ("a dict with a bool key", {True: 1}),
    ("a set nested in a list", [1, [2, {3}]]),
    ("nan nested in a dict", {"a": {"b": float("nan")}}),
    ("a big int nested", {"a": [1, 2**60]}),
    ("a datetime nested", {"at": datetime.datetime(2024, 1, 1)}),
    ("nesting of 101 levels", _nested(101)),
    ("nesting of 5000 levels", _nested(5000)),
    ("a lone surrogate", "a\ud800b"),
    ("a lone surrogate in a key", {"\udc00": 1}),
    *_cycles(),
]


@pytest.mark.parametrize("value", [v for _, v in INVALID_VALUES], ids=[n for n, _ in INVALID_VALUES])
async def test_set_of_a_value_that_is_not_json_raises_invalid_value_and_stores_nothing(state, value):
    await seed(state)
    for group, key in [("g", "new"), ("fresh-group", "k"), ("g", "k")]:
        err = await rejects_unchanged(state, lambda: state.set(group, key, value), "INVALID_VALUE", StateValueError)
        assert isinstance(err, ValueError)
        assert not isinstance(err, TypeError)
        assert err.op_index is None
        assert f'"{group}"' in str(err) and f'"{key}"' in str(err), str(err)
    assert await state.list_groups() == ["g", "orders", "users"]
    assert await state.get("g", "k") == "existing"


async def test_invalid_value_says_what_and_where(state):
    with pytest.raises(StateValueError) as caught:
        await state.set("invoices", "inv-77", {"lines": [{"amount": decimal.Decimal("9.99")}]})
    message = str(caught.value)
    assert "invoices" in message and "inv-77" in message
    assert "Decimal" in message
    assert '["lines"][0]["amount"]' in message


async def test_a_big_int_message_explains_the_safe_range(state):
    with pytest.raises(StateValueError) as caught:
        await state.set("g", "k", {"id": 2**63})
    assert str(2**63) in str(caught.value)
    assert "2**53" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        2**53 - 1,
        -(2**53 - 1),
        _nested(100),
        collections.OrderedDict(a=1),
        collections.defaultdict(int, a=1),
        True,
        1.7976931348623157e308,
    ],
    ids=["2**53-1", "-(2**53-1)", "100 levels", "OrderedDict", "defaultdict", "True", "max float"],
)
async def test_values_at_the_limits_and_subclasses_are_accepted(state, value):
    await state.set("g", "k", value)
    assert await state.get("g", "k") == value


async def test_subclasses_of_json_types_come_back_as_the_plain_types(state):
    class Count(enum.IntEnum):
        THREE = 3

    class Name(str):
        pass

    class Items(list):
        pass

    await state.set("g", "k", {"n": Count.THREE, "name": Name("Ada"), "items": Items([1])})
    got = await state.get("g", "k")
    assert got == {"n": 3, "name": "Ada", "items": [1]}
    assert type(got["n"]) is int and type(got["name"]) is str and type(got["items"]) is list


async def test_a_value_that_is_not_json_inside_an_update_op_raises_invalid_op(state):
    await seed(state)
    err = await rejects_unchanged(
        state,
        lambda: state.update("orders", "o1", [{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "at", "value": datetime.date(2024, 1, 1)}]),
        "INVALID_OP",
        StateValueError,
    )
    assert err.op_index == 1
    assert "date" in str(err) and "orders" in str(err) and "o1" in str(err)


async def test_an_int_beyond_the_safe_range_inside_an_op_raises_invalid_op(state):
    await seed(state)
    for ops in (
        [{"type": "set", "path": "n", "value": 2**53}],
        [{"type": "increment", "path": "visits", "by": -(2**53)}],
        [{"op": "replace", "path": "/n", "value": [1, 10**20]}],
    ):
        err = await rejects_unchanged(state, lambda: state.update("users", "u1", ops), "INVALID_OP", StateValueError)
        assert err.op_index == 0


# ---- max_value_bytes --------------------------------------------------------------------------


async def test_max_value_bytes_accepts_exactly_the_limit_and_rejects_one_more(make_state):
    state = await seed(await make_state(max_value_bytes=100))
    await state.set("g", "fits", "x" * 98)  # 100 bytes of JSON with the quotes
    assert await state.get("g", "fits") == "x" * 98
    err = await rejects_unchanged(state, lambda: state.set("g", "big", "x" * 99), "VALUE_TOO_LARGE", StateValueError)
    assert isinstance(err, ValueError)
    assert await state.get("g", "big") is None


async def test_max_value_bytes_counts_utf8_bytes_of_the_json(make_state):
    state = await make_state(max_value_bytes=100)
    await state.set("g", "fits", "é" * 49)  # 98 bytes + 2 quotes
    await rejects_unchanged(state, lambda: state.set("g", "big", "é" * 50), "VALUE_TOO_LARGE", StateValueError)


async def test_a_set_too_large_keeps_the_old_value(make_state):
    state = await seed(await make_state(max_value_bytes=50))
    await rejects_unchanged(state, lambda: state.set("g", "k", {"text": "y" * 60}), "VALUE_TOO_LARGE", StateValueError)
    assert await state.get("g", "k") == "existing"


async def test_an_update_whose_result_is_too_large_keeps_the_old_value(make_state):
    state = await seed(await make_state(max_value_bytes=100))
    await state.set("g", "doc", {"s": "x" * 50})
    err = await rejects_unchanged(
        state, lambda: state.update("g", "doc", [{"type": "append", "path": "s", "value": "x" * 60}]), "VALUE_TOO_LARGE", StateValueError
    )
    assert "100" in str(err)
    assert await state.get("g", "doc") == {"s": "x" * 50}
    assert await state.update("g", "doc", [{"type": "append", "path": "s", "value": "x" * 10}]) == {"s": "x" * 60}


async def test_an_update_of_a_missing_key_too_large_creates_no_key(make_state):
    state = await seed(await make_state(max_value_bytes=100))
    await rejects_unchanged(
        state, lambda: state.update("new-group", "doc", [{"type": "set", "path": "big", "value": "z" * 200}]), "VALUE_TOO_LARGE", StateValueError
    )
    assert await state.list_groups() == ["g", "orders", "users"]


# ---- every rejection ------------------------------------------------------------------------


async def test_every_kind_of_failure_has_its_code_class_and_a_message(make_state):
    state = await seed(await make_state(max_value_bytes=1000))
    failures = [
        ("INVALID_ARGUMENT", StateTypeError, lambda: state.get("", "k")),
        ("INVALID_VALUE", StateValueError, lambda: state.set("g", "k", float("nan"))),
        ("INVALID_OP", StateValueError, lambda: state.update("g", "k", [{"type": "nope"}])),
        ("VALUE_TOO_LARGE", StateValueError, lambda: state.set("g", "k", "v" * 2000)),
        ("test.failed", StateError, lambda: state.update("orders", "o1", [{"type": "test", "path": "status", "value": "paid"}])),
        ("increment.not_number", StateError, lambda: state.update("users", "u1", [{"type": "increment", "path": "name", "by": 1}])),
    ]
    for code, kind, call in failures:
        with pytest.raises(StateError) as caught:
            await call()
        err = caught.value
        assert isinstance(err, kind), code
        assert isinstance(err, Exception), code
        assert err.code == code
        assert isinstance(err.code, str) and str(err), code


@pytest.mark.parametrize(
    "ops, code, op_index",
    [
        ([{"type": "set", "path": "a", "value": 1}, {"type": "test", "path": "status", "value": "paid"}], "test.failed", 1),
        ([{"type": "increment", "path": "status", "by": 1}], "increment.not_number", 0),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "b", "value": 1}, {"type": "decrement", "path": "items", "by": 1}], "decrement.not_number", 2),
        ([{"type": "merge", "path": "status", "value": {"a": 1}}], "merge.target_not_object", 0),
        ([{"type": "remove", "path": "x"}, {"type": "append", "path": "status", "value": 1}], "append.type_mismatch", 1),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "__proto__.a", "value": 1}], "path.proto_polluted", 1),
        ([{"type": "set", "path": "status.x", "value": 1}], "path.not_container", 0),
        ([{"type": "set", "path": "a", "value": 1}, {"type": "set", "path": "b", "value": 1}, {"type": "set", "path": 5, "value": 1}], "INVALID_OP", 2),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_op_failures_carry_the_index_of_the_failing_op(state, ops, code, op_index):
    await seed(state)
    err = await rejects_unchanged(state, lambda: state.update("orders", "o1", ops), code)
    assert err.op_index == op_index
    assert "orders" in str(err) and "o1" in str(err)
    assert isinstance(err, StateValueError) == (code == "INVALID_OP")
    assert not isinstance(err, TypeError)


async def test_errors_pickle_with_their_code_and_op_index(state):
    await state.set("g", "k", {"n": "x"})
    with pytest.raises(StateError) as caught:
        await state.update("g", "k", [{"type": "set", "path": "a", "value": 1}, {"type": "increment", "path": "n", "by": 1}])
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is type(caught.value)
    assert (copy.code, copy.op_index, str(copy)) == ("increment.not_number", 1, str(caught.value))
    with pytest.raises(StateTypeError) as caught:
        await state.get(None, "k")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, TypeError) and copy.code == "INVALID_ARGUMENT"


async def test_errors_can_be_caught_as_the_builtin_exceptions(state):
    try:
        await state.set("g", "k", {1, 2})
    except ValueError as err:
        assert err.code == "INVALID_VALUE"
    else:
        pytest.fail("no ValueError")
    try:
        await state.set(5, "k", 1)
    except TypeError as err:
        assert err.code == "INVALID_ARGUMENT"
    else:
        pytest.fail("no TypeError")


async def test_the_manager_stays_usable_after_rejections(state):
    await seed(state)
    with pytest.raises(StateTypeError):
        await state.set("", "k", 1)
    with pytest.raises(StateValueError):
        await state.set("g", "k", 2**70)
    with pytest.raises(StateError):
        await state.update("users", "u1", [{"type": "test", "path": "name", "value": "Bob"}])
    assert await state.update("users", "u1", [{"type": "increment", "path": "visits", "by": 1}], with_old=True) == (
        {"name": "Ada", "visits": 2},
        {"name": "Ada", "visits": 1},
    )
    assert await state.set("g", "k", "after", with_old=True) == ("after", "existing")
