"""Job, queue and worker options: snake_case, frozen, validated at construction.

Every option object validates itself in ``__post_init__`` and raises
:class:`~pyqueue.errors.InvalidOptionsError` naming the bad field. Durations take a
number in the field's unit (Bull's: ms, but seconds for ``KeepJobs.age``) or a
``timedelta``. Conversion to and from Bull's camelCase ``opts`` JSON lives in
:mod:`pyqueue._protocol.bull.wire`, not here. The worker-side settings
(:class:`WorkerOptions`, :class:`RateLimiter`, :class:`Durability`) live in
:mod:`pyqueue._worker_options` and are importable from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypedDict

from pyqueue import _durations as dur
from pyqueue._durations import MAX_SAFE_INTEGER, check_int, check_safe, fail, finite_int
from pyqueue._protocol.bull.keys import RESERVED_ID_PREFIXES, RESERVED_IDS
from pyqueue._worker_options import Durability, RateLimiter, WorkerOptions
from pyqueue.errors import InvalidOptionsError

__all__ = [
    "BUILTIN_BACKOFFS",
    "MAX_PRIORITY",
    "MAX_SAFE_INTEGER",
    "Backoff",
    "BackoffResult",
    "BackoffStrategy",
    "Debounce",
    "Durability",
    "JobOptionFields",
    "JobOptions",
    "KeepJobs",
    "RateLimiter",
    "Retention",
    "WorkerOptions",
    "check_backoff_type",
    "check_safe",
    "finite_int",
    "validate_job_id",
]

# Bull's priority field is stored as a zset score and compared with ZCOUNT; it
# documents 1..MAX_INT. Keep well inside exact double range.
MAX_PRIORITY = 2**31 - 1

# The backoff types every worker knows (Bull's built-in strategies).
BUILTIN_BACKOFFS: tuple[str, ...] = ("exponential", "fixed")

# ``strategy(attempts_made, error, options)``: ms to wait, None or 0 to retry now, -1
# to fail for good (Bull's custom backoff strategies).
BackoffResult: TypeAlias = float | int | Awaitable[float | int | None] | None
BackoffStrategy: TypeAlias = Callable[[int, BaseException, Any], BackoffResult]


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` as a string, or raise if it would collide with other ids or keys.

    Refused: ids that read as an integer (``"2"``, ``"-7"``), which the automatic
    ids (a counter) reach sooner or later, as BullMQ refuses them; ids equal to a
    queue key's suffix; ids ending like a job's lock or log key; ids with ``@``.
    """
    if isinstance(job_id, bool) or not isinstance(job_id, str | int):
        raise fail("job_id", "must be a string", job_id)
    text = str(job_id)
    if not text:
        raise fail("job_id", "must not be empty", job_id)
    if _is_canonical_int(text):
        raise fail("job_id", "must not be all digits: the automatic ids are numbers, "
                   "so the counter would reach it and the two jobs would share one hash "
                   "(use a prefix, e.g. 'order-42')", job_id)
    if text in RESERVED_IDS or text.startswith(RESERVED_ID_PREFIXES):
        raise fail("job_id", "collides with a queue key name", job_id)
    if text.endswith((":lock", ":logs")):
        raise fail("job_id", "collides with another job's lock or log key", job_id)
    if "@" in text:
        # Bull splits event channel names on "@".
        raise fail("job_id", "must not contain '@'", job_id)
    return text


def _is_canonical_int(text: str) -> bool:
    """``str(int(text)) == text``: what BullMQ's ``parseInt`` check refuses."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and str(int(text)) == text


def check_backoff_type(backoff: Backoff | None, registered: Collection[str]) -> None:
    """Raise unless ``backoff``'s type is built in or one of ``registered``.

    Raises:
        InvalidOptionsError: naming ``backoff.type`` and the strategies known.
    """
    if backoff is None or backoff.type in BUILTIN_BACKOFFS or backoff.type in registered:
        return
    known = f"built in: {', '.join(BUILTIN_BACKOFFS)}"
    if registered:
        known += f"; registered: {', '.join(sorted(registered))}"
    raise InvalidOptionsError(
        f"backoff.type: unknown strategy {backoff.type!r} ({known}). Register a custom "
        "strategy with backoff_strategies= on the Worker (and on producing Queues)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry delay policy.

    Args:
        type: ``"fixed"``, ``"exponential"`` or the name of a custom strategy
            registered on the worker.
        delay: Base delay in ms, or a timedelta (``fixed``: every retry;
            ``exponential``: ``(2**attempts_made - 1) * delay``).
        options: Passed to a custom strategy as its third argument.

    The type is checked when a job is added (against the producing queue's
    ``backoff_strategies``) and when a worker is created (its default job options).
    """

    type: str = "fixed"
    delay: int | float | None = None
    options: Mapping[str, Any] | None = None

    if TYPE_CHECKING:

        def __init__(self, *, type: str = ..., delay: float | timedelta | None = ...,
                     options: Mapping[str, Any] | None = ...) -> None: ...

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise fail("backoff.type", "must be a non-empty string", self.type)
        if self.delay is not None:
            object.__setattr__(self, "delay", dur.ms("backoff.delay", self.delay))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepJobs:
    """Retention of finished jobs: keep at most ``count``, none older than ``age`` seconds.

    Args:
        count: Keep at most this many (the newest).
        age: Seconds (as in Bull, whose other durations are ms), or a timedelta of
            whole seconds: drop older ones.
    """

    count: int | None = None
    age: int | None = None

    if TYPE_CHECKING:

        def __init__(self, *, count: int | None = ...,
                     age: int | timedelta | None = ...) -> None: ...

    def __post_init__(self) -> None:
        if self.count is not None:
            check_int("keep.count", self.count)
        if self.age is not None:
            object.__setattr__(self, "age", dur.whole_seconds("keep.age", self.age))


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
        ttl: Hold the id this many ms (Redis ``PX``), or a timedelta, instead of
            until the job finishes.
    """

    id: str
    ttl: int | None = None

    if TYPE_CHECKING:

        def __init__(self, *, id: str, ttl: int | timedelta | None = ...) -> None: ...

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise fail("debounce.id", "must be a non-empty string", self.id)
        if self.ttl is not None:
            object.__setattr__(self, "ttl", dur.whole_ms("debounce.ttl", self.ttl, minimum=1))


def _check_retention(name: str, value: object) -> None:
    if isinstance(value, bool | KeepJobs):
        return
    if isinstance(value, int):
        check_safe(name, value)
        return
    raise fail(name, "must be a bool, an int or KeepJobs", value)


class JobOptionFields(TypedDict, total=False):
    """Keyword arguments accepted by ``Queue.add`` (see :class:`JobOptions`)."""

    job_id: str
    attempts: int
    backoff: int | float | timedelta | Backoff
    delay: int | float | timedelta
    priority: int
    lifo: bool
    timeout: int | timedelta
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
        job_id: Custom id; adding an id whose job still exists creates nothing and
            returns the stored job (Bull's dedupe; ``job.created`` is False). Ids
            that read as an integer are refused: the automatic ids would reach them.
        attempts: Total tries including the first (default 1).
        backoff: ms (or a timedelta) for a fixed delay, or a :class:`Backoff`.
        delay: ms (or a timedelta) to wait before the job becomes processable.
        priority: 1 is the highest; unset means unprioritised.
        lifo: Add to the front of the queue.
        timeout: ms (or a timedelta) after which a running attempt fails.
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

    if TYPE_CHECKING:

        def __init__(
            self, *, job_id: str | None = ..., attempts: int | None = ...,
            backoff: int | float | timedelta | Backoff | None = ...,
            delay: int | float | timedelta | None = ..., priority: int | None = ...,
            lifo: bool | None = ..., timeout: int | timedelta | None = ...,
            remove_on_complete: Retention | None = ..., remove_on_fail: Retention | None = ...,
            stack_trace_limit: int | None = ..., timestamp: int | None = ...,
            prevent_parsing_data: bool | None = ..., repeat: Any = ...,
            debounce: Debounce | None = ..., extra: Mapping[str, Any] = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        if self.job_id is not None:
            object.__setattr__(self, "job_id", validate_job_id(self.job_id))
        if self.attempts is not None:
            check_int("attempts", self.attempts, minimum=1)
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            if isinstance(self.backoff, bool) or not isinstance(
                self.backoff, int | float | timedelta
            ):
                raise fail("backoff", "must be ms, a timedelta or a Backoff", self.backoff)
            delay = dur.ms("backoff", self.backoff)
            object.__setattr__(self, "backoff", Backoff(type="fixed", delay=delay))
        if self.delay is not None:
            object.__setattr__(self, "delay", dur.ms("delay", self.delay))
        if self.priority is not None:
            check_int("priority", self.priority, minimum=1)
            if self.priority > MAX_PRIORITY:
                raise fail("priority", f"must be <= {MAX_PRIORITY}", self.priority)
        for name in ("lifo", "prevent_parsing_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise fail(name, "must be a bool", value)
        if self.timeout is not None:
            object.__setattr__(self, "timeout", dur.whole_ms("timeout", self.timeout, minimum=1))
        if self.stack_trace_limit is not None:
            check_int("stack_trace_limit", self.stack_trace_limit, minimum=0)
        if self.timestamp is not None:
            check_int("timestamp", self.timestamp, minimum=0)
        for name in ("remove_on_complete", "remove_on_fail"):
            value = getattr(self, name)
            if value is not None:
                _check_retention(name, value)
        if self.debounce is not None and not isinstance(self.debounce, Debounce):
            raise fail("debounce", "must be a pyqueue.Debounce", self.debounce)

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
