"""Fixtures for the tools' tests: the Node Bull ones from tests/interop, shared here."""

from __future__ import annotations

import pytest
from tests.interop.conftest import node_available, node_bull

__all__ = ["node_available", "node_bull"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that drive Node Bull carry the ``interop`` mark, as those under tests/interop do."""
    for item in items:
        if "node_bull" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.interop)
