"""Managing a queue: pause, cleaning, removal, bulk retries and repeat schedules.

:class:`QueueAdmin` is a mixin of :class:`pyqueue.Queue` that holds these methods.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from pyqueue import _durations, _scheduling
from pyqueue._protocol.bull import wire
from pyqueue.errors import InvalidOptionsError, JobNotFound, JobStateError
from pyqueue.job import AbortOutcome, now_ms

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bull.keys import QueueKeys
    from pyqueue._protocol.bull.scripts import Scripts
    from pyqueue.repeat import Repeat

# Bull's "wait" and get_jobs' "waiting" name the same list.
CleanState = Literal["completed", "failed", "delayed", "wait", "waiting", "active", "paused"]
_CLEAN_STATES: tuple[str, ...] = (
    "completed", "failed", "delayed", "wait", "waiting", "active", "paused",
)

class QueueAdmin:
    """The management methods of :class:`pyqueue.Queue`.

    A mixin: ``Queue`` sets the attributes annotated here and, through
    :class:`~pyqueue._emitter.EventEmitter`, defines ``emit``.
    """

    client: aioredis.Redis
    keys: QueueKeys
    scripts: Scripts

    if TYPE_CHECKING:

        def emit(self, event: str, *args: Any) -> None: ...

        def _removed(self, *job_ids: str) -> None: ...

    async def pause(self) -> None:
        """Pause the queue globally: no worker fetches until :meth:`resume`."""
        await self.scripts.pause(True)
        self.emit("paused")

    async def resume(self) -> None:
        await self.scripts.pause(False)
        self.emit("resumed")

    async def abort(self, job_id: str, reason: str | None = None) -> AbortOutcome:
        """Abort a job: it fails for good, with failed reason ``"aborted[: reason]"``.

        A job that waits (waiting, paused, delayed, prioritized) fails at once and
        never runs: returns ``"failed"``. Its ``removeOnFail`` applies as when a
        worker fails a job (``True`` deletes it). An active job is flagged and its worker
        told (pyqueue workers only; a Node worker runs it to the end): returns
        ``"signalled"``. That worker cancels an ``async def`` handler, kills a
        sandboxed one's process, and sets ``job.aborted`` for a plain ``def``
        handler, which stops where it calls ``job.raise_if_aborted()``. Whatever
        the handler then does, the attempt fails with :class:`~pyqueue.JobAbortedError`
        and is not retried. A worker that missed the message (reconnecting) finds
        the flag when it resubscribes, and a worker that fetches the job again
        (after a stall) fails it before it runs.

        Raises:
            JobNotFound: no such job.
            JobStateError: the job already completed or failed (``code`` -7), or
                is between two states right now (``code`` -3; try again).
        """
        text = wire.abort_reason(reason)
        # The options never change once the job is added, so reading them before
        # the script is safe; the script applies them only if it fails the job.
        stored = cast("bytes | None", await self.client.hget(self.keys.job(job_id), "opts"))
        code = await self.scripts.abort_job(
            job_id, reason=text, now=now_ms(), event_payload=wire.failed_payload(job_id, text),
            abort_payload=wire.abort_payload(job_id, text), abort_field=wire.ABORT_FIELD,
            keep=wire.keep_on_fail(stored),
        )
        if code == 1:
            return "failed"
        if code == 2:
            return "signalled"
        if code == -1:
            raise JobNotFound(f"Couldn't abort job {job_id}: it does not exist",
                              job_id=job_id, code=code)
        if code == -7:
            raise JobStateError(f"Couldn't abort job {job_id}: it has already finished",
                                job_id=job_id, code=code)
        raise JobStateError(f"Couldn't abort job {job_id}: it is moving between states",
                            job_id=job_id, code=code)

    async def is_paused(self) -> bool:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.meta_paused)
            pipe.hexists(self.keys.meta, "paused")
            flag, meta = await pipe.execute()
        return bool(flag) or bool(meta)

    async def clean(
        self,
        grace: int | timedelta,
        state: CleanState = "completed",
        limit: int = 0,
    ) -> list[str]:
        """Delete jobs in ``state`` finished (or created) more than ``grace`` ms ago.

        Args:
            grace: ms (or a timedelta), as in Bull: only jobs older than this go.
            state: Which set or list to clean.
            limit: Delete at most this many (0: no limit).

        ``state`` takes the names of :meth:`get_jobs` (``"waiting"``) and Bull's
        ``"wait"`` alike; ``cleaned`` is emitted with the name as given.
        """
        if state not in _CLEAN_STATES:
            raise InvalidOptionsError(
                f"state: cannot clean {state!r}; one of {', '.join(_CLEAN_STATES)}"
            )
        grace_ms = _durations.whole_ms("grace", grace)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidOptionsError(f"limit: must be an int >= 0, got {limit!r}")
        ids = await self.scripts.clean_jobs_in_set(
            "wait" if state == "waiting" else state, max_timestamp=now_ms() - grace_ms, limit=limit
        )
        self._removed(*ids)
        self.emit("cleaned", ids, state)
        return ids

    async def empty(self) -> None:
        """Drop waiting, paused and delayed jobs (Bull's ``empty``; also unpauses).

        One atomic script: a job added meanwhile is either dropped with its hash
        or kept whole. Active and finished jobs are left alone.
        """
        await self.scripts.empty()
        self._removed()

    async def obliterate(self, *, force: bool = False, count: int = 1000) -> None:
        """Delete the whole queue. Pauses it first, as Bull does.

        Raises:
            JobStateError: active jobs exist and ``force`` is False.
        """
        await self.pause()
        while (code := await self.scripts.obliterate(count=count, force=force)) == 1:
            pass
        if code == -1:
            raise JobStateError("Cannot obliterate non-paused queue", code=code)
        if code == -2:
            raise JobStateError("Cannot obliterate queue with active jobs", code=code)
        await self.client.delete(self.keys.wait, self.keys.limiter, self.keys.limiter_index)
        self._removed()

    async def remove_jobs(self, pattern: str) -> list[str]:
        """Remove unlocked jobs whose id matches the glob ``pattern``."""
        cursor, removed = "0", []
        while True:
            cursor, ids = await self.scripts.remove_jobs(pattern, cursor)
            removed.extend(ids)
            if cursor == "0":
                self._removed(*removed)
                return removed

    async def retry_jobs(self, count: int = 1000) -> None:
        """Move every failed job back to wait."""
        while await self.scripts.retry_jobs(count=count) == 1:
            pass

    async def remove_debounce_key(self, debounce_id: str) -> bool:
        """Release a debounce id now (Bull 4.16's ``removeDebounceKey``); True if it was held."""
        return bool(await self.client.delete(self.keys.debounce(debounce_id)))

    # --- repeat schedules ---------------------------------------------------

    async def get_repeatable_jobs(
        self, start: int = 0, end: int = -1, *, asc: bool = False
    ) -> list[dict[str, Any]]:
        """Schedules in the repeat set: key, name, id, end_date, tz, cron, every, next."""
        if asc:
            found = await self.client.zrange(self.keys.repeat, start, end, withscores=True)
        else:
            found = await self.client.zrevrange(self.keys.repeat, start, end, withscores=True)
        out = []
        for member, score in cast("list[tuple[bytes, float]]", found):
            entry = _scheduling.parse_repeat_key(member.decode())
            entry["next"] = int(score)
            out.append(entry)
        return out

    async def get_repeatable_count(self) -> int:
        return int(await self.client.zcard(self.keys.repeat))

    async def remove_repeatable(self, repeat: Repeat, *, name: str | None = None) -> None:
        """Remove a schedule and its next delayed instance (the same ``repeat`` as added)."""
        job_name = name or "__default__"
        await self.scripts.remove_repeatable(
            id_prefix=repeat.id_prefix(job_name), repeat_key=repeat.key(job_name)
        )

    async def remove_repeatable_by_key(self, key: str) -> None:
        """Remove a schedule by its repeat key, as listed by :meth:`get_repeatable_jobs`."""
        first, *more = _scheduling.instance_prefixes_of_key(key)
        await self.scripts.remove_repeatable(
            id_prefix=first, repeat_key=key, more_prefixes=tuple(more)
        )
