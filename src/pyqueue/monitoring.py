"""Read-only views of a queue for the tools that operate it: who works on it, and what holds it.

The CLI, the dashboard and the metrics exporter (``pyqueue.tools``) read queues
through :class:`~pyqueue.Queue`'s methods and through this module; nothing here
writes to Redis. Everything is bounded: at most ``limit`` jobs are looked at,
and each call is a few pipelined round trips, so a tool can run them every
second against a queue of millions of jobs.

* :func:`get_workers`: the live workers of a queue, by name. pyqueue workers
  from their heartbeat records (host, pid, version, concurrency, current jobs);
  Node Bull workers from the ``CLIENT LIST`` entry Bull names after the queue.
* :func:`get_job`: a job by id, or None when the id is not a job's (it names
  another key of the queue, such as ``wait`` or ``metrics:completed``).
* :func:`get_attempt_worker`: which pyqueue worker started a job's attempt.
* :func:`get_active_jobs`: active jobs with their lock's owner, to find the
  ones no live worker holds.
* :func:`get_rate_limited`: delayed jobs the rate limiter parked (not a user's delay).
* :func:`get_overdue_repeatables`: schedules whose next run is in the past.
* :func:`queue_keys`: a queue's key names, for tools that read many queues in
  one pipeline (read them, never write them); :class:`BullMQKeys` for a BullMQ
  queue's.
* :func:`detect_format`, and :func:`probe_format` / :func:`format_from` (the same
  question split in two, to ask it inside a pipeline): which wire format a queue
  in Redis speaks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from redis.exceptions import ResponseError

from pyqueue import _scheduling
from pyqueue._protocol.bull import wire_workers
from pyqueue._protocol.bull.keys import QueueKeys, names_queue_key
from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.formats import (
    PROBE_LENGTH,
    Format,
    detect_format,
    format_from,
    probe_format,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue.job import Job
    from pyqueue.queue import Queue

__all__ = [
    "PROBE_LENGTH",
    "ActiveJob",
    "AttemptWorker",
    "BullMQKeys",
    "Format",
    "OverdueSchedule",
    "QueueKeys",
    "RateLimited",
    "WorkerInfo",
    "detect_format",
    "format_from",
    "get_active_jobs",
    "get_attempt_worker",
    "get_job",
    "get_overdue_repeatables",
    "get_rate_limited",
    "get_workers",
    "names_queue_key",
    "probe_format",
    "queue_keys",
    "workers_from",
    "workers_of",
]

# A limiter parks a job at (due * 4096 + n) in the delayed set, as every delay.
_SCORE_SHIFT = 4096
_CHUNK = 500
MAX_WORKERS = 1000
"""pyqueue workers listed per queue at most (a bound on the read, not a limit on workers)."""


def queue_keys(prefix: str, name: str) -> QueueKeys:
    """The key names of queue ``name`` under ``prefix`` (``keys.wait``, ``keys.job(id)``...)."""
    return QueueKeys(prefix, name)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- workers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One live worker of a queue.

    ``kind`` is ``"pyqueue"`` (from its heartbeat record) or ``"node"`` (a
    connection Bull named after the queue, which says only its address and
    timings: host, pid, version, concurrency and jobs are then None or empty).
    ``last_heartbeat_ms`` is the record's time for pyqueue, None for Node.
    """

    kind: Literal["pyqueue", "node"]
    id: str | None
    host: str | None
    pid: int | None
    version: str | None
    concurrency: int | None
    jobs: tuple[str, ...]
    last_heartbeat_ms: int | None
    started_ms: int | None = None
    address: str | None = None
    idle_seconds: int | None = None
    age_seconds: int | None = None

    @property
    def name(self) -> str:
        """``host:pid`` for a pyqueue worker, the connection's address for a Node one."""
        if self.host is not None:
            return f"{self.host}:{self.pid}"
        return self.address or "?"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "id": self.id, "name": self.name, "host": self.host,
            "pid": self.pid, "version": self.version, "concurrency": self.concurrency,
            "jobs": list(self.jobs), "lastHeartbeat": self.last_heartbeat_ms,
            "startedOn": self.started_ms, "address": self.address,
            "idleSeconds": self.idle_seconds, "ageSeconds": self.age_seconds,
        }


async def _client_list(client: aioredis.Redis, key: str) -> list[dict[str, Any]]:
    """CLIENT LIST of the server holding ``key`` ([] where CLIENT is forbidden)."""
    try:
        if hasattr(client, "get_node_from_key"):  # a cluster: the key's master only
            node = client.get_node_from_key(key)
            found = await client.client_list(target_nodes=node)
        else:
            found = await client.client_list()
    except ResponseError:
        return []
    return cast("list[dict[str, Any]]", found)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def get_workers(
    queue: Queue[Any], *, clients: list[dict[str, Any]] | None = None,
    now_ms: int | None = None,
) -> list[WorkerInfo]:
    """The queue's live workers: pyqueue's by heartbeat, then Node's by connection name.

    A pyqueue worker also names its blocking connection as Bull does (so Node's
    ``getWorkers`` and bull-board count it); its record carries that
    connection's id, so it is listed once. A pyqueue worker whose record has
    expired (killed, or cut off from Redis for longer than the record's TTL) is
    not listed; a pyqueue worker too old to write records shows as ``"node"``
    while its named connection is up.

    ``clients``: a ``CLIENT LIST`` already read (as redis-py parses it), for a
    tool that looks at many queues; by default the server's is read.
    """
    return await workers_of(queue.client, queue.keys, clients=clients, now_ms=now_ms)


async def workers_of(
    client: aioredis.Redis, keys: QueueKeys, *, clients: list[dict[str, Any]] | None = None,
    now_ms: int | None = None,
) -> list[WorkerInfo]:
    """:func:`get_workers` by key names, for tools that read many queues without Queue objects."""
    now = _now_ms() if now_ms is None else now_ms
    ids = [_text(i) for i in await client.zrangebyscore(keys.workers, now, "+inf", start=0,
                                                         num=MAX_WORKERS)]
    raws: list[Any] = []
    if ids:
        async with client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.get(keys.worker(worker_id))
            raws = await pipe.execute()
    if clients is None:
        clients = await _client_list(client, keys.wait)
    return workers_from(keys, raws, clients)


def workers_from(
    keys: QueueKeys, records: list[Any], clients: list[dict[str, Any]]
) -> list[WorkerInfo]:
    """The worker list from what was read: the heartbeat records (the values of
    ``keys.worker(id)`` for the ids in ``keys.workers`` scored from now on, None
    for a gone one) and a ``CLIENT LIST``. For tools that pipeline those reads
    over many queues; :func:`get_workers` reads them itself."""
    parsed = [wire_workers.parse_record(r) if isinstance(r, bytes | str) else None
              for r in records]
    found_records = [r for r in parsed if r is not None]
    found = [
        WorkerInfo(
            kind="pyqueue", id=r.identity.id, host=r.identity.host, pid=r.identity.pid,
            version=r.version, concurrency=r.concurrency, jobs=r.jobs,
            last_heartbeat_ms=r.beat_ms, started_ms=r.started_ms,
        )
        for r in sorted(found_records, key=lambda r: (r.identity.host, r.identity.pid))
    ]
    claimed = {r.client_id for r in found_records if r.client_id is not None}
    wanted = keys.worker_client_name
    for entry in clients:
        if entry.get("name") != wanted or _int_or_none(entry.get("id")) in claimed:
            continue
        found.append(WorkerInfo(
            kind="node", id=None, host=None, pid=None, version=None, concurrency=None,
            jobs=(), last_heartbeat_ms=None, address=str(entry.get("addr", "")) or None,
            idle_seconds=_int_or_none(entry.get("idle")),
            age_seconds=_int_or_none(entry.get("age")),
        ))
    return found


# --- jobs -----------------------------------------------------------------------


async def get_job(queue: Queue[Any], job_id: str) -> Job[Any] | None:
    """The job ``job_id`` of ``queue``, or None: no such job, or the id is not a job's.

    Unlike :meth:`Queue.get_job`, an id that spells another key of the queue
    (``wait``, ``id``, ``metrics:completed``, ``7:logs``...) is never read as a
    job, and neither is any key that is not a hash with Bull's ``timestamp``
    field (every add writes it), so nothing a tool then does to "the job" can
    touch a structure of the queue.
    """
    job_id = str(job_id)
    if not job_id or names_queue_key(job_id):
        return None
    key = queue.keys.job(job_id)
    async with queue.client.pipeline(transaction=False) as pipe:
        pipe.type(key)
        pipe.hgetall(key)
        kind, raw = await pipe.execute(raise_on_error=False)
    if _text(kind) != "hash" or not isinstance(raw, dict) or b"timestamp" not in raw:
        return None
    job: Job[Any] = queue.job_from_raw(job_id, cast("dict[bytes, bytes]", raw))
    return job


@dataclass(frozen=True, slots=True)
class AttemptWorker:
    """The pyqueue worker that started an attempt of a job.

    ``latest`` is False when a later attempt was started by a worker that does
    not record itself (Node Bull): this worker then ran an earlier attempt.
    """

    id: str
    host: str
    pid: int
    started_ms: int
    latest: bool

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"


async def get_attempt_worker(queue: Queue[Any], job_id: str) -> AttemptWorker | None:
    """Which pyqueue worker started the job's latest attempt it recorded, if any."""
    identity, at, processed = await queue.client.hmget(
        queue.keys.job(str(job_id)), wire_workers.WORKER_FIELD, wire_workers.WORKER_AT_FIELD,
        "processedOn",
    )
    found = wire_workers.parse_identity(identity)
    started = _int_or_none(_text(at)) if at is not None else None
    if found is None or started is None:
        return None
    latest = processed is not None and _int_or_none(_text(processed)) == started
    return AttemptWorker(found.id, found.host, found.pid, started, latest)


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """An active job and its lock: ``lock_owner`` is the token holding it, None when gone."""

    id: str
    lock_owner: str | None
    lock_ttl_ms: int | None
    processed_on: int | None
    timestamp: int | None


async def get_active_jobs(queue: Queue[Any], limit: int = 1000) -> tuple[list[ActiveJob], int]:
    """The ``limit`` longest-active jobs (the tail of the list) and how many are active."""
    keys = queue.keys
    async with queue.client.pipeline(transaction=False) as pipe:
        pipe.llen(keys.active)
        pipe.lrange(keys.active, -limit, -1)
        total, raw_ids = await pipe.execute()
    ids = [_text(i) for i in raw_ids]
    found: list[ActiveJob] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        async with queue.client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.get(keys.lock(job_id))
                pipe.pttl(keys.lock(job_id))
                pipe.hmget(keys.job(job_id), "processedOn", "timestamp")
            replies = await pipe.execute(raise_on_error=False)
        for i, job_id in enumerate(chunk):
            owner, ttl, stamps = replies[3 * i: 3 * i + 3]
            if isinstance(stamps, Exception):
                stamps = [None, None]
            found.append(ActiveJob(
                id=job_id,
                lock_owner=_text(owner) if isinstance(owner, bytes) else None,
                lock_ttl_ms=ttl if isinstance(ttl, int) and ttl >= 0 else None,
                processed_on=_int_or_none(_text(stamps[0])) if stamps[0] else None,
                timestamp=_int_or_none(_text(stamps[1])) if stamps[1] else None,
            ))
    return found, int(total)


# --- what holds jobs back -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimited:
    """Delayed jobs the rate limiter parked: ``count`` of them (of ``examined``
    limiter entries), the last due at ``until_ms``."""

    count: int
    until_ms: int | None
    examined: int
    complete: bool


async def get_rate_limited(queue: Queue[Any], limit: int = 10_000) -> RateLimited:
    """The delayed jobs that are rate-limiter bounces rather than a user's delay.

    Bull's limiter (and pyqueue's, without ``bounce_back``) parks a job in the
    delayed set and records it in ``limiter:index`` (id -> the limited set);
    jobs delayed by their own ``delay`` or a backoff are not there. Only index
    entries whose job is still delayed count (a promoted one stays in the index
    until a worker takes it). Looks at ``limit`` entries at most; ``complete``
    says whether that was all of them.
    """
    keys = queue.keys
    client = queue.client
    cursor: int = 0
    count = examined = 0
    until: int | None = None
    while True:
        cursor, entries = await client.hscan(keys.limiter_index, cursor, count=_CHUNK)
        ids = list(entries)
        if ids:
            async with client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.zscore(keys.delayed, job_id)
                scores = await pipe.execute()
            examined += len(ids)
            for score in scores:
                if score is None:
                    continue
                count += 1
                due = int(score) // _SCORE_SHIFT
                until = due if until is None else max(until, due)
        if cursor == 0 or examined >= limit:
            return RateLimited(count, until, examined, cursor == 0)


@dataclass(frozen=True, slots=True)
class OverdueSchedule:
    """A repeat schedule whose next run (``next_ms``) has passed.

    ``instance_state`` is the state of the job that run should be (``delayed``:
    no worker promoted it; ``waiting``: it waits for a worker; ``None``: it is
    gone, and the schedule will not fire until it is declared again).
    """

    key: str
    name: str
    next_ms: int
    instance_id: str
    instance_state: str | None


async def get_overdue_repeatables(
    queue: Queue[Any], *, grace_ms: int = 60_000, limit: int = 100, now_ms: int | None = None,
) -> tuple[list[OverdueSchedule], int]:
    """Schedules due more than ``grace_ms`` ago (at most ``limit``), and how many there are."""
    keys = queue.keys
    client = queue.client
    before = (_now_ms() if now_ms is None else now_ms) - grace_ms
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcount(keys.repeat, "-inf", before)
        pipe.zrangebyscore(keys.repeat, "-inf", before, start=0, num=limit, withscores=True)
        total, entries = await pipe.execute()
    out: list[OverdueSchedule] = []
    for member, score in entries:
        key = _text(member)
        millis = int(score)
        candidates = [f"{p}{millis}" for p in _scheduling.instance_prefixes_of_key(key)]
        state: str | None = None
        instance = candidates[0]
        for candidate in candidates:
            if await client.exists(keys.job(candidate)):
                instance = candidate
                state = await queue.get_job_state(candidate)
                break
        name = _scheduling.parse_repeat_key(key)["name"] or _scheduling.DEFAULT_NAME
        out.append(OverdueSchedule(key, name, millis, instance, state))
    return out, int(total)
