"""Checks that the repository stands alone; run by .ci/run before anything is installed.

Fails (exit 1, one line per problem) when
  * a tracked file matches .gitignore: a clone would get something a machine built;
  * a tracked test, script, benchmark, doc or the README points outside the repository root:
    at the steering repo's ``shared/`` folder, or through ``Path(__file__)`` parents or a
    relative ``../`` path that climbs above the root.
Standard library only, so it runs before the venv exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED_SUFFIXES = {".py", ".sh", ".js", ".md", ".toml", ".cfg", ".ini", ".txt", ".yml", ""}
# Only code and prose are checked: data files may quote anything.
SKIPPED_DIRS = ("tests/data/", "benchmarks/results/")
SHARED = re.compile(r"(\.\./)+shared\b|[\"']shared[\"']\s*/|/\s*[\"']shared[\"']")
PARENTS = re.compile(
    r"Path\(__file__\)(?:\.resolve\(\))?"
    r"((?:\.parent\b)+|\.parents\[(\d+)\])((?:\.parent\b)*)"
)
DOTDOT = re.compile(r"""["'`(\s]((?:\.\./)+)[\w.-]""")


def _git(*args: str) -> list[str]:
    out = subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line]


def _levels_up(match: re.Match[str]) -> int:
    """How many directories above the file's own folder a ``Path(__file__)`` expression reaches."""
    head, index, tail = match.group(1), match.group(2), match.group(3)
    up = int(index) + 1 if index is not None else head.count(".parent")
    return up + tail.count(".parent") - 1


def problems_in(rel: str, text: str) -> list[str]:
    found: list[str] = []
    depth = rel.count("/")  # folders between the root and this file
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{lineno}"
        if SHARED.search(line):
            found.append(f"{where}: refers to the shared/ folder outside the repository")
        for match in PARENTS.finditer(line):
            if _levels_up(match) > depth:
                found.append(f"{where}: Path(__file__) climbs above the repository root")
        for match in DOTDOT.finditer(line):
            if match.group(1).count("../") > depth:
                shown = match.group(0).strip()
                found.append(f"{where}: relative path {shown!r} leaves the repository")
    return found


def main() -> int:
    problems: list[str] = []
    ignored = _git("ls-files", "-ci", "--exclude-standard")
    if ignored:
        shown = ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        problems.append(f"{len(ignored)} tracked file(s) match .gitignore: {shown}")
    for rel in _git("ls-files"):
        path = ROOT / rel
        if rel.startswith(SKIPPED_DIRS) or path.suffix not in CHECKED_SUFFIXES:
            continue
        if not path.is_file():
            continue
        if path.suffix == "" and not rel.startswith(("scripts/", ".ci/")):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems.extend(problems_in(rel, text))
    for problem in problems:
        print(f"check_repo: {problem}", file=sys.stderr)
    if problems:
        print("check_repo: the repository must stand alone", file=sys.stderr)
        return 1
    print("check_repo: ok (no tracked ignored files, nothing reads outside the repository)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
