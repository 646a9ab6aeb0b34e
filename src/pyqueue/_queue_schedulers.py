"""Job schedulers on :class:`pyqueue.Queue`: BullMQ's ``upsertJobScheduler`` and friends.

:class:`JobSchedulers` is a mixin of ``Queue``. The methods exist in both modes so
that a Bull queue says what to use instead; the mode decides only in
``_scheduler_calls`` (``Queue`` raises, ``BullMQQueue`` returns its protocol). A
scheduler makes one iteration per tick, whoever upserts it (Node or pyqueue, any
number of times): the iteration's id is ``repeat:<id>:<ms>`` and the scripts refuse
a second one. BullMQ-mode workers schedule the next iteration as they start one,
as Node's worker does (``BullMQEngine._process``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pyqueue import _durations
from pyqueue._protocol.bullmq import wire as mqwire
from pyqueue._protocol.interface import SchedulerRepeat
from pyqueue.errors import InvalidOptionsError
from pyqueue.job import now_ms

if TYPE_CHECKING:
    from pyqueue._protocol.interface import QueueProtocol
    from pyqueue.job import Job
    from pyqueue.options import JobOptions

DataT = TypeVar("DataT")

# Options a scheduler's template cannot have (BullMQ's JobSchedulerTemplateOptions
# omits them): the scheduler owns each iteration's id and time, and a deduplicated
# iteration would break the one-per-tick chain.
_NOT_IN_TEMPLATE = ("job_id", "delay", "debounce")


@dataclass(frozen=True)
class JobScheduler:
    """One job scheduler as Redis holds it (Node's ``getJobScheduler``).

    Attributes:
        id: The scheduler id (Node's ``key``).
        name: The iterations' job name.
        next: ms since the epoch of the next iteration.
        iteration_count: Iterations made so far (the waiting one included).
        every, pattern, tz, limit, start_date, end_date, offset: its repeat options.
        data, options: the template: each iteration's data and stored options
            (BullMQ's public option names, as Node shows them).
    """

    id: str
    name: str | None
    next: int
    iteration_count: int | None = None
    every: int | None = None
    pattern: str | None = None
    tz: str | None = None
    limit: int | None = None
    start_date: int | None = None
    end_date: int | None = None
    offset: int | None = None
    data: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_node_json(cls, raw: Mapping[str, Any]) -> JobScheduler:
        """From the shape Node's ``getJobScheduler`` returns (camelCase, the wire's)."""
        template = raw.get("template") or {}
        return cls(
            id=raw["key"], name=raw.get("name"), next=int(raw["next"]),
            iteration_count=raw.get("iterationCount"), every=raw.get("every"),
            pattern=raw.get("pattern"), tz=raw.get("tz"), limit=raw.get("limit"),
            start_date=raw.get("startDate"), end_date=raw.get("endDate"),
            offset=raw.get("offset"), data=template.get("data"),
            options=template.get("opts") or {},
        )


def _epoch_ms(name: str, value: datetime | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidOptionsError(f"{name}: a datetime must be timezone-aware")
        return int(value.timestamp() * 1000)
    return _durations.whole_ms(name, value)


class JobSchedulers(Generic[DataT]):
    """The job scheduler methods of :class:`pyqueue.Queue` (BullMQ mode only)."""

    if TYPE_CHECKING:
        async def _scheduler_calls(self, method: str) -> QueueProtocol: ...
        def _validated(self, data: Any) -> Any: ...
        async def get_job(self, job_id: str) -> Job[DataT] | None: ...

    async def upsert_job_scheduler(
        self, scheduler_id: str, *, every: int | timedelta | None = None,
        pattern: str | None = None, tz: str | None = None, limit: int | None = None,
        start_date: datetime | int | None = None, end_date: datetime | int | None = None,
        offset: int | timedelta | None = None, immediately: bool = False,
        name: str | None = None, data: Any = None, options: JobOptions | None = None,
    ) -> Job[DataT] | None:
        """Create or replace a job scheduler (BullMQ's ``upsertJobScheduler``).

        Give ``every`` (ms or a timedelta; ticks aligned to the epoch, plus
        ``offset``) or a cron ``pattern`` (in ``tz``). Upserting the same scheduler
        again, from here or from Node, replaces its options and keeps one iteration
        per tick. ``options`` are the template's job options (no ``job_id``,
        ``delay`` or ``debounce``); ``name`` defaults to the scheduler id.

        Returns:
            The next iteration, or None when a pattern has no next run (or the
            iteration was already taken and removed).

        Raises:
            InvalidOptionsError: bad options, an end date in the past, or a Bull
                queue (use ``add(..., repeat=Repeat(...))`` there).
        """
        proto = await self._scheduler_calls("upsert_job_scheduler")
        if not isinstance(scheduler_id, str) or not scheduler_id:
            raise InvalidOptionsError(f"scheduler_id: must be a non-empty string, "
                                      f"got {scheduler_id!r}")
        repeat = SchedulerRepeat(
            every=None if every is None else _durations.whole_ms("every", every, minimum=1),
            pattern=pattern, tz=tz, limit=limit,
            start_date=_epoch_ms("start_date", start_date),
            end_date=_epoch_ms("end_date", end_date),
            offset=None if offset is None else _durations.whole_ms("offset", offset),
            immediately=immediately,
        )
        template = self._template(proto, options)
        data_json = mqwire.encode_data({} if data is None else self._validated(data))
        made = await proto.upsert_job_scheduler(
            scheduler_id, repeat, now=now_ms(), name=name, data_json=data_json,
            template_opts=template,
        )
        return None if made is None else await self.get_job(made[0])

    @staticmethod
    def _template(proto: QueueProtocol, options: JobOptions | None) -> dict[str, Any] | None:
        if options is None:
            return None
        for option in _NOT_IN_TEMPLATE:
            if getattr(options, option) is not None:
                raise InvalidOptionsError(f"options.{option}: a job scheduler sets it "
                                          "(BullMQ's template has none)")
        stored = proto.encode_options(options)
        if options.attempts is None:
            # Node's template keeps only the options given; the wire's default
            # attempts (0) is what Node's Job reads for a missing one anyway.
            stored.pop("attempts", None)
        return mqwire.public_options(stored)

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Remove a scheduler and its delayed iteration (BullMQ's ``removeJobScheduler``);
        False when there was none. As in BullMQ, an iteration already waiting or
        running is left to run, and makes no next one."""
        proto = await self._scheduler_calls("remove_job_scheduler")
        return await proto.remove_job_scheduler(scheduler_id)

    async def get_job_scheduler(self, scheduler_id: str) -> JobScheduler | None:
        """One scheduler, or None (BullMQ's ``getJobScheduler``)."""
        proto = await self._scheduler_calls("get_job_scheduler")
        raw = await proto.get_job_scheduler(scheduler_id)
        return None if raw is None else JobScheduler.from_node_json(raw)

    async def get_job_schedulers(self, start: int = 0, end: int = -1, *,
                                 asc: bool = False) -> list[JobScheduler]:
        """Schedulers by next run, latest first unless ``asc`` (BullMQ's
        ``getJobSchedulers``)."""
        proto = await self._scheduler_calls("get_job_schedulers")
        found = await proto.get_job_schedulers(start, end, asc=asc)
        return [JobScheduler.from_node_json(raw) for raw in found]
