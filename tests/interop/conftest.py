"""Fixtures for the Node Bull interop tests.

* ``node_bull``: a :class:`NodeBull` on the private test Redis.  It drives Bull
  4.16.5 (npm alias ``bull``), unless the test also asks for ``bull_version``,
  which parametrizes it over every alias in ``BULL_VERSIONS`` (4.12.9, 4.14.0,
  4.15.1, 4.16.5).
* Missing ``node`` or ``tests/interop/node/node_modules`` FAILS the tests with
  a message saying what to install; set ``PYQUEUE_SKIP_INTEROP=1`` to skip
  them instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.interop.bull import (
    BULL_VERSIONS,
    NodeBull,
    NodeUnavailableError,
    check_node_modules,
    find_node,
)

SKIP_ENV = "PYQUEUE_SKIP_INTEROP"
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/interop with ``interop``."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def node_available() -> None:
    """Fail (or, with PYQUEUE_SKIP_INTEROP=1, skip) when Node Bull is not installed."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: Node Bull interop tests skipped")
    problem = None
    try:
        find_node()
        check_node_modules()
    except NodeUnavailableError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(f"interop tests need Node Bull: {problem}", pytrace=False)


@pytest.fixture(params=BULL_VERSIONS)
def bull_version(request: pytest.FixtureRequest) -> str:
    """Each Bull alias in turn, oldest first (``bull`` is 4.16.5)."""
    version: str = request.param
    return version


@pytest.fixture
def node_bull(node_available: None, redis_url: str, request: pytest.FixtureRequest) -> NodeBull:
    """Node Bull on the private Redis; the version follows ``bull_version`` if requested."""
    version = "bull"
    if "bull_version" in request.fixturenames:
        version = request.getfixturevalue("bull_version")
    return NodeBull(version, redis_url)
