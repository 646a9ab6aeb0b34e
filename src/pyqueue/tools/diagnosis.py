"""Why is a queue stuck? Findings per queue, each in words with the command that fixes it.

Shared by ``pyqueue doctor`` (all findings, explained), ``pyqueue queues`` and
``watch`` (a short flag per finding), the dashboard (flags on the overview,
findings and the worker list on a queue's page) and the exporter (gauges the
alert rules read). Built on :mod:`pyqueue.monitoring` and the figures of
:mod:`pyqueue.tools.overview`; every read is bounded (see :class:`Limits`).

An active job is **stuck** when its lock is gone (its worker stopped without
finishing it; only a live worker's stalled check puts it back), or when the
lock's owner is no live worker and no Node worker is connected that could own
it (pyqueue workers name themselves in their heartbeat; Node's lock tokens
cannot be tied to a connection, so with a Node worker connected a foreign
lock is given the benefit of the doubt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from pyqueue import Queue, monitoring
from pyqueue.tools import overview

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
# Short names of findings, as the tables flag them.
# Queues read further at once (the others wait): redis-py opens a connection per
# concurrent command, so hundreds of queues at once would open hundreds.
AT_ONCE = 16
FLAGS: dict[str, str] = {
    "no-workers": "no workers", "stuck-active": "stuck", "long-active": "long active",
    "slow-waiting": "slow", "paused-waiting": "paused+waiting", "rate-limited": "limited",
    "overdue-repeat": "overdue", "unreadable": "unreadable",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Thresholds and bounds of a diagnosis.

    Args:
        waiting_age: Seconds the oldest waiting job may wait before it is a finding.
        active_age: Seconds a job may be active before it is a finding.
        repeat_grace_ms: How late a schedule's next run may be before it is overdue.
        active_sample: Active jobs examined per queue (the longest-active ones).
        limiter_sample: Rate-limiter entries examined per queue.
    """

    waiting_age: float = 60.0
    active_age: float = 300.0
    repeat_grace_ms: int = 60_000
    active_sample: int = 1000
    limiter_sample: int = 10_000


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason a queue is (or may be) stuck.

    ``code`` is one of :data:`FLAGS`; ``summary`` one line; ``detail`` the
    explanation; ``fix`` the command (or step) that fixes it, if any.
    """

    code: str
    severity: Severity
    summary: str
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "summary": self.summary,
                "detail": self.detail, "fix": self.fix}


@dataclass(slots=True)
class Diagnosis:
    """What was found about one queue at ``taken_at`` (seconds, epoch)."""

    stats: overview.QueueStats
    workers: list[monitoring.WorkerInfo] = field(default_factory=list)
    active_examined: int = 0
    lock_gone: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    # Active jobs locked by no pyqueue worker while a Node worker is connected: Node's, likely.
    held_by_others: list[str] = field(default_factory=list)
    oldest_active_ms: int | None = None
    oldest_active_id: str | None = None
    rate_limited: monitoring.RateLimited | None = None
    overdue: list[monitoring.OverdueSchedule] = field(default_factory=list)
    overdue_total: int = 0
    findings: list[Finding] = field(default_factory=list)
    taken_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.stats.name

    @property
    def stuck(self) -> int:
        """Active jobs no live worker will finish: lock gone, or held by no live worker."""
        return len(self.lock_gone) + len(self.orphaned)

    @property
    def oldest_active_age(self) -> float | None:
        if self.oldest_active_ms is None:
            return None
        return max(0.0, self.taken_at - self.oldest_active_ms / 1000)

    @property
    def flags(self) -> list[str]:
        return [FLAGS[f.code] for f in self.findings if f.severity != "info"] + [
            FLAGS[f.code] for f in self.findings if f.severity == "info"]

    def to_json(self) -> dict[str, Any]:
        limited = self.rate_limited
        return {
            **self.stats.to_json(),
            "workerList": [w.to_json() for w in self.workers],
            "stuckActive": self.stuck, "lockGone": self.lock_gone, "orphaned": self.orphaned,
            "activeExamined": self.active_examined,
            "oldestActiveAgeSeconds": self.oldest_active_age,
            "oldestActiveId": self.oldest_active_id,
            "rateLimited": None if limited is None else {
                "count": limited.count, "until": limited.until_ms, "complete": limited.complete},
            "overdueRepeatables": self.overdue_total,
            "findings": [f.to_json() for f in self.findings],
        }


def _age(seconds: float) -> str:
    # The CLI's format_age, kept here so the findings read the same everywhere.
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def _clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _ids(ids: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _quote(text: str) -> str:
    # Shell-quoted for the fix commands an operator copies.
    if text and all(c.isalnum() or c in "-_.:/@%+=," for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def explain(d: Diagnosis, limits: Limits, prefix_flag: str = "") -> list[Finding]:
    """The findings of ``d``, worst first (pure: no Redis)."""
    s = d.stats
    q = _quote(s.name) + prefix_flag
    out: list[Finding] = []
    if s.error is not None:
        out.append(Finding("unreadable", "critical", f"unreadable: {s.error}",
                           "A key of this queue has the wrong type for Bull, so its figures "
                           "cannot be read; workers fail on it too.",
                           f"inspect the keys: redis-cli --scan --pattern {_quote(s.name)}:*"))
        return out
    # A BullMQ queue keeps jobs with a priority in prioritized: they wait as much.
    c = {**s.counts, "waiting": s.counts["waiting"] + s.counts.get("prioritized", 0)}
    waiting = c["waiting"] + c["paused"]
    live = len(d.workers)
    if live == 0 and (c["active"] or c["waiting"]):
        out.append(Finding(
            "no-workers", "critical",
            f"no live worker, with {c['active']} active and {c['waiting']} waiting jobs",
            "No pyqueue worker has a heartbeat and no connection is named as a Bull worker of "
            "this queue: nothing runs the waiting jobs, and nothing recovers the active ones "
            "(their worker is gone; a live worker's stalled check would put them back).",
            "start a worker for this queue (pyqueue worker MODULE:SETTINGS, or the Node app); "
            "its stalled check recovers the active jobs within one stalledInterval"))
    if d.stuck:
        stuck_ids = d.lock_gone + d.orphaned
        why = []
        if d.lock_gone:
            why.append(f"{len(d.lock_gone)} have no lock (their worker stopped without "
                       "finishing them)")
        if d.orphaned:
            why.append(f"{len(d.orphaned)} are locked by a worker that is not alive (the lock "
                       "lapses within its lockDuration)")
        fix = ("a live worker's stalled check moves them back to wait (or fails them after "
               "maxStalledCount); see them with: pyqueue jobs " + q + " --state active")
        out.append(Finding(
            "stuck-active", "critical" if live == 0 else "warning",
            f"{d.stuck} active job(s) no live worker will finish: {_ids(stuck_ids)}",
            "Of the active jobs examined, " + " and ".join(why) + ".", fix))
    age = d.oldest_active_age
    if age is not None and age > limits.active_age and d.oldest_active_id not in (
            d.lock_gone + d.orphaned):
        out.append(Finding(
            "long-active", "warning",
            f"job {d.oldest_active_id} has been active for {_age(age)}",
            "Its worker still holds the lock, so the handler runs (or hangs) there. A hung "
            "handler holds a concurrency slot for good.",
            f"pyqueue job {q} {_quote(d.oldest_active_id or '')} (then set a timeout job "
            "option, or fix the handler)"))
    if s.paused and waiting:
        out.append(Finding(
            "paused-waiting", "warning", f"paused with {waiting} job(s) waiting",
            "The queue is paused globally: no worker (pyqueue's or Node's) takes a job.",
            f"pyqueue resume {q}"))
    wait_age = s.oldest_waiting_age
    if not s.paused and wait_age is not None and wait_age > limits.waiting_age and live:
        out.append(Finding(
            "slow-waiting", "warning", f"the oldest waiting job has waited {_age(wait_age)}",
            f"{live} worker(s) are connected, but jobs wait longer than "
            f"{_age(limits.waiting_age)}: the workers are busy, too few or rate-limited.",
            "add workers or raise their concurrency"))
    limited = d.rate_limited
    if limited is not None and limited.count:
        until = f"; the last is due at {_clock(limited.until_ms)}" if limited.until_ms else ""
        some = "" if limited.complete else f" (of the first {limited.examined} examined)"
        out.append(Finding(
            "rate-limited", "info",
            f"{limited.count} delayed job(s){some} are rate-limiter bounces{until}",
            "The worker's rate limiter parked them in the delayed set: they are not delays "
            "a producer asked for, and run at the limiter's pace.",
            "raise the workers' RateLimiter (max per duration) to drain them faster"))
    if d.overdue_total:
        first = d.overdue[0] if d.overdue else None
        if first is not None:
            late = _age(max(0.0, d.taken_at - first.next_ms / 1000))
            if first.instance_state is None:
                cause = "its job is gone, so the schedule will not fire again until declared anew"
                fix = (f"declare it again (add(..., repeat=...) at start-up), or remove it: "
                       f"pyqueue repeat remove {q} {_quote(first.key)}")
            elif first.instance_state == "delayed":
                cause = "its job is still delayed: no worker promotes delayed jobs"
                fix = "start a worker for this queue"
            else:
                cause = f"its job is {first.instance_state}"
                fix = "see it with: pyqueue job " + q + " " + _quote(first.instance_id)
            out.append(Finding(
                "overdue-repeat", "warning",
                f"{d.overdue_total} repeatable job(s) overdue: {first.name!r} was due "
                f"{late} ago", f"The next run of {first.name!r} ({first.key}) is past; {cause}.",
                fix))
    out.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return out


async def _diagnose_one(queue: Queue[Any], stats: overview.QueueStats, limits: Limits) -> Diagnosis:
    """Read further only what the figures say exists: active jobs, limiter entries among
    delayed jobs, overdue schedules (a healthy queue costs no round trip here)."""
    d = Diagnosis(stats, workers=list(stats.worker_list), taken_at=stats.taken_at)
    if stats.error is not None:
        return d
    live_tokens = {w.id for w in d.workers if w.kind == "pyqueue"}
    node_connected = any(w.kind == "node" for w in d.workers)
    if stats.counts["active"]:
        active, _ = await monitoring.get_active_jobs(queue, limits.active_sample)
        d.active_examined = len(active)
        for job in active:
            if job.lock_owner is None:
                d.lock_gone.append(job.id)
            elif job.lock_owner not in live_tokens:
                (d.held_by_others if node_connected else d.orphaned).append(job.id)
            started = job.processed_on
            if started is not None and (d.oldest_active_ms is None
                                        or started < d.oldest_active_ms):
                d.oldest_active_ms, d.oldest_active_id = started, job.id
    if stats.counts["delayed"] and stats.limiter_entries:
        d.rate_limited = await monitoring.get_rate_limited(queue, limits.limiter_sample)
    if stats.overdue_repeatables:
        d.overdue, d.overdue_total = await monitoring.get_overdue_repeatables(
            queue, grace_ms=limits.repeat_grace_ms, limit=10,
            now_ms=int(stats.taken_at * 1000))
    return d


async def _diagnosed(
    queue: Queue[Any], stats: overview.QueueStats, limits: Limits, prefix_flag: str,
) -> Diagnosis:
    try:
        d = await _diagnose_one(queue, stats, limits)
    except ResponseError as exc:  # a key of the wrong type: this queue alone is marked
        d = Diagnosis(overview.unreadable(stats, str(exc)))
    d.findings = explain(d, limits, prefix_flag)
    return d


async def diagnose(
    client: aioredis.Redis, prefix: str, names: Sequence[str], limits: Limits | None = None,
    *, queues: dict[str, Queue[Any]] | None = None, prefix_flag: str = "",
) -> list[Diagnosis]:
    """Diagnose each queue; one that cannot be read gets an ``unreadable`` finding.

    The figures of every queue come in a few pipelined round trips
    (:func:`~pyqueue.tools.overview.queue_stats`); only the queues with active
    jobs, rate-limiter entries or overdue schedules are read further, up to
    :data:`AT_ONCE` of them at a time.

    Args:
        queues: A cache of Queue objects by name, reused across calls (a live view
            diagnoses every second).
        prefix_flag: Appended to the queue name in fix commands, e.g.
            ``" --prefix jobs"`` when the prefix is not the default.
    """
    limits = limits or Limits()
    cache = queues if queues is not None else {}
    stats = await overview.queue_stats(client, prefix, list(names),
                                       repeat_grace_ms=limits.repeat_grace_ms)
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(s: overview.QueueStats) -> Diagnosis:
        queue = cache.get(s.name)
        if queue is None:
            queue = cache[s.name] = overview.open_queue(client, prefix, s.name, s.format)
        async with gate:
            return await _diagnosed(queue, s, limits, prefix_flag)

    return list(await asyncio.gather(*(one(s) for s in stats)))


async def diagnose_queue(
    queue: Queue[Any], limits: Limits | None = None, *,
    clients: list[dict[str, Any]] | None = None,
) -> Diagnosis:
    """:func:`diagnose` for one queue object (the dashboard's: it holds its own Queues).

    ``clients``: a CLIENT LIST already read, shared by the queues of one page.
    """
    limits = limits or Limits()
    stats = (await overview.queue_stats(queue.client, queue.prefix, [queue.name], clients,
                                        repeat_grace_ms=limits.repeat_grace_ms))[0]
    return await _diagnosed(queue, stats, limits, "")
