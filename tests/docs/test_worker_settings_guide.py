"""docs/guides/worker-settings.md type-checks under ``mypy --strict`` as one program.

Its Python blocks continue each other (``test="continue"``); tests/docs/test_doc_examples.py
runs them as written, and this checks that the typed API it shows is typed as it says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "worker-settings.md"
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _program() -> str:
    blocks = _BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 4, "the guide's Python blocks were not found"
    return "\n\n".join(blocks)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "shop_jobs.py"
    path.write_text(_program())
    return path


def test_the_guide_type_checks(program: Path, tmp_path: Path) -> None:
    out, err, status = api.run([
        "--strict", "--no-error-summary", "--python-version", "3.11", "--config-file", "",
        "--cache-dir", str(tmp_path / "mypy-cache"), str(program),
    ])
    assert status == 0, out + err
