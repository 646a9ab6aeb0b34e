"""The one module that calls BullMQ mode's Lua scripts.

:class:`BullMQScripts` offers one typed async method per script (``commands/``,
loaded and registered by :mod:`.lua`), with the signatures of
:class:`pyqueue._protocol.interface.QueueProtocol` where the interface has the
operation. Each builds its ``(KEYS, ARGV)`` with a pure builder of
:mod:`.script_args` or :mod:`.script_args_admin`, runs the script on one
client and maps negative codes to :mod:`pyqueue.errors` with BullMQ's messages.
Responses are bytes; ids are decoded as UTF-8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pyqueue._protocol.bullmq import script_args as sa
from pyqueue._protocol.bullmq import script_args_admin as adm
from pyqueue._protocol.bullmq.lua import registered
from pyqueue._protocol.interface import (
    AddResult,
    Attempt,
    Idle,
    JobReply,
    Keep,
    NewJob,
    WorkerSpec,
)
from pyqueue.errors import JobNotFound, JobStateError, LockMismatch, ScriptError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pyqueue._protocol.bullmq.keys import BullMQKeys
    from pyqueue._protocol.fastconn import FastConnection


def bullmq_error(code: int, job_id: str, command: str, state: str = "active",
                 parent_key: str = "") -> ScriptError:
    """A negative script code as the exception pyqueue raises, with BullMQ's message."""
    if code == -1:
        return JobNotFound(f"Missing key for job {job_id}. {command}", job_id=job_id, code=code)
    if code == -2:
        return LockMismatch(f"Missing lock for job {job_id}. {command}", job_id=job_id, code=code)
    if code == -6:
        return LockMismatch(f"Lock mismatch for job {job_id}. Cmd {command} from {state}",
                            job_id=job_id, code=code)
    messages = {
        -3: f"Job {job_id} is not in the {state} state. {command}",
        -4: f"Job {job_id} has pending dependencies. {command}",
        -5: f"Missing key for parent job {parent_key}. {command}",
        -7: f"The parent job {parent_key} cannot be replaced. {command}",
        -8: f"Job {job_id} belongs to a job scheduler and cannot be removed directly. {command}",
        -9: f"Cannot complete job {job_id} because it has at least one failed child. {command}",
    }
    message = messages.get(code, f"Unknown code {code} error for {job_id}. {command}")
    if code == -5:
        return JobNotFound(message, job_id=job_id, code=code)
    return JobStateError(message, job_id=job_id, code=code)


def job_reply(raw: Any) -> JobReply | Idle:
    """A fetching reply: ``{HGETALL, id}`` of a started job, or ``{limit ms, due ms}``."""
    first, second = raw
    if isinstance(first, list):
        pairs = iter(first)  # field, value, field, value...
        return dict(zip(pairs, pairs)), second.decode()  # noqa: B905 - one iterator, in pairs
    return Idle(int(first), int(second))


def _ids(raw: list[bytes]) -> list[str]:
    return [item.decode() for item in raw]


class BullMQScripts:
    """Typed calls of every BullMQ-mode script for one queue on one client.

    Args:
        client: An asyncio client created with ``decode_responses=False``.
        keys: The queue's key names.
        fast: Bull mode's lean connection, when the queue has one: script calls go
            over it (it writes the calls of concurrent jobs together, as ioredis
            does for Node), everything else over ``client``.
    """

    def __init__(self, client: aioredis.Redis, keys: BullMQKeys,
                 fast: FastConnection | None = None) -> None:
        self._client = client
        self._keys = keys
        self._fast = fast
        self._s = registered(client)
        # The constant head of every fetching script's KEYS, built once.
        self._fetch_keys = sa.fetch_keys(keys)

    async def _run(self, command: str, built: sa.ScriptArgs) -> Any:
        keys, args = built
        return await self._eval(command, keys, args)

    async def _eval(self, command: str, keys: list[str], args: list[sa.Arg]) -> Any:
        """One script call: over the lean connection when there is one."""
        script = self._s[command]
        if self._fast is not None:
            source = cast("str", script.script)  # registered from a str
            return await self._fast.evalsha(script.sha, source, keys, args)
        return await script(keys=keys, args=args)

    # --- adding ---------------------------------------------------------------

    async def add_job(self, job: NewJob, *, token: str = "") -> AddResult:
        """addJob-11 (``token`` is Bull's; BullMQ's adds have none).

        Raises:
            JobNotFound: the job's parent is missing (-5).
            JobStateError: the existing job belongs to another parent (-7).
        """
        raw = await self._run("addJob", sa.add_job_args(self._keys, job))
        return self._add_result(raw, None, job)

    async def add_jobs(self, jobs: Sequence[NewJob], *, token: str = "") -> list[AddResult]:
        """addJobs-11: every job in one atomic call, in order."""
        if not jobs:
            return []
        raw = await self._run("addJobs", sa.add_jobs_args(self._keys, jobs))
        return [
            self._add_result(raw[2 * i], raw[2 * i + 1], job) for i, job in enumerate(jobs)
        ]

    def _add_result(self, first: Any, outcome: Any, job: NewJob) -> AddResult:
        if isinstance(first, list):
            first, outcome = first
        if isinstance(first, int):
            parent = job.parent.key if job.parent is not None else ""
            raise bullmq_error(first, job.job_id, "addJob", parent_key=parent)
        job_id = first.decode()
        return AddResult(job_id, outcome == 0, outcome == 2)

    # --- a worker's path ------------------------------------------------------

    async def move_to_active(
        self, *, token: str, worker: WorkerSpec, now: int, job_id: str = ""
    ) -> JobReply | Idle:
        """moveToActive-9 (``job_id`` is Bull's: BullMQ's wait hands out no id)."""
        lock, lmax, lduration, name = sa.worker_argv(worker)
        args: list[sa.Arg] = [self._keys.base, now, token, lock, lmax, lduration, name]
        return job_reply(await self._eval("moveToActive", self._fetch_keys, args))

    async def _finish(self, job_id: str, built: sa.ScriptArgs, command: str) -> Any:
        raw = await self._run(command, built)
        if isinstance(raw, int) and raw < 0:
            raise bullmq_error(raw, job_id, command)
        return raw

    async def complete(
        self,
        job_id: str,
        *,
        token: str,
        result_json: str,
        finished_on: int,
        keep: Keep,
        worker: WorkerSpec,
        fetch_next: bool,
        next_token: str = "",
        max_attempts: int = 0,
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """moveToFinished-13 into completed.

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3/-4/-9.
        """
        built = sa.move_to_finished_args(
            self._keys, job_id, kind="completed", token=token, now=finished_on,
            value=result_json, keep=keep, worker=worker, max_attempts=max_attempts,
            fetch_next=fetch_next, next_token=next_token,
        )
        raw = await self._finish(job_id, built, "moveToFinished")
        return job_reply(raw) if isinstance(raw, list) else None

    async def fail(
        self,
        job_id: str,
        attempt: Attempt,
        *,
        token: str,
        finished_on: int,
        keep: Keep,
        worker: WorkerSpec,
        max_attempts: int,
        fetch_next: bool = False,
        next_token: str = "",
        has_dedup: bool = True,
    ) -> JobReply | Idle | None:
        """moveToFinished-13 into failed, recording the attempt (and fetching the
        next job with ``fetch_next``, as a Node worker does).

        Raises:
            JobNotFound, LockMismatch, JobStateError: codes -1, -2/-6, -3.
        """
        built = sa.move_to_finished_args(
            self._keys, job_id, kind="failed", token=token, now=finished_on,
            value=attempt.failed_reason, keep=keep, worker=worker, max_attempts=max_attempts,
            fetch_next=fetch_next, next_token=next_token, attempt=attempt,
        )
        raw = await self._finish(job_id, built, "moveToFinished")
        return job_reply(raw) if isinstance(raw, list) else None

    async def retry(
        self,
        job_id: str,
        attempt: Attempt,
        *,
        token: str,
        delay: int,
        lifo: bool,
        now: int,
        worker: WorkerSpec | None = None,
        fetch_next: bool = False,
        next_token: str = "",
    ) -> JobReply | None:
        """retryJob-10 (``delay`` 0) or moveToDelayed-11, recording the attempt;
        a delayed retry fetches the next job with ``fetch_next``, as Node does."""
        if delay > 0:
            return await self.move_to_delayed(
                job_id, token=token, now=now, delay=delay, count_attempt=True, attempt=attempt,
                worker=worker if fetch_next else None, next_token=next_token)
        built = sa.retry_job_args(self._keys, job_id, token=token, now=now, lifo=lifo,
                                  attempt=attempt)
        await self._finish(job_id, built, "retryJob")
        return None

    async def move_to_delayed(
        self, job_id: str, *, token: str, now: int, delay: int, count_attempt: bool = False,
        attempt: Attempt | None = None, worker: WorkerSpec | None = None, next_token: str = "",
    ) -> JobReply | None:
        """moveToDelayed-11 (BullMQ's Job.moveToDelayed: no attempt counted by default);
        with ``worker``, the next job started in the same call is returned."""
        built = sa.move_to_delayed_args(
            self._keys, job_id, token=token, now=now, delay=delay, count_attempt=count_attempt,
            attempt=attempt, worker=worker, next_token=next_token,
        )
        raw = await self._finish(job_id, built, "moveToDelayed")
        if isinstance(raw, list):
            reply = job_reply(raw)
            return None if isinstance(reply, Idle) else reply
        return None

    async def release(self, job_id: str, *, token: str) -> None:
        """moveJobFromActiveToWait-9: back to the front of wait, no attempt counted.

        Raises:
            JobNotFound, LockMismatch: codes -1, -2/-6.
        """
        await self._finish(job_id, sa.release_args(self._keys, job_id, token=token),
                           "moveJobFromActiveToWait")

    async def extend_lock(self, job_id: str, *, token: str, duration: int) -> bool:
        """extendLock-2: False when the lock is lost."""
        built = sa.extend_lock_args(self._keys, job_id, token=token, duration=duration)
        return bool(await self._run("extendLock", built))

    async def extend_locks(
        self, job_ids: Sequence[str], tokens: Sequence[str], duration: int
    ) -> list[str]:
        """extendLocks-1: the ids whose lock is lost."""
        if not job_ids:
            return []
        built = sa.extend_locks_args(self._keys, job_ids, tokens, duration)
        return _ids(await self._run("extendLocks", built))

    async def check_stalled(
        self, *, max_stalled_count: int, now: int, interval: int
    ) -> tuple[list[str], list[str]]:
        """moveStalledJobsToWait-8: ``(ids marked to fail, ids recovered)``."""
        built = sa.stalled_args(self._keys, max_stalled_count=max_stalled_count, now=now,
                                interval=interval)
        marked, recovered = await self._run("moveStalledJobsToWait", built)
        return _ids(marked), _ids(recovered)

    # --- a job's progress, log, data -------------------------------------------

    async def update_progress(self, job_id: str, progress_json: str) -> None:
        """updateProgress-3 (raises JobNotFound)."""
        built = adm.update_progress_args(self._keys, job_id, progress_json=progress_json)
        await self._finish(job_id, built, "updateProgress")

    async def add_log(self, job_id: str, line: str, keep_logs: int | None = None) -> int:
        """addLog-2: the lines kept (raises JobNotFound)."""
        built = adm.add_log_args(self._keys, job_id, line=line, keep_logs=keep_logs)
        count: int = await self._finish(job_id, built, "addLog")
        return count

    async def update_data(self, job_id: str, data_json: str) -> None:
        """updateData-1 (raises JobNotFound)."""
        await self._finish(job_id, adm.update_data_args(self._keys, job_id, data_json=data_json),
                           "updateData")
