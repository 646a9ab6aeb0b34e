"""Queue-wide events from Redis pub/sub: what Node Bull calls ``global:*`` events.

Bull publishes every state change of a queue on channels named after its keys
(bull-protocol.md §1.4, §4.1). :class:`QueueEvents` listens on one dedicated
pub/sub connection and re-emits them with Node's argument shapes, named
without the ``global:`` prefix::

    waiting(job_id)                          a job entered wait (from any producer)
    active(job_id, "waiting")                a worker started a job
    stalled(job_id)                          a stalled job went back to wait
    duplicated(job_id)                       an add reused an existing custom id
    debounced(job_id)                        an add was debounced (Bull 4.16); the
                                             id is the job holding the debounce id
    progress(job_id, progress)               progress was reported
    completed(job_id, return_value, "active")  return_value is JSON-decoded
    failed(job_id, reason, "active")         a job failed for good
    delayed(due_ms)                          a job is due at this time (float ms)
    paused(), resumed(), drained()
    error(exc)                               connection dropped, or unreadable payload

Messages published while the connection is down are lost, as in Node. A
connection that goes silent (no traffic, no reply to a PING) for twice the URL's
``socket_timeout`` (default 30 s each) is dropped and resubscribed, with an
``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, Self, overload

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pyqueue._emitter import Event, EventEmitter
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.connection import ConnectionSpec
from pyqueue._protocol.pubsub import SilenceGuard, Subscription
from pyqueue.errors import InvalidOptionsError, QueueClosedError

log = logging.getLogger("pyqueue.events")

_DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Plain channels, named by the event they carry.
_PLAIN_EVENTS = ("progress", "completed", "failed", "delayed", "paused", "resumed", "drained")
_CONFIRM_TIMEOUT = 10.0  # seconds; TimeoutError is an OSError, so it is retried too
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*?[]"})
# QueueEvents classes of the formats other than Bull, by format name; filled by their
# modules (pyqueue._events_bullmq), which import this one.
_FORMAT_CLASSES: dict[str, type[QueueEvents]] = {}


class QueueEvents(EventEmitter):
    """Listen to every event of one queue, whoever caused it (any process, Node too).

    Register callbacks with ``on("completed", cb)`` or iterate with
    ``async for ev in events.events("completed", "failed")``.

    Args:
        name: The queue name.
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Defaults to localhost.
        connection: A ``redis.asyncio.Redis`` client whose settings are copied; pub/sub
            needs a connection of its own, so the client itself is not used.
        prefix: Key prefix (Bull's default ``bull``).
        reconnect_delay: ``(first, max)`` seconds between reconnection attempts;
            the delay doubles after each failed attempt.
        protocol: ``"bull"`` (pub/sub channels, the default) or ``"bullmq"``: read
            BullMQ's ``events`` stream instead (docs: "BullMQ mode").
        last_event_id: BullMQ mode: start after this stream entry (``"$"``: the
            newest at :meth:`start`; ``"0"``: every entry the stream still holds).

    Raises:
        InvalidOptionsError: for a bad name, prefix or URL (nothing is connected yet).
    """

    def __init__(
        self,
        name: str,
        redis_url: str | None = None,
        *,
        connection: aioredis.Redis | None = None,
        prefix: str = "bull",
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        protocol: str | None = None,
        last_event_id: str = "$",
    ) -> None:
        super().__init__()
        if protocol not in (None, "bull", *_FORMAT_CLASSES):
            raise InvalidOptionsError(f"protocol: must be 'bull' or 'bullmq', got {protocol!r}")
        if last_event_id != "$" and protocol not in _FORMAT_CLASSES:
            raise InvalidOptionsError("last_event_id: BullMQ mode only (Bull's pub/sub has none)")
        self._last_event_id = last_event_id
        for label, value in (("name", name), ("prefix", prefix)):
            if not isinstance(value, str) or not value:
                raise InvalidOptionsError(f"{label}: must be a non-empty string, got {value!r}")
            if "@" in value:
                raise InvalidOptionsError(f"{label}: must not contain '@' (Bull event channels)")
        if redis_url is not None and connection is not None:
            raise InvalidOptionsError("give redis_url or connection, not both")
        first, most = reconnect_delay
        if not 0 < first <= most:
            raise InvalidOptionsError(
                f"reconnect_delay: need 0 < first <= max, got {reconnect_delay!r}"
            )
        self.name = name
        self.prefix = prefix
        self.keys = QueueKeys(prefix, name)
        self._spec = (
            ConnectionSpec.from_client(connection)
            if connection is not None
            else ConnectionSpec.from_url(redis_url or _DEFAULT_URL)
        ).for_key(self.keys.base)
        self._delays = (first, most)
        self._client: aioredis.Redis | None = None
        self._pubsub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._channels: dict[str, str] = {self.keys.channel(e): e for e in _PLAIN_EVENTS}
        # pattern -> (event, channel head); the token is what follows the head.
        self._patterns: dict[str, tuple[str, str]] = {}
        for event, head in (
            ("waiting", self.keys.waiting_channel("")),
            ("active", self.keys.active_channel("")),
            ("stalled", self.keys.stalled_channel),
            # Bull 4.14 published a bare "duplicated", 4.15+ "duplicated@<token>".
            ("duplicated", self.keys.channel("duplicated")),
            ("debounced", self.keys.debounced_channel("")),
        ):
            # Escaped so a queue named "a*" does not hear queue "abc".
            self._patterns[head.translate(_GLOB_SPECIAL) + "*"] = (event, head)
        self._handlers: dict[str, Callable[[str, str], None]] = {
            "waiting": self._on_waiting,
            "active": lambda data, _: self.emit("active", data, "waiting"),
            "stalled": lambda data, _: self.emit("stalled", data),
            "duplicated": lambda data, _: self.emit("duplicated", data),
            "debounced": lambda data, _: self.emit("debounced", data),
            "progress": lambda data, _: self.emit("progress", *_parse_progress(data)),
            "completed": lambda data, _: self.emit("completed", *_parse_completed(data), "active"),
            "failed": lambda data, _: self.emit("failed", *_parse_failed(data), "active"),
            "delayed": lambda data, _: self.emit("delayed", float(data)),
            "paused": lambda data, _: self.emit("paused"),
            "resumed": lambda data, _: self.emit("resumed"),
            "drained": lambda data, _: self.emit("drained"),
        }
        # BullMQ mode is a subclass this object becomes here (pyqueue._events_bullmq).
        if protocol is not None and protocol in _FORMAT_CLASSES:
            if type(self) is not QueueEvents:
                raise InvalidOptionsError(
                    f"protocol: {type(self).__name__} subclasses QueueEvents; only "
                    "QueueEvents itself can speak another format"
                )
            self.__class__ = _FORMAT_CLASSES[protocol]
            self._adopted()

    def _adopted(self) -> None:
        """Set up what a format's subclass needs beyond QueueEvents' own."""

    # --- typed listeners ---------------------------------------------------------

    # Overloads of EventEmitter.on, narrowed to what this class emits (so the
    # override is knowingly narrower than its base, which takes any name).
    @overload  # type: ignore[override]
    def on(
        self, event: Literal["paused", "resumed", "drained"], listener: Callable[[], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["waiting", "stalled", "duplicated", "debounced"],
        listener: Callable[[str], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["active"], listener: Callable[[str, str], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["progress"], listener: Callable[[str, Any], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["completed"], listener: Callable[[str, Any, str], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["failed"], listener: Callable[[str, str, str], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["delayed"], listener: Callable[[float], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["error"], listener: Callable[[BaseException], object],
    ) -> Callable[[], None]: ...
    @overload
    def on(
        self, event: Literal["*"], listener: Callable[[Event], object],
    ) -> Callable[[], None]: ...

    def on(self, event: str, listener: Callable[..., object]) -> Callable[[], None]:
        """Call ``listener`` on each ``event`` (shapes in the module doc)."""
        return super().on(event, listener)  # type: ignore[arg-type]

    # --- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Subscribe; returns once Redis has confirmed every subscription.

        Later connection drops are retried in the background (see the class doc);
        only this first connection's failure is raised.

        Raises:
            QueueClosedError: after :meth:`close`.
            redis.exceptions.ConnectionError: Redis is unreachable.
        """
        if self._closed:
            raise QueueClosedError(f"events of queue {self.name!r} are closed")
        if self._task is not None:
            return
        client = self._spec.async_client()
        # Reconnecting is our job: redis-py's silent retry would resubscribe
        # without telling us, hiding the gap in which messages were lost.
        client.connection_pool.connection_kwargs["retry"] = Retry(NoBackoff(), 0)
        self._client = client
        try:
            await self._subscribe()
        except BaseException:
            await self._drop_client()
            raise
        self._task = asyncio.create_task(self._run(), name=f"pyqueue-events-{self.name}")

    async def close(self) -> None:
        """Unsubscribe and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            # Cancel until it sticks: on Python 3.11 a cancel that lands inside a
            # redis-py call can be swallowed; the loops also check _closed.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_pubsub()
        await self._drop_client()

    # --- connection -----------------------------------------------------------

    async def _subscribe(self) -> None:
        assert self._client is not None
        pubsub = Subscription(self._client)
        self._pubsub = pubsub
        await pubsub.subscribe(*self._channels)
        await pubsub.psubscribe(*self._patterns)
        pending = len(self._channels) + len(self._patterns)
        # A server that accepts the connection but never confirms is as good as down.
        async with asyncio.timeout(_CONFIRM_TIMEOUT):
            while pending:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] in ("subscribe", "psubscribe"):
                    pending -= 1
                else:
                    # Confirmations and messages interleave; keep the early ones.
                    self._dispatch(message)

    async def _run(self) -> None:
        while not self._closed:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                log.warning("queue %r events: connection lost: %s", self.name, exc)
                self.emit("error", exc)
            await self._reconnect()

    async def _listen(self) -> None:
        assert self._pubsub is not None
        guard = SilenceGuard(self._pubsub, self._spec.read_timeout)
        while not self._closed:
            self._dispatch(await guard.next_message())

    async def _reconnect(self) -> None:
        delay, most = self._delays
        while not self._closed:
            await self._drop_pubsub()
            await asyncio.sleep(delay)
            try:
                await self._subscribe()
            except (RedisError, OSError) as exc:
                log.warning("queue %r events: reconnect failed: %s", self.name, exc)
                self.emit("error", exc)
                delay = min(delay * 2, most)
            else:
                log.info("queue %r events: resubscribed", self.name)
                return

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    # --- messages -------------------------------------------------------------

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message["channel"])
        if kind == "message":
            event, token = self._channels.get(channel), ""
        elif kind == "pmessage":
            event, head = self._patterns.get(_text(message["pattern"]), (None, ""))
            token = channel[len(head):]
        else:
            return
        if event is None:
            return
        data = _text(message["data"])
        try:
            self._handlers[event](data, token)
        except ValueError as exc:
            self.emit("error", ValueError(f"unreadable {event} event {data!r}: {exc}"))

    def _on_waiting(self, job_id: str, token: str) -> None:
        # An empty token marks a publish that Node's own listeners ignore too.
        if token:
            self.emit("waiting", job_id)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _payload(data: str) -> dict[str, Any]:
    obj = wire.loads(data)
    if not isinstance(obj, dict) or "jobId" not in obj:
        raise ValueError("expected a JSON object with jobId")
    return obj


def _parse_progress(data: str) -> tuple[str, Any]:
    """``{"jobId","progress"}``, or Bull's legacy ``<id>,<progress JSON>``."""
    try:
        obj = _payload(data)
    except ValueError:
        job_id, comma, progress = data.partition(",")
        if not comma:
            raise
        return job_id, wire.loads(progress)
    return str(obj["jobId"]), obj.get("progress")


def _parse_completed(data: str) -> tuple[str, Any]:
    """``val`` is the return value's JSON text, absent for ``undefined``."""
    obj = _payload(data)
    val = obj.get("val")
    if isinstance(val, str):
        # A client that did not double-encode the value: keep the text.
        with contextlib.suppress(ValueError):
            val = wire.loads(val)
    return str(obj["jobId"]), val


def _parse_failed(data: str) -> tuple[str, str]:
    obj = _payload(data)
    val = obj.get("val")
    return str(obj["jobId"]), val if isinstance(val, str) else ("" if val is None else str(val))
