"""A queue's producer side, and :class:`Queue`, which gathers the rest.

Here: construction, connections, payloads and adding jobs. ``Queue`` takes its
read-only methods from :class:`~pyqueue._queue_reads.QueueReads` and its
management methods from :class:`~pyqueue._queue_admin.QueueAdmin` (mixins).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Self, cast, overload

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from typing_extensions import TypeVar, Unpack

from pyqueue import _scheduling
from pyqueue._emitter import EventEmitter
from pyqueue._local_events import LocalEvents
from pyqueue._protocol import connection as _connection
from pyqueue._protocol.bull import wire as _wire
from pyqueue._protocol.bull.keys import QueueKeys
from pyqueue._protocol.bull.script_args import AddJobSpec
from pyqueue._protocol.bull.scripts import Scripts
from pyqueue._queue_admin import QueueAdmin
from pyqueue._queue_reads import QueueReads
from pyqueue.errors import InvalidOptionsError, QueueClosedError, WrongEventLoopError
from pyqueue.job import Job, now_ms
from pyqueue.options import Debounce, Durability, JobOptionFields, JobOptions
from pyqueue.repeat import Repeat

# Defaults to Any: a Queue made without a model holds any JSON payload.
DataT = TypeVar("DataT", default=Any)

# Payloads above this size are checked against the server's limit before sending.
_CHECK_SIZE_ABOVE = 1024 * 1024
_REDIS_MAX_BULK = 512 * 1024 * 1024
_NO_OPTIONS = JobOptions()

# add_bulk's memo entry: the options object (kept alive), its wire dict and JSON.
_MemoEntry = tuple[JobOptions, dict[str, Any], str]


@dataclass(frozen=True, slots=True)
class BulkJob:
    """One entry of :meth:`Queue.add_bulk`."""

    data: Any
    name: str | None = None
    options: JobOptions | None = None


class Queue(  # type: ignore[misc]  # LocalEvents.on narrows EventEmitter.on on purpose
    LocalEvents[DataT], EventEmitter, QueueReads[DataT], QueueAdmin,
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
        default_job_options: Options merged under every ``add``.
        model: A pydantic model: data is validated when added and when read.
        limiter_group_key: Dotted path into the data naming the rate-limit group;
            job ids become ``<id or uuid>:<group>`` as Bull's ``limiter.groupKey``
            makes them, for workers whose ``RateLimiter`` has a ``group_key``.
        durability: :class:`~pyqueue.options.Durability`: wait for replicas to
            confirm adds (and finishes) with ``WAIT``.

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
    ) -> None:
        super().__init__()
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
        self._loop = loop

    async def __aenter__(self) -> Self:
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
        self._fast.close()
        if self._owns_client:
            await self._client.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError(f"queue {self.name!r} is closed")

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

    # --- adding ---------------------------------------------------------------

    def _validated(self, data: Any) -> Any:
        """``data`` as the queue's model when there is one (raises InvalidOptionsError)."""
        if self.model is None or isinstance(data, self.model):
            return data
        model = cast("type[BaseModel]", self.model)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidOptionsError(f"data: invalid {model.__name__}: {exc}") from None

    def _spec(
        self,
        data: Any,
        name: str | None,
        options: JobOptions,
        *,
        now: int | None = None,
        memo: dict[int, _MemoEntry] | None = None,
    ) -> tuple[AddJobSpec, Any, dict[str, Any]]:
        """addJob arguments, the (validated) data, and the wire ``opts`` dict.

        ``memo`` shares one encoded ``opts`` between bulk entries that pass the
        same options object (same timestamp ``now``), saving a JSON dump per job.
        Each entry holds its options object: while the memo lives, that id cannot
        be reused by another object (entries of a generator are freed as it goes).
        """
        opts = options.merged_over(self.default_job_options)
        if opts.repeat is not None:
            raise InvalidOptionsError("repeat: not supported in add_bulk; use add(..., repeat=)")
        if opts.debounce is not None and memo is not None:
            raise InvalidOptionsError(
                "debounce: not supported in add_bulk; use add(..., debounce=)"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidOptionsError(f"name: must be a non-empty string, got {name!r}")
        value = self._validated(data)
        data_json = _wire.encode_data(value)
        if self.limiter_group_key is not None:
            grouped = _group_job_id(opts.job_id, data_json, self.limiter_group_key)
            opts = replace(opts, job_id=grouped)
            memo = None
        timestamp = opts.timestamp if opts.timestamp is not None else (now or now_ms())
        cached = memo.get(id(options)) if memo is not None else None
        if cached is None or cached[0] is not options:
            wire = _wire.options_to_wire(opts, timestamp=timestamp)
            cached = (options, wire, _wire.dumps(wire))
            if memo is not None:
                memo[id(options)] = cached
        spec = AddJobSpec(
            job_id=opts.job_id or "",
            name=name or "__default__",
            data=data_json,
            opts=cached[2],
            timestamp=timestamp,
            delay=int(opts.delay or 0),
            priority=opts.priority or 0,
            lifo=bool(opts.lifo),
        )
        return spec, value, cached[1]

    def _added(
        self, spec: AddJobSpec, job_id: str, value: Any, wire_opts: dict[str, Any]
    ) -> Job[DataT]:
        record = _wire.new_job_record(
            job_id, spec.name, value.model_dump(mode="json") if isinstance(value, BaseModel)
            else value, wire_opts, spec.timestamp, spec.delay, spec.priority,
        )
        return Job(self, record, value)

    @overload
    async def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None, repeat: Repeat,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT] | None: ...

    @overload
    async def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None, repeat: None = None,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT]: ...

    async def add(
        self, data: DataT | Mapping[str, Any], *, name: str | None = None,
        repeat: Repeat | None = None,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT] | None:
        """Add a job; returns it (with the existing id when ``job_id`` was a duplicate).

        With ``debounce=Debounce(id=...)`` (Bull 4.16), an add while another job
        holds that debounce id creates nothing: the returned job has the holder's
        id, and ``debounced`` (the id) is emitted here and published to every
        :class:`~pyqueue.events.QueueEvents` instead of ``waiting``.

        With ``repeat=Repeat(...)`` the schedule is declared, idempotently (call it
        at every start-up, from any number of processes), and the job of its next
        instance is returned; None when this call scheduled nothing because a
        later instance already exists.

        Raises:
            InvalidOptionsError: bad options, data or schedule; nothing is written.
        """
        self._check_open()
        # No keywords is the common case: share one (frozen) default object.
        job_options = JobOptions.from_kwargs(options) if options else _NO_OPTIONS
        if repeat is not None:
            if job_options.debounce is not None:
                raise InvalidOptionsError("debounce: not supported with repeat")
            return await self._add_repeatable(data, name, replace(job_options, repeat=repeat))
        spec, value, wire_opts = self._spec(data, name, job_options)
        if len(spec.data) > _CHECK_SIZE_ABOVE:
            await self._check_size([spec])
        debounce = job_options.debounce or (
            self.default_job_options.debounce if self.default_job_options else None
        )
        if debounce is not None:
            return await self._add_debounced(spec, value, wire_opts, debounce)
        job_id = await self.scripts.add_job(
            job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
            timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority,
            lifo=spec.lifo, token=self.token,
        )
        job = self._added(spec, job_id, value, wire_opts)
        self.emit("waiting" if not spec.delay else "delayed", job)
        return job

    async def _add_debounced(
        self, spec: AddJobSpec, value: Any, wire_opts: dict[str, Any], debounce: Debounce
    ) -> Job[DataT]:
        job_id, debounced = await self.scripts.add_debounced_job(
            spec, token=self.token, debounce_id=debounce.id, ttl=debounce.ttl
        )
        job = self._added(spec, job_id, value, wire_opts)
        job.record.debounce_id = debounce.id
        if debounced:
            self.emit("debounced", job_id)
        else:
            self.emit("waiting" if not spec.delay else "delayed", job)
        return job

    async def _check_size(self, specs: list[AddJobSpec]) -> None:
        """Refuse a payload over the server's ``proto-max-bulk-len`` before sending it.

        Redis answers an oversized argument with a protocol error and drops the
        connection, taking every request in flight on it along; checking first
        gives an error that names the problem. Only large payloads pay for this.
        """
        if self._max_bulk is None:
            try:
                found: dict[Any, Any] = await self.client.config_get("proto-max-bulk-len")
                value = found.get("proto-max-bulk-len") or found.get(b"proto-max-bulk-len")
                self._max_bulk = int(value) if value is not None else _REDIS_MAX_BULK
            except RedisError:
                # CONFIG may be forbidden (managed Redis, ACLs): assume the default.
                self._max_bulk = _REDIS_MAX_BULK
        limit = self._max_bulk
        for spec in specs:
            size = len(spec.data.encode())
            if size > limit:
                raise InvalidOptionsError(
                    f"data: payload is {size} bytes, over the server's "
                    f"proto-max-bulk-len of {limit} bytes"
                )

    async def _add_repeatable(
        self, data: Any, name: str | None, options: JobOptions
    ) -> Job[DataT] | None:
        opts = options.merged_over(self.default_job_options)
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidOptionsError(f"name: must be a non-empty string, got {name!r}")
        job_id = await _scheduling.add_repeatable(
            self, self.encode_data(data), name or "__default__", opts, now_ms()
        )
        return None if job_id is None else await self.get_job(job_id)

    async def add_bulk(self, jobs: Iterable[BulkJob]) -> list[Job[DataT]]:
        """Add many jobs in one round trip (one MULTI, like Bull's ``addBulk``).

        Raises:
            InvalidOptionsError: any entry is invalid; then nothing is written.
        """
        self._check_open()
        now = now_ms()
        memo: dict[int, _MemoEntry] = {}
        default = JobOptions()
        built = [
            self._spec(j.data, j.name, j.options or default, now=now, memo=memo) for j in jobs
        ]
        if not built:
            return []
        specs = [spec for spec, _, _ in built]
        if any(len(s.data) > _CHECK_SIZE_ABOVE for s in specs):
            await self._check_size(specs)
        ids = await self.scripts.add_jobs(specs, self.token)
        return [
            self._added(spec, job_id, value, wire)
            for (spec, value, wire), job_id in zip(built, ids, strict=True)
        ]


def _group_job_id(job_id: str | None, data_json: str, path: str) -> str:
    """Bull's grouped id: the group is the text after the last ':' of the id."""
    value: Any = _wire.loads(data_json)
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = None
    if value is None:
        group = "undefined"
    else:
        group = value if isinstance(value, str) else _wire.dumps(value)
    return f"{job_id or uuid.uuid4()}:{group}"

