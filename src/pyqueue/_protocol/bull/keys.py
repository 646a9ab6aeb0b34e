"""Every Redis key and channel name of a queue, in Bull 4's layout.

This module is the only place that builds key strings. A queue's keys are
``<prefix>:<queue>:<suffix>``; a job's hash is ``<prefix>:<queue>:<job id>``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

# Suffixes Bull uses for queue-level keys. A custom job id equal to one of these
# would make the job hash overwrite (or be overwritten by) a queue structure.
RESERVED_IDS: frozenset[str] = frozenset(
    {
        "wait",
        "paused",
        "meta-paused",
        "meta",
        "active",
        "priority",
        "delayed",
        "completed",
        "failed",
        "stalled",
        "stalled-check",
        "id",
        "repeat",
        "limiter",
        "metrics",
        "waiting",
        "progress",
        "drained",
        "resumed",
        "duplicated",
        "pq-crons",
        # pyqueue's own queue-level keys (Node Bull never reads them).
        "pq-workers",
    }
)
# Queue-level key families: an id starting with one of these names a key of
# Bull's (or pyqueue's), never a job.
RESERVED_ID_PREFIXES: tuple[str, ...] = ("limiter:", "metrics:", "pq-worker:")
# Per-job keys: "<id>:lock" and "<id>:logs" belong to job <id>, not a job of their own.
_PER_JOB_SUFFIXES: tuple[str, ...] = (":lock", ":logs")


def names_queue_key(job_id: str) -> bool:
    """Whether ``job_id`` spells a key of the queue other than a job hash.

    ``wait``, ``id``, ``metrics:completed``, ``limiter:index``, ``7:logs``,
    ``7:lock``, ``pq-workers``, ... : reading such an id as a job would read (and
    removing it would delete) a structure of the queue itself.
    """
    return (
        job_id in RESERVED_IDS
        or job_id.startswith(RESERVED_ID_PREFIXES)
        or job_id.endswith(_PER_JOB_SUFFIXES)
    )


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Key names for one queue.

    Args:
        prefix: Bull's key prefix (``bull`` by default).
        queue: The queue name.
    """

    prefix: str
    queue: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{self.prefix}:{self.queue}:")

    def key(self, suffix: str) -> str:
        """The queue-level key ``<prefix>:<queue>:<suffix>``."""
        return self.base + suffix

    @property
    def wait(self) -> str:
        return self.base + "wait"

    @property
    def paused(self) -> str:
        return self.base + "paused"

    @property
    def meta_paused(self) -> str:
        return self.base + "meta-paused"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def active(self) -> str:
        return self.base + "active"

    @property
    def priority(self) -> str:
        return self.base + "priority"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def completed(self) -> str:
        return self.base + "completed"

    @property
    def failed(self) -> str:
        return self.base + "failed"

    @property
    def stalled(self) -> str:
        return self.base + "stalled"

    @property
    def stalled_check(self) -> str:
        return self.base + "stalled-check"

    @property
    def id(self) -> str:
        return self.base + "id"

    @property
    def repeat(self) -> str:
        return self.base + "repeat"

    @property
    def cron_registry(self) -> str:
        """pyqueue only: a hash of the cron schedules each ``WorkerSettings`` declared here.

        Field: the schedule's repeat key; value: the settings' name. Bull never
        reads it; ``pq-crons`` is refused as a job id.
        """
        return self.base + "pq-crons"

    @property
    def limiter(self) -> str:
        return self.base + "limiter"

    def limiter_group(self, group: str) -> str:
        return f"{self.base}limiter:{group}"

    @property
    def limiter_index(self) -> str:
        return self.base + "limiter:index"

    def metrics(self, kind: str) -> str:
        """``metrics:completed`` or ``metrics:failed`` (the hash)."""
        return f"{self.base}metrics:{kind}"

    def metrics_data(self, kind: str) -> str:
        return f"{self.base}metrics:{kind}:data"

    def finished_set(self, kind: str) -> str:
        """``completed`` or ``failed``."""
        return self.base + kind

    # --- pyqueue's own keys (Node Bull never reads them) ----------------------

    @property
    def workers(self) -> str:
        """pyqueue only: the live workers' ids, scored by when their record expires (ms)."""
        return self.base + "pq-workers"

    def worker(self, worker_id: str) -> str:
        """pyqueue only: one worker's heartbeat record (JSON, with a TTL)."""
        return f"{self.base}pq-worker:{worker_id}"

    # --- per-job keys -------------------------------------------------------

    def job(self, job_id: str) -> str:
        return self.base + job_id

    def lock(self, job_id: str) -> str:
        return f"{self.base}{job_id}:lock"

    def logs(self, job_id: str) -> str:
        return f"{self.base}{job_id}:logs"

    def debounce(self, debounce_id: str) -> str:
        """Bull 4.16's debounce key: holds the id of the job that took ``debounce_id``."""
        return f"{self.base}de:{debounce_id}"

    # --- pub/sub channels ---------------------------------------------------

    def waiting_channel(self, token: str) -> str:
        return f"{self.base}waiting@{token}"

    def active_channel(self, token: str) -> str:
        return f"{self.base}active@{token}"

    def duplicated_channel(self, token: str) -> str:
        return f"{self.base}duplicated@{token}"

    def debounced_channel(self, token: str) -> str:
        """Bull 4.16: an add was debounced; the message is the existing job's id."""
        return f"{self.base}debounced@{token}"

    @property
    def abort_channel(self) -> str:
        """pyqueue only: a job id to abort, for the worker running it (Node never listens)."""
        return self.base + "pq-abort"

    @property
    def stalled_channel(self) -> str:
        return self.base + "stalled@"

    def channel(self, event: str) -> str:
        """A plain event channel: progress, completed, failed, delayed, paused, resumed, drained."""
        return self.base + event

    @property
    def pattern(self) -> str:
        """Glob matching every key of this queue."""
        return self.base + "*"

    # --- connection names -----------------------------------------------------

    @property
    def worker_client_name(self) -> str:
        """Bull's name for a worker's blocking connection: ``<prefix>:<base64(queue)>``.

        Bull's ``getWorkers()`` (and bull-board) count the connections that
        CLIENT LIST shows with a name starting with this.
        """
        return f"{self.prefix}:{base64.b64encode(self.queue.encode()).decode()}"
