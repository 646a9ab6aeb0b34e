"""Every Redis key of a queue, in BullMQ 6's layout.

This module is the only place that builds BullMQ key strings. A queue's keys are
``<prefix>:<queue>:<suffix>`` and a job's hash is ``<prefix>:<queue>:<job id>``,
as in Bull, but the set differs: there are no pub/sub channels (events go to
the ``events`` stream), prioritized jobs live in the ``prioritized`` sorted set
ordered by ``priority * 2**32 + counter`` (counter ``pc``), a paused queue keeps
its jobs in ``wait`` and says so in ``meta`` (``paused`` is only read, to move
jobs left there by older releases), and idle workers block on ``marker``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

# Suffixes BullMQ gives queue-level keys (QueueKeys.getKeys), plus the ones its
# scripts build (metrics, de:/dn: dedup keys, repeat:<id> scheduler hashes).
RESERVED_IDS: frozenset[str] = frozenset(
    {
        "active", "wait", "waiting-children", "paused", "id", "delayed", "prioritized",
        "stalled-check", "completed", "failed", "stalled", "repeat", "limiter", "meta",
        "events", "pc", "marker", "de", "dn", "metrics", "priority",
    }
)

# Job sub-keys (``<job key>:<suffix>``) a job may own; deleting a job deletes them.
JOB_SUFFIXES: tuple[str, ...] = (
    "logs", "dependencies", "processed", "failed", "unsuccessful", "lock",
)


@dataclass(frozen=True, slots=True)
class BullMQKeys:
    """Key names for one BullMQ queue.

    Args:
        prefix: BullMQ's key prefix (``bull`` by default, as in Bull).
        queue: The queue name.
    """

    prefix: str
    queue: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{self.prefix}:{self.queue}:")

    @property
    def qualified_name(self) -> str:
        """``<prefix>:<queue>``: what a child's ``parent.queueKey`` names."""
        return self.base[:-1]

    def key(self, suffix: str) -> str:
        """The queue-level key ``<prefix>:<queue>:<suffix>``."""
        return self.base + suffix

    # --- queue-level keys ----------------------------------------------------

    @property
    def wait(self) -> str:
        return self.base + "wait"

    @property
    def paused(self) -> str:
        """Left by releases before BullMQ 5: read on resume, never written to."""
        return self.base + "paused"

    @property
    def active(self) -> str:
        return self.base + "active"

    @property
    def prioritized(self) -> str:
        return self.base + "prioritized"

    @property
    def priority_counter(self) -> str:
        """``pc``: the counter that orders jobs of one priority (FIFO within it)."""
        return self.base + "pc"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def waiting_children(self) -> str:
        return self.base + "waiting-children"

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
    def limiter(self) -> str:
        return self.base + "limiter"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def events(self) -> str:
        """The stream every state change is XADDed to."""
        return self.base + "events"

    @property
    def id(self) -> str:
        return self.base + "id"

    @property
    def marker(self) -> str:
        """Sorted set idle workers BZPOPMIN: ``"0"`` (score 0) = a job is ready,
        ``"1"`` (score = due ms) = the next delayed job."""
        return self.base + "marker"

    @property
    def repeat(self) -> str:
        """Job schedulers by id, scored by their next run (ms)."""
        return self.base + "repeat"

    def scheduler(self, scheduler_id: str) -> str:
        """A job scheduler's hash: its options and template."""
        return f"{self.base}repeat:{scheduler_id}"

    def metrics(self, kind: str) -> str:
        """``metrics:completed`` or ``metrics:failed`` (the hash)."""
        return f"{self.base}metrics:{kind}"

    def metrics_data(self, kind: str) -> str:
        return f"{self.base}metrics:{kind}:data"

    def finished_set(self, kind: str) -> str:
        """``completed`` or ``failed``."""
        return self.base + kind

    def dedup(self, dedup_id: str) -> str:
        """``de:<id>``: holds the id of the job that owns a deduplication id."""
        return f"{self.base}de:{dedup_id}"

    def dedup_next(self, dedup_id: str) -> str:
        """``dn:<id>``: the job to add when the owner finishes (keepLastIfActive)."""
        return f"{self.base}dn:{dedup_id}"

    # --- per-job keys -------------------------------------------------------

    def job(self, job_id: str) -> str:
        return self.base + job_id

    def lock(self, job_id: str) -> str:
        return f"{self.base}{job_id}:lock"

    def logs(self, job_id: str) -> str:
        return f"{self.base}{job_id}:logs"

    def dependencies(self, job_id: str) -> str:
        """A parent's pending children (set of child job keys)."""
        return f"{self.base}{job_id}:dependencies"

    def processed(self, job_id: str) -> str:
        """A parent's completed children: child key -> return value JSON."""
        return f"{self.base}{job_id}:processed"

    def failed_children(self, job_id: str) -> str:
        """A parent's ignored or continued-on failures: child key -> reason."""
        return f"{self.base}{job_id}:failed"

    def unsuccessful(self, job_id: str) -> str:
        """A parent's children that failed it (failParentOnFailure), scored by time."""
        return f"{self.base}{job_id}:unsuccessful"

    @property
    def pattern(self) -> str:
        """Glob matching every key of this queue."""
        return self.base + "*"

    # --- connection names ---------------------------------------------------

    @property
    def worker_client_name(self) -> str:
        """BullMQ's name for an unnamed worker's connections: ``<prefix>:<base64(queue)>``.

        ``Queue.getWorkers()`` (and bull-board) list the CLIENT LIST entries
        named this, or starting with :meth:`named_worker_client_name`'s ``:w:``.
        """
        return f"{self.prefix}:{base64.b64encode(self.queue.encode()).decode()}"

    def named_worker_client_name(self, worker_name: str) -> str:
        """A worker with a ``name`` option: ``<prefix>:<base64(queue)>:w:<name>``."""
        return f"{self.worker_client_name}:w:{worker_name}"

    @property
    def events_client_name(self) -> str:
        """A ``QueueEvents`` connection: ``<prefix>:<base64(queue)>:qe``."""
        return f"{self.worker_client_name}:qe"


def split_job_key(job_key: str) -> tuple[str, str]:
    """``(queue base, job id)`` of a job key, as BullMQ's scripts split it.

    The id is what follows the last ``:``; the base keeps its trailing ``:``.
    """
    base, _, job_id = job_key.rpartition(":")
    return base + ":", job_id
