"""pyqueue: an asyncio Redis job queue with Node Bull 4.x semantics and wire format."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from pyqueue._emitter import Event
from pyqueue.embedded import RedisServerNotFound
from pyqueue.errors import (
    InvalidOptionsError,
    JobAbortedError,
    JobFailedError,
    JobNotFound,
    JobStateError,
    JobTimeoutError,
    LockMismatch,
    MissingHandlerError,
    PyQueueError,
    QueueClosedError,
    ReplicationError,
    SandboxError,
    ScriptError,
    TransientServerError,
    UnknownBackoffStrategy,
    UnrecoverableError,
    WrongEventLoopError,
)
from pyqueue.events import QueueEvents
from pyqueue.handle import JobHandle
from pyqueue.job import Job
from pyqueue.options import (
    Backoff,
    Debounce,
    Durability,
    JobOptions,
    KeepJobs,
    RateLimiter,
    WorkerOptions,
)
from pyqueue.queue import BulkJob, Queue
from pyqueue.repeat import Repeat
from pyqueue.sync import SyncJob, SyncQueue
from pyqueue.worker import Worker

try:
    __version__ = _version("pyqueue")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Backoff",
    "BulkJob",
    "Debounce",
    "Durability",
    "Event",
    "InvalidOptionsError",
    "Job",
    "JobAbortedError",
    "JobFailedError",
    "JobHandle",
    "JobNotFound",
    "JobOptions",
    "JobStateError",
    "JobTimeoutError",
    "KeepJobs",
    "LockMismatch",
    "MissingHandlerError",
    "PyQueueError",
    "Queue",
    "QueueClosedError",
    "QueueEvents",
    "RateLimiter",
    "RedisServerNotFound",
    "Repeat",
    "ReplicationError",
    "SandboxError",
    "ScriptError",
    "SyncJob",
    "SyncQueue",
    "TransientServerError",
    "UnknownBackoffStrategy",
    "UnrecoverableError",
    "Worker",
    "WorkerOptions",
    "WrongEventLoopError",
    "__version__",
]
