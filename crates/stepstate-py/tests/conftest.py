"""Fixtures of the Python tests.

- ``state``: a fresh in-memory manager, or (with ``STEPSTATE_TEST_ADAPTER=file``) a fresh file
  store in a temporary directory, so the same tests run on both stores.
- ``make_state``: opens stores of that adapter with extra options (``ttl``, ``max_value_bytes``).
- ``redis_server``: a private ``redis-server`` on a free loopback port (never 6379, where a
  shared one may listen), started once per session and stopped by pid. Without the binary the
  Redis tests skip loudly; under ``CI=true`` that is a failure.
- ``redis_url``: a fresh prefix on that server for each test.
- ``node``: runs a Node.js script with the repository's built addon (for the cross-language
  tests).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from stepstate import StateManager

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=[os.environ.get("STEPSTATE_TEST_ADAPTER", "memory")])
async def state(request, tmp_path):
    if request.param == "file":
        manager = await StateManager.open(adapter="file", path=str(tmp_path / "store"))
    else:
        manager = StateManager()
    yield manager
    await manager.close()


@pytest.fixture
async def make_state(tmp_path):
    """Opens stores of the adapter under test (STEPSTATE_TEST_ADAPTER) with extra options;
    closes them at the end of the test."""
    made = []

    async def make(**options):
        if os.environ.get("STEPSTATE_TEST_ADAPTER", "memory") == "file":
            options = dict(adapter="file", path=str(tmp_path / f"store{len(made)}"), **options)
        manager = await StateManager.open(**options)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of the tests' own, on a free port; ``stop``/``start`` keep the port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def redis_server():
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the Redis tests cannot run (install Redis 7 to run them)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI does not allow skipping them")
        pytest.skip(message)
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def node():
    """Runs ``script`` (JavaScript source) with node, ``require('stepstate')`` resolving to this
    repository; returns the completed process (raises when it fails)."""
    if not (ROOT / "binding.js").exists():
        pytest.fail("the Node addon is not built: run `npm run build` (npm test builds it first)")

    def run(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(os.environ, NODE_PATH=str(ROOT.parent))
        source = "const { StateManager } = require(%r);\n" % str(ROOT) + script
        result = subprocess.run(
            ["node", "-e", source, *args], capture_output=True, text=True, timeout=timeout, env=env
        )
        if result.returncode != 0:
            raise AssertionError(f"node failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return run
