"""Validate at the edge, one time convention (issue 28, reproductions 8 and 9).

8. ``Backoff(type="exponentail")`` was accepted and failed the job at its first error;
   ``lock_renew_time > lock_duration`` was accepted (every job then stalled); a
   5,000-deep payload raised a bare ``RecursionError``, a lone surrogate a
   ``UnicodeEncodeError``, and ``{1: "a", "1": "b"}`` was stored with a duplicate key.
9. ``timedelta`` was refused everywhere, and ``shutdown_grace="x"`` was said to need
   "a number of milliseconds".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pyqueue import (
    Backoff,
    Debounce,
    Durability,
    InvalidOptionsError,
    JobOptions,
    JobTimeoutError,
    KeepJobs,
    RateLimiter,
    Repeat,
    WorkerOptions,
)
from pyqueue._protocol.bull import wire


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_deep(5_000), r"data: nested more than \d+ levels deep"),
        ({"user": {"name": "\ud800"}}, r"data\.user\.name: .*lone surrogate"),
        ({"tags": ["ok", "bad\udfff"]}, r"data\.tags\[1\]: .*lone surrogate"),
        ({1: "a", "1": "b"}, r"data: .*key '1' twice"),
        ({"inner": {True: 1, "true": 2}}, r"data\.inner: .*key 'true' twice"),
    ],
    ids=["deep", "surrogate", "surrogate-in-list", "int-and-str-key", "bool-key"],
)
def test_payloads_a_client_could_not_read_are_refused(data: Any, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        wire.encode_data(data)


def test_ordinary_payloads_pass_unchanged() -> None:
    assert wire.encode_data({"a": [1, {"b": None}], 1: "one"}) == '{"a":[1,{"b":null}],"1":"one"}'
    assert wire.encode_data(_deep(100)).count("[") == 100
    assert wire.encode_data("é ✓ 😀") == '"é ✓ 😀"'


def test_lock_renew_time_must_be_shorter_than_the_lock() -> None:
    with pytest.raises(InvalidOptionsError, match=r"lock_renew_time: must be less than "
                                                  r"lock_duration \(1000 ms\), got 1000"):
        WorkerOptions(lock_duration=1000, lock_renew_time=1000)
    assert WorkerOptions(lock_duration=1000, lock_renew_time=999).renew_every == 999


def test_backoff_types_are_checked_against_known_strategies() -> None:
    from pyqueue.options import check_backoff_type

    check_backoff_type(Backoff(type="fixed", delay=1), ())
    check_backoff_type(Backoff(type="jitter"), ("jitter",))
    with pytest.raises(InvalidOptionsError,
                       match=r"backoff\.type: unknown strategy 'exponentail' "
                             r"\(built in: exponential, fixed; registered: jitter\)"):
        check_backoff_type(Backoff(type="exponentail", delay=1), ("jitter",))


@pytest.mark.parametrize(
    ("make", "read", "expected"),
    [
        (lambda: JobOptions(delay=timedelta(seconds=1.5)), lambda o: o.delay, 1500),
        (lambda: JobOptions(timeout=timedelta(seconds=10)), lambda o: o.timeout, 10_000),
        (lambda: JobOptions(backoff=timedelta(seconds=2)), lambda o: o.backoff.delay, 2000),
        (lambda: Backoff(type="fixed", delay=timedelta(minutes=1)), lambda o: o.delay, 60_000),
        (lambda: KeepJobs(age=timedelta(hours=1)), lambda o: o.age, 3600),
        (lambda: Debounce(id="d", ttl=timedelta(seconds=3)), lambda o: o.ttl, 3000),
        (lambda: RateLimiter(max=1, duration=timedelta(seconds=1)), lambda o: o.duration, 1000),
        (lambda: Repeat(every=timedelta(minutes=5)), lambda o: o.every, 300_000),
        (lambda: Durability(timeout_ms=timedelta(seconds=2)), lambda o: o.timeout_ms, 2000),
        (lambda: WorkerOptions(lock_duration=timedelta(seconds=30)),
         lambda o: o.lock_duration, 30_000),
        (lambda: WorkerOptions(lock_renew_time=timedelta(seconds=5)),
         lambda o: o.lock_renew_time, 5000),
        (lambda: WorkerOptions(stalled_interval=timedelta(0)), lambda o: o.stalled_interval, 0),
        (lambda: WorkerOptions(guard_interval=timedelta(seconds=1)),
         lambda o: o.guard_interval, 1000),
        (lambda: WorkerOptions(retry_process_delay=timedelta(seconds=1)),
         lambda o: o.retry_process_delay, 1000),
        (lambda: WorkerOptions(drain_delay=timedelta(seconds=2)), lambda o: o.drain_delay, 2.0),
        (lambda: WorkerOptions(shutdown_grace=timedelta(minutes=1)),
         lambda o: o.shutdown_grace, 60.0),
    ],
)
def test_every_duration_takes_a_timedelta(make: Any, read: Any, expected: float) -> None:
    value = read(make())
    assert value == expected
    assert type(value) is type(expected)


def test_durations_are_stored_in_bulls_units_on_the_wire() -> None:
    opts = JobOptions(delay=timedelta(minutes=1), timeout=timedelta(seconds=0.5),
                      backoff=Backoff(type="exponential", delay=timedelta(seconds=1)),
                      remove_on_complete=KeepJobs(age=timedelta(days=1)))
    out = wire.options_to_wire(opts, timestamp=1)
    assert out["delay"] == 60_000
    assert out["timeout"] == 500
    assert out["backoff"] == {"type": "exponential", "delay": 1000}
    assert out["removeOnComplete"] == {"age": 86_400}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WorkerOptions(shutdown_grace="x"),
         r"shutdown_grace: must be a number of seconds or a timedelta, got 'x'"),
        (lambda: WorkerOptions(drain_delay=timedelta(seconds=-1)),
         r"drain_delay: must be >= 0"),
        (lambda: WorkerOptions(lock_duration="x"),
         r"lock_duration: must be a number of milliseconds or a timedelta, got 'x'"),
        (lambda: JobOptions(delay=timedelta(microseconds=-1)), r"delay: must be >= 0"),
        (lambda: JobOptions(timeout=timedelta(microseconds=10)),
         r"timeout: must be >= 1 ms, got datetime.timedelta\(microseconds=10\)"),
        (lambda: KeepJobs(age=timedelta(milliseconds=10)), r"keep\.age: .*whole seconds"),
    ],
)
def test_duration_errors_name_the_unit(make: Any, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        make()


def test_a_timeout_speaks_seconds_and_keeps_bulls_text_for_the_wire() -> None:
    exc = JobTimeoutError(500)
    assert str(exc) == "timed out after 0.5 s"
    assert exc.timeout == 0.5
    assert wire.failed_reason(exc) == "Promise timed out after 500 milliseconds"
    assert wire.failed_reason(ValueError("boom")) == "boom"


def _new_waits() -> list[tuple[object, str]]:
    from pyqueue import Queue, SyncQueue, Worker
    from pyqueue.group import WorkerGroup
    from pyqueue.testing import drain

    return [
        (Queue.wait_until_finished, "timeout"), (SyncQueue.wait_until_finished, "timeout"),
        (Worker.when_current_jobs_finished, "timeout"), (Worker.pause, "timeout"),
        (Worker.close, "timeout"), (WorkerGroup.close, "timeout"), (drain, "timeout"),
    ]


@pytest.mark.parametrize(("owner", "name"), _new_waits(),
                         ids=lambda v: getattr(v, "__qualname__", str(v)))
def test_every_wait_takes_seconds_or_a_timedelta(owner: Any, name: str) -> None:
    import inspect

    parameter = inspect.signature(owner).parameters[name]
    assert "timedelta" in str(parameter.annotation)
    doc = inspect.getdoc(owner) or ""
    assert "timedelta" in doc or "Seconds" in doc or "seconds" in doc, owner
