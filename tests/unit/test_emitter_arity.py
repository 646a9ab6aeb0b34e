"""Listeners of old shapes keep working when an event grows an argument (``failed``'s final)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from pyqueue._emitter import EventEmitter


class Grown(EventEmitter):
    grown_events: ClassVar[Mapping[str, int]] = MappingProxyType({"failed": 2})


def test_shapes() -> None:
    seen: list[Any] = []
    errors: list[BaseException] = []
    cases = {
        "two": lambda job, exc: seen.append((job, exc)),
        # Binding a loop variable by default must not swallow the new argument.
        "bound": lambda job, exc, name="q": seen.append((job, exc, name)),
        "three": lambda job, exc, final: seen.append((job, exc, final)),
        "optional exc": lambda job, exc=None: seen.append((job, exc)),
        "star": lambda *args: seen.append(args),
        "one": lambda job: seen.append((job,)),
    }
    got = {}
    for label, listener in cases.items():
        seen.clear()
        emitter = Grown()
        emitter.on("failed", listener)
        emitter.on("error", errors.append)
        emitter.emit("failed", "job", "exc", True)
        got[label] = seen[0]
    assert errors == []
    assert got == {
        "two": ("job", "exc"),
        "bound": ("job", "exc", "q"),
        "three": ("job", "exc", True),
        "optional exc": ("job", "exc"),
        "star": ("job", "exc", True),
        "one": ("job",),
    }


def test_other_events_pass_every_argument_a_listener_takes() -> None:
    emitter = EventEmitter()
    got: list[Any] = []
    emitter.on("completed", lambda job, result=None: got.append((job, result)))
    emitter.on("completed", got.append)  # a one-argument builtin gets the first
    emitter.emit("completed", "job", 42)
    assert got == [("job", 42), "job"]


def test_an_emitter_whose_events_did_not_grow_passes_defaults_too() -> None:
    # QueueEvents' failed(job_id, reason, "active") is Node's shape, unchanged.
    got: list[Any] = []
    emitter = EventEmitter()
    emitter.on("failed", lambda job_id, reason, prev=None: got.append(prev))
    emitter.emit("failed", "1", "boom", "active")
    assert got == ["active"]
