"""bookwish_jobs uses only pyqueue's public names; pyqueue never imports bookwish_jobs."""

from __future__ import annotations

import ast
from pathlib import Path

import bookwish_jobs
import pyqueue

# pyqueue.tools.cli_worker: `pyqueue worker`'s public shutdown_signals() (issue 18 item 1).
# pyqueue.loops: the event loop choice `pyqueue worker` makes (uvloop when installed).
ALLOWED = {"pyqueue", "pyqueue.embedded", "pyqueue.loops", "pyqueue.tools.metrics",
           "pyqueue.tools.cli_worker"}


def imports(package: Path) -> list[tuple[Path, str, list[str]]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path, alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module, [a.name for a in node.names]))
    return found


def test_bookwish_jobs_imports_only_public_pyqueue_names() -> None:
    root = Path(bookwish_jobs.__file__).parent
    used = [(p, m, n) for p, m, n in imports(root) if m.split(".")[0] == "pyqueue"]
    assert used, "bookwish_jobs should build on pyqueue"
    for path, module, names in used:
        assert module in ALLOWED, f"{path.name} imports {module}"
        if module == "pyqueue":
            private = [n for n in names if n not in pyqueue.__all__]
            assert not private, f"{path.name} imports non-public {private}"


def test_pyqueue_never_imports_bookwish_jobs() -> None:
    root = Path(pyqueue.__file__).parent
    assert not [m for _, m, _ in imports(root) if m.split(".")[0] == "bookwish_jobs"]
