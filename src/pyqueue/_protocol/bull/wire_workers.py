"""The wire format of pyqueue's own worker records, beside Bull's (see :mod:`.wire`).

Two things Node Bull neither writes nor reads:

* the **attempt's worker**, two job-hash fields set by the script that starts
  the attempt (``includes/activate.lua``): ``pqWorker``, the identity JSON
  ``{"id","host","pid"}`` of the worker that took the job, and ``pqWorkerAt``,
  the ``processedOn`` it was taken at. Bull's ``Job.fromJSON`` copies named
  fields only, so Node (and bull-board, which reads ``job.toJSON()``) never
  sees them; a Node worker that starts a later attempt leaves them as they
  were, which is why ``pqWorkerAt`` is kept: when it differs from
  ``processedOn`` the latest attempt was not pyqueue's.
* the **heartbeat record** a pyqueue worker writes every few seconds under
  ``pq-worker:<id>`` (with a TTL), indexed in the ``pq-workers`` sorted set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

WORKER_FIELD = "pqWorker"
WORKER_AT_FIELD = "pqWorkerAt"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """Who ran an attempt: the worker's id (its lock token), host and process id."""

    id: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One heartbeat of a pyqueue worker.

    ``beat_ms`` is when it was written and ``ttl_ms`` how long it is kept
    without the next one; ``jobs`` are the ids the worker ran at that moment;
    ``client_id`` is the Redis ``CLIENT ID`` of its blocking connection (named
    as Bull names a worker's), so tools can tell its CLIENT LIST entry from a
    Node worker's.
    """

    identity: WorkerIdentity
    queue: str
    lib: str
    version: str
    concurrency: int
    jobs: tuple[str, ...]
    started_ms: int
    beat_ms: int
    ttl_ms: int
    client_id: int | None = None


def identity_json(identity: WorkerIdentity) -> str:
    """The ``pqWorker`` value: compact JSON, written once per worker into its scripts' ARGV."""
    return _dumps({"id": identity.id, "host": identity.host, "pid": identity.pid})


def _identity_of(value: Any) -> WorkerIdentity | None:
    if not isinstance(value, dict):
        return None
    worker_id, host, pid = value.get("id"), value.get("host"), value.get("pid")
    if not isinstance(worker_id, str) or not isinstance(host, str):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int):
        return None
    return WorkerIdentity(worker_id, host, pid)


def parse_identity(raw: bytes | str | None) -> WorkerIdentity | None:
    """The identity in a ``pqWorker`` field, or None when absent or unreadable."""
    if raw is None:
        return None
    try:
        return _identity_of(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        return None


def record_json(record: WorkerRecord) -> str:
    """A heartbeat record as stored under ``pq-worker:<id>``."""
    ident = record.identity
    return _dumps({
        "id": ident.id, "host": ident.host, "pid": ident.pid, "queue": record.queue,
        "lib": record.lib, "version": record.version, "concurrency": record.concurrency,
        "jobs": list(record.jobs), "startedOn": record.started_ms, "beatOn": record.beat_ms,
        "ttl": record.ttl_ms, "clientId": record.client_id,
    })


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_record(raw: bytes | str | None) -> WorkerRecord | None:
    """A heartbeat record, or None when absent or not one (anyone can write a key)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    identity = _identity_of(value)
    if identity is None:
        return None
    jobs = value.get("jobs")
    client_id = value.get("clientId")
    return WorkerRecord(
        identity=identity,
        queue=str(value.get("queue", "")),
        lib=str(value.get("lib", "pyqueue")),
        version=str(value.get("version", "")),
        concurrency=_int(value.get("concurrency")),
        jobs=tuple(str(j) for j in jobs) if isinstance(jobs, list) else (),
        started_ms=_int(value.get("startedOn")),
        beat_ms=_int(value.get("beatOn")),
        ttl_ms=_int(value.get("ttl")),
        client_id=client_id if isinstance(client_id, int) and not isinstance(
            client_id, bool) else None,
    )
