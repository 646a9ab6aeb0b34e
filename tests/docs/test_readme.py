"""The README stays what a newcomer needs, and renders on a package index page."""

from __future__ import annotations

import re

from tests.docs.blocks import ROOT

README = ROOT / "README.md"
# Markdown links and images: [text](target) and ![alt](target).
_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < 250, f"README.md has {lines} lines; move detail into docs/"


def test_readme_images_are_absolute_urls() -> None:
    # A package index shows the README away from the repository: relative images break.
    images = [t for bang, t in _LINK.findall(README.read_text(encoding="utf-8")) if bang]
    assert [t for t in images if not t.startswith("https://")] == []


def test_readme_links_point_at_files_that_exist() -> None:
    broken = []
    for _, target in _LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (ROOT / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert broken == []


def test_install_hints_use_the_distribution_name() -> None:
    # `pip install pyqueue` installs an unrelated project (issue 26).
    texts = [README, *(ROOT / "docs").rglob("*.md")]
    wrong = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in texts
             for m in re.finditer(r"pip install (-U )?'?pyqueue(\[[^\]]*\])?'?(?![\w-])",
                                  p.read_text(encoding="utf-8"))]
    assert wrong == []
