"""The copyable example test runs the way its docstring and the testing guide say."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.docs.blocks import ROOT


def test_example_test_runs_from_the_root_without_pytest_timeout() -> None:
    # Issue 26: from the repository root it picked up the repository's own pytest
    # settings, whose `timeout` fails without pytest-timeout. `-p no:timeout` stands for
    # a machine without that plugin; examples/pytest.ini must make it unnecessary.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:timeout", "-p", "no:cacheprovider",
         "examples/test_with_pyqueue.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
