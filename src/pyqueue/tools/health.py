"""A tiny HTTP server for probes and scrapes: ``/healthz``, ``/readyz`` and ``/metrics``.

It runs on the worker's own event loop, on purpose: ``/healthz`` answering at all is
the proof that the loop is alive (a handler blocking the loop makes it time out,
which is what a liveness probe should see). Standard library only: HTTP/1.0-style,
one request per connection, GET and HEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pyqueue import Worker

Readiness = Callable[[], Awaitable[tuple[bool, str]]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
REDIS_PING_TIMEOUT = 2.0


class ProbeServer:
    """Serve probes (and optionally metrics) on ``host:port``; ``port=0`` picks a free one.

    Args:
        ready: Coroutine returning ``(ready, reason)`` for ``/readyz``.
        metrics: Returns ``(body, content type)`` for ``/metrics``; None: no such route.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ready: Readiness,
        metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._ready = ready
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            while (header := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n",
                                                                                  b"\n", b""):
                del header
            parts = line.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            status, body, ctype = await self._route(method, path)
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(self, method: str, path: str) -> tuple[int, bytes, str]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return 405, b"method not allowed\n", text
        if path == "/healthz":
            return 200, b"ok\n", text
        if path == "/readyz":
            ok, reason = await self._ready()
            return (200 if ok else 503), f"{reason}\n".encode(), text
        if path == "/metrics" and self._metrics is not None:
            body, ctype = await self._metrics()
            return 200, body, ctype
        return 404, b"not found\n", text


async def redis_reachable(client: aioredis.Redis) -> str | None:
    """None when Redis answers PING in time, else why not."""
    try:
        await asyncio.wait_for(client.ping(), REDIS_PING_TIMEOUT)
    except (RedisError, OSError, TimeoutError) as exc:
        return f"redis unreachable: {exc or type(exc).__name__}"
    return None


def workers_ready(workers: Sequence[Worker]) -> Readiness:
    """Ready when every worker is running (fetching, not closing) and Redis answers."""

    async def ready() -> tuple[bool, str]:
        for worker in workers:
            if not worker.running:
                return False, f"worker of {worker.queue.name!r} is not running"
        for worker in workers:
            problem = await redis_reachable(worker.queue.client)
            if problem is not None:
                return False, problem
        return True, "ready"

    return ready


