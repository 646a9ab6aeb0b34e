"""The libraries under test: how to start their adapters and what they support."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import bull_node

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PEERS_VENV = BENCH_DIR / ".peers-venv"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"


@dataclass(frozen=True)
class Lib:
    name: str
    label: str
    runtime: str  # "pyqueue", "peer-python" or "node"
    bulk: bool  # has a bulk enqueue API
    concurrent: bool  # one worker process runs many jobs at once
    documented_round_trips: str  # per processed job, from each library's code path
    settings: str
    node_module: str = ""  # node only: the package bench.js loads (--bull-module)

    def argv(self, mode: str, options: list[str]) -> list[str]:
        if self.runtime == "node":
            node = shutil.which("node") or "node"
            return bull_node.command(node, mode, options, self.node_module)
        if self.runtime == "pyqueue-base":
            return [sys.executable, "-c", _BASE_BOOT, "pyqueue", mode, *options]
        if self.runtime == "pyqueue-bullmq":
            return [sys.executable, "-m", "benchmarks.peers", "pyqueue", mode, *options,
                    "--protocol", "bullmq"]
        if self.runtime == "pyqueue-uvloop":
            return [sys.executable, "-m", "benchmarks.peers", "pyqueue", mode, *options,
                    "--loop", "uvloop"]
        python = sys.executable if self.runtime == "pyqueue" else str(PEERS_PYTHON)
        return [python, "-m", "benchmarks.peers", self.name, mode, *options]


BASE_SRC_ENV = "BENCH_BASE_SRC"
# The pyqueue adapter, importing pyqueue from another checkout's src/ (--base-src), so
# that one run compares two commits on the same Redis, minutes apart.
_BASE_BOOT = (
    "import os, sys; src = os.environ['" + BASE_SRC_ENV + "']; sys.path.insert(0, src); "
    "import pyqueue; assert pyqueue.__file__.startswith(src), pyqueue.__file__; "
    "from benchmarks.peers.__main__ import main; main()"
)


LIBS: dict[str, Lib] = {
    lib.name: lib
    for lib in (
        Lib("pyqueue", "pyqueue", "pyqueue", True, True, "1 (target)",
            "defaults; Queue.add / add_bulk, Worker(concurrency=C)"),
        Lib("bull", "Bull 4.16.5 (Node)", "node", True, True, "1",
            "defaults; queue.add / addBulk, queue.process(C, fn)", "bull"),
        Lib("bull412", "Bull 4.12.9 (Node)", "node", True, True, "1",
            "defaults; queue.add / addBulk, queue.process(C, fn)", "bull412"),
        Lib("rq", "RQ", "peer-python", True, False, "20",
            "SimpleWorker in-process, burst=True for drains; enqueue / enqueue_many"),
        Lib("arq", "arq", "peer-python", False, True, "7",
            "Worker(max_jobs=C, poll_delay=0.01, burst for drains); no bulk API"),
        Lib("saq", "SAQ", "peer-python", False, True, "6",
            "Worker(concurrency=C, dequeue_timeout=0 (blocking BLMOVE), schedule timer 1 s "
            "(its floor: the period is also a whole-second SETEX)); no bulk API"),
        Lib("bullmq", "BullMQ (Python)", "peer-python", True, True, "2",
            "defaults; Queue.add / addBulk, Worker(concurrency=C)"),
        Lib("pyqueue-bullmq", "pyqueue BullMQ mode", "pyqueue-bullmq", True, True, "1",
            "pyqueue's adapter with Queue(..., protocol='bullmq'); defaults"),
        Lib("bullmq-node", "BullMQ 6.7.6 (Node)", "node", True, True, "1",
            "defaults; queue.add / addBulk, new Worker(name, fn, {concurrency: C})", "bullmq"),
        Lib("pyqueue-base", "pyqueue (--base-src)", "pyqueue-base", True, True, "1",
            "pyqueue's adapter on the checkout given by --base-src; defaults"),
        Lib("pyqueue-uvloop", "pyqueue on uvloop", "pyqueue-uvloop", True, True, "1",
            "pyqueue's adapter run by pyqueue.loops.run(loop='uvloop'), the loop `pyqueue "
            "worker` and bookwish_jobs choose when uvloop is installed; defaults"),
    )
}
# A default run covers the Bull-format libraries and the Python peers; pyqueue-base,
# pyqueue-uvloop and the BullMQ table's pyqueue-bullmq and bullmq-node are asked for by name.
ALL_LIBS = [name for name in LIBS
            if name not in ("pyqueue-base", "pyqueue-uvloop", "pyqueue-bullmq", "bullmq-node")]
