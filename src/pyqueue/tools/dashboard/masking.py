"""Fields hidden from read-only viewers, named by JSON path.

A path is dotted, as search paths are (``customer.email``, ``items[0].card``),
and ``*`` (or ``[*]``) stands for every key of an object or every item of a
list: ``items[*].card``, ``*.email``. A masked value is replaced whole by
:data:`MASK`, whatever its type. Paths apply to a job's data and its return
value; free text (failed reasons, stack traces, log lines) cannot be masked
by path and is shown as the job wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MASK = "[masked]"
_INDEX = re.compile(r"\[(\d+|\*)\]")
_SEGMENT = re.compile(r"^[^.\[\]]+$")


def parse_mask(path: str) -> tuple[str, ...]:
    """``a.b[0].c`` or ``items[*].card`` -> its segments.

    Raises:
        ValueError: an empty path or segment, or stray brackets.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    text = _INDEX.sub(r".\1", text)
    parts = tuple(text.split("."))
    if not text or not all(_SEGMENT.match(p) for p in parts):
        raise ValueError(f"mask: not a path like 'customer.email' or 'items[*].card': {path!r}")
    return parts


def _mask(value: Any, path: Sequence[str]) -> Any:
    if not path:
        return MASK
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if head == "*":
            return {k: _mask(v, rest) for k, v in value.items()}
        if head in value:
            return {**value, head: _mask(value[head], rest)}
        return value
    if isinstance(value, list):
        if head == "*":
            return [_mask(v, rest) for v in value]
        if head.isdigit() and int(head) < len(value):
            copy = list(value)
            copy[int(head)] = _mask(copy[int(head)], rest)
            return copy
    return value


def mask(value: Any, paths: Sequence[tuple[str, ...]]) -> Any:
    """``value`` with every path replaced by :data:`MASK` (a copy; the input is untouched)."""
    for path in paths:
        value = _mask(value, path)
    return value


def covers(paths: Sequence[tuple[str, ...]], search_path: Sequence[str]) -> bool:
    """Whether searching at ``search_path`` could reveal a masked value.

    True when a masked path and the searched one agree on their common
    segments (``*`` matching any): ``customer`` reveals ``customer.email``,
    and ``customer.email`` is ``*.email``.
    """
    for path in paths:
        common = min(len(path), len(search_path))
        if all(a in ("*", b) for a, b in zip(path[:common], search_path[:common], strict=True)):
            return True
    return False
