"""pyqueue: an asyncio Redis job queue with Node Bull 4.x semantics and wire format."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from pyqueue._emitter import Event
from pyqueue._queue_schedulers import JobScheduler
from pyqueue.embedded import RedisServerNotFound
from pyqueue.errors import (
    InvalidOptionsError,
    JobAbortedError,
    JobFailedError,
    JobNotFound,
    JobStateError,
    JobTimeoutError,
    LockMismatch,
    MigrationRefused,
    MissingHandlerError,
    ProtocolMismatchError,
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
from pyqueue.hooks import Context
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
from pyqueue.settings import Cron, QueueEntry, WorkerSettings
from pyqueue.signals import shutdown_signals
from pyqueue.sync import SyncJob, SyncQueue
from pyqueue.worker import Worker

# BullMQ mode: these register their classes with Queue and QueueEvents (protocol="bullmq").
from pyqueue import _events_bullmq as _events_bullmq  # isort: skip
from pyqueue import _queue_bullmq as _queue_bullmq  # isort: skip

try:
    __version__ = _version("pyqueue-bull")  # the distribution; the import name is pyqueue
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Backoff",
    "BulkJob",
    "Context",
    "Cron",
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
    "JobScheduler",
    "JobStateError",
    "JobTimeoutError",
    "KeepJobs",
    "LockMismatch",
    "MigrationRefused",
    "MissingHandlerError",
    "ProtocolMismatchError",
    "PyQueueError",
    "Queue",
    "QueueClosedError",
    "QueueEntry",
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
    "WorkerSettings",
    "WrongEventLoopError",
    "__version__",
    "shutdown_signals",
]
