"""A migration in a process of its own, for the tests that kill it with SIGKILL.

Usage: python -m tests.migrate.run_migrator '<json>' where the JSON holds
``url``, ``queue`` and the keyword arguments of ``migrate_queue``. Prints
``{"event": "started"}`` once it is about to start, ``{"event": "step",
"moved": n}`` after each step (``progress: true``), then ``{"event":
"report", ...}`` when it is done; ``stop_after`` (seconds), SIGTERM or SIGINT
end a follow run after the current step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
from typing import Any

from pyqueue.migrate import migrate_queue


async def main(config: dict[str, Any]) -> None:
    url, queue = config.pop("url"), config.pop("queue")
    stop_after = config.pop("stop_after", None)
    if config.pop("progress", False):
        config["on_progress"] = lambda p: print(
            json.dumps({"event": "step", "moved": p.moved}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if stop_after is not None:
        loop.call_later(stop_after, stop.set)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"event": "started"}), flush=True)
    report = await migrate_queue(queue, redis_url=url, stop=stop, **config)
    print(json.dumps({"event": "report", **dataclasses.asdict(report)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
