"""docs/guides/worker-settings.md runs as written, and type-checks under ``mypy --strict``.

Its Python blocks are one program, each continuing the ones before it (the page says
so); they read ``REDIS_URL`` from the environment, here a redis-server of this test's
own (the page's queues have fixed names, so they must not meet other tests' jobs).
Shell blocks are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api

from pyqueue.embedded import RedisServer

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "worker-settings.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _program() -> str:
    blocks = _BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 4, "the guide's Python blocks were not found"
    return "\n\n".join(blocks)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "shop_jobs.py"
    path.write_text(_program())
    return path


def test_the_guide_runs_as_written(program: Path) -> None:
    with RedisServer() as server:
        done = subprocess.run(
            [sys.executable, str(program)], capture_output=True, text=True, timeout=120,
            cwd=program.parent, env={**os.environ, "REDIS_URL": server.url}, check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_guide_type_checks(program: Path, tmp_path: Path) -> None:
    out, err, status = api.run([
        "--strict", "--no-error-summary", "--python-version", "3.11", "--config-file", "",
        "--cache-dir", str(tmp_path / "mypy-cache"), str(program),
    ])
    assert status == 0, out + err
