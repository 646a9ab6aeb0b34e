"""BullMQ mode's management and atomic-read script calls.

:class:`BullMQAdmin` extends :class:`.scripts.BullMQScripts` with pause,
promote, priority and delay changes, removal, retries of finished jobs,
cleaning, draining, obliterate and deduplication ids, and the reads that
need one atomic script (counts, state, outcome, counts per priority).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyqueue._protocol.bullmq import script_args_admin as adm
from pyqueue._protocol.bullmq.scripts import BullMQScripts, bullmq_error
from pyqueue.errors import JobStateError

_REPROCESS_STATES = ("failed", "completed")


class BullMQAdmin(BullMQScripts):
    """Management calls; the same client and keys as :class:`BullMQScripts`."""

    async def pause(self, paused: bool) -> None:
        """pause-7: pause, or resume (moving any old ``paused`` list into wait)."""
        if paused:
            await self._run("pause", adm.pause_args(self._keys, paused=True))
            return
        announce = True
        while True:
            left = await self._run("pause", adm.pause_args(self._keys, paused=False,
                                                           announce=announce))
            announce = False
            if not left:
                return

    async def promote(self, job_id: str, *, token: str = "") -> None:
        """promote-9 (raises JobStateError when the job is not delayed)."""
        code = await self._run("promote", adm.promote_args(self._keys, job_id))
        if code < 0:
            raise bullmq_error(code, job_id, "promote", state="delayed")

    async def change_priority(self, job_id: str, priority: int, *, lifo: bool = False) -> None:
        """changePriority-7 (raises JobNotFound)."""
        built = adm.change_priority_args(self._keys, job_id, priority=priority, lifo=lifo)
        await self._finish(job_id, built, "changePriority")

    async def change_delay(self, job_id: str, *, delay: int, now: int) -> None:
        """changeDelay-4: due at ``now + delay`` (raises JobNotFound, JobStateError)."""
        code = await self._run("changeDelay",
                               adm.change_delay_args(self._keys, job_id, delay=delay, now=now))
        if code < 0:
            raise bullmq_error(code, job_id, "changeDelay", state="delayed")

    async def remove(self, job_id: str, *, token: str = "", with_children: bool = True) -> bool:
        """removeJob-2: False when the job (or a child) is locked.

        Raises:
            JobStateError: the job is a job scheduler's next iteration (-8).
        """
        code = await self._run("removeJob", adm.remove_job_args(
            self._keys, job_id, with_children=with_children))
        if code < 0:
            raise bullmq_error(code, job_id, "removeJob")
        return bool(code)

    async def reprocess(self, job_id: str, *, state: str, lifo: bool, token: str = "",
                        now: int = 0, reset_attempts_made: bool = False,
                        reset_attempts_started: bool = False) -> None:
        """reprocessJob-9: retry one finished job (Job.retry).

        Raises:
            JobNotFound: no such job.
            JobStateError: not in ``state``.
        """
        if state not in _REPROCESS_STATES:
            raise ValueError(f"state: one of {_REPROCESS_STATES}, got {state!r}")
        code = await self._run("reprocessJob", adm.reprocess_args(
            self._keys, job_id, state=state, lifo=lifo, reset_attempts_made=reset_attempts_made,
            reset_attempts_started=reset_attempts_started))
        if code != 1:
            raise bullmq_error(code, job_id, "reprocessJob", state=state)

    async def retry_all(self, *, state: str = "failed", count: int = 1000, now: int) -> None:
        """moveJobsToWait-6 until done: every job of ``state`` finished by ``now``."""
        built = adm.move_jobs_to_wait_args(self._keys, state=state, count=count, up_to=now)
        while await self._run("moveJobsToWait", built) == 1:
            pass

    async def promote_all(self, *, count: int = 1000) -> None:
        """moveJobsToWait-6 until done: every delayed job (Queue.promoteJobs)."""
        built = adm.move_jobs_to_wait_args(self._keys, state="delayed", count=count,
                                           up_to="+inf")
        while await self._run("moveJobsToWait", built) == 1:
            pass

    async def clean(self, state: str, *, max_timestamp: int, limit: int) -> list[str]:
        """cleanJobsInSet-3: the removed ids."""
        built = adm.clean_args(self._keys, state, max_timestamp=max_timestamp, limit=limit)
        return [i.decode() for i in await self._run("cleanJobsInSet", built)]

    async def drain(self, *, delayed: bool) -> None:
        """drain-5."""
        await self._run("drain", adm.drain_args(self._keys, delayed=delayed))

    async def obliterate(self, *, force: bool, count: int = 1000) -> None:
        """obliterate-2 until done. The queue must be paused.

        Raises:
            JobStateError: not paused (-1), or active jobs without ``force`` (-2).
        """
        built = adm.obliterate_args(self._keys, count=count, force=force)
        while (code := await self._run("obliterate", built)) == 1:
            pass
        if code == -1:
            raise JobStateError("Cannot obliterate non-paused queue", code=code)
        if code == -2:
            raise JobStateError("Cannot obliterate queue with active jobs", code=code)

    async def remove_dedup(self, dedup_id: str, job_id: str | None = None) -> bool:
        """Free a deduplication id; with ``job_id``, only if that job owns it."""
        if job_id is None:
            return bool(await self._client.delete(self._keys.dedup(dedup_id)))
        return bool(await self._run("removeDeduplicationKey",
                                    adm.remove_dedup_args(self._keys, dedup_id, job_id)))

    # --- atomic reads -----------------------------------------------------------

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        """getCounts-1, keyed by the names asked for."""
        if not states:
            return {}
        counts = await self._run("getCounts", adm.get_counts_args(self._keys, states))
        return {state: int(n) for state, n in zip(states, counts, strict=True)}

    async def get_state(self, job_id: str) -> str:
        """getState-8."""
        state: bytes = await self._run("getState", adm.get_state_args(self._keys, job_id))
        return state.decode()

    async def finished_outcome(self, job_id: str) -> tuple[int, str | None]:
        """isFinished-3: ``(1, returnvalue)``, ``(2, reason)``, ``(0, None)``, ``(-1, None)``."""
        raw = await self._run("isFinished", adm.is_finished_args(self._keys, job_id))
        code = int(raw[0])
        value = raw[1].decode("utf-8", "replace") if len(raw) > 1 and raw[1] is not None else None
        return code, value

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> list[int]:
        """getCountsPerPriority-2."""
        if not priorities:
            return []
        counts = await self._run("getCountsPerPriority",
                                 adm.counts_per_priority_args(self._keys, priorities))
        return [int(n) for n in counts]
