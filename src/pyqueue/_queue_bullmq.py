"""BullMQ mode of :class:`pyqueue.Queue`: the same methods over BullMQ 6's wire format.

``Queue(name, url, protocol="bullmq")`` makes a :class:`BullMQQueue` (the object
takes this class in ``Queue.__init__``), and a ``protocol=None`` queue becomes one
when its first use finds a BullMQ queue in Redis (``Queue.adopt``). The choice is made
once per object, by its class: no method here or in the worker's engine asks
which format it speaks. Every Redis call goes through the queue's
:class:`~pyqueue._protocol.interface.QueueProtocol` (``self.protocol``).

What differs from Bull mode is BullMQ's, on purpose (docs/bullmq.md): ids are
strings and never integers; there is no job ``timeout``; repeatable jobs are
job schedulers; states include ``prioritized`` and ``waiting-children``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from typing_extensions import TypeVar, Unpack

from pyqueue import _durations
from pyqueue._protocol.bullmq import wire as mqwire
from pyqueue._protocol.formats import detect_format, open_protocol
from pyqueue._protocol.interface import AddResult, Dedup, NewJob, QueueProtocol
from pyqueue._stream_waiting import StreamWaiters
from pyqueue.errors import (
    InvalidOptionsError,
    JobFailedError,
    JobNotFound,
    JobStateError,
    ProtocolMismatchError,
)
from pyqueue.job import AbortOutcome, Job, JobOwner, JobState, now_ms
from pyqueue.options import JobOptionFields, JobOptions, check_backoff_type
from pyqueue.queue import _FORMAT_CLASSES, BulkJob, Queue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyqueue.repeat import Repeat

DataT = TypeVar("DataT", default=Any)

_NO_OPTIONS = JobOptions()
_DEFAULT_NAME = "__default__"
# getState's answer for an id no structure holds.
_UNKNOWN = "unknown"


class BullMQQueue(Queue[DataT]):
    """A :class:`~pyqueue.Queue` speaking BullMQ 6 (``Queue(..., protocol="bullmq")``)."""

    _proto: QueueProtocol

    def _adopted(self) -> None:
        # Made by Queue.adopt: protocol="bullmq", or a protocol=None queue that
        # found BullMQ in Redis.
        if self.limiter_group_key is not None:
            raise InvalidOptionsError("limiter_group_key: Bull 4 only (BullMQ has no groups)")
        if self.durability is not None:
            raise InvalidOptionsError("durability: not available in BullMQ mode yet")
        self.protocol_requested = "bullmq"
        self._proto = open_protocol("bullmq", self._client, self.prefix, self.name,
                                    fast=self._fast)
        self._stream_waits: StreamWaiters | None = None

    @property
    def format(self) -> str:
        return "bullmq"

    @property
    def protocol(self) -> QueueProtocol:
        """The queue's BullMQ calls, bound to the event loop that first used them."""
        self._bind_loop()
        return self._proto

    async def _resolve_format(self) -> bool:
        found = await detect_format(self.client, self.prefix, self.name)
        if found == "bull":
            raise ProtocolMismatchError(
                f"queue {self.name!r} (prefix {self.prefix!r}) is a Bull queue in Redis; "
                "open it with protocol='bull' (or None to detect)",
                found="bull", requested="bullmq",
            )
        self._format_known = True
        return False

    async def _checked(self) -> QueueProtocol:
        """The protocol, once Redis was checked to hold no Bull queue by this name."""
        self._check_open()
        if not self._format_known:
            await self._resolve_format()
        return self.protocol

    async def _scheduler_calls(self, method: str) -> QueueProtocol:
        return await self._checked()

    def _connections_replaced(self) -> None:
        # A new client (the setter) or new connections for a new event loop; the
        # waits' reader, if any, belonged to the old ones.
        self._proto = open_protocol("bullmq", self._client, self.prefix, self.name,
                                    fast=self._fast)
        self._stream_waits = None

    async def close(self) -> None:
        """Close the connections this queue opened (the waits' reader too). Idempotent."""
        waits, self._stream_waits = self._stream_waits, None
        if waits is not None and not self._closed:
            await waits.aclose()
        await super().close()

    def _waits(self) -> StreamWaiters:
        waits = self._stream_waits
        if waits is None:
            proto = self._proto
            waits = self._stream_waits = StreamWaiters(
                lambda: self.connection_spec.async_client(max_connections=1, socket_timeout=None),
                lambda client, last_id: proto.event_feed(client, last_id=last_id),
                proto.base + "events",
            )
        return waits

    @property  # type: ignore[misc]
    def scripts(self) -> _JobCalls:  # type: ignore[override]
        """What a :class:`~pyqueue.Job` of this queue calls (see :class:`_JobCalls`)."""
        return _JobCalls(self.protocol, self.token)

    # --- payloads -------------------------------------------------------------

    def job_from_raw(self, job_id: str, raw: dict[bytes, bytes]) -> Job[DataT]:
        record = self._proto.decode_job(job_id, raw)
        return Job(cast("JobOwner", self), record, record.data)

    def _job_from(self, job_id: str, raw: dict[bytes, bytes]) -> Job[DataT]:
        job = self.job_from_raw(job_id, raw)
        if self.model is not None and job.record.data_error is None:
            with contextlib.suppress(ValidationError):
                job.data = self.decode_data(job.record.data)
        return job

    # --- adding ---------------------------------------------------------------

    def _new_job(self, data: Any, name: str | None, options: JobOptions, now: int) -> tuple[
        NewJob, Any
    ]:
        """The job to add and its validated data (raises InvalidOptionsError)."""
        opts = options.merged_over(self.default_job_options)
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidOptionsError(f"name: must be a non-empty string, got {name!r}")
        if opts.backoff is not None:
            check_backoff_type(opts.backoff, self.backoff_strategies)
        job_id = "" if opts.job_id is None else self._proto.check_job_id(opts.job_id)
        value = self._validated(data)
        # Bull's debounce is BullMQ's simple deduplication (id, optional ttl).
        dedup = None if opts.debounce is None else Dedup(id=opts.debounce.id,
                                                         ttl=opts.debounce.ttl)
        wire_opts = self._proto.encode_options(opts, dedup=dedup)
        return NewJob(
            job_id=job_id, name=name or _DEFAULT_NAME, data=mqwire.encode_data(value),
            opts=mqwire.dumps(wire_opts), timestamp=opts.timestamp or now,
            delay=int(opts.delay or 0), priority=opts.priority or 0, lifo=bool(opts.lifo),
            dedup=dedup,
        ), value

    def _made(self, new: NewJob, result: AddResult, value: Any) -> Job[DataT]:
        """The job an add created, from what it wrote (no round trip)."""
        raw = {
            b"name": new.name.encode(), b"data": new.data.encode(), b"opts": new.opts.encode(),
            b"timestamp": str(new.timestamp).encode(), b"delay": str(new.delay).encode(),
            b"priority": str(new.priority).encode(),
        }
        record = self._proto.decode_job(result.id, raw)
        job = Job(cast("JobOwner", self), record, value)
        job.created = True
        return job

    async def add(  # type: ignore[override]
        self, data: DataT | Mapping[str, Any], *, name: str | None = None,
        repeat: Repeat | None = None, **options: Unpack[JobOptionFields],
    ) -> Job[DataT] | None:
        """Add a job (BullMQ's ``Queue.add``); ``job.created`` tells whether this call
        created it. An existing custom id, or a held deduplication (``debounce``)
        id, creates nothing: the stored job is returned and ``duplicated`` (or
        ``deduplicated``) is emitted with its id.

        Raises:
            InvalidOptionsError: bad options (``repeat`` and ``timeout`` do not
                exist in BullMQ mode; an integer-like or ``:`` id), nothing written.
        """
        proto = await self._checked()
        if repeat is not None:
            raise InvalidOptionsError("repeat: BullMQ mode has job schedulers instead")
        job_options = JobOptions.from_kwargs(options) if options else _NO_OPTIONS
        new, value = self._new_job(data, name, job_options, now_ms())
        result = await proto.add_job(new, token=self.token)
        if not result.created:
            return await self._found(result)
        job = self._made(new, result, value)
        self.emit("waiting" if not new.delay else "delayed", job)
        return job

    async def _found(self, result: AddResult) -> Job[DataT]:
        self.emit("deduplicated" if result.deduplicated else "duplicated", result.id)
        job = await self.get_job(result.id)
        if job is None:  # removed between the add and this read
            raise JobNotFound(f"job {result.id!r} does not exist", job_id=result.id, code=-1)
        return job

    async def add_bulk(self, jobs: Iterable[BulkJob]) -> list[Job[DataT]]:
        """Add many jobs atomically in one round trip (BullMQ's ``addBulk``)."""
        proto = await self._checked()
        now = now_ms()
        built = [self._new_job(j.data, j.name, j.options or _NO_OPTIONS, now) for j in jobs]
        if not built:
            return []
        results = await proto.add_jobs([new for new, _ in built], token=self.token)
        out: list[Job[DataT]] = []
        for (new, value), result in zip(built, results, strict=True):
            out.append(self._made(new, result, value) if result.created
                       else await self._found(result))
        return out

    # --- reading --------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job[DataT] | None:
        proto = await self._checked()
        raw = await proto.get_job_hash(str(job_id))
        return self._job_from(str(job_id), raw) if raw else None

    async def get_job_state(self, job_id: str) -> JobState:
        """BullMQ's ``getState`` (``prioritized`` and ``waiting-children`` included).

        Raises:
            JobNotFound: no structure holds the id (BullMQ's ``unknown``).
        """
        proto = await self._checked()
        state = await proto.get_state(str(job_id))
        if state == _UNKNOWN:
            raise JobNotFound(f"job {job_id!r} does not exist", job_id=str(job_id), code=-1)
        return cast("JobState", state)

    async def get_job_counts(self, *states: str) -> dict[str, int]:
        """BullMQ's ``getJobCounts``: every state of BullMQ by default."""
        proto = await self._checked()
        wanted = states or proto.states
        for state in wanted:
            if state not in proto.states and state != "wait":
                raise InvalidOptionsError(
                    f"state: must be one of {', '.join(proto.states)}, got {state!r}"
                )
        return await proto.get_counts(list(wanted))

    async def count(self) -> int:
        """Jobs still to run: waiting, paused, prioritized and delayed (BullMQ's ``count``)."""
        c = await self.get_job_counts("waiting", "paused", "prioritized", "delayed")
        return sum(c.values())

    async def get_job_ids(
        self, states: Sequence[str] | str, start: int = 0, end: int = -1, *, asc: bool = False,
    ) -> list[str]:
        proto = await self._checked()
        wanted = [states] if isinstance(states, str) else list(states)
        ids: list[str] = []
        for state in wanted:
            ids.extend(await proto.get_job_ids(state, start, end, asc=asc))
        return ids

    async def get_jobs(
        self, states: Sequence[str] | str, start: int = 0, end: int = -1, *, asc: bool = False,
    ) -> list[Job[DataT]]:
        ids = await self.get_job_ids(states, start, end, asc=asc)
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self._proto.base + job_id)
            raws = await pipe.execute()
        return [self._job_from(i, r) for i, r in zip(ids, raws, strict=True) if r]

    async def get_job_logs(
        self, job_id: str, start: int = 0, end: int = -1, *, asc: bool = True
    ) -> tuple[list[str], int]:
        proto = await self._checked()
        return await proto.get_logs(str(job_id), start, end, asc=asc)

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[str, int]:
        proto = await self._checked()
        counts = await proto.get_counts_per_priority(priorities)
        return {str(p): c for p, c in zip(priorities, counts, strict=True)}

    # --- managing ---------------------------------------------------------------

    async def pause(self) -> None:
        """Pause the queue for every worker (BullMQ's ``meta.paused``)."""
        await (await self._checked()).pause(True)
        self.emit("paused")

    async def resume(self) -> None:
        await (await self._checked()).pause(False)
        self.emit("resumed")

    async def is_paused(self) -> bool:
        return await (await self._checked()).is_paused()

    async def abort(self, job_id: str, reason: str | None = None) -> AbortOutcome:
        raise InvalidOptionsError("abort: not available in BullMQ mode (BullMQ has none)")

    async def clean(
        self, grace: int | timedelta, state: str = "completed", limit: int = 0,
    ) -> list[str]:
        """Delete jobs of ``state`` older than ``grace`` ms (BullMQ's ``clean``)."""
        proto = await self._checked()
        grace_ms = _durations.whole_ms("grace", grace)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidOptionsError(f"limit: must be an int >= 0, got {limit!r}")
        ids = await proto.clean(
            "wait" if state == "waiting" else state, max_timestamp=now_ms() - grace_ms,
            limit=limit,
        )
        self.emit("cleaned", ids, state)
        return ids

    async def empty(self) -> None:
        """Drop waiting and delayed jobs (BullMQ's ``drain(true)``)."""
        await (await self._checked()).drain(delayed=True)

    async def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue, pausing it first (BullMQ's ``obliterate``).

        Raises:
            JobStateError: active jobs exist and ``force`` is False.
        """
        await self.pause()
        await self._proto.obliterate(force=force, count=count)

    async def retry_jobs(self, count: int = 1000) -> None:
        """Move every failed job back to wait (BullMQ's ``retryJobs``)."""
        await (await self._checked()).retry_all(state="failed", count=count, now=now_ms())

    async def remove_debounce_key(self, debounce_id: str) -> bool:
        """Free a deduplication id (BullMQ's ``removeDeduplicationKey``)."""
        return await (await self._checked()).remove_dedup(debounce_id)

    # --- waiting for a job --------------------------------------------------------

    async def wait_until_finished(
        self, job_id: str, timeout: float | timedelta | None = None
    ) -> Any:
        """The job's return value once it completes, read from the ``events`` stream.

        Every wait of this queue object shares one stream reader (one connection
        however many wait, see :mod:`pyqueue._stream_waiting`); an entry naming the
        job makes its waiter read the job's outcome again.

        Raises:
            JobFailedError: the job failed for good.
            JobNotFound: no such job, or it was removed.
            TimeoutError: ``timeout`` passed first.
        """
        proto = await self._checked()
        seconds = _durations.timeout(timeout)
        job_id = str(job_id)
        waits = self._waits()
        async with asyncio.timeout(seconds), waits.watching(job_id) as woken:
            while True:
                woken.clear()
                code, text = await proto.finished_outcome(job_id)
                if code == 1:
                    return mqwire.loads(text or "null")
                if code == 2:
                    raise JobFailedError(job_id, text or "")
                if code == -1:
                    raise JobNotFound(f"job {job_id!r} does not exist", job_id=job_id, code=-1)
                await woken.wait()
                await waits.ensure()  # a reader that died is replaced


class _JobCalls:
    """The calls a :class:`~pyqueue.Job` makes on ``queue.scripts``, in BullMQ mode.

    ``Job`` is shared by both modes and speaks Bull's script names; this maps
    each to the protocol's operation, with Bull's return codes where ``Job``
    reads them.
    """

    __slots__ = ("_proto", "_token", "on_dropped")

    def __init__(self, proto: QueueProtocol, token: str) -> None:
        self._proto = proto
        self._token = token
        self.on_dropped: Any = None

    async def update_progress(self, job_id: str, *, progress_json: str,
                              event_payload: str = "") -> None:
        await self._proto.update_progress(job_id, progress_json)

    async def add_log(self, job_id: str, *, line: str) -> int:
        return await self._proto.add_log(job_id, line)

    async def update_data(self, job_id: str, *, data_json: str) -> None:
        await self._proto.update_data(job_id, data_json)

    async def remove_job(self, job_id: str, *, token: str) -> bool:
        return await self._proto.remove(job_id, token=token)

    async def reprocess_job(self, job_id: str, *, lifo: bool, token: str, now: int) -> int:
        try:
            await self._proto.reprocess(job_id, state="failed", lifo=lifo, token=token, now=now)
        except JobNotFound:
            return 0
        except JobStateError:
            return -2
        return 1

    async def promote(self, job_id: str, *, token: str) -> None:
        await self._proto.promote(job_id, token=token)

    async def is_finished(self, job_id: str) -> int:
        code, _ = await self._proto.finished_outcome(job_id)
        return code


_FORMAT_CLASSES["bullmq"] = BullMQQueue
