"""The ``pyqueue`` console script: checks the ``cli`` extra before importing it.

:mod:`pyqueue.tools.cli` imports click and rich at the top; importing it without
them would end in a ``ModuleNotFoundError`` traceback. This module imports only
the standard library (through :mod:`pyqueue.tools.extras`) until the check passed.
"""

from __future__ import annotations

import sys

from pyqueue.tools.extras import EXIT_MISSING_EXTRA, MissingExtra, require


def main() -> None:
    """Run ``pyqueue``; without the ``cli`` extra, one line on stderr and exit 2."""
    try:
        require("the pyqueue command", "cli")
    except MissingExtra as exc:
        print(f"pyqueue: {exc}", file=sys.stderr)
        sys.exit(EXIT_MISSING_EXTRA)
    from pyqueue.tools.cli import main as cli_main  # noqa: PLC0415 - after the check

    cli_main()
