"""Python blocks of the README and of docs/, found and grouped the way they run in CI.

The conventions (``docs/contributing.md`` explains them to writers) live on the fence line:

* ```` ```python ````: a block that runs on its own, as ``python example.py`` in a fresh
  process with ``REDIS_URL`` set to a private redis-server.
* ```` ```python test="continue" ````: carries on the page's previous Python block; the
  two (and any further continuations) run as one script, once.
* ```` ```python test="pytest" ````: the block (with its continuations) is a test module,
  run with ``python -m pytest``.
* ```` ```python test="skip" reason="..." ````: not run, because it needs what CI does not
  start (a Node process, a Redis Cluster, a browser); the reason is required. It is
  still compiled and checked for undefined names.

Nothing here imports pyqueue or starts anything: it only reads Markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_LANGUAGES = frozenset({"python", "py", "python3"})
MODES = frozenset({"run", "continue", "pytest", "skip"})
_SETTING = re.compile(r"""([\w-]+)=(["'])(.*?)\2""")
_OPENING = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def _shown(path: Path) -> str:
    """A page's path as messages show it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class BlockError(ValueError):
    """A fence line that breaks the conventions (unknown mode, skip without a reason...)."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its fence settings, its source."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    settings: dict[str, str]
    source: str

    @property
    def mode(self) -> str:
        return self.settings.get("test", "run")

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"


@dataclass
class Chain:
    """A block and the blocks that continue it: what runs as one script."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def first(self) -> Block:
        return self.blocks[0]

    @property
    def mode(self) -> str:
        return self.first.mode

    @property
    def where(self) -> str:
        return self.first.where

    def script(self) -> str:
        """The blocks' sources joined, each headed by a comment naming where it came from."""
        return "".join(text for text, _ in self._lines())

    def line_of(self, script_line: int) -> str:
        """``path:line`` in the Markdown for a 1-based line of :meth:`script`."""
        lines = self._lines()
        return lines[script_line - 1][1] if 0 < script_line <= len(lines) else self.where

    def _lines(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for block in self.blocks:
            out.append((f"# --- {block.where}\n", block.where))
            rel = _shown(block.path)
            for number, text in enumerate(block.source.splitlines(keepends=True), 1):
                out.append((text, f"{rel}:{block.line + number}"))
        return out


def parse_settings(info: str) -> tuple[str, dict[str, str]]:
    """``python test="skip" reason="needs Node"`` -> ``("python", {...})``."""
    text = info.strip().strip("{}").strip()
    language = text.split(maxsplit=1)[0].lstrip(".").lower() if text else ""
    return language, {m.group(1): m.group(3) for m in _SETTING.finditer(text)}


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of one Markdown file, indented ones (in lists, admonitions) too."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening.group("indent")), opening.group("fence")
        language, settings = parse_settings(opening.group("info"))
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            text = lines[index]
            # Drop the fence's own indent (a block in a list or an admonition), no more.
            body.append(text[min(indent, len(text) - len(text.lstrip(" "))):])
            index += 1
        line = index - len(body)  # the opening fence, 1-based
        blocks.append(Block(path, line, language, settings, "\n".join(body) + "\n"))
        index += 1
    return blocks


def chains(path: Path) -> list[Chain]:
    """The page's Python blocks grouped into what runs together, checked for the conventions.

    Raises:
        BlockError: an unknown ``test=`` mode, a skip without ``reason``, or a
            continuation with no Python block before it.
    """
    found: list[Chain] = []
    for block in read_blocks(path):
        if block.language not in PYTHON_LANGUAGES:
            continue
        if block.mode not in MODES:
            raise BlockError(f"{block.where}: test={block.mode!r} is not one of {sorted(MODES)}")
        if block.mode == "skip" and not block.settings.get("reason", "").strip():
            raise BlockError(f'{block.where}: test="skip" needs reason="why it cannot run"')
        if block.mode == "continue":
            if not found:
                raise BlockError(f"{block.where}: continues nothing (no Python block before it)")
            found[-1].blocks.append(block)
        else:
            found.append(Chain([block]))
    return found


def documents() -> list[Path]:
    """The README and every Markdown page of the documentation site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
