"""The queue table of ``pyqueue queues`` and ``pyqueue watch``: fits 80 columns.

Counts take at most five characters (:func:`pyqueue.tools.overview.compact`:
``17777``, ``177k``, ``1.2M``) and are never cut; short headers and no
vertical rules leave the rest of the line to the queue name and the flags
(why a queue may be stuck, from :mod:`pyqueue.tools.diagnosis`), which wrap
instead of being cut.
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from pyqueue.tools import diagnosis
from pyqueue.tools.cli_support import format_age
from pyqueue.tools.overview import compact

# (header, state) per count column.
COUNTS = (("wait", "waiting"), ("act", "active"), ("delay", "delayed"), ("fail", "failed"),
          ("done", "completed"), ("psd", "paused"))
LEGEND = ("fmt bull (Bull 4) or mq (BullMQ); wait waiting (BullMQ: prioritized too), "
          "act active, delay delayed, fail failed, done completed, psd paused jobs; "
          "wkr live workers; oldest: the oldest waiting job's wait")
_FORMAT_CELLS = {"bull": "bull", "bullmq": "mq"}


def _count(counts: dict[str, int], state: str) -> int:
    # BullMQ keeps jobs with a priority out of wait, in prioritized: both wait to run.
    return counts[state] + (counts.get("prioritized", 0) if state == "waiting" else 0)


def flags_of(d: diagnosis.Diagnosis) -> str:
    """The flags cell: the findings' short names, and ``paused`` for a paused queue."""
    flags = d.flags
    if d.stats.paused and "paused+waiting" not in flags:
        flags = ["paused", *flags]
    return ", ".join(flags) if flags else "ok"


def queue_table(found: list[diagnosis.Diagnosis], rates: dict[str, float] | None = None) -> Table:
    """One row per queue; with ``rates``, a jobs/s column (finished jobs per second)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("queue", overflow="fold", ratio=2, min_width=6)
    table.add_column("fmt", no_wrap=True)
    for header, _ in COUNTS:
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    if rates is not None:
        table.add_column("/s", justify="right", no_wrap=True, min_width=4)
    table.add_column("wkr", justify="right", no_wrap=True)
    table.add_column("oldest", justify="right", no_wrap=True, min_width=6)
    table.add_column("flags", overflow="fold", ratio=2, min_width=6)
    for d in found:
        s = d.stats
        name = s.name
        row = [name, _FORMAT_CELLS.get(s.format, "-"),
               *(compact(_count(s.counts, state)) for _, state in COUNTS)]
        if rates is not None:
            rate = rates.get(name)
            # None until two frames exist: no rate is known yet, which is not a rate of 0.
            row.append("-" if rate is None else f"{rate:.1f}")
        row += [str(s.workers), format_age(s.oldest_waiting_age), flags_of(d)]
        if s.error is not None:
            row = [name, *["-"] * (len(row) - 2), "unreadable"]
        table.add_row(*row, style="bold red" if _critical(d) else None)
    return table


def _critical(d: diagnosis.Diagnosis) -> bool:
    return any(f.severity == "critical" for f in d.findings)
