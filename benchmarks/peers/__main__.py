"""Dispatch ``python -m benchmarks.peers LIB ...`` to ``benchmarks.peers.LIB_``.

The adapter is imported under its package name (never as ``__main__``) so that a
library which imports job functions by dotted path (RQ) sees the same module
object, and the same counters, as the adapter itself.
"""

from __future__ import annotations

import importlib
import sys

from benchmarks.peers._common import parse_args


def main() -> None:
    args = parse_args(sys.argv[1:])
    module = importlib.import_module(f"benchmarks.peers.{args.lib}_")
    module.main(args)


if __name__ == "__main__":
    main()
