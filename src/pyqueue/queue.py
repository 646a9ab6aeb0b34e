"""A queue: :class:`Queue`, which gathers a queue's methods, and its connections.

Here: construction, connections and their event loop, payloads, and waiting for jobs
to finish. ``Queue`` takes its adding methods from
:class:`~pyqueue._queue_adding.QueueAdding`, its read-only methods from
:class:`~pyqueue._queue_reads.QueueReads` and its management methods from
:class:`~pyqueue._queue_admin.QueueAdmin` (mixins).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Self, cast

import redis.asyncio as aioredis
from pydantic import BaseModel
from typing_extensions import TypeVar

from pyqueue import _durations
from pyqueue._emitter import EventEmitter
from pyqueue._local_events import LocalEvents
from pyqueue._protocol import connection as _connection
from pyqueue._protocol.bull import wire as _wire
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._protocol.formats import FORMATS, detect_format
from pyqueue._protocol.interface import QueueProtocol
from pyqueue._queue_adding import BulkJob, QueueAdding
from pyqueue._queue_admin import QueueAdmin
from pyqueue._queue_reads import QueueReads
from pyqueue._queue_schedulers import JobSchedulers
from pyqueue._waiting import FinishedWaiters
from pyqueue.errors import (
    InvalidOptionsError,
    ProtocolMismatchError,
    QueueClosedError,
    WrongEventLoopError,
)
from pyqueue.job import Job
from pyqueue.options import BackoffStrategy, Durability, JobOptions, check_backoff_type

__all__ = ["BulkJob", "Queue"]

# Defaults to Any: a Queue made without a model holds any JSON payload.
DataT = TypeVar("DataT", default=Any)

# Queue classes of the formats other than Bull, by format name. Filled by the module
# of each (pyqueue._queue_bullmq registers itself when pyqueue is imported), so this
# module needs no import of them: they import it.
_FORMAT_CLASSES: dict[str, type[Queue[Any]]] = {}


class Queue(  # type: ignore[misc]  # LocalEvents.on narrows EventEmitter.on on purpose
    LocalEvents[DataT], EventEmitter, QueueAdding[DataT], QueueReads[DataT], QueueAdmin,
    JobSchedulers[DataT],
):
    """A Bull-compatible queue: add jobs, inspect and manage them.

    Args:
        name: The queue name (the ``Q`` of ``bull:Q:wait``).
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL, or
            ``redis+sentinel://h:p[,h:p]/<master>[/db]`` or
            ``redis+cluster://h:p[,h:p]`` (docs: "Deployment at scale").
            Defaults to localhost.
        connection: An existing ``redis.asyncio.Redis`` client (TCP, TLS, unix
            socket, credential provider, or Sentinel ``master_for``) or a
            ``RedisCluster`` client; its settings are used for every connection.
        prefix: Key prefix (Bull's default ``bull``).
        default_job_options: Options merged under every ``add`` (Bull's
            ``defaultJobOptions``); :meth:`pyqueue.QueueEntry.queue` passes its entry's.
        model: A pydantic model: data is validated when added and when read.
        backoff_strategies: Custom backoff strategies by name, as given to the
            workers: ``add`` refuses a ``Backoff`` type that is neither built in
            nor here (only the names matter to a producer). A :class:`Worker` made
            on this queue object adds its own strategies here.
        limiter_group_key: Dotted path into the data naming the rate-limit group;
            job ids become ``<id or uuid>:<group>`` as Bull's ``limiter.groupKey``
            makes them, for workers whose ``RateLimiter`` has a ``group_key``.
        durability: :class:`~pyqueue.options.Durability`: wait for replicas to
            confirm adds (and finishes) with ``WAIT``.
        protocol: The wire format: ``"bull"`` (Bull 4), ``"bullmq"`` (BullMQ 6;
            docs: "BullMQ mode"), or None / ``"auto"``: the format the queue
            already has in Redis, found on first use, and Bull for a new queue.
            Opening a queue as one format while Redis holds the other raises
            :class:`~pyqueue.errors.ProtocolMismatchError` on first use.

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
        default_job_options: JobOptions | None = None,
        model: type[DataT] | None = None,
        limiter_group_key: str | None = None,
        durability: Durability | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        protocol: str | None = None,
    ) -> None:
        super().__init__()
        if protocol is not None and protocol != "auto" and protocol not in FORMATS:
            raise InvalidOptionsError(
                f"protocol: must be one of {', '.join(FORMATS)}, 'auto' or None, got {protocol!r}"
            )
        # The format asked for (None: whatever Redis holds), and whether Redis was
        # asked yet: once per queue object, before its first add, read or worker.
        self.protocol_requested: str | None = None if protocol == "auto" else protocol
        self._format_known = False
        for label, value in (("name", name), ("prefix", prefix)):
            if not isinstance(value, str) or not value:
                raise InvalidOptionsError(f"{label}: must be a non-empty string, got {value!r}")
            if "@" in value:
                raise InvalidOptionsError(f"{label}: must not contain '@' (Bull event channels)")
        if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidOptionsError(f"model: must be a pydantic BaseModel class, got {model!r}")
        self.name = name
        self.prefix = prefix
        self.keys = QueueKeys(prefix, name)
        self.token = str(uuid.uuid4())
        if default_job_options is not None and not isinstance(default_job_options, JobOptions):
            raise InvalidOptionsError(
                f"default_job_options: expected JobOptions, got {default_job_options!r}"
            )
        # Read-only outside: a Worker made on this queue adds its own (see Worker).
        self._strategies: dict[str, BackoffStrategy] = dict(backoff_strategies or {})
        self.backoff_strategies: Mapping[str, BackoffStrategy] = MappingProxyType(
            self._strategies
        )
        for strategy_name, strategy in self.backoff_strategies.items():
            if not callable(strategy):
                raise InvalidOptionsError(
                    f"backoff_strategies[{strategy_name!r}]: must be callable, got {strategy!r}"
                )
        if default_job_options is not None:
            check_backoff_type(default_job_options.backoff, self.backoff_strategies)
        self.default_job_options = default_job_options
        self.model = model
        if limiter_group_key is not None and (
            not isinstance(limiter_group_key, str) or not limiter_group_key
        ):
            raise InvalidOptionsError(
                f"limiter_group_key: must be a non-empty string, got {limiter_group_key!r}"
            )
        self.limiter_group_key = limiter_group_key
        if durability is not None and not isinstance(durability, Durability):
            raise InvalidOptionsError(f"durability: expected Durability, got {durability!r}")
        self._client, self.connection_spec, self._owns_client = _connection.resolve(
            redis_url, connection, self.keys.base
        )
        self._fast = self.connection_spec.fast_connection()
        self._scripts = Scripts(self._client, self.keys, self._fast)
        self.durability = self._scripts.durability = durability
        # The event loop the connections belong to: the first that used them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._max_bulk: int | None = None
        # Every finished() waiter shares this, made on the first wait.
        self._waiters: FinishedWaiters | None = None
        # BullMQ mode is a subclass this object becomes here, once, so that no call
        # of the per-job path has to ask which format the queue speaks.
        if protocol is not None and protocol in _FORMAT_CLASSES:
            _FORMAT_CLASSES[protocol].adopt(self, found=False)

    @classmethod
    def adopt(cls, queue: Queue[Any], *, found: bool) -> None:
        """Make ``queue`` an object of this class: asked for (``found`` False: Redis
        is checked on first use), or found in Redis by a ``protocol=None`` queue.

        Raises:
            InvalidOptionsError: ``queue`` is of a subclass of Queue, or has options
                this format does not have.
        """
        if type(queue) is not Queue:
            raise InvalidOptionsError(
                f"protocol: {type(queue).__name__} subclasses Queue; only Queue itself "
                "can speak another format"
            )
        queue.__class__ = cls
        queue._format_known = found
        queue._adopted()

    def _adopted(self) -> None:
        """Set up what this class needs beyond Queue's (after :meth:`adopt`)."""

    # --- the wire format ---------------------------------------------------------

    @property
    def format(self) -> str:
        """``"bull"`` or ``"bullmq"``: the wire format this queue object speaks.

        With ``protocol=None`` it reads ``"bull"`` until the first use found a
        BullMQ queue in Redis (then the object speaks BullMQ for good).
        """
        return "bull"

    async def _resolve_format(self) -> bool:
        """Ask Redis once which format the queue has; True when this object just
        turned into a BullMQ queue (the caller calls its method again).

        Raises:
            ProtocolMismatchError: ``protocol="bull"`` on a queue BullMQ made.
        """
        found = await detect_format(self.client, self.prefix, self.name)
        if found == "bullmq":
            if self.protocol_requested == "bull":
                raise ProtocolMismatchError(
                    f"queue {self.name!r} (prefix {self.prefix!r}) is a BullMQ queue in Redis; "
                    "open it with protocol='bullmq' (or None to detect)",
                    found="bullmq", requested="bull",
                )
            _FORMAT_CLASSES["bullmq"].adopt(self, found=True)
            return True
        self._format_known = True
        return False

    async def _scheduler_calls(self, method: str) -> QueueProtocol:
        """Job schedulers are BullMQ's: a Bull queue refuses them (BullMQQueue overrides)."""
        self._check_open()
        if not self._format_known and await self._resolve_format():
            return await self._scheduler_calls(method)  # now BullMQQueue's
        raise InvalidOptionsError(
            f"{method}: job schedulers exist in BullMQ mode only (Queue(..., "
            "protocol='bullmq')); a Bull queue repeats jobs with add(..., repeat=Repeat(...))"
        )

    # --- connections and their event loop --------------------------------------

    @property
    def client(self) -> aioredis.Redis:
        """The queue's asyncio client, bound to the event loop that first used it."""
        self._bind_loop()
        return self._client

    @client.setter
    def client(self, client: aioredis.Redis) -> None:
        self._client = client
        self._scripts = Scripts(client, self.keys, self._fast)
        self._scripts.durability = self.durability
        self._connections_replaced()

    def _connections_replaced(self) -> None:
        """Called when the client or the lean connection changed (a format's hook)."""

    @property
    def scripts(self) -> Scripts:
        """The queue's script calls, bound to the event loop that first used them."""
        self._bind_loop()
        return self._scripts

    @scripts.setter
    def scripts(self, scripts: Scripts) -> None:
        self._scripts = scripts

    def _bind_loop(self) -> None:
        """Tie the connections to the running loop; after that loop closed, reconnect.

        asyncio connections cannot move between loops: one from a closed loop
        fails, and one shared with another open loop would hang or interleave.

        Raises:
            WrongEventLoopError: the loop the queue is bound to is still open.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # synchronous code (a constructor, a property read): nothing is sent
        if loop is self._loop:
            return
        if self._loop is None:
            self._loop = loop
            return
        if not self._loop.is_closed():
            raise WrongEventLoopError(
                f"queue {self.name!r} is bound to another event loop, which is still open: "
                "its connections belong to that loop. Use one Queue per event loop "
                "(or close the first loop before using the queue on a new one)"
            )
        self._reconnect(loop)

    def _reconnect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fresh connections for ``loop``; the old ones, of a closed loop, are dropped.

        They cannot be closed without their loop: the garbage collector closes
        their sockets (with the ``ResourceWarning`` of any transport left open).
        """
        if self._owns_client:
            self._client = self.connection_spec.async_client()
        self._fast = self.connection_spec.fast_connection()
        self._scripts = Scripts(self._client, self.keys, self._fast)
        self._scripts.durability = self.durability
        self._waiters = None  # its tasks belonged to the closed loop
        self._loop = loop
        self._connections_replaced()

    async def __aenter__(self) -> Self:
        if not self._format_known:
            await self._resolve_format()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # failed(job, exc) became failed(job, exc, final): see EventEmitter.
    grown_events: ClassVar[Mapping[str, int]] = MappingProxyType({"failed": 2})

    def _event_emitter(self) -> EventEmitter:
        return self

    async def close(self) -> None:
        """Close the connections this queue opened. Idempotent."""
        if self._closed:
            return
        if self._loop is not None and self._loop.is_closed():
            # Connections of a closed loop cannot be closed; none is open on this one.
            self._closed = True
            return
        self._bind_loop()
        self._closed = True
        if self._waiters is not None:
            await self._waiters.close()
        self._fast.close()
        if self._owns_client:
            await self._client.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError(f"queue {self.name!r} is closed")

    # --- waiting for jobs to finish -------------------------------------------

    async def wait_until_finished(
        self, job_id: str, timeout: float | timedelta | None = None
    ) -> Any:
        """The job's return value once it completes (what ``job.finished()`` awaits).

        Every waiter of this queue shares one subscriber (two connections however
        many wait); cancelling a wait, or its timeout firing, touches no other.

        Args:
            timeout: Seconds (or a timedelta) to wait; None waits without limit.

        Raises:
            JobFailedError: the job failed for good.
            JobNotFound: the job does not exist, or stops existing before it ends
                (removed; found within 5 s when another client removes it).
            TimeoutError: ``timeout`` passed first.
            QueueClosedError: the queue is (or gets) closed.
        """
        self._check_open()
        seconds = _durations.timeout(timeout)
        self._bind_loop()
        if self._waiters is None:
            self._waiters = FinishedWaiters(
                self.connection_spec, self.keys, self.name, self.connection_spec.read_timeout
            )
        async with asyncio.timeout(seconds):
            return await self._waiters.wait(str(job_id))

    def _removed(self, *job_ids: str) -> None:
        """Jobs this queue removed: their waiters learn it now, not at the next check."""
        if self._waiters is not None:
            self._waiters.check(*job_ids)

    # --- payloads -------------------------------------------------------------

    def encode_data(self, data: Any) -> str:
        """Validate (against ``model``) and serialise a payload."""
        return _wire.encode_data(self._validated(data))

    def decode_data(self, data: Any) -> Any:
        """Turn stored data into the queue's model (raises ``ValidationError``)."""
        if self.model is None:
            return data
        return cast("type[BaseModel]", self.model).model_validate(data)

    def job_from_raw(self, job_id: str, raw: dict[bytes, bytes]) -> Job[DataT]:
        """A Job from a job hash, without validating data against the model."""
        record = _wire.decode_job(job_id, raw)
        return Job(self, record, record.data)
