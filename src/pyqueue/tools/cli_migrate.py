"""``pyqueue migrate``: move Bull 4 queues to BullMQ 6 (see :mod:`pyqueue.migrate`).

::

    pyqueue migrate QUEUE... --from bull --to bullmq [--to-prefix P] [--to-name N]
                    [--dry-run | --plan | --status] [--follow] [--force] [--yes]

``--dry-run`` prints what would change and writes nothing; ``--plan`` prints
the cut-over steps for the fleet given with ``--producer``, ``--node-worker``
and ``--python-worker`` (it needs no Redis); ``--status`` prints what earlier
runs did (ids they renamed included). Otherwise the dry run is shown, confirmed
(``--yes`` skips the question), and the queues move with a progress bar each;
Ctrl-C (or SIGTERM) stops after the current step, which is safe: run it again to
go on. Several queues run side by side in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click
import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pyqueue.migrate import (
    Fleet,
    MigrationPlan,
    MigrationProgress,
    MigrationReport,
    cutover_plan,
    migrate_queue,
    migration_status,
    plan_migration,
)
from pyqueue.tools.cli_support import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_USAGE,
    Settings,
    common,
    fail,
    format_ms,
    run,
)

_SHOWN = 20  # renames listed before "... and N more"


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _target(settings: Settings, queue: str, to_prefix: str | None, to_name: str | None) -> str:
    return f"{to_prefix or settings.prefix}:{to_name or queue}"


def _print_plan(console: Console, plan: MigrationPlan) -> None:
    where = "in place" if plan.in_place else f"into {plan.target}"
    console.print(f"[bold]{plan.source}[/bold] -> BullMQ {where}"
                  + (" (resuming an earlier run)" if plan.resumed else ""))
    counts = Table("state", "jobs", title="Bull jobs to move")
    for state, count in plan.counts.items():
        counts.add_row(state, str(count))
    console.print(counts)
    if plan.schedules:
        table = Table("Bull repeat key", "job scheduler id", "pattern / every", "tz", "next run",
                      title="repeatable jobs -> job schedulers (same next run)")
        for s in plan.schedules:
            table.add_row(s.bull_key, s.scheduler_id, s.pattern or f"every {s.every} ms",
                          s.tz or "-", format_ms(s.next_run))
        console.print(table)
    if plan.renames:
        table = Table("Bull id", "BullMQ id", title=f"ids that change ({len(plan.renames)})")
        for old, new in list(plan.renames.items())[:_SHOWN]:
            table.add_row(old, new)
        console.print(table)
        if len(plan.renames) > _SHOWN:
            console.print(f"... and {len(plan.renames) - _SHOWN} more (--json lists them all)")
    for note, count in plan.notes.items():
        console.print(f"note: {note}: {count} job(s)", markup=False)
    for problem in plan.problems:
        console.print(f"problem: {problem}", markup=False)
    for blocker in plan.blockers:
        console.print(f"[red]refused:[/red] {blocker}")


def _print_report(console: Console, report: MigrationReport) -> None:
    state = "finished" if report.finished else "stopped"
    console.print(f"[bold]{report.source}[/bold] -> {report.target}: {state}, "
                  f"{report.total} job(s) moved in all "
                  f"({', '.join(f'{k} {v}' for k, v in report.moved.items()) or 'none'}), "
                  f"{report.schedules_total} schedule(s); this run {report.seconds:.1f}s")
    for label, value in (("renamed", len(report.renames)), ("duplicates dropped",
                         report.duplicates), ("stalled too often, failed",
                         report.stalled_failed), ("dangling ids dropped", report.dangling)):
        if value:
            console.print(f"  {label}: {value}")
    for s in report.schedules:
        console.print(f"  schedule {s.bull_key!r} -> {s.scheduler_id!r}, next run "
                      f"{format_ms(s.next_run)}", markup=False)
    for problem in report.problems:
        console.print(f"  problem: {problem}", markup=False)


def _as_json(value: Any) -> Any:
    return dataclasses.asdict(value) | {"total": value.total}


async def _plans(client: aioredis.Redis, settings: Settings, queues: Sequence[str],
                 kw: dict[str, Any]) -> list[MigrationPlan]:
    return [await plan_migration(q, connection=client, prefix=settings.prefix, **kw)
            for q in queues]


def _fleet_plan(settings: Settings, queues: Sequence[str], kw: dict[str, Any],
                fleet: Fleet) -> None:
    steps = cutover_plan(queues, fleet=fleet, prefix=settings.prefix, **kw)
    if settings.json:
        settings.emit_json({"steps": steps})
        return
    for step in steps:
        click.echo(step + "\n")


class _Bars:
    """One progress bar per queue (none with --json)."""

    def __init__(self, queues: Sequence[str], enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[state]}"), disable=not enabled,
                                 console=Console(stderr=True))
        self.tasks = {q: self.progress.add_task(q, total=None, state="") for q in queues}

    def feed(self, queue: str) -> Any:
        def update(p: MigrationProgress) -> None:
            waiting = f", waiting for {p.waiting_for_active} active" \
                if p.waiting_for_active else ""
            self.progress.update(self.tasks[queue], completed=p.moved, total=p.total,
                                 state=f"{p.state}{waiting}")
        return update


async def _migrate(client: aioredis.Redis, settings: Settings, queues: Sequence[str],
                   kw: dict[str, Any], run_kw: dict[str, Any]) -> list[MigrationReport]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    bars = _Bars(queues, enabled=not settings.json)
    try:
        with bars.progress:
            return list(await asyncio.gather(*(
                migrate_queue(q, connection=client, prefix=settings.prefix, stop=stop,
                              on_progress=bars.feed(q), **kw, **run_kw)
                for q in queues)))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


@click.command("migrate", epilog=EXIT_CODES_HELP)
@common
@click.argument("queues", nargs=-1, required=True, metavar="QUEUE...")
@click.option("--from", "from_format", type=click.Choice(["bull"]), default="bull",
              show_default=True, help="The queues' format now.")
@click.option("--to", "to_format", type=click.Choice(["bullmq"]), default="bullmq",
              show_default=True, help="The format to move them to.")
@click.option("--to-prefix", help="Key prefix of the BullMQ queues (default: the same).")
@click.option("--to-name", help="Name of the BullMQ queue (one queue only).")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--plan", "show_plan", is_flag=True,
              help="Print the cut-over steps for the fleet given (no Redis needed).")
@click.option("--status", is_flag=True, help="Print what earlier runs did.")
@click.option("--follow", is_flag=True,
              help="Keep moving what the old queues receive until Ctrl-C (new prefix/name).")
@click.option("--force", is_flag=True, help="In place: go on although workers are connected.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Jobs per atomic step.")
@click.option("--producer", "producers", multiple=True, help="--plan: a Node Bull producer.")
@click.option("--node-worker", "node_workers", multiple=True,
              help="--plan: a Node Bull worker.")
@click.option("--python-worker", "python_workers", multiple=True,
              help="--plan: a pyqueue worker.")
def migrate(settings: Settings, queues: tuple[str, ...], from_format: str, to_format: str,
            to_prefix: str | None, to_name: str | None, dry_run: bool, show_plan: bool,
            status: bool, follow: bool, force: bool, yes: bool, batch_size: int,
            producers: tuple[str, ...], node_workers: tuple[str, ...],
            python_workers: tuple[str, ...]) -> None:
    """Move Bull 4 queues to BullMQ 6, in place or into another prefix or name.

    Jobs of every state move with their history, repeatable jobs become job
    schedulers with the same next run; each job in one atomic step, so a stop
    or a crash at any point is safe and a second run goes on from there.
    """
    if to_name is not None and len(queues) > 1:
        fail("--to-name: only with one queue", EXIT_USAGE)
    if sum((dry_run, show_plan, status)) > 1:
        fail("--dry-run, --plan and --status exclude each other", EXIT_USAGE)
    kw = {"to_prefix": to_prefix, "to_name": to_name}
    if show_plan:
        fleet = Fleet(node_producers=producers, node_workers=node_workers,
                      python_workers=python_workers)
        _fleet_plan(settings, queues, kw, fleet)
        return
    console = _console()
    if status:
        reports = run(settings, lambda c: asyncio.gather(*(
            migration_status(q, connection=c, prefix=settings.prefix, **kw) for q in queues)))
        if settings.json:
            settings.emit_json([_as_json(r) for r in reports])
        for report in [] if settings.json else reports:
            _print_report(console, report)
        return
    plans = run(settings, lambda c: _plans(c, settings, queues, kw))
    if dry_run:
        if settings.json:
            settings.emit_json([_as_json(p) for p in plans])
        for plan in [] if settings.json else plans:
            _print_plan(console, plan)
        return
    blocked = [b for p in plans for b in p.blockers]
    if blocked and not force:
        fail("; ".join(blocked))
    if not settings.json:
        for plan in plans:
            _print_plan(console, plan)
    if not yes:
        if not sys.stdin.isatty():
            fail("not a terminal: confirm with --yes", EXIT_USAGE)
        click.confirm(f"Migrate {len(queues)} queue(s) to "
                      f"{', '.join(_target(settings, q, to_prefix, to_name) for q in queues)}?",
                      abort=True)
    run_kw = {"follow": follow, "force": force, "batch_size": batch_size}
    # A refusal (MigrationRefused, every reason in its message) exits 1 through run().
    reports = run(settings, lambda c: _migrate(c, settings, queues, kw, run_kw))
    if settings.json:
        settings.emit_json([_as_json(r) for r in reports])
    else:
        for report in reports:
            _print_report(console, report)
    if any(r.problems for r in reports) or not (follow or all(r.finished for r in reports)):
        sys.exit(EXIT_FAILED)
