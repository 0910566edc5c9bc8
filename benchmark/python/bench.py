#!/usr/bin/env python3
"""The Python benchmark (`npm run bench -- python`): stepstate's Python binding beside what a
Python user would otherwise write, each wrapped in `async def` methods the way an async state
store is, so that both sides pay the same await per call:

- memory: stepstate `StateManager()` vs a dict of JSON text (`json.dumps`/`json.loads`) and a
  dict of live objects copied with `copy.deepcopy` in and out;
- file:   stepstate file store (`sync="everysec"`, temporary directory) vs sqlite3 (WAL,
  `synchronous=NORMAL`, table `(grp, key, value TEXT)` with a primary key; `INSERT OR REPLACE`,
  `SELECT`, and update as a read-modify-write `UPDATE` in one transaction);
- redis:  stepstate on Redis vs redis-py (`redis.asyncio`: `HGET`/`HSET` of JSON text and a Lua
  read-modify-write for update) on a private redis-server started here on a free loopback port
  and stopped by pid at the end.

The value is the order of benchmark/harness.js (an order dict with a nested customer and a
list of items). Workloads: hot (1,000 keys cycled) and cold (100,000 distinct keys written
once, then read and updated in a fixed random order, the permutation of benchmark/workloads.js);
get, set and update (count a payment, set the status) awaited one at a time; on Redis also 64
in flight (asyncio.gather of 64 workers). Each round opens every store fresh and rotates the
order of the stores; figures are medians of BENCH_ROUNDS rounds (default 3), ratios medians of
per-round ratios (stepstate ÷ reference; > 1: stepstate faster).

Environment: BENCH_ROUNDS (3), BENCH_OPS (50,000: each hot in-process figure), BENCH_FILE_OPS
(20,000: each hot file figure), BENCH_REDIS_OPS (5,000: each Redis figure), BENCH_COLD_KEYS
(100,000).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from stepstate import StateManager

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
OPS = int(os.environ.get("BENCH_OPS", "50000"))
FILE_OPS = int(os.environ.get("BENCH_FILE_OPS", "20000"))
REDIS_OPS = int(os.environ.get("BENCH_REDIS_OPS", "5000"))
KEYS = 1000
COLD_KEYS = int(os.environ.get("BENCH_COLD_KEYS", "100000"))
IN_FLIGHT = 64


def order(i: int) -> Dict[str, Any]:
    """The order of benchmark/harness.js."""
    return {
        "id": f"order-{i}",
        "customer": {"id": f"cust-{i % 97}", "name": "Ada Lovelace", "email": "ada@example.com"},
        "status": "pending",
        "items": [
            {"sku": "sku-1", "qty": 2, "price": 19.99},
            {"sku": "sku-2", "qty": 1, "price": 5.5},
        ],
        "total": 45.48,
        "paid": 0,
        "createdAt": "2026-11-21T05:00:00.000Z",
    }


#: The ops of an update: count a payment and set the status (benchmark/workloads.js).
UPDATE_OPS = [
    {"type": "increment", "path": "paid", "by": 1},
    {"type": "set", "path": "status", "value": "paid"},
]


def apply_update(value: Dict[str, Any]) -> Dict[str, Any]:
    """UPDATE_OPS in plain Python, for the reference stores."""
    value["paid"] = value.get("paid", 0) + 1
    value["status"] = "paid"
    return value


def permutation(n: int, seed: int = 0x5EED) -> List[int]:
    """The fixed random permutation of benchmark/workloads.js (mulberry32, same seed)."""
    mask = 0xFFFFFFFF
    out = list(range(n))
    state = seed

    def imul(a: int, b: int) -> int:
        return (a * b) & mask

    def next_() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & mask
        t = imul(state ^ (state >> 15), 1 | state)
        t = ((t + imul(t ^ (t >> 7), 61 | t)) & mask) ^ t
        return ((t ^ (t >> 14)) & mask) / 4294967296

    for i in range(n - 1, 0, -1):
        j = int(next_() * (i + 1))
        out[i], out[j] = out[j], out[i]
    return out


COLD_ORDER = permutation(COLD_KEYS)
COLD_NAMES = [f"k{i}" for i in COLD_ORDER]
HOT_NAMES = [f"k{i}" for i in range(KEYS)]

# ---- reference stores ------------------------------------------------------------------------


class DictJson:
    """A dict of groups of JSON text: json.dumps on the way in, json.loads on the way out."""

    name = "dict+JSON"

    def __init__(self) -> None:
        self.groups: Dict[str, Dict[str, str]] = {}

    async def get(self, group: str, key: str) -> Any:
        text = self.groups.get(group, {}).get(key)
        return None if text is None else json.loads(text)

    async def set(self, group: str, key: str, value: Any) -> Any:
        items = self.groups.get(group)
        if items is None:
            items = self.groups[group] = {}
        items[key] = json.dumps(value)
        return value

    async def update(self, group: str, key: str, ops: Any) -> Any:
        items = self.groups.setdefault(group, {})
        text = items.get(key)
        value = apply_update({} if text is None else json.loads(text))
        items[key] = json.dumps(value)
        return value

    async def close(self) -> None:
        self.groups.clear()


class DictDeepcopy:
    """A dict of groups of live objects, copied with copy.deepcopy in and out."""

    name = "dict+deepcopy"

    def __init__(self) -> None:
        self.groups: Dict[str, Dict[str, Any]] = {}

    async def get(self, group: str, key: str) -> Any:
        value = self.groups.get(group, {}).get(key)
        return None if value is None else copy.deepcopy(value)

    async def set(self, group: str, key: str, value: Any) -> Any:
        items = self.groups.get(group)
        if items is None:
            items = self.groups[group] = {}
        items[key] = copy.deepcopy(value)
        return value

    async def update(self, group: str, key: str, ops: Any) -> Any:
        items = self.groups.setdefault(group, {})
        value = items.get(key)
        if value is None:
            value = items[key] = {}
        apply_update(value)
        return copy.deepcopy(value)

    async def close(self) -> None:
        self.groups.clear()


class Sqlite:
    """sqlite3 in WAL mode with synchronous=NORMAL: one row per item, JSON text values."""

    name = "sqlite3"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.db = sqlite3.connect(os.path.join(directory, "state.db"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS items (grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (grp, key))")

    async def get(self, group: str, key: str) -> Any:
        row = self.db.execute("SELECT value FROM items WHERE grp = ? AND key = ?", (group, key)).fetchone()
        return None if row is None else json.loads(row[0])

    async def set(self, group: str, key: str, value: Any) -> Any:
        self.db.execute("INSERT OR REPLACE INTO items (grp, key, value) VALUES (?, ?, ?)", (group, key, json.dumps(value)))
        return value

    async def update(self, group: str, key: str, ops: Any) -> Any:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value FROM items WHERE grp = ? AND key = ?", (group, key)).fetchone()
            if row is None:
                value = apply_update({})
                db.execute("INSERT INTO items (grp, key, value) VALUES (?, ?, ?)", (group, key, json.dumps(value)))
            else:
                value = apply_update(json.loads(row[0]))
                db.execute("UPDATE items SET value = ? WHERE grp = ? AND key = ?", (json.dumps(value), group, key))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return value

    async def close(self) -> None:
        self.db.close()


#: The redis-py update: UPDATE_OPS in Lua with cjson (the script of benchmark/redis.js).
UPDATE_SCRIPT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
local value = {}
if old then value = cjson.decode(old) end
value.paid = (tonumber(value.paid) or 0) + tonumber(ARGV[2])
value.status = ARGV[3]
local new = cjson.encode(value)
redis.call('HSET', KEYS[1], ARGV[1], new)
return new
"""


class RedisPy:
    """redis-py's asyncio client: a group is one hash `<prefix>{<group>}` of JSON text."""

    name = "redis-py"

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url)
        self.script = self.client.register_script(UPDATE_SCRIPT)
        self.prefix = prefix

    def _hash(self, group: str) -> str:
        return f"{self.prefix}{{{group}}}"

    async def get(self, group: str, key: str) -> Any:
        text = await self.client.hget(self._hash(group), key)
        return None if text is None else json.loads(text)

    async def set(self, group: str, key: str, value: Any) -> Any:
        await self.client.hset(self._hash(group), key, json.dumps(value))
        return value

    async def update(self, group: str, key: str, ops: Any) -> Any:
        # This benchmark's only ops are UPDATE_OPS; the script hard-codes their shape.
        text = await self.script(keys=[self._hash(group)], args=[key, ops[0]["by"], ops[1]["value"]])
        return json.loads(text)

    async def close(self) -> None:
        await self.client.aclose()


# ---- harness ---------------------------------------------------------------------------------

Call = Callable[[Any, int], Awaitable[Any]]


async def sequential(store: Any, call: Call, ops: int) -> int:
    for i in range(ops):
        await call(store, i)
    return ops


async def concurrent(store: Any, call: Call, ops: int, in_flight: int = IN_FLIGHT) -> int:
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            await call(store, i)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return ops


def hot_get(store: Any, i: int) -> Awaitable[Any]:
    return store.get("orders", HOT_NAMES[i % KEYS])


def hot_set(store: Any, i: int) -> Awaitable[Any]:
    return store.set("orders", HOT_NAMES[(i * 7919) % KEYS], order(i))


def hot_update(store: Any, i: int) -> Awaitable[Any]:
    return store.update("orders", HOT_NAMES[(i * 7919) % KEYS], UPDATE_OPS)


def cold_set(store: Any, i: int) -> Awaitable[Any]:
    return store.set("orders", f"k{i}", order(i))


def cold_get(store: Any, i: int) -> Awaitable[Any]:
    return store.get("orders", COLD_NAMES[i % COLD_KEYS])


def cold_update(store: Any, i: int) -> Awaitable[Any]:
    return store.update("orders", COLD_NAMES[i % COLD_KEYS], UPDATE_OPS)


async def fill(store: Any, count: int, in_flight: int = 1) -> None:
    if in_flight > 1:
        await concurrent(store, cold_set, count, in_flight)
    else:
        for i in range(count):
            await store.set("orders", f"k{i}", order(i))


class Entry:
    """A store of a suite: `open()` gives a fresh one; `cleanup()` runs after its close."""

    def __init__(self, name: str, open_: Callable[[], Awaitable[Any]], cleanup: Optional[Callable[[], Awaitable[None]]] = None):
        self.name = name
        self.open = open_
        self.cleanup = cleanup


class Phase:
    """A measured workload: `run(store) -> ops`, after an untimed `setup(store)`."""

    def __init__(self, name: str, run: Callable[[Any], Awaitable[int]], setup: Optional[Callable[[Any], Awaitable[None]]] = None):
        self.name = name
        self.run = run
        self.setup = setup


async def timed(phase: Phase, store: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    ops = await phase.run(store)
    return ops / (time.perf_counter() - start)


async def measure(entries: List[Entry], sessions: List[List[Phase]]) -> Dict[str, Dict[str, List[float]]]:
    """Runs each session (phases on one freshly opened store, in order: a setup, then the
    timed runs) for every store, ROUNDS times, rotating the store order each round.
    Returns {phase name: {store name: [ops/s per round]}}."""
    results: Dict[str, Dict[str, List[float]]] = {}
    for phases in sessions:
        for phase in phases:
            results[phase.name] = {entry.name: [] for entry in entries}
    for round_ in range(ROUNDS):
        for phases in sessions:
            for n in range(len(entries)):
                entry = entries[(n + round_) % len(entries)]
                store = await entry.open()
                try:
                    for phase in phases:
                        if phase.setup is not None:
                            await phase.setup(store)
                        results[phase.name][entry.name].append(await timed(phase, store))
                finally:
                    await store.close()
                    if entry.cleanup is not None:
                        await entry.cleanup()
    return results


def fmt(value: float) -> str:
    return f"{value / 1e6:.2f} M/s" if value >= 1e6 else f"{round(value / 1e3)}k/s"


RATIOS: Dict[str, Dict[str, float]] = {}


def print_table(title: str, subject: str, results: Dict[str, Dict[str, List[float]]]) -> None:
    first = next(iter(results.values()))
    stores = list(first)
    references = [s for s in stores if s != subject]
    header = ["workload", *stores, *(f"{subject} ÷ {r}" for r in references)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for name, figures in results.items():
        cells = [fmt(statistics.median(figures[s])) for s in stores]
        ratios = []
        for r in references:
            ratio = statistics.median(m / t for m, t in zip(figures[subject], figures[r]))
            RATIOS.setdefault(title, {})[f"{name} | {r}"] = ratio
            ratios.append(f"{ratio:.2f}x")
        print("| " + " | ".join([name, *cells, *ratios]) + " |")
    sys.stdout.flush()


def hot_sessions(ops: int) -> List[List[Phase]]:
    async def fill_hot(store: Any) -> None:
        await fill(store, KEYS)

    return [
        [Phase("get (awaited, one at a time)", lambda s: sequential(s, hot_get, ops), fill_hot)],
        [Phase("set (awaited, one at a time)", lambda s: sequential(s, hot_set, ops))],
        [Phase("update (awaited, one at a time)", lambda s: sequential(s, hot_update, ops), fill_hot)],
    ]


def cold_sessions(keys: int, ops: int) -> List[List[Phase]]:
    """One store per round: writes `keys` distinct keys (timed), then makes `ops` reads and
    `ops` updates of them in the fixed random order."""
    ops = min(ops, keys)
    return [
        [
            Phase(f"cold: set of {keys // 1000}k distinct keys", lambda s: sequential(s, cold_set, keys)),
            Phase(f"cold: get, random over {keys // 1000}k keys", lambda s: sequential(s, cold_get, ops)),
            Phase(f"cold: update, random over {keys // 1000}k keys", lambda s: sequential(s, cold_update, ops)),
        ]
    ]


# ---- suites ----------------------------------------------------------------------------------


async def memory_suite() -> None:
    async def stepstate() -> Any:
        return StateManager()

    async def dict_json() -> Any:
        return DictJson()

    async def dict_deepcopy() -> Any:
        return DictDeepcopy()

    entries = [Entry("stepstate", stepstate), Entry("dict+JSON", dict_json), Entry("dict+deepcopy", dict_deepcopy)]
    print_table(f"In-memory store (hot: {KEYS:,} keys, {OPS:,} ops per figure)", "stepstate", await measure(entries, hot_sessions(OPS)))
    print_table(
        f"In-memory store (cold: {COLD_KEYS:,} keys written, then {min(OPS, COLD_KEYS):,} of each call in random order)",
        "stepstate",
        await measure(entries, cold_sessions(COLD_KEYS, OPS)),
    )


async def file_suite() -> None:
    directories: List[str] = []

    def fresh_dir() -> str:
        directory = tempfile.mkdtemp(prefix="stepstate-bench-")
        directories.append(directory)
        return directory

    async def cleanup() -> None:
        while directories:
            shutil.rmtree(directories.pop(), ignore_errors=True)

    async def stepstate() -> Any:
        return await StateManager.open(adapter="file", path=os.path.join(fresh_dir(), "store"), sync="everysec")

    async def sqlite() -> Any:
        return Sqlite(fresh_dir())

    entries = [Entry("stepstate file (everysec)", stepstate, cleanup), Entry("sqlite3 (WAL, NORMAL)", sqlite, cleanup)]
    try:
        print_table(
            f"File store (hot: {KEYS:,} keys, {FILE_OPS:,} ops per figure; temp dir {tempfile.gettempdir()})",
            "stepstate file (everysec)",
            await measure(entries, hot_sessions(FILE_OPS)),
        )
        print_table(
            f"File store (cold: {COLD_KEYS:,} keys written, then {min(FILE_OPS, COLD_KEYS):,} of each call in random order)",
            "stepstate file (everysec)",
            await measure(entries, cold_sessions(COLD_KEYS, FILE_OPS)),
        )
    finally:
        await cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis() -> "tuple[subprocess.Popen, int]":
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("the redis suite needs redis-server on PATH (install Redis 7)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"redis-server did not start on port {port}")
        time.sleep(0.02)


async def redis_suite() -> None:
    import redis.asyncio

    process, port = start_redis()
    url = f"redis://127.0.0.1:{port}"
    admin = redis.asyncio.Redis.from_url(url)

    async def cleanup() -> None:
        # Each store starts from an empty server, so neither finds the other's keys.
        await admin.flushall()

    async def stepstate() -> Any:
        return await StateManager.open(adapter="redis", url=url, prefix="bench:")

    async def redis_py() -> Any:
        return RedisPy(url, "bench:")

    entries = [Entry("stepstate redis", stepstate, cleanup), Entry("redis-py", redis_py, cleanup)]

    async def fill_hot(store: Any) -> None:
        await fill(store, KEYS, IN_FLIGHT)

    ops = REDIS_OPS
    sessions = [
        [Phase("get (awaited, one at a time)", lambda s: sequential(s, hot_get, ops), fill_hot)],
        [Phase("set (awaited, one at a time)", lambda s: sequential(s, hot_set, ops))],
        [Phase("update (awaited, one at a time)", lambda s: sequential(s, hot_update, ops), fill_hot)],
        [Phase(f"get, {IN_FLIGHT} in flight", lambda s: concurrent(s, hot_get, ops), fill_hot)],
        [Phase(f"set, {IN_FLIGHT} in flight", lambda s: concurrent(s, hot_set, ops))],
        [Phase(f"update, {IN_FLIGHT} in flight", lambda s: concurrent(s, hot_update, ops), fill_hot)],
    ]
    # Cold: 100,000 keys are written once per store, 64 in flight (timed: one figure per
    # store), under a prefix of its own; then every round opens the stores afresh on them and
    # reads and updates them in the fixed random order.
    cold = [
        [
            Phase(f"cold: get, random over {COLD_KEYS // 1000}k keys (awaited)", lambda s: sequential(s, cold_get, ops)),
            Phase(f"cold: update, random over {COLD_KEYS // 1000}k keys (awaited)", lambda s: sequential(s, cold_update, ops)),
            Phase(f"cold: get, random over {COLD_KEYS // 1000}k keys, {IN_FLIGHT} in flight", lambda s: concurrent(s, cold_get, ops)),
            Phase(f"cold: update, random over {COLD_KEYS // 1000}k keys, {IN_FLIGHT} in flight", lambda s: concurrent(s, cold_update, ops)),
        ]
    ]

    async def cold_stepstate() -> Any:
        return await StateManager.open(adapter="redis", url=url, prefix="cold-stepstate:")

    async def cold_redis_py() -> Any:
        return RedisPy(url, "cold-redis-py:")

    cold_entries = [Entry("stepstate redis", cold_stepstate), Entry("redis-py", cold_redis_py)]
    try:
        await admin.flushall()
        print_table(f"Redis store (hot: {KEYS:,} keys; private redis-server {port}, {ops:,} ops per figure)", "stepstate redis", await measure(entries, sessions))
        fills: Dict[str, Dict[str, List[float]]] = {f"cold: set of {COLD_KEYS // 1000}k distinct keys, {IN_FLIGHT} in flight (once)": {}}
        for entry in cold_entries:
            store = await entry.open()
            try:
                fill_phase = Phase("fill", lambda s: concurrent(s, cold_set, COLD_KEYS))
                next(iter(fills.values()))[entry.name] = [await timed(fill_phase, store)]
            finally:
                await store.close()
        cold_results = await measure(cold_entries, cold)
        print_table(f"Redis store (cold: {COLD_KEYS:,} keys, random order, {ops:,} ops per figure)", "stepstate redis", {**fills, **cold_results})
    finally:
        await admin.aclose()
        process.kill()  # by pid: only the server started here
        process.wait()


# ---- targets ---------------------------------------------------------------------------------


def check_targets() -> None:
    """The targets of the Python binding, checked against the ratios printed above."""
    checks = [
        ("In-memory", ("get ", "set ", "update "), "dict+JSON", 0.8),
        ("In-memory", ("get ", "set ", "update "), "dict+deepcopy", 1.5),
        ("In-memory store (cold", ("cold: get", "cold: set", "cold: update"), "dict+JSON", 0.8),
        ("In-memory store (cold", ("cold: get", "cold: set", "cold: update"), "dict+deepcopy", 1.5),
        ("File store (hot", ("set ", "update "), "sqlite3 (WAL, NORMAL)", 5.0),
        ("File store (cold", ("cold: set", "cold: update"), "sqlite3 (WAL, NORMAL)", 5.0),
        ("Redis store (hot", ("get (awaited", "set (awaited"), "redis-py", 0.9),
        ("Redis store (cold", ("cold: get, random over",), "redis-py", 0.9),
    ]
    lines = []
    for table_prefix, workloads, reference, target in checks:
        for title, ratios in RATIOS.items():
            if not title.startswith(table_prefix):
                continue
            for label, ratio in ratios.items():
                name, ref = label.split(" | ")
                if ref != reference or not name.startswith(workloads) or (table_prefix.startswith("Redis") and "in flight" in name):
                    continue
                verdict = "ok  " if ratio >= target else "MISS"
                lines.append(f"| {verdict} | {title.split(' (')[0]} | {name} | ÷ {reference} | {ratio:.2f}x | ≥ {target}x |")
    if lines:
        print("\n### Targets\n")
        print("| | store | workload | reference | ratio | target |")
        print("|---|---|---|---|---|---|")
        print("\n".join(lines))


SUITES = {"memory": memory_suite, "file": file_suite, "redis": redis_suite}


async def main(names: List[str]) -> None:
    print(
        f"stepstate Python benchmark — {platform.python_implementation()} {platform.python_version()}, "
        f"{ROUNDS} rounds; value: {len(json.dumps(order(1), separators=(',', ':')))}-byte order; figures are medians of "
        f"rounds, ratios medians of per-round ratios (> 1: stepstate faster)"
    )
    started = time.monotonic()
    for name in names:
        await SUITES[name]()
    check_targets()
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    chosen = [a for a in sys.argv[1:] if not a.startswith("-")] or list(SUITES)
    unknown = [a for a in chosen if a not in SUITES]
    if unknown:
        raise SystemExit(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    asyncio.run(main(chosen))
