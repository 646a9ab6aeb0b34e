"""pyqueue's exceptions, every one importable from ``pyqueue``.

::

    PyQueueError
    ├── InvalidOptionsError (also ValueError)   bad option, payload, id or URL; nothing written
    │   └── ProtocolMismatchError                a queue opened as Bull while BullMQ's, or back
    ├── ScriptError                              a Lua command returned a negative code
    │   ├── JobNotFound            (-1)          the job hash is missing
    │   ├── LockMismatch           (-2, -6)      the lock is missing or held by another worker
    │   └── JobStateError          (-3, ...)     the job is not in the state the command needs
    ├── QueueClosedError                         the queue or worker was closed
    ├── MigrationRefused                         a migration may not start (pyqueue.migrate)
    ├── WrongEventLoopError (also RuntimeError)  a queue used on a second, still open loop
    ├── ReplicationError                         replicas did not confirm a write (Durability)
    ├── TransientServerError (also redis ConnectionError)  LOADING, BUSY, READONLY, MASTERDOWN,
    │                                            TRYAGAIN, CLUSTERDOWN, NOREPLICAS: retry later
    ├── JobFailedError                           ``Job.finished()`` of a job that failed
    ├── JobTimeoutError                          an attempt outran the job's ``timeout``
    ├── MissingHandlerError                      no handler for the job's name (and no ``*``)
    ├── SandboxError                             a sandboxed handler failed or its process died
    └── UnknownBackoffStrategy                   the job's backoff type is not registered

``JobTimeoutError``, ``MissingHandlerError``, ``SandboxError`` and
``UnknownBackoffStrategy`` are what a failed job's ``failedReason`` and the ``failed`` event
carry when the worker, not the handler, ended the attempt.

Processor-side control flow (raised by handlers, never by pyqueue itself)::

    UnrecoverableError   fail the job now, with no further attempts
    └── JobAbortedError  the job was aborted (``queue.abort``); pyqueue raises it too

Test support (``pyqueue.embedded``)::

    RedisServerNotFound (a RuntimeError)   no redis-server binary to start

Redis connection errors (``redis.exceptions.ConnectionError`` and friends) are
not wrapped: they propagate as redis-py raises them. A server that answers but
cannot serve for now raises :class:`TransientServerError`, which is one of them.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError


class PyQueueError(Exception):
    """Base class of every error pyqueue raises."""


class InvalidOptionsError(PyQueueError, ValueError):
    """An option, payload, job id or connection setting is invalid.

    Raised before anything is written to Redis.
    """


class ProtocolMismatchError(InvalidOptionsError):
    """A queue was opened as one wire format while Redis holds the other.

    ``found`` names the format already there (``"bull"`` or ``"bullmq"``) and
    ``requested`` the one asked for. Nothing was written: a Bull client and a
    BullMQ client on one queue would each see the other's jobs as corrupt.
    """

    def __init__(self, message: str, *, found: str, requested: str) -> None:
        super().__init__(message)
        self.found = found
        self.requested = requested


class ScriptError(PyQueueError):
    """A Lua command refused to act; ``code`` is its negative return value."""

    def __init__(self, message: str, *, job_id: str | None = None, code: int = 0) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.code = code


class JobNotFound(ScriptError):
    """The job's hash does not exist (Bull code -1)."""


class LockMismatch(ScriptError):
    """The job's lock is missing (-2) or owned by another worker (-6)."""


class JobStateError(ScriptError):
    """The job is not in the state the command requires (for example -3, not active)."""


class QueueClosedError(PyQueueError):
    """The queue or worker has been closed."""


class MigrationRefused(PyQueueError):
    """A migration (:mod:`pyqueue.migrate`) may not start: Bull workers still
    use the queue to migrate in place, the target is a Bull queue, or it
    already receives another queue's jobs. Nothing was written.

    ``reasons`` lists every reason found.
    """

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class WrongEventLoopError(PyQueueError, RuntimeError):
    """A queue was used on an event loop other than the open one it is bound to.

    A queue's connections belong to the event loop that first used it. Once that
    loop is closed, the next loop gets fresh connections; while it is open, use
    one queue per loop.
    """


class JobFailedError(PyQueueError):
    """A job awaited with ``Job.finished()`` failed; the message is its failed reason."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(reason)
        self.job_id = job_id
        self.reason = reason


class UnrecoverableError(Exception):
    """Raise from a handler to fail the job at once, ignoring remaining attempts."""


class JobAbortedError(UnrecoverableError):
    """The job was aborted (``queue.abort(job_id)``): it fails for good, without a retry.

    Its message is the job's failed reason: ``"aborted"``, or ``"aborted: <reason>"``.
    """


def script_error(code: int, job_id: str, command: str) -> ScriptError:
    """Map a negative Lua return code to its exception, with Bull's message text."""
    if code == -1:
        return JobNotFound(f"Missing key for job {job_id} {command}", job_id=job_id, code=code)
    if code == -2:
        return LockMismatch(f"Missing lock for job {job_id} {command}", job_id=job_id, code=code)
    if code == -6:
        return LockMismatch(
            f"Lock mismatch for job {job_id}. Cmd {command} from active", job_id=job_id, code=code
        )
    if code == -3:
        return JobStateError(
            f"Job {job_id} is not in the active state. {command}", job_id=job_id, code=code
        )
    return JobStateError(f"Command {command} failed for job {job_id}: code {code}",
                         job_id=job_id, code=code)


class JobTimeoutError(PyQueueError):
    """An attempt ran longer than the job's ``timeout`` option.

    Its message speaks seconds (``timed out after 0.5 s``); ``timeout`` is in seconds,
    ``timeout_ms`` in ms as the option was stored. The failed reason written to Redis
    keeps Bull's own text (``Promise timed out after 500 milliseconds``), which Node
    code and dashboards may match.
    """

    def __init__(self, timeout_ms: float) -> None:
        super().__init__(timeout_ms)
        self.timeout_ms = timeout_ms
        self.timeout = timeout_ms / 1000

    def __str__(self) -> str:
        return f"timed out after {self.timeout:g} s"


class MissingHandlerError(PyQueueError):
    """No handler is registered for the job's name and there is no ``*`` handler."""


def error_message(exc: BaseException) -> str:
    """The text Bull stores as ``failedReason`` (an Error's ``message``)."""
    return str(exc) if str(exc) else type(exc).__name__


class ReplicationError(PyQueueError):
    """Fewer replicas than ``Durability.replicas`` confirmed a write in time.

    The write is on the master; it is lost if the master fails before it
    replicates. Attributes: ``confirmed`` (replicas that did), ``required``.
    """

    def __init__(self, message: str, *, confirmed: int, required: int) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.required = required


class SandboxError(PyQueueError):
    """A handler failed in its child process; ``remote_traceback`` is the child's trace."""

    def __init__(self, message: str, *, remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class UnknownBackoffStrategy(PyQueueError):
    """The job names a backoff type the worker does not know."""


TRANSIENT_CODES = ("LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                   "NOREPLICAS")
"""Error replies that mean "not now": the server refused the command without running it."""


class TransientServerError(PyQueueError, RedisConnectionError):
    """Redis answered, but cannot serve the command now; it was **not** run.

    ``code`` is the reply's first word, one of :data:`TRANSIENT_CODES`:
    ``LOADING`` (a restart is loading its data), ``BUSY`` (a script or function
    runs too long), ``READONLY`` (a replica, e.g. a master demoted in a failover),
    ``MASTERDOWN`` (a replica that lost its master), ``TRYAGAIN`` (a cluster slot
    is being migrated), ``CLUSTERDOWN`` (the cluster has no quorum or a slot has
    no master) and ``NOREPLICAS`` (``min-replicas-to-write`` is not met).

    It is a ``redis.exceptions.ConnectionError``, so code that retries on
    connection errors (as ``docs/reliability.md`` tells producers to) retries these
    too; unlike a dropped connection, the command is known not to have run, so
    even an add without a custom ``job_id`` is safe to retry. Workers retry them
    by themselves.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def transient_code(message: str) -> str | None:
    """The code of an error reply that is a transient server state, else None.

    Redis < 7 reports a write refused inside a script as the script's error:
    ``ERR Error running script (call to f_...): @user_script:155: -READONLY ...``.
    The script stopped at its first write, so nothing was written either.
    """
    code = message.partition(" ")[0]
    if code in TRANSIENT_CODES:
        return code
    if message.startswith("ERR Error running script"):
        for word in message.split():
            if word.startswith("-") and word[1:] in TRANSIENT_CODES:
                return word[1:]
    return None
