"""The public API's types, pinned: ``mypy --strict`` over ``tests/typing/cases/``.

``good.py`` must type-check, and its ``assert_type`` calls pin what mypy infers (a
``Worker`` typed from its handler, a queue typed from its entry). ``bad.py`` must not:
every line ending in ``# E: <text>`` must get an error containing that text, and no
other line may get one. No ``type: ignore`` anywhere: an expected error is a comment
this runner reads, so a signature that silently went back to ``Any`` fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).resolve().parent / "cases"
_EXPECT = re.compile(r"#\s*E:\s*(.+?)\s*$")
_REPORTED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], list[str]]:
    """Every error mypy --strict reports on the cases, by (file name, line)."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    out, err, _ = api.run([
        "--strict", "--no-error-summary", "--show-error-codes", "--python-version", "3.11",
        "--config-file", "", "--cache-dir", str(cache), "--hide-error-context",
        *sorted(str(p) for p in CASES.glob("*.py")),
    ])
    found: dict[tuple[str, int], list[str]] = {}
    for line in (out + err).splitlines():
        match = _REPORTED.match(line)
        if match:
            key = (Path(match["file"]).name, int(match["line"]))
            found.setdefault(key, []).append(match["message"])
        elif ": error:" in line:
            raise AssertionError(f"unparsed mypy line: {line}")
    return found


def _expected(name: str) -> dict[int, str]:
    lines = (CASES / name).read_text().splitlines()
    return {n: m[1] for n, text in enumerate(lines, 1) if (m := _EXPECT.search(text))}


def test_the_cases_carry_no_type_ignore() -> None:
    for path in CASES.glob("*.py"):
        assert "type: ignore" not in path.read_text(), path.name


def test_right_code_type_checks(mypy_errors: dict[tuple[str, int], list[str]]) -> None:
    assert _expected("good.py") == {}
    wrong = {line: msgs for (name, line), msgs in mypy_errors.items() if name == "good.py"}
    assert wrong == {}


def test_wrong_code_is_rejected_where_expected(
    mypy_errors: dict[tuple[str, int], list[str]],
) -> None:
    expected = _expected("bad.py")
    assert len(expected) >= 15
    reported = {line: msgs for (name, line), msgs in mypy_errors.items() if name == "bad.py"}
    missing = {
        line: (text, reported.get(line, []))
        for line, text in expected.items()
        if not any(text in message for message in reported.get(line, []))
    }
    unexpected = {line: msgs for line, msgs in reported.items() if line not in expected}
    assert missing == {}, f"expected errors not reported (line: (expected, got)): {missing}"
    assert unexpected == {}, f"errors on lines that expect none: {unexpected}"
