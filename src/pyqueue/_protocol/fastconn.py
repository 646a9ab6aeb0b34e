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

A silent socket (a black-holed or half-open connection) is detected by a
watchdog, not by a timer per request: when requests are pending and no byte has
arrived for ``socket_timeout`` seconds (the URL's ``socket_timeout``, else
:data:`DEFAULT_TIMEOUT`), the connection is aborted, which fails every pending
request with ``ConnectionError``. TCP keepalive is on as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol, cast
from urllib.parse import unquote

import hiredis
from redis.connection import parse_url
from redis.exceptions import (
    AskError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from pyqueue.errors import TRANSIENT_CODES, TransientServerError, transient_code

Arg = str | int | float | bytes

DEFAULT_TIMEOUT = 30.0
"""Seconds without any reply byte, while requests are pending, before giving up."""


def _encode_args(args: Iterable[Arg], out: list[bytes]) -> None:
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
        append(b"$%d\r\n%b\r\n" % (len(data), data))


def encode(args: tuple[Arg, ...]) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    _encode_args(args, out)
    return b"".join(out)


class Template:
    """A command whose arguments are fixed but for a few, encoded once.

    Encoding twenty-odd arguments per job was a tenth of the worker's CPU on
    the completing path, where all but five are the same for every job.

    Args:
        args: The command; each argument that is one of ``holes`` (compared by
            identity) is left open, to be filled by :meth:`encode`.
        holes: The marker objects, in the order they appear in ``args``.
    """

    __slots__ = ("_args", "_fill", "_format", "_where")

    def __init__(self, args: tuple[Arg, ...], holes: tuple[Arg, ...]) -> None:
        self._args = args
        self._where = [i for i, arg in enumerate(args) if any(arg is h for h in holes)]
        found = tuple(args[i] for i in self._where)
        if len(found) != len(holes) or any(a is not h for a, h in zip(found, holes, strict=True)):
            raise ValueError("each hole must appear once, in the order given")
        # One bytes %-format per call: the fixed parts (with % escaped) around a
        # "$<len>\r\n<bytes>\r\n" slot per hole.
        chunks = [b"*%d\r\n" % len(args)]
        for i, arg in enumerate(args):
            if i in self._where:
                chunks.append(b"$%d\r\n%b\r\n")
            else:
                fixed: list[bytes] = []
                _encode_args((arg,), fixed)
                chunks.append(fixed[0].replace(b"%", b"%%"))
        self._format = b"".join(chunks)
        self._fill = _unrolled_filler(holes, self._format)

    def encode(self, values: tuple[Arg, ...]) -> bytes:
        if self._fill is not None:
            unrolled = self._fill(values)
            if unrolled is not None:
                return unrolled
        filled: list[Any] = []
        append = filled.append
        # _encode_args's conversion, inlined: this runs once per job, where a call per
        # value showed in the profile.
        for value in values:
            kind = type(value)
            if kind is str:
                data = value.encode()  # type: ignore[union-attr]
            elif kind is bytes:
                data = value
            elif kind is int:
                data = b"%d" % value  # type: ignore[str-format]
            else:
                data = str(value).encode()
            append(len(data))
            append(data)
        return self._format % tuple(filled)

    def filled(self, values: tuple[Arg, ...]) -> tuple[Arg, ...]:
        """The whole argument list (for a redirection, or EVAL after NOSCRIPT)."""
        args = list(self._args)
        for i, value in zip(self._where, values, strict=True):
            args[i] = value
        return tuple(args)


def _unrolled_filler(
    holes: tuple[Arg, ...], format_: bytes
) -> Callable[[tuple[Arg, ...]], bytes | None] | None:
    """Template.encode unrolled for holes marked by str and int markers, or None.

    The generated function takes values of exactly the markers' types (str for a
    str marker, int for an int one) and returns None for any other, which the
    generic loop then converts. Unrolled, the job-completing template encodes in
    about 60 % of the loop's instructions (measured with callgrind), and it runs
    once per job. Generated source, as dataclasses and namedtuple do, because
    the number of holes is the template's.
    """
    if not holes or any(type(h) not in (str, int) for h in holes):
        return None
    names = [f"v{i}" for i in range(len(holes))]
    pairs = list(zip(names, holes, strict=True))
    kinds = " and ".join(f"type({n}) is {type(h).__name__}" for n, h in pairs)
    converts = "; ".join(
        f"{n} = {n}.encode()" if type(h) is str else f"{n} = b'%d' % {n}" for n, h in pairs
    )
    source = (
        f"def fill(values):\n"
        f"    {', '.join(names)}, = values\n"
        f"    if not ({kinds}):\n"
        f"        return None\n"
        f"    {converts}\n"
        f"    return format_ % ({', '.join(f'len({n}), {n}' for n in names)},)\n"
    )
    namespace: dict[str, Any] = {"format_": format_}
    exec(source, namespace)  # our own source, built from the holes' count and types
    return cast("Callable[[tuple[Arg, ...]], bytes | None]", namespace["fill"])


_REPLY_ERRORS: dict[str, type[ResponseError]] = {
    "NOSCRIPT": NoScriptError, "MOVED": MovedError, "ASK": AskError,
    "TRYAGAIN": TryAgainError, "READONLY": ReadOnlyError,
}
# Followed here (TRYAGAIN on a cluster, READONLY by reconnecting) before they
# become TransientServerError.
_TRANSIENT = frozenset(TRANSIENT_CODES) - {"TRYAGAIN", "READONLY"}
_QUIET_CHECKS = 4
_BATCH = 16
"""Requests coalesced into one send at most (see _Protocol.write)."""
_REDIRECTS = 5
"""MOVED/ASK/TRYAGAIN replies followed for one command before giving up."""


def _reply_error(message: str) -> Exception:
    code, _, rest = message.partition(" ")
    kind = _REPLY_ERRORS.get(code)
    if kind is None:
        transient = transient_code(message) if code in _TRANSIENT or code == "ERR" else None
        if transient is not None:
            # LOADING, BUSY, MASTERDOWN, CLUSTERDOWN, NOREPLICAS: not now, not run
            # (and READONLY/NOREPLICAS inside a script, as Redis < 7 words them).
            return TransientServerError(message, code=transient)
        return ResponseError(message)
    if issubclass(kind, AskError):  # redis-py's MOVED/ASK take "<slot> <host>:<port>"
        try:
            return kind(rest)
        except ValueError:
            return ResponseError(message)
    return kind(message)


class Locator(Protocol):
    """Where the server is right now (a cluster slot's master, Sentinel's master)."""

    check_role: bool
    """Check ``ROLE`` after connecting (Sentinel: its answer may be stale)."""

    async def locate(self) -> tuple[str, int]: ...

    def forget(self, moved_to: tuple[str, int] | None = None) -> None: ...

    def register(self, conn: Any) -> None:
        """Call ``conn.sever()`` (from any thread) when the server moves."""


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.reader = hiredis.Reader(replyError=_reply_error)
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self._outbox: list[bytes] = []
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        # The watchdog's view, kept without reading the clock per reply: chunks
        # received so far, that count at the last check, and how many checks in a
        # row have found requests pending and nothing new (-1 right after a request
        # went to an idle socket, so that it too gets the whole timeout).
        self.heard = 0
        self._heard_at_check = 0
        self.quiet = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False

    def write(self, data: bytes) -> None:
        """Send bytes; while other requests are in flight, coalesce them for one send.

        Coalescing is what lets many concurrent jobs share a round trip (and
        spares a syscall per command on both ends) at a cost of one loop turn.
        A request to an idle socket (the caller's is the only one pending) goes
        out at once: nothing else is coming to share its send, and at
        concurrency 1 that loop turn sits on every job's critical path.

        At most ``_BATCH`` requests wait for the loop turn. When a whole batch of
        replies arrives at once (fifty jobs at concurrency 50), their finishing
        calls would otherwise all leave together after the last handler, and
        Redis would sit idle while the worker works and the worker while Redis
        works. Sent in slices, Redis runs the first ones while the worker is
        still on the rest (benchmarks/: W2 at concurrency 50).
        """
        if not self._outbox:
            if len(self.pending) <= 1 and self.transport is not None and self.lost is None:
                self.transport.write(data)
                return
            self.loop.call_soon(self._flush)
        self._outbox.append(data)
        if len(self._outbox) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._outbox:
            return  # sent already, by a full batch
        data, self._outbox = b"".join(self._outbox), []
        if self.transport is not None and self.lost is None:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports have the same methods but
        # do not subclass asyncio.Transport.
        self.transport = cast("asyncio.Transport", transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._watchdog = self.loop.call_later(self.timeout / 4, self._check)

    def _check(self) -> None:
        if self.lost is not None or self.transport is None:
            return
        if self.pending and self.heard == self._heard_at_check:
            self.quiet += 1
            # Checks come every timeout/4: four quiet ones in a row mean at least
            # the whole timeout without a byte.
            if self.quiet >= _QUIET_CHECKS:
                self._timed_out = True
                self.transport.abort()
                return
        else:
            self.quiet = 0
        self._heard_at_check = self.heard
        self._watchdog = self.loop.call_later(self.timeout / 4, self._check)

    def data_received(self, data: bytes) -> None:
        self.heard += 1
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            waiter = self.pending.popleft()
            if waiter.done():
                continue
            if isinstance(reply, Exception):  # ResponseError or TransientServerError
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        reason = f"no reply within {self.timeout:g}s" if self._timed_out else str(exc or "closed")
        self.lost = RedisConnectionError(f"connection to Redis lost: {reason}")
        while self.pending:
            waiter = self.pending.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


def cluster_node_error(exc: Exception) -> ResponseError:
    """A redirection a plain connection got: the URL names one node of a Redis Cluster."""
    return ResponseError(
        f"MOVED {exc}: this server is a Redis Cluster node; connect with a "
        "redis+cluster:// URL or a RedisCluster client, and a hash-tag prefix"
    )


def _address_of(exc: Exception) -> tuple[str, int] | None:
    # "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>"
    host, _, port = str(exc).rpartition(" ")[2].rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


class FastConnection:
    """One asyncio connection speaking RESP2 through hiredis.

    Args:
        url: A ``redis://``, ``rediss://`` or ``unix://`` URL (AUTH, db and TLS
            options as redis-py reads them).
        kwargs: Alternatively, redis-py connection keyword arguments.
        locator: Asked for the address at every connect (Cluster, Sentinel); then
            ``host``/``port`` are ignored.
        cluster: Follow ``MOVED``/``ASK``/``TRYAGAIN`` replies (the locator must
            be the slot's route).
    """

    def __init__(
        self,
        url: str | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        locator: Locator | None = None,
        cluster: bool = False,
    ) -> None:
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
        self._timeout = float(params.get("socket_timeout") or DEFAULT_TIMEOUT)
        self._connect_timeout = float(params.get("socket_connect_timeout") or self._timeout)
        self._credentials = params.get("credential_provider")
        self._locator = locator
        self._cluster = cluster
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
            if self._locator is not None:
                if proto is not None:
                    # The last connection was lost: its server may have gone silent
                    # (a frozen node still accepts TCP): ask where to go afresh.
                    self._locator.forget()
                address = await self._locator.locate()
            else:
                address = None
            proto = await self._open(address)
            await self._handshake(proto)
            if self._locator is not None and self._locator.check_role:
                await self._check_role(proto, address)
            # Published only now: a caller that found this socket earlier could
            # run its command before AUTH or SELECT (in db 0, or refused).
            self._protocol = proto
            if self._locator is not None:
                self._locator.register(self)
            return proto

    async def _check_role(self, proto: _Protocol, address: tuple[str, int] | None) -> None:
        """Sentinel named this server master; a stale answer would have us write to a replica."""
        async with asyncio.timeout(self._connect_timeout):
            role = await self._send(proto, ("ROLE",))
        first = role[0] if isinstance(role, list) and role else role
        if first != b"master":
            proto.abort()
            if self._locator is not None:
                self._locator.forget()
            shown = first.decode() if isinstance(first, bytes) else str(first)
            raise TransientServerError(
                f"{address} is a {shown}, not the master Sentinel named (a failover is under "
                "way); reconnecting", code="READONLY",
            )

    def sever(self) -> None:
        """Cut the socket from any thread: pending calls fail, the next one reconnects."""
        proto = self._protocol
        if proto is not None and proto.transport is not None:
            sock = proto.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    async def _open(self, address: tuple[str, int] | None) -> _Protocol:
        loop = asyncio.get_running_loop()
        factory = functools.partial(_Protocol, self._timeout)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if address is not None:
                    _, proto = await loop.create_connection(
                        factory, address[0], address[1], ssl=self._ssl
                    )
                elif self._path is not None:
                    _, proto = await loop.create_unix_connection(factory, self._path)
                else:
                    _, proto = await loop.create_connection(
                        factory, self._host, self._port, ssl=self._ssl
                    )
        except (OSError, TimeoutError) as exc:
            if self._locator is not None:
                self._locator.forget()
            raise RedisConnectionError(f"cannot connect to Redis: {exc!r}") from exc
        return proto

    async def _auth(self) -> tuple[Arg, ...] | None:
        username, password = self._username, self._password
        if self._credentials is not None:
            getter = getattr(self._credentials, "get_credentials_async", None)
            creds = await getter() if getter else self._credentials.get_credentials()
            username, password = (None, creds[0]) if len(creds) == 1 else creds
        if password is None:
            return None
        return ("AUTH", username, password) if username else ("AUTH", password)

    async def _handshake(self, proto: _Protocol) -> None:
        """AUTH and SELECT, pipelined; the socket is closed if either is refused."""
        replies: list[asyncio.Future[Any]] = []
        auth = await self._auth()
        if auth is not None:
            replies.append(self._send(proto, auth))
        if self._db:
            replies.append(self._send(proto, ("SELECT", self._db)))
        if not replies:
            return
        try:
            async with asyncio.timeout(self._connect_timeout):
                results = await asyncio.gather(*replies, return_exceptions=True)
        except TimeoutError as exc:
            proto.abort()
            raise RedisConnectionError("Redis did not answer AUTH/SELECT in time") from exc
        for result in results:
            if isinstance(result, BaseException):
                proto.abort()
                raise result

    @staticmethod
    def _send(proto: _Protocol, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        return FastConnection._send_encoded(proto, encode(args))

    @staticmethod
    def _send_encoded(proto: _Protocol, data: bytes) -> asyncio.Future[Any]:
        if proto.lost is not None or proto.transport is None:
            raise proto.lost or RedisConnectionError("not connected")
        waiter: asyncio.Future[Any] = proto.loop.create_future()
        if not proto.pending:
            proto.quiet = -1
        proto.pending.append(waiter)
        proto.write(data)
        return waiter

    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply."""
        return await self._execute(encode(args), args, None)

    async def execute_template(self, template: Template, values: tuple[Arg, ...]) -> Any:
        """Send ``template`` with its holes filled by ``values``; return the reply."""
        return await self._execute(template.encode(values), template, values)

    async def _execute(
        self, data: bytes, args: tuple[Arg, ...] | Template, values: tuple[Arg, ...] | None
    ) -> Any:
        proto = self._protocol
        if proto is None or proto.lost is not None:
            proto = await self._connect()
        try:
            return await self._send_encoded(proto, data)
        except (AskError, TryAgainError) as exc:  # MOVED and ASK too; READONLY below
            if isinstance(args, Template):
                assert values is not None
                args = args.filled(values)
            return await self._redirected(proto, args, exc)
        except ReadOnlyError as exc:
            self._demoted(proto, exc)
        except TransientServerError as exc:
            if exc.code == "READONLY":  # Redis < 7, inside a script
                self._demoted(proto, exc)
            raise

    def _demoted(self, proto: _Protocol, exc: Exception) -> NoReturn:
        """A demoted master (Sentinel failover): reconnect, asking again where."""
        proto.abort()
        if self._locator is not None:
            self._locator.forget()
        raise TransientServerError(
            f"server is now a replica ({exc}); reconnecting", code="READONLY"
        ) from exc

    async def _redirected(self, proto: _Protocol, args: tuple[Arg, ...], exc: Exception) -> Any:
        """Follow cluster redirections; none of them ran the command."""
        if not self._cluster or self._locator is None:
            if isinstance(exc, AskError):  # MOVED or ASK from a cluster node
                raise cluster_node_error(exc) from exc
            raise TransientServerError(str(exc), code="TRYAGAIN") from exc
        for attempt in range(_REDIRECTS):
            try:
                if isinstance(exc, MovedError):
                    self._locator.forget(_address_of(exc))
                    if self._protocol is proto:
                        proto.abort()
                    return await self.execute_once(*args)
                if isinstance(exc, AskError):
                    return await self._ask(_address_of(exc), args)
                await asyncio.sleep(0.02 * (attempt + 1))  # TRYAGAIN: a migration is under way
                return await self.execute_once(*args)
            except (AskError, TryAgainError) as again:
                exc = again
        if isinstance(exc, TryAgainError):
            raise TransientServerError(str(exc), code="TRYAGAIN") from exc
        raise exc

    async def execute_once(self, *args: Arg) -> Any:
        proto = self._protocol
        if proto is None or proto.lost is not None:
            proto = await self._connect()
        return await self._send(proto, args)

    async def _ask(self, address: tuple[str, int] | None, args: tuple[Arg, ...]) -> Any:
        """ASKING then the command, once, on a connection of its own to the target."""
        proto = await self._open(address)
        try:
            await self._handshake(proto)
            asking = self._send(proto, ("ASKING",))
            reply = self._send(proto, args)
            await asking
            return await reply
        finally:
            proto.abort()

    async def evalsha(
        self, sha: str, source: str | bytes, keys: list[str], args: list[Arg]
    ) -> Any:
        """EVALSHA, falling back to EVAL (which caches the script) on NOSCRIPT."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def evalsha_template(
        self, template: Template, values: tuple[Arg, ...], source: str | bytes
    ) -> Any:
        """:meth:`evalsha` of a template of ``("EVALSHA", sha, numkeys, ...)``."""
        # The per-job path, so _execute's work is inlined here for the common case.
        proto = self._protocol
        try:
            if proto is None or proto.lost is not None:
                return await self.execute_template(template, values)
            try:
                return await self._send_encoded(proto, template.encode(values))
            except (AskError, TryAgainError) as exc:
                return await self._redirected(proto, template.filled(values), exc)
            except ReadOnlyError as exc:
                self._demoted(proto, exc)
            except TransientServerError as exc:
                if exc.code == "READONLY":  # Redis < 7, inside a script
                    self._demoted(proto, exc)
                raise
        except NoScriptError:
            return await self.execute("EVAL", source, *template.filled(values)[2:])

    def close(self) -> None:
        proto, self._protocol = self._protocol, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
