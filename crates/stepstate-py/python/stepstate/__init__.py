"""stepstate: persistent, grouped key-value state for workflow steps.

The same Rust engine as the Node package ``stepstate``: the same UpdateOps, error codes,
change events, TTL, files and Redis layout, so a Python step and a Node step share one state::

    from stepstate import StateManager

    state = StateManager()                                   # in memory
    await state.set("users", "u1", {"name": "Ada", "login_count": 0})
    user = await state.update("users", "u1", [{"op": "increment", "path": "/login_count", "value": 1}])

    async with StateManager.open(adapter="file", path=".stepstate") as state: ...
    async with StateManager.open(adapter="redis", url="redis://127.0.0.1:6379") as state: ...
"""

from ._errors import StateError, StateTypeError, StateValueError
from ._manager import SetResult, StateManager
from ._native import MAX_SAFE_INTEGER

__all__ = [
    "StateManager",
    "SetResult",
    "StateError",
    "StateTypeError",
    "StateValueError",
    "MAX_SAFE_INTEGER",
]
