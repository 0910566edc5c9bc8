"""One state, two languages: a Node.js process and this Python process on the same Redis
prefix (each reads the other's writes, increments of one counter from both at once give an
exact total, each hears the other's change events) and on the same file store (written and
closed by one, opened with everything in it by the other)."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from stepstate import SetResult, StateManager
from helpers import wait_for


def wait_for_slowly(predicate, timeout=10.0, what="the condition"):
    return wait_for(predicate, timeout, what, interval=0.01)

from conftest import ROOT

PRELUDE = "const { StateManager } = require(%r);\n" % str(ROOT)


def js(value) -> str:
    """A Python value as a JavaScript literal (JSON is one)."""
    return json.dumps(value)


class NodeChild:
    """A Node.js process running ``script`` (with the same prelude as the ``node`` fixture)
    while this test goes on: lines of its stdout are read with a timeout, lines written to its
    stdin."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, script: str, *args: str) -> "NodeChild":
        if not (ROOT / "binding.js").exists():
            pytest.fail("the Node addon is not built: run `npm run build`")
        env = dict(os.environ, NODE_PATH=str(ROOT.parent))
        process = await asyncio.create_subprocess_exec(
            "node",
            "-e",
            PRELUDE + script,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def line(self, timeout: float = 20) -> str:
        try:
            raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no line from the Node child within {timeout}s") from None
        if not raw:
            await self.process.wait()
            err = (await self.process.stderr.read()).decode()
            raise AssertionError(f"the Node child ended ({self.process.returncode}) without a line:\n{err}")
        return raw.decode().rstrip("\n")

    async def expect(self, text: str, timeout: float = 20) -> None:
        got = await self.line(timeout)
        assert got == text, f"expected {text!r} from the Node child, got {got!r}"

    def send(self, text: str) -> None:
        self.process.stdin.write(text.encode() + b"\n")

    async def finish(self, timeout: float = 30) -> str:
        """Waits for the child to exit 0; returns the rest of its stdout."""
        try:
            out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        except asyncio.TimeoutError:
            self.process.kill()
            raise AssertionError(f"the Node child did not finish within {timeout}s") from None
        assert self.process.returncode == 0, f"node failed ({self.process.returncode}):\n{out.decode()}\n{err.decode()}"
        return out.decode()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def children():
    started = []

    async def start(script: str, *args: str) -> NodeChild:
        child = await NodeChild.start(script, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
        await child.process.wait()


@pytest.fixture
async def redis_state(redis_server, redis_prefix):
    manager = await StateManager.open(adapter="redis", url=redis_server.url, prefix=redis_prefix)
    yield manager
    await manager.close()


# Values that must cross unchanged in both directions (ints stay ints, floats with a fraction
# stay floats: JavaScript has one number type, so a Python 1.0 comes back from Node as 1).
SHARED = {
    "order": {
        "id": "order-7",
        "customer": {"id": "cust-7", "name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"sku": "sku-1", "qty": 2, "price": 19.99}, {"sku": "sku-2", "qty": 1, "price": 5.5}],
        "total": 45.48,
        "paid": 0,
        "tags": [],
        "meta": {},
        "nothing": None,
        "flags": [True, False],
    },
    "unicode": {"ünï©ødé": "日本語 ✓ 😀 𝄞", "quote\"back\\slash": "tab\tnew\nline\u2028", "nul": "a\u0000b"},
    "floats": [1.5, -0.25, 0.1, 1e-7, 123456.789, 1e21, 2.5e-300],
    "ints": [0, -1, 2**53 - 1, -(2**53 - 1)],
    "falsy": [0, False, "", None],
    "nested": [[[[{"deep": [1, [2, [3]]]}]]]],
    "text": "just a string",
    "number": 42,
}


# ---- (a) Redis: each reads the other's writes --------------------------------------------


async def test_redis_each_reads_the_others_writes(redis_server, redis_prefix, redis_state, node):
    for key, value in SHARED.items():
        await redis_state.set("from-python", key, value)
    await redis_state.set("from-python", "ttl", {"expires": "later"}, ttl=3600)
    script = f"""
    (async () => {{
      const state = await StateManager.open({{ adapter: 'redis', url: {js(redis_server.url)}, prefix: {js(redis_prefix)} }})
      const seen = {{ entries: await state.entries('from-python'), keys: await state.keys('from-python'), groups: await state.listGroups() }}
      for (const [key, value] of Object.entries({js(SHARED)})) await state.set('from-node', key, value)
      await state.set('from-node', 'ttl', {{ expires: 'later' }}, {{ ttl: 3600 }})
      seen.updated = await state.update('from-python', 'order', [{{ type: 'increment', path: 'paid', by: 1 }}, {{ op: 'replace', path: '/status', value: 'paid' }}])
      await state.close()
      console.log(JSON.stringify(seen))
    }})().catch((err) => {{ console.error(err); process.exit(1) }})
    """
    seen = json.loads(node(script).stdout)
    expected = list(SHARED.items()) + [("ttl", {"expires": "later"})]
    assert seen["entries"] == [{"key": k, "value": v} for k, v in expected]
    assert seen["keys"] == [k for k, _ in expected]
    assert seen["groups"] == ["from-python"]
    paid = dict(SHARED["order"], paid=1, status="paid")
    assert seen["updated"] == {"new_value": paid, "old_value": SHARED["order"]}

    assert await redis_state.entries("from-node") == [{"key": k, "value": v} for k, v in expected]
    assert await redis_state.get("from-python", "order") == paid
    assert await redis_state.list_groups() == ["from-node", "from-python"]
    # Python updates what Node wrote, and deletes it
    assert await redis_state.update("from-node", "number", [{"type": "set", "path": "", "value": 43}], with_old=True) == SetResult(43, 42)
    assert await redis_state.delete("from-node", "text") == "just a string"
    node_view = json.loads(
        node(
            f"""
    (async () => {{
      const state = await StateManager.open({{ adapter: 'redis', url: {js(redis_server.url)}, prefix: {js(redis_prefix)} }})
      console.log(JSON.stringify([await state.get('from-node', 'number'), await state.get('from-node', 'text')]))
      await state.close()
    }})()
    """
        ).stdout
    )
    assert node_view == [43, None]


# ---- (b) Redis: one counter, incremented from both at once -----------------------------


@pytest.mark.parametrize("in_flight", [1, 16])
async def test_redis_concurrent_increments_from_node_and_python(redis_server, redis_prefix, redis_state, children, in_flight):
    n = 1000
    child = await children(
        f"""
    const readline = require('readline')
    ;(async () => {{
      const state = await StateManager.open({{ adapter: 'redis', url: {js(redis_server.url)}, prefix: {js(redis_prefix)} }})
      await state.get('counters', 'c') // connected
      console.log('ready')
      const lines = readline.createInterface({{ input: process.stdin }})
      await new Promise((resolve) => lines.once('line', resolve))
      const ops = [{{ type: 'increment', path: 'count', by: 1 }}, {{ type: 'increment', path: 'node', by: 1 }}]
      let next = 0
      const started = Date.now()
      const worker = async () => {{ while (next++ < {n}) await state.update('counters', 'c', ops) }}
      await Promise.all(Array.from({{ length: {in_flight} }}, worker))
      console.log(JSON.stringify({{ started, ended: Date.now() }}))
      await state.close()
      lines.close()
    }})().catch((err) => {{ console.error(err); process.exit(1) }})
    """
    )
    await child.expect("ready")
    ops = [{"op": "increment", "path": "/count", "value": 1}, {"op": "increment", "path": "/python", "value": 1}]
    remaining = n

    async def worker():
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await redis_state.update("counters", "c", ops)

    child.send("go")
    py_started = time.time() * 1000
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    py_ended = time.time() * 1000
    node_times = json.loads(await child.line(60))
    await child.finish()
    assert await redis_state.get("counters", "c") == {"count": 2 * n, "node": n, "python": n}
    # the two ran at the same time (else this would not test anything)
    assert node_times["started"] < py_ended and py_started < node_times["ended"]


# ---- (c) Redis: each hears the other's events --------------------------------------------


async def test_redis_python_listener_hears_node_writes(redis_server, redis_prefix, redis_state, node):
    events, of_k = [], []
    redis_state.on_change(events.append)
    redis_state.on_change(of_k.append, group="jobs", key="k")
    node(
        f"""
    (async () => {{
      const state = await StateManager.open({{ adapter: 'redis', url: {js(redis_server.url)}, prefix: {js(redis_prefix)} }})
      await state.set('jobs', 'k', {{ step: 0, note: 'ünï ✓' }})
      for (let i = 0; i < 20; i++) await state.update('jobs', 'k', [{{ type: 'increment', path: 'step', by: 1 }}])
      await state.set('jobs', 'other', [1.5])
      await state.delete('jobs', 'k')
      await state.set('jobs', 'gone', 1)
      await state.clear('jobs')
      await state.close()
    }})()
    """
    )
    # 1 created + 20 updated + 1 created + 1 deleted + 1 created + 2 cleared
    await wait_for_slowly(lambda: len(events) == 26, what="26 events from the Node process")
    await asyncio.sleep(0.2)
    assert len(events) == 26
    assert [e["new_value"] for e in of_k] == [{"step": i, "note": "ünï ✓"} for i in range(21)] + [None]
    assert of_k[0] == {
        "type": "state",
        "event_type": "state:created",
        "group_id": "jobs",
        "item_id": "k",
        "old_value": None,
        "new_value": {"step": 0, "note": "ünï ✓"},
    }
    assert [e["event_type"] for e in of_k] == ["state:created"] + ["state:updated"] * 20 + ["state:deleted"]
    assert of_k[-1]["old_value"] == {"step": 20, "note": "ünï ✓"}
    cleared = [e for e in events if e.get("reason") == "cleared"]
    assert sorted(e["item_id"] for e in cleared) == ["gone", "other"]


async def test_redis_node_listener_hears_python_writes(redis_server, redis_prefix, redis_state, children):
    count = 5
    child = await children(
        f"""
    (async () => {{
      const state = await StateManager.open({{ adapter: 'redis', url: {js(redis_server.url)}, prefix: {js(redis_prefix)} }})
      let seen = 0
      let done
      const finished = new Promise((resolve) => (done = resolve))
      state.onChange((event) => {{
        console.log(JSON.stringify(event))
        if (++seen === {count}) done()
      }}, {{ group: 'jobs', key: 'k' }})
      // a pending promise does not keep Node alive, and the manager's event reader does not either
      const keepAlive = setInterval(() => {{}}, 1000)
      console.log('ready')
      await finished
      clearInterval(keepAlive)
      await state.close()
    }})().catch((err) => {{ console.error(err); process.exit(1) }})
    """
    )
    await child.expect("ready")
    await redis_state.set("other", "k", "not for this listener")
    await redis_state.set("jobs", "k", {"n": 0, "s": "日本語"})
    for _ in range(3):
        await redis_state.update("jobs", "k", [{"type": "increment", "path": "n", "by": 1.5}])
    await redis_state.delete("jobs", "k")
    heard = [json.loads(await child.line()) for _ in range(count)]
    await child.finish()
    assert heard[0] == {
        "type": "state",
        "event_type": "state:created",
        "group_id": "jobs",
        "item_id": "k",
        "old_value": None,
        "new_value": {"n": 0, "s": "日本語"},
    }
    assert [e["event_type"] for e in heard] == ["state:created", "state:updated", "state:updated", "state:updated", "state:deleted"]
    assert [e["new_value"] and e["new_value"]["n"] for e in heard] == [0, 1.5, 3, 4.5, None]
    assert heard[-1]["old_value"] == {"n": 4.5, "s": "日本語"}


# ---- (d) file store: written and closed by one, opened by the other ------------------------


NODE_WRITE_FILE = """
(async () => {
  const [path, valuesJson] = process.argv.slice(1)
  const state = await StateManager.open({ adapter: 'file', path, sync: 'everysec' })
  for (const [key, value] of Object.entries(JSON.parse(valuesJson))) await state.set('shared', key, value)
  await state.set('shared', 'number', 1)            // overwrite: keeps its place
  await state.delete('shared', 'text')
  await state.set('shared', 'text', 'moved to the end') // delete then set: at the end
  await state.update('shared', 'order', [{ type: 'increment', path: 'paid', by: 1 }, { type: 'set', path: 'status', value: 'paid' }])
  await state.set('shared', 'lone', '\\ud800 half a pair')
  await state.set('sessions', 'long', { user: 'ada' }, { ttl: 3600 })
  await state.set('sessions', 'short', { user: 'bob' }, { ttl: 0.2 })
  await state.set('other', 'k', { unicode: 'ключ' })
  await state.close()
  console.log('closed')
})().catch((err) => { console.error(err); process.exit(1) })
"""


async def test_file_store_written_by_node_opens_in_python(tmp_path, node):
    path = str(tmp_path / "store")
    assert node(NODE_WRITE_FILE, path, json.dumps(SHARED)).stdout.strip() == "closed"
    await asyncio.sleep(0.3)  # the short TTL passes while nobody has the store open
    async with StateManager.open(adapter="file", path=path) as state:
        expected = dict(SHARED)
        expected["number"] = 1
        expected["order"] = dict(SHARED["order"], paid=1, status="paid")
        del expected["text"]
        expected["text"] = "moved to the end"
        expected["lone"] = "\ud800 half a pair"
        assert await state.keys("shared") == list(expected)
        assert await state.entries("shared") == [{"key": k, "value": v} for k, v in expected.items()]
        assert await state.list("shared") == list(expected.values())
        floats = await state.get("shared", "floats")
        assert floats == SHARED["floats"] and all(type(f) is float for f in floats)
        assert [type(i) for i in await state.get("shared", "ints")] == [int] * 4
        assert await state.list_groups() == ["other", "sessions", "shared"]
        assert await state.get("sessions", "long") == {"user": "ada"}  # TTL'd, still there
        assert await state.get("sessions", "short") is None  # expired
        assert await state.keys("sessions") == ["long"]
        assert await state.get("other", "k") == {"unicode": "ключ"}
        # Python goes on writing to it; Node reads that next
        assert await state.update("shared", "order", [{"type": "increment", "path": "paid", "by": 1}]) == dict(
            expected["order"], paid=2
        )
    seen = json.loads(
        node(
            """
    (async () => {
      const state = await StateManager.open({ adapter: 'file', path: process.argv[1] })
      console.log(JSON.stringify({ order: await state.get('shared', 'order'), keys: await state.keys('shared') }))
      await state.close()
    })()
    """,
            path,
        ).stdout
    )
    assert seen["order"]["paid"] == 2
    assert seen["keys"] == list(expected)


async def test_file_store_written_by_python_opens_in_node(tmp_path, node):
    path = str(tmp_path / "store")
    async with StateManager.open(adapter="file", path=path, sync="everysec") as state:
        for key, value in SHARED.items():
            await state.set("shared", key, value)
        await state.set("shared", "number", 1)
        await state.delete("shared", "text")
        await state.set("shared", "text", "moved to the end")
        await state.update("shared", "order", [{"type": "increment", "path": "paid", "by": 1}, {"op": "add", "path": "/status", "value": "paid"}])
        await state.set("shared", "whole float", 2.0)
        await state.set("sessions", "long", {"user": "ada"}, ttl=3600)
        await state.set("sessions", "short", {"user": "bob"}, ttl=0.2)
        await state.set("other", "k", {"unicode": "ключ"})
    await asyncio.sleep(0.3)
    out = node(
        """
    (async () => {
      const state = await StateManager.open({ adapter: 'file', path: process.argv[1] })
      const seen = {
        entries: await state.entries('shared'),
        groups: await state.listGroups(),
        sessions: await state.entries('sessions'),
        short: await state.get('sessions', 'short'),
        other: await state.get('other', 'k'),
        floatsAreNumbers: (await state.get('shared', 'floats')).every((f) => typeof f === 'number'),
      }
      await state.update('shared', 'order', [{ type: 'increment', path: 'paid', by: 1 }])
      await state.close()
      console.log(JSON.stringify(seen))
    })()
    """,
        path,
    ).stdout
    seen = json.loads(out)
    expected = dict(SHARED)
    expected["number"] = 1
    expected["order"] = dict(SHARED["order"], paid=1, status="paid")
    del expected["text"]
    expected["text"] = "moved to the end"
    expected["whole float"] = 2  # JavaScript has one number type: 2.0 is 2 there
    assert seen["entries"] == [{"key": k, "value": v} for k, v in expected.items()]
    assert seen["groups"] == ["other", "sessions", "shared"]
    assert seen["sessions"] == [{"key": "long", "value": {"user": "ada"}}]
    assert seen["short"] is None
    assert seen["other"] == {"unicode": "ключ"}
    assert seen["floatsAreNumbers"] is True
    # and back once more: Node's update is in the files Python opens
    async with StateManager.open(adapter="file", path=path) as state:
        assert (await state.get("shared", "order"))["paid"] == 2
        assert await state.get("shared", "whole float") == 2.0


async def test_file_store_is_locked_against_the_other_language(tmp_path, children):
    """While Python holds the store, a Node process opening it gets LOCKED (naming the pid)."""
    path = str(tmp_path / "store")
    async with StateManager.open(adapter="file", path=path) as state:
        await state.set("g", "k", 1)
        child = await children(
            """
        StateManager.open({ adapter: 'file', path: process.argv[1] })
          .then(() => console.log('opened'), (err) => console.log(JSON.stringify({ code: err.code, message: err.message })))
        """,
            path,
        )
        result = json.loads(await child.line())
        await child.finish()
        assert result["code"] == "LOCKED"
        assert str(os.getpid()) in result["message"]
