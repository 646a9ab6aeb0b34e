"""The ``bookwish-worker`` console script: one line, not a traceback, when a piece is missing.

``python -m bookwish_jobs.worker`` is the same service; this entry point adds the
checks a fresh install needs: its database drivers (dependencies of the
``bookwish-jobs`` distribution) and, when no ``REDIS_URL`` is set and no
``redis-server`` is on PATH, the ``embedded`` extra that ships one.
"""

from __future__ import annotations

import sys

# Imported by bookwish_jobs.worker, or by SQLAlchemy for the default database URLs.
_DRIVERS = ("sqlalchemy", "psycopg", "redis", "pyqueue")


def main() -> int:
    """Run the BookWish job service (see :func:`bookwish_jobs.worker.main`)."""
    try:
        from bookwish_jobs import worker  # noqa: PLC0415 - after the check
        from pyqueue.embedded import RedisServerNotFound  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name not in _DRIVERS:
            raise  # not a missing driver (perhaps one broken inside): the real error
        print(f"bookwish-worker: the job service needs {exc.name}, a dependency of "
              "bookwish-jobs: pip install 'bookwish-jobs'", file=sys.stderr)
        return 2
    try:
        return worker.main()
    except RedisServerNotFound:
        print("bookwish-worker: a private Redis (no REDIS_URL set) needs the embedded extra: "
              "pip install 'bookwish-jobs[embedded]'", file=sys.stderr)
        return 2
