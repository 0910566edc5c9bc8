"""The exceptions of stepstate: one ``StateError`` with the same string ``code`` as the Node
package (``INVALID_ARGUMENT``, ``INVALID_VALUE``, ``INVALID_OP``, ``VALUE_TOO_LARGE``, op codes
such as ``increment.not_number``, ``LOCKED``, ``CORRUPT``, ``CLOSED``, ``BACKEND_UNAVAILABLE``,
``IO``) and ``op_index`` (the failing op of an ``update``, else ``None``). Bad arguments raise
``StateTypeError`` (also a ``TypeError``); values and ops that are not acceptable raise
``StateValueError`` (also a ``ValueError``). Branch on ``err.code``, never on the message."""

from __future__ import annotations

from typing import Optional


class StateError(Exception):
    """A stepstate call failed; ``code`` says why, ``op_index`` which op of an update."""

    def __init__(self, message: str, code: str, op_index: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.op_index = op_index

    def __reduce__(self):
        return (type(self), (str(self), self.code, self.op_index))


class StateTypeError(StateError, TypeError):
    """An argument of the wrong kind: code ``INVALID_ARGUMENT``."""


class StateValueError(StateError, ValueError):
    """A value or op that cannot be stored or applied: ``INVALID_VALUE``, ``INVALID_OP``,
    ``VALUE_TOO_LARGE``."""


_VALUE_CODES = frozenset({"INVALID_VALUE", "INVALID_OP", "VALUE_TOO_LARGE"})


def _make(code: str, op_index: Optional[int], message: str) -> StateError:
    """The exception for ``code`` (called by the native module)."""
    if code == "INVALID_ARGUMENT":
        kind = StateTypeError
    elif code in _VALUE_CODES:
        kind = StateValueError
    else:
        kind = StateError
    return kind(message, code, op_index)
