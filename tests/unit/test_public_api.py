"""The public surface is small and deliberate (as httpx asserts its own)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pyqueue

EXPECTED = [
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


def test_exported_names() -> None:
    assert pyqueue.__all__ == EXPECTED
    assert sorted(pyqueue.__all__) == pyqueue.__all__
    for name in pyqueue.__all__:
        assert hasattr(pyqueue, name)


def test_version_comes_from_metadata() -> None:
    from importlib.metadata import version

    # The distribution is pyqueue-bull: "pyqueue" on PyPI is an unrelated project.
    assert pyqueue.__version__ == version("pyqueue-bull")


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a pyqueue module, private modules included.

    Classes whose own name is private (``_RemoteTraceback``) never reach a user's
    ``except``: they only ride along as ``__cause__``. The tools (``pyqueue.tools``: the
    CLI, the dashboard) are programs on top of the library; their errors end as a line on
    stderr or an HTTP response, never in a library user's ``except``.
    """
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(pyqueue.__path__, "pyqueue."):
        if info.name.endswith(".__main__") or info.name.startswith("pyqueue.tools"):
            continue  # a command (importing it would run it), or a tool
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = obj
    return [found[key] for key in sorted(found)]


EXCEPTIONS = _exception_classes()


def test_the_walk_finds_errors_of_private_modules() -> None:
    modules = {cls.__module__ for cls in EXCEPTIONS}
    assert "pyqueue.errors" in modules
    assert len(EXCEPTIONS) >= 13


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_error_is_importable_from_pyqueue(cls: type[BaseException]) -> None:
    """An error a user can meet is ``pyqueue.<Name>``, the very class raised."""
    assert getattr(pyqueue, cls.__name__, None) is cls, (
        f"{cls.__module__}.{cls.__name__} is not exported from pyqueue"
    )
    assert cls.__name__ in pyqueue.__all__


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_error_is_in_the_errors_tree(cls: type[BaseException]) -> None:
    """``pyqueue.errors``' docstring draws the hierarchy users catch by."""
    assert pyqueue.errors.__doc__ is not None
    assert cls.__name__ in pyqueue.errors.__doc__


@pytest.mark.parametrize("owner", [pyqueue.Job, pyqueue.JobHandle, pyqueue.SyncJob],
                         ids=lambda c: c.__name__)
def test_every_public_job_attribute_is_documented(owner: type) -> None:
    """``return_value``, ``failed_reason``, ``progress_value``...: each says what it holds."""
    undocumented = sorted(
        name for name, member in vars(owner).items()
        if not name.startswith("_") and (isinstance(member, property) or callable(member))
        and not (member.__doc__ or "").strip()
    )
    assert undocumented == []


def test_the_worker_settings_names_are_the_ones_pyqueue_worker_uses() -> None:
    from pyqueue.tools import cli_worker

    assert cli_worker.WorkerSettings is pyqueue.WorkerSettings
    assert cli_worker.shutdown_signals is pyqueue.shutdown_signals
