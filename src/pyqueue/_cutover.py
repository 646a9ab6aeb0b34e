"""The cut-over plan: the steps that move a fleet from Bull queues to BullMQ ones.

Re-exported by :mod:`pyqueue.migrate`. Pure text: it reads nothing, so the
plan can be printed, reviewed and pasted into a runbook before the day.

Into another prefix or name, nothing stops: workers that serve both queues
come first, then the migration (which converts the schedules at once and then
keeps moving what the Bull queue receives), then the producers one by one;
the old queue is retired once it is empty. In place, the Bull fleet stops, the
queue is converted, the BullMQ fleet starts: a short stop, no second queue.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyqueue.errors import InvalidOptionsError


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """Who uses the queues today, by the names the operator knows them by.

    Args:
        node_producers: Node processes that add jobs with Bull (web apps, crons).
        node_workers: Node processes that run Bull's ``queue.process``.
        python_workers: pyqueue workers (``pyqueue worker`` settings, services).
    """

    node_producers: Sequence[str] = field(default_factory=tuple)
    node_workers: Sequence[str] = field(default_factory=tuple)
    python_workers: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for label in ("node_producers", "node_workers", "python_workers"):
            value = getattr(self, label)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise InvalidOptionsError(f"{label}: must be a list of non-empty names")


def _names(items: Sequence[str], empty: str) -> str:
    return ", ".join(items) if items else empty


def _cmd(queue: str, prefix: str, to_prefix: str | None, to_name: str | None,
         *extra: str) -> str:
    args = ["pyqueue", "migrate", queue, "--from", "bull", "--to", "bullmq"]
    if prefix != "bull":
        args += ["--prefix", prefix]
    if to_prefix is not None:
        args += ["--to-prefix", to_prefix]
    if to_name is not None:
        args += ["--to-name", to_name]
    return shlex.join([*args, *extra])


def cutover_plan(
    queues: Sequence[str], *, fleet: Fleet, prefix: str = "bull", to_prefix: str | None = None,
    to_name: str | None = None,
) -> list[str]:
    """The steps, in order, to move ``queues`` and ``fleet`` from Bull to BullMQ.

    Args:
        queues: The Bull queues' names.
        fleet: Who produces and who works today.
        prefix: The Bull queues' key prefix.
        to_prefix, to_name: Where the BullMQ queues go (``to_name`` only with
            one queue). Neither: in place, with a short stop.

    Returns:
        One paragraph per step, numbered.

    Raises:
        InvalidOptionsError: no queue, or ``to_name`` with several queues.
    """
    if isinstance(queues, str) or not queues:
        raise InvalidOptionsError("queues: give at least one queue name (a list)")
    if to_name is not None and len(queues) > 1:
        raise InvalidOptionsError("to_name: only with one queue")
    steps = (_in_place if to_prefix is None and to_name is None else _live)(
        list(queues), fleet, prefix, to_prefix, to_name)
    return [f"{i}. {text}" for i, text in enumerate(steps, 1)]


def _target(queue: str, prefix: str, to_prefix: str | None, to_name: str | None) -> str:
    return f"{to_prefix or prefix}:{to_name or queue}"


def _live(queues: list[str], fleet: Fleet, prefix: str, to_prefix: str | None,
          to_name: str | None) -> list[str]:
    pairs = ", ".join(f"{prefix}:{q} -> {_target(q, prefix, to_prefix, to_name)}"
                      for q in queues)
    first = queues[0]
    steps = [
        f"Check each queue with a dry run (nothing is written): "
        f"`{_cmd(first, prefix, to_prefix, to_name, '--dry-run')}`. Note the job scheduler "
        "ids it prints for the repeatable jobs (the producers' new code upserts them by "
        "these ids) and any ids it renames. Queues: " + pairs + ".",
    ]
    if fleet.python_workers:
        steps.append(
            f"Deploy the pyqueue workers ({_names(fleet.python_workers, '')}) serving both "
            "formats: one settings object with each Bull queue and its BullMQ twin "
            "(protocol='bullmq'), same handlers. From now on they drain the old queues and "
            "run whatever reaches the new ones.")
    if fleet.node_workers:
        steps.append(
            f"Keep the Node Bull workers ({_names(fleet.node_workers, '')}) running on the "
            "old queues for now: jobs they have started finish there, and the migration "
            "moves their history afterwards.")
    if not fleet.python_workers:
        steps.append(
            "Start BullMQ workers on the new queues (Node BullMQ, or pyqueue in BullMQ mode) "
            "with the same handlers, before any job reaches them.")
    follow = _cmd(queues[0], prefix, to_prefix, to_name, "--follow", "--yes")
    if len(queues) > 1:
        follow = follow.replace(f" {shlex.quote(queues[0])} ",
                                " " + " ".join(shlex.quote(q) for q in queues) + " ", 1)
    steps.append(
        f"Start the migration and leave it running: `{follow}` (the queues side by side in "
        "one process). It converts the repeatable jobs first (each schedule then fires only on the "
        "BullMQ side, from the same next run), moves waiting, prioritised, paused, delayed "
        "and finished jobs, and keeps moving what the old queues receive. A kill or a "
        "restart is safe: it resumes where it stopped.")
    producers = list(fleet.node_producers) or ["each producer"]
    for name in producers:
        steps.append(
            f"Switch {name} to BullMQ on the new queues (`new Queue(name, {{prefix: "
            f"'{to_prefix or prefix}'}})`; a repeatable job becomes "
            "`upsertJobScheduler(<id from the dry run>, {pattern}, template)`), deploy, and "
            "check its jobs run. Until then its adds keep landing in the old queue and "
            "are moved within a poll interval; if an old instance restarts and declares "
            "its repeatable job on Bull again, the migration merges it into the scheduler.")
    steps.append(
        "When every producer is switched, and every process that declares repeatable jobs "
        "at start-up declares them as job schedulers on the new queues instead (a Bull "
        "declaration after the migration stopped would fire beside the scheduler), wait "
        "until the dry run shows nothing left in the old queues "
        f"(`{_cmd(first, prefix, to_prefix, to_name, '--dry-run')}`: every count 0, no "
        "active job), then stop the migration (Ctrl-C).")
    retire = []
    if fleet.node_workers:
        retire.append(f"stop the Node Bull workers ({_names(fleet.node_workers, '')})")
    if fleet.python_workers:
        retire.append("remove the Bull queues from the pyqueue workers' settings")
    steps.append(
        ("Retire the old side: " + " and ".join(retire) + ". " if retire else "")
        + "The old queues' keys can then be deleted (`obliterate`); the new queues keep "
        "the migration's record (pq-migrate:* keys: renamed ids, scheduler ids).")
    return steps


def _in_place(queues: list[str], fleet: Fleet, prefix: str, to_prefix: str | None,
              to_name: str | None) -> list[str]:
    everyone = [*fleet.node_producers, *fleet.node_workers, *fleet.python_workers]
    return [
        "Check each queue with a dry run (nothing is written): "
        + "; ".join(f"`{_cmd(q, prefix, None, None, '--dry-run')}`" for q in queues)
        + ". In place, the queue keeps its keys: no second queue, but no Bull process "
        "may use it while it converts.",
        "Deploy the new code of every producer and worker (BullMQ) without starting it.",
        f"Stop the Bull fleet ({_names(everyone, 'every producer and worker')}). The "
        "migration refuses to start while a worker connection uses the queue.",
        "Convert each queue: "
        + "; ".join(f"`{_cmd(q, prefix, None, None, '--yes')}`" for q in queues)
        + ". Jobs a stopped worker left active are moved once their lock has expired; "
        "a kill or a restart is safe: run it again.",
        "Start the BullMQ fleet. The repeatable jobs are job schedulers with the same next "
        "runs; their ids are in the dry run's output.",
    ]
