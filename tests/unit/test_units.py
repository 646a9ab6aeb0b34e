"""Issue 18 item 6: one rule for time units, stated in the docs and in every docstring.

The rule: what Bull has keeps Bull's name and unit (ms, except ``drainDelay`` and
``age``, which Bull takes in seconds); what pyqueue adds is in seconds, as asyncio's
timeouts are, unless its name ends in ``_ms``. This test lists every duration of
the public API with its unit, and checks the docstring and the docs' table say so
(``docs/guides/options.md``, "Time units").
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from pyqueue import (
    Backoff,
    Debounce,
    Durability,
    Job,
    JobOptions,
    KeepJobs,
    QueueEvents,
    RateLimiter,
    Repeat,
    SyncJob,
    Worker,
    WorkerOptions,
)
from pyqueue.queue import Queue

UNITS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "options.md"

MS, S = "ms", "seconds"
# (owner, parameter, unit, from Bull?)
DURATIONS = [
    (JobOptions, "delay", MS, True),
    (JobOptions, "timeout", MS, True),
    (JobOptions, "timestamp", MS, True),
    (JobOptions, "backoff", MS, True),
    (Backoff, "delay", MS, True),
    (Debounce, "ttl", MS, True),
    (RateLimiter, "duration", MS, True),
    (Repeat, "every", MS, True),
    (KeepJobs, "age", S, True),
    (WorkerOptions, "lock_duration", MS, True),
    (WorkerOptions, "lock_renew_time", MS, True),
    (WorkerOptions, "stalled_interval", MS, True),
    (WorkerOptions, "guard_interval", MS, True),
    (WorkerOptions, "retry_process_delay", MS, True),
    (WorkerOptions, "drain_delay", S, True),
    (WorkerOptions, "shutdown_grace", S, False),
    (Durability, "timeout_ms", MS, False),
    (Queue.clean, "grace", MS, True),
    (Worker.close, "timeout", S, False),
    (Job.finished, "timeout", S, False),
    (SyncJob.finished, "timeout", S, False),
    (QueueEvents, "reconnect_delay", S, False),
]

_UNIT_WORDS = {MS: re.compile(r"\bms\b|millisecond"), S: re.compile(r"[Ss]econds?\b")}


def _owner_name(owner: object) -> str:
    """The class a table row names: ``Queue`` for ``Queue.clean`` (a mixin's method)."""
    for cls in (Queue, Worker, Job, SyncJob):
        if getattr(cls, getattr(owner, "__name__", ""), None) is owner:
            return cls.__name__
    return getattr(owner, "__name__", str(owner))


def _label(owner: object, name: str) -> str:
    return f"{getattr(owner, '__qualname__', owner)}.{name}"


@pytest.mark.parametrize(("owner", "name", "unit", "bull"), DURATIONS,
                         ids=[_label(o, n) for o, n, _, _ in DURATIONS])
def test_the_docstring_states_the_unit(owner: object, name: str, unit: str, bull: bool) -> None:
    assert name in inspect.signature(owner).parameters  # type: ignore[arg-type]
    doc = inspect.getdoc(owner) or ""
    # Its entry under Args: the ``name: ...`` line and the lines indented below it.
    found = re.search(rf"^( *)[\w, ]*\b{re.escape(name)}\b[\w, ]*:.*(?:\n\1 +\S.*)*",
                      doc, re.MULTILINE)
    assert found, f"{_label(owner, name)} is not documented"
    assert _UNIT_WORDS[unit].search(found.group(0)), (
        f"{_label(owner, name)}: docstring does not say {unit}: {found.group(0)!r}")


@pytest.mark.parametrize(("owner", "name", "unit", "bull"), DURATIONS,
                         ids=[_label(o, n) for o, n, _, _ in DURATIONS])
def test_the_rule_holds(owner: object, name: str, unit: str, bull: bool) -> None:
    if not bull:
        assert unit == (MS if name.endswith("_ms") else S), _label(owner, name)


def test_the_docs_table_lists_every_duration() -> None:
    text = UNITS_PAGE.read_text()
    section = text[text.index("## Time units"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in (MS, S):
            continue
        owner = ""
        for item in re.findall(r"`([^`]+)`", cells[0]):
            # `Owner.field`, `Owner.method(arg)`, `Owner(arg)`, or a bare `field` of the
            # owner named just before it in the same row.
            head, _, arg = item.rstrip(")").partition("(")
            if arg:
                owner, name = head.split(".")[0], arg
            elif "." in head:
                owner, name = head.split(".")
            else:
                name = head
            rows[f"{owner}.{name}"] = cells[1]
    missing = {
        key: unit for owner, name, unit, _ in DURATIONS
        if rows.get(key := f"{_owner_name(owner)}.{name}") != unit
    }
    assert missing == {}, f"{UNITS_PAGE.name} 'Time units' table lacks or contradicts: {missing}"
