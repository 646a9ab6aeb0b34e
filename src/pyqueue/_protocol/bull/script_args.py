"""Pure KEYS/ARGV builders of the scripts a job passes through, and their types.

One builder per script returns its ``(KEYS, ARGV)`` from primitive values;
:func:`checked` asserts that the key count matches the script's file name.
The unit tests drive them without Redis. This module covers adding jobs and a
job's way through the worker (fetch, finish, retry, delay, locks, stalled
check, delayed promotion), plus the primitives every builder shares; the
management and per-job operations are in :mod:`pyqueue._protocol.bull.script_args_admin`.
:class:`pyqueue._protocol.bull.scripts.Scripts` is the one caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from pyqueue._protocol.bull.lua import numkeys

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyqueue._protocol.bull.keys import QueueKeys

Arg: TypeAlias = str | int | float | bytes
ScriptArgs: TypeAlias = tuple[list[str], list[Arg]]


@dataclass(frozen=True, slots=True, kw_only=True)
class AddJobSpec:
    """One job of :meth:`Scripts.add_jobs`: the ``add_job`` fields except the token."""

    job_id: str
    name: str
    data: str
    opts: str
    timestamp: int
    delay: int
    priority: int
    lifo: bool


def checked(command: str, keys: list[str], args: list[Arg]) -> ScriptArgs:
    """``(keys, args)``, after asserting that ``command`` takes ``len(keys)`` KEYS."""
    expected = numkeys(command)
    if len(keys) != expected:
        raise AssertionError(f"{command} takes {expected} keys, got {len(keys)}")
    return keys, args


def list_push(lifo: bool) -> str:
    """The list push a job is added with: ``RPUSH`` (taken next) for LIFO."""
    return "RPUSH" if lifo else "LPUSH"


def keep_jobs(count: int, age: int | None) -> str:
    """The keep-jobs JSON of moveToFinished's ARGV[6]."""
    if age is None:
        return f'{{"count":{count}}}'
    return f'{{"count":{count},"age":{age}}}'


def _attempt(
    attempts_made: int | None, stacktrace: str | None, failed_reason: str | None
) -> list[Arg]:
    if attempts_made is None and stacktrace is None and failed_reason is None:
        return []
    return [
        "" if attempts_made is None else attempts_made,
        stacktrace or "",
        failed_reason or "",
    ]


def delayed_score(due_ms: float, job_id: str) -> int:
    """The ``delayed`` score of a backoff retry (spec §1.3, §3.4).

    ``due*4096 + (id & 0xfff)``, where the id is read as a JavaScript number
    (a non-numeric id contributes 0), and 0 when ``due_ms <= 0``.
    """
    if due_ms <= 0:
        return 0
    return int(due_ms * 4096) + (_js_int32(job_id) & 0xFFF)


def due_by_score(now_ms: int) -> int:
    """The highest ``delayed`` score of a job due at ``now_ms`` or before (any id bits)."""
    return now_ms * 4096 + 0xFFF


def _js_int32(text: str) -> int:
    """JavaScript ``text | 0``: ToNumber then ToInt32; NaN and infinities give 0."""
    stripped = text.strip()
    if not stripped:
        return 0
    try:
        value = float(int(stripped, 16)) if stripped[:2].lower() == "0x" else float(stripped)
    except ValueError:
        return 0
    if "_" in stripped or not math.isfinite(value):
        return 0
    wrapped = int(value) % 2**32
    return wrapped - 2**32 if wrapped >= 2**31 else wrapped


# --- pure builders ------------------------------------------------------------
#
# The hot commands are split into a constant key list and an argv function, so
# Scripts can precompute the keys once; the ``*_args`` builders join the two.


def add_job_keys(k: QueueKeys) -> list[str]:
    return [k.wait, k.paused, k.meta_paused, k.id, k.delayed, k.priority]


def add_job_argv(
    base: str,
    *,
    job_id: str,
    name: str,
    data: str,
    opts: str,
    timestamp: int,
    delay: int,
    priority: int,
    lifo: bool,
    token: str,
) -> list[Arg]:
    delay = max(delay, 0)
    due = timestamp + delay if delay else 0
    return [base, job_id, name, data, opts, timestamp, delay, due, priority, list_push(lifo), token]


def debounce_argv(key: str, *, debounce_id: str, ttl: int | None) -> list[Arg]:
    """addJob-6's ARGV[12..15] for a debounced add (ARGV[15] asks for ``{id, debounced}``)."""
    return [key, debounce_id, "" if ttl is None else ttl, "1"]


def add_job_args(
    keys: QueueKeys,
    *,
    job_id: str,
    name: str,
    data: str,
    opts: str,
    timestamp: int,
    delay: int,
    priority: int,
    lifo: bool,
    token: str,
) -> ScriptArgs:
    """addJob-6: ``job_id`` "" means the next counter value; ``opts`` is plain JSON."""
    argv = add_job_argv(
        keys.base, job_id=job_id, name=name, data=data, opts=opts, timestamp=timestamp,
        delay=delay, priority=priority, lifo=lifo, token=token,
    )
    return checked("addJob", add_job_keys(keys), argv)


def add_jobs_args(
    keys: QueueKeys, jobs: Sequence[AddJobSpec], *, token: str
) -> ScriptArgs:
    """addJobs-6: addJob's keys; base and token, then nine values per job."""
    args: list[Arg] = [keys.base, token]
    for j in jobs:
        one = add_job_argv(
            keys.base, job_id=j.job_id, name=j.name, data=j.data, opts=j.opts,
            timestamp=j.timestamp, delay=j.delay, priority=j.priority, lifo=j.lifo, token=token,
        )
        args.extend(one[1:10])
    return checked("addJobs", add_job_keys(keys), args)


def add_repeatable_job_args(
    keys: QueueKeys,
    spec: AddJobSpec,
    *,
    token: str,
    repeat_key: str,
    millis: int,
    chain: bool,
) -> ScriptArgs:
    """addRepeatableJob-7: addJob's keys and argv, then the repeat set and schedule."""
    argv = add_job_argv(
        keys.base, job_id=spec.job_id, name=spec.name, data=spec.data, opts=spec.opts,
        timestamp=spec.timestamp, delay=spec.delay, priority=spec.priority, lifo=spec.lifo,
        token=token,
    )
    argv += [repeat_key, millis, "chain" if chain else "add"]
    return checked("addRepeatableJob", [*add_job_keys(keys), keys.repeat], argv)


def move_to_active_keys(k: QueueKeys, token: str) -> list[str]:
    return [
        k.wait,
        k.active,
        k.priority,
        k.active_channel(token),
        k.stalled,
        k.limiter,
        k.delayed,
        k.channel("drained"),
    ]


def move_to_active_argv(
    base: str,
    *,
    token: str,
    lock_duration: int,
    now: int,
    job_id: str,
    limiter_max: int | None,
    limiter_duration: int | None,
    bounce_back: bool,
    group_key: bool,
    worker: str = "",
) -> list[Arg]:
    """moveToActive's ARGV; ``worker`` (identity JSON) fills ARGV[10], padding 6..9."""
    argv: list[Arg] = [base, token, lock_duration, now, job_id]
    if limiter_max is not None:
        argv += [limiter_max, limiter_duration or 0, "true" if bounce_back else "false"]
        if group_key:
            argv.append("true")
    if worker:
        argv += [""] * (9 - len(argv))
        argv.append(worker)
    return argv


def move_to_active_args(
    keys: QueueKeys,
    *,
    token: str,
    lock_duration: int,
    now: int,
    job_id: str = "",
    limiter_max: int | None = None,
    limiter_duration: int | None = None,
    bounce_back: bool = False,
    group_key: bool = False,
    worker: str = "",
) -> ScriptArgs:
    """moveToActive-8: limiter ARGV[6..9] are sent only with ``limiter_max``."""
    argv = move_to_active_argv(
        keys.base, token=token, lock_duration=lock_duration, now=now, job_id=job_id,
        limiter_max=limiter_max, limiter_duration=limiter_duration,
        bounce_back=bounce_back, group_key=group_key, worker=worker,
    )
    return checked("moveToActive", move_to_active_keys(keys, token), argv)


def move_to_finished_keys(k: QueueKeys, kind: str, job_key: str, token: str) -> list[str]:
    return [
        k.active,
        k.finished_set(kind),
        job_key,
        k.wait,
        k.priority,
        k.active_channel(token),
        k.delayed,
        k.stalled,
        k.metrics(kind),
    ]


def finished_argv(
    base: str,
    *,
    job_id: str,
    finished_on: int,
    field: str,
    value: str,
    token: str,
    keep_json: str,
    event_payload: str,
    fetch_next: bool,
    lock_duration: int,
    metrics_max_points: int | None,
    attempts_made: int | None,
    stacktrace: str | None,
    check_debounce: bool = True,
    worker: str = "",
) -> list[Arg]:
    """moveToFinished's ARGV; ``check_debounce=False`` says the job has no debounce id.

    ``worker``: the identity JSON stored in the next job's hash (ARGV[16]) when
    ``fetch_next`` fetches one.
    """
    argv: list[Arg] = [
        job_id,
        finished_on,
        field,
        value,
        token,
        keep_json,
        event_payload,
        "1" if fetch_next else "0",
        base,
        lock_duration,
        token,
        "" if metrics_max_points is None else metrics_max_points,
    ]
    if attempts_made is not None or stacktrace is not None or not check_debounce or worker:
        argv += ["" if attempts_made is None else attempts_made, stacktrace or ""]
    if not check_debounce:
        argv.append("0")
    elif worker:
        argv.append("")
    if worker:
        argv.append(worker)
    return argv


def move_to_finished_args(
    keys: QueueKeys,
    job_id: str,
    *,
    kind: str,
    token: str,
    finished_on: int,
    value: str,
    keep_count: int,
    keep_age: int | None,
    event_payload: str,
    fetch_next: bool,
    lock_duration: int,
    metrics_max_points: int | None = None,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
    worker: str = "",
) -> ScriptArgs:
    """moveToFinished-9; ``kind`` is ``completed`` or ``failed``.

    ``value`` goes to ``returnvalue`` (completed) or ``failedReason`` (failed).
    ``attempts_made``/``stacktrace`` fill the optional ARGV[13..14], ``worker``
    ARGV[16].
    """
    argv = finished_argv(
        keys.base, job_id=job_id, finished_on=finished_on,
        field="returnvalue" if kind == "completed" else "failedReason", value=value,
        token=token, keep_json=keep_jobs(keep_count, keep_age), event_payload=event_payload,
        fetch_next=fetch_next, lock_duration=lock_duration,
        metrics_max_points=metrics_max_points, attempts_made=attempts_made,
        stacktrace=stacktrace, worker=worker,
    )
    keys_list = move_to_finished_keys(keys, kind, keys.job(job_id), token)
    return checked("moveToFinished", keys_list, argv)


def move_to_delayed_args(
    keys: QueueKeys,
    job_id: str,
    *,
    token: str,
    score: int,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
    failed_reason: str | None = None,
) -> ScriptArgs:
    """moveToDelayed-4; the attempt fields fill the optional ARGV[4..6]."""
    keys_list = [keys.active, keys.delayed, keys.job(job_id), keys.stalled]
    argv: list[Arg] = [score, job_id, token, *_attempt(attempts_made, stacktrace, failed_reason)]
    return checked("moveToDelayed", keys_list, argv)


def retry_job_args(
    keys: QueueKeys,
    job_id: str,
    *,
    token: str,
    lifo: bool,
    attempts_made: int | None = None,
    stacktrace: str | None = None,
    failed_reason: str | None = None,
) -> ScriptArgs:
    """retryJob-7; the attempt fields fill the optional ARGV[4..6]."""
    keys_list = [
        keys.active,
        keys.wait,
        keys.job(job_id),
        keys.meta_paused,
        keys.paused,
        keys.stalled,
        keys.priority,
    ]
    argv: list[Arg] = [
        list_push(lifo), job_id, token, *_attempt(attempts_made, stacktrace, failed_reason)
    ]
    return checked("retryJob", keys_list, argv)


def move_stalled_jobs_to_wait_args(
    keys: QueueKeys, *, max_stalled_count: int, now: int, stalled_interval: int
) -> ScriptArgs:
    """moveStalledJobsToWait-7."""
    keys_list = [
        keys.stalled,
        keys.wait,
        keys.active,
        keys.failed,
        keys.stalled_check,
        keys.meta_paused,
        keys.paused,
    ]
    argv: list[Arg] = [max_stalled_count, keys.base, now, stalled_interval]
    return checked("moveStalledJobsToWait", keys_list, argv)


def extend_lock_args(keys: QueueKeys, job_id: str, *, token: str, duration: int) -> ScriptArgs:
    """extendLock-2."""
    return checked(
        "extendLock", [keys.lock(job_id), keys.stalled], [token, duration, job_id]
    )


def take_lock_args(keys: QueueKeys, job_id: str, *, token: str, duration: int) -> ScriptArgs:
    """takeLock-1."""
    return checked("takeLock", [keys.lock(job_id)], [token, duration])


def release_lock_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """releaseLock-1."""
    return checked("releaseLock", [keys.lock(job_id)], [token])


def update_delay_set_args(keys: QueueKeys, *, now: int, token: str) -> ScriptArgs:
    """updateDelaySet-6."""
    keys_list = [
        keys.delayed,
        keys.active,
        keys.wait,
        keys.priority,
        keys.paused,
        keys.meta_paused,
    ]
    return checked("updateDelaySet", keys_list, [keys.base, now, token])
