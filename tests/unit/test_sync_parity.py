"""SyncQueue mirrors Queue: every public coroutine method has a blocking twin.

The facade is written by hand, so this test is what keeps it from drifting:
a new ``Queue`` method fails here until ``SyncQueue`` has it, with the same
parameters (names, kinds and defaults).
"""

from __future__ import annotations

import inspect

from pyqueue import Queue, SyncQueue

# Lifecycle and loop plumbing that the sync facade does differently on purpose.
_NOT_MIRRORED = {"__aenter__", "__aexit__"}


def _async_methods() -> dict[str, inspect.Signature]:
    found = {}
    for name, member in inspect.getmembers(Queue):
        if name.startswith("_") and name not in _NOT_MIRRORED:
            continue
        if name in _NOT_MIRRORED or not inspect.iscoroutinefunction(member):
            continue
        found[name] = inspect.signature(member)
    return found


def _shape(sig: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_every_async_queue_method_has_a_sync_twin() -> None:
    methods = _async_methods()
    assert {"add", "clean", "get_jobs"} <= set(methods)  # the scan itself works
    missing = sorted(name for name in methods if not callable(getattr(SyncQueue, name, None)))
    assert missing == [], f"SyncQueue lacks {missing}"


def test_sync_twins_take_the_same_parameters() -> None:
    different = {}
    for name, sig in _async_methods().items():
        twin = getattr(SyncQueue, name, None)
        if twin is None:
            continue
        if _shape(inspect.signature(twin)) != _shape(sig):
            different[name] = (str(inspect.signature(twin)), str(sig))
    assert different == {}, f"SyncQueue signatures differ from Queue's: {different}"
