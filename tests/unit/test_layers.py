"""The package's layers and its import graph: no cycles, and each layer imports only downwards.

Counts every import, those under ``if TYPE_CHECKING:`` and inside functions too, because a
cycle there is still a cycle a reader has to hold in their head.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pyqueue"
# Leaf modules every layer may use: value types and errors.
LEAVES = {"pyqueue.errors", "pyqueue.options", "pyqueue.repeat"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target in modules and target not in (name, "pyqueue"):
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    ("layer", "may_not_import"),
    [
        ("pyqueue._protocol", ("pyqueue._engine", "pyqueue.queue", "pyqueue.worker",
                               "pyqueue.job", "pyqueue.sync", "pyqueue.events")),
        ("pyqueue._engine", ("pyqueue.queue", "pyqueue.worker", "pyqueue.sync",
                             "pyqueue.events")),
    ],
)
def test_layers_import_only_downwards(layer: str, may_not_import: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items() if name.startswith(layer)
        for target in targets if target.startswith(may_not_import) and target not in LEAVES
    )
    assert not wrong, wrong


def test_nothing_below_tools_imports_tools() -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items() if not name.startswith("pyqueue.tools")
        for target in targets if target.startswith("pyqueue.tools")
    )
    assert not wrong, wrong


def test_tools_use_only_the_public_api() -> None:
    """The tools read key names through pyqueue.monitoring, never a private module."""
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items() if name.startswith("pyqueue.tools")
        for target in targets if target.split(".")[1].startswith("_")
    )
    assert not wrong, wrong
