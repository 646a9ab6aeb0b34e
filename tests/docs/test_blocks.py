"""The fence conventions of tests/docs/blocks.py, on small Markdown files made here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.docs.blocks import BlockError, chains, parse_settings


@pytest.fixture
def page(tmp_path: Path) -> Callable[[str], Path]:
    def make(text: str) -> Path:
        path = tmp_path / "page.md"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def test_settings_are_read_from_the_fence_line() -> None:
    assert parse_settings('python test="skip" reason="needs Node"') == (
        "python", {"test": "skip", "reason": "needs Node"})
    assert parse_settings("{.py test='continue'}") == ("py", {"test": "continue"})
    assert parse_settings("bash") == ("bash", {})


def test_continuations_join_the_previous_python_block(page: Callable[[str], Path]) -> None:
    path = page(
        "text\n\n```python\na = 1\n```\n\n```bash\necho hi\n```\n\n"
        '```python test="continue"\nprint(a)\n```\n\n```py\nb = 2\n```\n'
    )
    found = chains(path)
    assert [len(c.blocks) for c in found] == [2, 1]
    script = found[0].script()
    assert "a = 1\n" in script
    assert script.index("a = 1") < script.index("print(a)")
    # A traceback line of the joined script points back at the Markdown line.
    lines = script.splitlines()
    assert found[0].line_of(lines.index("print(a)") + 1).endswith(":12")


def test_indented_blocks_lose_their_indent_only(page: Callable[[str], Path]) -> None:
    path = page("- item\n\n    ```python\n    if True:\n        x = 1\n    ```\n")
    (chain,) = chains(path)
    assert chain.first.source == "if True:\n    x = 1\n"


@pytest.mark.parametrize(("fence", "message"), [
    ('```python test="skip"', "needs reason"),
    ('```python test="sometimes"', "is not one of"),
    ('```python test="continue"', "continues nothing"),
])
def test_fences_that_break_the_conventions_are_refused(
    page: Callable[[str], Path], fence: str, message: str
) -> None:
    path = page(f"{fence}\nx = 1\n```\n")
    with pytest.raises(BlockError, match=message):
        chains(path)
