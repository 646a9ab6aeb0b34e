"""Pure KEYS/ARGV builders of BullMQ mode's management and per-job scripts.

Pause, promote, priorities and delays, removal, cleaning, draining,
obliterate, retries of finished jobs, progress, logs, data and the atomic
reads (counts, state, outcome). Like :mod:`.script_args`, each returns
``(KEYS, ARGV)`` and is unit-tested without Redis.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.script_args import Arg, ScriptArgs, checked

# The states BullMQ's getCounts and clean accept (its key names; "waiting" is "wait").
LIST_STATES = frozenset({"wait", "paused", "active"})
ZSET_STATES = frozenset({"delayed", "prioritized", "completed", "failed", "waiting-children"})


def state_key_name(state: str) -> str:
    """BullMQ's key name for a state: ``waiting`` is the ``wait`` list."""
    return "wait" if state == "waiting" else state


def pause_args(k: BullMQKeys, *, paused: bool, announce: bool = True) -> ScriptArgs:
    """pause-7."""
    keys = [k.wait, k.paused, k.meta, k.prioritized, k.events, k.delayed, k.marker]
    return checked("pause", keys, ["paused" if paused else "resumed", "1" if announce else "0"])


def promote_args(k: BullMQKeys, job_id: str) -> ScriptArgs:
    """promote-9."""
    keys = [
        k.delayed, k.wait, k.prioritized, k.priority_counter, k.meta, k.active, k.marker,
        k.events, k.job(job_id),
    ]
    return checked("promote", keys, [job_id])


def change_priority_args(k: BullMQKeys, job_id: str, *, priority: int, lifo: bool) -> ScriptArgs:
    """changePriority-7."""
    keys = [k.wait, k.prioritized, k.priority_counter, k.meta, k.active, k.marker, k.job(job_id)]
    return checked("changePriority", keys, [job_id, priority, "1" if lifo else "0"])


def change_delay_args(k: BullMQKeys, job_id: str, *, delay: int, now: int) -> ScriptArgs:
    """changeDelay-4."""
    keys = [k.delayed, k.meta, k.marker, k.events]
    return checked("changeDelay", keys, [delay, now, job_id, k.job(job_id)])


def remove_job_args(k: BullMQKeys, job_id: str, *, with_children: bool) -> ScriptArgs:
    """removeJob-2."""
    return checked("removeJob", [k.job(job_id), k.repeat],
                   [job_id, "1" if with_children else "0", k.base])


def reprocess_args(
    k: BullMQKeys, job_id: str, *, state: str, lifo: bool,
    reset_attempts_made: bool = False, reset_attempts_started: bool = False,
) -> ScriptArgs:
    """reprocessJob-9: ``state`` failed or completed."""
    keys = [
        k.job(job_id), k.events, k.key(state), k.wait, k.meta, k.active, k.marker,
        k.prioritized, k.priority_counter,
    ]
    argv: list[Arg] = [
        job_id, "RPUSH" if lifo else "LPUSH", state,
        "1" if reset_attempts_made else "0", "1" if reset_attempts_started else "0",
    ]
    return checked("reprocessJob", keys, argv)


def move_jobs_to_wait_args(
    k: BullMQKeys, *, state: str, count: int, up_to: int | float | str
) -> ScriptArgs:
    """moveJobsToWait-6: failed/completed finished by ``up_to`` ms, or delayed
    (``up_to`` a raw score; "+inf" for all)."""
    keys = [k.key(state), k.wait, k.meta, k.active, k.marker, k.events]
    return checked("moveJobsToWait", keys, [k.base, count, up_to, state])


def clean_args(k: BullMQKeys, state: str, *, max_timestamp: int, limit: int) -> ScriptArgs:
    """cleanJobsInSet-3."""
    name = state_key_name(state)
    return checked("cleanJobsInSet", [k.key(name), k.events, k.repeat],
                   [k.base, max_timestamp, limit, name])


def drain_args(k: BullMQKeys, *, delayed: bool) -> ScriptArgs:
    """drain-5."""
    keys = [k.wait, k.paused, k.delayed, k.prioritized, k.repeat]
    return checked("drain", keys, [k.base, "1" if delayed else "0"])


def obliterate_args(k: BullMQKeys, *, count: int, force: bool) -> ScriptArgs:
    """obliterate-2."""
    return checked("obliterate", [k.meta, k.base], [count, "force" if force else ""])


def update_progress_args(k: BullMQKeys, job_id: str, *, progress_json: str) -> ScriptArgs:
    """updateProgress-3."""
    return checked("updateProgress", [k.job(job_id), k.events, k.meta], [job_id, progress_json])


def add_log_args(k: BullMQKeys, job_id: str, *, line: str, keep_logs: int | None) -> ScriptArgs:
    """addLog-2."""
    return checked("addLog", [k.job(job_id), k.logs(job_id)],
                   [job_id, line, "" if keep_logs is None else keep_logs])


def update_data_args(k: BullMQKeys, job_id: str, *, data_json: str) -> ScriptArgs:
    """updateData-1."""
    return checked("updateData", [k.job(job_id)], [data_json])


def get_counts_args(k: BullMQKeys, states: Sequence[str]) -> ScriptArgs:
    """getCounts-1: ``states`` by BullMQ's names (``waiting`` counts ``wait``)."""
    return checked("getCounts", [k.base], [state_key_name(s) for s in states])


def get_state_args(k: BullMQKeys, job_id: str) -> ScriptArgs:
    """getState-8."""
    keys = [
        k.completed, k.failed, k.delayed, k.prioritized, k.active, k.wait, k.paused,
        k.waiting_children,
    ]
    return checked("getState", keys, [job_id])


def is_finished_args(k: BullMQKeys, job_id: str) -> ScriptArgs:
    """isFinished-3."""
    return checked("isFinished", [k.completed, k.failed, k.job(job_id)], [job_id])


def remove_dedup_args(k: BullMQKeys, dedup_id: str, job_id: str) -> ScriptArgs:
    """removeDeduplicationKey-1."""
    return checked("removeDeduplicationKey", [k.dedup(dedup_id)], [job_id])


def counts_per_priority_args(k: BullMQKeys, priorities: Sequence[int]) -> ScriptArgs:
    """getCountsPerPriority-2."""
    return checked("getCountsPerPriority", [k.wait, k.prioritized], list(priorities))


def promote_delayed_args(k: BullMQKeys, *, now: int) -> ScriptArgs:
    """promoteDelayed-8."""
    keys = [k.delayed, k.wait, k.prioritized, k.priority_counter, k.marker, k.meta, k.active,
            k.events]
    return checked("promoteDelayed", keys, [k.base, now])


def _scheduler_keys(k: BullMQKeys) -> list[str]:
    return [
        k.repeat, k.delayed, k.wait, k.prioritized, k.priority_counter, k.marker, k.meta,
        k.active, k.events, k.id,
    ]


def add_scheduler_args(
    k: BullMQKeys, scheduler_id: str, *, now: int, next_millis: int | None, name: str,
    data_json: str, template_json: str, iteration_json: str, every: int | None,
    pattern: str | None, tz: str | None, limit: int | None, start_date: int | None,
    end_date: int | None, offset: int | None,
) -> ScriptArgs:
    """addJobScheduler-10: ``next_millis`` for a pattern (None: ``every`` decides);
    ``offset`` only for an ``every`` scheduler given one, as BullMQ sends it."""
    def opt(value: object) -> Arg:
        return "" if value is None else value  # type: ignore[return-value]
    argv: list[Arg] = [
        k.base, scheduler_id, now, opt(next_millis), name, data_json, template_json,
        iteration_json, opt(every), opt(pattern), opt(tz), opt(limit), opt(start_date),
        opt(end_date), opt(offset if every is not None and offset else None),
    ]
    return checked("addJobScheduler", _scheduler_keys(k), argv)


def update_scheduler_args(
    k: BullMQKeys, scheduler_id: str, *, now: int, next_millis: int | None, producer_id: str,
    iteration_json: str,
) -> ScriptArgs:
    """updateJobScheduler-10: the started iteration ``producer_id`` schedules the next."""
    argv: list[Arg] = [k.base, scheduler_id, now, "" if next_millis is None else next_millis,
                       producer_id, iteration_json]
    return checked("updateJobScheduler", _scheduler_keys(k), argv)


def remove_scheduler_args(k: BullMQKeys, scheduler_id: str) -> ScriptArgs:
    """removeJobScheduler-3."""
    return checked("removeJobScheduler", [k.repeat, k.delayed, k.events], [scheduler_id, k.base])
