"""Durations as pyqueue takes them: a number in the parameter's own unit, or a ``timedelta``.

The unit rule (the README's "Time units" table): a setting Bull has keeps Bull's name and
unit, milliseconds (``lock_duration``, ``delay``, ``timeout``...) except ``drain_delay``
and ``KeepJobs.age``, which Bull takes in seconds; what pyqueue adds is in seconds, as
asyncio's timeouts are (``shutdown_grace``, every ``timeout=`` of a wait). A ``timedelta``
is accepted wherever a duration is, so code need not know the unit at all; it is turned
into the parameter's unit here, once, and the wire keeps Bull's names and units.

Errors name the parameter and its unit: ``shutdown_grace: must be a number of seconds
or a timedelta, got 'x'``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TypeAlias

from pyqueue.errors import InvalidOptionsError

# What a duration parameter accepts; the unit is the parameter's own.
Duration: TypeAlias = int | float | timedelta

# Node reads every option as a JavaScript number: past Number.MAX_SAFE_INTEGER an
# integer is no longer what was written.
MAX_SAFE_INTEGER = 2**53 - 1


def _shown(value: object) -> str:
    # A 400-digit integer in an error message helps nobody.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def _number(name: str, value: object, unit: str) -> float | int:
    if isinstance(value, timedelta):
        scale = 1000 if unit == "ms" else 1
        # Exact for whole milliseconds (float division of microseconds would not be).
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        whole, rest = divmod(micros * scale, 1_000_000)
        return whole if rest == 0 else micros * scale / 1_000_000
    if isinstance(value, bool) or not isinstance(value, int | float):
        words = "milliseconds" if unit == "ms" else "seconds"
        raise InvalidOptionsError(
            f"{name}: must be a number of {words} or a timedelta, got {_shown(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidOptionsError(f"{name}: must be a finite number, got {value!r}")
    return value


def _check_range(name: str, value: float | int, unit: str, minimum: float | int,
                 given: object) -> None:
    if value < minimum:
        raise InvalidOptionsError(f"{name}: must be >= {minimum} {unit}, got {_shown(given)}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise InvalidOptionsError(
            f"{name}: must be at most {MAX_SAFE_INTEGER} {unit} (the largest integer a "
            f"JavaScript number holds exactly; Node reads it), got {_shown(given)}"
        )


def ms(name: str, value: object, *, minimum: int = 0) -> int | float:
    """``value`` (ms, or a timedelta) as a number of milliseconds >= ``minimum``.

    Raises:
        InvalidOptionsError: not a finite number or timedelta, or out of range.
    """
    number = _number(name, value, "ms")
    _check_range(name, number, "ms", minimum, value)
    return number


def whole_ms(name: str, value: object, *, minimum: int = 0) -> int:
    """:func:`ms` for a setting Bull reads as an integer (a lock duration, a timeout).

    Raises:
        InvalidOptionsError: as :func:`ms`, or not a whole number of milliseconds.
    """
    number = ms(name, value, minimum=minimum)
    if isinstance(number, float):
        raise InvalidOptionsError(
            f"{name}: must be a whole number of milliseconds, got {_shown(value)}"
        )
    return number


def whole_seconds(name: str, value: object, *, minimum: int = 0) -> int:
    """``value`` (seconds, or a timedelta) as whole seconds (Bull's ``age``).

    Raises:
        InvalidOptionsError: not an int or a timedelta of whole seconds, or out of range.
    """
    number = _number(name, value, "s")
    if isinstance(number, float):
        raise InvalidOptionsError(f"{name}: must be whole seconds, got {_shown(value)}")
    _check_range(name, number, "s", minimum, value)
    return number


def seconds(name: str, value: object, *, minimum: float = 0) -> float:
    """``value`` (seconds, or a timedelta) as float seconds >= ``minimum``.

    Raises:
        InvalidOptionsError: not a finite number or timedelta, or below ``minimum``.
    """
    number = float(_number(name, value, "s"))
    if number < minimum:
        raise InvalidOptionsError(f"{name}: must be >= {minimum:g} s, got {_shown(value)}")
    return number


def timeout(value: float | timedelta | None, name: str = "timeout") -> float | None:
    """A wait's ``timeout`` (seconds, a timedelta, or None for none) as seconds or None."""
    return None if value is None else seconds(name, value)


def finite_int(value: object) -> int | None:
    """A JSON number read from another client as an int, capped to JavaScript's exact
    integers; None for anything else, Infinity and NaN (``1e400`` in JSON) included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return max(-MAX_SAFE_INTEGER, min(int(value), MAX_SAFE_INTEGER))


def check_safe(name: str, value: int | float) -> None:
    """Raise unless ``abs(value)`` is within what JavaScript holds exactly."""
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return
    raise InvalidOptionsError(
        f"{name}: must be at most {MAX_SAFE_INTEGER} in size (the largest integer a "
        f"JavaScript number holds exactly; Node reads it), got {_shown(value)}"
    )


def fail(field_name: str, message: str, value: object) -> InvalidOptionsError:
    """The error for a bad option: ``<field>: <message>, got <value>``."""
    return InvalidOptionsError(f"{field_name}: {message}, got {_shown(value)}")


def check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    """Raise unless ``value`` is an int (not a bool) >= ``minimum`` that Node reads exactly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(name, "must be an integer", value)
    if minimum is not None and value < minimum:
        raise fail(name, f"must be >= {minimum}", value)
    check_safe(name, value)
