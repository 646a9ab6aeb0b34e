"""Fixtures for BullMQ mode: its protocol object on the private Redis, helpers to
read a queue's Redis state, and real Node BullMQ.

* ``proto``: a :class:`BullMQProtocol` for a fresh queue (``queue_name``).
* ``node_bullmq``: Node BullMQ 6.7.6 (npm alias ``bullmq``) on the private Redis,
  or each alias of ``BULLMQ_VERSIONS`` when the test also asks for ``bullmq_version``.
  Missing ``node`` or ``tests/bullmq/node/node_modules`` FAILS those tests with
  a message saying what to install; ``PYQUEUE_SKIP_INTEROP=1`` skips them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests.bullmq.nodebullmq import (
    BULLMQ_VERSIONS,
    NodeBullMQ,
    NodeUnavailableError,
    check_node_modules,
)
from tests.interop.bull import find_node

from pyqueue._protocol.bullmq import wire
from pyqueue._protocol.bullmq.keys import BullMQKeys
from pyqueue._protocol.bullmq.protocol import BullMQProtocol
from pyqueue._protocol.interface import NewJob, WorkerSpec
from pyqueue.options import JobOptions

SKIP_ENV = "PYQUEUE_SKIP_INTEROP"
_HERE = Path(__file__).resolve().parent
TOKEN = "worker-1:0"
_NO_DATA: Any = object()  # Node stores {} for data left out, and null for null
WORKER = WorkerSpec(lock_duration=30_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that drive Node BullMQ (tests/bullmq/interop) with ``interop``."""
    interop = _HERE / "interop"
    for item in items:
        if interop in item.path.resolve().parents:
            item.add_marker(pytest.mark.interop)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def keys(queue_name: str) -> BullMQKeys:
    return BullMQKeys("bull", queue_name)


@pytest.fixture
def proto(raw_redis: aioredis.Redis, queue_name: str) -> BullMQProtocol:
    return BullMQProtocol(raw_redis, "bull", queue_name)


def new_job(
    data: Any = _NO_DATA, *, name: str = "job", job_id: str = "", timestamp: int | None = None,
    **options: Any,
) -> NewJob:
    """A NewJob as the API will build it: options encoded by BullMQ mode's wire."""
    dedup = options.pop("dedup", None)
    parent = options.pop("parent", None)
    waiting_children = options.pop("waiting_children", False)
    opts = JobOptions(job_id=job_id or None, **options)
    stored = wire.options_to_wire(opts, dedup=dedup, parent=parent)
    return NewJob(
        job_id=job_id, name=name, data=wire.encode_data({} if data is _NO_DATA else data),
        opts=wire.dumps(stored), timestamp=now_ms() if timestamp is None else timestamp,
        delay=int(opts.delay or 0), priority=opts.priority or 0, lifo=bool(opts.lifo),
        dedup=dedup, parent=parent, waiting_children=waiting_children,
    )


@pytest.fixture(scope="session")
def node_bullmq_available() -> None:
    """Fail (or, with PYQUEUE_SKIP_INTEROP=1, skip) when Node BullMQ is not installed."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: Node BullMQ interop tests skipped")
    problem = None
    try:
        find_node()
        check_node_modules()
    except NodeUnavailableError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(f"BullMQ interop tests need Node BullMQ: {problem}", pytrace=False)


@pytest.fixture(params=BULLMQ_VERSIONS)
def bullmq_version(request: pytest.FixtureRequest) -> str:
    """Each BullMQ alias in turn, oldest first."""
    version: str = request.param
    return version


@pytest.fixture
def node_bullmq(
    node_bullmq_available: None, redis_url: str, request: pytest.FixtureRequest
) -> NodeBullMQ:
    """Node BullMQ on the private Redis; the version follows ``bullmq_version`` if asked."""
    version = "bullmq"
    if "bullmq_version" in request.fixturenames:
        version = request.getfixturevalue("bullmq_version")
    return NodeBullMQ(version, redis_url)
