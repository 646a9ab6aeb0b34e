"""Stack-trace trimming follows Bull 4.15+ (``slice(-stackTraceLimit)``)."""

from __future__ import annotations

import pytest

from pyqueue._engine.processing import trimmed_stacktrace


@pytest.mark.parametrize(
    ("limit", "kept"),
    [
        (None, ["a", "b", "c", "new"]),
        (0, ["a", "b", "c", "new"]),  # 0 is falsy in JavaScript: no trimming
        (1, ["new"]),
        (2, ["c", "new"]),
        (10, ["a", "b", "c", "new"]),
    ],
)
def test_keeps_the_newest_limit_traces(limit: int | None, kept: list[str]) -> None:
    assert trimmed_stacktrace(["a", "b", "c"], "new", limit) == kept
