"""A queue's whole Redis state, normalised so two runs of one scenario compare equal.

:func:`snapshot` reads every key under ``<prefix>:<queue>:`` and returns a
plain structure keyed by the key's suffix. What legitimately differs between
two runs (wall-clock times, stream entry ids, the order in which a Lua table
became JSON) is normalised: JSON fields are parsed, time fields become
``"<time>"``, and scores that embed a time keep only the part that does not
(the order of delayed jobs, a marker's member). The scenario's own
numbers (counters, priorities, attempts, delays) are kept exact, so a
difference in what a script wrote still shows.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

_TIME_FIELDS = {"timestamp", "processedOn", "finishedOn", "prevTS"}
_JSON_FIELDS = {"opts", "data", "parent", "returnvalue", "stacktrace", "progress"}
# Sorted sets scored by a time (ms), or by due * 4096 + sequence.
_TIME_SCORED = {"completed", "failed", "waiting-children", "repeat"}
TIME = "<time>"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _hash(raw: dict[bytes, bytes], *, suffix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        field, value = _text(k), _text(v)
        if field in _TIME_FIELDS:
            out[field] = TIME
        elif field in _JSON_FIELDS:
            parsed = _json(value)
            if field == "stacktrace" and isinstance(parsed, list):
                parsed = [str(s).split("\n", 1)[0] for s in parsed]  # first line: the message
            out[field] = parsed
        elif suffix.endswith(":processed"):
            out[field] = _json(value)
        else:
            out[field] = value
    return out


def _zset(entries: list[tuple[bytes, float]], suffix: str) -> list[Any]:
    if suffix in _TIME_SCORED or suffix.endswith(":unsuccessful"):
        return sorted(_text(m) for m, _ in entries)
    if suffix == "delayed":
        # due * 4096 + sequence: both depend on the clock (two adds in one ms
        # get sequence 0 and 1, in two ms 0 and 0); the order does not.
        return [_text(m) for m, _ in entries]
    if suffix == "marker":
        return sorted((_text(m), 0 if _text(m) == "0" else TIME) for m, _ in entries)
    return [(_text(m), int(s)) for m, s in entries]


def _stream_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in fields.items():
        field, value = _text(k), _text(v)
        if field == "delay" and _text(fields.get(b"event", b"")) == "delayed":
            out[field] = TIME  # the due time
        elif field in ("returnvalue", "data"):
            out[field] = _json(value)
        else:
            out[field] = value
    return out


async def snapshot(client: aioredis.Redis, base: str, *, skip: tuple[str, ...] = ()) -> dict[
    str, Any
]:
    """Every key of the queue ``base`` (``"bull:q:"``), normalised; ``skip`` names suffixes
    to leave out (``"events"``, say, when a scenario's event order may legitimately vary)."""
    out: dict[str, Any] = {}
    keys = sorted([_text(k) async for k in client.scan_iter(match=base + "*", count=1000)])
    for key in keys:
        suffix = key[len(base):]
        if suffix in skip:
            continue
        kind = _text(await client.type(key))
        if kind == "hash":
            value: Any = _hash(await client.hgetall(key), suffix=suffix)
        elif kind == "list":
            value = [_text(v) for v in await client.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(_text(v) for v in await client.smembers(key))
        elif kind == "zset":
            value = _zset(await client.zrange(key, 0, -1, withscores=True), suffix)
        elif kind == "stream":
            value = [_stream_entry(f) for _, f in await client.xrange(key)]
        else:
            raw = await client.get(key)
            value = None if raw is None else _text(raw)
            if suffix in ("stalled-check", "limiter"):
                value = "<set>"
        ttl = await client.pttl(key)
        out[suffix] = {"type": kind, "value": value, "expires": ttl > 0}
    return out
