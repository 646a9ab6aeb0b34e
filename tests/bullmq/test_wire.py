"""BullMQ mode's wire format and backoff, without Redis."""

from __future__ import annotations

from typing import Any

import pytest

from pyqueue._protocol.bullmq import wire
from pyqueue._protocol.bullmq.backoff import builtin_delay, normalize
from pyqueue._protocol.interface import Dedup, Keep, ParentRef
from pyqueue.errors import InvalidOptionsError
from pyqueue.options import Backoff, Debounce, JobOptions, KeepJobs


@pytest.mark.parametrize("job_id", ["abc", "a1", "1a", "repeat:x:17", " 1", "1.5", "-0x1"])
def test_custom_ids_bullmq_accepts(job_id: str) -> None:
    assert wire.check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    ("job_id", "why"),
    [
        ("12", "integer"), ("-3", "integer"), ("0", "'0'"), ("0:x", "'0'"), ("a:b", "':'"),
        ("a:b:c:d", "':'"), ("", "empty"), ("wait", "queue key"), ("events", "queue key"),
        ("marker", "queue key"), ("de:x:y", "queue key"),
    ],
)
def test_custom_ids_bullmq_refuses(job_id: str, why: str) -> None:
    with pytest.raises(InvalidOptionsError, match=why):
        wire.check_job_id(job_id)


def test_options_as_node_stores_them() -> None:
    assert wire.options_to_wire(JobOptions()) == {"attempts": 0}
    opts = JobOptions(
        job_id="my", attempts=3, backoff=Backoff(type="exponential", delay=100), delay=5,
        priority=2, lifo=True, remove_on_complete=True, remove_on_fail=KeepJobs(count=5, age=60),
        stack_trace_limit=2, extra={"keepLogs": 10, "sizeLimit": 100},
    )
    assert wire.options_to_wire(opts, jitter=0.5) == {
        "attempts": 3, "jobId": "my", "backoff": {"type": "exponential", "delay": 100,
                                                  "jitter": 0.5},
        "delay": 5, "priority": 2, "lifo": True, "removeOnComplete": True,
        "removeOnFail": {"age": 60, "count": 5}, "stackTraceLimit": 2, "kl": 10,
        "sizeLimit": 100,
    }


def test_dedup_and_parent_options() -> None:
    stored = wire.options_to_wire(
        JobOptions(), dedup=Dedup(id="d", ttl=10, extend=True),
        parent=ParentRef(id="p", queue="bull:pq", on_failure="fail_parent"),
    )
    assert stored == {"attempts": 0, "de": {"id": "d", "ttl": 10, "extend": True},
                      "parent": {"id": "p", "queue": "bull:pq"}, "fpof": True}
    debounced = wire.options_to_wire(JobOptions(debounce=Debounce(id="x", ttl=5)))
    assert debounced["de"] == {"id": "x", "ttl": 5}
    assert wire.public_options(stored) == {
        "attempts": 0, "deduplication": {"id": "d", "ttl": 10, "extend": True},
        "parent": {"id": "p", "queue": "bull:pq"}, "failParentOnFailure": True,
    }
    assert wire.parent_to_wire(ParentRef(id="p", queue="bull:pq", on_failure="ignore")) == (
        '{"id":"p","queueKey":"bull:pq","idof":true}'
    )


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        (JobOptions(timeout=5), "timeout"), (JobOptions(prevent_parsing_data=True),
                                             "prevent_parsing_data"),
        (JobOptions(priority=2**21), "priority"),
    ],
)
def test_options_bullmq_does_not_have_are_refused(opts: JobOptions, field: str) -> None:
    with pytest.raises(InvalidOptionsError, match=field):
        wire.options_to_wire(opts)


def test_jitter_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="jitter"):
        wire.options_to_wire(JobOptions(), jitter=1.5)


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"id": ""}, "deduplication.id"), ({"id": "x", "ttl": 0}, "deduplication.ttl"),
     ({"id": "x", "extend": 1}, "deduplication.extend")],
)
def test_bad_deduplication_names_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidOptionsError, match=field):
        Dedup(**kw)


@pytest.mark.parametrize(
    ("value", "keep"),
    [
        (None, Keep(-1)), (False, Keep(-1)), (True, Keep(0)), (7, Keep(7)),
        ({"count": 3, "age": 60, "limit": 10}, Keep(3, 60, 10)), ({"age": 5}, Keep(-1, 5)),
        (KeepJobs(age=9), Keep(-1, 9)), ("weird", Keep(-1)), ({"count": "x"}, Keep(-1)),
    ],
)
def test_keep_spec_reads_retention_as_bullmq(value: Any, keep: Keep) -> None:
    assert wire.keep_spec(value) == keep


def test_decode_a_node_job_hash() -> None:
    raw = {
        b"name": b"n", b"data": b'{"a":1}', b"timestamp": b"100", b"delay": b"0",
        b"priority": b"3", b"opts": b'{"attempts":2,"de":{"id":"x"},"kl":5}',
        b"atm": b"1", b"ats": b"2", b"stc": b"1", b"processedOn": b"150",
        b"finishedOn": b"160", b"returnvalue": b'"r"', b"progress": b'{"p":1}',
        b"stacktrace": b'["Error: x\\n at y"]', b"failedReason": b"x", b"deid": b"x",
        b"rjk": b"sched", b"defa": b"child failed", b"pb": b"w1",
        b"parentKey": b"bull:p:1", b"parent": b'{"id":"1","queueKey":"bull:p"}',
    }
    record = wire.decode_job("7", raw)
    assert (record.id, record.name, record.data, record.priority) == ("7", "n", {"a": 1}, 3)
    assert record.raw_opts == {"attempts": 2, "deduplication": {"id": "x"}, "keepLogs": 5}
    assert (record.attempts_made, record.attempts_started, record.stalled_counter) == (1, 2, 1)
    assert (record.processed_on, record.finished_on, record.return_value) == (150, 160, "r")
    assert record.stacktrace == ["Error: x\n at y"]
    assert (record.debounce_id, record.repeat_job_key, record.deferred_failure) == (
        "x", "sched", "child failed")
    assert record.parent == {"id": "1", "queueKey": "bull:p"}
    assert record.processed_by == "w1"
    node = wire.job_to_json(record)
    assert node["deduplicationId"] == "x"
    assert node["attemptsStarted"] == 2


def test_decode_never_raises_on_bad_content() -> None:
    record = wire.decode_job("1", {b"data": b"{nope", b"opts": b"[1]", b"atm": b"x",
                                   b"stacktrace": b"{}", b"attemptsMade": b"4"})
    assert record.data == "{nope"
    assert record.data_error is not None
    assert record.raw_opts == {}
    assert record.stacktrace == []
    old = wire.decode_job("2", {b"attemptsMade": b"4"})  # written by BullMQ 4
    assert old.attempts_made == 4


@pytest.mark.parametrize(
    ("backoff", "attempts", "delay"),
    [
        ({"type": "fixed", "delay": 300}, 1, 300), ({"type": "fixed", "delay": 300}, 4, 300),
        ({"type": "exponential", "delay": 100}, 1, 100),
        ({"type": "exponential", "delay": 100}, 2, 200),
        ({"type": "exponential", "delay": 100}, 4, 800),
        ({"type": "exponential", "delay": 2.5}, 1, 3),  # Math.round(2.5) is 3
        ({"type": "custom", "delay": 5}, 1, None),
    ],
)
def test_builtin_backoff(backoff: dict[str, Any], attempts: int, delay: int | None) -> None:
    assert builtin_delay(backoff, attempts) == delay


def test_jitter_draws_within_bullmqs_range() -> None:
    backoff = {"type": "exponential", "delay": 1000, "jitter": 0.5}
    assert builtin_delay(backoff, 2, rand=lambda: 0.0) == 1000  # 2000 * (1 - 0.5)
    assert builtin_delay(backoff, 2, rand=lambda: 0.999999) == 1999
    assert builtin_delay({"type": "fixed", "delay": 100, "jitter": 1}, 1, rand=lambda: 0.5) == 50


def test_a_bare_number_is_a_fixed_backoff() -> None:
    assert normalize(250) == {"type": "fixed", "delay": 250}
    assert normalize(True) is None
    assert normalize({"type": "exponential"}) == {"type": "exponential"}
