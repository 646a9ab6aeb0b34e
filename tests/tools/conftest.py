"""Fixtures for the tools' tests: the Node Bull ones from tests/interop, shared here."""

from __future__ import annotations

from tests.interop.conftest import node_available, node_bull

__all__ = ["node_available", "node_bull"]
