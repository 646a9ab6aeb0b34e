"""The public surface is small and deliberate (as httpx asserts its own)."""

from __future__ import annotations

import pyqueue

EXPECTED = [
    "Backoff",
    "BulkJob",
    "Debounce",
    "Durability",
    "Event",
    "InvalidOptionsError",
    "Job",
    "JobFailedError",
    "JobNotFound",
    "JobOptions",
    "JobStateError",
    "KeepJobs",
    "LockMismatch",
    "PyQueueError",
    "Queue",
    "QueueEvents",
    "RateLimiter",
    "Repeat",
    "ReplicationError",
    "SyncJob",
    "SyncQueue",
    "UnrecoverableError",
    "Worker",
    "WorkerOptions",
    "__version__",
]


def test_exported_names() -> None:
    assert pyqueue.__all__ == EXPECTED
    assert sorted(pyqueue.__all__) == pyqueue.__all__
    for name in pyqueue.__all__:
        assert hasattr(pyqueue, name)


def test_version_comes_from_metadata() -> None:
    from importlib.metadata import version

    assert pyqueue.__version__ == version("pyqueue")
