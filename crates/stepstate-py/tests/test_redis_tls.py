"""`rediss://` and ACL users from Python: a private redis-server on TLS only, with a certificate
authority made for the test (openssl), and the `tls={"ca": pem}` option that trusts it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from stepstate import StateError, StateManager

from conftest import _free_port


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_server(redis_server, tmp_path_factory):
    if shutil.which("openssl") is None:
        message = "openssl is not installed: the rediss:// test cannot make its certificates"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI does not allow skipping it")
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=stepstate test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "san.ext", "-out", "server.pem", cwd=folder)
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--tls-cert-file", str(folder / "server.pem"), "--tls-key-file", str(folder / "server.key"),
         "--tls-ca-cert-file", str(folder / "ca.pem"), "--tls-auth-clients", "no",
         "--user", "default", "off", "--user", "step", "on", ">s3cret", "~*", "&*", "+@all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _listens(port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the TLS redis-server did not start")
        time.sleep(0.02)
    yield port, (folder / "ca.pem").read_text()
    process.kill()
    process.wait()


async def test_rediss_with_a_certificate_authority_of_ones_own_and_an_acl_user(tls_server, redis_prefix):
    port, ca = tls_server
    async with StateManager.open(
        adapter="redis", host="127.0.0.1", port=port, username="step", password="s3cret", tls={"ca": ca}, prefix=redis_prefix
    ) as state:
        await state.set("g", "k", {"secure": True})
        assert await state.get("g", "k") == {"secure": True}
    async with StateManager.open(
        adapter="redis", url=f"rediss://step:s3cret@127.0.0.1:{port}", tls={"ca": ca}, prefix=redis_prefix
    ) as state:
        assert await state.get("g", "k") == {"secure": True}


async def test_a_wrong_password_says_so(tls_server, redis_prefix):
    port, ca = tls_server
    with pytest.raises(StateError) as raised:
        await StateManager.open(
            adapter="redis", url=f"rediss://step:wrong@127.0.0.1:{port}", tls={"ca": ca}, prefix=redis_prefix, command_timeout=2
        )
    assert raised.value.code == "BACKEND_UNAVAILABLE"
    assert "password" in str(raised.value).lower() or "auth" in str(raised.value).lower()


async def test_a_server_certificate_from_an_unknown_authority_is_refused(tls_server, redis_prefix):
    port, _ = tls_server
    with pytest.raises(StateError) as raised:
        await StateManager.open(
            adapter="redis", url=f"rediss://step:s3cret@127.0.0.1:{port}", prefix=redis_prefix, command_timeout=2
        )
    assert raised.value.code == "BACKEND_UNAVAILABLE"
