"""Payload checks before a job's JSON is written: what JSON would garble or a reader refuse.

``json.dumps`` accepts three things a queue must not store:

* nesting deeper than a reader can parse: Python's own decoder (a pyqueue worker's)
  stops at its recursion limit, so such a job could never be processed;
* a lone surrogate (``"\\ud800"``), which UTF-8 cannot encode: Redis gets bytes, so the
  add would fail half way with a ``UnicodeEncodeError``;
* keys that collide once turned into strings (``{1: "a", "1": "b"}`` is written as
  ``{"1":"a","1":"b"}``), which every reader collapses to one of them.

Each is refused with an :class:`~pyqueue.errors.InvalidOptionsError` naming the place in
the payload (``data.user.name``). The checks are shared by every wire format.
"""

from __future__ import annotations

import json
from typing import Any

from pyqueue.errors import InvalidOptionsError

# Deep enough for any real payload, shallow enough for Python's decoder at the default
# recursion limit (1000), whatever the stack depth of the worker decoding it.
MAX_DEPTH = 500

_CONTAINERS = (dict, list, tuple)


class _Bad(Exception):
    """Where a check failed (the path is built on the way out) and why."""

    def __init__(self, reason: str, *, locate: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        # Innermost first, as the walk unwinds; a depth error's path would be
        # hundreds of [0]s, so it names the payload only.
        self.path: list[object] = []
        self.locate = locate


def check_value(value: Any, field: str = "data") -> None:
    """Refuse ``value`` if it is nested too deeply or has keys that collide as JSON.

    Raises:
        InvalidOptionsError: naming the place, e.g. ``data.items[3]: ...``.
    """
    if not isinstance(value, _CONTAINERS):
        return
    try:
        _walk(value, 1)
    except _Bad as bad:
        where = _path(field, bad.path[::-1]) if bad.locate else field
        raise InvalidOptionsError(f"{where}: {bad.reason}") from None


def check_text(text: str, value: Any, field: str = "data") -> None:
    """Refuse JSON ``text`` (the encoding of ``value``) that UTF-8 cannot encode.

    Raises:
        InvalidOptionsError: naming the string that holds a lone surrogate.
    """
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = _find_surrogate(value, [])
        code = f"U+{ord(exc.object[exc.start]):04X}"
        raise InvalidOptionsError(
            f"{_path(field, where or [])}: contains a lone surrogate ({code}), which UTF-8 "
            "cannot encode (decode text with errors='replace' or 'surrogatepass' first)"
        ) from None


def _walk(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Bad(f"nested more than {MAX_DEPTH} levels deep", locate=False)
    if isinstance(value, dict):
        plain = True
        for key, item in value.items():
            if type(key) is not str:
                plain = False
            if isinstance(item, _CONTAINERS):
                try:
                    _walk(item, depth + 1)
                except _Bad as bad:
                    bad.path.append(key)
                    raise
        if not plain:
            _check_keys(value)
        return
    for index, item in enumerate(value):
        if isinstance(item, _CONTAINERS):
            try:
                _walk(item, depth + 1)
            except _Bad as bad:
                bad.path.append(index)
                raise


def _json_key(key: object) -> str | None:
    """The key as JSON writes it (``1`` -> ``"1"``, ``True`` -> ``"true"``)."""
    if isinstance(key, str):
        return key
    try:
        return json.dumps(key)
    except (TypeError, ValueError):
        return None  # json.dumps of the payload names this key itself


def _check_keys(value: dict[Any, Any]) -> None:
    seen: set[str] = set()
    for key in value:
        text = _json_key(key)
        if text is None:
            continue
        if text in seen:
            raise _Bad(
                f"has the key {text!r} twice once written as JSON, whose keys are "
                f"strings (from {key!r} and another key); the reader would keep only one"
            )
        seen.add(text)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= ch <= "\udfff" for ch in text)


def _find_surrogate(value: Any, path: list[object]) -> list[object] | None:
    """The path of the first string (key or value) holding a lone surrogate."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _has_surrogate(key):
                return [*path, key]
            found = _find_surrogate(item, [*path, key])
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_surrogate(item, [*path, index])
            if found is not None:
                return found
    return None


def _path(field: str, parts: list[object]) -> str:
    """``data.user.tags[2]``; ``parts`` innermost first when built by :func:`_walk`."""
    out = field
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out
