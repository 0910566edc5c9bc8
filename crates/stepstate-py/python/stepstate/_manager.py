"""``StateManager``: the async face of the stores for Python steps.

Three kinds of store stand behind one class, as in the Node package: ``memory`` and ``file``
run in this process (each call is one synchronous call into the Rust engine, awaited only
for ``sync="always"`` acknowledgements), ``redis`` runs its calls on a tokio thread of the
native module and resolves asyncio futures when they finish. Change events, durable
acknowledgements and finished Redis calls all reach the asyncio loop through one socket per
manager, which the loop watches (``loop.add_reader``): no native thread ever runs Python code.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import math
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    NamedTuple,
    Optional,
    Union,
)
from urllib.parse import quote

from . import _native
from ._errors import StateError, StateTypeError, _make

JsonValue = Any
Event = Dict[str, Any]
Listener = Callable[[Event], Union[None, Awaitable[None]]]

__all__ = ["StateManager", "SetResult", "Watch"]


class SetResult(NamedTuple):
    """The value a write stored and the one it replaced (``None`` when the key was absent):
    what ``set`` and ``update`` return with ``with_old=True``."""

    new_value: JsonValue
    old_value: JsonValue


def _invalid(message: str) -> StateTypeError:
    return _make("INVALID_ARGUMENT", None, message)  # type: ignore[return-value]


def _ttl_ms(ttl: Any, what: str = "ttl") -> float:
    """A TTL in seconds as the native calls take it: milliseconds, -1 for the default."""
    if ttl is None:
        return -1.0
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise _invalid(f"{what} must be a positive number of seconds, got {ttl!r}")
    return float(max(1, math.ceil(ttl * 1000)))


def _positive_int(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _invalid(f"{what} must be a positive int, got {value!r}")
    return value


def _filter_name(value: Any, what: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value.encode("utf-8", "surrogatepass")) > 1024:
        raise _invalid(f"{what} must be a non-empty str of at most 1024 bytes, got {value!r}")
    return value


#: What ``close`` puts in the queue of a ``watch`` iterator to end it.
_WATCH_END = object()


class _Listener:
    __slots__ = ("subscription", "callback", "condition")

    def __init__(self, subscription: Any, callback: Listener, condition: Optional[Callable[[Event], bool]]):
        self.subscription = subscription
        self.callback = callback
        self.condition = condition


class StateManager:
    """Grouped key-value state: ``await state.set(group, key, value)``, ``get``, ``update``
    (atomic ops), ``delete``, ``list``, ``entries``, ``keys``, ``list_groups``, ``clear``,
    change events (``on_change``, ``watch``) and TTL, in memory, in a directory of files or
    in Redis.

    ``StateManager()`` is an in-memory store; ``StateManager(adapter="file", path=...)`` opens
    a file store at once (recovery included); ``await StateManager.open(adapter=..., ...)``
    opens any of them, Redis included, and ``async with StateManager.open(...) as state:``
    closes it at the end of the block.
    """

    _closed: bool = False

    def __new__(cls, adapter: str = "memory", **options: Any) -> "StateManager":
        if cls is StateManager:
            if adapter == "redis":
                raise _invalid("a Redis store connects asynchronously: use `await StateManager.open(adapter='redis', ...)`")
            cls = _InProcess
        return object.__new__(cls)

    def __init__(
        self,
        adapter: str = "memory",
        *,
        path: Optional[str] = None,
        sync: str = "everysec",
        ttl: Optional[float] = None,
        max_value_bytes: Optional[int] = None,
    ) -> None:
        raise NotImplementedError  # replaced by the store's own __init__

    @staticmethod
    def open(adapter: str = "memory", **options: Any) -> "_Opening":
        """Opens a store and resolves once it is ready (recovered, connected).

        ``adapter="memory"`` (default): options ``ttl`` (default TTL in seconds),
        ``max_value_bytes``. ``adapter="file"``: also ``path`` (the directory, created if
        missing) and ``sync`` (``"always"``, ``"everysec"`` (default) or ``"no"``).
        ``adapter="redis"``: also ``url`` (``redis://[user[:password]@]host[:port][/db]``, or
        ``rediss://`` for TLS) or ``host``, ``port``, ``username``, ``password``, ``db``,
        ``tls`` (``True``, or ``{"ca": pem}`` to trust a certificate authority of your own);
        ``prefix`` (default ``"stepstate:"``), ``command_timeout`` (seconds a call waits
        for an unreachable Redis before it raises ``BACKEND_UNAVAILABLE``, default 5) and
        ``events_kept`` (about how many change events the stream keeps for listeners that
        reconnect, default 100,000).

        Use it as ``state = await StateManager.open(...)`` or
        ``async with StateManager.open(...) as state:``.
        """
        return _Opening(adapter, options)

    # The methods below are the documented surface; each store class implements them.

    async def get(self, group: str, key: str) -> JsonValue:
        """The value, or ``None`` when absent or expired. A fresh copy each time."""
        raise NotImplementedError

    async def set(self, group: str, key: str, value: JsonValue, *, ttl: Optional[float] = None, with_old: bool = False) -> Any:
        """Stores ``value`` (a JSON value: dict, list, str, int, float, bool, None) and returns
        it; with ``with_old=True`` returns ``SetResult(new_value, old_value)``. ``ttl`` in
        seconds; without it the store's default TTL applies, if any."""
        raise NotImplementedError

    async def update(self, group: str, key: str, ops: List[Dict[str, Any]], *, with_old: bool = False) -> Any:
        """Applies ``ops`` atomically (all or none) and returns the new value; with
        ``with_old=True`` returns ``SetResult(new_value, old_value)``. A missing key starts
        from ``{}``."""
        raise NotImplementedError

    async def delete(self, group: str, key: str) -> JsonValue:
        """Removes the item; returns the removed value, or ``None``."""
        raise NotImplementedError

    async def list(self, group: str) -> List[JsonValue]:
        """The group's values in insertion order (``[]`` for an unknown group)."""
        raise NotImplementedError

    async def get_group(self, group: str) -> List[JsonValue]:
        """The same as ``list``."""
        return await self.list(group)

    async def entries(self, group: str) -> List[Dict[str, Any]]:
        """The group's items as ``{"key": ..., "value": ...}`` in insertion order."""
        raise NotImplementedError

    async def keys(self, group: str) -> List[str]:
        """The group's keys in insertion order."""
        raise NotImplementedError

    async def list_groups(self) -> List[str]:
        """The sorted names of the groups that hold items."""
        raise NotImplementedError

    async def clear(self, group: str) -> None:
        """Removes every item of the group (each fires ``state:deleted`` with ``reason: "cleared"``)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Flushes everything acknowledged and releases files, locks, threads and connections.
        Idempotent; other calls afterwards raise ``StateError`` with code ``CLOSED``."""
        raise NotImplementedError

    async def __aenter__(self) -> "StateManager":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ---- change events -------------------------------------------------------------------

    def _init_events(self) -> None:
        self._listeners: Dict[int, _Listener] = {}
        self._ids = itertools.count(1)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._watching_fd = False
        self._tasks: set = set()
        #: The queues of the running ``watch`` iterators, ended by ``close``.
        self._watch_queues: set = set()
        #: Called as ``handler(error, event)`` when a change listener raises (or its coroutine
        #: does); by default the error goes to the loop's exception handler.
        self.listener_error_handler: Optional[Callable[[BaseException, Event], None]] = None

    def _attach(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        """Makes the running loop watch this manager's wake socket (once per loop)."""
        if self._closed:
            return  # the socket is gone; the call itself says CLOSED
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: the first call made inside one attaches
        if loop is self._loop:
            return
        fd = self._native.wake_fd()
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.remove_reader(fd)
            except Exception:  # noqa: BLE001 - the old loop may be gone already
                pass
        self._loop = loop
        loop.add_reader(fd, self._on_wake)

    def _detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.remove_reader(self._native.wake_fd())
            except Exception:  # noqa: BLE001
                pass
        self._loop = None

    def on_change(
        self,
        callback: Listener,
        group: Optional[str] = None,
        key: Optional[str] = None,
        condition: Optional[Callable[[Event], bool]] = None,
    ) -> Callable[[], None]:
        """Calls ``callback(event)`` after each committed change of ``group`` (all groups when
        ``None``) and ``key``, for which ``condition(event)`` (if given) is true; returns a
        function that unsubscribes. ``callback`` may be a coroutine function. Events are
        dicts ``{"type": "state", "event_type": "state:created" | "state:updated" |
        "state:deleted", "group_id", "item_id", "old_value", "new_value"}`` (plus ``"reason":
        "expired" | "cleared"`` for those deletions), delivered on the event loop after the
        write, in commit order per key."""
        if not callable(callback):
            raise _invalid(f"callback must be callable, got {callback!r}")
        if condition is not None and not callable(condition):
            raise _invalid(f"condition must be callable, got {condition!r}")
        subscription = self._native.subscribe(_filter_name(group, "group"), _filter_name(key, "key"))
        listener_id = next(self._ids)
        self._listeners[listener_id] = _Listener(subscription, callback, condition)
        self._attach()

        def off() -> None:
            listener = self._listeners.pop(listener_id, None)
            if listener is not None:
                listener.subscription.close()

        return off

    def watch(
        self,
        group: Optional[str] = None,
        key: Optional[str] = None,
        condition: Optional[Callable[[Event], bool]] = None,
    ) -> "Watch":
        """The changes as an async iterator: ``async for event in state.watch("orders"): ...``.
        Events are kept from the moment ``watch`` is called; leaving the loop (``break``, an
        exception, or dropping the iterator) unsubscribes, as does ``await watch.aclose()``,
        and closing the manager ends the iteration."""
        return Watch(self, group, key, condition)

    def _deliver(self) -> None:
        for listener in list(self._listeners.values()):
            events = listener.subscription.drain()
            for event in events:
                if listener.condition is not None:
                    try:
                        if not listener.condition(event):
                            continue
                    except BaseException as err:  # noqa: BLE001 - reported, never raised into the loop
                        self._listener_failed(err, event)
                        continue
                try:
                    result = listener.callback(event)
                except BaseException as err:  # noqa: BLE001
                    self._listener_failed(err, event)
                    continue
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(lambda t, e=event: self._task_done(t, e))

    def _task_done(self, task: "asyncio.Future[Any]", event: Event) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._listener_failed(task.exception(), event)  # type: ignore[arg-type]

    def _listener_failed(self, err: BaseException, event: Event) -> None:
        handler = self.listener_error_handler
        if handler is not None:
            handler(err, event)
            return
        loop = self._loop or asyncio.get_event_loop()
        loop.call_exception_handler(
            {
                "message": f"a stepstate change listener failed on {event.get('event_type')} of "
                f"{event.get('group_id')!r}/{event.get('item_id')!r}",
                "exception": err,
                "event": event,
            }
        )

    def _close_listeners(self) -> None:
        for listener in self._listeners.values():
            listener.subscription.close()
        self._listeners.clear()
        for queue in self._watch_queues:
            queue.put_nowait(_WATCH_END)


class Watch:
    """What ``StateManager.watch`` returns: an async iterator of change events, subscribed from
    the moment it was made until it is closed, dropped, or its manager closes."""

    _off: Optional[Callable[[], None]] = None

    def __init__(self, manager: StateManager, group: Optional[str], key: Optional[str], condition: Optional[Callable[[Event], bool]]) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._manager = manager
        self._off: Optional[Callable[[], None]] = manager.on_change(self._queue.put_nowait, group, key, condition)
        manager._watch_queues.add(self._queue)

    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> Event:
        if self._off is None:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _WATCH_END:
            self._close()
            raise StopAsyncIteration
        return event

    def _close(self) -> None:
        off, self._off = self._off, None
        if off is not None:
            self._manager._watch_queues.discard(self._queue)
            off()

    async def aclose(self) -> None:
        """Unsubscribes; the iteration ends. Idempotent."""
        self._close()

    def __del__(self) -> None:
        self._close()


class _Opening:
    """What ``StateManager.open`` returns: awaitable, and an async context manager."""

    def __init__(self, adapter: str, options: Dict[str, Any]) -> None:
        self._adapter = adapter
        self._options = options
        self._manager: Optional[StateManager] = None

    async def _open(self) -> StateManager:
        adapter, options = self._adapter, self._options
        if adapter == "redis":
            manager: StateManager = _Redis.__new__(_Redis)
            await manager._connect(**options)  # type: ignore[attr-defined]
            return manager
        if adapter == "file":
            path = options.get("path")
            if not isinstance(path, str) or not path:
                raise _invalid(f"a file store needs `path`, a directory, got {path!r}")
            loop = asyncio.get_running_loop()
            native = await loop.run_in_executor(None, lambda: _InProcess._open_native(adapter, options))
            return _InProcess._from_native(native)
        return _InProcess(adapter, **options)

    def __await__(self) -> Generator[Any, None, StateManager]:
        return self._open().__await__()

    async def __aenter__(self) -> StateManager:
        self._manager = await self._open()
        return self._manager

    async def __aexit__(self, *exc: Any) -> None:
        if self._manager is not None:
            await self._manager.close()


class _InProcess(StateManager):
    """A memory or file store: synchronous calls into the engine."""

    def __init__(self, adapter: str = "memory", **options: Any) -> None:
        self._setup(self._open_native(adapter, options))

    @staticmethod
    def _open_native(adapter: str, options: Dict[str, Any]) -> Any:
        allowed = {"ttl", "max_value_bytes"} | ({"path", "sync"} if adapter == "file" else set())
        unknown = set(options) - allowed - {"adapter"}
        if adapter not in ("memory", "file"):
            raise _invalid(f"adapter must be 'memory', 'file' or 'redis', got {adapter!r}")
        if unknown:
            raise _invalid(f"unknown option(s) for the {adapter} store: {', '.join(sorted(unknown))}")
        max_bytes = _positive_int(options.get("max_value_bytes"), "max_value_bytes")
        ttl = _ttl_ms(options.get("ttl"))
        default_ttl = 0.0 if ttl < 0 else ttl
        if adapter == "memory":
            return _native.Store.memory(max_bytes, default_ttl)
        path = options.get("path")
        if not isinstance(path, str) or not path:
            raise _invalid(f"a file store needs `path`, a directory, got {path!r}")
        sync = options.get("sync", "everysec")
        if not isinstance(sync, str):
            raise _invalid(f"sync must be 'always', 'everysec' or 'no', got {sync!r}")
        return _native.Store.open_file(path, sync, max_bytes, default_ttl)

    @classmethod
    def _from_native(cls, native: Any) -> "_InProcess":
        manager = object.__new__(cls)
        manager._setup(native)
        return manager

    def _setup(self, native: Any) -> None:
        self._native = native
        self._store = native
        policy = native.sync_policy()
        self._always = policy == "always"
        # Kept, so that `adapter` and `repr` still answer once the store is closed.
        self._adapter = "memory" if policy == "memory" else "file"
        self._durable_waiters: list = []
        self._durable_seq = itertools.count()
        self._init_events()
        if self._always:
            native.watch_durable()

    @property
    def adapter(self) -> str:
        return self._adapter

    def __repr__(self) -> str:
        state = "closed" if self._closed else self._store.sync_policy()
        return f"<stepstate.StateManager {self.adapter} ({state})>"

    async def _durable(self) -> None:
        """Waits until this thread's last write is on disk (``sync="always"``)."""
        ticket = _native.Store.last_ticket()
        if ticket == 0 or self._store.durable_ticket() >= ticket:
            return
        loop = asyncio.get_running_loop()
        self._attach(loop)
        future = loop.create_future()
        heapq.heappush(self._durable_waiters, (ticket, next(self._durable_seq), future))
        # A sync between the check above and now has woken the socket already.
        await future

    def _on_wake(self) -> None:
        self._store.clear_wake()
        if self._durable_waiters:
            self._settle_durable()
        if self._listeners:
            self._deliver()

    def _settle_durable(self) -> None:
        waiters = self._durable_waiters
        try:
            durable = self._store.durable_ticket()
        except StateError as err:
            while waiters:
                future = heapq.heappop(waiters)[2]
                if not future.done():
                    future.set_exception(err)
            return
        while waiters and waiters[0][0] <= durable:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    async def get(self, group: str, key: str) -> JsonValue:
        return self._store.get(group, key)

    def _follow_loop(self) -> None:
        """Makes the loop of this write the one that delivers events, when listeners wait: a
        listener may be added before any loop runs, and a manager may outlive a loop."""
        if self._listeners:
            loop = asyncio.get_running_loop()
            if loop is not self._loop:
                self._attach(loop)

    async def set(self, group: str, key: str, value: JsonValue, *, ttl: Optional[float] = None, with_old: bool = False) -> Any:
        self._follow_loop()
        old = self._store.set(group, key, value, -1.0 if ttl is None else _ttl_ms(ttl))
        if self._always:
            await self._durable()
        return SetResult(value, old) if with_old else value

    async def update(self, group: str, key: str, ops: List[Dict[str, Any]], *, with_old: bool = False) -> Any:
        self._follow_loop()
        result = self._store.update(group, key, ops, with_old)
        if self._always:
            await self._durable()
        return SetResult(*result) if with_old else result

    async def delete(self, group: str, key: str) -> JsonValue:
        self._follow_loop()
        old = self._store.delete(group, key)
        if self._always and old is not None:
            await self._durable()
        return old

    async def list(self, group: str) -> List[JsonValue]:
        return self._store.list(group)

    async def get_group(self, group: str) -> List[JsonValue]:
        return self._store.list(group)

    async def entries(self, group: str) -> List[Dict[str, Any]]:
        return self._store.entries(group)

    async def keys(self, group: str) -> List[str]:
        return self._store.keys(group)

    async def list_groups(self) -> List[str]:
        return self._store.list_groups()

    async def clear(self, group: str) -> None:
        self._follow_loop()
        removed = self._store.clear(group)
        if self._always and removed:
            await self._durable()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listeners:
            # Events of writes made before close still reach their listeners.
            self._deliver()
        self._close_listeners()
        self._detach()  # before the store closes its wake socket
        self._store.close()
        self._settle_durable()


class _Redis(StateManager):
    """A Redis store: calls run on the native module's tokio thread."""

    async def _connect(
        self,
        *,
        url: Optional[str] = None,
        host: Optional[str] = None,
        port: Optional[int] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        db: Optional[int] = None,
        tls: Any = None,
        prefix: str = "stepstate:",
        command_timeout: Optional[float] = None,
        events_kept: Optional[int] = None,
        ttl: Optional[float] = None,
        max_value_bytes: Optional[int] = None,
        adapter: str = "redis",
    ) -> None:
        if url is None:
            scheme = "rediss" if tls else "redis"
            auth = ""
            if username is not None or password is not None:
                auth = quote(username or "", safe="") + (":" + quote(password, safe="") if password is not None else "") + "@"
            url = f"{scheme}://{auth}{host or '127.0.0.1'}:{int(port or 6379)}/{int(db or 0)}"
        elif not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
            raise _invalid(f"url must start with redis:// or rediss://, got {url!r}")
        if not isinstance(prefix, str):
            raise _invalid(f"prefix must be a str, got {prefix!r}")
        timeout_ms = 0.0
        if command_timeout is not None:
            timeout_ms = _ttl_ms(command_timeout, "command_timeout")
        ca = tls.get("ca") if isinstance(tls, dict) else None
        ttl_ms = _ttl_ms(ttl)
        self._native = _native.Redis()
        self._init_events()
        future = self._future()
        try:
            self._native.open(
                future,
                url,
                prefix,
                timeout_ms,
                _positive_int(max_value_bytes, "max_value_bytes"),
                0.0 if ttl_ms < 0 else ttl_ms,
                _positive_int(events_kept, "events_kept"),
                ca,
            )
            await future
        except BaseException:
            self._closed = True
            self._detach()
            self._native.close()
            raise

    adapter = "redis"

    def __repr__(self) -> str:
        return f"<stepstate.StateManager redis ({'closed' if self._closed else 'open'})>"

    def _future(self) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._attach(loop)
        return loop.create_future()

    def _on_wake(self) -> None:
        for future, ok, value in self._native.take_done():
            if future.done():
                continue  # cancelled by its caller
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self._listeners:
            self._deliver()

    async def get(self, group: str, key: str) -> JsonValue:
        future = self._future()
        self._native.get(future, group, key)
        return await future

    async def set(self, group: str, key: str, value: JsonValue, *, ttl: Optional[float] = None, with_old: bool = False) -> Any:
        future = self._future()
        self._native.set(future, group, key, value, -1.0 if ttl is None else _ttl_ms(ttl))
        old = await future
        return SetResult(value, old) if with_old else value

    async def update(self, group: str, key: str, ops: List[Dict[str, Any]], *, with_old: bool = False) -> Any:
        future = self._future()
        self._native.update(future, group, key, ops, with_old)
        result = await future
        return SetResult(*result) if with_old else result

    async def delete(self, group: str, key: str) -> JsonValue:
        future = self._future()
        self._native.delete(future, group, key)
        return await future

    async def list(self, group: str) -> List[JsonValue]:
        future = self._future()
        self._native.list(future, group)
        return await future

    async def get_group(self, group: str) -> List[JsonValue]:
        return await self.list(group)

    async def entries(self, group: str) -> List[Dict[str, Any]]:
        future = self._future()
        self._native.entries(future, group)
        return await future

    async def keys(self, group: str) -> List[str]:
        future = self._future()
        self._native.keys(future, group)
        return await future

    async def list_groups(self) -> List[str]:
        future = self._future()
        self._native.list_groups(future)
        return await future

    async def clear(self, group: str) -> None:
        future = self._future()
        self._native.clear(future, group)
        await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Results that arrived already are delivered; calls still in flight fail with CLOSED.
        self._on_wake()
        self._close_listeners()
        self._detach()  # before the store closes its wake socket
        for future in self._native.close():
            if not future.done():
                future.set_exception(_make("CLOSED", None, "the store was closed while the call was in flight"))
