"""Checks built distributions against the source tree: python scripts/check_dists.py DIST_DIR

Run by scripts/check_wheels after `python -m build`. Fails (exit 1, one line per
problem) when
  * a file under src/pyqueue (Lua, templates, static files, py.typed, any module) is
    missing from the pyqueue-bull wheel or sdist, or anything else is in the wheel;
  * the same for src/bookwish_jobs and the bookwish-jobs wheel and sdist;
  * the sdists lack LICENSE, README.md or pyproject.toml, or carry tests;
  * the metadata lacks the SPDX license, the LICENSE file or the console scripts;
  * the long description (the README shown on the package index) has an image whose
    path is relative: the index cannot show it.
The source tree is walked, not listed here, so a file added later is never forgotten.
Standard library only.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Markdown ![alt](target) and HTML <img src="target">.
IMAGES = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*\bsrc=[\"']([^\"']+)", re.I)


def source_files(package: str) -> set[str]:
    """Every file of the package in the source tree, as ``package/...`` paths."""
    base = ROOT / "src"
    return {
        path.relative_to(base).as_posix()
        for path in (base / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def relative_images(markdown: str) -> list[str]:
    """Image targets that are not absolute http(s) URLs."""
    found = []
    for match in IMAGES.finditer(markdown):
        target = match.group(1) or match.group(2)
        if not re.match(r"https?://", target):
            found.append(target)
    return found


def check_wheel(
    path: Path, package: str, scripts: dict[str, str], problems: list[str]
) -> None:
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(info).decode()
        dist_info = info.rsplit("/", 1)[0]
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    files = {n for n in names if not n.startswith(dist_info + "/")}
    want = source_files(package)
    for missing in sorted(want - files):
        problems.append(f"{path.name}: {missing} is in src/ but not in the wheel")
    for extra in sorted(files - want):
        problems.append(f"{path.name}: {extra} is in the wheel but not in src/{package}")
    if f"{dist_info}/licenses/LICENSE" not in names:
        problems.append(f"{path.name}: no LICENSE in {dist_info}/licenses")
    check_metadata(path.name, metadata, problems)
    for script, target in scripts.items():
        if f"{script} = {target}" not in entry_points:
            problems.append(f"{path.name}: console script {script} = {target} missing")
    declared = re.findall(r"^(\S+) = ", entry_points, re.M)
    for script in declared:
        if script not in scripts:
            problems.append(f"{path.name}: unexpected console script {script}")


def check_metadata(name: str, metadata: str, problems: list[str]) -> None:
    message = Parser().parsestr(metadata)
    if message.get("License-Expression") != "MIT":
        problems.append(f"{name}: License-Expression is {message.get('License-Expression')!r}")
    if message.get("Description-Content-Type") != "text/markdown":
        problems.append(f"{name}: the long description is not text/markdown")
    body = message.get_payload()
    if not isinstance(body, str) or not body.strip():
        problems.append(f"{name}: no long description (README)")
        return
    for target in relative_images(body):
        problems.append(f"{name}: README image {target!r} is a relative path (use an https URL)")


def check_sdist(path: Path, package: str, problems: list[str]) -> None:
    with tarfile.open(path) as sdist:
        members = [m.name for m in sdist.getmembers() if m.isfile() and "/" in m.name]
    names = {name.split("/", 1)[1] for name in members}
    for required in ("LICENSE", "README.md", "pyproject.toml", "PKG-INFO"):
        if required not in names:
            problems.append(f"{path.name}: no {required}")
    for missing in sorted({f"src/{f}" for f in source_files(package)} - names):
        problems.append(f"{path.name}: {missing} is not in the sdist")
    if any(n.startswith("tests/") for n in names):
        problems.append(f"{path.name}: carries tests/ (deliberately left out, see MANIFEST.in)")


def main(dist_dir: str) -> int:
    dist = Path(dist_dir)
    problems: list[str] = []
    found = {p.name: p for p in dist.iterdir()}

    def one(pattern: str) -> Path | None:
        matches = [p for n, p in found.items() if re.fullmatch(pattern, n)]
        if len(matches) != 1:
            problems.append(f"{dist}: expected one {pattern}, found {sorted(found)}")
            return None
        return matches[0]

    if (wheel := one(r"pyqueue_bull-.+-py3-none-any\.whl")) is not None:
        check_wheel(wheel, "pyqueue", {"pyqueue": "pyqueue.tools.cli_entry:main"}, problems)
    if (sdist := one(r"pyqueue_bull-.+\.tar\.gz")) is not None:
        check_sdist(sdist, "pyqueue", problems)
    if (wheel := one(r"bookwish_jobs-.+-py3-none-any\.whl")) is not None:
        check_wheel(
            wheel, "bookwish_jobs", {"bookwish-worker": "bookwish_jobs.console:main"}, problems
        )
    if (sdist := one(r"bookwish_jobs-.+\.tar\.gz")) is not None:
        check_sdist(sdist, "bookwish_jobs", problems)
    for problem in problems:
        print(f"check_dists: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dists: {len(found)} distributions match the source tree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
