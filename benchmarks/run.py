"""Benchmark pyqueue against Node Bull, RQ, arq, SAQ and BullMQ's Python port.

    .venv/bin/python benchmarks/run.py            # the full run (~15 min on 2 cores)
    .venv/bin/python benchmarks/run.py --tiny     # CI smoke run, pyqueue only

See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.harness import main

    raise SystemExit(main())
