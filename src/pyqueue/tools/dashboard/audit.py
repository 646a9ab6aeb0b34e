"""The audit trail: every action taken through the dashboard, who took it, and when.

Each entry goes to three places: the ``pyqueue.dashboard.audit`` logger (one
JSON line, for wherever the host sends its logs), the file given as
``audit_log`` (JSON lines, appended), and the last :data:`KEEP` entries in
memory for the ``/audit`` page. An action on a job also writes one line into
that job's own log (``job.log``), so whoever opens the job later sees what was
done to it, by whom and when; a removed job takes its log with it, so its
removal is in the trail only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyqueue import Job

log = logging.getLogger("pyqueue.dashboard.audit")
KEEP = 500


@dataclass(frozen=True, slots=True)
class Entry:
    """One action: ``at`` (ms), ``who``, ``role``, the client address, ``action``, its
    ``queue`` and ``jobs`` (ids, at most a few; ``count`` says how many in all), and
    ``outcome`` (what the flash message said)."""

    at: int
    who: str
    role: str
    client: str
    action: str
    queue: str
    jobs: tuple[str, ...]
    count: int
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "jobs": list(self.jobs)}

    def job_line(self) -> str:
        """The line written into an acted-on job's log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.at / 1000))
        return f"[dashboard {stamp} UTC] {self.action} by {self.who} ({self.client})"


class Auditor:
    """Records entries; thread-safe for the file append.

    Args:
        path: A JSON-lines file to append each entry to, or None.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.recent: deque[Entry] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        if self.path is not None:
            # Fail at start-up, not at the first action, when the file cannot be written.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8"):
                pass

    def record(self, entry: Entry) -> None:
        line = json.dumps(entry.to_json(), ensure_ascii=False)
        log.info("%s", line)
        self.recent.appendleft(entry)
        if self.path is not None:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

    async def note_on_job(self, job: Job[Any], entry: Entry) -> None:
        """Write the entry into the job's own log (a failure there is logged, not raised)."""
        try:
            await job.log(entry.job_line())
        except Exception as exc:  # the action is done; its trail must not undo it
            log.warning("could not write the audit line into job %s's log: %s", job.id, exc)
