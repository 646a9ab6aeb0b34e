"""A command whose extra is missing says so in one line and exits 2, never a traceback.

Each case runs in a subprocess whose import system hides the extra's module, as if it
were not installed (scripts/check_wheels also checks this in a venv that lacks them).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HIDE = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name in {hidden!r} or name.partition(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
sys.argv = {argv!r}
{run}
"""
PYQUEUE = "from pyqueue.tools.cli_entry import main; main()"


def run_hidden(hidden: set[str], argv: list[str], run: str) -> subprocess.CompletedProcess[str]:
    code = HIDE.format(hidden=hidden, argv=argv, run=run)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("hidden", "argv", "line"),
    [
        ({"click"}, ["pyqueue", "--help"],
         "pyqueue: the pyqueue command needs the cli extra: pip install 'pyqueue-bull[cli]'"),
        ({"rich"}, ["pyqueue", "queues"],
         "pyqueue: the pyqueue command needs the cli extra: pip install 'pyqueue-bull[cli]'"),
        ({"starlette"}, ["pyqueue", "dashboard"],
         "pyqueue: pyqueue dashboard needs the dashboard extra: "
         "pip install 'pyqueue-bull[dashboard]'"),
        ({"prometheus_client"}, ["pyqueue", "exporter"],
         "pyqueue: pyqueue exporter needs the metrics extra: pip install 'pyqueue-bull[metrics]'"),
        ({"prometheus_client"}, ["pyqueue", "worker", "any.module:settings", "--metrics-port", "1"],
         "pyqueue: pyqueue worker --metrics-port needs the metrics extra: "
         "pip install 'pyqueue-bull[metrics]'"),
    ],
)
def test_pyqueue_names_the_missing_extra(hidden: set[str], argv: list[str], line: str) -> None:
    out = run_hidden(hidden, argv, PYQUEUE)
    assert (out.returncode, out.stderr.strip()) == (2, line)


def test_bookwish_worker_names_a_missing_driver() -> None:
    out = run_hidden({"sqlalchemy"}, ["bookwish-worker"],
                     "from bookwish_jobs.console import main; sys.exit(main())")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "bookwish-worker: the job service needs sqlalchemy, a dependency of bookwish-jobs: "
        "pip install 'bookwish-jobs'"
    )


def test_a_broken_extra_is_not_reported_as_missing() -> None:
    # click is installed but one of its own imports fails: show that real error.
    out = run_hidden({"click.core"}, ["pyqueue", "--help"], PYQUEUE)
    assert out.returncode == 1
    assert "No module named 'click.core'" in out.stderr
