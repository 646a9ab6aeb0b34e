"""Property tests of the wire format: options round trips and job hash decoding."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyqueue import Backoff, JobOptions, KeepJobs
from pyqueue._protocol.bull import wire
from pyqueue._protocol.bull.wire import (
    _OPT_NAMES,
    decode_job,
    dumps,
    encode_data,
    options_from_wire,
    options_to_wire,
)
from pyqueue.options import MAX_PRIORITY

ms = st.one_of(
    st.integers(min_value=0, max_value=10**12),
    st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
safe_ids = st.text(
    alphabet=st.characters(blacklist_characters="@", blacklist_categories=("Cs",)),
    min_size=1, max_size=20,
).filter(lambda s: not s.endswith((":lock", ":logs")))
retention = st.one_of(
    st.booleans(),
    st.integers(min_value=-5, max_value=1000),
    st.builds(
        KeepJobs,
        count=st.none() | st.integers(min_value=-1, max_value=1000),
        age=st.none() | st.integers(min_value=0, max_value=10**6),
    ),
)
backoffs = st.one_of(
    ms,
    st.builds(
        Backoff,
        type=st.sampled_from(["fixed", "exponential", "custom"]),
        delay=st.none() | ms,
        options=st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
)
extras = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in _OPT_NAMES), json_values, max_size=3
)


@st.composite
def job_options(draw: st.DrawFn) -> JobOptions:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    job_id = maybe(safe_ids)
    try:
        return JobOptions(
            job_id=job_id,
            attempts=maybe(st.integers(min_value=1, max_value=1000)),
            backoff=maybe(backoffs),
            delay=maybe(ms),
            priority=maybe(st.integers(min_value=1, max_value=MAX_PRIORITY)),
            lifo=maybe(st.booleans()),
            timeout=maybe(st.integers(min_value=1, max_value=10**9)),
            remove_on_complete=maybe(retention),
            remove_on_fail=maybe(retention),
            stack_trace_limit=maybe(st.integers(min_value=0, max_value=100)),
            timestamp=maybe(st.integers(min_value=0, max_value=2**52)),
            prevent_parsing_data=maybe(st.booleans()),
            extra=draw(extras),
        )
    except ValueError:
        # A drawn id that collides with a queue key is rejected, as it should be.
        from hypothesis import reject

        reject()


@settings(max_examples=300, deadline=None)
@given(opts=job_options(), now=st.integers(min_value=0, max_value=2**52))
def test_options_round_trip(opts: JobOptions, now: int) -> None:
    wire = options_to_wire(opts, timestamp=now)
    text = dumps(wire)

    def no_constants(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name} in {text}")

    # NaN/Infinity are not JSON: Node's JSON.parse would reject the whole job.
    json.loads(text, parse_constant=no_constants)
    # Never a JSON null for an option (Bull's stalled script chokes on it).
    assert None not in [v for k, v in wire.items() if k not in opts.extra]
    back = options_from_wire(json.loads(text))

    extra = dict(opts.extra)
    if opts.job_id is not None:
        extra["jobId"] = opts.job_id
    expected = replace(
        opts,
        job_id=None,
        attempts=opts.attempts if opts.attempts is not None else 1,
        delay=opts.delay if opts.delay is not None else 0,
        timestamp=opts.timestamp if opts.timestamp is not None else now,
        extra=extra,
    )
    assert back == expected
    # Bull always writes these three.
    assert {"attempts", "delay", "timestamp"} <= set(wire)


@given(delay=ms)
def test_numeric_backoff_is_normalised(delay: float) -> None:
    wire = options_to_wire(JobOptions(backoff=delay), timestamp=1)
    assert wire["backoff"]["type"] == "fixed"
    assert wire["backoff"]["delay"] == delay


_FIELDS = [
    b"name", b"data", b"opts", b"timestamp", b"delay", b"priority", b"progress",
    b"attemptsMade", b"stalledCounter", b"failedReason", b"stacktrace", b"returnvalue",
    b"finishedOn", b"processedOn", b"retriedOn",
]
_ODD = [
    b"", b"0", b"-1", b"1.5", b"inf", b"-inf", b"nan", b"1e999", b"-1e999", b"null",
    b"[]", b"{}", b'"x"', b"[1,2]", b'{"preventParsingData":true}', b"\xff\xfe",
    b"9" * 400, b'{"attempts":"x","backoff":-1,"removeOnFail":null}', b"true",
    b'{"repeat":5,"timestamp":1e999,"priority":"inf","attempts":"1e999"}',
    b"[" * 50 + b"]" * 50, b"[" * 100_000,
]
values = st.one_of(st.sampled_from(_ODD), st.binary(max_size=30))


@settings(max_examples=500, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(_FIELDS) | st.binary(max_size=8), values))
def test_decode_job_never_raises(raw: dict[bytes, bytes]) -> None:
    record = decode_job("1", raw)
    assert isinstance(record.stacktrace, list)
    assert isinstance(record.raw_opts, dict)
    options_from_wire(record.raw_opts)


@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_job_hash_round_trip(data: Any) -> None:
    opts = options_to_wire(JobOptions(attempts=2), timestamp=123)
    raw = {
        b"name": b"n",
        b"data": encode_data(data).encode(),
        b"opts": dumps(opts).encode(),
        b"timestamp": b"123",
        b"delay": b"0",
        b"priority": b"0",
        b"attemptsMade": b"1",
        b"stacktrace": dumps(["trace"]).encode(),
        b"returnvalue": dumps(data).encode(),
    }
    record = decode_job("7", raw)
    assert record.data == data
    assert record.return_value == data
    assert record.raw_opts == opts
    assert record.timestamp == 123
    assert record.attempts_made == 1
    assert record.stacktrace == ["trace"]
    assert record.data_error is None


def test_debounce_on_the_wire() -> None:
    from pyqueue import Debounce

    opts = JobOptions(debounce=Debounce(id="store-42", ttl=5000))
    wire = options_to_wire(opts, timestamp=1)
    assert wire["debounce"] == {"id": "store-42", "ttl": 5000}
    assert options_from_wire(wire).debounce == Debounce(id="store-42", ttl=5000)
    no_ttl = options_to_wire(JobOptions(debounce=Debounce(id="x")), timestamp=1)
    assert no_ttl["debounce"] == {"id": "x"}
    # Shapes pyqueue cannot use are kept as Node wrote them.
    odd = options_from_wire({"debounce": {"id": 7}})
    assert odd.debounce is None
    assert options_to_wire(odd, timestamp=1)["debounce"] == {"id": 7}


@given(st.text(), st.one_of(st.none(), st.text()))
def test_completed_payload_is_the_json_of_its_dict(job_id, result_json):
    # Built by string concatenation for speed; it must stay byte-identical to the encoder's.
    expected = {"jobId": job_id} if result_json is None else {"jobId": job_id, "val": result_json}
    assert wire.completed_payload(job_id, result_json) == wire.dumps(expected)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text()))
def test_encode_result_of_scalars_is_their_json(value):
    assert wire.encode_result(value) == wire.dumps(value)


def _outcome(fn: Any, text: Any) -> tuple[str, Any]:
    try:
        return "value", fn(text)
    except ValueError as exc:  # JSONDecodeError included
        return "error", str(exc)
    except RecursionError:
        return "recursion", None


json_texts = st.one_of(
    json_values.map(json.dumps),
    json_values.map(lambda v: json.dumps(v, indent=1)),
    st.tuples(st.sampled_from(["", " ", "\n", "\t "]), json_values.map(json.dumps),
              st.sampled_from(["", " ", "\n", "x", "}", ",1"])).map("".join),
    st.text(max_size=12),
    st.sampled_from(["", " ", "NaN", "-Infinity", "[1,", "{\"a\":}", "\"\\ud800\"", "1 2"]),
)


@given(text=json_texts)
def test_loads_is_json_loads(text: str) -> None:
    # The same value, or the same error message, for clean and unclean documents alike.
    got, want = _outcome(wire.loads, text), _outcome(json.loads, text)
    if got[0] == want[0] == "value":
        assert json.dumps(got[1]) == json.dumps(want[1])  # NaN is not equal to itself
    else:
        assert got == want
    assert _outcome(wire.loads, text.encode("utf-8", "surrogatepass")) == _outcome(
        json.loads, text.encode("utf-8", "surrogatepass")
    )


def test_decode_job_puts_every_field_in_its_place() -> None:
    # decode_job builds the record positionally (for speed), so a field out of
    # order would silently land in its neighbour: every value here is distinct.
    raw = {
        b"name": b"mail", b"data": b'{"to":"a"}', b"opts": b'{"attempts":3}',
        b"timestamp": b"11", b"delay": b"12", b"priority": b"13", b"progress": b"14",
        b"attemptsMade": b"15", b"stalledCounter": b"16", b"failedReason": b"boom",
        b"stacktrace": b'["s1"]', b"returnvalue": b'{"r":1}', b"finishedOn": b"17",
        b"processedOn": b"18", b"retriedOn": b"19", b"deid": b"d-1",
    }
    record = decode_job("9", raw)
    assert (record.id, record.name, record.data, record.raw_opts) == (
        "9", "mail", {"to": "a"}, {"attempts": 3}
    )
    assert (record.timestamp, record.delay, record.priority, record.progress) == (11, 12, 13, 14)
    assert (record.attempts_made, record.stalled_counter) == (15, 16)
    assert (record.failed_reason, record.stacktrace, record.return_value) == (
        "boom", ["s1"], {"r": 1}
    )
    assert (record.finished_on, record.processed_on, record.retried_on) == (17, 18, 19)
    assert (record.data_error, record.debounce_id) == (None, "d-1")
    # JavaScript may write a number as "1.5"; a fresh job lacks most fields.
    odd = decode_job("9", {b"timestamp": b"1.5", b"finishedOn": b"2.5", b"data": b"{"})
    assert (odd.timestamp, odd.delay, odd.attempts_made, odd.finished_on) == (1, 0, 0, 2)
    assert odd.name == "__default__"
    assert odd.data == "{"
    assert odd.data_error is not None
    assert (odd.progress, odd.stacktrace, odd.return_value, odd.processed_on) == (0, [], None, None)


def test_keep_on_fail_reads_stored_options_leniently() -> None:
    assert wire.keep_on_fail(b'{"removeOnFail":3}') == (3, None)
    assert wire.keep_on_fail(b'{"removeOnFail":true}') == (0, None)
    assert wire.keep_on_fail(b'{"removeOnFail":{"count":5,"age":60}}') == (5, 60)
    # Written by another client, or edited: the job is kept, nothing raises.
    for stored in (None, b"garbage", b"[1]", b'{"removeOnFail":1e400}',
                   b'{"removeOnFail":NaN}', b'{"removeOnFail":"yes"}'):
        assert wire.keep_on_fail(stored) == (-1, None), stored


def test_numbers_past_javascripts_exact_integers_are_capped_when_read() -> None:
    # Node writes them (1e20 is a plain JSON number); pyqueue's own options refuse
    # them, so reading caps them instead of failing the job.
    huge = 10**20
    opts = wire.options_from_wire({
        "attempts": huge, "timeout": 1e20, "delay": huge, "backoff": {"type": "fixed",
        "delay": 1e300}, "removeOnComplete": huge, "removeOnFail": {"count": huge},
        "stackTraceLimit": "1e30", "priority": 2**40,
    })
    cap = 2**53 - 1
    assert (opts.attempts, opts.timeout, opts.delay, opts.stack_trace_limit) == (cap,) * 4
    assert opts.backoff == Backoff(type="fixed", delay=cap)
    assert opts.remove_on_complete == cap
    assert opts.remove_on_fail == KeepJobs(count=cap)
    assert opts.priority == MAX_PRIORITY
