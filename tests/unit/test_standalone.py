"""The repository stands alone: its self-check catches what it must, and imports need no install."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _check_repo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_repo", ROOT / "scripts" / "check_repo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Built from parts so this file does not trip the check it tests.
SIBLING = ".." + "/shared"
HERE = "Path(__file__)"


def test_check_repo_passes_on_this_tree() -> None:
    script = str(ROOT / "scripts" / "check_repo.py")
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_check_repo_flags_paths_outside_the_root() -> None:
    check = _check_repo()
    assert check.problems_in("README.md", f"see `{SIBLING}/bull-protocol.md`")
    assert check.problems_in(
        "tests/unit/t.py", HERE + ".resolve().parents[2]" + '.parent / "x.json"'
    )
    assert check.problems_in("tests/unit/t.py", HERE + ".parent.parent.parent.parent")
    assert check.problems_in("scripts/x.sh", 'cat "../../etc/passwd"')


def test_check_repo_allows_paths_inside_the_root() -> None:
    check = _check_repo()
    assert not check.problems_in("tests/unit/t.py", HERE + '.resolve().parents[1] / "d"')
    assert not check.problems_in("tests/unit/t.py", HERE + ".parent.parent.parent")
    assert not check.problems_in("tests/interop/node/x.js", "require('../bull.js')")
    assert not check.problems_in("docs/x.md", "the steering repo's shared folder")


def test_import_without_package_metadata_falls_back() -> None:
    code = (
        "import importlib.metadata as m\n"
        "def missing(name):\n"
        "    raise m.PackageNotFoundError(name)\n"
        "m.version = missing\n"
        "import pyqueue\n"
        "print(pyqueue.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.0.0+unknown"
