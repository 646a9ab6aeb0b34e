"""Translation between pyqueue's Python objects and BullMQ 6's wire format.

The only module that spells BullMQ's field and option names. A job is a hash
(``name``, ``data``, ``opts``, ``timestamp``, ``delay``, ``priority``,
``processedOn``, ``finishedOn``, ``atm`` attempts made, ``ats`` attempts
started, ``stc`` stalls, ``returnvalue``, ``failedReason``, ``stacktrace``,
``progress``, ``parentKey``, ``parent``, ``deid``, ``rjk``, ``defa``, ``pb``);
``opts`` is JSON with BullMQ's public option names except a few it stores
short (``de`` deduplication, ``kl`` keepLogs, ``fpof``/``cpof``/``idof``/``rdof``
the parent-failure options, ``tm``/``omc`` telemetry), which
:func:`options_to_wire` writes and :func:`public_options` reads back as Node's
``Job.opts`` shows them. JSON encoding is Bull mode's (:mod:`..bull.wire`),
shared so both formats write what ``JSON.stringify`` writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyqueue._protocol.bull.wire import (
    JobRecord,
    _json_field,
    _text,
    dumps,
    encode_data,
    encode_result,
    loads,
)
from pyqueue._protocol.bullmq.keys import RESERVED_IDS
from pyqueue._protocol.interface import Dedup, Keep, ParentRef
from pyqueue.errors import InvalidOptionsError
from pyqueue.options import MAX_SAFE_INTEGER, Backoff, JobOptions, KeepJobs, Retention

__all__ = [
    "FAILURE_FLAGS", "MAX_PRIORITY", "BullMQRecord", "check_job_id", "decode_job",
    "dedup_to_wire", "dumps", "encode_data", "encode_result", "job_to_json", "keep_spec",
    "loads", "options_to_wire", "parent_to_wire", "public_options",
]

# BullMQ's Job.PRIORITY_LIMIT: the score keeps 32 bits for arrival order.
MAX_PRIORITY = 2**21 - 1

# Queue keys with a ":<id>" tail: a custom id "de:x:y" would be a dedup key.
_KEYED_HEADS = frozenset({"de", "dn", "metrics"})

# Stored short -> public name (BullMQ's optsDecodeMap).
_SHORT: dict[str, str] = {
    "de": "deduplication", "fpof": "failParentOnFailure", "cpof": "continueParentOnFailure",
    "idof": "ignoreDependencyOnFailure", "kl": "keepLogs", "rdof": "removeDependencyOnFailure",
}
_LONG: dict[str, str] = {v: k for k, v in _SHORT.items()}
# ParentRef.on_failure -> the flag stored in opts and in the child's `parent` field.
FAILURE_FLAGS: dict[str, str] = {
    "fail_parent": "fpof", "continue_parent": "cpof", "ignore": "idof",
    "remove_dependency": "rdof",
}


def check_job_id(job_id: object) -> str:
    """A custom id as BullMQ accepts it, as a string; else InvalidOptionsError.

    BullMQ refuses ids that read as integers (they would collide with counter
    ids), ``"0"`` and ids starting ``"0:"`` (old markers), and ids with a ``:``
    unless they have exactly three parts (old repeat ids). Ids naming a queue
    key (``wait``, ``events``...) or ending like a job's own keys are refused
    too: Redis would mix them up with the queue's structures.
    """
    if isinstance(job_id, bool) or not isinstance(job_id, str):
        raise InvalidOptionsError(f"job_id: must be a string in BullMQ mode, got {job_id!r}")
    if not job_id:
        raise InvalidOptionsError("job_id: must not be empty")
    if job_id == "0" or job_id.startswith("0:"):
        raise InvalidOptionsError(f"job_id: cannot be '0' or start with '0:', got {job_id!r}")
    if _js_parse_int(job_id) == job_id:
        raise InvalidOptionsError(f"job_id: cannot be an integer in BullMQ mode, got {job_id!r}")
    if ":" in job_id and len(job_id.split(":")) != 3:
        raise InvalidOptionsError(f"job_id: cannot contain ':', got {job_id!r}")
    head = job_id.split(":", 1)[0]
    # "repeat:<scheduler>:<ms>" stays allowed: it is how job scheduler iterations are named.
    if job_id in RESERVED_IDS or (":" in job_id and head in _KEYED_HEADS):
        raise InvalidOptionsError(f"job_id: collides with a queue key name, got {job_id!r}")
    return job_id


def _js_parse_int(text: str) -> str:
    """``String(parseInt(text, 10))``: the leading integer of ``text``, or ``"NaN"``."""
    stripped = text.lstrip(" \t\n\r\x0b\x0c")
    sign = ""
    if stripped[:1] in "+-" and stripped[:1]:
        sign, stripped = ("-" if stripped[0] == "-" else ""), stripped[1:]
    digits = ""
    for char in stripped:
        if not char.isascii() or not char.isdigit():
            break
        digits += char
    if not digits:
        return "NaN"
    value = int(digits)
    if value == 0:
        return "0"  # parseInt("-0") is -0, which String() writes as "0"
    if value > MAX_SAFE_INTEGER:
        return sign + _js_number_text(float(value))
    return f"{sign}{value}"


def _js_number_text(value: float) -> str:
    """How JavaScript writes a large float (enough for :func:`_js_parse_int`)."""
    if value < 1e21:
        return str(int(value))
    mantissa, exponent = f"{value:.17g}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e+{int(exponent)}"


def _check_priority(priority: int | None) -> None:
    if priority is not None and priority > MAX_PRIORITY:
        raise InvalidOptionsError(
            f"priority: must be between 0 and {MAX_PRIORITY} in BullMQ mode, got {priority!r}"
        )


def _retention(value: Retention) -> Any:
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


def dedup_to_wire(dedup: Dedup) -> dict[str, Any]:
    """``opts.de``: BullMQ's ``deduplication`` option, set fields only."""
    out: dict[str, Any] = {"id": dedup.id}
    if dedup.ttl is not None:
        out["ttl"] = dedup.ttl
    for name, flag in (("extend", dedup.extend), ("replace", dedup.replace),
                       ("keepLastIfActive", dedup.keep_last_if_active),
                       ("reschedule", dedup.reschedule)):
        if flag:
            out[name] = True
    return out


def options_to_wire(
    opts: JobOptions,
    *,
    dedup: Dedup | None = None,
    parent: ParentRef | None = None,
    jitter: float | None = None,
    keep_logs: int | None = None,
) -> dict[str, Any]:
    """The ``opts`` object Node's ``Queue.add`` stores for these options.

    BullMQ writes ``attempts`` (0 unless set) and only the options given;
    ``timestamp`` and ``delay`` are job fields, written to ``opts`` only
    when set. ``debounce`` becomes ``deduplication`` ({id, ttl}) unless
    ``dedup`` gives the full form.

    Raises:
        InvalidOptionsError: an option BullMQ does not have (``timeout``,
            ``prevent_parsing_data``, ``repeat``: job schedulers replace it),
            or a priority above :data:`MAX_PRIORITY`.
    """
    for name in ("timeout", "prevent_parsing_data", "repeat"):
        if getattr(opts, name) is not None:
            what = {"timeout": "BullMQ has no job timeout",
                    "prevent_parsing_data": "BullMQ has no preventParsingData",
                    "repeat": "use a job scheduler in BullMQ mode"}[name]
            raise InvalidOptionsError(f"{name}: {what}")
    _check_priority(opts.priority)
    if jitter is not None and not (isinstance(jitter, int | float) and 0 <= jitter <= 1):
        raise InvalidOptionsError(f"backoff.jitter: must be between 0 and 1, got {jitter!r}")
    out: dict[str, Any] = {"attempts": opts.attempts if opts.attempts is not None else 0}
    for key, value in opts.extra.items():
        out[_LONG.get(key, key)] = value
    if opts.job_id is not None:
        out["jobId"] = check_job_id(opts.job_id)
    if opts.backoff is not None:
        out["backoff"] = _backoff_to_wire(opts.backoff, jitter)
    if opts.delay is not None:
        out["delay"] = _number(opts.delay)
    if opts.priority is not None:
        out["priority"] = opts.priority
    if opts.lifo is not None:
        out["lifo"] = opts.lifo
    if opts.remove_on_complete is not None:
        out["removeOnComplete"] = _retention(opts.remove_on_complete)
    if opts.remove_on_fail is not None:
        out["removeOnFail"] = _retention(opts.remove_on_fail)
    if opts.stack_trace_limit is not None:
        out["stackTraceLimit"] = opts.stack_trace_limit
    if opts.timestamp is not None:
        out["timestamp"] = opts.timestamp
    if keep_logs is not None:
        out["kl"] = keep_logs
    if dedup is not None:
        out["de"] = dedup_to_wire(dedup)
    elif opts.debounce is not None:
        out["de"] = dedup_to_wire(Dedup(id=opts.debounce.id, ttl=opts.debounce.ttl))
    if parent is not None:
        out["parent"] = {"id": parent.id, "queue": parent.queue}
        if parent.on_failure is not None:
            out[FAILURE_FLAGS[parent.on_failure]] = True
    return out


def parent_to_wire(parent: ParentRef) -> str:
    """A child's ``parent`` field: ``{id, queueKey}`` and its failure flag, as JSON."""
    out: dict[str, Any] = {"id": parent.id, "queueKey": parent.queue}
    if parent.on_failure is not None:
        out[FAILURE_FLAGS[parent.on_failure]] = True
    return dumps(out)


def _backoff_to_wire(backoff: Backoff, jitter: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": backoff.type}
    if backoff.delay is not None:
        out["delay"] = _number(backoff.delay)
    if jitter:
        out["jitter"] = jitter
    if backoff.options is not None:
        out["options"] = dict(backoff.options)
    return out


def public_options(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored ``opts`` with BullMQ's public names, as Node's ``job.opts`` shows them."""
    out: dict[str, Any] = {}
    for key, value in stored.items():
        if key == "tm":
            out["telemetry"] = {**out.get("telemetry", {}), "metadata": value}
        elif key == "omc":
            out["telemetry"] = {**out.get("telemetry", {}), "omitContext": value}
        else:
            out[_SHORT.get(key, key)] = value
    return out


def keep_spec(value: Any) -> Keep:
    """``removeOnComplete`` / ``removeOnFail`` as ``(count, age, limit)``, BullMQ's reading.

    ``count`` -1 keeps all and 0 deletes the job; ``age`` is seconds (None: no
    age limit); ``limit`` caps the jobs removed by age in one finish.
    Unusable values keep the job, as Node's ``getKeepJobs`` does for them.
    """
    if value is True:
        return Keep(0, None, None)
    if value is None or value is False:
        return Keep(-1, None, None)
    if isinstance(value, KeepJobs):
        return Keep(-1 if value.count is None else value.count, value.age, None)
    if isinstance(value, int | float) and math.isfinite(value):
        return Keep(int(value), None, None)
    if isinstance(value, Mapping):
        count = _int_or(value.get("count"), -1)
        return Keep(-1 if count is None else count, _int_or(value.get("age"), None),
                    _int_or(value.get("limit"), None))
    return Keep(-1, None, None)


def _int_or(value: Any, default: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return int(value)


@dataclass(slots=True)
class BullMQRecord(JobRecord):
    """A decoded BullMQ job hash: Bull mode's fields, plus what only BullMQ keeps.

    ``raw_opts`` holds the options by their public names (:func:`public_options`).
    """

    attempts_started: int = 0
    deferred_failure: str | None = None
    parent_key: str | None = None
    parent: dict[str, Any] | None = None
    repeat_job_key: str | None = None
    processed_by: str | None = None


def _int(value: bytes | None, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(float(value))  # "1.5", as JavaScript may write a number
    except (ValueError, OverflowError):
        return default


def decode_job(job_id: str, raw: Mapping[bytes, bytes]) -> BullMQRecord:
    """Decode a job hash written by Node BullMQ or by this mode's scripts.

    Never raises for bad content, as :func:`pyqueue._protocol.bull.wire.decode_job`:
    unusable fields read as Node reads them, and data that is not JSON is
    kept as text with ``data_error`` set so that the worker fails that job alone.
    """
    get = raw.get
    stored = _json_field(get(b"opts"), {})
    raw_opts = public_options(stored) if isinstance(stored, dict) else {}
    data_bytes = get(b"data")
    data: Any = {}
    data_error: str | None = None
    if data_bytes is not None:
        try:
            data = loads(data_bytes.decode())
        except (ValueError, RecursionError) as exc:
            data = _text(data_bytes)
            data_error = f"job data is not valid JSON ({exc})"
    stack = _json_field(get(b"stacktrace"), [])
    return_bytes = get(b"returnvalue")
    parent = _json_field(get(b"parent"), None)
    name = get(b"name")
    attempts_made = _int(get(b"atm"), None)
    if attempts_made is None:  # BullMQ 4 wrote attemptsMade
        attempts_made = _int(get(b"attemptsMade"), 0)
    return BullMQRecord(
        id=job_id,
        name="" if name is None else name.decode("utf-8", "replace"),
        data=data,
        raw_opts=raw_opts,
        timestamp=_int(get(b"timestamp"), 0) or 0,
        delay=_int(get(b"delay"), 0) or 0,
        priority=_int(get(b"priority"), 0) or 0,
        progress=_json_field(get(b"progress"), 0),
        attempts_made=attempts_made or 0,
        stalled_counter=_int(get(b"stc"), 0) or 0,
        failed_reason=_text(get(b"failedReason")),
        stacktrace=[str(s) for s in stack] if isinstance(stack, list) else [],
        return_value=None if return_bytes is None else _json_field(return_bytes),
        finished_on=_int(get(b"finishedOn"), None) or None,
        processed_on=_int(get(b"processedOn"), None) or None,
        retried_on=None,
        data_error=data_error,
        debounce_id=_text(get(b"deid")),
        attempts_started=_int(get(b"ats"), 0) or 0,
        deferred_failure=_text(get(b"defa")),
        parent_key=_text(get(b"parentKey")),
        parent=parent if isinstance(parent, dict) else None,
        repeat_job_key=_text(get(b"rjk")),
        processed_by=_text(get(b"pb")),
    )


def job_to_json(record: BullMQRecord) -> dict[str, Any]:
    """The shape of Node BullMQ's ``Job#toJSON()`` fields, for UIs and debugging."""
    out: dict[str, Any] = {
        "id": record.id, "name": record.name, "data": record.data, "opts": record.raw_opts,
        "progress": record.progress, "delay": record.delay, "priority": record.priority,
        "timestamp": record.timestamp, "attemptsMade": record.attempts_made,
        "attemptsStarted": record.attempts_started, "stalledCounter": record.stalled_counter,
        "failedReason": record.failed_reason, "stacktrace": record.stacktrace,
        "returnvalue": record.return_value, "finishedOn": record.finished_on,
        "processedOn": record.processed_on,
    }
    optional = {
        "repeatJobKey": record.repeat_job_key, "deduplicationId": record.debounce_id,
        "parentKey": record.parent_key, "parent": record.parent,
        "processedBy": record.processed_by, "deferredFailure": record.deferred_failure,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out
