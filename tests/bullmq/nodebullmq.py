"""Drive real Node BullMQ (``tests/bullmq/node/driver.js``) from Python tests.

No pytest dependency: the fixtures in ``conftest.py`` build :class:`NodeBullMQ`
objects. Each driver call takes one JSON config (see the header of
``driver.js``) and yields one JSON object per stdout line; :class:`NodeBullMQ`
fills in ``bullmq`` (the npm alias, one of :data:`BULLMQ_VERSIONS`),
``redisUrl`` and ``prefix``. Background runs use Bull's :class:`NodeProcess`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.interop.bull import (
    Event,
    NodeDriverError,
    NodeProcess,
    NodeUnavailableError,
    _parse_output,
    find_node,
    single,
)

NODE_DIR = Path(__file__).resolve().parent / "node"
DRIVER = NODE_DIR / "driver.js"
# npm aliases in node/package.json, oldest first; "bullmq" is the newest 6.x.
BULLMQ_VERSIONS = ("bullmq60", "bullmq63", "bullmq")
BULLMQ_RELEASES = {"bullmq60": (6, 0, 11), "bullmq63": (6, 3, 16), "bullmq": (6, 7, 6)}
INSTALL_HINT = "npm ci --prefix tests/bullmq/node"

__all__ = [
    "BULLMQ_VERSIONS", "Event", "NodeBullMQ", "NodeDriverError", "NodeProcess",
    "NodeUnavailableError", "check_node_modules", "single",
]


def check_node_modules(versions: tuple[str, ...] = BULLMQ_VERSIONS) -> None:
    """Raise :class:`NodeUnavailableError` unless every BullMQ alias is installed."""
    missing = [
        v for v in (*versions, "ioredis")
        if not (NODE_DIR / "node_modules" / v / "package.json").exists()
    ]
    if missing:
        raise NodeUnavailableError(
            f"{NODE_DIR / 'node_modules'} lacks {', '.join(missing)}: run `{INSTALL_HINT}` "
            "(or set PYQUEUE_SKIP_INTEROP=1 to skip interop tests)"
        )


class NodeBullMQ:
    """One BullMQ version against one Redis server.

    Args:
        version: One of :data:`BULLMQ_VERSIONS` (``"bullmq"`` is 6.7.6).
        redis_url: The private test server.
        prefix: The key prefix (``"bull"``, BullMQ's default).
    """

    def __init__(self, version: str, redis_url: str, *, prefix: str = "bull") -> None:
        if version not in BULLMQ_VERSIONS:
            raise ValueError(f"unknown BullMQ alias {version!r}; one of {BULLMQ_VERSIONS}")
        self.version = version
        self.redis_url = redis_url
        self.prefix = prefix
        self.node = find_node()
        check_node_modules((version,))

    @property
    def release(self) -> tuple[int, int, int]:
        return BULLMQ_RELEASES[self.version]

    def __repr__(self) -> str:
        return f"NodeBullMQ({self.version!r}, {self.redis_url!r}, prefix={self.prefix!r})"

    def config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The full driver config: this object's defaults, overridden by ``config``."""
        return {"bullmq": self.version, "redisUrl": self.redis_url, "prefix": self.prefix,
                **config}

    def _argv(self) -> list[str]:
        return [self.node, str(DRIVER)]

    def run(self, config: Mapping[str, Any], timeout: float = 30.0) -> list[Event]:
        """Run the driver to completion (blocking); its events.

        Raises:
            NodeDriverError: non-zero exit (a ``fatal`` event) or timeout.
        """
        payload = json.dumps(self.config(config))
        try:
            proc = subprocess.run(self._argv(), input=payload, capture_output=True, text=True,
                                  timeout=timeout, cwd=NODE_DIR, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NodeDriverError(f"driver timed out after {timeout}s; config={payload}\n"
                                  f"stdout={exc.stdout!r}\nstderr={exc.stderr!r}") from exc
        if proc.returncode != 0:
            raise NodeDriverError(f"driver exited {proc.returncode}; config={payload}\n"
                                  f"stdout={proc.stdout}\nstderr={proc.stderr}")
        return _parse_output(proc.stdout)

    async def arun(self, config: Mapping[str, Any], timeout: float = 30.0) -> list[Event]:
        """:meth:`run` in a thread, for async tests."""
        return await asyncio.to_thread(self.run, config, timeout)

    def start(self, config: Mapping[str, Any]) -> NodeProcess:
        """Start the driver in the background (``process`` and ``listen`` actions)."""
        return NodeProcess(self._argv(), self.config(config))

    # -- thin conveniences ---------------------------------------------------------

    async def add(self, queue: str, jobs: list[Mapping[str, Any]], *,
                  bulk: bool = False) -> list[str]:
        """Add ``[{name?, data, opts?}]`` in order; the job ids."""
        events = await self.arun({"queue": queue, "action": "addBulk" if bulk else "add",
                                  "jobs": jobs})
        ids: list[str] = single(events, "added")["ids"]
        return ids

    async def state(self, queue: str, ids: list[str] = ()) -> Event:  # type: ignore[assignment]
        """``{counts: getJobCounts(all), isPaused, jobs: [{id, json: toJSON(), state}]}``."""
        return single(await self.arun({"queue": queue, "action": "state", "ids": list(ids)}),
                      "state")

    async def admin(self, queue: str, op: str, **args: Any) -> Event:
        """One management call: ``{op, ok, value}`` or ``{op, ok: False, error}``."""
        return single(await self.arun({"queue": queue, "action": "admin", "op": op, **args}),
                      "result")
