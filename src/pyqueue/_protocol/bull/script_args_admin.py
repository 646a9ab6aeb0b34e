"""Pure KEYS/ARGV builders of the management and per-job operation scripts.

Pause, promote, removal, cleaning, emptying, obliterate and retries of failed jobs, as
:class:`pyqueue.Queue` and :class:`pyqueue.Job` offer them, plus the job
updates (progress, data, logs) and the read-only checks. Like the builders of
:mod:`pyqueue._protocol.bull.script_args`, each returns ``(KEYS, ARGV)`` from primitive
values and is unit-tested without Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyqueue._protocol.bull.script_args import ScriptArgs, checked, list_push

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyqueue._protocol.bull.keys import QueueKeys


def promote_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """promote-5."""
    keys_list = [keys.delayed, keys.wait, keys.paused, keys.meta_paused, keys.priority]
    return checked("promote", keys_list, [keys.base, job_id, token])


def pause_args(keys: QueueKeys, *, paused: bool) -> ScriptArgs:
    """pause-5: pause renames wait to paused, resume the reverse."""
    if paused:
        keys_list = [keys.wait, keys.paused, keys.meta_paused, keys.channel("paused"), keys.meta]
        return checked("pause", keys_list, ["paused"])
    keys_list = [keys.paused, keys.wait, keys.meta_paused, keys.channel("resumed"), keys.meta]
    return checked("pause", keys_list, ["resumed"])


def _state_keys(k: QueueKeys) -> list[str]:
    return [k.active, k.wait, k.delayed, k.paused, k.completed, k.failed, k.priority]


def remove_job_args(keys: QueueKeys, job_id: str, *, token: str) -> ScriptArgs:
    """removeJob-10: the base key is for the job's debounce key."""
    keys_list = [*_state_keys(keys), keys.job(job_id), keys.logs(job_id), keys.limiter]
    return checked("removeJob", keys_list, [job_id, token, keys.base])


def remove_jobs_args(keys: QueueKeys, *, pattern: str, cursor: str) -> ScriptArgs:
    """removeJobs-8: ``pattern`` is a glob over job ids."""
    keys_list = [*_state_keys(keys), keys.limiter]
    return checked("removeJobs", keys_list, [keys.base, pattern, cursor])


def remove_repeatable_args(
    keys: QueueKeys, *, id_prefix: str, repeat_key: str, more_prefixes: tuple[str, ...] = ()
) -> ScriptArgs:
    """removeRepeatable-2: ``id_prefix`` (and each of ``more_prefixes``) is ``repeat:<md5>:``."""
    return checked(
        "removeRepeatable",
        [keys.repeat, keys.delayed],
        [id_prefix, repeat_key, keys.base, *more_prefixes],
    )


def update_progress_args(
    keys: QueueKeys, job_id: str, *, progress_json: str, event_payload: str
) -> ScriptArgs:
    """updateProgress-2."""
    return checked(
        "updateProgress",
        [keys.job(job_id), keys.channel("progress")],
        [progress_json, event_payload],
    )


def abort_job_args(
    keys: QueueKeys, job_id: str, *, reason: str, now: int, event_payload: str,
    abort_payload: str, abort_field: str, keep_json: str,
) -> ScriptArgs:
    """abortJob-9; ``keep_json`` is the job's removeOnFail (:func:`keep_jobs`)."""
    return checked(
        "abortJob",
        [keys.wait, keys.paused, keys.delayed, keys.priority, keys.active, keys.completed,
         keys.failed, keys.job(job_id), keys.abort_channel],
        [job_id, reason, now, event_payload, abort_payload, abort_field, keys.base, keep_json],
    )


def update_data_args(keys: QueueKeys, job_id: str, *, data_json: str) -> ScriptArgs:
    """updateData-1."""
    return checked("updateData", [keys.job(job_id)], [data_json])


def clean_jobs_in_set_args(
    keys: QueueKeys, state: str, *, max_timestamp: int, limit: int
) -> ScriptArgs:
    """cleanJobsInSet-3; ``state`` is wait, active, paused, delayed, completed or failed."""
    keys_list = [keys.key(state), keys.priority, keys.limiter]
    return checked("cleanJobsInSet", keys_list, [keys.base, max_timestamp, limit, state])


def empty_args(keys: QueueKeys) -> ScriptArgs:
    """empty-8."""
    keys_list = [
        keys.wait,
        keys.paused,
        keys.meta_paused,
        keys.delayed,
        keys.priority,
        keys.limiter,
        keys.limiter_index,
        keys.meta,
    ]
    return checked("empty", keys_list, [keys.base])


def obliterate_args(keys: QueueKeys, *, count: int, force: bool) -> ScriptArgs:
    """obliterate-2."""
    return checked(
        "obliterate", [keys.meta_paused, keys.base], [count, "force" if force else ""]
    )


def add_log_args(
    keys: QueueKeys, job_id: str, *, line: str, keep_logs: int | None = None
) -> ScriptArgs:
    """addLog-2."""
    return checked(
        "addLog",
        [keys.job(job_id), keys.logs(job_id)],
        [job_id, line, "" if keep_logs is None else keep_logs],
    )


def reprocess_job_args(
    keys: QueueKeys, job_id: str, *, lifo: bool, token: str, now: int
) -> ScriptArgs:
    """reprocessJob-6 (always from the failed set, as Node does)."""
    keys_list = [
        keys.job(job_id),
        keys.lock(job_id),
        keys.failed,
        keys.wait,
        keys.meta_paused,
        keys.paused,
    ]
    return checked("reprocessJob", keys_list, [job_id, list_push(lifo), token, now])


def retry_jobs_args(keys: QueueKeys, *, count: int) -> ScriptArgs:
    """retryJobs-5."""
    keys_list = [keys.base, keys.failed, keys.wait, keys.meta_paused, keys.paused]
    return checked("retryJobs", keys_list, [count])


def is_finished_args(keys: QueueKeys, job_id: str) -> ScriptArgs:
    """isFinished-2."""
    return checked("isFinished", [keys.completed, keys.failed], [job_id])


def get_counts_per_priority_args(keys: QueueKeys, priorities: Sequence[int]) -> ScriptArgs:
    """getCountsPerPriority-4."""
    keys_list = [keys.wait, keys.paused, keys.meta_paused, keys.priority]
    return checked("getCountsPerPriority", keys_list, list(priorities))


def is_job_in_list_args(list_key: str, job_id: str) -> ScriptArgs:
    """isJobInList-1; ``list_key`` comes from :class:`QueueKeys`."""
    return checked("isJobInList", [list_key], [job_id])
