"""Adding jobs: :class:`QueueAdding`, the producer side of :class:`pyqueue.Queue` (a mixin).

Every add validates its options and payload before anything is written, and says
whether it created the job (``job.created``): an add whose custom id (or debounce id)
already holds a job creates nothing and returns the stored job, read by the add's own
script, as Bull's add publishes ``duplicated`` (or ``debounced``) instead of ``waiting``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, cast, overload

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from typing_extensions import TypeVar, Unpack

from pyqueue import _scheduling
from pyqueue._protocol.bull import wire as _wire
from pyqueue._protocol.bull.script_args import AddJobSpec
from pyqueue._protocol.bull.scripts import AddReply
from pyqueue.errors import InvalidOptionsError
from pyqueue.job import Job, JobOwner, now_ms
from pyqueue.options import (
    BackoffStrategy,
    Debounce,
    JobOptionFields,
    JobOptions,
    check_backoff_type,
)
from pyqueue.repeat import Repeat

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.scripts import Scripts

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


class QueueAdding(Generic[DataT]):
    """The adding methods of :class:`pyqueue.Queue`.

    A mixin: ``Queue`` sets the attributes annotated here and defines the methods
    declared for the type checker.
    """

    name: str
    token: str
    model: type[DataT] | None
    default_job_options: JobOptions | None
    limiter_group_key: str | None
    backoff_strategies: Mapping[str, BackoffStrategy]
    _max_bulk: int | None
    _format_known: bool

    if TYPE_CHECKING:
        async def _resolve_format(self) -> bool: ...

        @property
        def client(self) -> aioredis.Redis: ...
        @property
        def scripts(self) -> Scripts: ...
        def emit(self, event: str, *args: Any) -> None: ...
        def decode_data(self, data: Any) -> Any: ...
        def encode_data(self, data: Any) -> str: ...
        def job_from_raw(self, job_id: str, raw: dict[bytes, bytes]) -> Job[DataT]: ...
        def _check_open(self) -> None: ...
        async def get_job(self, job_id: str) -> Job[DataT] | None: ...

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
        if opts.backoff is not None:
            check_backoff_type(opts.backoff, self.backoff_strategies)
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
        """The job an add just created, from what it wrote (no round trip)."""
        record = _wire.new_job_record(
            job_id, spec.name, value.model_dump(mode="json") if isinstance(value, BaseModel)
            else value, wire_opts, spec.timestamp, spec.delay, spec.priority,
        )
        job = Job(cast("JobOwner", self), record, value)
        job.created = True
        return job

    def _existing(self, reply: AddReply) -> Job[DataT]:
        """The job an add found instead of creating one, as stored (read by the add)."""
        job_id, _, fields = reply
        job = self.job_from_raw(job_id, fields or {})
        if self.model is not None and job.record.data_error is None:
            with contextlib.suppress(ValidationError):
                job.data = self.decode_data(job.record.data)
        return job

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
        """Add a job and return it; ``job.created`` tells whether this call created it.

        A ``job_id`` whose job still exists creates nothing (Bull's dedupe): the
        returned job is the stored one (its data and options, read by the add
        itself), ``job.created`` is False, and ``duplicated`` (the id) is emitted
        here and published to every :class:`~pyqueue.events.QueueEvents` instead of
        ``waiting``, as Bull's own add publishes.

        With ``debounce=Debounce(id=...)`` (Bull 4.16), an add while another job
        holds that debounce id creates nothing either: the returned job is the
        holder, and ``debounced`` (the id) is emitted and published.

        With ``repeat=Repeat(...)`` the schedule is declared, idempotently (call it
        at every start-up, from any number of processes), and the job of its next
        instance is returned; None when this call scheduled nothing because a
        later instance already exists (its ``created`` is not reported: False).

        Raises:
            InvalidOptionsError: bad options, data or schedule (a backoff type that
                is neither built in nor in ``backoff_strategies``, a digit-only
                ``job_id``, a payload JSON cannot carry); nothing is written.
        """
        self._check_open()
        if not self._format_known and await self._resolve_format():
            return await self.add(data, name=name, repeat=repeat, **options)  # now BullMQ's
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
        if debounce is not None or spec.job_id:
            return await self._add_reporting(spec, value, wire_opts, debounce)
        job_id = await self.scripts.add_job(
            job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
            timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority,
            lifo=spec.lifo, token=self.token,
        )
        job = self._added(spec, job_id, value, wire_opts)
        self.emit("waiting" if not spec.delay else "delayed", job)
        return job

    async def _add_reporting(
        self, spec: AddJobSpec, value: Any, wire_opts: dict[str, Any],
        debounce: Debounce | None,
    ) -> Job[DataT]:
        """An add that may create nothing: a custom id, or a debounce id."""
        reply = await self.scripts.add_job_reporting(
            spec, token=self.token, debounce_id=None if debounce is None else debounce.id,
            ttl=None if debounce is None else debounce.ttl,
        )
        job_id, outcome, _ = reply
        if outcome != "created":
            self.emit(outcome if outcome == "debounced" else "duplicated", job_id)
            return self._existing(reply)
        job = self._added(spec, job_id, value, wire_opts)
        if debounce is not None:
            job.record.debounce_id = debounce.id
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
        if opts.backoff is not None:
            check_backoff_type(opts.backoff, self.backoff_strategies)
        job_id = await _scheduling.add_repeatable(
            self, self.encode_data(data), name or "__default__", opts, now_ms()
        )
        return None if job_id is None else await self.get_job(job_id)

    async def add_bulk(self, jobs: Iterable[BulkJob]) -> list[Job[DataT]]:
        """Add many jobs in one round trip (one script call; Bull's ``addBulk``).

        Each returned job says whether it was created (``job.created``); an entry
        whose custom id exists returns the stored job, as :meth:`add` does.

        Raises:
            InvalidOptionsError: any entry is invalid; then nothing is written.
        """
        self._check_open()
        if not self._format_known and await self._resolve_format():
            return await self.add_bulk(jobs)  # now BullMQ's
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
        replies = await self.scripts.add_jobs_reporting(specs, self.token)
        return [
            self._added(spec, reply[0], value, wire) if reply[1] == "created"
            else self._existing(reply)
            for (spec, value, wire), reply in zip(built, replies, strict=True)
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
