"""Pure KEYS/ARGV builders of BullMQ mode's adding and worker scripts.

One builder per script returns its ``(KEYS, ARGV)`` from primitive values;
:func:`checked` asserts the key count matches the script's file name. The
management scripts' builders are in :mod:`.script_args_admin`. The unit tests
drive both without Redis; :class:`.scripts.BullMQScripts` is their one caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.lua import numkeys
from pyqueue._protocol.bullmq.wire import parent_to_wire
from pyqueue._protocol.interface import Attempt, Keep, NewJob, WorkerSpec

Arg: TypeAlias = str | int | float | bytes
ScriptArgs: TypeAlias = tuple[list[str], list[Arg]]

# addJob's ARGV group: how many arguments describe one job (see addJob-11.lua).
ADD_ARGS_PER_JOB = 18


def checked(command: str, keys: list[str], args: list[Arg]) -> ScriptArgs:
    """``(keys, args)``, after asserting that ``command`` takes ``len(keys)`` KEYS."""
    expected = numkeys(command)
    if len(keys) != expected:
        raise AssertionError(f"{command} takes {expected} keys, got {len(keys)}")
    return keys, args


def _opt(value: object) -> Arg:
    """An optional ARGV: "" for None."""
    if value is None:
        return ""
    assert isinstance(value, str | int | float | bytes)
    return value


def dedup_flags(job: NewJob) -> str:
    """addJob's ARGV[16]: one letter per deduplication mode that is on."""
    d = job.dedup
    if d is None:
        return ""
    return "".join(letter for letter, on in (
        ("e", d.extend), ("r", d.replace), ("k", d.keep_last_if_active), ("s", d.reschedule),
    ) if on)


# --- adding -------------------------------------------------------------------


def add_keys(k: BullMQKeys) -> list[str]:
    """addJob-11's and addJobs-11's KEYS."""
    return [
        k.wait, k.prioritized, k.priority_counter, k.delayed, k.marker, k.meta, k.active,
        k.events, k.id, k.completed, k.waiting_children,
    ]


def add_argv(base: str, job: NewJob, *, flow: bool = False) -> list[Arg]:
    """One job's group of addJob's ARGV; ``flow``: part of a flow inserted in one
    call, whose parents are released once the whole call is in (addJobs)."""
    parent = job.parent
    return [
        base, job.job_id, job.name, job.timestamp, job.data, job.opts,
        max(int(job.delay), 0), job.priority, "1" if job.lifo else "0",
        "" if parent is None else parent.key,
        "" if parent is None else parent_to_wire(parent),
        "" if parent is None else f"{parent.key}:dependencies",
        "",  # rjk: set by the job scheduler scripts, not by adds
        "" if job.dedup is None else job.dedup.id,
        "" if job.dedup is None else _opt(job.dedup.ttl),
        dedup_flags(job),
        "1" if job.waiting_children else "0",
        "1" if flow and parent is not None else "0",
    ]


def add_job_args(k: BullMQKeys, job: NewJob) -> ScriptArgs:
    """addJob-11."""
    return checked("addJob", add_keys(k), add_argv(k.base, job))


def add_jobs_args(k: BullMQKeys, jobs: Sequence[NewJob]) -> ScriptArgs:
    """addJobs-11: addJob's ARGV once per job, in order (children are flow inserts)."""
    argv: list[Arg] = []
    for job in jobs:
        argv.extend(add_argv(k.base, job, flow=True))
    return checked("addJobs", add_keys(k), argv)


# --- a worker's path ----------------------------------------------------------


def fetch_keys(k: BullMQKeys) -> list[str]:
    """moveToActive-9's KEYS (also the head of the finishing scripts' lists)."""
    return [
        k.wait, k.active, k.prioritized, k.priority_counter, k.delayed, k.marker, k.meta,
        k.limiter, k.events,
    ]


def worker_argv(worker: WorkerSpec) -> list[Arg]:
    """Lock duration, limiter max and duration, worker name: how a job is started."""
    return [
        worker.lock_duration, _opt(worker.limiter_max), _opt(worker.limiter_duration),
        worker.name or "",
    ]


def move_to_active_args(
    k: BullMQKeys, *, token: str, worker: WorkerSpec, now: int
) -> ScriptArgs:
    """moveToActive-9."""
    lock, lmax, lduration, name = worker_argv(worker)
    return checked("moveToActive", fetch_keys(k),
                   [k.base, now, token, lock, lmax, lduration, name])


def attempt_fields(attempt: Attempt | None) -> list[Arg]:
    """The field/value pairs a failed attempt writes (failedReason, stacktrace)."""
    if attempt is None:
        return []
    return ["failedReason", attempt.failed_reason, "stacktrace", attempt.stacktrace]


def finished_keys(k: BullMQKeys, kind: str, job_id: str) -> list[str]:
    """moveToFinished-13's KEYS for ``kind`` ``completed`` or ``failed``."""
    return [
        *fetch_keys(k), k.stalled, k.finished_set(kind), k.job(job_id), k.metrics(kind),
    ]


def move_to_finished_args(
    k: BullMQKeys,
    job_id: str,
    *,
    kind: str,
    token: str,
    now: int,
    value: str,
    keep: Keep,
    worker: WorkerSpec,
    max_attempts: int,
    fetch_next: bool,
    next_token: str = "",
    attempt: Attempt | None = None,
) -> ScriptArgs:
    """moveToFinished-13: ``kind`` completed (``value`` the result JSON) or failed
    (``value`` the reason; ``attempt`` its fields)."""
    lock, lmax, lduration, name = worker_argv(worker)
    argv: list[Arg] = [
        k.base, job_id, now, token, kind, value, keep.count, _opt(keep.age),
        _opt(keep.limit), _opt(worker.metrics_max_points), max_attempts,
        "1" if fetch_next else "0", lock, lmax, lduration, name, next_token,
        *attempt_fields(attempt),
    ]
    return checked("moveToFinished", finished_keys(k, kind, job_id), argv)


def move_to_delayed_args(
    k: BullMQKeys,
    job_id: str,
    *,
    token: str,
    now: int,
    delay: int,
    count_attempt: bool = True,
    attempt: Attempt | None = None,
    worker: WorkerSpec | None = None,
    next_token: str = "",
) -> ScriptArgs:
    """moveToDelayed-11: due at ``now + delay``; with ``worker``, fetch the next job."""
    fetch = worker is not None
    lock, lmax, lduration, name = worker_argv(worker) if worker else ("", "", "", "")
    argv: list[Arg] = [
        k.base, job_id, now, token, max(int(delay), 0), "0" if count_attempt else "1",
        "1" if fetch else "0", lock, lmax, lduration, name, next_token,
        *attempt_fields(attempt),
    ]
    keys = [*fetch_keys(k), k.stalled, k.job(job_id)]
    return checked("moveToDelayed", keys, argv)


def retry_job_args(
    k: BullMQKeys, job_id: str, *, token: str, now: int, lifo: bool,
    attempt: Attempt | None = None,
) -> ScriptArgs:
    """retryJob-10."""
    keys = [
        k.wait, k.active, k.prioritized, k.priority_counter, k.delayed, k.marker, k.meta,
        k.events, k.stalled, k.job(job_id),
    ]
    argv: list[Arg] = [k.base, job_id, now, token, "RPUSH" if lifo else "LPUSH",
                       *attempt_fields(attempt)]
    return checked("retryJob", keys, argv)


def release_args(k: BullMQKeys, job_id: str, *, token: str) -> ScriptArgs:
    """moveJobFromActiveToWait-9."""
    keys = [
        k.active, k.wait, k.stalled, k.meta, k.limiter, k.prioritized, k.marker, k.events,
        k.job(job_id),
    ]
    return checked("moveJobFromActiveToWait", keys, [job_id, token])


def extend_lock_args(k: BullMQKeys, job_id: str, *, token: str, duration: int) -> ScriptArgs:
    """extendLock-2."""
    return checked("extendLock", [k.lock(job_id), k.stalled], [token, duration, job_id])


def extend_locks_args(
    k: BullMQKeys, job_ids: Sequence[str], tokens: Sequence[str], duration: int
) -> ScriptArgs:
    """extendLocks-1: one (id, token) pair per lock."""
    if len(job_ids) != len(tokens):
        raise ValueError(f"extendLocks: {len(job_ids)} ids but {len(tokens)} tokens")
    argv: list[Arg] = [k.base, duration]
    for job_id, token in zip(job_ids, tokens, strict=True):
        argv += [job_id, token]
    return checked("extendLocks", [k.stalled], argv)


def stalled_args(
    k: BullMQKeys, *, max_stalled_count: int, now: int, interval: int
) -> ScriptArgs:
    """moveStalledJobsToWait-8."""
    keys = [k.stalled, k.wait, k.active, k.stalled_check, k.meta, k.marker, k.events, k.repeat]
    return checked("moveStalledJobsToWait", keys, [max_stalled_count, k.base, now, interval])
