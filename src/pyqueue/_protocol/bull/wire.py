"""Translation between pyqueue's Python objects and Bull's wire format.

The only module that spells Bull's camelCase field names (``jobId``,
``attemptsMade``, ``removeOnComplete``...). Everything on the wire is JSON text
in Redis strings; see bull-protocol.md §2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pyqueue._protocol import payload
from pyqueue.errors import InvalidOptionsError, JobTimeoutError, error_message
from pyqueue.options import (
    MAX_PRIORITY,
    MAX_SAFE_INTEGER,
    Backoff,
    Debounce,
    JobOptions,
    KeepJobs,
    Retention,
    finite_int,
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# The string quoting _dumps uses (ensure_ascii=False): for the per-job event
# payloads, a few microseconds cheaper than building and encoding a dict.
_quote = json.encoder.encode_basestring
# The C scanner json.loads calls once its Python layers are through (the
# stubs do not declare the attribute, though every JSONDecoder sets it).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, skipping its Python layers for the usual clean document.

    ``json.loads`` runs three Python frames and two regex matches around the C
    scanner; a job's opts and data are parsed for every job a worker starts.
    Anything the scanner alone cannot settle (surrounding whitespace, trailing
    text, an empty string) goes through ``json.loads``, so results and errors
    are exactly its own.
    """
    if type(text) is not str:
        return json.loads(text)
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value

# opts keys pyqueue understands, wire name -> python name.
_OPT_NAMES: dict[str, str] = {
    "jobId": "job_id",
    "attempts": "attempts",
    "backoff": "backoff",
    "delay": "delay",
    "priority": "priority",
    "lifo": "lifo",
    "timeout": "timeout",
    "removeOnComplete": "remove_on_complete",
    "removeOnFail": "remove_on_fail",
    "stackTraceLimit": "stack_trace_limit",
    "timestamp": "timestamp",
    "preventParsingData": "prevent_parsing_data",
    "repeat": "repeat",
    "debounce": "debounce",
}


def dumps(value: Any) -> str:
    """Compact JSON as JavaScript's ``JSON.stringify`` would write it."""
    return _dumps(value)


def encode_data(data: Any, field: str = "data") -> str:
    """Serialise a job payload, with an error that names the problem and where it is.

    Raises:
        InvalidOptionsError: not JSON-serialisable, nested too deeply, keys that
            collide as JSON strings, or a lone surrogate (see
            :mod:`pyqueue._protocol.payload`).
    """
    if isinstance(data, BaseModel):
        text = data.model_dump_json()
    else:
        payload.check_value(data, field)
        try:
            text = _dumps(data)
        except (TypeError, ValueError) as exc:
            raise InvalidOptionsError(f"{field}: not JSON-serialisable ({exc})") from None
        except RecursionError:  # a container subclass the walk does not descend into
            raise InvalidOptionsError(f"{field}: nested too deeply to encode") from None
    payload.check_text(text, data, field)
    return text


def encode_result(value: Any) -> str:
    """A handler's return value as ``returnvalue`` JSON; ``None`` becomes ``null``.

    Raises:
        TypeError: the value cannot be stored (not JSON, or text UTF-8 cannot encode);
            the attempt then fails saying so.
    """
    if value is None:  # most handlers return nothing; the encoder costs ~4 us to say so
        return "null"
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        text = _dumps(value)
        payload.check_text(text, value, "result")
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"job result is not JSON-serialisable ({exc})") from None
    return text


def timeout_reason(timeout_ms: float) -> str:
    """Bull's failed reason for an attempt that outran ``opts.timeout`` (its p-timeout text).

    Stored as is: Node code and dashboards may match it, and a Node worker writes it too.
    """
    return f"Promise timed out after {_number(timeout_ms)} milliseconds"


def failed_reason(exc: BaseException) -> str:
    """The ``failedReason`` to store for an attempt that failed with ``exc``.

    An error's message, as Bull stores it, except a timeout: the Python error speaks
    seconds (``timed out after 0.5 s``), the stored reason keeps Bull's own text.
    """
    if isinstance(exc, JobTimeoutError):
        return timeout_reason(exc.timeout_ms)
    return error_message(exc)


def _retention_to_wire(value: Retention) -> Any:
    if isinstance(value, KeepJobs):
        out: dict[str, int] = {}
        if value.age is not None:
            out["age"] = value.age
        if value.count is not None:
            out["count"] = value.count
        return out
    return value


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def options_to_wire(opts: JobOptions, *, timestamp: int) -> dict[str, Any]:
    """Bull's ``opts`` object: set options, then the defaults Node always writes."""
    out: dict[str, Any] = dict(opts.extra)
    if opts.priority is not None:
        out["priority"] = opts.priority
    if opts.backoff is not None:
        backoff: dict[str, Any] = {"type": opts.backoff.type}
        if opts.backoff.delay is not None:
            backoff["delay"] = _number(opts.backoff.delay)
        if opts.backoff.options is not None:
            backoff["options"] = dict(opts.backoff.options)
        out["backoff"] = backoff
    if opts.job_id is not None:
        out["jobId"] = opts.job_id
    if opts.lifo is not None:
        out["lifo"] = opts.lifo
    if opts.timeout is not None:
        out["timeout"] = opts.timeout
    if opts.remove_on_complete is not None:
        out["removeOnComplete"] = _retention_to_wire(opts.remove_on_complete)
    if opts.remove_on_fail is not None:
        out["removeOnFail"] = _retention_to_wire(opts.remove_on_fail)
    if opts.stack_trace_limit is not None:
        out["stackTraceLimit"] = opts.stack_trace_limit
    if opts.prevent_parsing_data is not None:
        out["preventParsingData"] = opts.prevent_parsing_data
    if opts.repeat is not None:
        out["repeat"] = opts.repeat if isinstance(opts.repeat, dict) else opts.repeat.to_wire()
    if opts.debounce is not None:
        debounce: dict[str, Any] = {"id": opts.debounce.id}
        if opts.debounce.ttl is not None:
            debounce["ttl"] = opts.debounce.ttl
        out["debounce"] = debounce
    out["attempts"] = opts.attempts if opts.attempts is not None else 1
    out["delay"] = _number(opts.delay) if opts.delay is not None else 0
    out["timestamp"] = opts.timestamp if opts.timestamp is not None else timestamp
    return out


# The options a worker applies to jobs whose opts lack them (a queue entry's policy).
_POLICY_KEYS = ("attempts", "backoff", "timeout", "removeOnComplete", "removeOnFail",
                "stackTraceLimit")


def policy_to_wire(opts: JobOptions) -> dict[str, Any]:
    """The processing options ``opts`` sets (only those), as the opts keys to fill in.

    A worker adds each to a job's opts where the key is missing; what a producer
    wrote always wins (Bull's ``defaultJobOptions`` semantics, on the worker side).
    """
    full = options_to_wire(opts, timestamp=0)
    return {key: full[key] for key in _POLICY_KEYS
            if key in full and (key != "attempts" or opts.attempts is not None)}


def _int_or_none(value: Any) -> int | None:
    """JS-like ``parseInt`` leniency for numbers read from other clients.

    Capped at JavaScript's exact integers (what pyqueue's own options accept):
    past them Node does not hold the number exactly either.
    """
    if isinstance(value, str):
        try:
            return _int_or_none(int(float(value)))
        except (ValueError, OverflowError):  # "x", "inf", "1e999"
            return None
    return finite_int(value)


def _ms_or_none(value: Any) -> int | float | None:
    """A number of ms >= 0 from another client, capped as :func:`_int_or_none` caps."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
        return None
    return min(value, MAX_SAFE_INTEGER)


def _retention_from_wire(value: Any) -> Retention | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _int_or_none(value)
    if isinstance(value, dict):
        return KeepJobs(count=_int_or_none(value.get("count")), age=_int_or_none(value.get("age")))
    return None


def _backoff_from_wire(value: Any) -> Backoff | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value < 0:
            return None
        # Infinity (1e400 in the JSON) stays, so the options fail to decode and the
        # job fails naming backoff.delay; a finite one is capped as numbers are.
        return Backoff(type="fixed", delay=_ms_or_none(value) if math.isfinite(value) else value)
    if isinstance(value, dict) and isinstance(value.get("type"), str) and value["type"]:
        options = value.get("options")
        return Backoff(
            type=value["type"], delay=_ms_or_none(value.get("delay")),
            options=options if isinstance(options, dict) else None,
        )
    return None


def _debounce_from_wire(value: Any) -> Debounce | None:
    if not isinstance(value, dict):
        return None
    debounce_id, ttl = value.get("id"), _int_or_none(value.get("ttl"))
    if not isinstance(debounce_id, str) or not debounce_id:
        return None
    return Debounce(id=debounce_id, ttl=ttl if ttl is not None and ttl >= 1 else None)


def options_from_wire(raw: Mapping[str, Any]) -> JobOptions:
    """Read ``opts`` written by any Bull client, tolerating odd values.

    Values pyqueue cannot use are dropped rather than rejected: a job made by
    another client must still be processable.
    """
    extra = {k: v for k, v in raw.items() if k not in _OPT_NAMES}
    debounce = _debounce_from_wire(raw.get("debounce"))
    if debounce is None and "debounce" in raw:
        extra["debounce"] = raw["debounce"]  # not ours to judge: written back as is
    attempts = _int_or_none(raw.get("attempts"))
    priority = _int_or_none(raw.get("priority"))
    timeout = _int_or_none(raw.get("timeout"))
    limit = _int_or_none(raw.get("stackTraceLimit"))
    delay = raw.get("delay")
    job_id = raw.get("jobId")
    # jobId stays in ``extra``: ids written by other clients are not re-validated
    # here (the id is the key suffix anyway), and writing opts back keeps it.
    return JobOptions(
        job_id=None,
        attempts=attempts if attempts is not None and attempts >= 1 else None,
        backoff=_backoff_from_wire(raw.get("backoff")),
        delay=_ms_or_none(delay),
        # Bull takes any priority; pyqueue's own adds stop at MAX_PRIORITY.
        priority=min(priority, MAX_PRIORITY) if priority is not None and priority >= 1 else None,
        lifo=raw["lifo"] if isinstance(raw.get("lifo"), bool) else None,
        timeout=timeout if timeout is not None and timeout >= 1 else None,
        remove_on_complete=_retention_from_wire(raw.get("removeOnComplete")),
        remove_on_fail=_retention_from_wire(raw.get("removeOnFail")),
        stack_trace_limit=limit if limit is not None and limit >= 0 else None,
        timestamp=_int_or_none(raw.get("timestamp")),
        prevent_parsing_data=raw["preventParsingData"]
        if isinstance(raw.get("preventParsingData"), bool) else None,
        repeat=raw.get("repeat") if isinstance(raw.get("repeat"), dict) else None,
        debounce=debounce,
        extra={**extra, **({"jobId": job_id} if job_id is not None else {})},
    )


def timeout_of(raw_opts: Mapping[str, Any]) -> int | None:
    """``opts.timeout`` read straight from the wire dict (the per-job hot path)."""
    value = _int_or_none(raw_opts.get("timeout"))
    return value if value is not None and value >= 1 else None


def keep_on_complete(raw_opts: Mapping[str, Any]) -> tuple[int, int | None]:
    """``keep_spec`` of ``removeOnComplete`` without decoding every option."""
    value = raw_opts.get("removeOnComplete")
    if value is None or value is False:
        return -1, None  # the default, settled without two more calls per job
    return keep_spec(_retention_from_wire(value))


def keep_on_fail(opts_json: bytes | None) -> tuple[int, int | None]:
    """``keep_spec`` of a stored job's ``removeOnFail``; unreadable options keep the job."""
    raw = _json_field(opts_json, {})
    if not isinstance(raw, dict):
        return -1, None
    return keep_spec(_retention_from_wire(raw.get("removeOnFail")))


def keep_spec(value: Retention | None) -> tuple[int, int | None]:
    """Bull's keep-jobs map as ``(count, age)``: count -1 keeps all, 0 deletes the job."""
    if value is None or value is False:
        return -1, None
    if value is True:
        return 0, None
    if isinstance(value, KeepJobs):
        return (value.count if value.count is not None else -1), value.age
    return int(value), None


def completed_payload(job_id: str, result_json: str | None) -> str:
    """The ``completed`` event: ``val`` is the result's JSON *text* (double-encoded)."""
    if result_json is None:
        return '{"jobId":' + _quote(job_id) + "}"
    return '{"jobId":' + _quote(job_id) + ',"val":' + _quote(result_json) + "}"


# pyqueue only: set on the hash of an active job that was aborted, to the failed
# reason to come. Bull's code never reads unknown fields, so Node workers ignore it.
ABORT_FIELD = "pqAbort"


def abort_reason(reason: str | None) -> str:
    """The failed reason of an aborted job."""
    return f"aborted: {reason}" if reason else "aborted"


def abort_payload(job_id: str, reason: str) -> str:
    return _dumps({"jobId": job_id, "reason": reason})


def failed_payload(job_id: str, reason: str) -> str:
    return _dumps({"jobId": job_id, "val": reason})


def progress_payload(job_id: str, progress_json: str) -> str:
    # progress_json is already JSON: splice it in rather than re-encoding.
    return '{"jobId":' + _dumps(job_id) + ',"progress":' + progress_json + "}"


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _int_field(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(float(value))  # "1.5", as JavaScript may write a number
    except (ValueError, OverflowError):  # "x", "inf", "1e999"
        return None


def _json_field(value: bytes | None, default: Any = None) -> Any:
    if value is None:
        return default
    try:
        # Decoded first: json.loads of bytes sniffs the encoding on every call.
        return loads(value.decode())
    except (ValueError, RecursionError):  # invalid (UTF-8 or JSON) or absurdly nested
        return default


@dataclass(slots=True)
class JobRecord:
    """A decoded job hash. ``data_error`` is set when ``data`` is not valid JSON."""

    id: str
    name: str
    data: Any
    raw_opts: dict[str, Any]
    timestamp: int
    delay: int
    priority: int
    progress: Any
    attempts_made: int
    stalled_counter: int
    failed_reason: str | None
    stacktrace: list[str]
    return_value: Any
    finished_on: int | None
    processed_on: int | None
    retried_on: int | None
    data_error: str | None = None
    debounce_id: str | None = None


def new_job_record(
    job_id: str, name: str, data: Any, raw_opts: dict[str, Any],
    timestamp: int, delay: int, priority: int,
) -> JobRecord:
    """The record of a job just added, built from what was written (no re-parsing)."""
    return JobRecord(
        id=job_id, name=name, data=data, raw_opts=raw_opts, timestamp=timestamp,
        delay=delay, priority=priority, progress=0, attempts_made=0, stalled_counter=0,
        failed_reason=None, stacktrace=[], return_value=None, finished_on=None,
        processed_on=None, retried_on=None,
    )


def decode_job(job_id: str, raw: Mapping[bytes, bytes]) -> JobRecord:
    """Decode a job hash written by Node Bull or pyqueue.

    Never raises for bad content: unusable fields fall back to Bull's reading
    (``[]`` for a bad stacktrace, ``None`` for a bad return value), and invalid
    ``data`` is reported in ``data_error`` so the worker can fail that job alone.
    """
    # This runs for every job a worker starts (a third of the worker's Python per
    # job before it was tuned): the integer fields are read inline, and JobRecord
    # is built positionally (keywords cost ~1 us per job).
    get = raw.get
    opts_value = _json_field(get(b"opts"), {})
    raw_opts = opts_value if isinstance(opts_value, dict) else {}
    data_bytes = get(b"data")
    data: Any = None
    data_error: str | None = None
    if raw_opts.get("preventParsingData") is True:
        data = _text(data_bytes)
    elif data_bytes is not None:
        try:
            data = loads(data_bytes.decode())
        except (ValueError, RecursionError) as exc:
            data = _text(data_bytes)
            data_error = f"job data is not valid JSON ({exc})"
    stack_bytes = get(b"stacktrace")
    stack = [] if stack_bytes is None else _json_field(stack_bytes, [])
    return_bytes = get(b"returnvalue")
    progress = get(b"progress")
    name = get(b"name")
    failed = get(b"failedReason")
    deid = get(b"deid")
    fields = (
        get(b"timestamp"), get(b"delay"), get(b"priority"), get(b"attemptsMade"),
        get(b"stalledCounter"), get(b"finishedOn"), get(b"processedOn"), get(b"retriedOn"),
    )
    ts, dl, pr, am, sc, fo, po, ro = fields
    try:
        # Plain int() first: every hash Bull or pyqueue writes passes it.
        ints = (
            0 if ts is None else int(ts), 0 if dl is None else int(dl),
            0 if pr is None else int(pr), 0 if am is None else int(am),
            0 if sc is None else int(sc), None if fo is None else int(fo),
            None if po is None else int(po), None if ro is None else int(ro),
        )
    except ValueError:
        # "1.5", as JavaScript may write a number, or garbage: read as Bull would.
        its = [_int_field(v) for v in fields]
        ints = (
            its[0] or 0, its[1] or 0, its[2] or 0, its[3] or 0, its[4] or 0,
            its[5], its[6], its[7],
        )
    timestamp, delay, priority, attempts, stalled, finished, processed, retried = ints
    return JobRecord(  # JobRecord's field order
        job_id,
        "__default__" if not name else name.decode("utf-8", "replace"),
        data,
        raw_opts,
        timestamp,
        delay,
        priority,
        0 if progress is None else _json_field(progress, 0),
        attempts,
        stalled,
        _text(failed),
        [str(s) for s in stack] if isinstance(stack, list) else [],
        None if return_bytes is None else _json_field(return_bytes),
        finished,
        processed,
        retried,
        data_error,
        _text(deid),
    )


def job_to_json(record: JobRecord) -> dict[str, Any]:
    """The shape of Node's ``Job#toJSON()``, for UIs and debugging."""
    return {
        "id": record.id,
        "name": record.name,
        "data": record.data,
        "opts": record.raw_opts,
        "progress": record.progress,
        "delay": record.delay,
        "timestamp": record.timestamp,
        "attemptsMade": record.attempts_made,
        "failedReason": record.failed_reason,
        "stacktrace": record.stacktrace,
        "returnvalue": record.return_value,
        "finishedOn": record.finished_on,
        "processedOn": record.processed_on,
        "debounceId": record.debounce_id,  # Bull 4.16's toJSON field
    }
