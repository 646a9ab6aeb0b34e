"""Job, queue and worker options: snake_case, frozen, validated at construction.

Every option object validates itself in ``__post_init__`` and raises
:class:`~pyqueue.errors.InvalidOptionsError` naming the bad field. Conversion to
and from Bull's camelCase ``opts`` JSON lives in :mod:`pyqueue._protocol.bull.wire`, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Self, TypedDict

from pyqueue._protocol.bull.keys import RESERVED_ID_PREFIXES, RESERVED_IDS
from pyqueue.errors import InvalidOptionsError

# Bull's priority field is stored as a zset score and compared with ZCOUNT; it
# documents 1..MAX_INT. Keep well inside exact double range.
MAX_PRIORITY = 2**31 - 1

# Node reads every option as a JavaScript number: past Number.MAX_SAFE_INTEGER an
# integer is no longer what was written (and past ~1.8e308 it is Infinity).
MAX_SAFE_INTEGER = 2**53 - 1


def _fail(field_name: str, message: str, value: object) -> InvalidOptionsError:
    return InvalidOptionsError(f"{field_name}: {message}, got {value!r}")


def finite_int(value: object) -> int | None:
    """A JSON number read from another client as an int, capped to JavaScript's exact
    integers; None for anything else, Infinity and NaN (``1e400`` in JSON) included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return max(-MAX_SAFE_INTEGER, min(int(value), MAX_SAFE_INTEGER))


def check_safe(name: str, value: int | float) -> None:
    """Raise unless ``abs(value)`` is within what JavaScript holds exactly."""
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return
    # A 400-digit integer in an error message helps nobody.
    shown = (f"an integer of {len(str(abs(value)))} digits"
             if isinstance(value, int) and value.bit_length() > 64 else repr(value))
    raise InvalidOptionsError(
        f"{name}: must be at most {MAX_SAFE_INTEGER} in size (the largest integer a "
        f"JavaScript number holds exactly; Node reads it), got {shown}"
    )


def _check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, "must be an integer", value)
    if minimum is not None and value < minimum:
        raise _fail(name, f"must be >= {minimum}", value)
    check_safe(name, value)


def _check_ms(name: str, value: object) -> None:
    """A non-negative, finite number of milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, "must be a number of milliseconds", value)
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise _fail(name, "must be a finite number >= 0", value)
    check_safe(name, value)


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` as a string, or raise if it would collide with queue keys."""
    if isinstance(job_id, bool) or not isinstance(job_id, str | int):
        raise _fail("job_id", "must be a string or an integer", job_id)
    text = str(job_id)
    if not text:
        raise _fail("job_id", "must not be empty", job_id)
    if text in RESERVED_IDS or text.startswith(RESERVED_ID_PREFIXES):
        raise _fail("job_id", "collides with a queue key name", job_id)
    if text.endswith((":lock", ":logs")):
        raise _fail("job_id", "collides with another job's lock or log key", job_id)
    if "@" in text:
        # Bull splits event channel names on "@".
        raise _fail("job_id", "must not contain '@'", job_id)
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry delay policy.

    Args:
        type: ``"fixed"``, ``"exponential"`` or the name of a custom strategy
            registered on the worker.
        delay: Base delay in ms (``fixed``: every retry; ``exponential``:
            ``(2**attempts_made - 1) * delay``).
        options: Passed to a custom strategy as its third argument.
    """

    type: str = "fixed"
    delay: int | float | None = None
    options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise _fail("backoff.type", "must be a non-empty string", self.type)
        if self.delay is not None:
            _check_ms("backoff.delay", self.delay)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepJobs:
    """Retention of finished jobs: keep at most ``count``, none older than ``age`` seconds.

    Args:
        count: Keep at most this many (the newest).
        age: Seconds (as in Bull, whose other durations are ms): drop older ones.
    """

    count: int | None = None
    age: int | None = None

    def __post_init__(self) -> None:
        if self.count is not None:
            _check_int("keep.count", self.count)
        if self.age is not None:
            _check_int("keep.age", self.age, minimum=0)


Retention = bool | int | KeepJobs


@dataclass(frozen=True, slots=True, kw_only=True)
class Debounce:
    """Bull 4.16's ``debounce``: adds with the same ``id`` are dropped while one is pending.

    The first add takes the id; later adds return that job's id instead of
    creating a job, and emit ``debounced``. The id is released when the job
    finishes (completed, or failed for good) or is removed; with ``ttl`` it is
    held for ``ttl`` ms from the first add instead, finished or not.

    Args:
        id: The debounce id (stored on the job as ``deid``).
        ttl: Hold the id this many ms (Redis ``PX``), instead of until the job finishes.
    """

    id: str
    ttl: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise _fail("debounce.id", "must be a non-empty string", self.id)
        if self.ttl is not None:
            _check_int("debounce.ttl", self.ttl, minimum=1)


def _check_retention(name: str, value: object) -> None:
    if isinstance(value, bool | KeepJobs):
        return
    if isinstance(value, int):
        check_safe(name, value)
        return
    raise _fail(name, "must be a bool, an int or KeepJobs", value)


class JobOptionFields(TypedDict, total=False):
    """Keyword arguments accepted by ``Queue.add`` (see :class:`JobOptions`)."""

    job_id: str | int
    attempts: int
    backoff: int | Backoff
    delay: int | float
    priority: int
    lifo: bool
    timeout: int
    remove_on_complete: Retention
    remove_on_fail: Retention
    stack_trace_limit: int
    timestamp: int
    prevent_parsing_data: bool
    debounce: Debounce


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Options of one job. ``None`` means "not set", so defaults can be merged.

    Args:
        job_id: Custom id; adding an id whose job still exists is a no-op (Bull's dedupe).
        attempts: Total tries including the first (default 1).
        backoff: ms for a fixed delay, or a :class:`Backoff`.
        delay: ms to wait before the job becomes processable.
        priority: 1 is the highest; unset means unprioritised.
        lifo: Add to the front of the queue.
        timeout: ms after which a running attempt fails.
        remove_on_complete: ``True`` deletes, an int keeps the newest n, ``KeepJobs`` both.
        remove_on_fail: The same for final failures.
        stack_trace_limit: Keep at most this many stack traces.
        timestamp: Creation time in ms (default: now).
        prevent_parsing_data: Node consumers get ``data`` as a raw string.
        repeat: A :class:`pyqueue.Repeat` schedule.
        debounce: A :class:`Debounce` (Bull 4.16; older Bull workers ignore it).
        extra: Unknown wire keys, preserved when reading jobs made by other clients.
    """

    job_id: str | None = None
    attempts: int | None = None
    backoff: Backoff | None = None
    delay: int | float | None = None
    priority: int | None = None
    lifo: bool | None = None
    timeout: int | None = None
    remove_on_complete: Retention | None = None
    remove_on_fail: Retention | None = None
    stack_trace_limit: int | None = None
    timestamp: int | None = None
    prevent_parsing_data: bool | None = None
    repeat: Any = None
    debounce: Debounce | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.job_id is not None:
            object.__setattr__(self, "job_id", validate_job_id(self.job_id))
        if self.attempts is not None:
            _check_int("attempts", self.attempts, minimum=1)
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            if isinstance(self.backoff, bool) or not isinstance(self.backoff, int | float):
                raise _fail("backoff", "must be ms or a Backoff", self.backoff)
            _check_ms("backoff", self.backoff)
            object.__setattr__(self, "backoff", Backoff(type="fixed", delay=self.backoff))
        if self.delay is not None:
            _check_ms("delay", self.delay)
        if self.priority is not None:
            _check_int("priority", self.priority, minimum=1)
            if self.priority > MAX_PRIORITY:
                raise _fail("priority", f"must be <= {MAX_PRIORITY}", self.priority)
        for name in ("lifo", "prevent_parsing_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise _fail(name, "must be a bool", value)
        if self.timeout is not None:
            _check_int("timeout", self.timeout, minimum=1)
        if self.stack_trace_limit is not None:
            _check_int("stack_trace_limit", self.stack_trace_limit, minimum=0)
        if self.timestamp is not None:
            _check_int("timestamp", self.timestamp, minimum=0)
        for name in ("remove_on_complete", "remove_on_fail"):
            value = getattr(self, name)
            if value is not None:
                _check_retention(name, value)
        if self.debounce is not None and not isinstance(self.debounce, Debounce):
            raise _fail("debounce", "must be a pyqueue.Debounce", self.debounce)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Self:
        """Build from ``Queue.add`` keywords, naming any unknown keyword."""
        unknown = sorted(set(kwargs) - _OPTION_NAMES)
        if unknown:
            raise InvalidOptionsError(f"unknown job option(s): {', '.join(unknown)}")
        return cls(**kwargs)

    def merged_over(self, defaults: JobOptions | None) -> JobOptions:
        """These options with unset fields taken from ``defaults`` (Bull's shallow merge)."""
        if defaults is None:
            return self
        changes: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            if getattr(self, f.name) is None and getattr(defaults, f.name) is not None:
                changes[f.name] = getattr(defaults, f.name)
        if defaults.extra:
            changes["extra"] = {**defaults.extra, **self.extra}
        return replace(self, **changes) if changes else self


# The keywords Queue.add accepts, computed once (add is a hot path).
_OPTION_NAMES = frozenset(f.name for f in fields(JobOptions)) - {"extra"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiter:
    """At most ``max`` jobs start per ``duration`` ms (shared by every worker of the queue).

    Args:
        max: Jobs per window.
        duration: Window length in ms.
        bounce_back: Put limited jobs back in wait instead of delaying them.
        group_key: Limit per value of this data field (Bull's ``groupKey``).
    """

    max: int
    duration: int
    bounce_back: bool = False
    group_key: str | None = None

    def __post_init__(self) -> None:
        _check_int("limiter.max", self.max, minimum=1)
        _check_int("limiter.duration", self.duration, minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """Worker settings, with Bull's defaults.

    Args:
        concurrency: Jobs processed at once.
        lock_duration: Lock TTL in ms.
        lock_renew_time: ms between lock renewals (default ``lock_duration / 2``).
        stalled_interval: ms between stalled-job checks; 0 disables them.
        max_stalled_count: Recoveries allowed before a stalled job fails.
        guard_interval: Longest ms between delayed-job promotions.
        retry_process_delay: ms to wait after a Redis error before fetching again.
        drain_delay: Seconds a blocking fetch waits on an empty queue.
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

    def __post_init__(self) -> None:
        _check_int("concurrency", self.concurrency, minimum=1)
        _check_int("lock_duration", self.lock_duration, minimum=1)
        if self.lock_renew_time is not None:
            _check_int("lock_renew_time", self.lock_renew_time, minimum=1)
        _check_int("stalled_interval", self.stalled_interval, minimum=0)
        _check_int("max_stalled_count", self.max_stalled_count, minimum=0)
        _check_int("guard_interval", self.guard_interval, minimum=1)
        _check_int("retry_process_delay", self.retry_process_delay, minimum=0)
        _check_ms("drain_delay", self.drain_delay)
        if self.metrics_max_data_points is not None:
            _check_int("metrics_max_data_points", self.metrics_max_data_points, minimum=1)
        _check_ms("shutdown_grace", self.shutdown_grace)
        if not isinstance(self.sandbox, bool):
            raise _fail("sandbox", "must be a bool", self.sandbox)

    @property
    def renew_every(self) -> int:
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
        timeout_ms: How many ms to wait for them (``WAIT 0`` would block forever,
            so 0 is refused).
        after_finish: Also wait after completing or failing a job.
        aof: ``None`` (auto): ``WAITAOF`` where the server is >= 7.2 and its
            master runs with AOF, else ``WAIT``. ``True``: ``WAITAOF`` or a
            clear error. ``False``: always ``WAIT``.
    """

    replicas: int = 1
    timeout_ms: int = 1000
    after_finish: bool = True
    aof: bool | None = None

    def __post_init__(self) -> None:
        _check_int("durability.replicas", self.replicas, minimum=1)
        _check_int("durability.timeout_ms", self.timeout_ms, minimum=1)
        if not isinstance(self.after_finish, bool):
            raise _fail("durability.after_finish", "must be a bool", self.after_finish)
        if self.aof is not None and not isinstance(self.aof, bool):
            raise _fail("durability.aof", "must be True, False or None", self.aof)
