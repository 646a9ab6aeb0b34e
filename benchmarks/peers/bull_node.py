"""Node Bull 4.x: the adapter is ``benchmarks/node/bench.js``; this module says how to run it.

Bull settings: defaults (completed jobs kept), ``queue.add``/``addBulk``,
``queue.process(C, fn)``; its finishing script also fetches the next job. Two
versions are installed: ``bull`` (4.16.5) and ``bull412`` (4.12.9, an npm alias).
"""

from __future__ import annotations

from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "bench.js"


def command(node: str, mode: str, options: list[str], module: str = "bull") -> list[str]:
    """argv of one adapter process; ``module`` is ``bull`` or ``bull412``."""
    return [node, str(SCRIPT), mode, "--bull-module", module, *options]
