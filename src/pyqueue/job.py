"""A job: its data and state, and the operations Bull offers on one job."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pyqueue._protocol.bull import wire
from pyqueue.errors import JobAbortedError, JobStateError, script_error
from pyqueue.options import JobOptions

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.scripts import Scripts

DataT = TypeVar("DataT")

JobState = Literal["completed", "failed", "delayed", "active", "waiting", "paused", "stuck"]


class JobOwner(Protocol):
    """What a Job needs of its queue. :class:`~pyqueue.Queue` is one; the protocol keeps
    this module free of an import of ``queue``, which imports it."""

    name: str
    token: str

    @property
    def client(self) -> aioredis.Redis: ...
    @property
    def scripts(self) -> Scripts: ...

    def emit(self, event: str, *args: Any) -> None: ...
    def encode_data(self, data: Any) -> str: ...
    def decode_data(self, data: Any) -> Any: ...
    async def get_job(self, job_id: str) -> Job[Any] | None: ...
    async def get_job_state(self, job_id: str) -> JobState: ...
    async def wait_until_finished(
        self, job_id: str, timeout: float | timedelta | None = None
    ) -> Any: ...
    async def abort(self, job_id: str, reason: str | None = None) -> AbortOutcome: ...
    def _removed(self, *job_ids: str) -> None: ...


# What Queue.abort did: failed a waiting job, or signalled the worker of an active one.
AbortOutcome = Literal["failed", "signalled"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Job(Generic[DataT]):
    """One job of a queue, as an ``async def`` handler and a producer see it.

    Attributes mirror Bull's job fields in snake_case (each property says what it
    holds): ``id``, ``name``, ``data`` (the payload; the model instance when the queue
    or the handler has a model), ``opts`` (a :class:`JobOptions`), ``timestamp``,
    ``delay``, ``priority``, ``progress_value``, ``attempts_made``, ``failed_reason``,
    ``stacktrace``, ``return_value``, ``finished_on``, ``processed_on``. Plus:

    * ``created``: True on the job an ``add()`` returned when that call created it;
      False when the add found the job already there (a duplicate ``job_id``, a
      debounced add) and for jobs read from Redis.
    * ``context``: in a worker, the worker's context dict (``Worker(context=...)``).
    * ``lock_token``: in a worker, the token of the lock the worker holds.

    Fields are what was read or written last; :meth:`reload` reads them again.
    """

    __slots__ = (
        "_aborted",
        "_discarded",
        "_opts",
        "_queue",
        "_record",
        "_timed_out",
        "context",
        "created",
        "data",
        "id",
        "lock_token",
        "name",
    )

    def __init__(self, queue: JobOwner, record: wire.JobRecord, data: DataT) -> None:
        self._queue = queue
        self._record = record
        self._opts: JobOptions | None = None
        self._discarded = False
        self.id: str = record.id
        self.name: str = record.name
        self.data: DataT = data
        self.lock_token: str | None = None
        # The worker's context while a worker runs this job (Worker(context=...)).
        self.context: dict[str, Any] = {}
        self.created = False
        self._aborted: str | None = None
        self._timed_out = False

    def __repr__(self) -> str:
        return f"<Job {self.id!r} name={self.name!r} queue={self._queue.name!r}>"

    # --- fields -------------------------------------------------------------

    @property
    def queue(self) -> JobOwner:
        """The :class:`~pyqueue.Queue` this job belongs to."""
        return self._queue

    @property
    def opts(self) -> JobOptions:
        """The job's options, decoded from Bull's ``opts`` JSON on first use."""
        if self._opts is None:
            self._opts = wire.options_from_wire(self._record.raw_opts)
        return self._opts

    @property
    def raw_opts(self) -> dict[str, Any]:
        """The ``opts`` object exactly as stored (camelCase)."""
        return self._record.raw_opts

    @property
    def timestamp(self) -> int:
        """When the job was created, epoch ms (Bull's ``timestamp``)."""
        return self._record.timestamp

    @property
    def delay(self) -> int:
        """ms after ``timestamp`` before the job may run (0 when not delayed)."""
        return self._record.delay

    @property
    def priority(self) -> int:
        """The job's priority, 1 the highest; 0 when it has none."""
        return self._record.priority

    @property
    def progress_value(self) -> Any:
        """The last progress stored (a number or any JSON value; 0 before any)."""
        return self._record.progress

    @property
    def attempts_made(self) -> int:
        """Failed attempts so far, as Bull counts them (``attemptsMade``).

        An attempt that completes is not counted: a job done on its first try keeps 0,
        and one done on its third keeps 2, as Node Bull stores it. In a handler,
        ``attempts_made + 1`` is the number of the running attempt.
        """
        return self._record.attempts_made

    @property
    def stalled_counter(self) -> int:
        """How many times the job was found stalled and recovered (``stalledCounter``)."""
        return self._record.stalled_counter

    @property
    def failed_reason(self) -> str | None:
        """The last failed attempt's error message (``failedReason``); None before any.

        A timeout keeps Bull's text, ``Promise timed out after <n> milliseconds``.
        """
        return self._record.failed_reason

    @property
    def stacktrace(self) -> list[str]:
        """The stack traces of failed attempts, oldest first (``stackTraceLimit`` caps it)."""
        return self._record.stacktrace

    @property
    def return_value(self) -> Any:
        """What the handler returned, JSON-decoded (``returnvalue``); None before then."""
        return self._record.return_value

    @property
    def finished_on(self) -> int | None:
        """When the job completed or failed for good, epoch ms; None while it may still run."""
        return self._record.finished_on

    @property
    def processed_on(self) -> int | None:
        """When the latest attempt started, epoch ms (``processedOn``); None before any."""
        return self._record.processed_on

    @property
    def debounce_id(self) -> str | None:
        """Bull 4.16's ``deid``: the debounce id this job holds, if it was added with one."""
        return self._record.debounce_id

    @property
    def record(self) -> wire.JobRecord:
        """The decoded job hash underneath these fields."""
        return self._record

    def to_json(self) -> dict[str, Any]:
        """The fields Node's ``Job#toJSON()`` returns, camelCase, as UIs show them."""
        return wire.job_to_json(self._record)

    # --- operations ---------------------------------------------------------

    async def progress(self, value: Any) -> None:
        """Store progress (a number or any JSON value) and publish a progress event."""
        text = wire.dumps(value)
        await self._queue.scripts.update_progress(
            self.id, progress_json=text, event_payload=wire.progress_payload(self.id, text)
        )
        self._record.progress = value
        self._queue.emit("progress", self, value)

    async def log(self, line: str) -> int:
        """Append a line to the job's log; returns the number of lines."""
        return await self._queue.scripts.add_log(self.id, line=str(line))

    async def update(self, data: Any) -> None:
        """Replace the job's data."""
        text = self._queue.encode_data(data)
        await self._queue.scripts.update_data(self.id, data_json=text)
        stored = wire.loads(text)
        self._record.data = stored
        self.data = self._queue.decode_data(stored)

    async def remove(self) -> None:
        """Delete the job from every set, with its logs.

        Raises:
            JobStateError: the job is locked (being processed).
        """
        removed = await self._queue.scripts.remove_job(self.id, token=self._queue.token)
        if not removed:
            raise JobStateError(f"Could not remove job {self.id}", job_id=self.id)
        self._queue._removed(self.id)
        self._queue.emit("removed", self)

    async def retry(self) -> None:
        """Move a failed job back to wait (Bull's ``Job#retry``)."""
        code = await self._queue.scripts.reprocess_job(
            self.id, lifo=bool(self.opts.lifo), token=self._queue.token, now=now_ms()
        )
        if code == 1:
            return
        messages = {
            0: "Couldn't retry job: The job doesn't exist",
            -1: "Couldn't retry job: The job is locked",
            -2: "Couldn't retry job: The job has been already retried or has not failed",
        }
        raise JobStateError(messages.get(code, f"retry failed: {code}"), job_id=self.id, code=code)

    async def promote(self) -> None:
        """Move a delayed job to wait now."""
        await self._queue.scripts.promote(self.id, token=self._queue.token)

    def discard(self) -> None:
        """Do not retry this job when the current attempt fails."""
        self._discarded = True

    @property
    def discarded(self) -> bool:
        """True once :meth:`discard` was called in this attempt."""
        return self._discarded

    async def abort(self, reason: str | None = None) -> AbortOutcome:
        """Abort this job; see :meth:`pyqueue.Queue.abort`."""
        return await self._queue.abort(self.id, reason)

    @property
    def aborted(self) -> str | None:
        """In a handler: why the attempt is over, else None.

        Set when the job was aborted (``queue.abort``: the failed reason to come) and
        when the attempt outran its ``timeout`` (``timed out after <n> s``): a plain
        ``def`` handler keeps running in its thread, so it should stop where it checks.
        """
        return self._aborted

    def mark_aborted(self, reason: str) -> None:
        """Record that the job was aborted (the worker does, when it hears of it)."""
        if self._aborted is None:
            self._aborted = reason

    def mark_timed_out(self, reason: str) -> None:
        """Record that this attempt outran its timeout: :attr:`aborted` tells the handler.

        Unlike an abort, the attempt fails as a timeout, and its retries still apply.
        """
        if self._aborted is None:
            self._aborted = reason
            self._timed_out = True

    @property
    def timed_out(self) -> bool:
        """True when :attr:`aborted` was set by the attempt's timeout, not by an abort."""
        return self._timed_out

    def raise_if_aborted(self) -> None:
        """Raise :class:`~pyqueue.JobAbortedError` if the job was aborted while it ran."""
        if self._aborted is not None:
            raise JobAbortedError(self._aborted)

    async def get_state(self) -> JobState:
        """The job's state now; see :meth:`pyqueue.Queue.get_job_state`.

        Raises:
            JobNotFound: the job no longer exists.
        """
        return await self._queue.get_job_state(self.id)

    async def is_completed(self) -> bool:
        """True if the job is in the completed set."""
        return await self._queue.scripts.is_finished(self.id) == 1

    async def is_failed(self) -> bool:
        """True if the job is in the failed set (failed for good)."""
        return await self._queue.scripts.is_finished(self.id) == 2

    async def finished(self, timeout: float | timedelta | None = None) -> Any:
        """Wait until the job completes and return its result (Bull's ``job.finished()``).

        All waiters of a queue share one subscriber; see
        :meth:`pyqueue.Queue.wait_until_finished`.

        Args:
            timeout: Seconds (or a timedelta) to wait; None waits without limit.

        Raises:
            JobFailedError: the job failed for good.
            JobNotFound: the job does not exist, or is removed while waited for.
            TimeoutError: ``timeout`` passed first.
        """
        return await self._queue.wait_until_finished(self.id, timeout)

    async def reload(self) -> None:
        """Re-read the job hash from Redis."""
        fresh = await self._queue.get_job(self.id)
        if fresh is None:
            raise script_error(-1, self.id, "reload")
        self._record = fresh.record
        self._opts = None
        self.data = fresh.data

