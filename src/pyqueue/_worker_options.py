"""Worker-side settings: :class:`WorkerOptions`, :class:`RateLimiter`, :class:`Durability`.

Importable from :mod:`pyqueue.options` and from ``pyqueue``. Each validates itself at
construction and raises :class:`~pyqueue.errors.InvalidOptionsError` naming the field;
durations take a number in the field's unit or a ``timedelta`` (see
:mod:`pyqueue._durations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pyqueue import _durations as dur
from pyqueue._durations import check_int, fail


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiter:
    """At most ``max`` jobs start per ``duration`` ms (shared by every worker of the queue).

    Args:
        max: Jobs per window.
        duration: Window length in ms (or a timedelta).
        bounce_back: Put limited jobs back in wait instead of delaying them.
        group_key: Limit per value of this data field (Bull's ``groupKey``).
    """

    max: int
    duration: int
    bounce_back: bool = False
    group_key: str | None = None

    if TYPE_CHECKING:

        def __init__(self, *, max: int, duration: int | timedelta, bounce_back: bool = ...,
                     group_key: str | None = ...) -> None: ...

    def __post_init__(self) -> None:
        check_int("limiter.max", self.max, minimum=1)
        object.__setattr__(self, "duration", dur.whole_ms("limiter.duration", self.duration,
                                                          minimum=1))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """Worker settings, with Bull's defaults. Durations take a timedelta too.

    Args:
        concurrency: Jobs processed at once.
        lock_duration: Lock TTL in ms.
        lock_renew_time: ms between lock renewals (default ``lock_duration / 2``);
            must be less than ``lock_duration``.
        stalled_interval: ms between stalled-job checks; 0 disables them.
        max_stalled_count: Recoveries allowed before a stalled job fails.
        guard_interval: Longest ms between delayed-job promotions.
        retry_process_delay: ms to wait after a Redis error before fetching again.
        drain_delay: Seconds a blocking fetch waits on an empty queue (Bull's unit).
        limiter: Optional :class:`RateLimiter`.
        metrics_max_data_points: Collect per-minute metrics, keeping this many points.
        shutdown_grace: Seconds ``close()`` waits for active jobs before releasing them.
        sandbox: Run handlers in child processes, one per concurrency slot (Bull's
            sandboxed processors). Handlers must be importable module-level functions;
            they get a :class:`pyqueue.JobHandle` (blocking ``progress``/``log``/``update``
            carried out by the worker's process), and a crash fails only
            the job that was running.
    """

    concurrency: int = 1
    lock_duration: int = 30_000
    lock_renew_time: int | None = None
    stalled_interval: int = 30_000
    max_stalled_count: int = 1
    guard_interval: int = 5_000
    retry_process_delay: int = 5_000
    drain_delay: float = 5.0
    limiter: RateLimiter | None = None
    metrics_max_data_points: int | None = None
    shutdown_grace: float = 30.0
    sandbox: bool = False

    if TYPE_CHECKING:

        def __init__(
            self, *, concurrency: int = ..., lock_duration: int | timedelta = ...,
            lock_renew_time: int | timedelta | None = ...,
            stalled_interval: int | timedelta = ..., max_stalled_count: int = ...,
            guard_interval: int | timedelta = ..., retry_process_delay: int | timedelta = ...,
            drain_delay: float | timedelta = ..., limiter: RateLimiter | None = ...,
            metrics_max_data_points: int | None = ...,
            shutdown_grace: float | timedelta = ..., sandbox: bool = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        check_int("concurrency", self.concurrency, minimum=1)
        for name, minimum in (("lock_duration", 1), ("stalled_interval", 0),
                              ("guard_interval", 1), ("retry_process_delay", 0)):
            object.__setattr__(self, name, dur.whole_ms(name, getattr(self, name),
                                                        minimum=minimum))
        if self.lock_renew_time is not None:
            renew = dur.whole_ms("lock_renew_time", self.lock_renew_time, minimum=1)
            if renew >= self.lock_duration:
                # Renewing no sooner than the lock expires lets every lock lapse:
                # each job would be taken for stalled.
                raise fail("lock_renew_time",
                           f"must be less than lock_duration ({self.lock_duration} ms)", renew)
            object.__setattr__(self, "lock_renew_time", renew)
        check_int("max_stalled_count", self.max_stalled_count, minimum=0)
        for name in ("drain_delay", "shutdown_grace"):
            object.__setattr__(self, name, dur.seconds(name, getattr(self, name)))
        if self.limiter is not None and not isinstance(self.limiter, RateLimiter):
            raise fail("limiter", "must be a pyqueue.RateLimiter", self.limiter)
        if self.metrics_max_data_points is not None:
            check_int("metrics_max_data_points", self.metrics_max_data_points, minimum=1)
        if not isinstance(self.sandbox, bool):
            raise fail("sandbox", "must be a bool", self.sandbox)

    @property
    def renew_every(self) -> int:
        """ms between lock renewals: ``lock_renew_time``, else half the lock."""
        return self.lock_renew_time or max(1, self.lock_duration // 2)


@dataclass(frozen=True, slots=True)
class Durability:
    """Wait for replicas to confirm each write (Redis ``WAIT``) before trusting it.

    Redis replicates asynchronously: a master can acknowledge an add and die
    before its replica has it. With this option an add returns only once
    ``replicas`` replicas confirmed it (else it raises ``ReplicationError``; the
    job is then on the master only, and adding it again with the same
    ``job_id`` is safe). Finishing a job waits as well and logs a warning on the
    ``pyqueue`` logger when the replicas did not confirm in time.

    It narrows the window, it does not close it: ``WAIT`` does not make Redis a
    consensus system (see docs/reliability.md).

    On Redis >= 7.2 with AOF enabled on the master, ``WAITAOF`` is used instead
    of ``WAIT``: the write is then fsynced to the AOF of the master and of the
    replicas, not only received by them (``aof`` chooses; replicas without AOF
    never confirm a ``WAITAOF``).

    Args:
        replicas: How many replicas must confirm.
        timeout_ms: How many ms to wait for them, or a timedelta (``WAIT 0`` would
            block forever, so 0 is refused).
        after_finish: Also wait after completing or failing a job.
        aof: ``None`` (auto): ``WAITAOF`` where the server is >= 7.2 and its
            master runs with AOF, else ``WAIT``. ``True``: ``WAITAOF`` or a
            clear error. ``False``: always ``WAIT``.
    """

    replicas: int = 1
    timeout_ms: int = 1000
    after_finish: bool = True
    aof: bool | None = None

    if TYPE_CHECKING:

        def __init__(self, replicas: int = ..., timeout_ms: int | timedelta = ...,
                     after_finish: bool = ..., aof: bool | None = ...) -> None: ...

    def __post_init__(self) -> None:
        check_int("durability.replicas", self.replicas, minimum=1)
        object.__setattr__(self, "timeout_ms",
                           dur.whole_ms("durability.timeout_ms", self.timeout_ms, minimum=1))
        if not isinstance(self.after_finish, bool):
            raise fail("durability.after_finish", "must be a bool", self.after_finish)
        if self.aof is not None and not isinstance(self.aof, bool):
            raise fail("durability.aof", "must be True, False or None", self.aof)
