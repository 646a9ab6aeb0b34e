"""Scenario 10: payloads are JSON only; AUTH/ACL and TLS work; secrets stay secret.

* No module of pyqueue imports pickle, marshal, shelve or dill. The one place
  that unpickles is multiprocessing's private pipe between a worker and its own
  sandbox children (``sandbox.py``): it carries values already decoded from
  JSON and handler results, never bytes read from Redis.
* A queue and a worker run end to end as an ACL user on a server whose default
  user may only PING, and over TLS (``rediss://``) with a self-signed CA made
  here with the ``openssl`` CLI.
* A password never appears in logs, emitted errors, exception messages (wrong
  password, unreachable server, bad URL) or job hashes.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

import pyqueue
from pyqueue import Queue, Worker, WorkerOptions
from pyqueue.embedded import RedisServer, free_port
from pyqueue.errors import PyQueueError

SECRET = "s3cr3t-Tok3n-9f2e"
SRC = Path(pyqueue.__file__).parent
_BANNED = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}


def test_no_module_imports_an_unpickler() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in _BANNED]
    assert offenders == []


async def _round_trip(url: str, queue_name: str) -> None:
    done = asyncio.Event()

    async def handler(job: Any) -> str:
        done.set()
        return "ok"

    async with (
        Queue(queue_name, url) as q,
        Worker(q, handler, options=WorkerOptions(drain_delay=0.5)),
    ):
        job = await q.add({"hello": "world"})
        await asyncio.wait_for(done.wait(), 10)
        assert await q.wait_until_finished(job.id) == "ok"


async def test_acl_user(queue_name: str, caplog: pytest.LogCaptureFixture) -> None:
    args = ["--user", "default", "on", "nopass", "-@all", "+ping",
            "--user", "alice", "on", f">{SECRET}", "~*", "&*", "+@all"]
    with RedisServer(extra_args=args) as server:
        url = f"redis://alice:{SECRET}@127.0.0.1:{server.port}/0"
        with pytest.raises(redis.exceptions.ResponseError):  # unauthenticated: refused
            redis.Redis.from_url(server.url).set("x", 1)
        caplog.set_level(logging.DEBUG)
        await _round_trip(url, queue_name)
        # Wrong password: a clear error that does not repeat the secret.
        wrong = f"redis://alice:{SECRET}x@127.0.0.1:{server.port}/0"
        with pytest.raises((RedisError, PyQueueError)) as caught:
            async with Queue(queue_name, wrong) as q:
                await q.add({})
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)
        print(f"\nsecurity: wrong password -> {type(caught.value).__name__}: {caught.value}")
        for raw in redis.Redis.from_url(url).keys("*"):
            assert SECRET.encode() not in raw
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_secrets_not_in_worker_errors_or_logs(
    queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens: the worker fails fast at start
    url = f"redis://bob:{SECRET}@127.0.0.1:{port}/0"
    options = WorkerOptions(retry_process_delay=50, drain_delay=0.2)
    worker = Worker(queue_name, lambda job: None, redis_url=url, options=options)
    with pytest.raises(RedisConnectionError) as failed:
        await worker.start()
    await worker.close()
    chain: list[BaseException] = []
    cause: BaseException | None = failed.value
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for exc in chain:
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)
    # A Redis lost later: the errors and log lines of the outage.
    errors: list[BaseException] = []
    with RedisServer(extra_args=["--requirepass", SECRET]) as server:
        url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
        worker = Worker(queue_name, lambda job: None, redis_url=url, options=options)
        worker.on("error", errors.append)
        await worker.start()
        server.stop()
        await asyncio.sleep(1.0)
        await worker.close()
    assert errors, "expected connection errors"
    for exc in errors:
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    with pytest.raises(PyQueueError) as bad:
        Queue(queue_name, f"redis://bob:{SECRET}@host:notaport/0")
    assert SECRET not in str(bad.value)


async def test_tls(tmp_path: Path, queue_name: str) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    ca_key, ca, key, csr, cert = (tmp_path / n for n in
                                  ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=pyqueue-test-ca", "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "1", "-extfile", ext, "-out", cert],
    ):
        subprocess.run(  # noqa: ASYNC221 - a one-off certificate, before any I/O
            ["openssl", *map(str, argv)], check=True, capture_output=True
        )
    tls_port = free_port()
    server = RedisServer(extra_args=[
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    ])
    try:
        server.start()
    except RuntimeError as exc:
        server.close()
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server is built without TLS: {exc}")
        raise
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
        await _round_trip(url, queue_name)
        # A client that does not trust the CA is refused.
        with pytest.raises((RedisError, OSError)):
            async with Queue(queue_name, f"rediss://127.0.0.1:{tls_port}/0") as q:
                await q.add({})
    finally:
        server.close()
