"""A lean pipelining Redis connection for the per-job hot path.

Why not redis-py here: measured on this project's benchmark machine, a redis-py
asyncio ``evalsha`` round trip costs ~2.7x the client CPU of writing RESP to an
asyncio transport and parsing replies with hiredis, and per-job client CPU is
what limits a queue's throughput. This connection does only that: it encodes
commands, keeps any number of requests in flight (so concurrent jobs pipeline
naturally on one socket), and resolves replies in order. Everything else keeps
using redis-py.

Errors follow redis-py's types, so callers see one vocabulary: a dropped socket
fails every pending request with ``redis.exceptions.ConnectionError`` and the
next call reconnects; error replies raise ``ResponseError`` / ``NoScriptError``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = str | int | float | bytes


def _encode(args: tuple[Arg, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    append = out.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()  # type: ignore[union-attr]
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg  # type: ignore[str-format]
        else:
            data = str(arg).encode()
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(out)


def _reply_error(message: str) -> ResponseError:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=_reply_error)
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            waiter = self.pending.popleft()
            if waiter.done():
                continue
            if isinstance(reply, ResponseError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        while self.pending:
            waiter = self.pending.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


class FastConnection:
    """One asyncio connection speaking RESP2 through hiredis.

    Args:
        url: A ``redis://``, ``rediss://`` or ``unix://`` URL (AUTH, db and TLS
            options as redis-py reads them).
        kwargs: Alternatively, redis-py connection keyword arguments.
    """

    def __init__(self, url: str | None = None, kwargs: dict[str, Any] | None = None) -> None:
        params = dict(parse_url(url)) if url is not None else dict(kwargs or {})  # type: ignore[no-untyped-call]
        cls = params.pop("connection_class", None)
        self._path: str | None = params.get("path")
        self._host: str = params.get("host") or "127.0.0.1"
        self._port: int = int(params.get("port") or 6379)
        self._db = int(params.get("db") or 0)
        user = params.get("username")
        password = params.get("password")
        self._username = unquote(user) if isinstance(user, str) else user
        self._password = unquote(password) if isinstance(password, str) else password
        cls_name = getattr(cls, "__name__", "")
        self._ssl = self._ssl_context(params) if "SSL" in cls_name or params.get("ssl") else None
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    @staticmethod
    def _ssl_context(params: dict[str, Any]) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=params.get("ssl_ca_certs"))
        if params.get("ssl_certfile"):
            context.load_cert_chain(params["ssl_certfile"], params.get("ssl_keyfile"))
        reqs = params.get("ssl_cert_reqs")
        if reqs in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif params.get("ssl_check_hostname") is False:
            context.check_hostname = False
        return context

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            proto = self._protocol
            if proto is not None and proto.lost is None:
                return proto
            loop = asyncio.get_running_loop()
            try:
                if self._path is not None:
                    _, proto = await loop.create_unix_connection(_Protocol, self._path)
                else:
                    _, proto = await loop.create_connection(
                        _Protocol, self._host, self._port, ssl=self._ssl
                    )
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            self._protocol = proto
            if self._password is not None:
                auth = (self._username, self._password) if self._username else (self._password,)
                await self._send(proto, ("AUTH", *auth))
            if self._db:
                await self._send(proto, ("SELECT", self._db))
            return proto

    @staticmethod
    def _send(proto: _Protocol, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        if proto.lost is not None or proto.transport is None:
            raise proto.lost or RedisConnectionError("not connected")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proto.pending.append(waiter)
        proto.transport.write(_encode(args))
        return waiter

    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply."""
        proto = self._protocol
        if proto is None or proto.lost is not None:
            proto = await self._connect()
        return await self._send(proto, args)

    async def pipeline(self, commands: list[tuple[Arg, ...]]) -> list[Any]:
        """Send many commands in one write; return every reply (errors as values)."""
        proto = self._protocol
        if proto is None or proto.lost is not None:
            proto = await self._connect()
        if proto.transport is None or proto.lost is not None:
            raise proto.lost or RedisConnectionError("not connected")
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[Any]] = []
        for _ in commands:
            waiter: asyncio.Future[Any] = loop.create_future()
            proto.pending.append(waiter)
            waiters.append(waiter)
        proto.transport.write(b"".join(_encode(cmd) for cmd in commands))
        return list(await asyncio.gather(*waiters, return_exceptions=True))

    async def evalsha(
        self, sha: str, source: str | bytes, keys: list[str], args: list[Arg]
    ) -> Any:
        """EVALSHA, falling back to EVAL (which caches the script) on NOSCRIPT."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", source, len(keys), *keys, *args)

    def close(self) -> None:
        proto, self._protocol = self._protocol, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
