"""Hatch build hook: ship ``bookwish_jobs`` from the repository's ``src/``.

The code stays at ``<repo>/src/bookwish_jobs``, beside pyqueue's. Built from the
repository, the sdist gets it under ``src/bookwish_jobs`` and the wheel as the
top-level package. Built from that sdist, the copy is already under ``src/``, where
the wheel target's ``packages`` finds it, so nothing is added. Editable installs
use ``dev-mode-dirs`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "bookwish_jobs"


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the package from the repository's ``src/`` when the build runs there."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if version == "editable" or (root / "src" / PACKAGE).is_dir():
            return
        source = root.parent.parent / "src" / PACKAGE
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: the bookwish_jobs sources are missing")
        target = f"src/{PACKAGE}" if self.target_name == "sdist" else PACKAGE
        build_data["force_include"][str(source)] = target
