"""Node Bull 4.x: the adapter is ``benchmarks/node/bench.js``; this module says how to run it.

Bull settings: defaults (completed jobs kept), ``queue.add``/``addBulk``,
``queue.process(C, fn)``; its finishing script also fetches the next job.
"""

from __future__ import annotations

from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "bench.js"


def command(node: str, mode: str, options: list[str]) -> list[str]:
    """argv of one adapter process."""
    return [node, str(SCRIPT), mode, *options]
