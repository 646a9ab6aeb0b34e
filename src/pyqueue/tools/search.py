"""Server-side job search: filters run in Redis (one Lua call per slice), a cursor pages on.

A search walks the queue's state structures in a fixed order (or just the one
``state``), a slice at a time. Redis examines each slice's job hashes with
``searchJobs-1.lua`` and returns only the ids that match, so Python only ever
holds one slice's matches, never the queue. The cursor is ``"<state>.<offset>"``;
``"0"`` starts a search and means "done" when returned.

Each structure is read from its newest end (lists from the head, sorted sets by
descending score), because workers and cleaners take from the other end: a job
that stays in its state during the search is not skipped, though one that moves
into a state already walked is not seen, and a job inserted ahead of the cursor
can be returned twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from pyqueue import InvalidOptionsError, Job, Queue

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

# The order a search without ``state`` walks: the jobs an operator looks for
# first (failed, then what is still to run) before the long completed tail.
SEARCH_STATES: Final = ("failed", "waiting", "paused", "delayed", "active", "completed")
_LIST_STATES: Final = frozenset({"waiting", "paused", "active"})
# A BullMQ queue's own sorted sets, walked after the others (so Bull cursors keep
# their meaning); asked of a Bull queue, they are an error.
BULLMQ_SEARCH_STATES: Final = ("prioritized", "waiting-children")
ALL_SEARCH_STATES: Final = (*SEARCH_STATES, *BULLMQ_SEARCH_STATES)
_CURSOR = re.compile(r"^(\d+)\.(\d+)$")
_SEGMENT = re.compile(r"\[(\d+)\]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Entries examined per Lua call: large enough to amortise the round trip, small
# enough that one call keeps Redis busy for a millisecond or two, not longer.
SLICE = 1000


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results.

    Attributes:
        jobs: The matching jobs of this page, in walk order.
        cursor: Pass it back for the next page; ``"0"`` when the search is done.
        examined: How many entries Redis looked at for this page.
        states: The state each job was found in (``waiting``, ``failed``...),
            parallel to ``jobs``.
    """

    jobs: list[Job[Any]]
    cursor: str
    examined: int = 0
    states: list[str] = field(default_factory=list)


def _lower(text: str) -> str:
    # ASCII only, as Lua's string.lower: both sides must fold the same letters.
    return text.translate(_ASCII_LOWER)


def parse_path(path: str) -> list[str]:
    """``a.b[0].c``, ``$.a.b.0.c`` or ``a.b.0.c`` -> ``["a", "b", "0", "c"]``.

    Raises:
        InvalidOptionsError: an empty path or an empty segment.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    text = _SEGMENT.sub(r".\1", text)
    parts = text.split(".")
    if not text or any(not p for p in parts):
        raise InvalidOptionsError(f"data_path: not a dotted path like 'a.b.0', got {path!r}")
    return parts


def _parse_cursor(cursor: str, states: tuple[str, ...]) -> tuple[int, int]:
    if cursor == "0":
        return 0, 0
    found = _CURSOR.match(cursor) if isinstance(cursor, str) else None
    if found is None or int(found.group(1)) >= len(states):
        raise InvalidOptionsError(f"cursor: not a cursor this search returned, got {cursor!r}")
    return int(found.group(1)), int(found.group(2))


def _script(queue: Queue[Any]) -> AsyncScript:
    # redis-py caches the SHA on the Script object and reloads on NOSCRIPT.
    cached: AsyncScript | None = getattr(queue, "_pyqueue_search_script", None)
    if cached is None:
        source = resources.files("pyqueue.tools").joinpath("lua/searchJobs-1.lua").read_text()
        cached = queue.client.register_script(source)
        # A plain attribute on the queue: one script object per client, no global state.
        queue._pyqueue_search_script = cached  # type: ignore[attr-defined]
    return cached


async def search_jobs(
    queue: Queue[Any],
    *,
    state: str | None = None,
    id: str | None = None,
    name: str | None = None,
    data_path: str | None = None,
    data_value: Any = None,
    text: str | None = None,
    failed_reason: str | None = None,
    cursor: str = "0",
    count: int = 50,
    max_examined: int = 100_000,
) -> SearchPage:
    """Find jobs of ``queue`` matching every given filter, without loading the queue.

    Args:
        state: Only this state (``waiting``, ``paused``, ``active``, ``delayed``,
            ``failed``, ``completed``); all of them by default.
        id: The job id, exactly (one lookup, no walk).
        name: The job name, exactly.
        data_path: A dotted path into the data (``user.id``, ``items[0].sku``);
            with ``data_value``, the value there must equal it (JSON equality: the
            string ``"42"`` does not equal the number ``42``), else the path must
            exist and not be null.
        text: A substring of the data's JSON text (ASCII case-insensitive).
        failed_reason: A substring of the failed reason (ASCII case-insensitive).
        cursor: ``"0"`` to start, else the cursor of the previous page.
        count: At most this many jobs per page.
        max_examined: Return after examining this many entries even with fewer
            than ``count`` matches (the cursor is then not ``"0"``), so one page
            never keeps the caller waiting on a huge queue with rare matches.

    Raises:
        InvalidOptionsError: a bad state, path, count or cursor.
    """
    walked = ALL_SEARCH_STATES if queue.format == "bullmq" else SEARCH_STATES
    if state is not None and state not in walked:
        if state in BULLMQ_SEARCH_STATES:
            raise InvalidOptionsError(f"state: {state!r} is for BullMQ queues only "
                                      f"({queue.name!r} is a Bull queue)")
        allowed = ", ".join(walked)
        raise InvalidOptionsError(f"state: must be one of {allowed}, got {state!r}")
    for label, number in (("count", count), ("max_examined", max_examined)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidOptionsError(f"{label}: must be an int >= 1, got {number!r}")
    has_value = data_value is not None
    if has_value and data_path is None:
        raise InvalidOptionsError("data_value: needs data_path (where in the data to compare)")
    segments = parse_path(data_path) if data_path is not None else []
    try:
        # Any JSON text will do: Lua decodes it and compares values, not spellings.
        value_json = (json.dumps(data_value, ensure_ascii=False, allow_nan=False)
                      if has_value else "")
    except (TypeError, ValueError) as exc:
        raise InvalidOptionsError(f"data_value: not JSON-serialisable ({exc})") from None
    filters = [
        name or "",
        _lower(text) if text else "",
        _lower(failed_reason) if failed_reason else "",
        "1" if data_path is not None else "0",
        value_json,
        str(len(segments)),
        *segments,
    ]
    states = (state,) if state is not None else walked
    index, offset = _parse_cursor(cursor, states)
    script = _script(queue)

    if id is not None:
        return await _search_id(queue, script, str(id), state, filters)

    ids: list[str] = []
    found_in: list[str] = []
    examined = 0
    while index < len(states) and len(ids) < count and examined < max_examined:
        current = states[index]
        key = queue.keys.wait if current == "waiting" else queue.keys.key(current)
        batch = min(SLICE, max_examined - examined)
        reply = await script(
            keys=[key],
            args=["list" if current in _LIST_STATES else "zset", queue.keys.base, offset,
                  batch, count - len(ids), *filters],
        )
        next_offset, seen = int(reply[0]), int(reply[1])
        examined += seen
        matched = [bytes(i).decode() for i in reply[2:]]
        ids.extend(matched)
        found_in.extend([current] * len(matched))
        if next_offset < 0:
            index, offset = index + 1, 0
        else:
            offset = next_offset
    next_cursor = "0" if index >= len(states) else f"{index}.{offset}"
    jobs, kept = await _load(queue, ids)
    return SearchPage(jobs, next_cursor, examined, [found_in[i] for i in kept])


async def _search_id(
    queue: Queue[Any], script: AsyncScript, job_id: str, state: str | None, filters: list[str]
) -> SearchPage:
    if state is not None and await queue.get_job_state(job_id) != state:
        return SearchPage([], "0", 1)
    reply = await script(keys=[queue.keys.wait], args=["ids", queue.keys.base, 0, 1, 1,
                                                       *filters, job_id])
    ids = [bytes(i).decode() for i in reply[2:]]
    jobs, _ = await _load(queue, ids)
    found: list[str] = [state or await queue.get_job_state(j.id) for j in jobs]
    return SearchPage(jobs, "0", 1, found)


async def _load(queue: Queue[Any], ids: list[str]) -> tuple[list[Job[Any]], list[int]]:
    """The jobs of ``ids`` still there, and the index in ``ids`` of each."""
    if not ids:
        return [], []
    async with queue.client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(queue.keys.job(job_id))
        raws = await pipe.execute()
    # A hash removed since the filter ran is dropped, as get_jobs does.
    kept = [i for i, raw in enumerate(raws) if raw]
    return [queue.job_from_raw(ids[i], raws[i]) for i in kept], kept
