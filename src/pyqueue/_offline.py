"""Jobs with no Redis behind them, for calling a handler in a test (:mod:`pyqueue.testing`).

An :class:`OfflineJob` is a :class:`~pyqueue.Job` and an :class:`OfflineHandle` a
:class:`~pyqueue.JobHandle`, so a handler typed ``Job[Email]`` or ``JobHandle[Email]``
takes them. What a handler reports (progress, log lines, new data) is kept in memory;
what needs a queue raises ``RuntimeError`` saying so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import BaseModel

from pyqueue._protocol.bull import wire
from pyqueue.handle import JobHandle
from pyqueue.job import AbortOutcome, Job, JobState, now_ms
from pyqueue.options import JobOptions

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.scripts import Scripts

DataT = TypeVar("DataT")


def offline_record(
    job_id: str, name: str, data: Any, options: JobOptions | None, attempts_made: int
) -> wire.JobRecord:
    """The record of a job as a worker would read it, built without Redis."""
    now = now_ms()
    opts = wire.options_to_wire(options or JobOptions(), timestamp=now)
    stored = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    record = wire.new_job_record(job_id, name, stored, opts, now, int(opts.get("delay", 0)),
                                 int(opts.get("priority", 0)))
    record.attempts_made = attempts_made
    record.processed_on = now
    return record


def _no_redis(what: str) -> NoReturn:
    raise RuntimeError(f"{what} needs a queue: this job was made by pyqueue.testing, "
                       "without Redis (use drain() or a real Queue to test it)")


class _Nowhere:
    """The owner of an offline job: it has a name and emits nothing."""

    name = "offline"
    token = "offline"

    @property
    def client(self) -> aioredis.Redis:
        _no_redis("a Redis client")

    @property
    def scripts(self) -> Scripts:
        _no_redis("a script call")

    def emit(self, event: str, *args: Any) -> None:
        """Events of an offline job go nowhere."""

    def encode_data(self, data: Any) -> str:
        return wire.encode_data(data)

    def decode_data(self, data: Any) -> Any:
        return data

    async def get_job(self, job_id: str) -> Job[Any] | None:
        _no_redis("get_job")

    async def get_job_state(self, job_id: str) -> JobState:
        _no_redis("get_state")

    async def wait_until_finished(
        self, job_id: str, timeout: float | timedelta | None = None
    ) -> Any:
        _no_redis("finished")

    async def abort(self, job_id: str, reason: str | None = None) -> AbortOutcome:
        _no_redis("abort")

    def _removed(self, *job_ids: str) -> None:
        """Nothing waits for an offline job."""


class OfflineJob(Job[DataT]):
    """A :class:`~pyqueue.Job` for a test: reports are kept, nothing is sent.

    ``progress_value`` is the last progress, ``logs`` the lines logged, ``data`` the
    last data given to ``update``.
    """

    __slots__ = ("logs",)

    def __init__(self, record: wire.JobRecord, data: DataT) -> None:
        super().__init__(_Nowhere(), record, data)
        self.logs: list[str] = []

    async def progress(self, value: Any) -> None:
        """Keep ``value`` as :attr:`progress_value` (checked to be JSON, as a worker would)."""
        wire.dumps(value)
        self.record.progress = value

    async def log(self, line: str) -> int:
        """Append ``line`` to :attr:`logs`; returns the number of lines."""
        self.logs.append(str(line))
        return len(self.logs)

    async def update(self, data: Any) -> None:
        """Replace :attr:`data` (checked to be JSON, as a worker would)."""
        wire.encode_data(data)
        self.data = data

    async def remove(self) -> None:
        """Needs Redis: raises ``RuntimeError``."""
        _no_redis("remove")

    async def retry(self) -> None:
        """Needs Redis: raises ``RuntimeError``."""
        _no_redis("retry")

    async def promote(self) -> None:
        """Needs Redis: raises ``RuntimeError``."""
        _no_redis("promote")

    async def reload(self) -> None:
        """Needs Redis: raises ``RuntimeError``."""
        _no_redis("reload")


class OfflineHandle(JobHandle[DataT]):
    """A :class:`~pyqueue.JobHandle` for a test, over an :class:`OfflineJob`.

    ``progress_value``, ``logs`` and ``data`` show what the handler reported.
    """

    def __init__(self, job: OfflineJob[DataT]) -> None:
        self._job = job
        self.id = job.id
        self.name = job.name
        self.data = job.data
        self.raw_opts = job.raw_opts
        self.attempts_made = job.attempts_made
        self.timestamp = job.timestamp

    @property
    def job(self) -> OfflineJob[DataT]:
        """The offline job underneath."""
        return self._job

    @property
    def context(self) -> dict[str, Any]:
        """The context given to ``make_job_handle`` (default: an empty dict)."""
        return self._job.context

    @property
    def aborted(self) -> str | None:
        """The ``aborted`` given to ``make_job_handle``, else None."""
        return self._job.aborted

    @property
    def progress_value(self) -> Any:
        """The last progress the handler reported."""
        return self._job.progress_value

    @property
    def logs(self) -> list[str]:
        """The lines the handler logged."""
        return self._job.logs

    def progress(self, value: Any) -> None:
        """Keep ``value`` as :attr:`progress_value`."""
        wire.dumps(value)
        self._job.record.progress = value

    def log(self, line: str) -> int:
        """Append ``line`` to :attr:`logs`; returns the number of lines."""
        self._job.logs.append(str(line))
        return len(self._job.logs)

    def update(self, data: Any) -> None:
        """Replace :attr:`data`."""
        wire.encode_data(data)
        self.data = data
        self._job.data = data
