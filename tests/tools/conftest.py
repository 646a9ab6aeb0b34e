"""Fixtures for the tools' tests: the Node Bull ones from tests/interop, shared here."""

from __future__ import annotations

import pytest
from tests.bullmq.conftest import node_bullmq, node_bullmq_available
from tests.interop.conftest import node_available, node_bull

__all__ = ["node_available", "node_bull", "node_bullmq", "node_bullmq_available"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that drive Node Bull or BullMQ carry the ``interop`` mark, as those under
    tests/interop do."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "node_bull" in names or "node_bullmq" in names:
            item.add_marker(pytest.mark.interop)
