"""``pyqueue doctor`` (why is a queue stuck?) and ``pyqueue workers`` (who works on it?).

Both read; neither changes anything. ``doctor`` prints each finding of
:mod:`pyqueue.tools.diagnosis` in words with the command that fixes it, and
exits 1 when it found a problem (a warning or worse), so a cron job or a CI
step can run it.
"""

from __future__ import annotations

import time

import click
import redis.asyncio as aioredis
from rich.table import Table

from pyqueue import monitoring
from pyqueue.tools import diagnosis, overview
from pyqueue.tools.cli_support import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    Settings,
    common,
    console,
    existing_queue,
    format_age,
    parse_duration_ms,
    run,
)

_MARK = {"critical": "CRITICAL", "warning": "WARNING", "info": "note"}


async def _names(client: aioredis.Redis, settings: Settings, named: tuple[str, ...]) -> list[str]:
    if named:
        for name in named:
            await existing_queue(client, settings, name)
        return list(named)
    return await overview.discover_queues(client, settings.prefix)


def _prefix_flag(settings: Settings) -> str:
    return "" if settings.prefix == "bull" else f" --prefix {settings.prefix}"


@click.command(epilog=EXIT_CODES_HELP + " doctor: 1 also when it found a problem.")
@common
@click.argument("queues", nargs=-1)
@click.option("--waiting-threshold", default="60s", show_default=True,
              help="Flag a running queue whose oldest waiting job waited longer.")
@click.option("--active-threshold", default="5m", show_default=True,
              help="Flag a job active for longer.")
def doctor(settings: Settings, queues: tuple[str, ...], waiting_threshold: str,
           active_threshold: str) -> None:
    """Why is a queue stuck? Explain each problem of QUEUES (default: all) and how to fix it.

    Looks for: active jobs whose lock is gone or whose worker is not alive, no
    live worker, jobs active or waiting too long, a paused queue with jobs
    waiting, delayed jobs that are rate-limiter bounces (and until when), and
    repeatable jobs whose next run is overdue.
    """
    limits = diagnosis.Limits(
        waiting_age=parse_duration_ms(waiting_threshold, "--waiting-threshold") / 1000,
        active_age=parse_duration_ms(active_threshold, "--active-threshold") / 1000,
    )

    async def body(client: aioredis.Redis) -> list[diagnosis.Diagnosis]:
        names = await _names(client, settings, queues)
        return await diagnosis.diagnose(client, settings.prefix, names, limits,
                                        prefix_flag=_prefix_flag(settings))

    found = run(settings, body)
    problems = sum(1 for d in found for f in d.findings if f.severity != "info")
    if settings.json:
        settings.emit_json({"queues": [d.to_json() for d in found], "problems": problems})
    else:
        _print_doctor(found, settings.prefix)
    if problems:
        raise SystemExit(EXIT_FAILED)


def _print_doctor(found: list[diagnosis.Diagnosis], prefix: str) -> None:
    out = console()
    if not found:
        out.print(f"no queues under prefix {prefix!r}", markup=False)
        return
    for d in found:
        serious = [f for f in d.findings if f.severity != "info"]
        c = d.stats.counts
        head = (f"{d.name}: {len(serious)} problem(s)" if serious else f"{d.name}: ok")
        out.print(f"[bold]{_escape(head)}[/bold]  ({c['waiting']} waiting, {c['active']} "
                  f"active, {c['delayed']} delayed, {c['failed']} failed, "
                  f"{len(d.workers)} worker(s){', paused' if d.stats.paused else ''})")
        for f in d.findings:
            out.print(f"  {_MARK[f.severity]:8} {f.summary}", markup=False)
            out.print(f"           {f.detail}", markup=False)
            if f.fix:
                out.print(f"           fix: {f.fix}", markup=False)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


@click.command(epilog=EXIT_CODES_HELP)
@common
@click.argument("queues", nargs=-1)
def workers(settings: Settings, queues: tuple[str, ...]) -> None:
    """The live workers of QUEUES (default: all), by name.

    pyqueue workers are listed from their heartbeat (host, pid, version,
    concurrency, the jobs they run, last heartbeat); Node Bull workers from
    the connection Bull names after the queue (address, age, idle time).
    """

    async def body(client: aioredis.Redis) -> dict[str, list[monitoring.WorkerInfo]]:
        names = await _names(client, settings, queues)
        clients = await overview.client_entries(client) or []
        return {n: await monitoring.workers_of(
            client, monitoring.queue_keys(settings.prefix, n), clients=clients) for n in names}

    found = run(settings, body)
    if settings.json:
        settings.emit_json({n: [w.to_json() for w in ws] for n, ws in found.items()})
        return
    table = Table("queue", "kind", "worker", "version", "conc.", "jobs", "heartbeat",
                  "up for")
    now = time.time()
    for name, listed in found.items():
        if not listed:
            table.add_row(name, "-", "no live worker", "", "", "", "", "")
        for w in listed:
            table.add_row(name, *_worker_cells(w, now))
    console().print(table)


def _worker_cells(w: monitoring.WorkerInfo, now: float) -> list[str]:
    if w.kind == "node":
        # Bull's connection says only how long it has been idle (blocked waiting counts).
        idle = f"idle {w.idle_seconds}s" if w.idle_seconds is not None else "-"
        up = format_age(w.age_seconds) if w.age_seconds is not None else "-"
        return ["node", w.name, "-", "-", "-", idle, up]
    beat = ("-" if w.last_heartbeat_ms is None
            else f"{format_age(now - w.last_heartbeat_ms / 1000)} ago")
    up = "-" if w.started_ms is None else format_age(now - w.started_ms / 1000)
    jobs = ", ".join(w.jobs[:6]) + (f" +{len(w.jobs) - 6}" if len(w.jobs) > 6 else "")
    return ["pyqueue", w.name, w.version or "-", str(w.concurrency), jobs or "-", beat, up]
