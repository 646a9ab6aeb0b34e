"""What a worker process runs: :class:`WorkerSettings` of :class:`QueueEntry` and :class:`Cron`.

One settings object holds each queue's handler with what belongs beside it (its model,
its default job options, its concurrency, whether it is sandboxed) and the cron
schedules to declare at start-up::

    emails = QueueEntry("emails", send_email, concurrency=20,
                        default_job_options=JobOptions(attempts=4, timeout=10_000))
    reports = QueueEntry("reports", render_report, sandbox=True)
    settings = WorkerSettings(queues=[emails, reports],
                              cron=[Cron(render_report, "0 6 * * *", tz="Europe/Paris")])

``pyqueue worker module:settings`` runs it (a :class:`~pyqueue.group.WorkerGroup`), and a
producer that knows the entry writes its policy into the jobs it adds
(``emails.queue(url)``). Everything is checked when the objects are made: a bad entry
is one :class:`~pyqueue.InvalidOptionsError` naming it, before anything connects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, cast

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeVar

from pyqueue._durations import check_int
from pyqueue._engine.processing import normalise_processors
from pyqueue._handlers import Processor, describe, resolve_models
from pyqueue._protocol.bull import wire
from pyqueue.errors import InvalidOptionsError
from pyqueue.hooks import AfterProcess, BeforeProcess, Context, LifecycleHook
from pyqueue.options import BackoffStrategy, JobOptions, WorkerOptions, check_backoff_type
from pyqueue.queue import Queue
from pyqueue.repeat import Repeat
from pyqueue.worker import Worker

if TYPE_CHECKING:
    import redis.asyncio as aioredis

DataT = TypeVar("DataT", default=Any)

# Default job options that name one job cannot be every job's default.
_NOT_DEFAULTS = ("job_id", "repeat", "debounce", "timestamp")
DEFAULT_NAME = "__default__"


@dataclass(frozen=True)
class QueueEntry(Generic[DataT]):
    """One queue of a :class:`WorkerSettings`: its handler and what belongs beside it.

    Typed from its handler: ``QueueEntry("emails", send)`` with ``send(job: Job[Email])``
    is a ``QueueEntry[Email]``, and so is the queue and the worker it makes.

    Args:
        name: The queue name.
        handler: As for :class:`~pyqueue.Worker`: a handler, or ``{job name: handler}``.
        model: The jobs' pydantic model; by default the handlers' annotation names it
            (``Job[Email]``). Producers of :meth:`queue` validate against it too.
        default_job_options: The queue's policy (Bull's ``defaultJobOptions``): what a
            job's options lack is taken from here. A producer made by :meth:`queue`
            writes it into each job's options; the worker applies it, as each job
            starts, to jobs whose options lack it (added by other producers). A Node
            worker honours only what is in the job's options. ``job_id``, ``repeat``,
            ``debounce`` and ``timestamp`` name one job and are refused here.
        concurrency: Jobs at once for this queue (default: the settings' options).
        sandbox: Run this queue's handlers in child processes (Bull's sandboxed
            processors); they must be module-level functions.
        options: :class:`~pyqueue.WorkerOptions` for this queue, instead of the
            settings' (``concurrency`` and ``sandbox`` above still win).
        backoff_strategies: Custom backoff strategies of this queue's jobs.
        protocol: The queue's wire format, as :class:`~pyqueue.Queue` takes it
            (``"bull"``, ``"bullmq"``, None: what Redis holds, Bull for a new queue).
        prefix: The queue's key prefix, instead of the settings' (None). One settings
            object can so serve a Bull queue and its BullMQ twin under another prefix,
            as during a migration's cut-over (``pyqueue migrate --to-prefix``).

    Raises:
        InvalidOptionsError: a handler that is not callable, a model that contradicts
            an annotation, default options naming one job or an unknown backoff.
    """

    name: str
    handler: Processor[DataT]
    model: type[DataT] | None = None
    default_job_options: JobOptions | None = None
    concurrency: int | None = None
    sandbox: bool | None = None
    options: WorkerOptions | None = None
    backoff_strategies: Mapping[str, BackoffStrategy] | None = None
    protocol: str | None = None
    prefix: str | None = None
    _jobs_model: type[BaseModel] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _handlers: dict[str, Callable[..., Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "@" in self.name:
            raise InvalidOptionsError(
                f"queues: a queue name must be a non-empty string without '@', "
                f"got {self.name!r}"
            )
        label = f"queues[{self.name!r}]"
        if not callable(self.handler) and not isinstance(self.handler, Mapping):
            raise InvalidOptionsError(f"{label}: handler must be callable, got {self.handler!r}")
        try:
            table = normalise_processors(self.handler)
            models = resolve_models(table, self.model, None)
        except InvalidOptionsError as exc:
            raise InvalidOptionsError(f"{label}: {exc}") from None
        distinct = set(models.values())
        object.__setattr__(self, "_jobs_model", distinct.pop() if len(distinct) == 1 else None)
        object.__setattr__(self, "_handlers", table)
        defaults = self.default_job_options
        if defaults is not None:
            if not isinstance(defaults, JobOptions):
                raise InvalidOptionsError(
                    f"{label}.default_job_options: expected JobOptions, got {defaults!r}"
                )
            for name in _NOT_DEFAULTS:
                if getattr(defaults, name) is not None:
                    raise InvalidOptionsError(
                        f"{label}.default_job_options.{name}: names one job, so it cannot "
                        "be every job's default"
                    )
            strategies = self.backoff_strategies or {}
            check_backoff_type(defaults.backoff, strategies)
        if self.concurrency is not None:
            check_int(f"{label}.concurrency", self.concurrency, minimum=1)
        if self.sandbox is not None and not isinstance(self.sandbox, bool):
            raise InvalidOptionsError(f"{label}.sandbox: must be a bool, got {self.sandbox!r}")
        if self.options is not None and not isinstance(self.options, WorkerOptions):
            raise InvalidOptionsError(
                f"{label}.options: expected WorkerOptions, got {self.options!r}"
            )
        if self.prefix is not None and (not isinstance(self.prefix, str) or not self.prefix):
            raise InvalidOptionsError(
                f"{label}.prefix: must be a non-empty string or None, got {self.prefix!r}"
            )
        if self.protocol not in (None, "auto", "bull", "bullmq"):
            raise InvalidOptionsError(
                f"{label}.protocol: must be 'bull', 'bullmq' or None, got {self.protocol!r}"
            )

    @property
    def jobs_model(self) -> type[BaseModel] | None:
        """The model of the queue's data (given, or named by the handlers' annotations)."""
        return self._jobs_model

    def job_name_of(self, handler: object) -> str | None:
        """The job name ``handler`` handles here (``__default__`` for ``"*"``), else None."""
        for name, found in self._handlers.items():
            if found is handler:
                return DEFAULT_NAME if name == "*" else name
        return None

    def queue(
        self, redis_url: str | None = None, *, connection: aioredis.Redis | None = None,
        prefix: str = "bull",
    ) -> Queue[DataT]:
        """A producer for this queue: validates with its model, writes its policy.

        The queue's ``default_job_options`` are this entry's, so each job added
        carries the policy in its options, where any worker (Node's too) reads it.
        """
        return Queue(
            self.name, redis_url, connection=connection, prefix=self.prefix or prefix,
            model=self._model_as_data(), default_job_options=self.default_job_options,
            backoff_strategies=self.backoff_strategies, protocol=self.protocol,
        )

    def worker(
        self, redis_url: str | None = None, *, connection: aioredis.Redis | None = None,
        prefix: str = "bull", options: WorkerOptions | None = None,
        context: Context | None = None, on_startup: LifecycleHook | None = None,
        on_shutdown: LifecycleHook | None = None, before_process: BeforeProcess | None = None,
        after_process: AfterProcess | None = None,
    ) -> Worker[DataT]:
        """A worker for this queue, with the entry's handler, model, policy and options.

        ``options`` serve when the entry has none of its own; the entry's
        ``concurrency`` and ``sandbox`` win over both.
        """
        return Worker(
            self.name, self.handler, redis_url=redis_url, connection=connection,
            prefix=self.prefix or prefix, options=self.worker_options(options),
            context=context,
            on_startup=on_startup, on_shutdown=on_shutdown, before_process=before_process,
            after_process=after_process, model=self._model_as_data(),
            default_job_options=self.default_job_options,
            backoff_strategies=self.backoff_strategies, protocol=self.protocol,
        )

    def worker_options(self, fallback: WorkerOptions | None = None) -> WorkerOptions:
        """This queue's worker options: its own, else ``fallback``, with its overrides."""
        base = self.options or fallback or WorkerOptions()
        changes: dict[str, Any] = {}
        if self.concurrency is not None:
            changes["concurrency"] = self.concurrency
        if self.sandbox is not None:
            changes["sandbox"] = self.sandbox
        if not changes:
            return base
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        return WorkerOptions(**{**values, **changes})

    def _model_as_data(self) -> type[DataT] | None:
        return cast("type[DataT] | None", self._jobs_model)


@dataclass(frozen=True)
class Cron:
    """A schedule declared when the workers start: one job per tick, however many start.

    Args:
        target: The handler to run (found among the settings' queues: its queue and
            job name follow), or a queue name.
        schedule: A cron expression: 5 fields, or 6 with seconds first (Bull's parser).
        tz: The IANA time zone of the schedule (default: the process's local zone).
        data: Each job's payload, validated against the queue's model.
        name: The job name (default: the handler's name in its queue, else
            ``__default__``).
        job_id: Tells apart two schedules of the same job name and expression.
        options: Job options of each run (attempts, backoff, timeout...), over the
            queue's default job options.

    Raises:
        InvalidOptionsError: a schedule or time zone that does not parse.
    """

    target: Callable[..., Any] | str
    schedule: str
    tz: str | None = None
    data: Any = None
    name: str | None = None
    job_id: str | None = None
    options: JobOptions | None = None

    def __post_init__(self) -> None:
        try:
            self.repeat()
        except InvalidOptionsError as exc:
            raise InvalidOptionsError(
                f"cron: not a valid cron schedule {self.schedule!r} ({exc})"
            ) from None
        if not (callable(self.target) or (isinstance(self.target, str) and self.target)):
            raise InvalidOptionsError(
                f"cron: the target must be a handler or a queue name, got {self.target!r}"
            )
        if self.options is not None and not isinstance(self.options, JobOptions):
            raise InvalidOptionsError(f"cron: options must be JobOptions, got {self.options!r}")
        for name in ("job_id", "repeat", "debounce"):
            if self.options is not None and getattr(self.options, name) is not None:
                raise InvalidOptionsError(
                    f"cron: options.{name} cannot be set (the schedule makes each run's id; "
                    "use Cron(job_id=...) to tell two schedules apart)"
                )

    def repeat(self) -> Repeat:
        """The :class:`~pyqueue.Repeat` this schedule declares."""
        return Repeat(cron=self.schedule, tz=self.tz, job_id=self.job_id)


@dataclass(frozen=True)
class PlannedCron:
    """A :class:`Cron` resolved against the settings: its queue entry and job name."""

    entry: QueueEntry[Any]
    job_name: str
    cron: Cron

    @property
    def key(self) -> str:
        """The schedule's repeat key (Bull's), what is recorded as declared."""
        return self.cron.repeat().key(self.job_name)


@dataclass(frozen=True)
class WorkerSettings:
    """What ``pyqueue worker`` runs: queues, shared hooks, and cron schedules.

    Args:
        queues: :class:`QueueEntry` objects, or ``{queue name: handler or {job name:
            handler}}`` (each value becomes a ``QueueEntry`` with the defaults).
        redis_url: Used unless ``--redis-url`` or ``REDIS_URL`` is given.
        prefix: Bull key prefix (default ``bull``), unless ``--prefix`` is given.
        options: :class:`pyqueue.WorkerOptions` for every queue without options of
            its own (``--concurrency`` overrides their concurrency).
        context: The dict every worker's handlers reach as ``job.context``; one
            dict, shared by the workers of all queues (default: a new empty dict).
        on_startup: ``hook(context)``, awaited once before any worker starts (open
            database pools and clients here); if it raises, nothing starts.
        on_shutdown: ``hook(context)``, awaited once after every worker closed.
        before_process: Given to every worker; see :class:`pyqueue.Worker`.
        after_process: Given to every worker; see :class:`pyqueue.Worker`.
        cron: :class:`Cron` schedules, declared (idempotently) at every start-up.
            Schedules these settings declared before and no longer list are removed
            then; schedules declared by anything else are left alone.
        name: Whose schedules these are: the record of declared schedules is kept per
            name (in Redis, per queue), so two programs with settings of different
            names never remove each other's.

    Raises:
        InvalidOptionsError: naming the bad queue, hook or schedule.
    """

    queues: Sequence[QueueEntry[Any]] | Mapping[str, Processor[Any]]
    redis_url: str | None = None
    prefix: str | None = None
    options: WorkerOptions | None = None
    context: Context | None = None
    on_startup: LifecycleHook | None = None
    on_shutdown: LifecycleHook | None = None
    before_process: BeforeProcess | None = None
    after_process: AfterProcess | None = None
    cron: Sequence[Cron] = ()
    name: str = "default"
    entries: tuple[QueueEntry[Any], ...] = field(init=False, repr=False, compare=False)
    crons: tuple[PlannedCron, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = _entries(self.queues, self.prefix or "bull")
        object.__setattr__(self, "entries", entries)
        if self.options is not None and not isinstance(self.options, WorkerOptions):
            raise InvalidOptionsError(f"options: expected WorkerOptions, got {self.options!r}")
        if self.context is not None and not isinstance(self.context, dict):
            raise InvalidOptionsError(f"context: must be a dict, got {self.context!r}")
        for hook in ("on_startup", "on_shutdown", "before_process", "after_process"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise InvalidOptionsError(f"{hook}: must be callable, got {value!r}")
        if not isinstance(self.name, str) or not self.name:
            raise InvalidOptionsError(f"name: must be a non-empty string, got {self.name!r}")
        if isinstance(self.cron, Cron | str) or not isinstance(self.cron, Sequence):
            raise InvalidOptionsError(f"cron: must be a list of Cron, got {self.cron!r}")
        planned = tuple(_plan(i, cron, entries) for i, cron in enumerate(self.cron))
        object.__setattr__(self, "crons", planned)

    def entry(self, name: str) -> QueueEntry[Any]:
        """The entry of queue ``name``.

        Raises:
            KeyError: no such queue in these settings.
        """
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def queue(self, name: str, redis_url: str | None = None) -> Queue[Any]:
        """A producer for queue ``name`` (see :meth:`QueueEntry.queue`), on these settings'
        Redis unless ``redis_url`` is given."""
        return self.entry(name).queue(redis_url or self.redis_url, prefix=self.prefix or "bull")


def _entries(queues: object, prefix: str) -> tuple[QueueEntry[Any], ...]:
    if isinstance(queues, Mapping):
        if not queues:
            raise InvalidOptionsError("queues: must name at least one queue")
        found = []
        for name, handler in queues.items():
            if isinstance(handler, QueueEntry):
                raise InvalidOptionsError(
                    f"queues[{name!r}]: give QueueEntry objects as a list, not as mapping values"
                )
            found.append(QueueEntry(name, handler))
        return tuple(found)
    if isinstance(queues, str) or not isinstance(queues, Sequence) or not queues:
        raise InvalidOptionsError(
            f"queues: must be a non-empty list of QueueEntry or {{name: handler}}, "
            f"got {queues!r}"
        )
    # A name may come twice under two prefixes (a queue and its twin); an entry
    # without its own prefix is under the settings' (``prefix``).
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(queues):
        if not isinstance(entry, QueueEntry):
            raise InvalidOptionsError(f"queues[{i}]: expected a QueueEntry, got {entry!r}")
        where = (entry.name, entry.prefix or prefix)
        if where in seen:
            raise InvalidOptionsError(
                f"queues: {entry.name!r} twice under prefix {where[1]!r}")
        seen.add(where)
    return tuple(queues)


def _plan(index: int, cron: object, entries: tuple[QueueEntry[Any], ...]) -> PlannedCron:
    label = f"cron[{index}]"
    if not isinstance(cron, Cron):
        raise InvalidOptionsError(f"{label}: expected a Cron, got {cron!r}")
    if isinstance(cron.target, str):
        entry = next((e for e in entries if e.name == cron.target), None)
        if entry is None:
            raise InvalidOptionsError(
                f"{label}: there is no queue {cron.target!r} in these settings"
            )
        job_name = cron.name or DEFAULT_NAME
    else:
        found = [(e, n) for e in entries if (n := e.job_name_of(cron.target)) is not None]
        if len(found) != 1:
            where = "not a handler of any queue" if not found else "a handler of several queues"
            raise InvalidOptionsError(
                f"{label}: {describe(cron.target)} is {where} in these settings "
                "(name the queue instead: Cron('queue-name', ...))"
            )
        entry, job_name = found[0]
        job_name = cron.name or job_name
    model = entry.jobs_model
    if model is not None and not isinstance(cron.data, model):
        try:
            model.model_validate(cron.data)
        except ValidationError as exc:
            raise InvalidOptionsError(
                f"{label}.data: invalid {model.__name__}: {exc}"
            ) from None
    if model is None:
        wire.encode_data(cron.data, f"{label}.data")
    if cron.options is not None:
        check_backoff_type(cron.options.backoff, entry.backoff_strategies or {})
    return PlannedCron(entry, job_name, cron)
