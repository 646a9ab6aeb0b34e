"""The producer and admin side of a queue."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, cast, overload

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from typing_extensions import Unpack

from pyqueue import _connection, _scheduling, _wire
from pyqueue._emitter import EventEmitter
from pyqueue._keys import QueueKeys
from pyqueue._scripts import AddJobSpec, Scripts
from pyqueue.errors import InvalidOptionsError, JobFailedError, JobStateError, QueueClosedError
from pyqueue.job import Job, JobState, now_ms
from pyqueue.options import JobOptionFields, JobOptions
from pyqueue.repeat import Repeat

DataT = TypeVar("DataT")

# Payloads above this size are checked against the server's limit before sending.
_CHECK_SIZE_ABOVE = 1024 * 1024
_REDIS_MAX_BULK = 512 * 1024 * 1024

StateName = Literal["waiting", "active", "completed", "failed", "delayed", "paused"]
ALL_STATES: tuple[StateName, ...] = (
    "waiting", "active", "completed", "failed", "delayed", "paused",
)
_LIST_STATES = frozenset({"waiting", "active", "paused"})


@dataclass(frozen=True, slots=True)
class BulkJob:
    """One entry of :meth:`Queue.add_bulk`."""

    data: Any
    name: str | None = None
    options: JobOptions | None = None


class Queue(EventEmitter, Generic[DataT]):
    """A Bull-compatible queue: add jobs, inspect and manage them.

    Args:
        name: The queue name (the ``Q`` of ``bull:Q:wait``).
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL. Defaults to localhost.
        connection: An existing ``redis.asyncio.Redis`` client to use instead.
        prefix: Key prefix (Bull's default ``bull``).
        default_job_options: Options merged under every ``add``.
        model: A pydantic model: data is validated when added and when read.
        limiter_group_key: Dotted path into the data naming the rate-limit group;
            job ids become ``<id or uuid>:<group>`` as Bull's ``limiter.groupKey``
            makes them, for workers whose ``RateLimiter`` has a ``group_key``.

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
        self.client, self.connection_spec, self._owns_client = _connection.resolve(
            redis_url, connection
        )
        self._fast = self.connection_spec.fast_connection()
        self.scripts = Scripts(self.client, self.keys, self._fast)
        self._closed = False
        self._max_bulk: int | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections this queue opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fast.close()
        if self._owns_client:
            await self.client.aclose()

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
        memo: dict[int, tuple[dict[str, Any], str]] | None = None,
    ) -> tuple[AddJobSpec, Any, dict[str, Any]]:
        """addJob arguments, the (validated) data, and the wire ``opts`` dict.

        ``memo`` shares one encoded ``opts`` between bulk entries that pass the
        same options object (same timestamp ``now``), saving a JSON dump per job.
        """
        opts = options.merged_over(self.default_job_options)
        if opts.repeat is not None:
            raise InvalidOptionsError("repeat: not supported in add_bulk; use add(..., repeat=)")
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
        if cached is None:
            wire = _wire.options_to_wire(opts, timestamp=timestamp)
            cached = (wire, _wire.dumps(wire))
            if memo is not None:
                memo[id(options)] = cached
        spec = AddJobSpec(
            job_id=opts.job_id or "",
            name=name or "__default__",
            data=data_json,
            opts=cached[1],
            timestamp=timestamp,
            delay=int(opts.delay or 0),
            priority=opts.priority or 0,
            lifo=bool(opts.lifo),
        )
        return spec, value, cached[0]

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
        self, data: Any, *, name: str | None = None, repeat: Repeat,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT] | None: ...

    @overload
    async def add(
        self, data: Any, *, name: str | None = None, repeat: None = None,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT]: ...

    async def add(
        self, data: Any, *, name: str | None = None, repeat: Repeat | None = None,
        **options: Unpack[JobOptionFields],
    ) -> Job[DataT] | None:
        """Add a job; returns it (with the existing id when ``job_id`` was a duplicate).

        With ``repeat=Repeat(...)`` the schedule is declared, idempotently (call it
        at every start-up, from any number of processes), and the job of its next
        instance is returned; None when this call scheduled nothing because a
        later instance already exists.

        Raises:
            InvalidOptionsError: bad options, data or schedule; nothing is written.
        """
        self._check_open()
        job_options = JobOptions.from_kwargs(options)
        if repeat is not None:
            return await self._add_repeatable(data, name, replace(job_options, repeat=repeat))
        spec, value, wire_opts = self._spec(data, name, job_options)
        if len(spec.data) > _CHECK_SIZE_ABOVE:
            await self._check_size([spec])
        job_id = await self.scripts.add_job(
            job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
            timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority,
            lifo=spec.lifo, token=self.token,
        )
        job = self._added(spec, job_id, value, wire_opts)
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

    async def get_repeatable_jobs(
        self, start: int = 0, end: int = -1, *, asc: bool = False
    ) -> list[dict[str, Any]]:
        """Schedules in the repeat set: key, name, id, end_date, tz, cron, every, next."""
        if asc:
            found = await self.client.zrange(self.keys.repeat, start, end, withscores=True)
        else:
            found = await self.client.zrevrange(self.keys.repeat, start, end, withscores=True)
        out = []
        for member, score in cast("list[tuple[bytes, float]]", found):
            entry = _scheduling.parse_repeat_key(member.decode())
            entry["next"] = int(score)
            out.append(entry)
        return out

    async def get_repeatable_count(self) -> int:
        return int(await self.client.zcard(self.keys.repeat))

    async def remove_repeatable(self, repeat: Repeat, *, name: str | None = None) -> None:
        """Remove a schedule and its next delayed instance (the same ``repeat`` as added)."""
        job_name = name or "__default__"
        await self.scripts.remove_repeatable(
            id_prefix=repeat.id_prefix(job_name), repeat_key=repeat.key(job_name)
        )

    async def remove_repeatable_by_key(self, key: str) -> None:
        """Remove a schedule by its repeat key, as listed by :meth:`get_repeatable_jobs`."""
        entry = _scheduling.parse_repeat_key(key)
        name = entry["name"] or "__default__"
        id_part = f"{entry['id']}:" if entry["id"] else ":"
        digest = hashlib.md5(
            (name + id_part + hashlib.md5(key.encode()).hexdigest()).encode(),
            usedforsecurity=False,
        ).hexdigest()
        await self.scripts.remove_repeatable(id_prefix=f"repeat:{digest}:", repeat_key=key)

    async def add_bulk(self, jobs: Iterable[BulkJob]) -> list[Job[DataT]]:
        """Add many jobs in one round trip (one MULTI, like Bull's ``addBulk``).

        Raises:
            InvalidOptionsError: any entry is invalid; then nothing is written.
        """
        self._check_open()
        now = now_ms()
        memo: dict[int, tuple[dict[str, Any], str]] = {}
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

    # --- reading --------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job[DataT] | None:
        """The job with this id, or None when its hash does not exist.

        With a ``model``, ``data`` is the validated model; data that does not
        validate is left as stored, so corrupted jobs can still be inspected.
        """
        raw = await self.client.hgetall(self.keys.job(str(job_id)))
        if not raw:
            return None
        job = self.job_from_raw(str(job_id), cast("dict[bytes, bytes]", raw))
        if self.model is not None and job.record.data_error is None:
            with contextlib.suppress(ValidationError):
                job.data = self.decode_data(job.record.data)
        return job

    async def get_job_state(self, job_id: str) -> JobState:
        """Bull's ``getState``: the first structure holding the id, else ``stuck``."""
        k = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zscore(k.completed, job_id)
            pipe.zscore(k.failed, job_id)
            pipe.zscore(k.delayed, job_id)
            pipe.lpos(k.active, job_id)
            pipe.lpos(k.wait, job_id)
            pipe.lpos(k.paused, job_id)
            found = await pipe.execute()
        states: tuple[JobState, ...] = (
            "completed", "failed", "delayed", "active", "waiting", "paused",
        )
        for state, hit in zip(states, found, strict=True):
            if hit is not None:
                return state
        return "stuck"

    def _state_key(self, state: str) -> str:
        if state not in ALL_STATES:
            allowed = ", ".join(ALL_STATES)
            raise InvalidOptionsError(f"state: must be one of {allowed}, got {state!r}")
        return self.keys.wait if state == "waiting" else self.keys.key(state)

    async def get_job_counts(self, *states: StateName) -> dict[str, int]:
        """Counts per state, as Bull's ``getJobCounts`` (all six states by default)."""
        wanted = states or ALL_STATES
        async with self.client.pipeline(transaction=True) as pipe:
            for state in wanted:
                key = self._state_key(state)
                if state in _LIST_STATES:
                    pipe.llen(key)
                else:
                    pipe.zcard(key)
            counts = await pipe.execute()
        return {state: int(n) for state, n in zip(wanted, counts, strict=True)}

    async def get_waiting_count(self) -> int:
        c = await self.get_job_counts("waiting", "paused")
        return c["waiting"] + c["paused"]

    async def get_active_count(self) -> int:
        return (await self.get_job_counts("active"))["active"]

    async def get_completed_count(self) -> int:
        return (await self.get_job_counts("completed"))["completed"]

    async def get_failed_count(self) -> int:
        return (await self.get_job_counts("failed"))["failed"]

    async def get_delayed_count(self) -> int:
        return (await self.get_job_counts("delayed"))["delayed"]

    async def get_paused_count(self) -> int:
        return (await self.get_job_counts("paused"))["paused"]

    async def count(self) -> int:
        """Jobs still to run: waiting + paused + delayed."""
        c = await self.get_job_counts("waiting", "paused", "delayed")
        return sum(c.values())

    async def get_job_ids(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[str]:
        """Ids per state in Bull's order (lists newest first unless ``asc``)."""
        wanted = [states] if isinstance(states, str) else list(states)
        async with self.client.pipeline(transaction=False) as pipe:
            for state in wanted:
                key = self._state_key(state)
                if state in _LIST_STATES:
                    if asc:
                        pipe.lrange(key, -(end + 1), -(start + 1))
                    else:
                        pipe.lrange(key, start, end)
                elif asc:
                    pipe.zrange(key, start, end)
                else:
                    pipe.zrevrange(key, start, end)
            results = await pipe.execute()
        ids: list[str] = []
        for state, found in zip(wanted, results, strict=True):
            part = [i.decode() for i in found]
            if asc and state in _LIST_STATES:
                part.reverse()
            ids.extend(part)
        return ids

    async def get_jobs(
        self, states: Sequence[StateName] | StateName, start: int = 0, end: int = -1,
        *, asc: bool = False,
    ) -> list[Job[DataT]]:
        """Jobs per state (missing hashes are skipped)."""
        ids = await self.get_job_ids(states, start, end, asc=asc)
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            raws = await pipe.execute()
        return [self.job_from_raw(i, r) for i, r in zip(ids, raws, strict=True) if r]

    async def get_job_logs(
        self, job_id: str, start: int = 0, end: int = -1, *, asc: bool = True
    ) -> tuple[list[str], int]:
        """``(lines, total)`` of a job's log."""
        key = self.keys.logs(job_id)
        async with self.client.pipeline(transaction=False) as pipe:
            if asc:
                pipe.lrange(key, start, end)
            else:
                pipe.lrange(key, -(end + 1), -(start + 1))
            pipe.llen(key)
            lines, total = await pipe.execute()
        decoded = [line.decode("utf-8", "replace") for line in lines]
        if not asc:
            decoded.reverse()
        return decoded, int(total)

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[str, int]:
        counts = await self.scripts.get_counts_per_priority(priorities)
        return {str(p): c for p, c in zip(priorities, counts, strict=True)}

    async def get_metrics(
        self, kind: Literal["completed", "failed"], start: int = 0, end: int = -1
    ) -> dict[str, Any]:
        """Bull 4 metrics: ``{"meta": {...}, "data": [...], "count": n}``."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.metrics(kind), "count", "prevTS", "prevCount")
            pipe.lrange(self.keys.metrics_data(kind), start, end)
            pipe.llen(self.keys.metrics_data(kind))
            meta, data, count = await pipe.execute()
        names = ("count", "prevTS", "prevCount")
        return {
            "meta": {n: int(v) if v is not None else 0 for n, v in zip(names, meta, strict=True)},
            "data": [d.decode() for d in data],
            "count": int(count),
        }

    # --- management -----------------------------------------------------------

    async def pause(self) -> None:
        """Pause the queue globally: no worker fetches until :meth:`resume`."""
        await self.scripts.pause(True)
        self.emit("paused")

    async def resume(self) -> None:
        await self.scripts.pause(False)
        self.emit("resumed")

    async def is_paused(self) -> bool:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.meta_paused)
            pipe.hexists(self.keys.meta, "paused")
            flag, meta = await pipe.execute()
        return bool(flag) or bool(meta)

    async def clean(
        self,
        grace: int,
        state: Literal["completed", "failed", "delayed", "wait", "active", "paused"] = "completed",
        limit: int = 0,
    ) -> list[str]:
        """Delete jobs in ``state`` finished (or created) more than ``grace`` ms ago."""
        if state not in ("completed", "failed", "delayed", "wait", "active", "paused"):
            raise InvalidOptionsError(f"state: cannot clean {state!r}")
        if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
            raise InvalidOptionsError(f"grace: must be ms >= 0, got {grace!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidOptionsError(f"limit: must be an int >= 0, got {limit!r}")
        ids = await self.scripts.clean_jobs_in_set(
            state, max_timestamp=now_ms() - grace, limit=limit
        )
        self.emit("cleaned", ids, state)
        return ids

    async def empty(self) -> None:
        """Drop waiting, paused and delayed jobs (Bull's ``empty``; also unpauses)."""
        k = self.keys
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(k.wait, 0, -1)
            pipe.lrange(k.paused, 0, -1)
            pipe.zrange(k.delayed, 0, -1)
            waiting, paused, delayed = await pipe.execute()
        limited = [key async for key in self.client.scan_iter(match=k.limiter + "*:limited")]
        ids = [i.decode() for i in (*waiting, *paused, *delayed)]
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(k.wait, k.paused, k.meta_paused, k.delayed, k.priority, k.limiter,
                        k.limiter_index, *limited)
            pipe.hdel(k.meta, "paused")
            for job_id in ids:
                pipe.delete(k.job(job_id), k.logs(job_id))
            await pipe.execute()

    async def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue. Pauses it first, as Bull does.

        Raises:
            JobStateError: active jobs exist and ``force`` is False.
        """
        await self.pause()
        while (code := await self.scripts.obliterate(count=count, force=force)) == 1:
            pass
        if code == -1:
            raise JobStateError("Cannot obliterate non-paused queue", code=code)
        if code == -2:
            raise JobStateError("Cannot obliterate queue with active jobs", code=code)
        await self.client.delete(self.keys.wait, self.keys.limiter, self.keys.limiter_index)

    async def remove_jobs(self, pattern: str) -> list[str]:
        """Remove unlocked jobs whose id matches the glob ``pattern``."""
        cursor, removed = "0", []
        while True:
            cursor, ids = await self.scripts.remove_jobs(pattern, cursor)
            removed.extend(ids)
            if cursor == "0":
                return removed

    async def retry_jobs(self, count: int = 1000) -> None:
        """Move every failed job back to wait."""
        while await self.scripts.retry_jobs(count=count) == 1:
            pass

    async def wait_until_finished(self, job_id: str) -> Any:
        """Result of a job once it completes (raises :class:`JobFailedError` if it fails)."""
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.keys.completed, self.keys.failed)
            while True:
                outcome = await self._finished_outcome(job_id)
                if outcome is not None:
                    return _raise_or_return(job_id, outcome)
                # Events are the fast path; the periodic re-check covers a missed
                # publish (Node's job.finished() also polls).
                deadline = asyncio.get_running_loop().time() + 5.0
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                    if msg is None:
                        continue
                    payload = _wire.loads(msg["data"])
                    if payload.get("jobId") != job_id:
                        continue
                    # The payload carries the outcome: the job hash may already be
                    # gone (removeOnComplete), so don't re-read it.
                    if bytes(msg["channel"]).decode() == self.keys.failed:
                        raise JobFailedError(job_id, str(payload.get("val")))
                    val = payload.get("val")
                    return _wire.loads(val) if isinstance(val, str) else None
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _finished_outcome(self, job_id: str) -> tuple[str, Any] | None:
        state = await self.scripts.is_finished(job_id)
        if state is None:
            return None
        field = b"returnvalue" if state == 1 else b"failedReason"
        value = cast("bytes | None", await self.client.hget(self.keys.job(job_id), field))
        if state == 1:
            return "completed", _wire.loads(value) if value else None
        return "failed", bytes(value or b"").decode("utf-8", "replace")


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


def _raise_or_return(job_id: str, outcome: tuple[str, Any]) -> Any:
    kind, value = outcome
    if kind == "failed":
        raise JobFailedError(job_id, value)
    return value
